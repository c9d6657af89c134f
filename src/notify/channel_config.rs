//! Shared channels an admin attaches to a team or a gate: a Slack-compatible incoming webhook, a
//! generic JSON webhook (signed with a secret shown once), or a shared mailbox, each with the
//! event kinds it receives.
//!
//! A gate's channels hear about that gate's requests; a team's channels hear about every event
//! addressed to one of its members (a review they may do, an escalation to the team, ...).
//! Channels are kept out of the versioned gate definition on purpose: their URLs are
//! credentials, and gate versions are exported and shown to every gate editor. Where the payload
//! may go is policy, though, so `include_payload_in_chat` is a gate setting (draft and publish).

use super::{Channel, NotificationKind};
use crate::audit::repo::{append, Actor};
use crate::server::db::{Db, Tx};
use crate::server::ids;
use crate::{on_db, on_tx};
use serde_json::json;

/// What a channel is attached to: a team or a gate, by id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    Team(String),
    Gate(String),
}

impl Scope {
    /// `team:ID` or `gate:ID`, as the admin form sends it.
    pub fn parse(s: &str) -> Option<Scope> {
        match s.split_once(':') {
            Some(("team", id)) if !id.is_empty() => Some(Scope::Team(id.to_owned())),
            Some(("gate", id)) if !id.is_empty() => Some(Scope::Gate(id.to_owned())),
            _ => None,
        }
    }
}

/// One configured channel as the admin page lists it: never the full URL or the secret.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfiguredChannel {
    pub id: String,
    /// "team Finance" or "gate refunds".
    pub scope: String,
    pub kind: String,
    pub display: String,
    pub events: Vec<NotificationKind>,
    pub created_at: i64,
}

/// Checks what an admin typed for a channel of `kind` and builds it. Webhooks get a fresh
/// signing secret (returned inside the channel, to be shown once).
pub fn parse_channel(kind: &str, target: &str) -> Result<Channel, String> {
    let target = target.trim();
    match kind {
        "email" => target
            .parse::<lettre::Address>()
            .map(|_| Channel::Email {
                to: target.to_owned(),
            })
            .map_err(|_| format!("target: {} is not an email address", short(target))),
        "slack" => Ok(Channel::Slack {
            url: checked_url(target)?,
        }),
        "webhook" => Ok(Channel::Webhook {
            url: checked_url(target)?,
            secret: Some(crate::server::jobs::new_webhook_secret()),
        }),
        _ => Err("type: choose slack, webhook or email".to_owned()),
    }
}

fn short(s: &str) -> String {
    let cut: String = s.chars().take(60).collect();
    format!("{cut:?}")
}

fn checked_url(text: &str) -> Result<String, String> {
    if text.is_empty() {
        return Err("target: paste the webhook URL".to_owned());
    }
    if text.len() > 2000 || text.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err("target: a URL of at most 2000 characters, without spaces".to_owned());
    }
    let url = url::Url::parse(text).map_err(|_| "target: not a URL".to_owned())?;
    if !matches!(url.scheme(), "https" | "http") {
        return Err("target: use an https:// (or http://) URL".to_owned());
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("target: the URL names no host".to_owned());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("target: put no user name or password in the URL".to_owned());
    }
    Ok(text.to_owned())
}

/// How a channel is shown after saving: its kind, host and the URL's last four characters, so
/// two channels can be told apart without revealing the token in the URL.
pub fn display(channel: &Channel) -> String {
    let tail = |url: &str| {
        let host = url::Url::parse(url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
            .unwrap_or_default();
        let chars: Vec<char> = url.chars().collect();
        let last: String = chars[chars.len().saturating_sub(4)..].iter().collect();
        format!("{host}/…{last}")
    };
    match channel {
        Channel::Email { to } => format!("Email {to}"),
        Channel::Slack { url } => format!("Slack {}", tail(url)),
        Channel::Webhook { url, .. } => format!("Webhook {} (signed)", tail(url)),
    }
}

fn kind_of(channel: &Channel) -> &'static str {
    match channel {
        Channel::Email { .. } => "email",
        Channel::Slack { .. } => "slack",
        Channel::Webhook { .. } => "webhook",
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// Adds `channel` for `scope`, receiving `events`; audited with the shown form only. Returns the
/// new channel's id.
pub async fn add(
    db: &Db,
    by: &str,
    scope: &Scope,
    channel: &Channel,
    events: &[NotificationKind],
    now: i64,
) -> Result<String, ChannelError> {
    if events.is_empty() {
        return Err(ChannelError::Refused(
            "events: tick at least one kind of event to send here".to_owned(),
        ));
    }
    let mut tx = db.begin_write().await?;
    let (team_id, gate_id, label) = match scope {
        Scope::Team(id) => {
            let name: Option<String> = on_tx!(&mut tx, |c| sqlx::query_scalar(
                "SELECT name FROM teams WHERE id = $1"
            )
            .bind(id)
            .fetch_optional(&mut *c)
            .await)?;
            let name = name.ok_or_else(|| ChannelError::Refused("scope: no such team".into()))?;
            (Some(id.clone()), None, format!("team {name}"))
        }
        Scope::Gate(id) => {
            let key: Option<String> = on_tx!(&mut tx, |c| sqlx::query_scalar(
                "SELECT key FROM gates WHERE id = $1"
            )
            .bind(id)
            .fetch_optional(&mut *c)
            .await)?;
            let key = key.ok_or_else(|| ChannelError::Refused("scope: no such gate".into()))?;
            (None, Some(id.clone()), format!("gate {key}"))
        }
    };
    let id = ids::new_id("chn");
    let shown = display(channel);
    let kinds: Vec<&str> = events.iter().map(|k| k.as_str()).collect();
    on_tx!(&mut tx, |c| sqlx::query(
        "INSERT INTO notification_channels (id, team_id, gate_id, kind, channel, display, events, \
         created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
    )
    .bind(&id)
    .bind(&team_id)
    .bind(&gate_id)
    .bind(kind_of(channel))
    .bind(serde_json::to_string(channel).unwrap_or_default())
    .bind(&shown)
    .bind(serde_json::to_string(&kinds).unwrap_or_default())
    .bind(by)
    .bind(now)
    .execute(&mut *c)
    .await
    .map(|_| ()))?;
    append(
        &mut tx,
        &Actor::User(by.to_owned()),
        "notification_channel_added",
        None,
        json!({"channel_id": id, "scope": label, "kind": kind_of(channel), "display": shown, "events": kinds}),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(id)
}

/// Removes a channel; its undelivered messages are given up, so a removed URL hears nothing more.
pub async fn remove(db: &Db, by: &str, id: &str, now: i64) -> Result<(), ChannelError> {
    let mut tx = db.begin_write().await?;
    let shown: Option<String> = on_tx!(&mut tx, |c| sqlx::query_scalar(
        "UPDATE notification_channels SET removed_at = $2, removed_by = $3 \
         WHERE id = $1 AND removed_at IS NULL RETURNING display"
    )
    .bind(id)
    .bind(now)
    .bind(by)
    .fetch_optional(&mut *c)
    .await)?;
    let Some(shown) = shown else {
        return Err(ChannelError::Refused(
            "This channel does not exist or was already removed.".into(),
        ));
    };
    on_tx!(&mut tx, |c| sqlx::query(
        "UPDATE notifications SET gave_up_at = $2, last_error = 'the channel was removed' \
         WHERE channel_id = $1 AND delivered_at IS NULL AND gave_up_at IS NULL"
    )
    .bind(id)
    .bind(now)
    .execute(&mut *c)
    .await
    .map(|_| ()))?;
    append(
        &mut tx,
        &Actor::User(by.to_owned()),
        "notification_channel_removed",
        None,
        json!({"channel_id": id, "display": shown}),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

#[derive(sqlx::FromRow)]
struct Row {
    id: String,
    channel: String,
    display: String,
    kind: String,
    events: String,
    team_id: Option<String>,
    gate_id: Option<String>,
    team_name: Option<String>,
    gate_key: Option<String>,
    created_at: i64,
}

const ACTIVE: &str = "SELECT c.id, c.channel, c.display, c.kind, c.events, c.team_id, c.gate_id, \
     t.name AS team_name, g.key AS gate_key, c.created_at FROM notification_channels c \
     LEFT JOIN teams t ON t.id = c.team_id LEFT JOIN gates g ON g.id = c.gate_id \
     WHERE c.removed_at IS NULL ORDER BY c.created_at, c.id";

fn events_of(text: &str) -> Vec<NotificationKind> {
    serde_json::from_str::<Vec<String>>(text)
        .unwrap_or_default()
        .iter()
        .filter_map(|k| NotificationKind::parse(k))
        .collect()
}

/// Every active channel, for the admin page.
pub async fn list(db: &Db) -> Result<Vec<ConfiguredChannel>, sqlx::Error> {
    let rows: Vec<Row> = on_db!(db, |p| sqlx::query_as(ACTIVE).fetch_all(p).await)?;
    Ok(rows
        .into_iter()
        .map(|r| ConfiguredChannel {
            scope: match (&r.team_name, &r.gate_key) {
                (Some(t), _) => format!("team {t}"),
                (None, Some(g)) => format!("gate {g}"),
                _ => "?".to_owned(),
            },
            events: events_of(&r.events),
            id: r.id,
            kind: r.kind,
            display: r.display,
            created_at: r.created_at,
        })
        .collect())
}

/// The active channels that receive `kind`: (channel id, gate id, team id, channel), in the
/// order they were added. Which of them a notification reaches is decided by
/// [`super::audience::Audience::messages`].
pub async fn receiving(
    tx: &mut Tx,
    kind: NotificationKind,
) -> Result<Vec<(String, Option<String>, Option<String>, Channel)>, sqlx::Error> {
    let rows: Vec<Row> = on_tx!(tx, |c| sqlx::query_as(ACTIVE).fetch_all(&mut *c).await)?;
    Ok(rows
        .into_iter()
        .filter(|r| events_of(&r.events).contains(&kind))
        .filter_map(|r| {
            let channel = serde_json::from_str::<Channel>(&r.channel).ok()?;
            Some((r.id, r.gate_id, r.team_id, channel))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_checked_and_webhooks_get_a_secret() {
        let slack =
            parse_channel("slack", " https://hooks.slack.com/services/T0/B0/abcdWXYZ ").unwrap();
        assert_eq!(
            display(&slack),
            "Slack hooks.slack.com/…WXYZ",
            "the token in the path is not shown"
        );
        match parse_channel("webhook", "http://127.0.0.1:9/hook").unwrap() {
            Channel::Webhook { secret, .. } => assert!(secret.unwrap().starts_with("whsec_")),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            parse_channel("email", "ops@example.com").unwrap(),
            Channel::Email {
                to: "ops@example.com".into()
            }
        );
        for (kind, target, why) in [
            ("slack", "", "paste the webhook URL"),
            ("slack", "ftp://x.example/y", "https://"),
            ("slack", "not a url", "without spaces"),
            ("slack", "nourl", "not a URL"),
            (
                "webhook",
                "https://user:pw@x.example/h",
                "no user name or password",
            ),
            ("email", "nobody", "not an email address"),
            ("sms", "+49", "choose slack, webhook or email"),
        ] {
            let e = parse_channel(kind, target).unwrap_err();
            assert!(e.contains(why), "{kind} {target}: {e}");
            assert!(!e.contains("pw@"), "{e}");
        }
        assert_eq!(Scope::parse("team:t1"), Some(Scope::Team("t1".into())));
        assert_eq!(Scope::parse("gate:g1"), Some(Scope::Gate("g1".into())));
        assert_eq!(Scope::parse("gate:"), None);
        assert_eq!(Scope::parse("user:u"), None);
    }
}
