//! Notifications delivered for real: every event kind by email to a local SMTP sink and by
//! Slack-compatible and generic webhooks to a local HTTP receiver, both started by the test.
//! No database: the outbox wiring is tested with the outbox.

#[path = "notify_support/mod.rs"]
mod support;

use countersign::notify::{
    deliver, prepare, render, Channel, DeliveryError, Mailer, NotificationKind, PayloadPolicy,
    Prepared, RequestSummary, LINK_NOTE,
};
use countersign::server::jobs::webhook_client;
use serde_json::{json, Value};
use support::{parse_email, verify_signature, Receiver, SmtpSink};

const NOW: i64 = 1_795_219_200_000; // 2026-11-21T00:00:00Z
const BASE: &str = "https://countersign.example.com";
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn summary(kind: NotificationKind) -> RequestSummary {
    let (status, decided_by, reason) = match kind {
        NotificationKind::Escalated => ("escalated", None, Some("No decision by the deadline")),
        NotificationKind::DualConflict => (
            "in_review",
            None,
            Some("Ana approved; Ben rejected: wrong IBAN"),
        ),
        NotificationKind::BreakerOpened => (
            "rejected",
            None,
            Some("7 of 40 requests rejected in the last hour (17.5% > 15%)"),
        ),
        NotificationKind::Outcome => (
            "rejected",
            Some("Dana Reviewer"),
            Some("Duplicate of INV-6"),
        ),
        _ => ("pending", None, None),
    };
    RequestSummary {
        id: "req_0193".into(),
        title: "Pay invoice INV-7 to Globex".into(),
        action_type: "payment.wire".into(),
        agent: "payables-bot".into(),
        amount: Some("4,200.00 EUR".into()),
        counterparty: Some("Globex GmbH".into()),
        explanation: "amount above 1,000.00 EUR (gate payments v3, rule 2)".into(),
        tier: "review".into(),
        deadline_at_ms: Some(NOW + 3 * 3_600_000 + 5 * 60_000),
        status: status.into(),
        payload: json!({"iban": "DE89 3704 0044 0532 0130 00", "amount": "4200.00", "memo": "INV-7"}),
        decided_by: decided_by.map(Into::into),
        reason: reason.map(Into::into),
    }
}

/// What every message about `kind` must say, whatever the channel.
fn expected(kind: NotificationKind) -> Vec<&'static str> {
    let mut needles = vec![
        "4,200.00 EUR",
        "Globex GmbH",
        "payment.wire",
        "amount above 1,000.00 EUR (gate payments v3, rule 2)",
    ];
    needles.push(match kind {
        NotificationKind::BreakerOpened => "https://countersign.example.com/admin",
        _ => "https://countersign.example.com/inbox/req_0193",
    });
    match kind {
        NotificationKind::NeedsReview | NotificationKind::Reminder => {
            needles.push("2026-11-21 03:05 UTC (in 3h)")
        }
        NotificationKind::Escalated => needles.extend([
            "2026-11-21 03:05 UTC (in 3h)",
            "No decision by the deadline",
        ]),
        NotificationKind::DualConflict => needles.extend([
            "2026-11-21 03:05 UTC (in 3h)",
            "Ana approved; Ben rejected: wrong IBAN",
        ]),
        NotificationKind::BreakerOpened => needles.extend(["payables-bot", "17.5% &gt; 15%"]),
        NotificationKind::Outcome => {
            needles.extend(["Rejected", "Dana Reviewer", "Duplicate of INV-6"])
        }
    }
    needles
}

fn subject(kind: NotificationKind) -> &'static str {
    match kind {
        NotificationKind::NeedsReview => "Review needed: Pay invoice INV-7 to Globex",
        NotificationKind::Reminder => "Reminder: Pay invoice INV-7 to Globex is due in 3h",
        NotificationKind::Escalated => "Escalated to you: Pay invoice INV-7 to Globex",
        NotificationKind::DualConflict => "Reviewers disagree: Pay invoice INV-7 to Globex",
        NotificationKind::BreakerOpened => "Breaker opened: agent payables-bot is paused",
        NotificationKind::Outcome => "Rejected: Pay invoice INV-7 to Globex",
    }
}

/// `&gt;` is how HTML and Slack's mrkdwn write `>`; plain text and JSON strings keep it raw.
fn raw(needle: &str) -> String {
    needle.replace("&gt;", ">")
}

#[tokio::test]
async fn every_kind_arrives_by_email_with_the_right_content() {
    let (sink, smtp_url) = SmtpSink::start().await;
    let mailer = Mailer::new(&smtp_url, "Countersign <countersign@example.com>").unwrap();
    let http = webhook_client();
    let channel = Channel::Email {
        to: "dana@example.com".into(),
    };
    for (i, kind) in NotificationKind::ALL.into_iter().enumerate() {
        let r = summary(kind);
        let n = render(kind, &r, BASE, NOW);
        let prepared = prepare(&channel, &n, &r, &PayloadPolicy::default());
        let receipt = deliver(
            &channel,
            &format!("ntf_{i}"),
            &prepared,
            &http,
            Some(&mailer),
        )
        .await
        .unwrap();
        assert_eq!(receipt.status_code, Some(250));

        let got = sink
            .messages()
            .pop()
            .expect("the sink received the message");
        assert_eq!(got.from, "countersign@example.com");
        assert_eq!(got.to, vec!["dana@example.com".to_string()]);
        let email = parse_email(&got.data);
        assert_eq!(
            email.header("Subject").unwrap(),
            format!("[Countersign] {}", subject(kind))
        );
        assert_eq!(
            email.header("Message-ID").unwrap(),
            format!("<ntf_{i}@example.com>")
        );
        assert_eq!(email.header("Auto-Submitted").unwrap(), "auto-generated");
        for needle in expected(kind) {
            assert!(
                email.text.contains(&raw(needle)),
                "{kind:?} text lacks {needle:?}:\n{}",
                email.text
            );
            assert!(
                email.html.contains(needle),
                "{kind:?} HTML lacks {needle:?}:\n{}",
                email.html
            );
        }
        assert!(email.text.contains(LINK_NOTE));
        assert!(
            !got.data.contains("DE89"),
            "email never carries the payload"
        );
        assert!(!email.text.contains("DE89") && !email.html.contains("DE89"));
    }
    assert_eq!(sink.messages().len(), NotificationKind::ALL.len());
}

#[tokio::test]
async fn every_kind_arrives_in_slack_without_the_payload() {
    let (receiver, base) = Receiver::start().await;
    let http = webhook_client();
    let channel = Channel::Slack {
        url: format!("{base}/slack"),
    };
    for (i, kind) in NotificationKind::ALL.into_iter().enumerate() {
        let r = summary(kind);
        let n = render(kind, &r, BASE, NOW);
        let prepared = prepare(&channel, &n, &r, &PayloadPolicy::default());
        let receipt = deliver(&channel, &format!("ntf_{i}"), &prepared, &http, None)
            .await
            .unwrap();
        assert_eq!(receipt.status_code, Some(200));

        let hit = receiver.hits("slack").pop().unwrap();
        assert_eq!(hit.headers["content-type"], "application/json");
        let msg: Value = serde_json::from_str(&hit.body).unwrap();
        assert!(msg["text"].as_str().unwrap().starts_with(subject(kind)));
        assert_eq!(msg["blocks"][0]["text"]["text"], subject(kind));
        let buttons: Vec<&Value> = msg["blocks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|b| b["type"] == "actions")
            .collect();
        assert_eq!(buttons[0]["elements"][0]["url"], n.link.as_str());
        for needle in expected(kind) {
            assert!(
                hit.body.contains(needle),
                "{kind:?} Slack message lacks {needle:?}: {}",
                hit.body
            );
        }
        for secret in ["DE89", "iban", "Payload"] {
            assert!(
                !hit.body.contains(secret),
                "{kind:?}: {secret} leaked: {}",
                hit.body
            );
        }
    }
}

#[tokio::test]
async fn a_gate_can_include_the_payload_with_fields_redacted() {
    let (receiver, base) = Receiver::start().await;
    let http = webhook_client();
    let policy = PayloadPolicy {
        include_payload: true,
        redact: vec!["/iban".into()],
    };
    let r = summary(NotificationKind::NeedsReview);
    let n = render(NotificationKind::NeedsReview, &r, BASE, NOW);
    let slack = Channel::Slack {
        url: format!("{base}/slack"),
    };
    let hook = Channel::Webhook {
        url: format!("{base}/hook"),
        secret: Some(SECRET.into()),
    };
    for channel in [&slack, &hook] {
        let prepared = prepare(channel, &n, &r, &policy);
        deliver(channel, "ntf_p", &prepared, &http, None)
            .await
            .unwrap();
    }
    let slack_body = &receiver.hits("slack")[0].body;
    assert!(
        slack_body.contains("[redacted]") && slack_body.contains("INV-7"),
        "{slack_body}"
    );
    assert!(!slack_body.contains("DE89"));
    let hook_body: Value = serde_json::from_str(&receiver.hits("hook")[0].body).unwrap();
    let payload = &hook_body["data"]["request"]["payload"];
    assert_eq!(
        payload,
        &json!({"iban": "[redacted]", "amount": "4200.00", "memo": "INV-7"})
    );
}

#[tokio::test]
async fn every_kind_arrives_as_a_signed_json_webhook() {
    let (receiver, base) = Receiver::start().await;
    let http = webhook_client();
    let channel = Channel::Webhook {
        url: format!("{base}/hook"),
        secret: Some(SECRET.into()),
    };
    for (i, kind) in NotificationKind::ALL.into_iter().enumerate() {
        let r = summary(kind);
        let n = render(kind, &r, BASE, NOW);
        let prepared = prepare(&channel, &n, &r, &PayloadPolicy::default());
        deliver(&channel, &format!("ntf_{i}"), &prepared, &http, None)
            .await
            .unwrap();

        let hit = receiver.hits("hook").pop().unwrap();
        assert_eq!(hit.headers["webhook-id"], format!("ntf_{i}").as_str());
        assert!(
            verify_signature(SECRET, &hit.headers, &hit.body),
            "{kind:?}: signature"
        );
        let body: Value = serde_json::from_str(&hit.body).unwrap();
        assert_eq!(body["type"], format!("notification.{}", kind.as_str()));
        assert_eq!(body["data"]["subject"], subject(kind));
        assert_eq!(body["data"]["link"], n.link.as_str());
        let request = &body["data"]["request"];
        assert_eq!(request["id"], "req_0193");
        assert_eq!(request["amount"], "4,200.00 EUR");
        assert_eq!(request["counterparty"], "Globex GmbH");
        assert_eq!(request["deadline_at"], "2026-11-21T03:05:00Z");
        assert_eq!(request["payload_included"], false);
        assert!(request.get("payload").is_none());
        for needle in expected(kind) {
            assert!(
                hit.body.contains(&raw(needle)),
                "{kind:?} webhook lacks {needle:?}"
            );
        }
        assert!(!hit.body.contains("DE89"));
    }
    // Without a secret the body goes unsigned; a malformed secret is refused before sending.
    let unsigned = Channel::Webhook {
        url: format!("{base}/open"),
        secret: None,
    };
    let r = summary(NotificationKind::Outcome);
    let n = render(NotificationKind::Outcome, &r, BASE, NOW);
    let prepared = prepare(&unsigned, &n, &r, &PayloadPolicy::default());
    deliver(&unsigned, "ntf_u", &prepared, &http, None)
        .await
        .unwrap();
    assert!(receiver.hits("open")[0]
        .headers
        .get("webhook-signature")
        .is_none());
    let bad = Channel::Webhook {
        url: format!("{base}/open"),
        secret: Some("hunter2".into()),
    };
    let e = deliver(&bad, "ntf_b", &prepared, &http, None)
        .await
        .unwrap_err();
    assert_eq!(e, DeliveryError::BadSecret);
    assert_eq!(receiver.hits("open").len(), 1);
}

#[tokio::test]
async fn a_failing_receiver_yields_its_status_and_a_retry_delivers_the_same_message() {
    let (receiver, base) = Receiver::start().await;
    let http = webhook_client();
    let r = summary(NotificationKind::NeedsReview);
    let n = render(NotificationKind::NeedsReview, &r, BASE, NOW);

    let failing = Channel::Webhook {
        url: format!("{base}/fail"),
        secret: Some(SECRET.into()),
    };
    let prepared = prepare(&failing, &n, &r, &PayloadPolicy::default());
    let e = deliver(&failing, "ntf_f", &prepared, &http, None)
        .await
        .unwrap_err();
    assert_eq!(
        e,
        DeliveryError::Status {
            status: 500,
            body: "boom".into()
        }
    );
    assert_eq!(e.status_code(), Some(500));
    assert!(!e.is_permanent(), "a 500 is worth retrying");

    // The outbox retries the stored message under its id: the receiver sees the same bytes.
    let flaky = Channel::Slack {
        url: format!("{base}/flaky"),
    };
    let prepared = prepare(&flaky, &n, &r, &PayloadPolicy::default());
    let e = deliver(&flaky, "ntf_r", &prepared, &http, None)
        .await
        .unwrap_err();
    assert_eq!(e.status_code(), Some(503));
    let ok = deliver(&flaky, "ntf_r", &prepared, &http, None)
        .await
        .unwrap();
    assert_eq!(ok.status_code, Some(200));
    let hits = receiver.hits("flaky");
    assert_eq!(hits.len(), 2);
    assert_eq!(hits[0].body, hits[1].body);
    assert_eq!(hits[0].headers["webhook-id"], hits[1].headers["webhook-id"]);

    // Nobody listening: a transport error, worth retrying.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let gone = Channel::Webhook {
        url: format!("http://127.0.0.1:{port}/hook"),
        secret: None,
    };
    let e = deliver(&gone, "ntf_g", &prepared, &http, None)
        .await
        .unwrap_err();
    assert!(matches!(e, DeliveryError::Transport(_)), "{e:?}");
    assert!(!e.is_permanent());
}

#[tokio::test]
async fn mail_failures_say_whether_a_retry_can_help() {
    let (sink, smtp_url) = SmtpSink::start().await;
    let mailer = Mailer::new(&smtp_url, "countersign@example.com").unwrap();
    let http = webhook_client();
    let r = summary(NotificationKind::Reminder);
    let n = render(NotificationKind::Reminder, &r, BASE, NOW);

    let busy = Channel::Email {
        to: "busy@example.com".into(),
    };
    let prepared = prepare(&busy, &n, &r, &PayloadPolicy::default());
    let e = deliver(&busy, "ntf_m", &prepared, &http, Some(&mailer))
        .await
        .unwrap_err();
    assert_eq!(e.status_code(), Some(451), "{e:?}");
    assert!(!e.is_permanent());
    assert!(sink.messages().is_empty());
    let ok = deliver(&busy, "ntf_m", &prepared, &http, Some(&mailer))
        .await
        .unwrap();
    assert_eq!(ok.status_code, Some(250));
    assert_eq!(sink.messages().len(), 1);

    let bounce = Channel::Email {
        to: "bounce@example.com".into(),
    };
    let e = deliver(&bounce, "ntf_x", &prepared, &http, Some(&mailer))
        .await
        .unwrap_err();
    assert_eq!(e.status_code(), Some(550), "{e:?}");
    assert!(e.is_permanent());

    let bad = Channel::Email {
        to: "not an address".into(),
    };
    let e = deliver(&bad, "ntf_y", &prepared, &http, Some(&mailer))
        .await
        .unwrap_err();
    assert!(matches!(e, DeliveryError::BadAddress(_)), "{e:?}");
    let e = deliver(&busy, "ntf_z", &prepared, &http, None)
        .await
        .unwrap_err();
    assert_eq!(e, DeliveryError::NoMailer);
    let e = deliver(
        &busy,
        "ntf_z",
        &Prepared::Json { body: "{}".into() },
        &http,
        Some(&mailer),
    )
    .await
    .unwrap_err();
    assert_eq!(e, DeliveryError::WrongFormat);
    assert_eq!(sink.messages().len(), 1);
}
