//! What an agent sees of its request: in the submit response, the status endpoint and webhooks.

use crate::domain::time::iso_utc;
use crate::on_db;
use crate::server::db::Db;
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct GateRef {
    pub key: String,
    pub name: String,
    pub version: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Reviewer {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DecisionView {
    /// approve, approve_with_edit, reject or expire.
    pub kind: String,
    pub reason_code: Option<String>,
    pub reason: Option<String>,
    /// Everyone whose decision made the outcome, once each: one reviewer, or both reviewers of
    /// a dual review (and the senior reviewer who settled their disagreement).
    pub decided_by: Vec<Reviewer>,
    pub decided_at: String,
    /// Every rejection behind the outcome with its reviewer: both when both dual reviewers
    /// rejected. Empty for an approval.
    #[serde(default)]
    pub reasons: Vec<ReasonView>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ReasonView {
    /// `None` for Countersign itself (an expiry).
    pub reviewer: Option<Reviewer>,
    pub reason_code: Option<String>,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ActionView {
    pub id: String,
    pub status: String,
    pub tier: String,
    pub action_type: String,
    pub gate: Option<GateRef>,
    pub matched_rules: Vec<String>,
    pub explanation: String,
    pub created_at: String,
    pub deadline: Option<String>,
    pub decision: Option<DecisionView>,
    /// The payload the agent may execute: the edited one after approve-with-edit.
    pub approved_payload: Option<Value>,
    pub approved_payload_sha256: Option<String>,
    /// Present while approved and not yet used in an execution report.
    pub approval_token: Option<String>,
    pub status_url: String,
}

#[derive(sqlx::FromRow)]
struct Row {
    id: String,
    status: String,
    tier: String,
    action_type: String,
    payload: String,
    explanation: String,
    matched_rules: String,
    created_at: i64,
    deadline_at: Option<i64>,
    gate_key: Option<String>,
    gate_name: Option<String>,
    gate_version: Option<i64>,
}

#[derive(sqlx::FromRow)]
struct DecisionRow {
    kind: String,
    reason_code: Option<String>,
    reason_text: Option<String>,
    reviewer_id: Option<String>,
    reviewer_name: Option<String>,
    edited_payload: Option<String>,
    state_version: i64,
    created_at: i64,
}

/// The view of `request_id` if it belongs to `agent_id`.
pub async fn load(
    db: &Db,
    agent_id: &str,
    request_id: &str,
) -> Result<Option<ActionView>, sqlx::Error> {
    let row: Option<Row> = on_db!(db, |p| {
        sqlx::query_as(
        "SELECT r.id, r.status, r.tier, r.action_type, r.payload, r.explanation, r.matched_rules, \
         r.created_at, r.deadline_at, g.key AS gate_key, g.name AS gate_name, r.gate_version \
         FROM action_requests r LEFT JOIN gates g ON g.id = r.gate_id WHERE r.id = $1 AND r.agent_id = $2"
    )
    .bind(request_id)
    .bind(agent_id)
    .fetch_optional(p)
    .await
    })?;
    let Some(r) = row else { return Ok(None) };
    // Final decisions only (escalations are steps on the way, not outcomes).
    let decisions: Vec<DecisionRow> = on_db!(db, |p| {
        sqlx::query_as(
        "SELECT d.kind, d.reason_code, d.reason_text, d.reviewer_id, u.display_name AS reviewer_name, \
         d.edited_payload, d.state_version, d.created_at FROM decisions d LEFT JOIN users u ON u.id = d.reviewer_id \
         WHERE d.request_id = $1 AND d.kind <> 'escalate' ORDER BY d.created_at, d.id"
    )
    .bind(request_id)
    .fetch_all(p)
    .await
    })?;
    let token: Option<(String, String, Option<i64>)> = on_db!(db, |p| sqlx::query_as(
        "SELECT token, payload_sha256, consumed_at FROM approval_tokens WHERE request_id = $1"
    )
    .bind(request_id)
    .fetch_optional(p)
    .await)?;
    let approved = matches!(
        r.status.as_str(),
        "approved" | "approved_with_edit" | "executed" | "execution_failed"
    );
    // While a request is open its decision rows are steps on the way (the two halves of a dual
    // review waiting for a senior reviewer), not an outcome.
    let open = r
        .status
        .parse::<crate::domain::status::Status>()
        .is_ok_and(crate::domain::status::Status::is_open);
    let last = decisions.last().filter(|_| !open);
    // The outcome-deciding decision is the last one; only an approval with edit changes what
    // may be executed (a senior may approve the proposal over an earlier reviewer's edit).
    let edited = last
        .filter(|d| d.kind == "approve_with_edit")
        .and_then(|d| d.edited_payload.clone());
    let approved_payload = approved.then(|| {
        serde_json::from_str(edited.as_deref().unwrap_or(&r.payload)).unwrap_or(Value::Null)
    });
    let reviewer = |d: &DecisionRow| {
        Some(Reviewer {
            id: d.reviewer_id.clone()?,
            name: d.reviewer_name.clone().unwrap_or_default(),
        })
    };
    let decision = last.map(|last| {
        let mut decided_by: Vec<Reviewer> = Vec::new();
        for who in decisions.iter().filter_map(reviewer) {
            if !decided_by.iter().any(|r| r.id == who.id) {
                decided_by.push(who);
            }
        }
        let reasons = if matches!(last.kind.as_str(), "reject" | "expire") {
            decisions
                .iter()
                .filter(|d| d.kind == last.kind && d.state_version == last.state_version)
                .map(|d| ReasonView {
                    reviewer: reviewer(d),
                    reason_code: d.reason_code.clone(),
                    reason: d.reason_text.clone(),
                })
                .collect()
        } else {
            Vec::new()
        };
        DecisionView {
            kind: last.kind.clone(),
            reason_code: last.reason_code.clone(),
            reason: last.reason_text.clone(),
            decided_by,
            decided_at: iso_utc(last.created_at),
            reasons,
        }
    });
    Ok(Some(ActionView {
        status_url: format!("/api/v1/actions/{}", r.id),
        id: r.id,
        status: r.status,
        tier: r.tier,
        action_type: r.action_type,
        gate: match (r.gate_key, r.gate_name, r.gate_version) {
            (Some(key), Some(name), Some(version)) => Some(GateRef { key, name, version }),
            _ => None,
        },
        matched_rules: serde_json::from_str(&r.matched_rules).unwrap_or_default(),
        explanation: r.explanation,
        created_at: iso_utc(r.created_at),
        deadline: r.deadline_at.map(iso_utc),
        decision,
        approved_payload,
        approved_payload_sha256: token.as_ref().map(|t| t.1.clone()),
        approval_token: token.filter(|t| t.2.is_none() && approved).map(|t| t.0),
    }))
}
