//! Audit explorer reads (both engines).

use super::explorer::{AuditPage, AuditRow};
use crate::error::AppError;
use crate::on_db;
use crate::server::db::Db;

type Row = (
    i64,
    i64,
    String,
    Option<String>,
    Option<String>,
    String,
    Option<String>,
    String,
    String,
);

/// One page of events, newest first, before `before` (a sequence number).
pub async fn page(
    db: &Db,
    event_type: Option<String>,
    actor: Option<String>,
    request: Option<String>,
    before: Option<i64>,
    limit: i64,
) -> Result<AuditPage, AppError> {
    let rows: Vec<Row> = on_db!(db, |p| {
        sqlx::query_as(
        "SELECT e.seq, e.occurred_at, e.actor_kind, e.actor_id, \
         COALESCE(u.display_name, a.name) AS actor_name, e.event_type, e.request_id, e.detail, e.hash \
         FROM audit_events e \
         LEFT JOIN users u ON e.actor_kind = 'user' AND u.id = e.actor_id \
         LEFT JOIN agents a ON e.actor_kind = 'agent' AND a.id = e.actor_id \
         WHERE e.seq < $1 AND ($2 IS NULL OR e.event_type = $2) \
         AND ($3 IS NULL OR e.actor_id = $3 OR LOWER(u.email) = LOWER($3) OR a.name = $3) \
         AND ($4 IS NULL OR e.request_id = $4) \
         ORDER BY e.seq DESC LIMIT $5"
    )
    .bind(before.unwrap_or(i64::MAX))
    .bind(&event_type)
    .bind(&actor)
    .bind(&request)
    .bind(limit + 1)
    .fetch_all(p)
    .await
    })?;
    let types: Vec<String> = on_db!(db, |p| sqlx::query_scalar(
        "SELECT DISTINCT event_type FROM audit_events ORDER BY event_type"
    )
    .fetch_all(p)
    .await)?;
    let more = rows.len() as i64 > limit;
    let rows: Vec<AuditRow> = rows
        .into_iter()
        .take(limit as usize)
        .map(
            |(
                seq,
                occurred_at,
                actor_kind,
                actor_id,
                actor_name,
                event_type,
                request_id,
                detail,
                hash,
            )| AuditRow {
                seq,
                occurred_at,
                actor_kind,
                actor: actor_name.or(actor_id),
                event_type,
                request_id,
                detail: detail.chars().take(300).collect(),
                hash,
            },
        )
        .collect();
    Ok(AuditPage {
        next_before: if more {
            rows.last().map(|r| r.seq)
        } else {
            None
        },
        rows,
        event_types: types,
    })
}
