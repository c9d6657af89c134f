//! Delivery of a prepared notification over one channel: email (SMTP), a Slack-compatible
//! incoming webhook, or a generic JSON webhook signed like agent callbacks (Standard Webhooks).
//!
//! A message is prepared once, when the event happens ([`prepare`]), and stored as it is; each
//! retry sends the same bytes under the same id, so receivers can drop duplicates. Every attempt
//! ends within [`DELIVERY_TIMEOUT`], and the error says whether retrying can help.

use super::formats::{email, json_webhook_body, slack_payload};
use super::message::{Notification, RequestSummary};
use super::payload::PayloadPolicy;
use crate::server::db::one_line;
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The longest one delivery attempt may take, connection included.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);

/// Where a notification goes.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Channel {
    Email {
        to: String,
    },
    /// A Slack (or Mattermost, Rocket.Chat, ...) incoming-webhook URL.
    Slack {
        url: String,
    },
    /// Any HTTP endpoint; with a `whsec_...` secret the body is signed (Standard Webhooks).
    Webhook {
        url: String,
        secret: Option<String>,
    },
}

impl std::fmt::Debug for Channel {
    /// Webhook URLs and secrets are credentials: only the kind and host are shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Channel::Email { to } => write!(f, "Email({to})"),
            Channel::Slack { url } => write!(f, "Slack({})", host_of(url)),
            Channel::Webhook { url, secret } => write!(
                f,
                "Webhook({}, {})",
                host_of(url),
                if secret.is_some() {
                    "signed"
                } else {
                    "unsigned"
                }
            ),
        }
    }
}

fn host_of(url: &str) -> String {
    url::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_else(|| "?".into())
}

/// A message ready to send, built once per notification and channel; store it in the outbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "format", rename_all = "snake_case")]
pub enum Prepared {
    Email {
        subject: String,
        text: String,
        html: String,
    },
    Json {
        body: String,
    },
}

/// Shapes `n` for `channel`. `policy` is the gate's choice about the payload; email never
/// carries it.
pub fn prepare(
    channel: &Channel,
    n: &Notification,
    r: &RequestSummary,
    policy: &PayloadPolicy,
) -> Prepared {
    match channel {
        Channel::Email { .. } => {
            let (subject, text, html) = email(n);
            Prepared::Email {
                subject,
                text,
                html,
            }
        }
        Channel::Slack { .. } => Prepared::Json {
            body: slack_payload(n, policy.include_payload, &policy.redact).to_string(),
        },
        Channel::Webhook { .. } => Prepared::Json {
            body: json_webhook_body(n, r, policy.include_payload, &policy.redact).to_string(),
        },
    }
}

/// What the receiving server answered: the HTTP status, or the SMTP reply code (250).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryReceipt {
    pub status_code: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    #[error("the receiver answered HTTP {status}: {body}")]
    Status { status: u16, body: String },
    #[error("could not deliver: {0}")]
    Transport(String),
    #[error("no answer within {} s", DELIVERY_TIMEOUT.as_secs())]
    Timeout,
    #[error("the mail server refused the message ({}): {message}", code.map_or("no code".to_owned(), |c| c.to_string()))]
    Smtp {
        code: Option<u16>,
        message: String,
        permanent: bool,
    },
    #[error("email is not configured on this server (no SMTP URL)")]
    NoMailer,
    #[error("{0:?} is not an email address")]
    BadAddress(String),
    #[error("the webhook secret is not a Standard Webhooks secret (whsec_ followed by base64)")]
    BadSecret,
    #[error("the prepared message does not fit the channel")]
    WrongFormat,
}

impl DeliveryError {
    /// The HTTP status or SMTP reply code the receiver gave, for the delivery log.
    pub fn status_code(&self) -> Option<u16> {
        match self {
            DeliveryError::Status { status, .. } => Some(*status),
            DeliveryError::Smtp { code, .. } => *code,
            _ => None,
        }
    }

    /// Whether retrying the same message cannot succeed without someone changing something
    /// (a bad address, a revoked webhook, a missing configuration): the outbox may give up early.
    pub fn is_permanent(&self) -> bool {
        match self {
            // A redirect (webhooks do not follow them) or a client error other than "slow down"
            // or "timed out" will answer the same next time.
            DeliveryError::Status { status, .. } => {
                (300..500).contains(status) && !matches!(status, 408 | 425 | 429)
            }
            DeliveryError::Smtp { permanent, .. } => *permanent,
            DeliveryError::Transport(_) | DeliveryError::Timeout => false,
            DeliveryError::NoMailer
            | DeliveryError::BadAddress(_)
            | DeliveryError::BadSecret
            | DeliveryError::WrongFormat => true,
        }
    }
}

/// Sends one prepared message. `message_id` is the outbox id: the same on every retry, it is
/// the `webhook-id` header and the email's Message-ID, so receivers can drop duplicates.
/// `http` should not follow redirects (see `server::jobs::webhook_client`).
pub async fn deliver(
    channel: &Channel,
    message_id: &str,
    prepared: &Prepared,
    http: &reqwest::Client,
    mailer: Option<&Mailer>,
) -> Result<DeliveryReceipt, DeliveryError> {
    match (channel, prepared) {
        (
            Channel::Email { to },
            Prepared::Email {
                subject,
                text,
                html,
            },
        ) => {
            let mailer = mailer.ok_or(DeliveryError::NoMailer)?;
            mailer.send(to, message_id, subject, text, html).await
        }
        (Channel::Slack { url }, Prepared::Json { body }) => {
            post(http, url, body, http_headers(message_id, None, body)?).await
        }
        (Channel::Webhook { url, secret }, Prepared::Json { body }) => {
            let headers = http_headers(message_id, secret.as_deref(), body)?;
            post(http, url, body, headers).await
        }
        _ => Err(DeliveryError::WrongFormat),
    }
}

/// `webhook-id`, `webhook-timestamp` and, with a secret, `webhook-signature`.
fn http_headers(
    message_id: &str,
    secret: Option<&str>,
    body: &str,
) -> Result<Vec<(&'static str, String)>, DeliveryError> {
    let timestamp = crate::server::now_ms() / 1000;
    let mut headers = vec![
        ("webhook-id", message_id.to_owned()),
        ("webhook-timestamp", timestamp.to_string()),
    ];
    if let Some(secret) = secret {
        let signature = crate::server::jobs::sign(secret, message_id, timestamp, body)
            .ok_or(DeliveryError::BadSecret)?;
        headers.push(("webhook-signature", signature));
    }
    Ok(headers)
}

async fn post(
    http: &reqwest::Client,
    url: &str,
    body: &str,
    headers: Vec<(&'static str, String)>,
) -> Result<DeliveryReceipt, DeliveryError> {
    let mut request = http
        .post(url)
        .timeout(DELIVERY_TIMEOUT)
        .header("content-type", "application/json")
        .body(body.to_owned());
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let attempt = async {
        let mut response = request.send().await?;
        let status = response.status().as_u16();
        if response.status().is_success() {
            return Ok(Ok(DeliveryReceipt {
                status_code: Some(status),
            }));
        }
        // The start of the answer says why (Slack answers "no_service", "invalid_payload", ...).
        let mut excerpt = Vec::new();
        while excerpt.len() < 300 {
            match response.chunk().await {
                Ok(Some(chunk)) => excerpt.extend_from_slice(&chunk),
                _ => break,
            }
        }
        let text = String::from_utf8_lossy(&excerpt[..excerpt.len().min(300)]);
        Ok(Err(DeliveryError::Status {
            status,
            body: one_line(&text),
        }))
    };
    match tokio::time::timeout(DELIVERY_TIMEOUT, attempt).await {
        Err(_) => Err(DeliveryError::Timeout),
        Ok(Err(e)) => Err(http_error(&e)),
        Ok(Ok(result)) => result,
    }
}

fn http_error(e: &reqwest::Error) -> DeliveryError {
    if e.is_timeout() {
        return DeliveryError::Timeout;
    }
    DeliveryError::Transport(error_chain(e))
}

/// The error and its causes on one line ("error sending request: connection refused").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    one_line(&text)
}

/// An SMTP connection setting and the sender address.
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    /// The SMTP URL with any password hidden, safe to log.
    display: String,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Mailer({}, from {})", self.display, self.from)
    }
}

impl Mailer {
    /// `smtp_url`: `smtp://host:port` (plain, for a relay on this machine or a test sink),
    /// `smtp://user:pass@host:587?tls=required` (STARTTLS), or `smtps://user:pass@host:465`
    /// (implicit TLS). A password over plain SMTP to another machine is refused.
    /// A path names this host in EHLO (`smtp://relay:25/cs.example.com`); without one the
    /// address literal `[127.0.0.1]` is used. Each message opens its own connection.
    /// `from`: `Countersign <countersign@example.com>` or a bare address.
    pub fn new(smtp_url: &str, from: &str) -> anyhow::Result<Mailer> {
        let mut parsed = url::Url::parse(smtp_url)
            .map_err(|e| anyhow::anyhow!("SMTP URL is not a valid URL: {e}"))?;
        let tls = parsed
            .query_pairs()
            .find(|(k, _)| k == "tls")
            .map(|(_, v)| v.into_owned());
        let loopback = match parsed.host() {
            Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => anyhow::bail!("SMTP URL has no host; expected smtp://host:port"),
        };
        if parsed.scheme() == "smtp" && tls.is_none() && parsed.password().is_some() && !loopback {
            anyhow::bail!(
                "SMTP URL would send the password unencrypted; use smtps://... or add ?tls=required"
            );
        }
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(smtp_url)
            .map_err(|e| anyhow::anyhow!("SMTP URL is not usable: {}", error_chain(&e)))?
            .timeout(Some(DELIVERY_TIMEOUT))
            .build();
        let from: Mailbox = from
            .parse()
            .map_err(|_| anyhow::anyhow!("sender address {from:?} is not an email address"))?;
        if parsed.password().is_some() {
            let _ = parsed.set_password(Some("***"));
        }
        Ok(Mailer {
            transport,
            from,
            display: parsed.to_string(),
        })
    }

    /// The SMTP URL with any password hidden.
    pub fn display(&self) -> &str {
        &self.display
    }

    /// Sends one email with plain-text and HTML alternatives.
    pub async fn send(
        &self,
        to: &str,
        message_id: &str,
        subject: &str,
        text: &str,
        html: &str,
    ) -> Result<DeliveryReceipt, DeliveryError> {
        let recipient: Mailbox = to
            .parse()
            .map_err(|_| DeliveryError::BadAddress(to.chars().take(120).collect()))?;
        let id: String = message_id
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
            .collect();
        let message = Message::builder()
            .from(self.from.clone())
            .to(recipient)
            .subject(subject)
            .message_id(Some(format!("<{id}@{}>", self.from.email.domain())))
            // RFC 3834: out-of-office replies and the like must not answer this.
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("Auto-Submitted"),
                "auto-generated".into(),
            ))
            .multipart(MultiPart::alternative_plain_html(
                text.to_owned(),
                html.to_owned(),
            ))
            .map_err(|e| DeliveryError::Transport(format!("email could not be built: {e}")))?;
        match tokio::time::timeout(DELIVERY_TIMEOUT, self.transport.send(message)).await {
            Err(_) => Err(DeliveryError::Timeout),
            Ok(Ok(response)) => Ok(DeliveryReceipt {
                status_code: Some(u16::from(response.code())),
            }),
            Ok(Err(e)) if e.is_timeout() => Err(DeliveryError::Timeout),
            Ok(Err(e)) if e.is_permanent() || e.is_transient() => Err(DeliveryError::Smtp {
                code: e.status().map(u16::from),
                message: error_chain(&e),
                permanent: e.is_permanent(),
            }),
            Ok(Err(e)) => Err(DeliveryError::Transport(error_chain(&e))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mailer_urls_are_checked_up_front() {
        let m = Mailer::new("smtp://127.0.0.1:2525", "Countersign <cs@example.com>").unwrap();
        assert_eq!(m.display(), "smtp://127.0.0.1:2525");
        let m = Mailer::new("smtps://app:hunter2@mail.example.com", "cs@example.com").unwrap();
        assert!(!m.display().contains("hunter2"), "{}", m.display());
        assert!(!format!("{m:?}").contains("hunter2"));
        Mailer::new(
            "smtp://app:pw@mail.example.com:587?tls=required",
            "cs@example.com",
        )
        .unwrap();
        Mailer::new("smtp://app:pw@localhost:25", "cs@example.com").unwrap();
        for (url, from, expected) in [
            (
                "smtp://app:pw@mail.example.com",
                "cs@example.com",
                "unencrypted",
            ),
            ("http://mail.example.com", "cs@example.com", "not usable"),
            ("not a url", "cs@example.com", "not a valid URL"),
            ("smtp://127.0.0.1:25", "nobody", "not an email address"),
        ] {
            let e = Mailer::new(url, from).unwrap_err().to_string();
            assert!(e.contains(expected), "{url}: {e}");
            assert!(!e.contains("pw@"), "{e}");
        }
    }

    #[test]
    fn channel_debug_hides_urls_and_secrets() {
        let c = Channel::Webhook {
            url: "https://hooks.example.com/T000/B000/XXXX".into(),
            secret: Some("whsec_c2VjcmV0".into()),
        };
        let shown = format!("{c:?}");
        assert_eq!(shown, "Webhook(hooks.example.com, signed)");
        let slack = Channel::Slack {
            url: "https://hooks.slack.com/services/T/B/secret".into(),
        };
        assert_eq!(format!("{slack:?}"), "Slack(hooks.slack.com)");
        let json = serde_json::to_value(&c).unwrap();
        assert_eq!(json["type"], "webhook");
    }

    #[test]
    fn permanent_errors_are_the_ones_retries_cannot_fix() {
        let status = |s| DeliveryError::Status {
            status: s,
            body: String::new(),
        };
        assert!(status(404).is_permanent());
        assert!(status(410).is_permanent());
        assert!(status(301).is_permanent());
        assert!(!status(429).is_permanent());
        assert!(!status(500).is_permanent());
        assert_eq!(status(503).status_code(), Some(503));
        assert!(!DeliveryError::Timeout.is_permanent());
        assert!(DeliveryError::NoMailer.is_permanent());
    }
}
