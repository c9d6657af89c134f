//! Who hears about an event, and how: the active people with their roles and teams, their
//! choices for one kind of notification, and the active team and gate channels. Read once per
//! transaction that notifies (four queries), however many requests it notifies about: a group
//! commit of agent submissions tells reviewers about a dozen at a time. Choosing recipients and
//! preparing their messages is then pure ([`Audience::eligible`], [`Audience::messages`]), and
//! everything is queued in one statement per table ([`store`]).

use super::prefs::Mode;
use super::{prepare, render, Channel, NotificationKind, PayloadPolicy, RequestSummary};
use crate::domain::gate_settings::GateSettings;
use crate::domain::merge::Person;
use crate::on_tx;
use crate::server::db::Tx;
use crate::server::ids::new_id;
use crate::server::rows::{self, Val};
use std::collections::HashMap;

/// Someone to notify: (user id, email).
pub type Recipient = (String, String);

/// The people and channels one kind of notification can reach, as a transaction sees them.
pub struct Audience {
    kind: NotificationKind,
    /// (user id, email, role) of active people, one row per role, in user id order.
    roles: Vec<(String, String, String)>,
    /// (team id, team name, user id) of every team membership.
    memberships: Vec<(String, String, String)>,
    /// Each person's stored choice for `kind`; no choice means immediate.
    modes: HashMap<String, Mode>,
    /// (channel id, gate id, team id, channel) of the active channels that receive `kind`.
    channels: Vec<(String, Option<String>, Option<String>, Channel)>,
}

/// One message or digest item to queue.
pub enum Outgoing {
    Message {
        kind: NotificationKind,
        request_id: String,
        user_id: Option<String>,
        channel_id: Option<String>,
        channel: Channel,
        prepared: super::Prepared,
        at: i64,
    },
    /// Held for the person's next digest.
    DigestItem {
        kind: NotificationKind,
        user_id: String,
        summary: RequestSummary,
        at: i64,
    },
}

const PEOPLE: &str = "SELECT u.id, u.email, r.role FROM users u JOIN user_roles r \
     ON r.user_id = u.id WHERE u.disabled = FALSE ORDER BY u.id";
const MEMBERSHIPS: &str =
    "SELECT m.team_id, t.name, m.user_id FROM team_members m JOIN teams t ON t.id = m.team_id";

/// The active people with a role, and every team membership: whom [`eligible_among`] chooses
/// from.
pub async fn people(
    tx: &mut Tx,
) -> Result<(Vec<(String, String, String)>, Vec<(String, String, String)>), sqlx::Error> {
    let roles = on_tx!(tx, |c| sqlx::query_as(PEOPLE).fetch_all(&mut *c).await)?;
    let memberships = on_tx!(tx, |c| sqlx::query_as(MEMBERSHIPS).fetch_all(&mut *c).await)?;
    Ok((roles, memberships))
}

/// The active people who may decide under `settings` (their roles, and teams when listed), each
/// once, in user id order.
pub fn eligible_among(
    roles: &[(String, String, String)],
    memberships: &[(String, String, String)],
    settings: &GateSettings,
) -> Vec<Recipient> {
    let mut out: Vec<Recipient> = Vec::new();
    for (id, email, role) in roles {
        let teams: Vec<&str> = memberships
            .iter()
            .filter(|(_, _, user)| user == id)
            .map(|(_, team, _)| team.as_str())
            .collect();
        if settings.is_eligible(&[role.as_str()], &teams) && !out.iter().any(|(u, _)| u == id) {
            out.push((id.clone(), email.clone()));
        }
    }
    out
}

impl Audience {
    pub async fn load(tx: &mut Tx, kind: NotificationKind) -> Result<Audience, sqlx::Error> {
        let (roles, memberships) = people(tx).await?;
        let modes = super::prefs::modes_of_kind(tx, kind).await?;
        let channels = super::channel_config::receiving(tx, kind).await?;
        Ok(Audience {
            kind,
            roles,
            memberships,
            modes,
            channels,
        })
    }

    /// [`eligible_among`] this audience.
    pub fn eligible(&self, settings: &GateSettings) -> Vec<Recipient> {
        eligible_among(&self.roles, &self.memberships, settings)
    }

    /// The active people `acting_for` names, by id or by email in any ASCII case (the same test as
    /// dual review's, [`Person::is`]): a request made for someone is never theirs to review.
    pub fn named_by(&self, acting_for: Option<&str>) -> Vec<String> {
        let Some(named) = acting_for else {
            return Vec::new();
        };
        let mut ids: Vec<String> = self
            .roles
            .iter()
            .filter(|(id, email, _)| {
                Person {
                    id,
                    email,
                    teams: &[],
                }
                .is(named)
            })
            .map(|(id, _, _)| id.clone())
            .collect();
        ids.dedup();
        ids
    }

    /// What telling `to` about `summary` queues: each person's email as they chose for this
    /// kind (at once, into their next digest, or not at all), and every channel of the
    /// request's gate (`gate_id`) or of a team one of them belongs to, each once. Chat and
    /// webhook channels carry the payload only when the gate version's `settings` allow it.
    pub fn messages(
        &self,
        summary: &RequestSummary,
        to: &[Recipient],
        gate_id: Option<&str>,
        settings: &GateSettings,
        public_url: &str,
        now: i64,
    ) -> Vec<Outgoing> {
        let kind = self.kind;
        let n = render(kind, summary, public_url, now);
        let mut out = Vec::new();
        for (user_id, email) in to {
            match self.modes.get(user_id).copied().unwrap_or_default() {
                Mode::Off => {}
                // Email never carries the payload, so the item does not keep it.
                Mode::Digest => out.push(Outgoing::DigestItem {
                    kind,
                    user_id: user_id.clone(),
                    summary: RequestSummary {
                        payload: serde_json::Value::Null,
                        ..summary.clone()
                    },
                    at: now,
                }),
                Mode::Immediate => {
                    let channel = Channel::Email { to: email.clone() };
                    let prepared = prepare(&channel, &n, summary, &PayloadPolicy::default());
                    out.push(Outgoing::Message {
                        kind,
                        request_id: summary.id.clone(),
                        user_id: Some(user_id.clone()),
                        channel_id: None,
                        channel,
                        prepared,
                        at: now,
                    });
                }
            }
        }
        let policy = PayloadPolicy {
            include_payload: settings.include_payload_in_chat,
            redact: settings.redact_fields_in_chat.clone(),
        };
        for (channel_id, channel_gate, channel_team, channel) in &self.channels {
            let reaches = match (channel_gate, channel_team) {
                (Some(g), _) => gate_id == Some(g.as_str()),
                (None, Some(t)) => self.memberships.iter().any(|(team, _, user)| {
                    team == t && to.iter().any(|(recipient, _)| recipient == user)
                }),
                _ => false,
            };
            if reaches {
                out.push(Outgoing::Message {
                    kind,
                    request_id: summary.id.clone(),
                    user_id: None,
                    channel_id: Some(channel_id.clone()),
                    channel: channel.clone(),
                    prepared: prepare(channel, &n, summary, &policy),
                    at: now,
                });
            }
        }
        out
    }
}

/// One outbox row for [`store`]: (id, kind, request id, user id, channel id, channel, prepared
/// message, queued at).
type MessageRow<'a> = (
    String,
    &'a str,
    &'a str,
    Option<&'a str>,
    Option<&'a str>,
    String,
    String,
    i64,
);

/// Queues `outgoing` in the caller's transaction: the messages into the outbox, due at once,
/// and the digest items; one statement for each. Returns how many were queued.
pub async fn store(tx: &mut Tx, outgoing: &[Outgoing]) -> Result<usize, sqlx::Error> {
    let mut messages: Vec<MessageRow> = Vec::new();
    let mut digest: Vec<(String, &str, &str, &str, String, i64)> = Vec::new();
    for o in outgoing {
        match o {
            Outgoing::Message {
                kind,
                request_id,
                user_id,
                channel_id,
                channel,
                prepared,
                at,
            } => messages.push((
                new_id("ntf"),
                kind.as_str(),
                request_id,
                user_id.as_deref(),
                channel_id.as_deref(),
                serde_json::to_string(channel).unwrap_or_default(),
                serde_json::to_string(prepared).unwrap_or_default(),
                *at,
            )),
            Outgoing::DigestItem {
                kind,
                user_id,
                summary,
                at,
            } => digest.push((
                new_id("dig"),
                user_id,
                kind.as_str(),
                &summary.id,
                serde_json::to_string(summary).unwrap_or_default(),
                *at,
            )),
        }
    }
    let vals: Vec<Val> = messages
        .iter()
        .flat_map(
            |(id, kind, request, user, channel_id, channel, prepared, at)| {
                [
                    Val::from(id),
                    (*kind).into(),
                    (*request).into(),
                    (*user).into(),
                    (*channel_id).into(),
                    channel.into(),
                    prepared.into(),
                    (*at).into(),
                    (*at).into(),
                ]
            },
        )
        .collect();
    rows::insert(
        tx,
        "INSERT INTO notifications (id, kind, request_id, user_id, channel_id, channel, \
         prepared, created_at, next_attempt_at)",
        &rows::bound(9),
        &vals,
    )
    .await?;
    let vals: Vec<Val> = digest
        .iter()
        .flat_map(|(id, user, kind, request, summary, at)| {
            [
                Val::from(id),
                (*user).into(),
                (*kind).into(),
                (*request).into(),
                summary.into(),
                (*at).into(),
            ]
        })
        .collect();
    rows::insert(
        tx,
        "INSERT INTO digest_items (id, user_id, kind, request_id, summary, created_at)",
        &rows::bound(6),
        &vals,
    )
    .await?;
    Ok(messages.len() + digest.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn person(id: &str, email: &str, role: &str) -> (String, String, String) {
        (id.into(), email.into(), role.into())
    }

    fn audience(channels: Vec<(String, Option<String>, Option<String>, Channel)>) -> Audience {
        Audience {
            kind: NotificationKind::NeedsReview,
            roles: vec![
                person("u1", "Ana@example.com", "reviewer"),
                person("u1", "Ana@example.com", "admin"),
                person("u2", "ben@example.com", "reviewer"),
                person("u3", "cy@example.com", "auditor"),
            ],
            memberships: vec![("t1".into(), "payments".into(), "u2".into())],
            modes: HashMap::from([("u2".to_owned(), Mode::Digest)]),
            channels,
        }
    }

    fn summary() -> RequestSummary {
        RequestSummary {
            id: "req_1".into(),
            title: "Refund".into(),
            action_type: "payment.refund".into(),
            agent: "bot".into(),
            amount: None,
            counterparty: None,
            explanation: "over 1000".into(),
            tier: "review".into(),
            deadline_at_ms: None,
            status: "pending".into(),
            payload: serde_json::json!({"iban": "DE00"}),
            decided_by: None,
            reason: None,
        }
    }

    #[test]
    fn reviewers_are_chosen_once_each_and_named_people_by_id_or_email() {
        let a = audience(Vec::new());
        let everyone = GateSettings::default();
        let chosen: Vec<String> = a.eligible(&everyone).into_iter().map(|(u, _)| u).collect();
        assert_eq!(chosen, ["u1", "u2"]);
        assert_eq!(a.named_by(Some("ana@EXAMPLE.com")), ["u1"]);
        assert_eq!(a.named_by(Some("u2")), ["u2"]);
        assert!(a.named_by(Some("nobody")).is_empty());
        assert!(a.named_by(None).is_empty());
    }

    #[test]
    fn choices_and_channels_decide_what_is_queued() {
        let hook = Channel::Email {
            to: "team@example.com".into(),
        };
        let a = audience(vec![
            ("c_team".into(), None, Some("t1".into()), hook.clone()),
            ("c_other_gate".into(), Some("g2".into()), None, hook.clone()),
            ("c_gate".into(), Some("g1".into()), None, hook),
        ]);
        let to = a.eligible(&GateSettings::default());
        let out = a.messages(
            &summary(),
            &to,
            Some("g1"),
            &GateSettings::default(),
            "http://x",
            0,
        );
        let described: Vec<String> = out
            .iter()
            .map(|o| match o {
                Outgoing::Message {
                    user_id,
                    channel_id,
                    ..
                } => format!("message {user_id:?} {channel_id:?}"),
                Outgoing::DigestItem {
                    user_id, summary, ..
                } => format!("digest {user_id} payload {}", summary.payload),
            })
            .collect();
        assert_eq!(
            described,
            [
                "message Some(\"u1\") None",
                "digest u2 payload null",
                "message None Some(\"c_team\")",
                "message None Some(\"c_gate\")",
            ]
        );
    }
}
