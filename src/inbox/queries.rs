//! Inbox reads (both engines).

use super::{Cursor, InboxPage, InboxRow};
use crate::domain::tier::Tier;
use crate::error::AppError;
use crate::on_db;
use crate::server::db::Db;

#[derive(sqlx::FromRow)]
struct Row {
    id: String,
    action_type: String,
    title: String,
    agent_name: String,
    amount_minor: Option<i64>,
    currency: Option<String>,
    counterparty: Option<String>,
    record_count: Option<i64>,
    recipient_count: Option<i64>,
    tier: String,
    status: String,
    gate_name: Option<String>,
    gate_version: Option<i64>,
    explanation: String,
    created_at: i64,
    deadline_at: Option<i64>,
}

const OPEN: &str = "r.status IN ('pending', 'in_review', 'escalated')";

/// Open requests oldest first, one keyset page after `after`.
pub async fn open_requests(
    db: &Db,
    after: Option<&Cursor>,
    tier: Option<Tier>,
    limit: i64,
) -> Result<InboxPage, AppError> {
    let now = crate::server::now_ms();
    let (after_at, after_id) = after
        .map(|c| (c.created_at, c.id.as_str()))
        .unwrap_or((i64::MIN, ""));
    let tier = tier.map(Tier::as_str);
    let list_sql = format!(
        "SELECT r.id, r.action_type, r.title, a.name AS agent_name, r.amount_minor, r.currency, \
         r.counterparty, r.record_count, r.recipient_count, r.tier, r.status, \
         g.name AS gate_name, r.gate_version, r.explanation, r.created_at, r.deadline_at \
         FROM action_requests r JOIN agents a ON a.id = r.agent_id \
         LEFT JOIN gates g ON g.id = r.gate_id \
         WHERE {OPEN} AND ($1 IS NULL OR r.tier = $1) \
         AND (r.created_at > $2 OR (r.created_at = $2 AND r.id > $3)) \
         ORDER BY r.created_at, r.id LIMIT $4"
    );
    let count_sql = format!(
        "SELECT COUNT(*) FROM action_requests r WHERE {OPEN} AND ($1 IS NULL OR r.tier = $1)"
    );
    let (mut rows, open_total): (Vec<Row>, i64) = on_db!(db, |p| {
        let rows = sqlx::query_as(&list_sql)
            .bind(tier)
            .bind(after_at)
            .bind(after_id)
            .bind(limit + 1)
            .fetch_all(p)
            .await?;
        let total = sqlx::query_scalar(&count_sql)
            .bind(tier)
            .fetch_one(p)
            .await?;
        (rows, total)
    });
    let next_after = if rows.len() as i64 > limit {
        rows.truncate(limit as usize);
        rows.last().map(|r| {
            Cursor {
                created_at: r.created_at,
                id: r.id.clone(),
            }
            .encode()
        })
    } else {
        None
    };
    Ok(InboxPage {
        rows: rows
            .into_iter()
            .map(|r| InboxRow {
                id: r.id,
                action_type: r.action_type,
                title: r.title,
                agent_name: r.agent_name,
                amount_minor: r.amount_minor,
                currency: r.currency,
                counterparty: r.counterparty,
                record_count: r.record_count,
                recipient_count: r.recipient_count,
                tier: r.tier,
                status: r.status,
                gate_name: r.gate_name,
                gate_version: r.gate_version,
                explanation: r.explanation,
                created_at: r.created_at,
                deadline_at: r.deadline_at,
            })
            .collect(),
        open_total,
        next_after,
        now,
    })
}
