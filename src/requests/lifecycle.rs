//! State changes of an action request after it was gated: decisions, approval tokens, the
//! webhook outbox entry that tells the agent, and the audit events that record it, all in one
//! transaction so an acknowledged decision and its notification survive a crash together.

use super::repo::{self as requests, sha256_hex, NewDecision};
use crate::accounts::CurrentUser;
use crate::audit::repo::{append, Actor};
use crate::domain::status::Status;
use crate::error::AppError;
use crate::on_tx;
use crate::server::db::Tx;
use crate::server::rows::{self, Val};
use crate::server::{ids, now_ms, AppState};
use serde_json::{json, Value};

/// JSON with object keys sorted at every level, so equal documents hash equally whatever the
/// order their keys arrived in.
pub fn canonical_json(v: &Value) -> String {
    fn sorted(v: &Value) -> Value {
        match v {
            Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                let mut out = serde_json::Map::new();
                for k in keys {
                    out.insert(k.clone(), sorted(&m[k]));
                }
                Value::Object(out)
            }
            Value::Array(a) => Value::Array(a.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    // serde_json keeps insertion order when `preserve_order` is on (another crate may enable
    // it), so build the sorted map explicitly rather than relying on BTreeMap.
    sorted(v).to_string()
}

/// The SHA-256 an approval token is bound to: of the canonical JSON of the approved payload.
pub fn payload_sha256(payload: &Value) -> String {
    sha256_hex(canonical_json(payload).as_bytes())
}

/// Issues the single-use approval token for `request_id`, bound to `payload`.
pub async fn issue_approval_token(
    tx: &mut Tx,
    request_id: &str,
    payload: &Value,
    at: i64,
) -> Result<String, sqlx::Error> {
    let token = new_approval_token();
    store_approval_token(tx, &token, request_id, payload, at).await?;
    Ok(token)
}

/// A fresh approval token (256 random bits); it means nothing until it is stored.
pub fn new_approval_token() -> String {
    use base64::Engine as _;
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!(
        "cst_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// Stores `token` as the single-use approval token for `request_id`, bound to `payload`.
pub async fn store_approval_token(
    tx: &mut Tx,
    token: &str,
    request_id: &str,
    payload: &Value,
    at: i64,
) -> Result<(), sqlx::Error> {
    let sha = payload_sha256(payload);
    store_approval_tokens(tx, &[(token, request_id, &sha, at)]).await
}

/// [`store_approval_token`] for several requests at once: (token, request id, SHA-256 of the
/// approved payload from [`payload_sha256`], issued at) each.
pub async fn store_approval_tokens(
    tx: &mut Tx,
    tokens: &[(&str, &str, &str, i64)],
) -> Result<(), sqlx::Error> {
    let vals: Vec<Val> = tokens
        .iter()
        .flat_map(|&(token, request, sha, at)| {
            [token.into(), request.into(), sha.into(), at.into()]
        })
        .collect();
    rows::insert(
        tx,
        "INSERT INTO approval_tokens (token, request_id, payload_sha256, issued_at)",
        &rows::bound(4),
        &vals,
    )
    .await
    .map(|_| ())
}

/// Queues a webhook to the request's callback URL, if it has one. The body is built when it is
/// first sent, from the request's state then, and kept for every retry.
pub async fn enqueue_webhook(
    tx: &mut Tx,
    request_id: &str,
    callback_url: Option<&str>,
    at: i64,
) -> Result<(), sqlx::Error> {
    match callback_url {
        Some(url) => enqueue_webhooks(tx, &[(request_id, url, at)]).await,
        None => Ok(()),
    }
}

/// [`enqueue_webhook`] for several requests at once: (request id, callback URL, queued at) each.
pub async fn enqueue_webhooks(tx: &mut Tx, hooks: &[(&str, &str, i64)]) -> Result<(), sqlx::Error> {
    let ids: Vec<String> = hooks.iter().map(|_| ids::new_id("msg")).collect();
    let vals: Vec<Val> = hooks
        .iter()
        .zip(&ids)
        .flat_map(|(&(request, url, at), id)| {
            [id.into(), request.into(), url.into(), at.into(), at.into()]
        })
        .collect();
    rows::insert(
        tx,
        "INSERT INTO webhook_outbox (id, request_id, url, body, created_at, next_attempt_at)",
        &[None, None, None, Some("''"), None, None],
        &vals,
    )
    .await
    .map(|_| ())
}

/// What a reviewer decided.
#[derive(Debug, Clone)]
pub enum Verdict {
    Approve,
    ApproveWithEdit(Value),
    Reject {
        reason_code: Option<String>,
        reason: String,
    },
    /// Hand the request to the gate's escalation group (senior reviewers when it names none),
    /// with a note for them. The request stays open.
    Escalate {
        note: String,
    },
}

/// What deciding needs to know about a request as it stands.
#[derive(sqlx::FromRow)]
pub(crate) struct Current {
    pub status: String,
    pub tier: String,
    pub payload: String,
    pub acting_for: Option<String>,
    pub state_version: i64,
    pub callback_url: Option<String>,
}

/// Reads the request as it stands, in the deciding transaction, and holds its row until that
/// transaction ends, so two people deciding at once are served one after the other.
pub(crate) async fn current(tx: &mut Tx, request_id: &str) -> Result<Current, AppError> {
    let sql = format!(
        "SELECT status, tier, payload, acting_for, state_version, callback_url FROM action_requests WHERE id = $1{}",
        tx.row_lock()
    );
    let current: Option<Current> = on_tx!(tx, |c| {
        sqlx::query_as(&sql)
            .bind(request_id)
            .fetch_optional(&mut *c)
            .await
    })?;
    current.ok_or(AppError::NotFound)
}

/// Records `verdict` by `reviewer` on the request as it was at `state_version`.
pub async fn decide(
    state: &AppState,
    reviewer: &CurrentUser,
    request_id: &str,
    state_version: i64,
    verdict: Verdict,
) -> Result<Status, AppError> {
    if !reviewer.may_decide() {
        return Err(AppError::Forbidden);
    }
    let now = now_ms();
    let mut tx = state.db.begin_write().await?;
    let current = current(&mut tx, request_id).await?;
    let status: Status = current.status.parse().map_err(crate::error::internal)?;
    if !status.is_open() {
        return Err(AppError::Conflict(format!(
            "This request is already {}.",
            status.label().to_lowercase()
        )));
    }
    if current.state_version != state_version {
        return Err(AppError::Conflict(
            "This request changed since you opened it. Review the new version before deciding."
                .into(),
        ));
    }
    if current
        .acting_for
        .as_deref()
        .is_some_and(|a| a == reviewer.id || a.eq_ignore_ascii_case(&reviewer.email))
    {
        return Err(AppError::Conflict(
            "You cannot review a request made on your behalf.".into(),
        ));
    }
    let settings = crate::gates::eligibility::settings_of_tx(&mut tx, request_id).await?;
    let teams = crate::gates::eligibility::teams_of_tx(&mut tx, &reviewer.id).await?;
    if let Some(why) = crate::gates::eligibility::why_not(&settings, reviewer, &teams) {
        return Err(AppError::Conflict(why));
    }
    let original: Value = serde_json::from_str(&current.payload).map_err(crate::error::internal)?;
    if let Verdict::Escalate { note } = &verdict {
        let next = escalate(
            &mut tx, state, reviewer, request_id, &current, &settings, note, now,
        )
        .await?;
        tx.commit().await?;
        state.notify_changed();
        // Every inbox hears of it: the request moves up as escalated.
        crate::server::live::publish(state, crate::server::live::LiveEvent::decided(request_id));
        return Ok(next);
    }
    // Any decision ends the soft lock on the request, whoever held it.
    crate::inbox::claims::release_all(&mut tx, request_id).await?;
    match &verdict {
        Verdict::Approve | Verdict::Escalate { .. } => {}
        Verdict::ApproveWithEdit(p) => check_edit(&settings, &original, p)?,
        Verdict::Reject {
            reason_code,
            reason,
        } => check_rejection(&settings, reason_code.as_ref(), reason)?,
    }
    if current.tier == "dual" {
        let ctx = super::dual::DualContext {
            request_id,
            status,
            round: state_version,
            proposed: &original,
            acting_for: current.acting_for.as_deref(),
            callback_url: current.callback_url.as_deref(),
            settings: &settings,
        };
        let status =
            super::dual::submit(&mut tx, state, reviewer, &teams, &ctx, verdict.into(), now)
                .await?;
        tx.commit().await?;
        state.notify_changed();
        crate::server::live::publish(state, crate::server::live::LiveEvent::decided(request_id));
        return Ok(status);
    }
    let (kind, next, edited, reason_code, reason) = match &verdict {
        Verdict::Approve | Verdict::Escalate { .. } => {
            ("approve", Status::Approved, None, None, None)
        }
        Verdict::ApproveWithEdit(p) => (
            "approve_with_edit",
            Status::ApprovedWithEdit,
            Some(p.clone()),
            None,
            None,
        ),
        Verdict::Reject {
            reason_code,
            reason,
        } => (
            "reject",
            Status::Rejected,
            None,
            reason_code.clone(),
            Some(reason.trim().to_owned()),
        ),
    };
    let decision_id = ids::new_id("dec");
    requests::insert_decision(
        &mut tx,
        &NewDecision {
            id: decision_id.clone(),
            request_id: request_id.to_owned(),
            reviewer_id: Some(reviewer.id.clone()),
            kind,
            state_version,
            edited_payload: edited.as_ref().map(|p| p.to_string()),
            reason_code: reason_code.clone(),
            reason_text: reason.clone().filter(|r| !r.is_empty()),
            created_at: now,
        },
    )
    .await?;
    append(
        &mut tx,
        &Actor::User(reviewer.id.clone()),
        "decision",
        Some(request_id),
        json!({"kind": kind, "state_version": state_version, "reason_code": reason_code, "reason": reason, "edited_payload": edited}),
        now,
    )
    .await?;
    if let Some(edit) = &edited {
        // The proposal, the reviewer's edit and the difference between them are kept apart:
        // the edit is training signal for the agent.
        super::edits::record(
            &mut tx,
            &super::edits::NewEdit {
                request_id,
                decision_id: &decision_id,
                reviewer_id: &reviewer.id,
                state_version,
                original: &original,
                edited: edit,
            },
            now,
        )
        .await?;
    }
    let approved = next
        .is_approval()
        .then(|| edited.as_ref().unwrap_or(&original));
    let Concluded { opened } = conclude(
        &mut tx,
        state,
        request_id,
        next,
        approved,
        current.callback_url.as_deref(),
        settings.breaker,
        now,
    )
    .await?;
    tx.commit().await?;
    for alert in opened {
        tracing::warn!("{alert}");
    }
    state.notify_changed();
    crate::server::live::publish(state, crate::server::live::LiveEvent::decided(request_id));
    Ok(next)
}

impl From<Verdict> for crate::domain::merge::ReviewVerdict {
    fn from(v: Verdict) -> Self {
        use crate::domain::merge::ReviewVerdict as R;
        match v {
            Verdict::Approve => R::Approve,
            Verdict::ApproveWithEdit(payload) => R::ApproveWithEdit { payload },
            Verdict::Reject {
                reason_code,
                reason,
            } => R::Reject {
                reason_code,
                reason_text: reason.trim().to_owned(),
            },
            // Escalation never reaches the merge: `decide` handles it before.
            Verdict::Escalate { .. } => R::Approve,
        }
    }
}

/// A reviewer hands an open request to the escalation group with a note: the same step the
/// deadline takes (status `escalated`, the deadline moves out by the escalation window, the
/// group is told), recorded as the reviewer's `escalate` decision. Nothing is concluded, so the
/// agent keeps waiting; the reviewer's claim ends.
#[allow(clippy::too_many_arguments)]
async fn escalate(
    tx: &mut Tx,
    state: &AppState,
    reviewer: &CurrentUser,
    request_id: &str,
    current: &Current,
    settings: &crate::domain::gate_settings::GateSettings,
    note: &str,
    now: i64,
) -> Result<Status, AppError> {
    let note = note.trim();
    if note.is_empty() {
        return Err(AppError::invalid(
            "note",
            "say what the escalation group should look at",
        ));
    }
    if current.status == "escalated" {
        return Err(AppError::Conflict(
            "This request is already escalated; decide it or leave it to the escalation group."
                .into(),
        ));
    }
    crate::inbox::claims::release_all(tx, request_id).await?;
    requests::insert_decision(
        tx,
        &NewDecision {
            id: ids::new_id("dec"),
            request_id: request_id.to_owned(),
            reviewer_id: Some(reviewer.id.clone()),
            kind: "escalate",
            state_version: current.state_version,
            edited_payload: None,
            reason_code: Some("reviewer".into()),
            reason_text: Some(note.to_owned()),
            created_at: now,
        },
    )
    .await?;
    let to = match &settings.escalation_group {
        Some(team) => crate::notify::outbox::team_members(tx, team).await?,
        None => crate::notify::outbox::senior_reviewers(tx).await?,
    };
    let to: Vec<_> = to
        .into_iter()
        .filter(|(id, _)| id != &reviewer.id)
        .collect();
    let window = state.config.escalation_window.as_millis() as i64;
    let mut summary = crate::notify::outbox::summary_of(tx, request_id).await?;
    summary.deadline_at_ms = Some(now + window);
    summary.reason = Some(format!("Escalated by {}: {note}", reviewer.display_name));
    crate::notify::outbox::enqueue(
        tx,
        state,
        crate::notify::NotificationKind::Escalated,
        &summary,
        &to,
        now,
    )
    .await?;
    on_tx!(tx, |c| {
        sqlx::query(
        "UPDATE action_requests SET status = 'escalated', deadline_at = $2, updated_at = $3 WHERE id = $1"
    )
    .bind(request_id)
    .bind(now + window)
    .bind(now)
    .execute(&mut *c)
    .await
    .map(|_| ())
    })?;
    let notified: Vec<&String> = to.iter().map(|(id, _)| id).collect();
    append(
        tx,
        &Actor::User(reviewer.id.clone()),
        "escalated",
        Some(request_id),
        json!({"reason": note, "by": reviewer.id, "state_version": current.state_version, "new_deadline": now + window, "notified": notified}),
        now,
    )
    .await?;
    Ok(Status::Escalated)
}

/// Refuses an edit that changes nothing or does not fit the gate's payload schema.
pub fn check_edit(
    settings: &crate::domain::gate_settings::GateSettings,
    original: &Value,
    edited: &Value,
) -> Result<(), AppError> {
    if canonical_json(edited) == canonical_json(original) {
        return Err(AppError::invalid(
            "payload",
            "the edit changes nothing; approve it as proposed",
        ));
    }
    // An edit must fit the gate's payload schema, like the proposal did.
    if let Some(schema) = &settings.payload_schema {
        let compiled = crate::domain::payload_schema::compile(schema)
            .map_err(|e| crate::error::internal(format!("stored schema: {e:?}")))?;
        if let Err(v) = crate::domain::payload_schema::validate(&compiled, edited) {
            return Err(AppError::invalid(
                format!("payload{}", v[0].path),
                format!("does not fit the gate's payload schema: {}", v[0].message),
            ));
        }
    }
    Ok(())
}

/// Refuses a rejection without a reason, or with a reason code the gate does not offer.
pub fn check_rejection(
    settings: &crate::domain::gate_settings::GateSettings,
    reason_code: Option<&String>,
    reason: &str,
) -> Result<(), AppError> {
    if let Some(code) = reason_code {
        if !settings.rejection_reasons.iter().any(|r| &r.code == code) {
            return Err(AppError::invalid(
                "reason_code",
                format!("{code:?} is not one of this gate's rejection reasons"),
            ));
        }
    }
    if reason.trim().is_empty() && reason_code.is_none() {
        return Err(AppError::invalid(
            "reason",
            "a rejection needs a reason; it is sent to the agent",
        ));
    }
    Ok(())
}

/// What concluding a request set off.
pub struct Concluded {
    /// Alerts of breakers this outcome opened, for the log once committed.
    pub opened: Vec<String>,
}

/// Records a request's final outcome after its decisions: the status, the single-use approval
/// token bound to the approved payload, the agent's webhook and the breaker bookkeeping (with
/// the admins' alert when a breaker opens), all in the caller's transaction.
#[allow(clippy::too_many_arguments)]
pub async fn conclude(
    tx: &mut Tx,
    state: &AppState,
    request_id: &str,
    next: Status,
    approved_payload: Option<&Value>,
    callback_url: Option<&str>,
    breaker: crate::domain::breaker::BreakerSettings,
    now: i64,
) -> Result<Concluded, AppError> {
    requests::set_status(tx, request_id, next.as_str(), now, true).await?;
    if let Some(payload) = approved_payload {
        issue_approval_token(tx, request_id, payload, now).await?;
    }
    enqueue_webhook(tx, request_id, callback_url, now).await?;
    let opened = crate::gates::breakers::after_decision(tx, request_id, breaker, now).await?;
    if !opened.is_empty() {
        // Admins are alerted by email, in the same transaction as the breaker opening.
        let to = crate::notify::outbox::admins(tx).await?;
        let mut summary = crate::notify::outbox::summary_of(tx, request_id).await?;
        summary.reason = Some(opened.join("; "));
        crate::notify::outbox::enqueue(
            tx,
            state,
            crate::notify::NotificationKind::BreakerOpened,
            &summary,
            &to,
            now,
        )
        .await?;
    }
    // The requester and the agent's owner hear the outcome.
    crate::notify::events::decided(tx, state, request_id, now).await?;
    Ok(Concluded { opened })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_json_ignores_key_order_but_not_values() {
        let a: Value =
            serde_json::from_str(r#"{"b":1,"a":{"y":[1,{"d":2,"c":3}],"x":null}}"#).unwrap();
        let b: Value =
            serde_json::from_str(r#"{"a":{"x":null,"y":[1,{"c":3,"d":2}]},"b":1}"#).unwrap();
        assert_eq!(canonical_json(&a), canonical_json(&b));
        assert_eq!(
            canonical_json(&a),
            r#"{"a":{"x":null,"y":[1,{"c":3,"d":2}]},"b":1}"#
        );
        let c: Value =
            serde_json::from_str(r#"{"a":{"x":null,"y":[{"c":3,"d":2},1]},"b":1}"#).unwrap();
        assert_ne!(
            payload_sha256(&a),
            payload_sha256(&c),
            "array order matters"
        );
    }
}
