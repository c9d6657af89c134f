//! Storage of action requests, their state versions and decisions (both engines).

use crate::on_tx;
use crate::server::db::Tx;
use crate::server::rows::{self, Val};
use sha2::{Digest, Sha256};

/// Everything stored when a request is accepted and gated.
#[derive(Debug, Clone)]
pub struct NewActionRequest {
    pub id: String,
    pub agent_id: String,
    pub idempotency_key: String,
    pub body_sha256: String,
    pub action_type: String,
    /// The agent's one-line description of the action, e.g. "Refund 83.51 EUR to Contoso".
    pub title: String,
    pub payload: String,
    pub current_state: Option<String>,
    pub inputs: Option<String>,
    pub reasoning: String,
    pub alternatives: Option<String>,
    pub confidence: Option<f64>,
    pub amount_minor: Option<i64>,
    pub currency: Option<String>,
    pub counterparty: Option<String>,
    pub customer_tier: Option<String>,
    pub record_count: Option<i64>,
    pub recipient_count: Option<i64>,
    pub risk_class: Option<String>,
    pub acting_for: Option<String>,
    pub tenant: Option<String>,
    pub callback_url: Option<String>,
    pub deadline_at: Option<i64>,
    pub tier: String,
    pub status: String,
    pub gate_id: Option<String>,
    pub gate_version: Option<i64>,
    pub matched_rules: String,
    pub explanation: String,
    pub created_at: i64,
    pub decided_at: Option<i64>,
}

impl NewActionRequest {
    /// The reviewer-visible content of the request, as stored in its first state version.
    pub fn snapshot(&self) -> serde_json::Value {
        let parse = |s: &Option<String>| {
            s.as_deref()
                .map(|t| serde_json::from_str(t).unwrap_or(serde_json::Value::String(t.to_owned())))
        };
        serde_json::json!({
            "action_type": self.action_type,
            "title": self.title,
            "payload": serde_json::from_str::<serde_json::Value>(&self.payload).unwrap_or_default(),
            "current_state": parse(&self.current_state),
            "inputs": parse(&self.inputs),
            "reasoning": self.reasoning,
            "alternatives": parse(&self.alternatives),
            "confidence": self.confidence,
            "amount_minor": self.amount_minor,
            "currency": self.currency,
            "counterparty": self.counterparty,
            "customer_tier": self.customer_tier,
            "record_count": self.record_count,
            "recipient_count": self.recipient_count,
            "risk_class": self.risk_class,
            "acting_for": self.acting_for,
            "tenant": self.tenant,
            "deadline_at": self.deadline_at,
        })
    }
}

/// A request's first state version: its [`snapshot`](NewActionRequest::snapshot) as JSON text,
/// and the SHA-256 of that text.
#[derive(Debug, Clone)]
pub struct FirstState {
    pub content_sha256: String,
    pub snapshot: String,
}

impl NewActionRequest {
    pub fn first_state(&self) -> FirstState {
        let snapshot = self.snapshot().to_string();
        FirstState {
            content_sha256: sha256_hex(snapshot.as_bytes()),
            snapshot,
        }
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Inserts a request and its first state version in the caller's transaction.
pub async fn insert(tx: &mut Tx, r: &NewActionRequest) -> Result<(), sqlx::Error> {
    insert_all(tx, &[(r, &r.first_state())]).await
}

/// Inserts requests and their first state versions in the caller's transaction, one statement
/// per table for all of them.
pub async fn insert_all(
    tx: &mut Tx,
    all: &[(&NewActionRequest, &FirstState)],
) -> Result<(), sqlx::Error> {
    let mut columns = rows::bound(32);
    columns.insert(29, Some("1")); // state_version
    let mut vals: Vec<Val> = Vec::with_capacity(all.len() * 32);
    for (r, _) in all {
        vals.extend([
            Val::from(&r.id),
            (&r.agent_id).into(),
            (&r.idempotency_key).into(),
            (&r.body_sha256).into(),
            (&r.action_type).into(),
            (&r.title).into(),
            (&r.payload).into(),
            (&r.current_state).into(),
            (&r.inputs).into(),
            (&r.reasoning).into(),
            (&r.alternatives).into(),
            r.confidence.into(),
            r.amount_minor.into(),
            (&r.currency).into(),
            (&r.counterparty).into(),
            (&r.customer_tier).into(),
            r.record_count.into(),
            r.recipient_count.into(),
            (&r.risk_class).into(),
            (&r.acting_for).into(),
            (&r.tenant).into(),
            (&r.callback_url).into(),
            r.deadline_at.into(),
            (&r.tier).into(),
            (&r.status).into(),
            (&r.gate_id).into(),
            r.gate_version.into(),
            (&r.matched_rules).into(),
            (&r.explanation).into(),
            r.created_at.into(),
            r.created_at.into(),
            r.decided_at.into(),
        ]);
    }
    rows::insert(
        tx,
        "INSERT INTO action_requests (id, agent_id, idempotency_key, body_sha256, action_type, \
         title, payload, current_state, inputs, reasoning, alternatives, confidence, amount_minor, \
         currency, counterparty, customer_tier, record_count, recipient_count, risk_class, \
         acting_for, tenant, callback_url, deadline_at, tier, status, gate_id, gate_version, \
         matched_rules, explanation, state_version, created_at, updated_at, decided_at)",
        &columns,
        &vals,
    )
    .await?;
    let mut vals: Vec<Val> = Vec::with_capacity(all.len() * 4);
    for (r, first) in all {
        vals.extend([
            Val::from(&r.id),
            (&first.content_sha256).into(),
            (&first.snapshot).into(),
            r.created_at.into(),
        ]);
    }
    rows::insert(
        tx,
        "INSERT INTO request_states (request_id, version, content_sha256, snapshot, cause, created_at)",
        &[None, Some("1"), None, None, Some("'received'"), None],
        &vals,
    )
    .await?;
    Ok(())
}

#[derive(Debug, Clone)]
pub struct NewDecision {
    pub id: String,
    pub request_id: String,
    pub reviewer_id: Option<String>,
    pub kind: &'static str,
    pub state_version: i64,
    pub edited_payload: Option<String>,
    pub reason_code: Option<String>,
    pub reason_text: Option<String>,
    pub created_at: i64,
}

pub async fn insert_decision(tx: &mut Tx, d: &NewDecision) -> Result<(), sqlx::Error> {
    on_tx!(tx, |c| {
        sqlx::query(
            "INSERT INTO decisions (id, request_id, reviewer_id, kind, state_version, edited_payload, \
             reason_code, reason_text, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&d.id)
        .bind(&d.request_id)
        .bind(&d.reviewer_id)
        .bind(d.kind)
        .bind(d.state_version)
        .bind(&d.edited_payload)
        .bind(&d.reason_code)
        .bind(&d.reason_text)
        .bind(d.created_at)
        .execute(&mut *c)
        .await?;
        Ok(())
    })
}

/// Moves a request to `status` (the caller checked the lifecycle allows it).
pub async fn set_status(
    tx: &mut Tx,
    request_id: &str,
    status: &str,
    at: i64,
    decided: bool,
) -> Result<(), sqlx::Error> {
    on_tx!(tx, |c| {
        sqlx::query(
            "UPDATE action_requests SET status = $2, updated_at = $3, \
             decided_at = CASE WHEN $4 THEN $3 ELSE decided_at END WHERE id = $1",
        )
        .bind(request_id)
        .bind(status)
        .bind(at)
        .bind(decided)
        .execute(&mut *c)
        .await?;
        Ok(())
    })
}
