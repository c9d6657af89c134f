//! Circuit breakers in the database: re-assessed after every human decision and after-the-fact
//! judgement (in its transaction), consulted when an agent submits, re-armed by an admin. The rules themselves are
//! pure, in `domain::breaker`.

use crate::audit::repo::{append, Actor};
use crate::domain::breaker::{
    apply_all, assess, BreakerEffect, BreakerSettings, BreakerState, DecisionSample,
};
use crate::domain::tier::Tier;
use crate::server::db::{Db, Tx};
use crate::{on_db, on_tx};
use serde_json::json;

/// A breaker's stored row; `gate_id` is empty for the agent-wide breaker.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct BreakerRow {
    pub agent_id: String,
    pub gate_id: String,
    pub state: String,
    pub since: Option<i64>,
    pub rate: Option<f64>,
    pub decisions: Option<i64>,
    pub corrections: Option<i64>,
    pub rearmed_at: Option<i64>,
}

impl BreakerRow {
    pub fn state(&self) -> BreakerState {
        if self.state == "open" {
            BreakerState::Open {
                since_ms: self.since.unwrap_or(0),
                rate: self.rate.unwrap_or(0.0),
                decisions: self.decisions.unwrap_or(0) as u32,
                corrections: self.corrections.unwrap_or(0) as u32,
            }
        } else {
            BreakerState::Closed
        }
    }
}

const COLUMNS: &str = "agent_id, gate_id, state, since, rate, decisions, corrections, rearmed_at";

async fn row(tx: &mut Tx, agent: &str, gate: &str) -> Result<Option<BreakerRow>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM breakers WHERE agent_id = $1 AND gate_id = $2");
    on_tx!(tx, |c| sqlx::query_as(&sql)
        .bind(agent)
        .bind(gate)
        .fetch_optional(&mut *c)
        .await)
}

/// Human decisions on `agent`'s requests (at `gate`, or anywhere) since `after`, and the
/// after-the-fact judgements of its requests that ran without waiting: "looks right" counts as
/// an unchanged approval, "should not have happened" as a rejection (see `domain::breaker`).
async fn samples(
    tx: &mut Tx,
    agent: &str,
    gate: Option<&str>,
    after: i64,
) -> Result<Vec<DecisionSample>, sqlx::Error> {
    let rows: Vec<(i64, String)> = on_tx!(tx, |c| {
        sqlx::query_as(
        "SELECT d.created_at, d.kind FROM decisions d JOIN action_requests r ON r.id = d.request_id \
         WHERE r.agent_id = $1 AND ($2 IS NULL OR r.gate_id = $2) AND d.created_at > $3 \
         AND d.kind IN ('approve', 'approve_with_edit', 'reject') \
         UNION ALL SELECT a.reviewed_at, CASE WHEN a.verdict = 'fine' THEN 'approve' ELSE 'reject' END \
         FROM after_fact_reviews a JOIN action_requests r ON r.id = a.request_id \
         WHERE r.agent_id = $1 AND ($2 IS NULL OR r.gate_id = $2) AND a.reviewed_at > $3 \
         AND a.verdict IS NOT NULL"
    )
    .bind(agent)
    .bind(gate)
    .bind(after)
    .fetch_all(&mut *c)
    .await
    })?;
    Ok(rows
        .into_iter()
        .map(|(at, kind)| DecisionSample {
            at_ms: at,
            corrected: kind != "approve",
        })
        .collect())
}

/// The agent and the gate of `request_id`.
async fn request_scope(
    tx: &mut Tx,
    request_id: &str,
) -> Result<Option<(String, Option<String>)>, sqlx::Error> {
    on_tx!(tx, |c| sqlx::query_as(
        "SELECT agent_id, gate_id FROM action_requests WHERE id = $1"
    )
    .bind(request_id)
    .fetch_optional(&mut *c)
    .await)
}

/// Re-assesses the agent-wide breaker (default settings) and the agent x gate breaker
/// (`gate_settings`: those of the gate version that gated the request, which the caller has
/// already read) after a human decision on `request_id`; opens and audits those that trip.
/// Returns a sentence per breaker opened, for alerts.
pub async fn after_decision(
    tx: &mut Tx,
    request_id: &str,
    gate_settings: BreakerSettings,
    now: i64,
) -> Result<Vec<String>, sqlx::Error> {
    let Some((agent, gate)) = request_scope(tx, request_id).await? else {
        return Ok(Vec::new());
    };
    let mut opened = Vec::new();
    let scopes: Vec<(String, BreakerSettings)> =
        std::iter::once((String::new(), BreakerSettings::default()))
            .chain(gate.map(|g| (g, gate_settings)))
            .collect();
    for (gate_id, settings) in scopes {
        let current = row(tx, &agent, &gate_id).await?;
        let state = current
            .as_ref()
            .map(BreakerRow::state)
            .unwrap_or(BreakerState::Closed);
        if state.is_open() {
            continue;
        }
        let rearmed = current.as_ref().and_then(|r| r.rearmed_at);
        let after = (now - settings.window_ms).max(rearmed.unwrap_or(i64::MIN));
        let gate_filter = (!gate_id.is_empty()).then_some(gate_id.as_str());
        let found = samples(tx, &agent, gate_filter, after).await?;
        let assessment = assess(&found, now, rearmed, &settings);
        let Some(BreakerState::Open {
            rate,
            decisions,
            corrections,
            ..
        }) = state.trip(&assessment, now)
        else {
            continue;
        };
        on_tx!(tx, |c| {
            sqlx::query(
            "INSERT INTO breakers (agent_id, gate_id, state, since, rate, decisions, corrections, updated_at) \
             VALUES ($1, $2, 'open', $3, $4, $5, $6, $3) \
             ON CONFLICT (agent_id, gate_id) DO UPDATE SET state = 'open', since = $3, rate = $4, \
             decisions = $5, corrections = $6, updated_at = $3"
        )
        .bind(&agent)
        .bind(&gate_id)
        .bind(now)
        .bind(rate)
        .bind(i64::from(decisions))
        .bind(i64::from(corrections))
        .execute(&mut *c)
        .await
        .map(|_| ())
        })?;
        let scope = if gate_id.is_empty() {
            "all gates".to_owned()
        } else {
            format!("gate {gate_id}")
        };
        append(
            tx,
            &Actor::System,
            "breaker_opened",
            None,
            json!({
                "agent_id": agent, "gate_id": (!gate_id.is_empty()).then_some(&gate_id),
                "rate": rate, "decisions": decisions, "corrections": corrections,
                "threshold": settings.rate, "window_ms": settings.window_ms,
                "on_open": settings.on_open,
            }),
            now,
        )
        .await?;
        opened.push(format!(
            "circuit breaker opened for agent {agent} ({scope}): {corrections} of {decisions} decisions rejected or edited"
        ));
    }
    Ok(opened)
}

/// What open breakers do to a request the policy put in `tier`. `gate` is the deciding gate
/// (id and its current breaker settings).
pub async fn effect(
    db: &Db,
    agent_id: &str,
    gate: Option<(&str, &BreakerSettings)>,
    tier: Tier,
) -> Result<(BreakerEffect, Vec<String>), sqlx::Error> {
    let sql = format!(
        "SELECT {COLUMNS} FROM breakers WHERE agent_id = $1 AND state = 'open' AND (gate_id = '' OR gate_id = $2)"
    );
    let rows: Vec<BreakerRow> = on_db!(db, |p| sqlx::query_as(&sql)
        .bind(agent_id)
        .bind(gate.map(|(g, _)| g).unwrap_or(""))
        .fetch_all(p)
        .await)?;
    let default = BreakerSettings::default();
    let states: Vec<(BreakerState, &BreakerSettings)> = rows
        .iter()
        .map(|r| {
            let settings = if r.gate_id.is_empty() {
                &default
            } else {
                gate.map(|(_, s)| s).unwrap_or(&default)
            };
            (r.state(), settings)
        })
        .collect();
    let why = rows
        .iter()
        .map(|r| {
            format!(
                "circuit breaker open for this agent{} since {} ({} of {} decisions rejected or edited)",
                if r.gate_id.is_empty() { String::new() } else { " at this gate".to_owned() },
                crate::domain::time::iso_utc(r.since.unwrap_or(0)),
                r.corrections.unwrap_or(0),
                r.decisions.unwrap_or(0),
            )
        })
        .collect();
    Ok((apply_all(tier, states.iter().map(|(s, c)| (s, *c))), why))
}

/// Closes a breaker (admin action); decisions before now no longer count towards it.
pub async fn rearm(
    db: &Db,
    admin: &str,
    agent_id: &str,
    gate_id: &str,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let mut tx = db.begin_write().await?;
    let changed = on_tx!(&mut tx, |c| {
        sqlx::query(
        "UPDATE breakers SET state = 'closed', rearmed_at = $3, rearmed_by = $4, updated_at = $3 \
         WHERE agent_id = $1 AND gate_id = $2 AND state = 'open'"
    )
    .bind(agent_id)
    .bind(gate_id)
    .bind(now)
    .bind(admin)
    .execute(&mut *c)
    .await
    .map(|r| r.rows_affected())
    })?;
    if changed == 1 {
        append(
            &mut tx,
            &Actor::User(admin.to_owned()),
            "breaker_rearmed",
            None,
            json!({"agent_id": agent_id, "gate_id": (!gate_id.is_empty()).then_some(gate_id)}),
            now,
        )
        .await?;
    }
    tx.commit().await?;
    Ok(changed == 1)
}

/// Every open breaker: (agent name, gate key or empty, row).
pub async fn open_breakers(db: &Db) -> Result<Vec<(String, String, BreakerRow)>, sqlx::Error> {
    #[derive(sqlx::FromRow)]
    struct Named {
        agent_name: String,
        gate_key: Option<String>,
        #[sqlx(flatten)]
        row: BreakerRow,
    }
    let rows: Vec<Named> = on_db!(db, |p| {
        sqlx::query_as(
        "SELECT a.name AS agent_name, g.key AS gate_key, b.agent_id, b.gate_id, b.state, b.since, \
         b.rate, b.decisions, b.corrections, b.rearmed_at FROM breakers b \
         JOIN agents a ON a.id = b.agent_id LEFT JOIN gates g ON g.id = b.gate_id \
         WHERE b.state = 'open' ORDER BY b.since DESC"
    )
    .fetch_all(p)
    .await
    })?;
    Ok(rows
        .into_iter()
        .map(|n| (n.agent_name, n.gate_key.unwrap_or_default(), n.row))
        .collect())
}
