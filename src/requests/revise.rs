//! An agent revises its own open request (`POST /api/v1/actions/{id}/revise`): a new payload, and
//! optionally new wording, reasoning, inputs, alternatives or current record. The revision is a
//! new state version of the same request (with its snapshot and content hash), so a reviewer
//! who loaded the older version is refused with "changed since you opened it" (invariant 4) and
//! shown what changed. The gating facts (amount, counts, tiers, confidence) stay as submitted:
//! an agent that needs to change those submits a new request that `supersedes` this one.

use super::repo::sha256_hex;
use crate::api::auth::Agent;
use crate::api::checkpoint::MAX_PAYLOAD_BYTES;
use crate::api::problem::Problem;
use crate::audit::repo::{append, Actor};
use crate::on_tx;
use crate::server::{now_ms, AppState};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Revision {
    pub payload: Value,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub reasoning: Option<String>,
    #[serde(default)]
    pub current_state: Option<Value>,
    #[serde(default)]
    pub inputs: Option<Value>,
    #[serde(default)]
    pub alternatives: Option<Value>,
}

fn check(r: &Revision) -> Result<(), Problem> {
    if r.payload.is_null() {
        return Err(Problem::invalid(
            "payload",
            "is required: the exact action the agent would execute",
        ));
    }
    for (field, v) in [
        ("payload", Some(&r.payload)),
        ("current_state", r.current_state.as_ref()),
        ("inputs", r.inputs.as_ref()),
        ("alternatives", r.alternatives.as_ref()),
    ] {
        if v.is_some_and(|v| v.to_string().len() > MAX_PAYLOAD_BYTES) {
            return Err(Problem::invalid(
                field,
                format!("is larger than {MAX_PAYLOAD_BYTES} bytes"),
            ));
        }
    }
    if r.title.as_ref().is_some_and(|t| t.chars().count() > 200) {
        return Err(Problem::invalid("title", "must be at most 200 characters"));
    }
    if r.reasoning
        .as_ref()
        .is_some_and(|t| t.chars().count() > 20_000)
    {
        return Err(Problem::invalid(
            "reasoning",
            "must be at most 20000 characters",
        ));
    }
    Ok(())
}

/// `POST /api/v1/actions/{id}/revise`: answers with the request's view (its new state version
/// is in the audit trail and on the reviewer's page).
pub async fn revise(
    State(state): State<AppState>,
    agent: Agent,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, Problem> {
    let r: Revision = serde_json::from_slice(&body)
        .map_err(|e| Problem::invalid("body", format!("is not a valid revision: {e}")))?;
    check(&r)?;
    let now = now_ms();
    let mut tx = state.db.begin_write().await?;
    // Locked, so a decision on the old version and this revision cannot both succeed.
    let sql = format!(
        "SELECT status, state_version FROM action_requests WHERE id = $1 AND agent_id = $2{}",
        tx.row_lock()
    );
    let row: Option<(String, i64)> = on_tx!(&mut tx, |c| sqlx::query_as(&sql)
        .bind(&id)
        .bind(&agent.id)
        .fetch_optional(&mut *c)
        .await)?;
    let (status, version) = row.ok_or_else(Problem::not_found)?;
    if !matches!(status.as_str(), "pending" | "in_review" | "escalated") {
        return Err(Problem::conflict(
            "not-open",
            "The request is no longer open",
            format!("it is {status}; only open requests can be revised"),
        ));
    }
    let settings = crate::gates::eligibility::settings_of_tx(&mut tx, &id).await?;
    if let Some(schema) = &settings.payload_schema {
        let compiled = crate::domain::payload_schema::compile(schema)
            .map_err(|e| Problem::from(crate::error::internal(format!("stored schema: {e:?}"))))?;
        if let Err(v) = crate::domain::payload_schema::validate(&compiled, &r.payload) {
            return Err(Problem::invalid(
                &format!("payload{}", v[0].path),
                format!("does not fit the gate's payload schema: {}", v[0].message),
            ));
        }
    }
    let snapshot: Option<String> = on_tx!(&mut tx, |c| sqlx::query_scalar(
        "SELECT snapshot FROM request_states WHERE request_id = $1 AND version = $2"
    )
    .bind(&id)
    .bind(version)
    .fetch_optional(&mut *c)
    .await)?;
    let mut snap: Value = snapshot
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or_else(|| json!({}));
    snap["payload"] = r.payload.clone();
    if let Some(t) = &r.title {
        snap["title"] = json!(t);
    }
    if let Some(t) = &r.reasoning {
        snap["reasoning"] = json!(t);
    }
    for (k, v) in [
        ("current_state", &r.current_state),
        ("inputs", &r.inputs),
        ("alternatives", &r.alternatives),
    ] {
        if let Some(v) = v {
            snap[k] = v.clone();
        }
    }
    let text = |k: &str| snap.get(k).filter(|v| !v.is_null()).map(|v| v.to_string());
    let next = version + 1;
    let snapshot = snap.to_string();
    let str_of = |k: &str| {
        snap.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    on_tx!(&mut tx, |c| {
        sqlx::query(
            "UPDATE action_requests SET payload = $2, title = $3, reasoning = $4, current_state = $5, \
             inputs = $6, alternatives = $7, state_version = $8, updated_at = $9 WHERE id = $1",
        )
        .bind(&id)
        .bind(r.payload.to_string())
        .bind(str_of("title"))
        .bind(str_of("reasoning"))
        .bind(text("current_state"))
        .bind(text("inputs"))
        .bind(text("alternatives"))
        .bind(next)
        .bind(now)
        .execute(&mut *c)
        .await?;
        sqlx::query(
            "INSERT INTO request_states (request_id, version, content_sha256, snapshot, cause, created_at) \
             VALUES ($1, $2, $3, $4, 'revised', $5)",
        )
        .bind(&id)
        .bind(next)
        .bind(sha256_hex(snapshot.as_bytes()))
        .bind(&snapshot)
        .bind(now)
        .execute(&mut *c)
        .await
        .map(|_| ())
    })?;
    append(
        &mut tx,
        &Actor::Agent(agent.id.clone()),
        "request_revised",
        Some(&id),
        json!({"from_version": version, "state_version": next, "content_sha256": sha256_hex(snapshot.as_bytes())}),
        now,
    )
    .await?;
    tx.commit().await?;
    state.notify_changed();
    let view = crate::api::view::load(&state.db, &agent.id, &id)
        .await?
        .ok_or_else(Problem::not_found)?;
    Ok(Json(view).into_response())
}
