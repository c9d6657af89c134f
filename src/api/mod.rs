//! The agent API, `/api/v1`: submit a checkpoint, learn the decision (long-poll or webhook),
//! withdraw, and report execution with the approval token.

pub mod auth;
pub mod checkpoint;
pub mod client;
pub mod group_commit;
pub mod openapi;
pub mod problem;
pub mod submit;
pub mod tokens;
pub mod view;

use crate::audit::repo::{append, Actor};
use crate::on_tx;
use crate::server::{now_ms, AppState};
use auth::Agent;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use problem::Problem;
use serde::Deserialize;
use serde_json::json;
use std::time::Duration;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/actions", post(submit::submit))
        .route("/api/v1/actions/{id}", get(status))
        .route("/api/v1/actions/{id}/withdraw", post(withdraw))
        .route(
            "/api/v1/actions/{id}/revise",
            post(crate::requests::revise::revise),
        )
        .route("/api/v1/actions/{id}/execution", post(execution))
        .route(
            "/api/v1/openapi.json",
            get(|| async { Json(openapi::document()) }),
        )
}

/// The longest a status request may wait for a decision.
pub const MAX_WAIT: Duration = Duration::from_secs(60);

/// Parses `wait`: "30s", "30", "1500ms" or "1m"; at most [`MAX_WAIT`].
pub fn parse_wait(s: &str) -> Result<Duration, Problem> {
    let bad = || {
        Problem::invalid(
            "wait",
            "must be a duration such as 30s, 1500ms or 1m, at most 60s",
        )
    };
    let (digits, unit) = s
        .find(|c: char| !c.is_ascii_digit())
        .map(|i| s.split_at(i))
        .unwrap_or((s, "s"));
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let d = match unit {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.saturating_mul(60)),
        _ => return Err(bad()),
    };
    if d > MAX_WAIT {
        return Err(bad());
    }
    Ok(d)
}

#[derive(Deserialize)]
pub struct StatusQuery {
    wait: Option<String>,
}

/// `GET /api/v1/actions/{id}[?wait=30s]`: the request's status; with `wait`, answers as soon as
/// it is no longer open (or when the wait ends).
async fn status(
    State(state): State<AppState>,
    agent: Agent,
    Path(id): Path<String>,
    query: Result<Query<StatusQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, Problem> {
    // A malformed query (e.g. `wait` twice) gets problem details like every other 400.
    let Query(q) = query
        .map_err(|_| Problem::invalid("wait", "must be given at most once, e.g. ?wait=30s"))?;
    let wait = q
        .wait
        .as_deref()
        .map(parse_wait)
        .transpose()?
        .unwrap_or_default();
    let deadline = tokio::time::Instant::now() + wait;
    let mut changes = state.subscribe();
    loop {
        let view = view::load(&state.db, &agent.id, &id)
            .await?
            .ok_or_else(Problem::not_found)?;
        let open = matches!(view.status.as_str(), "pending" | "in_review" | "escalated");
        if !open || tokio::time::Instant::now() >= deadline || state.is_closing() {
            return Ok(Json(view).into_response());
        }
        // Wake on a change in this process, and re-read at least every second for changes made
        // by other processes.
        let nap = (deadline - tokio::time::Instant::now()).min(Duration::from_secs(1));
        let _ = tokio::time::timeout(nap, changes.changed()).await;
    }
}

/// `POST /api/v1/actions/{id}/withdraw`: the agent no longer wants a pending action.
async fn withdraw(
    State(state): State<AppState>,
    agent: Agent,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let now = now_ms();
    let mut tx = state.db.begin_write().await?;
    let sql = format!(
        "SELECT status, callback_url FROM action_requests WHERE id = $1 AND agent_id = $2{}",
        tx.row_lock()
    );
    let row: Option<(String, Option<String>)> = on_tx!(&mut tx, |c| sqlx::query_as(&sql)
        .bind(&id)
        .bind(&agent.id)
        .fetch_optional(&mut *c)
        .await)?;
    let (status, callback) = row.ok_or_else(Problem::not_found)?;
    if !matches!(status.as_str(), "pending" | "in_review" | "escalated") {
        return Err(Problem::conflict(
            "not-open",
            "The request is no longer open",
            format!("it is {status}; only open requests can be withdrawn"),
        ));
    }
    crate::requests::repo::set_status(&mut tx, &id, "withdrawn", now, true).await?;
    crate::requests::lifecycle::enqueue_webhook(&mut tx, &id, callback.as_deref(), now).await?;
    append(
        &mut tx,
        &Actor::Agent(agent.id.clone()),
        "withdrawn",
        Some(&id),
        json!({}),
        now,
    )
    .await?;
    tx.commit().await?;
    state.notify_changed();
    crate::server::live::publish(&state, crate::server::live::LiveEvent::decided(&id));
    let view = view::load(&state.db, &agent.id, &id)
        .await?
        .ok_or_else(Problem::not_found)?;
    Ok(Json(view).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecutionReport {
    approval_token: String,
    /// The payload actually executed; must be the approved one.
    payload: serde_json::Value,
    /// "succeeded" or "failed".
    outcome: String,
    #[serde(default)]
    detail: Option<String>,
}

/// `POST /api/v1/actions/{id}/execution`: the agent reports what it executed. The token must be
/// this request's, unused, and bound to the SHA-256 of exactly this payload (invariant 1).
async fn execution(
    State(state): State<AppState>,
    agent: Agent,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, Problem> {
    let report: ExecutionReport = serde_json::from_slice(&body).map_err(|e| {
        let msg = e.to_string();
        let field = msg.split('`').nth(1).unwrap_or("body").to_owned();
        Problem::invalid(
            &field,
            msg.split(" at line ").next().unwrap_or(&msg).to_owned(),
        )
    })?;
    let succeeded = match report.outcome.as_str() {
        "succeeded" => true,
        "failed" => false,
        _ => return Err(Problem::invalid("outcome", "must be succeeded or failed")),
    };
    let now = now_ms();
    let payload_hash = crate::requests::lifecycle::payload_sha256(&report.payload);
    let mut tx = state.db.begin_write().await?;
    let owned: Option<(String,)> = on_tx!(&mut tx, |c| sqlx::query_as(
        "SELECT status FROM action_requests WHERE id = $1 AND agent_id = $2"
    )
    .bind(&id)
    .bind(&agent.id)
    .fetch_optional(&mut *c)
    .await)?;
    owned.ok_or_else(Problem::not_found)?;
    let token: Option<(String, String, Option<i64>)> = on_tx!(&mut tx, |c| sqlx::query_as(
        "SELECT token, payload_sha256, consumed_at FROM approval_tokens WHERE request_id = $1"
    )
    .bind(&id)
    .fetch_optional(&mut *c)
    .await)?;
    let refusal = match &token {
        None => Some((
            "no-approval",
            "This request was not approved",
            "there is no approval token for it; nothing may execute",
        )),
        Some((t, _, _)) if !constant_time_eq(t.as_bytes(), report.approval_token.as_bytes()) => {
            Some((
                "wrong-token",
                "Wrong approval token",
                "the approval token does not belong to this request",
            ))
        }
        Some((_, _, Some(_))) => Some((
            "token-used",
            "Approval token already used",
            "an approval token is single-use",
        )),
        Some((_, bound, _)) if *bound != payload_hash => Some((
            "payload-mismatch",
            "Payload differs from the approved one",
            "the executed payload must be exactly the approved (possibly edited) payload",
        )),
        _ => None,
    };
    if let Some((slug, title, detail)) = refusal {
        // The refusal itself is evidence: record it even though nothing else changes.
        append(
            &mut tx,
            &Actor::Agent(agent.id.clone()),
            "execution_refused",
            Some(&id),
            json!({"reason": slug, "payload_sha256": payload_hash}),
            now,
        )
        .await?;
        tx.commit().await?;
        let mut p = Problem::conflict(slug, title, detail);
        p.status = StatusCode::FORBIDDEN.as_u16();
        p.field = Some(
            if slug == "payload-mismatch" {
                "payload"
            } else {
                "approval_token"
            }
            .into(),
        );
        return Err(p);
    }
    let detail = report
        .detail
        .map(|d| d.chars().take(2000).collect::<String>());
    on_tx!(&mut tx, |c| {
        sqlx::query("UPDATE approval_tokens SET consumed_at = $2 WHERE request_id = $1 AND consumed_at IS NULL")
            .bind(&id)
            .bind(now)
            .execute(&mut *c)
            .await?;
        sqlx::query(
            "INSERT INTO execution_reports (id, request_id, outcome, payload_sha256, detail, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(crate::server::ids::new_id("exe"))
        .bind(&id)
        .bind(&report.outcome)
        .bind(&payload_hash)
        .bind(&detail)
        .bind(now)
        .execute(&mut *c)
        .await?;
    });
    let next = if succeeded {
        "executed"
    } else {
        "execution_failed"
    };
    crate::requests::repo::set_status(&mut tx, &id, next, now, false).await?;
    append(
        &mut tx,
        &Actor::Agent(agent.id.clone()),
        "execution_reported",
        Some(&id),
        json!({"outcome": report.outcome, "payload_sha256": payload_hash, "detail": detail}),
        now,
    )
    .await?;
    tx.commit().await?;
    state.notify_changed();
    let view = view::load(&state.db, &agent.id, &id)
        .await?
        .ok_or_else(Problem::not_found)?;
    Ok(Json(view).into_response())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_parse_with_units_and_a_ceiling() {
        assert_eq!(parse_wait("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_wait("30").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_wait("1500ms").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_wait("1m").unwrap(), Duration::from_secs(60));
        for bad in [
            "",
            "s",
            "-1s",
            "61s",
            "2m",
            "1h",
            "99999999999999999999s",
            "1.5s",
        ] {
            assert!(parse_wait(bad).is_err(), "{bad}");
        }
    }
}
