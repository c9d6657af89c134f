//! Notifications to people (server only): reviewers about requests that need them, senior
//! reviewers about escalations and dual-review conflicts, admins about opened breakers, and
//! requesters / agent owners about outcomes; over email, Slack-compatible incoming webhooks and
//! generic JSON webhooks.
//!
//! - [`message`]: what a notification says ([`render`]), the same for every channel. Pure.
//! - [`formats`]: that content as a Slack message, a JSON webhook body or an email. Pure.
//! - [`payload`]: whether the request's payload is included and which fields are redacted.
//! - [`text`]: one-line values, deadlines ("2026-11-21 09:30 UTC (in 3h)"), escaping.
//! - [`channels`]: preparing a message for a channel and delivering it (SMTP, HTTP).
//! - [`channel_config`]: the Slack, webhook and mailbox channels attached to teams and gates.
//! - [`prefs`]: each person's choice per event kind: immediate, digest or off.
//! - [`audience`]: who hears about an event and how (preferences and channels applied), read
//!   once per transaction.
//! - [`outbox`]: queuing in the event's transaction, delivery.
//! - [`digest`]: batching a person's waiting items into one periodic email.
//! - [`events`]: the events that notify (a new request, an outcome, a dual-review conflict).
//!
//! Links in notifications only open pages; nothing is decided by following one.

pub mod audience;
pub mod channel_config;
pub mod channels;
pub mod digest;
pub mod events;
pub mod formats;
pub mod handlers;
pub mod message;
pub mod outbox;
pub mod payload;
pub mod prefs;
pub mod text;

pub use channels::{
    deliver, prepare, Channel, DeliveryError, DeliveryReceipt, Mailer, Prepared, DELIVERY_TIMEOUT,
};
pub use events::dual_conflict;
pub use formats::{email, json_webhook_body, slack_payload};
pub use message::{render, Notification, NotificationKind, RequestSummary, LINK_NOTE};
pub use payload::{redacted, validate_pointer, PayloadPolicy, REDACTED};
