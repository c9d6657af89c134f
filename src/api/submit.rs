//! `POST /api/v1/actions`: gate a checkpoint, store it, and answer with the tier and status.
//!
//! Idempotency follows Stripe: the first request with a key claims it in the same write
//! transaction that stores the gated request and its response, so they commit together (one
//! write transaction per submission; a crash leaves nothing half done); a concurrent duplicate
//! waits for that commit and gets the stored response; later requests with the same key and body
//! get the stored response, forever; the same key with another body gets 422. An unfinished
//! claim (left by an earlier version that committed claims on their own) answers 409 while
//! fresh and is taken over after [`STALE_CLAIM_MS`].

use super::auth::Agent;
use super::checkpoint::{self, ValidCheckpoint, MAX_BODY_BYTES, MAX_IDEMPOTENCY_KEY};
use super::problem::Problem;
use super::view;
use crate::audit::repo::{append_all, Actor, ChainHead, NewEvent};
use crate::domain::policy::Facts;
use crate::domain::status::Status;
use crate::domain::tier::Tier;
use crate::notify::events::{submitted_all, NewPending};
use crate::requests::lifecycle::{canonical_json, enqueue_webhooks, store_approval_tokens};
use crate::requests::repo::{self as requests, sha256_hex, FirstState, NewActionRequest};
use crate::server::db::Tx;
use crate::server::rows::{self, Val};
use crate::server::{ids, now_ms, AppState};
use crate::{on_db, on_tx};
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// After this long, an unfinished claim on an idempotency key is considered abandoned.
pub const STALE_CLAIM_MS: i64 = 30_000;

fn idempotency_key(headers: &HeaderMap) -> Result<String, Problem> {
    let raw = headers.get("idempotency-key").ok_or_else(|| {
        Problem::invalid(
            "Idempotency-Key",
            "header is required: a unique key per action, reused on retries",
        )
    })?;
    let key = raw
        .to_str()
        .map_err(|_| Problem::invalid("Idempotency-Key", "must be printable ASCII"))?;
    if key.is_empty()
        || key.len() > MAX_IDEMPOTENCY_KEY
        || !key.bytes().all(|b| (0x21..0x7f).contains(&b))
    {
        return Err(Problem::invalid(
            "Idempotency-Key",
            format!("must be 1 to {MAX_IDEMPOTENCY_KEY} printable ASCII characters without spaces"),
        ));
    }
    Ok(key.to_owned())
}

fn stored_response(status: i64, body: String, replayed: bool) -> Response {
    let code = StatusCode::from_u16(status as u16).unwrap_or(StatusCode::OK);
    let mut res = (code, body).into_response();
    res.headers_mut()
        .insert("content-type", HeaderValue::from_static("application/json"));
    if replayed {
        res.headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    res
}

enum Claim {
    Ours,
    Replay(i64, String),
    /// The key is in use with another body, or by a submission still in flight.
    Refused(Problem),
}

/// What a submission came to: stored now, the stored answer to an earlier one, or refused
/// because of its key (nothing written).
pub(super) enum Stored {
    Created(i64, String),
    Replay(i64, String),
    Refused(Problem),
}

/// (body hash, response status, response body, claimed at) of a key used before.
type KeyRow = (String, Option<i64>, Option<String>, i64);

/// What an earlier use of the key means for this request: `Ok(None)` when a claim abandoned
/// longer than [`STALE_CLAIM_MS`] ago may be taken over (its `claimed_at` is returned).
fn judge(earlier: KeyRow, body_hash: &str, now: i64) -> Result<Result<Claim, i64>, Problem> {
    match earlier {
        (hash, _, _, _) if hash != body_hash => Err(Problem::idempotency_mismatch()),
        (_, Some(status), Some(body), _) => Ok(Ok(Claim::Replay(status, body))),
        (_, _, _, claimed_at) if claimed_at > now - STALE_CLAIM_MS => {
            Err(Problem::idempotency_in_flight())
        }
        (_, _, _, claimed_at) => Ok(Err(claimed_at)),
    }
}

const KEY_ROW: &str = "SELECT body_sha256, response_status, response_body, claimed_at \
     FROM idempotency_keys WHERE agent_id = $1 AND idempotency_key = $2";

/// The status of a stored submission's response.
const CREATED: i64 = 201;

/// Claims the submissions' keys, with their responses, inside the write transaction that stores
/// them, so a claim, its request and its stored response commit together or not at all (a crash
/// leaves nothing to clean up). One statement claims every free key; a key used before is judged
/// on its own ([`claim_used`]). A key twice in `all` is claimed by the first, and the second
/// gets its answer. On PostgreSQL a concurrent duplicate's insert waits for the first
/// transaction, then finds its committed row and gets the stored response; on SQLite writers
/// take turns anyway.
async fn claim_all(tx: &mut Tx, all: &[&Prepared]) -> Result<Vec<Claim>, sqlx::Error> {
    let sql = rows::values_sql(
        "INSERT INTO idempotency_keys (agent_id, idempotency_key, body_sha256, claimed_at, \
         response_status, response_body, request_id)",
        &rows::bound(7),
        all.len(),
        "ON CONFLICT (agent_id, idempotency_key) DO NOTHING RETURNING request_id",
        tx.placeholders(),
    );
    let vals: Vec<Val> = all
        .iter()
        .flat_map(|p| {
            [
                Val::from(&p.agent.id),
                (&p.key).into(),
                (&p.body_hash).into(),
                p.now.into(),
                CREATED.into(),
                (&p.response).into(),
                (&p.request.id).into(),
            ]
        })
        .collect();
    let claimed: std::collections::HashSet<String> = rows::returning(tx, &sql, &vals)
        .await?
        .into_iter()
        .collect();
    let mut claims = Vec::with_capacity(all.len());
    for p in all {
        claims.push(if claimed.contains(&p.request.id) {
            Claim::Ours
        } else {
            claim_used(tx, p).await?
        });
    }
    Ok(claims)
}

/// The claim of a key that was in use when [`claim_all`] ran: a replay, a refusal, or taken
/// over when its earlier claim was abandoned.
async fn claim_used(tx: &mut Tx, new: &Prepared) -> Result<Claim, sqlx::Error> {
    let (agent, key, body_hash, now) = (&new.agent, &new.key, &new.body_hash, new.now);
    let earlier: KeyRow = on_tx!(tx, |c| sqlx::query_as(KEY_ROW)
        .bind(&agent.id)
        .bind(key)
        .fetch_one(&mut *c)
        .await)?;
    let claimed_at = match judge(earlier, body_hash, now) {
        Err(refusal) => return Ok(Claim::Refused(refusal)),
        Ok(Ok(claim)) => return Ok(claim),
        Ok(Err(claimed_at)) => claimed_at,
    };
    // A claim left by a request that died before this version stored claims with the request.
    let taken = on_tx!(tx, |c| {
        sqlx::query(
        "UPDATE idempotency_keys SET claimed_at = $4, response_status = $5, response_body = $6, \
         request_id = $7 WHERE agent_id = $1 AND idempotency_key = $2 AND claimed_at = $3 \
         AND response_status IS NULL"
    )
    .bind(&agent.id)
    .bind(key)
    .bind(claimed_at)
    .bind(now)
    .bind(CREATED)
    .bind(&new.response)
    .bind(&new.request.id)
    .execute(&mut *c)
    .await
    .map(|r| r.rows_affected())
    })?;
    if taken == 1 {
        Ok(Claim::Ours)
    } else {
        Ok(Claim::Refused(Problem::idempotency_in_flight()))
    }
}

/// A request refused before anything is stored (its payload does not fit the gate's schema)
/// still answers as its key says: a replay, a mismatch or in flight come first, as when the key
/// was claimed before gating.
async fn refused(
    state: &AppState,
    agent: &Agent,
    key: &str,
    body_hash: &str,
    now: i64,
    problem: Problem,
) -> Result<Stored, Problem> {
    let earlier: Option<KeyRow> = on_db!(&state.db, |p| sqlx::query_as(KEY_ROW)
        .bind(&agent.id)
        .bind(key)
        .fetch_optional(p)
        .await)?;
    match earlier.map(|e| judge(e, body_hash, now)).transpose()? {
        Some(Ok(Claim::Replay(status, body))) => Ok(Stored::Replay(status, body)),
        _ => Err(problem),
    }
}

pub async fn submit(
    State(state): State<AppState>,
    agent: Agent,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Problem> {
    let bytes = axum::body::to_bytes(body, MAX_BODY_BYTES)
        .await
        .map_err(|_| {
            Problem::too_large(format!("the body is larger than {MAX_BODY_BYTES} bytes"))
        })?;
    let key = idempotency_key(&headers)?;
    let now = now_ms();
    let valid = checkpoint::parse(&bytes, now).map_err(|p| Problem::invalid(&p.field, p.detail))?;
    let refused = valid.callback.as_ref().and_then(|url| {
        crate::server::outbound::refused_callback(url, state.config.allow_private_callbacks)
    });
    if let Some(why) = refused {
        return Err(Problem::invalid("callback_url", why));
    }
    let body_hash = sha256_hex(
        canonical_json(&serde_json::to_value(&valid.body).unwrap_or_default()).as_bytes(),
    );
    match gate_and_store(&state, &agent, &key, &body_hash, valid, now).await {
        Ok(Stored::Created(status, body)) => {
            state.notify_changed();
            Ok(stored_response(status, body, false))
        }
        Ok(Stored::Replay(status, body)) => Ok(stored_response(status, body, true)),
        Ok(Stored::Refused(p)) | Err(p) => Err(p),
    }
}

async fn gate_and_store(
    state: &AppState,
    agent: &Agent,
    key: &str,
    body_hash: &str,
    valid: ValidCheckpoint,
    now: i64,
) -> Result<Stored, Problem> {
    let ValidCheckpoint {
        body,
        amount,
        deadline_at,
        callback: _,
    } = valid;
    let live = crate::gates::repo::live_policy_cached(&state.db)
        .await
        .map_err(|e| {
            Problem::from(crate::error::internal(format_args!(
                "loading policy: {e:#}"
            )))
        })?;
    let facts = Facts {
        action_type: &body.action_type,
        agent: &agent.name,
        amount,
        record_count: body.record_count,
        recipient_count: body.recipient_count,
        confidence: body.confidence,
        customer_tier: body.customer_tier.as_deref(),
        risk_class: body.risk_class.as_deref(),
    };
    let crate::gates::repo::Gating {
        mut evaluation,
        mut explanation,
        gate_id,
        gate_version,
        matched_rules: matched,
    } = live.gate(&facts);
    let deciding_key = evaluation.deciding_gate().map(|g| g.gate_key.clone());
    let settings = deciding_key
        .as_deref()
        .and_then(|k| live.policy.definition(k))
        .map(|d| &d.settings);
    // Open circuit breakers for this agent raise the tier (or refuse the request).
    let (effect, why) = crate::gates::breakers::effect(
        &state.db,
        &agent.id,
        gate_id.as_deref().zip(settings.map(|s| &s.breaker)),
        evaluation.tier,
    )
    .await
    .map_err(|e| Problem::from(crate::error::internal(e)))?;
    if effect.refused || effect.raised {
        evaluation.tier = effect.tier;
        explanation = format!(
            "{explanation}; {} because the {}",
            if effect.refused {
                "refused"
            } else {
                "raised to review"
            },
            why.join("; ")
        );
    }
    let deciding = evaluation.deciding_gate();
    // A gate that names a payload schema refuses payloads that do not fit it, before anything
    // is stored; the first violation is named.
    if let Some(schema) = settings.and_then(|s| s.payload_schema.as_ref()) {
        let compiled = crate::domain::payload_schema::compile(schema).map_err(|e| {
            Problem::from(crate::error::internal(format_args!(
                "stored payload schema does not compile: {e:?}"
            )))
        })?;
        if let Err(violations) = crate::domain::payload_schema::validate(&compiled, &body.payload) {
            let first = &violations[0];
            let problem = Problem::invalid(
                &format!("payload{}", first.path),
                format!("does not fit the gate's payload schema: {}", first.message),
            );
            return refused(state, agent, key, body_hash, now, problem).await;
        }
    }
    let default_deadline = settings
        .map(|s| s.deadline_minutes.map(|m| i64::from(m) * 60_000))
        .unwrap_or(Some(24 * 3_600_000));
    let status = match evaluation.tier {
        Tier::Auto | Tier::Log => Status::Approved,
        Tier::Block => Status::Rejected,
        Tier::Review | Tier::Dual => Status::Pending,
    };
    let id = ids::new_id("req");

    let to_text = |v: &Option<serde_json::Value>| v.as_ref().map(|x| x.to_string());
    let request = NewActionRequest {
        id: id.clone(),
        agent_id: agent.id.clone(),
        idempotency_key: key.to_owned(),
        body_sha256: body_hash.to_owned(),
        action_type: body.action_type.clone(),
        title: body.title.clone().unwrap_or_default(),
        payload: body.payload.to_string(),
        current_state: to_text(&body.current_state),
        inputs: to_text(&body.inputs),
        reasoning: body.reasoning.clone().unwrap_or_default(),
        alternatives: to_text(&body.alternatives),
        confidence: body.confidence,
        amount_minor: amount.map(|m| m.minor),
        currency: amount.map(|m| m.currency.code().to_owned()),
        counterparty: body.counterparty.clone(),
        customer_tier: body.customer_tier.clone(),
        record_count: body.record_count,
        recipient_count: body.recipient_count,
        risk_class: body.risk_class.clone(),
        acting_for: body.acting_for.clone(),
        tenant: body.tenant.clone(),
        callback_url: body.callback_url.clone(),
        deadline_at: if evaluation.tier.needs_human() {
            deadline_at.or(default_deadline.map(|d| now + d))
        } else {
            None
        },
        tier: evaluation.tier.as_str().to_owned(),
        status: status.as_str().to_owned(),
        gate_id,
        gate_version,
        matched_rules: serde_json::to_string(&matched).unwrap_or_else(|_| "[]".into()),
        explanation: explanation.clone(),
        created_at: now,
        decided_at: (status != Status::Pending).then_some(now),
    };
    // `log`, and the gate's sample of `auto`, are queued for after-the-fact review; decided
    // here, from the request id, so the choice is fixed and reproducible.
    let after_fact = crate::domain::after_fact::queue_reason(
        evaluation.tier,
        &id,
        settings.map_or(0.0, |s| s.auto_sample_rate),
    );
    // The response is built from what is stored and saved with it in one transaction, so a
    // retry after a crash finds either nothing (and starts again) or exactly this answer.
    let gate = deciding.and_then(|g| {
        live.policy
            .gate_definitions()
            .find(|(d, _)| d.key == g.gate_key)
            .map(|(d, v)| view::GateRef {
                key: d.key.clone(),
                name: d.name.clone(),
                version: v,
            })
    });
    let approval_token =
        (status == Status::Approved).then(crate::requests::lifecycle::new_approval_token);
    let approved_sha256 = approval_token
        .as_ref()
        .map(|_| crate::requests::lifecycle::payload_sha256(&body.payload));
    let view = view::ActionView {
        status_url: format!("/api/v1/actions/{id}"),
        id: id.clone(),
        status: status.as_str().to_owned(),
        tier: evaluation.tier.as_str().to_owned(),
        action_type: body.action_type.clone(),
        gate,
        matched_rules: matched.clone(),
        explanation: explanation.clone(),
        created_at: crate::domain::time::iso_utc(now),
        deadline: request.deadline_at.map(crate::domain::time::iso_utc),
        decision: None,
        approved_payload: approval_token.as_ref().map(|_| body.payload.clone()),
        approved_payload_sha256: approved_sha256.clone(),
        approval_token: approval_token.clone(),
    };
    let response = serde_json::to_string(&view).unwrap_or_default();
    let first_state = request.first_state();
    // Reviewers are told about a pending request in its write transaction; what they are told
    // is prepared here, outside it.
    let pending = (status == Status::Pending).then(|| NewPending {
        summary: crate::notify::outbox::summary_of_new(&request, &agent.name),
        settings: settings
            .filter(|_| request.gate_id.is_some())
            .cloned()
            .unwrap_or_default(),
        gate_id: request.gate_id.clone(),
        acting_for: request.acting_for.clone(),
        at: now,
    });
    let audit_detail = json!({
        "after_fact_review": after_fact,
        "action_type": body.action_type,
        "tier": evaluation.tier,
        "status": status,
        "gate": deciding.map(|g| json!({"key": g.gate_key, "version": g.version})),
        "matched_rules": matched,
        "explanation": explanation,
        "idempotency_key": key,
        "state_version": 1,
        "content_sha256": first_state.content_sha256,
    })
    .to_string();
    let prepared = Prepared {
        agent: agent.clone(),
        key: key.to_owned(),
        body_hash: body_hash.to_owned(),
        request,
        first_state,
        status,
        pending,
        after_fact,
        approval: approval_token.zip(approved_sha256),
        response,
        audit_detail,
        now,
    };
    super::group_commit::store(state, prepared).await
}

/// A gated submission, ready to be written: everything it stores, decided before its write
/// transaction, so the transaction holds SQLite's single writer (or the audit chain's lock on
/// PostgreSQL) for its statements only, and several can share one commit
/// ([`group_commit`](super::group_commit)).
pub(super) struct Prepared {
    agent: Agent,
    key: String,
    body_hash: String,
    request: NewActionRequest,
    /// The request's first state version, also named in its audit event.
    first_state: FirstState,
    status: Status,
    /// Set when the request waits for review: whom to tell and what.
    pending: Option<NewPending>,
    after_fact: Option<crate::domain::after_fact::QueueReason>,
    /// The approval token issued when the request is approved at once, and the SHA-256 of the
    /// payload it approves; stored with the request.
    approval: Option<(String, String)>,
    /// The answer, stored with the key.
    response: String,
    /// The `request_gated` audit event's detail, as JSON text.
    audit_detail: String,
    now: i64,
}

impl Prepared {
    pub(super) fn request_id(&self) -> &str {
        &self.request.id
    }
}

/// Writes submissions in `tx`, one statement per table for all of them rather than one per
/// submission: claims their keys with their responses ([`claim_all`]), then stores the requests
/// whose claims are theirs, with their queue and outbox entries and their audit events, in the
/// order given. An error leaves `tx` to be rolled back; a submission refused because of its key
/// (`Stored::Refused`, `Stored::Replay`) writes nothing. `chain` is the audit trail's last event
/// as this transaction knows it (see [`append_all`]): nothing else in a submission writes to the
/// trail.
pub(super) async fn store_all(
    tx: &mut Tx,
    state: &AppState,
    all: &[&Prepared],
    chain: &mut ChainHead,
) -> Result<Vec<Stored>, Problem> {
    let mut results = Vec::with_capacity(all.len());
    let mut ours: Vec<&Prepared> = Vec::with_capacity(all.len());
    for (prepared, claim) in all.iter().zip(claim_all(tx, all).await?) {
        results.push(match claim {
            Claim::Replay(status, body) => Stored::Replay(status, body),
            Claim::Refused(problem) => Stored::Refused(problem),
            Claim::Ours => {
                ours.push(prepared);
                Stored::Created(CREATED, prepared.response.clone())
            }
        });
    }
    if ours.is_empty() {
        return Ok(results);
    }
    let requests: Vec<_> = ours.iter().map(|p| (&p.request, &p.first_state)).collect();
    requests::insert_all(tx, &requests).await?;
    let queued: Vec<_> = ours
        .iter()
        .filter_map(|p| Some((p.request.id.as_str(), p.after_fact?, p.now)))
        .collect();
    crate::inbox::after_fact::repo::enqueue_all(tx, &queued).await?;
    let tokens: Vec<_> = ours
        .iter()
        .filter_map(|p| {
            let (token, sha) = p.approval.as_ref()?;
            Some((token.as_str(), p.request.id.as_str(), sha.as_str(), p.now))
        })
        .collect();
    store_approval_tokens(tx, &tokens).await?;
    let hooks: Vec<_> = ours
        .iter()
        .filter(|p| p.status != Status::Pending)
        .filter_map(|p| {
            Some((
                p.request.id.as_str(),
                p.request.callback_url.as_deref()?,
                p.now,
            ))
        })
        .collect();
    enqueue_webhooks(tx, &hooks).await?;
    let pending: Vec<&NewPending> = ours.iter().filter_map(|p| p.pending.as_ref()).collect();
    submitted_all(tx, state, &pending).await?;
    // The audit append goes last: on PostgreSQL it holds the chain's lock until commit, and
    // every writer of the trail waits for it, so the less that follows it, the more
    // submissions commit per second.
    let actors: Vec<Actor> = ours
        .iter()
        .map(|p| Actor::Agent(p.agent.id.clone()))
        .collect();
    let events: Vec<NewEvent> = ours
        .iter()
        .zip(&actors)
        .map(|(p, actor)| NewEvent {
            actor,
            event_type: "request_gated",
            request_id: Some(&p.request.id),
            detail: &p.audit_detail,
            at: p.now,
        })
        .collect();
    append_all(tx, chain, &events).await?;
    Ok(results)
}
