//! Background jobs: deadlines (escalation, then expiry) and webhook delivery from the
//! transactional outbox.
//!
//! Each job claims due work with a short lease (`locked_until`), so several server processes
//! can run the same loop without delivering one message twice at the same time; on PostgreSQL
//! the claim also uses `FOR UPDATE SKIP LOCKED`.

use super::{now_ms, AppState, Db};
use crate::audit::repo::{append, Actor};
use crate::server::db::Tx;
use crate::{on_db, on_tx};
use serde_json::json;
use std::time::{Duration, Instant};

/// How long a claimed message stays reserved for the claiming process: longer than one delivery
/// (10 s timeout), short enough that a message claimed by a process that then crashed is retried
/// soon after.
const LEASE_MS: i64 = 20_000;

/// Messages delivered per round at most, so other jobs get their turn.
const ROUND: usize = 50;

/// Runs the job loop until the process ends or begins a graceful shutdown. Each round takes its
/// steps in turn; a shutdown stops it between steps (and between messages within a delivery
/// step), so the process never exits holding a lease: every claimed message is finished and
/// its lease cleared first. The live-update listener runs alongside and stops with it.
pub fn spawn(state: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let _listener = super::live::spawn_listener(&state).map(AbortOnDrop);
        let mut changes = state.subscribe();
        while !state.is_closing() {
            if let Err(e) = escalate_and_expire(&state).await {
                tracing::error!("deadline round failed: {e:#}");
            }
            if let Err(e) = deliver_due_webhooks(&state).await {
                tracing::error!("webhook delivery round failed: {e:#}");
            }
            if state.is_closing() {
                break;
            }
            if let Err(e) = remind_due(&state).await {
                tracing::error!("reminder round failed: {e:#}");
            }
            if let Err(e) = crate::notify::digest::send_due(&state).await {
                tracing::error!("digest round failed: {e:#}");
            }
            if let Err(e) = crate::notify::outbox::deliver_due(&state, ROUND).await {
                tracing::error!("notification delivery round failed: {e:#}");
            }
            if state.is_closing() {
                break;
            }
            if let Err(e) = sign_checkpoint_if_due(&state).await {
                tracing::error!("audit checkpoint failed: {e:#}");
            }
            let _ = tokio::time::timeout(state.config.job_interval, changes.changed()).await;
        }
    })
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Sends each open request's reminder once, when its gate's reminder time before the deadline
/// has come: to everyone who may decide it. Looks at the 200 nearest deadlines per round.
pub async fn remind_due(state: &AppState) -> anyhow::Result<usize> {
    let now = now_ms();
    // The partial index of unreminded open requests (migration 0016); SQLite is told to use it.
    let index = match &state.db {
        crate::server::db::Db::Sqlite(_) => " INDEXED BY action_requests_reminder_due",
        crate::server::db::Db::Postgres(_) => "",
    };
    let sql = format!(
        "SELECT r.id, r.deadline_at, v.definition FROM action_requests r{index} \
         LEFT JOIN gate_versions v ON v.gate_id = r.gate_id AND v.version = r.gate_version \
         WHERE r.status IN ('pending', 'in_review') AND r.reminded_at IS NULL \
         AND r.deadline_at IS NOT NULL AND r.deadline_at > $1 ORDER BY r.deadline_at LIMIT 200"
    );
    let candidates: Vec<(String, i64, Option<String>)> =
        on_db!(&state.db, |p| sqlx::query_as(&sql)
            .bind(now)
            .fetch_all(p)
            .await)?;
    let mut sent = 0;
    for (id, deadline, definition) in candidates {
        let settings = crate::gates::eligibility::settings_from_definition(definition);
        let before = settings.reminder_before_minutes;
        if before.is_some_and(|b| deadline - i64::from(b) * 60_000 > now) {
            continue;
        }
        let mut tx = state.db.begin_write().await?;
        let claimed = on_tx!(&mut tx, |c| sqlx::query(
            "UPDATE action_requests SET reminded_at = $2 WHERE id = $1 AND reminded_at IS NULL"
        )
        .bind(&id)
        .bind(now)
        .execute(&mut *c)
        .await
        .map(|r| r.rows_affected()))?;
        if claimed == 0 {
            continue; // another process sent it
        }
        let Some(before) = before else {
            // This gate sends no reminder: marking it handled keeps it out of later rounds.
            tx.commit().await?;
            continue;
        };
        let mut to = crate::notify::outbox::eligible_reviewers(&mut tx, &settings).await?;
        // A dual reviewer who already submitted their half has nothing left to do.
        let done: Vec<String> = on_tx!(&mut tx, |c| sqlx::query_scalar(
            "SELECT h.reviewer_id FROM review_halves h JOIN action_requests r \
             ON r.id = h.request_id AND r.state_version = h.state_version \
             WHERE h.request_id = $1 AND h.verdict IS NOT NULL"
        )
        .bind(&id)
        .fetch_all(&mut *c)
        .await)?;
        to.retain(|(user, _)| !done.contains(user));
        let summary = crate::notify::outbox::summary_of(&mut tx, &id).await?;
        crate::notify::outbox::enqueue(
            &mut tx,
            state,
            crate::notify::NotificationKind::Reminder,
            &summary,
            &to,
            now,
        )
        .await?;
        append(
            &mut tx,
            &Actor::System,
            "reminder_sent",
            Some(&id),
            json!({"deadline": deadline, "minutes_before": before, "notified": to.iter().map(|(u, _)| u).collect::<Vec<_>>()}),
            now,
        )
        .await?;
        tx.commit().await?;
        sent += 1;
    }
    Ok(sent)
}

/// Signs the head of the audit chain when enough events or time have passed since the last
/// checkpoint.
pub async fn sign_checkpoint_if_due(state: &AppState) -> anyhow::Result<()> {
    let schedule = crate::audit::checkpoints::Schedule {
        every_events: state.config.checkpoint_every_events,
        every_ms: state.config.checkpoint_every.as_millis() as i64,
    };
    if let Some(cp) =
        crate::audit::checkpoints::checkpoint(&state.db, &state.audit_key, Some(schedule), now_ms())
            .await?
    {
        tracing::debug!("signed audit checkpoint at event {}", cp.seq);
    }
    Ok(())
}

#[derive(sqlx::FromRow, Debug)]
struct Overdue {
    id: String,
    status: String,
    tier: String,
    state_version: i64,
    callback_url: Option<String>,
}

/// Requests past their deadline: an open one is escalated (its deadline moves out by the
/// escalation window); an escalated one expires, which is a rejection. A timeout never
/// approves (invariant 2). Returns how many requests changed.
pub async fn escalate_and_expire(state: &AppState) -> anyhow::Result<usize> {
    let now = now_ms();
    // SQLite without gathered statistics prefers the status index and sorts every open
    // request; the partial deadline index (migration 0016) reads only the overdue ones.
    let select = |index: &str| {
        format!(
            "SELECT id, status, tier, state_version, callback_url FROM action_requests{index} \
             WHERE status IN ('pending', 'in_review', 'escalated') AND deadline_at IS NOT NULL \
             AND deadline_at <= $1 ORDER BY deadline_at LIMIT 100"
        )
    };
    let mut tx = state.db.begin_write().await?;
    let overdue: Vec<Overdue> = match &mut tx {
        Tx::Sqlite(t) => {
            sqlx::query_as(&select(" INDEXED BY action_requests_open_deadline"))
                .bind(now)
                .fetch_all(&mut **t)
                .await?
        }
        Tx::Postgres(t) => {
            sqlx::query_as(&format!("{} FOR UPDATE SKIP LOCKED", select("")))
                .bind(now)
                .fetch_all(&mut **t)
                .await?
        }
    };
    let window = state.config.escalation_window.as_millis() as i64;
    for r in &overdue {
        let escalating = r.status != "escalated";
        let (kind, code, reason) = if escalating {
            (
                "escalate",
                "deadline",
                "No decision by the deadline; escalated to the escalation group",
            )
        } else {
            (
                "expire",
                "expired",
                "No decision before the deadline; expired (rejected)",
            )
        };
        crate::requests::repo::insert_decision(
            &mut tx,
            &crate::requests::repo::NewDecision {
                id: super::ids::new_id("dec"),
                request_id: r.id.clone(),
                reviewer_id: None,
                kind,
                state_version: r.state_version,
                edited_payload: None,
                reason_code: Some(code.into()),
                reason_text: Some(reason.into()),
                created_at: now,
            },
        )
        .await?;
        let mut escalated_to: Vec<String> = Vec::new();
        // A dual review escalates only its silent half: a submitted review stands, and a half
        // someone holds without reviewing is freed for the escalation group to take.
        let mut reason = reason.to_owned();
        if escalating && r.tier == "dual" {
            let waiting = escalate_silent_halves(&mut tx, &r.id, r.state_version).await?;
            reason = if waiting.is_empty() {
                format!("{reason} (both reviews are in; waiting for a senior reviewer)")
            } else {
                format!("{reason} (waiting for: {})", waiting.join(", "))
            };
        }
        let reason = reason.as_str();
        if escalating {
            // The gate's escalation team hears about it (senior reviewers when it names none).
            let settings = crate::gates::eligibility::settings_of_tx(&mut tx, &r.id).await?;
            let to = match &settings.escalation_group {
                Some(team) => crate::notify::outbox::team_members(&mut tx, team).await?,
                None => crate::notify::outbox::senior_reviewers(&mut tx).await?,
            };
            let mut summary = crate::notify::outbox::summary_of(&mut tx, &r.id).await?;
            summary.deadline_at_ms = Some(now + window);
            summary.reason = Some(reason.to_owned());
            crate::notify::outbox::enqueue(
                &mut tx,
                state,
                crate::notify::NotificationKind::Escalated,
                &summary,
                &to,
                now,
            )
            .await?;
            escalated_to = to.into_iter().map(|(id, _)| id).collect();
            on_tx!(&mut tx, |c| {
                sqlx::query(
                "UPDATE action_requests SET status = 'escalated', deadline_at = $2, updated_at = $3 WHERE id = $1"
            )
            .bind(&r.id)
            .bind(now + window)
            .bind(now)
            .execute(&mut *c)
            .await
            .map(|_| ())
            })?;
        } else {
            crate::requests::repo::set_status(&mut tx, &r.id, "expired", now, true).await?;
            crate::requests::lifecycle::enqueue_webhook(
                &mut tx,
                &r.id,
                r.callback_url.as_deref(),
                now,
            )
            .await?;
            crate::notify::events::decided(&mut tx, state, &r.id, now).await?;
        }
        append(
            &mut tx,
            &Actor::System,
            if escalating { "escalated" } else { "expired" },
            Some(&r.id),
            json!({"reason": reason, "state_version": r.state_version, "new_deadline": escalating.then_some(now + window), "notified": escalated_to}),
            now,
        )
        .await?;
    }
    tx.commit().await?;
    if !overdue.is_empty() {
        state.notify_changed();
    }
    for r in overdue.iter().filter(|r| r.status == "escalated") {
        super::live::publish(state, super::live::LiveEvent::decided(&r.id));
    }
    Ok(overdue.len())
}

/// Frees the unsubmitted halves of a dual request's current round and says which are waiting.
async fn escalate_silent_halves(
    tx: &mut Tx,
    request_id: &str,
    round: i64,
) -> Result<Vec<String>, sqlx::Error> {
    let halves = crate::requests::dual::halves_tx(tx, request_id, round).await?;
    on_tx!(tx, |c| {
        sqlx::query(
        "DELETE FROM review_halves WHERE request_id = $1 AND state_version = $2 AND verdict IS NULL"
    )
    .bind(request_id)
    .bind(round)
    .execute(&mut *c)
    .await
    .map(|_| ())
    })?;
    Ok(["a", "b"]
        .into_iter()
        .filter_map(|h| match halves.iter().find(|row| row.half == h) {
            Some(row) if row.submitted() => None,
            Some(row) => Some(match &row.reviewer_name {
                Some(name) => format!("half {} (held by {name}, released)", h.to_uppercase()),
                None => format!("half {}", h.to_uppercase()),
            }),
            None => Some(format!("half {}", h.to_uppercase())),
        })
        .collect())
}

#[derive(sqlx::FromRow, Debug)]
struct Due {
    id: String,
    request_id: String,
    url: String,
    body: String,
    attempts: i64,
}

/// Leases the next due message, one at a time so a lease only has to outlast one delivery.
async fn claim_next(db: &Db, now: i64) -> Result<Option<Due>, sqlx::Error> {
    let select = "SELECT id, request_id, url, body, attempts FROM webhook_outbox \
         WHERE delivered_at IS NULL AND gave_up_at IS NULL AND next_attempt_at <= $1 \
         AND (locked_until IS NULL OR locked_until < $1) ORDER BY next_attempt_at LIMIT 1";
    let mut tx = db.begin_write().await?;
    let due: Option<Due> = match &mut tx {
        Tx::Sqlite(t) => {
            sqlx::query_as(select)
                .bind(now)
                .fetch_optional(&mut **t)
                .await?
        }
        Tx::Postgres(t) => {
            sqlx::query_as(&format!("{select} FOR UPDATE SKIP LOCKED"))
                .bind(now)
                .fetch_optional(&mut **t)
                .await?
        }
    };
    if let Some(d) = &due {
        on_tx!(&mut tx, |c| sqlx::query(
            "UPDATE webhook_outbox SET locked_until = $2 WHERE id = $1"
        )
        .bind(&d.id)
        .bind(now + LEASE_MS)
        .execute(&mut *c)
        .await
        .map(|_| ()))?;
    }
    tx.commit().await?;
    Ok(due)
}

/// The client notification-channel webhooks are sent with: 10 s timeout, no redirects. Agents'
/// callbacks use [`crate::server::outbound::callback_client`].
pub fn webhook_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent("Countersign-Webhooks/1")
        .build()
        .expect("HTTP client builds")
}

/// The Standard Webhooks signature: `v1,` + base64(HMAC-SHA256(secret, "{id}.{timestamp}.{body}")).
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &str) -> Option<String> {
    use base64::Engine as _;
    use hmac::{Hmac, Mac};
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret.strip_prefix("whsec_")?)
        .ok()?;
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).ok()?;
    mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
    Some(format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    ))
}

/// A new per-agent webhook signing secret in the Standard Webhooks format.
pub fn new_webhook_secret() -> String {
    format!(
        "whsec_{}",
        super::ids::random_secret(24, &base64::engine::general_purpose::STANDARD)
    )
}

/// The message body for a request's current state (built once, on the first attempt).
async fn build_body(
    state: &AppState,
    request_id: &str,
) -> anyhow::Result<(String, Option<String>)> {
    let (agent_id, secret): (String, Option<String>) = on_db!(&state.db, |p| {
        sqlx::query_as(
        "SELECT a.id, a.webhook_secret FROM action_requests r JOIN agents a ON a.id = r.agent_id WHERE r.id = $1"
    )
    .bind(request_id)
    .fetch_one(p)
    .await
    })?;
    let view = crate::api::view::load(&state.db, &agent_id, request_id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("request {request_id} vanished"))?;
    let body = json!({
        "type": format!("action.{}", view.status),
        "timestamp": crate::domain::time::iso_utc(now_ms()),
        "data": view,
    })
    .to_string();
    Ok((body, secret))
}

/// Delivers every due message once; returns how many were attempted.
pub async fn deliver_due_webhooks(state: &AppState) -> anyhow::Result<usize> {
    let mut delivered = 0;
    while delivered < ROUND && !state.is_closing() {
        let Some(message) = claim_next(&state.db, now_ms()).await? else {
            break;
        };
        deliver(state, &message).await?;
        delivered += 1;
    }
    Ok(delivered)
}

/// An error and its causes on one line: reqwest's own text does not say why a connection
/// failed (refused, timed out, or a host with no public address).
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = crate::server::db::one_line(&e);
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&crate::server::db::one_line(&c));
        cause = c.source();
    }
    text
}

async fn deliver(state: &AppState, m: &Due) -> anyhow::Result<()> {
    let (built, secret) = build_body(state, &m.request_id).await?;
    let body = if m.body.is_empty() {
        on_db!(&state.db, |p| sqlx::query(
            "UPDATE webhook_outbox SET body = $2 WHERE id = $1 AND body = ''"
        )
        .bind(&m.id)
        .bind(&built)
        .execute(p)
        .await
        .map(|_| ()))?;
        built
    } else {
        m.body.clone()
    };
    let started = now_ms();
    let clock = Instant::now();
    let timestamp = started / 1000;
    // A URL stored before callbacks had to be public, or while the server allowed private ones,
    // is refused now; host names are checked by the client's resolver.
    let refused = match url::Url::parse(&m.url) {
        Ok(url) => {
            crate::server::outbound::refused_callback(&url, state.config.allow_private_callbacks)
        }
        Err(e) => Some(format!("is not a URL: {e}")),
    };
    let signature = secret
        .as_deref()
        .and_then(|s| sign(s, &m.id, timestamp, &body));
    let outcome: Result<u16, String> = match (refused, signature) {
        (Some(why), _) => Err(format!("callback_url {why}")),
        (None, None) => Err(
            "the agent has no webhook secret; create one with `countersign agent secret NAME`"
                .into(),
        ),
        (None, Some(signature)) => state
            .callbacks
            .post(&m.url)
            .header("content-type", "application/json")
            .header("webhook-id", &m.id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body.clone())
            .send()
            .await
            .map(|r| r.status().as_u16())
            .map_err(|e| with_causes(&e)),
    };
    let attempt = m.attempts + 1;
    let ok = matches!(outcome, Ok(code) if (200..300).contains(&code));
    let now = now_ms();
    let schedule = &state.config.webhook_schedule;
    let give_up = !ok && attempt as usize >= schedule.len();
    let next_at = schedule
        .get(attempt as usize)
        .map(|d| now + d.as_millis() as i64)
        .unwrap_or(now);
    let mut tx = state.db.begin_write().await?;
    on_tx!(&mut tx, |c| {
        sqlx::query(
            "INSERT INTO webhook_attempts (outbox_id, attempt, started_at, status_code, error, duration_ms) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&m.id)
        .bind(attempt)
        .bind(started)
        .bind(outcome.as_ref().ok().map(|c| *c as i64))
        .bind(outcome.as_ref().err())
        .bind(clock.elapsed().as_millis() as i64)
        .execute(&mut *c)
        .await?;
        sqlx::query(
            "UPDATE webhook_outbox SET attempts = $2, locked_until = NULL, \
             delivered_at = CASE WHEN $3 THEN $4 ELSE NULL END, \
             gave_up_at = CASE WHEN $5 THEN $4 ELSE NULL END, next_attempt_at = $6 WHERE id = $1",
        )
        .bind(&m.id)
        .bind(attempt)
        .bind(ok)
        .bind(now)
        .bind(give_up)
        .bind(next_at)
        .execute(&mut *c)
        .await?;
    });
    if ok || give_up {
        append(
            &mut tx,
            &Actor::System,
            if ok { "webhook_delivered" } else { "webhook_gave_up" },
            Some(&m.request_id),
            json!({"message_id": m.id, "url": m.url, "attempts": attempt, "last_result": match &outcome { Ok(c) => json!(c), Err(e) => json!(e) }}),
            now,
        )
        .await?;
    }
    tx.commit().await?;
    if !ok {
        tracing::warn!(message = %m.id, attempt, "webhook delivery failed: {outcome:?}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_follow_the_standard_webhooks_test_vector() {
        // From the Standard Webhooks specification's reference test.
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let body = r#"{"test": 2432232314}"#;
        assert_eq!(
            sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body).unwrap(),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
        assert!(sign("not-a-secret", "id", 1, "b").is_none());
        assert!(new_webhook_secret().starts_with("whsec_"));
    }
}
