//! Notifications through a transactional outbox: enqueued in the same transaction as the event
//! that causes them (a new request, a reminder, an escalation, an outcome), delivered by the job
//! loop with retries, each attempt's result kept for the admin delivery log. A failing channel
//! never blocks anything.

use super::{deliver, Channel, NotificationKind, RequestSummary};
use crate::domain::gate_settings::GateSettings;
use crate::requests::repo::NewActionRequest;
use crate::server::db::Tx;
use crate::server::{now_ms, AppState};
use crate::{on_db, on_tx};

use super::audience::Audience;
pub use super::audience::Recipient;

/// A request's title in a notification: its action type when the agent gave none.
fn shown_title(title: &str, action_type: &str) -> String {
    if title.is_empty() { action_type } else { title }.to_owned()
}

fn shown_amount(minor: Option<i64>, currency: Option<&str>) -> Option<String> {
    crate::domain::policy::money_fact(minor, currency).map(|m| m.to_string())
}

/// What a request about to be stored looks like in a notification: [`summary_of`] without
/// reading it back.
pub fn summary_of_new(r: &NewActionRequest, agent: &str) -> RequestSummary {
    RequestSummary {
        id: r.id.clone(),
        title: shown_title(&r.title, &r.action_type),
        action_type: r.action_type.clone(),
        agent: agent.to_owned(),
        amount: shown_amount(r.amount_minor, r.currency.as_deref()),
        counterparty: r.counterparty.clone(),
        explanation: r.explanation.clone(),
        tier: r.tier.clone(),
        deadline_at_ms: r.deadline_at,
        status: r.status.clone(),
        payload: serde_json::from_str(&r.payload).unwrap_or_default(),
        decided_by: None,
        reason: None,
    }
}

/// What a request looks like in a notification.
pub async fn summary_of(tx: &mut Tx, request_id: &str) -> Result<RequestSummary, sqlx::Error> {
    type Row = (
        String,
        String,
        String,
        Option<i64>,
        Option<String>,
        Option<String>,
        String,
        String,
        Option<i64>,
        String,
        String,
    );
    let r: Row = on_tx!(tx, |c| sqlx::query_as(
        "SELECT r.title, r.action_type, a.name, r.amount_minor, r.currency, r.counterparty, \
         r.explanation, r.tier, r.deadline_at, r.status, r.payload FROM action_requests r \
         JOIN agents a ON a.id = r.agent_id WHERE r.id = $1"
    )
    .bind(request_id)
    .fetch_one(&mut *c)
    .await)?;
    let (
        title,
        action_type,
        agent,
        minor,
        currency,
        counterparty,
        explanation,
        tier,
        deadline,
        status,
        payload,
    ) = r;
    Ok(RequestSummary {
        id: request_id.to_owned(),
        title: shown_title(&title, &action_type),
        action_type,
        agent,
        amount: shown_amount(minor, currency.as_deref()),
        counterparty,
        explanation,
        tier,
        deadline_at_ms: deadline,
        status,
        payload: serde_json::from_str(&payload).unwrap_or_default(),
        decided_by: None,
        reason: None,
    })
}

/// Active people who may decide under `settings` (their roles, and teams when listed).
pub async fn eligible_reviewers(
    tx: &mut Tx,
    settings: &GateSettings,
) -> Result<Vec<Recipient>, sqlx::Error> {
    let (roles, memberships) = super::audience::people(tx).await?;
    Ok(super::audience::eligible_among(
        &roles,
        &memberships,
        settings,
    ))
}

/// Active members of the team named `team`.
pub async fn team_members(tx: &mut Tx, team: &str) -> Result<Vec<Recipient>, sqlx::Error> {
    on_tx!(tx, |c| sqlx::query_as(
        "SELECT u.id, u.email FROM team_members m JOIN teams t ON t.id = m.team_id \
         JOIN users u ON u.id = m.user_id WHERE t.name = $1 AND u.disabled = FALSE ORDER BY u.id"
    )
    .bind(team)
    .fetch_all(&mut *c)
    .await)
}

/// Active admins: who hears about opened circuit breakers.
pub async fn admins(tx: &mut Tx) -> Result<Vec<Recipient>, sqlx::Error> {
    on_tx!(tx, |c| sqlx::query_as(
        "SELECT u.id, u.email FROM users u JOIN user_roles r ON r.user_id = u.id \
         WHERE r.role = 'admin' AND u.disabled = FALSE ORDER BY u.id"
    )
    .fetch_all(&mut *c)
    .await)
}

/// Active senior reviewers: who hears about escalations when a gate names no team.
pub async fn senior_reviewers(tx: &mut Tx) -> Result<Vec<Recipient>, sqlx::Error> {
    on_tx!(tx, |c| sqlx::query_as(
        "SELECT u.id, u.email FROM users u JOIN user_roles r ON r.user_id = u.id \
         WHERE r.role = 'senior_reviewer' AND u.disabled = FALSE ORDER BY u.id"
    )
    .fetch_all(&mut *c)
    .await)
}

/// Enqueues `kind` about `summary`, in the caller's transaction: to each recipient's email as
/// they chose for this kind (at once, into their next digest, or not at all), and to every team
/// or gate channel that receives this kind (see [`Audience::messages`]). Chat and webhook
/// channels carry the payload only when the request's gate version allows it. Returns how many
/// messages and digest items were queued.
pub async fn enqueue(
    tx: &mut Tx,
    state: &AppState,
    kind: NotificationKind,
    summary: &RequestSummary,
    to: &[Recipient],
    now: i64,
) -> Result<usize, sqlx::Error> {
    let audience = Audience::load(tx, kind).await?;
    let (gate_id, settings) = gate_of(tx, &summary.id).await?;
    let outgoing = audience.messages(
        summary,
        to,
        gate_id.as_deref(),
        &settings,
        &state.config.public_url,
        now,
    );
    super::audience::store(tx, &outgoing).await
}

/// The gate that gated `request_id` and the settings of that gate version (defaults without one).
async fn gate_of(
    tx: &mut Tx,
    request_id: &str,
) -> Result<(Option<String>, GateSettings), sqlx::Error> {
    let row: Option<(Option<String>, Option<String>)> = on_tx!(tx, |c| sqlx::query_as(
        "SELECT r.gate_id, v.definition FROM action_requests r \
         LEFT JOIN gate_versions v ON v.gate_id = r.gate_id AND v.version = r.gate_version \
         WHERE r.id = $1"
    )
    .bind(request_id)
    .fetch_optional(&mut *c)
    .await)?;
    let (gate_id, definition) = row.unwrap_or((None, None));
    Ok((
        gate_id,
        crate::gates::eligibility::settings_from_definition(definition),
    ))
}

/// One message into the outbox, due at once.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn insert(
    tx: &mut Tx,
    id: &str,
    kind: &str,
    request_id: Option<&str>,
    user_id: Option<&str>,
    channel_id: Option<&str>,
    channel: &Channel,
    prepared: &super::Prepared,
    now: i64,
) -> Result<(), sqlx::Error> {
    on_tx!(tx, |c| {
        sqlx::query(
            "INSERT INTO notifications (id, kind, request_id, user_id, channel_id, channel, prepared, \
             created_at, next_attempt_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
        )
        .bind(id)
        .bind(kind)
        .bind(request_id)
        .bind(user_id)
        .bind(channel_id)
        .bind(serde_json::to_string(channel).unwrap_or_default())
        .bind(serde_json::to_string(prepared).unwrap_or_default())
        .bind(now)
        .execute(&mut *c)
        .await
        .map(|_| ())
    })
}

#[derive(sqlx::FromRow)]
struct Due {
    id: String,
    channel: String,
    prepared: String,
    attempts: i64,
}

const LEASE_MS: i64 = 20_000;

async fn claim_next(state: &AppState, now: i64) -> Result<Option<Due>, sqlx::Error> {
    let select = "SELECT id, channel, prepared, attempts FROM notifications \
         WHERE delivered_at IS NULL AND gave_up_at IS NULL AND next_attempt_at <= $1 \
         AND (locked_until IS NULL OR locked_until < $1) ORDER BY next_attempt_at LIMIT 1";
    let mut tx = state.db.begin_write().await?;
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
            "UPDATE notifications SET locked_until = $2 WHERE id = $1"
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

/// Delivers due notifications (at most `limit`); returns how many were attempted.
pub async fn deliver_due(state: &AppState, limit: usize) -> anyhow::Result<usize> {
    let mut attempted = 0;
    while attempted < limit && !state.is_closing() {
        let Some(due) = claim_next(state, now_ms()).await? else {
            break;
        };
        attempted += 1;
        let outcome = match (
            serde_json::from_str::<Channel>(&due.channel),
            serde_json::from_str::<super::Prepared>(&due.prepared),
        ) {
            (Ok(channel), Ok(prepared)) => deliver(
                &channel,
                &due.id,
                &prepared,
                &state.http,
                state.mailer.as_deref(),
            )
            .await
            .map(|_| ()),
            _ => Err(super::DeliveryError::WrongFormat),
        };
        let now = now_ms();
        let attempt = due.attempts + 1;
        let schedule = &state.config.webhook_schedule;
        // Without SMTP configured (the demo), every email is undeliverable by design: the
        // delivery log says so; the server log need not repeat it for each message.
        let unconfigured = matches!(outcome, Err(super::DeliveryError::NoMailer));
        let (delivered, gave_up, error) = match &outcome {
            Ok(()) => (true, false, None),
            Err(e) => (
                false,
                e.is_permanent() || attempt as usize >= schedule.len(),
                Some(e.to_string()),
            ),
        };
        let next = schedule
            .get(attempt as usize)
            .map(|d| now + d.as_millis() as i64)
            .unwrap_or(now);
        on_db!(&state.db, |p| sqlx::query(
            "UPDATE notifications SET attempts = $2, locked_until = NULL, next_attempt_at = $3, \
             delivered_at = CASE WHEN $4 THEN $5 ELSE NULL END, \
             gave_up_at = CASE WHEN $6 THEN $5 ELSE NULL END, last_error = $7 WHERE id = $1"
        )
        .bind(&due.id)
        .bind(attempt)
        .bind(next)
        .bind(delivered)
        .bind(now)
        .bind(gave_up)
        .bind(&error)
        .execute(p)
        .await
        .map(|_| ()))?;
        match error {
            Some(e) if unconfigured => {
                tracing::debug!(notification = %due.id, "notification not sent: {e}")
            }
            Some(e) => {
                tracing::warn!(notification = %due.id, attempt, "notification delivery failed: {e}")
            }
            None => {}
        }
    }
    Ok(attempted)
}
