//! Triage: after a decision in the browser the reviewer lands on the next open request they may
//! decide, in inbox order (oldest first, continuing after the one just decided and wrapping to
//! the top), so they can work item after item without going back to the list.

use crate::accounts::CurrentUser;
use crate::error::AppError;
use crate::on_db;
use crate::server::db::Db;
use std::collections::HashMap;

#[derive(sqlx::FromRow)]
struct Candidate {
    id: String,
    created_at: i64,
    tier: String,
    definition: Option<String>,
    gate_key: Option<String>,
    owner: Option<String>,
    mine_in: i64,
    others_held: i64,
    verdicts_in: i64,
}

/// How many open requests are looked at per round trip; requests this reviewer may not decide are
/// skipped in Rust (eligibility lives in each gate version's settings).
const BATCH: i64 = 100;

/// The next open request after `after_id` (in inbox order, wrapping) that `user` may decide and
/// nobody else is reviewing right now.
pub async fn next_for(
    db: &Db,
    user: &CurrentUser,
    after_id: &str,
) -> Result<Option<String>, AppError> {
    if !user.may_decide() {
        return Ok(None);
    }
    let teams = crate::gates::eligibility::teams_of(db, &user.id).await?;
    let now = crate::server::now_ms();
    let anchor: Option<i64> = on_db!(db, |p| sqlx::query_scalar(
        "SELECT created_at FROM action_requests WHERE id = $1"
    )
    .bind(after_id)
    .fetch_optional(p)
    .await)?;
    let anchor = anchor.unwrap_or(i64::MIN);
    let mut eligible: HashMap<Option<String>, bool> = HashMap::new();
    // First the requests after this one, then from the top of the inbox.
    for (mut at, mut id, wrap) in [
        (anchor, after_id.to_owned(), false),
        (i64::MIN, String::new(), true),
    ] {
        loop {
            let batch = candidates(db, user, now, at, &id, after_id).await?;
            let full = batch.len() as i64 == BATCH;
            for c in &batch {
                if wrap && (c.created_at, c.id.as_str()) >= (anchor, after_id) {
                    return Ok(None);
                }
                let ok = *eligible.entry(c.gate_key.clone()).or_insert_with(|| {
                    let settings =
                        crate::gates::eligibility::settings_from_definition(c.definition.clone());
                    crate::gates::eligibility::why_not(&settings, user, &teams).is_none()
                });
                let dual_open = c.tier != "dual"
                    || (c.owner.as_deref() != Some(user.id.as_str())
                        && c.mine_in == 0
                        && c.others_held < 2
                        && c.verdicts_in < 2);
                if ok && dual_open {
                    return Ok(Some(c.id.clone()));
                }
            }
            match batch.last() {
                Some(last) if full => {
                    at = last.created_at;
                    id = last.id.clone();
                }
                _ => break,
            }
        }
    }
    Ok(None)
}

async fn candidates(
    db: &Db,
    user: &CurrentUser,
    now: i64,
    after_at: i64,
    after_id: &str,
    skip_id: &str,
) -> Result<Vec<Candidate>, AppError> {
    // Gate versions are keyed by gate and version, so the eligibility cache is too.
    let sql = "SELECT r.id, r.created_at, r.tier, v.definition, \
         r.gate_id || ':' || CAST(r.gate_version AS TEXT) AS gate_key, a.owner_user_id AS owner, \
         (SELECT COUNT(*) FROM review_halves h WHERE h.request_id = r.id \
            AND h.state_version = r.state_version AND h.reviewer_id = $2) AS mine_in, \
         (SELECT COUNT(*) FROM review_halves h WHERE h.request_id = r.id \
            AND h.state_version = r.state_version AND h.reviewer_id <> $2) AS others_held, \
         (SELECT COUNT(*) FROM review_halves h WHERE h.request_id = r.id \
            AND h.state_version = r.state_version AND h.verdict IS NOT NULL) AS verdicts_in \
         FROM action_requests r JOIN agents a ON a.id = r.agent_id \
         LEFT JOIN gate_versions v ON v.gate_id = r.gate_id AND v.version = r.gate_version \
         WHERE r.status IN ('pending', 'in_review', 'escalated') \
         AND (r.created_at > $3 OR (r.created_at = $3 AND r.id > $4)) AND r.id <> $5 \
         AND (r.acting_for IS NULL OR (r.acting_for <> $2 AND LOWER(r.acting_for) <> LOWER($6))) \
         AND NOT EXISTS (SELECT 1 FROM request_claims c WHERE c.request_id = r.id \
            AND c.user_id <> $2 AND c.expires_at > $1) \
         ORDER BY r.created_at, r.id LIMIT $7";
    let rows: Vec<Candidate> = on_db!(db, |p| sqlx::query_as(sql)
        .bind(now)
        .bind(&user.id)
        .bind(after_at)
        .bind(after_id)
        .bind(skip_id)
        .bind(&user.email)
        .bind(BATCH)
        .fetch_all(p)
        .await)?;
    Ok(rows)
}
