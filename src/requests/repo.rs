//! Storage of action requests, their state versions and decisions (both engines).

use crate::on_tx;
use crate::server::db::Tx;
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

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Inserts a request and its first state version in the caller's transaction.
pub async fn insert(tx: &mut Tx, r: &NewActionRequest) -> Result<(), sqlx::Error> {
    on_tx!(tx, |c| {
        sqlx::query(
            "INSERT INTO action_requests (id, agent_id, idempotency_key, body_sha256, action_type, \
             title, payload, current_state, inputs, reasoning, alternatives, confidence, amount_minor, \
             currency, counterparty, customer_tier, record_count, recipient_count, risk_class, \
             acting_for, tenant, callback_url, deadline_at, tier, status, gate_id, gate_version, \
             matched_rules, explanation, state_version, created_at, updated_at, decided_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, \
             $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28, $29, 1, $30, $30, $31)",
        )
        .bind(&r.id)
        .bind(&r.agent_id)
        .bind(&r.idempotency_key)
        .bind(&r.body_sha256)
        .bind(&r.action_type)
        .bind(&r.title)
        .bind(&r.payload)
        .bind(&r.current_state)
        .bind(&r.inputs)
        .bind(&r.reasoning)
        .bind(&r.alternatives)
        .bind(r.confidence)
        .bind(r.amount_minor)
        .bind(&r.currency)
        .bind(&r.counterparty)
        .bind(&r.customer_tier)
        .bind(r.record_count)
        .bind(r.recipient_count)
        .bind(&r.risk_class)
        .bind(&r.acting_for)
        .bind(&r.tenant)
        .bind(&r.callback_url)
        .bind(r.deadline_at)
        .bind(&r.tier)
        .bind(&r.status)
        .bind(&r.gate_id)
        .bind(r.gate_version)
        .bind(&r.matched_rules)
        .bind(&r.explanation)
        .bind(r.created_at)
        .bind(r.decided_at)
        .execute(&mut *c)
        .await?;
        let snapshot = r.snapshot().to_string();
        sqlx::query(
            "INSERT INTO request_states (request_id, version, content_sha256, snapshot, cause, created_at) \
             VALUES ($1, 1, $2, $3, 'received', $4)",
        )
        .bind(&r.id)
        .bind(sha256_hex(snapshot.as_bytes()))
        .bind(&snapshot)
        .bind(r.created_at)
        .execute(&mut *c)
        .await?;
        Ok(())
    })
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
