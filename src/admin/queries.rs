//! Admin reads (both engines).

use super::{AdminData, AgentLine, TeamLine, UserLine, WebhookLine};
use crate::accounts::Role;
use crate::error::AppError;
use crate::on_db;
use crate::server::db::Db;

/// (id, display name, email, disabled)
type UserRow = (String, String, String, bool);
/// (user or team id, role or team name)
type Pair = (String, String);
/// (name, description, request count)
type AgentRow = (String, String, i64);
/// (team id, user id, display name)
type Membership = (String, String, String);
type Rows = (
    Vec<UserRow>,
    Vec<Pair>,
    Vec<Membership>,
    Vec<Pair>,
    Vec<AgentRow>,
    Vec<Pair>,
);

/// (agent name, sentence) for the latest breaker events, newest first.
async fn breaker_history(db: &Db) -> Result<Vec<(String, String)>, AppError> {
    let rows: Vec<(i64, String, String, Option<String>)> = on_db!(db, |p| sqlx::query_as(
        "SELECT e.occurred_at, e.event_type, e.detail, u.display_name FROM audit_events e \
         LEFT JOIN users u ON e.actor_kind = 'user' AND u.id = e.actor_id \
         WHERE e.event_type IN ('breaker_opened', 'breaker_rearmed') ORDER BY e.seq DESC LIMIT 200"
    )
    .fetch_all(p)
    .await)?;
    let names: Vec<(String, String)> =
        on_db!(db, |p| sqlx::query_as("SELECT id, name FROM agents")
            .fetch_all(p)
            .await)?;
    Ok(rows
        .into_iter()
        .filter_map(|(at, kind, detail, by)| {
            let d: serde_json::Value = serde_json::from_str(&detail).ok()?;
            let agent = names
                .iter()
                .find(|(id, _)| d["agent_id"] == id.as_str())?
                .1
                .clone();
            let scope = d["gate_id"]
                .as_str()
                .map(|_| " (one gate)")
                .unwrap_or(" (all gates)");
            let when = crate::domain::time::iso_utc(at);
            let line = if kind == "breaker_opened" {
                format!(
                    "{when}: opened{scope}, {} of {} decisions rejected or edited",
                    d["corrections"], d["decisions"]
                )
            } else {
                format!("{when}: re-armed{scope} by {}", by.unwrap_or_default())
            };
            Some((agent, line))
        })
        .collect())
}

pub async fn overview(db: &Db) -> Result<AdminData, AppError> {
    let history = breaker_history(db).await?;
    let (users, roles, memberships, teams, agents, tokens): Rows = on_db!(db, |p| {
        let users = sqlx::query_as(
            "SELECT id, display_name, email, disabled FROM users ORDER BY display_name",
        )
        .fetch_all(p)
        .await?;
        let roles = sqlx::query_as("SELECT user_id, role FROM user_roles ORDER BY role")
            .fetch_all(p)
            .await?;
        let memberships = sqlx::query_as(
            "SELECT m.team_id, m.user_id, u.display_name FROM team_members m JOIN users u ON u.id = m.user_id \
             ORDER BY u.display_name",
        )
        .fetch_all(p)
        .await?;
        let teams = sqlx::query_as("SELECT id, name FROM teams ORDER BY name")
            .fetch_all(p)
            .await?;
        let agents = sqlx::query_as(
            "SELECT a.name, a.description, (SELECT COUNT(*) FROM action_requests r WHERE r.agent_id = a.id) \
             FROM agents a ORDER BY a.name",
        )
        .fetch_all(p)
        .await?;
        let tokens = sqlx::query_as(
            "SELECT a.name, t.token_prefix FROM agent_tokens t JOIN agents a ON a.id = t.agent_id \
             WHERE t.revoked_at IS NULL ORDER BY t.created_at",
        )
        .fetch_all(p)
        .await?;
        (users, roles, memberships, teams, agents, tokens)
    });
    type Hook = (
        String,
        String,
        String,
        Option<i64>,
        Option<i64>,
        i64,
        i64,
        Option<i64>,
        Option<String>,
    );
    let hooks: Vec<Hook> = on_db!(db, |p| {
        sqlx::query_as(
        "SELECT o.id, o.request_id, o.url, o.delivered_at, o.gave_up_at, o.attempts, o.created_at, \
         (SELECT a.status_code FROM webhook_attempts a WHERE a.outbox_id = o.id ORDER BY a.attempt DESC LIMIT 1), \
         (SELECT a.error FROM webhook_attempts a WHERE a.outbox_id = o.id ORDER BY a.attempt DESC LIMIT 1) \
         FROM webhook_outbox o ORDER BY o.created_at DESC, o.id DESC LIMIT 30"
    )
    .fetch_all(p)
    .await
    })?;
    let team_name = |id: &str| {
        teams
            .iter()
            .find(|(t, _)| t == id)
            .map(|(_, n)| n.clone())
            .unwrap_or_default()
    };
    Ok(AdminData {
        users: users
            .into_iter()
            .map(|(id, display_name, email, disabled)| UserLine {
                roles: roles
                    .iter()
                    .filter(|(u, _)| *u == id)
                    .filter_map(|(_, r)| Role::parse(r))
                    .collect(),
                teams: memberships
                    .iter()
                    .filter(|(_, u, _)| *u == id)
                    .map(|(t, _, _)| team_name(t))
                    .collect(),
                id,
                display_name,
                email,
                disabled,
            })
            .collect(),
        teams: teams
            .iter()
            .map(|(id, name)| TeamLine {
                id: id.clone(),
                name: name.clone(),
                members: memberships
                    .iter()
                    .filter(|(t, _, _)| t == id)
                    .map(|(_, u, n)| (u.clone(), n.clone()))
                    .collect(),
            })
            .collect(),
        agents: agents
            .into_iter()
            .map(|(name, description, requests)| AgentLine {
                breaker_history: history
                    .iter()
                    .filter(|(agent, _)| *agent == name)
                    .map(|(_, line)| line.clone())
                    .collect(),
                active_tokens: tokens
                    .iter()
                    .filter(|(a, _)| *a == name)
                    .map(|(_, p)| p.clone())
                    .collect(),
                name,
                description,
                requests,
            })
            .collect(),
        webhooks: hooks
            .into_iter()
            .map(
                |(id, request_id, url, delivered, gave_up, attempts, created_at, code, error)| {
                    WebhookLine {
                        id,
                        request_id,
                        url,
                        state: match (delivered, gave_up) {
                            (Some(_), _) => "delivered",
                            (None, Some(_)) => "gave up",
                            (None, None) => "retrying",
                        }
                        .to_owned(),
                        attempts,
                        last_result: code.map(|c| format!("HTTP {c}")).or(error),
                        created_at,
                    }
                },
            )
            .collect(),
        breakers: breakers(db).await?,
        notifications: notifications(db).await?,
        channels: channels(db).await?,
        gates: on_db!(db, |p| sqlx::query_as(
            "SELECT id, key FROM gates ORDER BY key"
        )
        .fetch_all(p)
        .await)?,
    })
}

/// The team and gate notification channels, as shown (never the full URL or secret).
async fn channels(db: &Db) -> Result<Vec<super::ChannelLine>, AppError> {
    Ok(crate::notify::channel_config::list(db)
        .await?
        .into_iter()
        .map(|c| super::ChannelLine {
            id: c.id,
            scope: c.scope,
            display: c.display,
            events: c.events.iter().map(|k| k.as_str().to_owned()).collect(),
        })
        .collect())
}

async fn breakers(db: &Db) -> Result<Vec<super::BreakerLine>, AppError> {
    let open = crate::gates::breakers::open_breakers(db).await?;
    Ok(open
        .into_iter()
        .map(|(agent, gate, row)| super::BreakerLine {
            agent,
            gate,
            since: row.since.unwrap_or(0),
            decisions: row.decisions.unwrap_or(0),
            corrections: row.corrections.unwrap_or(0),
        })
        .collect())
}

/// The latest notifications with their delivery state (the delivery log).
async fn notifications(db: &Db) -> Result<Vec<super::NotificationLine>, AppError> {
    type Row = (
        String,
        String,
        Option<String>,
        Option<i64>,
        Option<i64>,
        i64,
        Option<String>,
        i64,
        Option<String>,
    );
    let rows: Vec<Row> = on_db!(db, |p| {
        sqlx::query_as(
            "SELECT n.kind, n.channel, n.request_id, n.delivered_at, n.gave_up_at, n.attempts, \
         n.last_error, n.created_at, c.display FROM notifications n \
         LEFT JOIN notification_channels c ON c.id = n.channel_id \
         ORDER BY n.created_at DESC, n.id DESC LIMIT 50",
        )
        .fetch_all(p)
        .await
    })?;
    Ok(rows
        .into_iter()
        .map(
            |(
                kind,
                channel,
                request_id,
                delivered,
                gave_up,
                attempts,
                last_error,
                created_at,
                shown,
            )| {
                // A shared channel is named as configured; a person's email by its address.
                let to = shown
                    .or_else(|| {
                        serde_json::from_str::<serde_json::Value>(&channel)
                            .ok()
                            .and_then(|c| c["to"].as_str().map(str::to_owned))
                    })
                    .unwrap_or_else(|| "(channel)".into());
                super::NotificationLine {
                    kind,
                    to,
                    request_id,
                    state: match (delivered, gave_up) {
                        (Some(_), _) => "delivered",
                        (None, Some(_)) => "gave up",
                        (None, None) if attempts > 0 => "retrying",
                        (None, None) => "waiting",
                    }
                    .to_owned(),
                    attempts,
                    last_error,
                    created_at,
                }
            },
        )
        .collect())
}
