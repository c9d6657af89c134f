//! The after-the-fact queue in the database: queueing at submission, the queue page's query, and
//! judgements (each with its audit event and the breaker re-assessment, in one transaction).

use super::{AfterFilter, AfterPage, AfterRow};
use crate::accounts::CurrentUser;
use crate::audit::repo::{append, Actor};
use crate::domain::after_fact::{Judgement, QueueReason};
use crate::error::AppError;
use crate::inbox::listing::TimeCursor as Cursor;
use crate::server::db::{Db, Tx};
use crate::server::rows::{self, Val};
use crate::server::{now_ms, AppState};
use crate::{on_db, on_tx};
use serde_json::json;

/// The longest note we keep; longer is pasted by mistake.
pub const MAX_NOTE_CHARS: usize = 2000;
/// The most items judged in one go: a page holds fewer.
pub const MAX_PICKS: usize = 200;

/// Queues `request_id`, in the submission's transaction.
pub async fn enqueue(
    tx: &mut Tx,
    request_id: &str,
    reason: QueueReason,
    at: i64,
) -> Result<(), sqlx::Error> {
    enqueue_all(tx, &[(request_id, reason, at)]).await
}

/// [`enqueue`] for several requests at once: (request id, reason, queued at) each.
pub async fn enqueue_all(
    tx: &mut Tx,
    queued: &[(&str, QueueReason, i64)],
) -> Result<(), sqlx::Error> {
    let vals: Vec<Val> = queued
        .iter()
        .flat_map(|&(request, reason, at)| [request.into(), reason.as_str().into(), at.into()])
        .collect();
    rows::insert(
        tx,
        "INSERT INTO after_fact_reviews (request_id, reason, queued_at)",
        &rows::bound(3),
        &vals,
    )
    .await
    .map(|_| ())
}

const ROW: &str = "SELECT a.request_id, a.reason, a.queued_at, r.action_type, r.title, \
    ag.name AS agent_name, r.amount_minor, r.currency, r.counterparty, r.record_count, \
    r.recipient_count, r.tier, r.status, g.name AS gate_name, r.gate_version, r.explanation, \
    r.acting_for FROM after_fact_reviews a JOIN action_requests r ON r.id = a.request_id \
    JOIN agents ag ON ag.id = r.agent_id LEFT JOIN gates g ON g.id = r.gate_id \
    WHERE a.verdict IS NULL";

/// Unjudged items matching `filter`, in queue order, `limit` at a time after `after`.
pub async fn unjudged(
    db: &Db,
    filter: &AfterFilter,
    after: Option<&Cursor>,
    limit: i64,
) -> Result<AfterPage, sqlx::Error> {
    // `$1 IS NULL OR ...` keeps one statement for every combination of filters.
    let filters = " AND ($1 IS NULL OR g.key = $1) AND ($2 IS NULL OR a.reason = $2)";
    let page_sql = format!(
        "{ROW}{filters} AND ($3 IS NULL OR a.queued_at > $3 OR (a.queued_at = $3 AND a.request_id > $4)) \
         ORDER BY a.queued_at, a.request_id LIMIT $5"
    );
    let count_sql = format!(
        "SELECT COUNT(*) FROM after_fact_reviews a JOIN action_requests r ON r.id = a.request_id \
         LEFT JOIN gates g ON g.id = r.gate_id WHERE a.verdict IS NULL{filters}"
    );
    let reason = filter.reason.map(QueueReason::as_str);
    let mut rows: Vec<AfterRow> = on_db!(db, |p| sqlx::query_as(&page_sql)
        .bind(filter.gate.as_deref())
        .bind(reason)
        .bind(after.map(|c| c.created_at))
        .bind(after.map(|c| c.id.as_str()).unwrap_or(""))
        .bind(limit + 1)
        .fetch_all(p)
        .await)?;
    let total: i64 = on_db!(db, |p| sqlx::query_scalar(&count_sql)
        .bind(filter.gate.as_deref())
        .bind(reason)
        .fetch_one(p)
        .await)?;
    let next_after = if rows.len() as i64 > limit {
        rows.truncate(limit as usize);
        rows.last().map(|r| {
            Cursor {
                created_at: r.queued_at,
                id: r.request_id.clone(),
            }
            .encode()
        })
    } else {
        None
    };
    let gates: Vec<(String, String)> = on_db!(db, |p| sqlx::query_as(
        "SELECT key, name FROM gates ORDER BY name"
    )
    .fetch_all(p)
    .await)?;
    Ok(AfterPage {
        rows,
        total,
        next_after,
        now: now_ms(),
        gates,
        may_judge: false,
        me: String::new(),
    })
}

#[derive(sqlx::FromRow)]
struct Queued {
    reason: String,
    verdict: Option<String>,
    acting_for: Option<String>,
    state_version: i64,
}

/// Records `verdict` by `reviewer` on every request of `picks`: all of them or, if any one may
/// not be judged (not queued, already judged, made on the reviewer's behalf, a gate they may not
/// review), none, with an error naming it. Returns how many were judged.
pub async fn judge(
    state: &AppState,
    reviewer: &CurrentUser,
    picks: &[String],
    verdict: Judgement,
    note: Option<&str>,
) -> Result<usize, AppError> {
    if !reviewer.may_decide() {
        return Err(AppError::Forbidden);
    }
    if picks.is_empty() {
        return Err(AppError::invalid(
            "pick",
            "select at least one item to mark as looks right",
        ));
    }
    if picks.len() > MAX_PICKS {
        return Err(AppError::invalid(
            "pick",
            format!("judge at most {MAX_PICKS} items at a time"),
        ));
    }
    for (i, id) in picks.iter().enumerate() {
        if picks[..i].contains(id) {
            return Err(AppError::invalid("pick", format!("{id} is selected twice")));
        }
    }
    let note = note.map(str::trim).filter(|n| !n.is_empty());
    if note.is_some_and(|n| n.chars().count() > MAX_NOTE_CHARS) {
        return Err(AppError::invalid(
            "note",
            format!("keep the note under {MAX_NOTE_CHARS} characters"),
        ));
    }
    if verdict == Judgement::ShouldNotHaveHappened && note.is_none() {
        return Err(AppError::invalid(
            "note",
            "say what was wrong: the note goes to whoever tunes the gate and the agent",
        ));
    }
    let now = now_ms();
    let mut tx = state.db.begin_write().await?;
    let teams = crate::gates::eligibility::teams_of_tx(&mut tx, &reviewer.id).await?;
    let mut alerts = Vec::new();
    for id in picks {
        let queued: Option<Queued> = on_tx!(&mut tx, |c| {
            sqlx::query_as(
            "SELECT a.reason, a.verdict, r.acting_for, r.state_version FROM after_fact_reviews a \
             JOIN action_requests r ON r.id = a.request_id WHERE a.request_id = $1"
        )
        .bind(id)
        .fetch_optional(&mut *c)
        .await
        })?;
        let Some(q) = queued else {
            return Err(AppError::invalid(
                "pick",
                format!("{id} is not in the after-the-fact queue"),
            ));
        };
        if q.verdict.is_some() {
            return Err(AppError::Conflict(format!(
                "{id} was already judged by someone else. Nothing was recorded."
            )));
        }
        if q.acting_for
            .as_deref()
            .is_some_and(|a| a == reviewer.id || a.eq_ignore_ascii_case(&reviewer.email))
        {
            return Err(AppError::Conflict(format!(
                "{id} was made on your behalf; someone else judges it. Nothing was recorded."
            )));
        }
        let settings = crate::gates::eligibility::settings_of_tx(&mut tx, id).await?;
        if let Some(why) = crate::gates::eligibility::why_not(&settings, reviewer, &teams) {
            return Err(AppError::Conflict(format!(
                "{id}: {why} Nothing was recorded."
            )));
        }
        let changed = on_tx!(&mut tx, |c| {
            sqlx::query(
            "UPDATE after_fact_reviews SET verdict = $2, reviewer_id = $3, note = $4, reviewed_at = $5 \
             WHERE request_id = $1 AND verdict IS NULL"
        )
        .bind(id)
        .bind(verdict.as_str())
        .bind(&reviewer.id)
        .bind(note)
        .bind(now)
        .execute(&mut *c)
        .await
        .map(|r| r.rows_affected())
        })?;
        if changed != 1 {
            return Err(AppError::Conflict(format!(
                "{id} was already judged by someone else. Nothing was recorded."
            )));
        }
        append(
            &mut tx,
            &Actor::User(reviewer.id.clone()),
            "after_fact_reviewed",
            Some(id),
            json!({
                "verdict": verdict.as_str(),
                "note": note,
                "queued_because": q.reason,
                "state_version": q.state_version,
                "together_with": picks.len() - 1,
            }),
            now,
        )
        .await?;
        // A judgement is a human decision on what the agent did: the breakers count it.
        let opened =
            crate::gates::breakers::after_decision(&mut tx, id, settings.breaker, now).await?;
        if !opened.is_empty() {
            let to = crate::notify::outbox::admins(&mut tx).await?;
            let mut summary = crate::notify::outbox::summary_of(&mut tx, id).await?;
            summary.reason = Some(opened.join("; "));
            crate::notify::outbox::enqueue(
                &mut tx,
                state,
                crate::notify::NotificationKind::BreakerOpened,
                &summary,
                &to,
                now,
            )
            .await?;
            alerts.extend(opened);
        }
    }
    tx.commit().await?;
    for alert in alerts {
        tracing::warn!("{alert}");
    }
    Ok(picks.len())
}
