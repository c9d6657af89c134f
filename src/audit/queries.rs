//! Audit trail reads (both engines): the explorer's pages and the exports share one filter.

use super::explorer::{AuditFilter, AuditPage, AuditRow};
use crate::error::AppError;
use crate::on_db;
use crate::server::db::Db;

/// A validated filter; every field optional. Times are milliseconds, `to` exclusive.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventQuery {
    pub event_type: Option<String>,
    pub actor: Option<String>,
    pub request: Option<String>,
    pub gate: Option<String>,
    pub agent: Option<String>,
    pub from: Option<i64>,
    pub to: Option<i64>,
}

impl EventQuery {
    /// Checks a filter from the URL; a bad value is named in the error.
    pub fn from_filter(f: &AuditFilter) -> Result<EventQuery, AppError> {
        let clean = |s: &Option<String>, field: &str| -> Result<Option<String>, AppError> {
            match s.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
                Some(v) if v.len() > 200 => Err(AppError::invalid(field, "is too long")),
                other => Ok(other.map(str::to_owned)),
            }
        };
        let day = |s: &Option<String>, field: &str| -> Result<Option<i64>, AppError> {
            match s.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
                None => Ok(None),
                Some(v) => crate::domain::time::parse_day(v)
                    .map(Some)
                    .ok_or_else(|| AppError::invalid(field, "must be a date such as 2026-11-21")),
            }
        };
        let from = day(&f.from, "from")?;
        // `to` names the last day included.
        let to = day(&f.to, "to")?.map(|t| t + 86_400_000);
        if let (Some(a), Some(b)) = (from, to) {
            if a >= b {
                return Err(AppError::invalid("to", "must not be before from"));
            }
        }
        Ok(EventQuery {
            event_type: clean(&f.event_type, "event_type")?,
            actor: clean(&f.actor, "actor")?,
            request: clean(&f.request, "request")?,
            gate: clean(&f.gate, "gate")?,
            agent: clean(&f.agent, "agent")?,
            from,
            to,
        })
    }
}

/// Everything an export needs of one event.
#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize, serde::Deserialize)]
pub struct FullEvent {
    pub seq: i64,
    pub occurred_at: i64,
    pub actor_kind: String,
    pub actor_id: Option<String>,
    /// The actor's display name or agent name, for people reading the export (not hashed).
    pub actor_name: Option<String>,
    pub event_type: String,
    pub request_id: Option<String>,
    pub detail: String,
    pub prev_hash: String,
    pub hash: String,
}

/// Columns and joins for a filtered event read; parameters $1 (keyset bound) and $2..$8 (the
/// filter). Actor matches an id, a user's email or an agent's name; agent matches the acting
/// agent or the agent whose request the event is about; gate matches the request's gate key.
const FILTERED: &str = "SELECT e.seq, e.occurred_at, e.actor_kind, e.actor_id, \
     COALESCE(u.display_name, a.name) AS actor_name, e.event_type, e.request_id, e.detail, \
     e.prev_hash, e.hash \
     FROM audit_events e \
     LEFT JOIN users u ON e.actor_kind = 'user' AND u.id = e.actor_id \
     LEFT JOIN agents a ON e.actor_kind = 'agent' AND a.id = e.actor_id \
     LEFT JOIN action_requests r ON r.id = e.request_id \
     LEFT JOIN gates g ON g.id = r.gate_id \
     LEFT JOIN agents ra ON ra.id = r.agent_id \
     WHERE ($2 IS NULL OR e.event_type = $2) \
     AND ($3 IS NULL OR e.actor_id = $3 OR LOWER(u.email) = LOWER($3) OR a.name = $3) \
     AND ($4 IS NULL OR e.request_id = $4) \
     AND ($5 IS NULL OR g.key = $5) \
     AND ($6 IS NULL OR a.name = $6 OR ra.name = $6) \
     AND ($7 IS NULL OR e.occurred_at >= $7) \
     AND ($8 IS NULL OR e.occurred_at < $8)";

/// Events matching `q`, oldest first, after sequence number `after`.
pub async fn events_after(
    db: &Db,
    q: &EventQuery,
    after: i64,
    limit: i64,
) -> Result<Vec<FullEvent>, sqlx::Error> {
    let sql = format!("{FILTERED} AND e.seq > $1 ORDER BY e.seq LIMIT $9");
    on_db!(db, |p| {
        sqlx::query_as(&sql)
            .bind(after)
            .bind(&q.event_type)
            .bind(&q.actor)
            .bind(&q.request)
            .bind(&q.gate)
            .bind(&q.agent)
            .bind(q.from)
            .bind(q.to)
            .bind(limit)
            .fetch_all(p)
            .await
    })
}

/// One page of events, newest first, before `before` (a sequence number).
pub async fn page(
    db: &Db,
    q: &EventQuery,
    before: Option<i64>,
    limit: i64,
) -> Result<AuditPage, AppError> {
    let sql = format!("{FILTERED} AND e.seq < $1 ORDER BY e.seq DESC LIMIT $9");
    let rows: Vec<FullEvent> = on_db!(db, |p| {
        sqlx::query_as(&sql)
            .bind(before.unwrap_or(i64::MAX))
            .bind(&q.event_type)
            .bind(&q.actor)
            .bind(&q.request)
            .bind(&q.gate)
            .bind(&q.agent)
            .bind(q.from)
            .bind(q.to)
            .bind(limit + 1)
            .fetch_all(p)
            .await
    })?;
    let types: Vec<String> = on_db!(db, |p| sqlx::query_scalar(
        "SELECT DISTINCT event_type FROM audit_events ORDER BY event_type"
    )
    .fetch_all(p)
    .await)?;
    let gates: Vec<String> = on_db!(db, |p| sqlx::query_scalar(
        "SELECT key FROM gates ORDER BY key"
    )
    .fetch_all(p)
    .await)?;
    let more = rows.len() as i64 > limit;
    let rows: Vec<AuditRow> = rows
        .into_iter()
        .take(limit as usize)
        .map(|e| AuditRow {
            seq: e.seq,
            occurred_at: e.occurred_at,
            actor_kind: e.actor_kind,
            actor: e.actor_name.or(e.actor_id.clone()),
            actor_id: e.actor_id,
            event_type: e.event_type,
            request_id: e.request_id,
            detail: e.detail.chars().take(300).collect(),
            hash: e.hash,
        })
        .collect();
    Ok(AuditPage {
        next_before: if more {
            rows.last().map(|r| r.seq)
        } else {
            None
        },
        rows,
        event_types: types,
        gates,
        summary: Vec::new(),
        public_key: String::new(),
        retention: None,
    })
}

/// Per event type counts for a filter (the per-person summary: "viewed 42, decided 17").
pub async fn summary(db: &Db, q: &EventQuery) -> Result<Vec<(String, i64)>, sqlx::Error> {
    let sql = format!(
        "SELECT f.event_type, COUNT(*) FROM ({FILTERED} AND e.seq < $1) f \
         GROUP BY f.event_type ORDER BY COUNT(*) DESC, f.event_type LIMIT $9"
    );
    on_db!(db, |p| {
        sqlx::query_as(&sql)
            .bind(i64::MAX)
            .bind(&q.event_type)
            .bind(&q.actor)
            .bind(&q.request)
            .bind(&q.gate)
            .bind(&q.agent)
            .bind(q.from)
            .bind(q.to)
            .bind(50_i64)
            .fetch_all(p)
            .await
    })
}

/// How many events are older than `cutoff` (past the retention period).
pub async fn count_older_than(db: &Db, cutoff: i64) -> Result<i64, sqlx::Error> {
    on_db!(db, |p| sqlx::query_scalar(
        "SELECT COUNT(*) FROM audit_events WHERE occurred_at < $1"
    )
    .bind(cutoff)
    .fetch_one(p)
    .await)
}
