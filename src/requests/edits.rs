//! Reviewers' edits, kept apart from the decisions that approved them: the proposal, the edit
//! and the field-by-field difference (the edit is training signal for the agent).

use crate::domain::diff::{field_diff, FieldChange};
use crate::on_tx;
use crate::server::db::Tx;
use crate::server::ids;
use serde_json::Value;

pub struct NewEdit<'a> {
    pub request_id: &'a str,
    pub decision_id: &'a str,
    pub reviewer_id: &'a str,
    pub state_version: i64,
    pub original: &'a Value,
    pub edited: &'a Value,
}

/// The changed fields only, as stored in `payload_edits.diff`.
pub fn changes(original: &Value, edited: &Value) -> Vec<FieldChange> {
    field_diff(original, edited)
        .into_iter()
        .filter(|c| !matches!(c, FieldChange::Unchanged { .. }))
        .collect()
}

/// Stores one edit in the caller's (deciding) transaction.
pub async fn record(tx: &mut Tx, e: &NewEdit<'_>, now: i64) -> Result<(), sqlx::Error> {
    let diff = serde_json::to_string(&changes(e.original, e.edited)).unwrap_or_default();
    on_tx!(tx, |c| sqlx::query(
        "INSERT INTO payload_edits (id, request_id, decision_id, reviewer_id, state_version, \
         original, edited, diff, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
    )
    .bind(ids::new_id("edt"))
    .bind(e.request_id)
    .bind(e.decision_id)
    .bind(e.reviewer_id)
    .bind(e.state_version)
    .bind(e.original.to_string())
    .bind(e.edited.to_string())
    .bind(diff)
    .bind(now)
    .execute(&mut *c)
    .await
    .map(|_| ()))
}
