//! Notifications delivered for real: every event kind by email to a local SMTP sink and by
//! Slack-compatible and generic webhooks to a local HTTP receiver, both started by the test.
//! The first tests shape and send messages directly; the ones at the end run the whole server
//! on both engines: events queued in their transactions, people's preferences (immediate,
//! digest, off), team and gate channels, retries, the delivery log, and links that change
//! nothing when opened.

mod common;
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

// ---------------------------------------------------------------------------------------------
// The whole server, on both engines.

use common::{load_demo, Engine, TestServer};
use countersign::on_db;
use countersign::server::now_ms;
use std::time::Duration;

async fn wait_for(what: &str, mut check: impl AsyncFnMut() -> bool) {
    for _ in 0..300 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

async fn submit(server: &TestServer, token: &str, body: Value, key: &str) -> Value {
    let res = reqwest::Client::new()
        .post(server.url("/api/v1/actions"))
        .bearer_auth(token)
        .header("idempotency-key", key)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201, "submit {key}");
    res.json().await.unwrap()
}

fn refund(title: &str, acting_for: Option<&str>) -> Value {
    json!({
        "action_type": "payment.refund",
        "title": title,
        "payload": {"order_id": "ORD-SECRET-77", "amount": "2500.00", "currency": "EUR"},
        "amount": {"value": "2500.00", "currency": "EUR"},
        "counterparty": "Hooli",
        "confidence": 0.95,
        "acting_for": acting_for,
    })
}

/// Every email with `subject_part` in its subject, as (recipients, parsed).
fn mails(sink: &SmtpSink, subject_part: &str) -> Vec<(Vec<String>, support::ParsedEmail)> {
    sink.messages()
        .into_iter()
        .map(|m| (m.to.clone(), parse_email(&m.data)))
        .filter(|(_, e)| {
            e.header("subject")
                .is_some_and(|s| s.contains(subject_part))
        })
        .collect()
}

fn recipients(list: &[(Vec<String>, support::ParsedEmail)]) -> Vec<String> {
    let mut to: Vec<String> = list.iter().flat_map(|(t, _)| t.clone()).collect();
    to.sort();
    to
}

/// Every link to this server in `text` (plain text, HTML or a JSON body).
fn links(base: &str, text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (i, _) in text.match_indices(base) {
        let link: String = text[i..]
            .chars()
            .take_while(|c| !c.is_whitespace() && !matches!(c, '"' | '<' | '>' | '|' | '\\'))
            .collect();
        if !out.contains(&link) {
            out.push(link);
        }
    }
    out
}

/// What a GET must never change about a request.
async fn snapshot(db: &countersign::server::Db, id: &str) -> (String, i64, Option<i64>, i64, i64) {
    let (status, version, decided): (String, i64, Option<i64>) = on_db!(db, |p| sqlx::query_as(
        "SELECT status, state_version, decided_at FROM action_requests WHERE id = $1"
    )
    .bind(id)
    .fetch_one(p)
    .await
    .unwrap());
    let decisions = common::count(db, "decisions WHERE request_id = $1", &[id]).await;
    let tokens = common::count(db, "approval_tokens WHERE request_id = $1", &[id]).await;
    (status, version, decided, decisions, tokens)
}

fn reveal(html: &str, label: &str) -> String {
    let after = html
        .split(&format!("<dt>{label}</dt>"))
        .nth(1)
        .unwrap_or_else(|| panic!("{label} not revealed"));
    after
        .split("<code>")
        .nth(1)
        .unwrap()
        .split("</code>")
        .next()
        .unwrap()
        .to_owned()
}

async fn page(client: &reqwest::Client, url: &str) -> String {
    client.get(url).send().await.unwrap().text().await.unwrap()
}

async fn events_reach_people_and_channels_as_they_chose(engine: Engine) {
    let Some(t) = common::fresh_db(engine).await else {
        return;
    };
    load_demo(&t.db, 11, 1, 4, now_ms()).await;
    let agent = countersign::api::tokens::create_agent(
        &t.db,
        "notify-bot",
        "",
        &countersign::audit::repo::Actor::System,
    )
    .await
    .unwrap();
    on_db!(&t.db, |p| sqlx::query(
        "UPDATE agents SET owner_user_id = 'usr_alex' WHERE name = 'notify-bot'"
    )
    .execute(p)
    .await
    .map(|_| ())
    .unwrap());
    // The refunds gate puts the payload in chat messages, without the order id (a loosening:
    // a second admin approves it).
    countersign::gates::drafts::edit_draft(
        &t.db,
        "usr_alex",
        "refunds",
        |d| {
            d.settings.include_payload_in_chat = true;
            d.settings.redact_fields_in_chat = vec!["/order_id".into()];
            Ok(())
        },
        now_ms(),
    )
    .await
    .unwrap();
    let outcome =
        countersign::gates::drafts::request_publish(&t.db, "usr_alex", "refunds", now_ms())
            .await
            .unwrap();
    assert!(
        format!("{outcome:?}").contains("payloads now included in chat"),
        "{outcome:?}"
    );
    countersign::gates::drafts::approve(&t.db, "usr_priya", "refunds", now_ms())
        .await
        .unwrap();

    let (sink, smtp) = SmtpSink::start().await;
    let (receiver, hooks) = Receiver::start().await;
    let server = TestServer::start_with(t, |c| {
        c.smtp_url = Some(smtp.clone());
        c.job_interval = Duration::from_millis(50);
        c.webhook_schedule = [0, 150, 150]
            .into_iter()
            .map(Duration::from_millis)
            .collect();
        c.digest_interval = Duration::from_millis(1500);
    })
    .await;
    let db = server.db.db.clone();
    let alex = server.signed_in("alex@example.com").await;
    let sofia = server.signed_in("sofia@example.com").await;
    let ravi = server.signed_in("ravi@example.com").await;
    let dana = server.signed_in("dana@example.com").await;
    let marcus = server.signed_in("marcus@example.com").await;

    // Preferences: Sofia wants no review requests, Ravi wants them in a digest. Bad input is
    // refused, names the field, and changes nothing.
    let prefs = server.url("/account/notifications/save");
    for (form, why) in [
        (
            vec![("needs_review", "loud")],
            "needs_review: choose immediate, digest or off",
        ),
        (vec![("everything", "off")], "not a kind of notification"),
    ] {
        let res = sofia.post(&prefs).form(&form).send().await.unwrap();
        assert_eq!(res.status(), 303);
        let html = page(&sofia, &server.url("/account/notifications")).await;
        assert!(html.contains(why), "{why}: {html}");
    }
    assert_eq!(common::count(&db, "notification_preferences", &[]).await, 0);
    let anonymous = server
        .client()
        .post(&prefs)
        .form(&[("needs_review", "off")])
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 303);
    assert!(anonymous.headers()["location"]
        .to_str()
        .unwrap()
        .starts_with("/login"));
    assert_eq!(common::count(&db, "notification_preferences", &[]).await, 0);
    let res = sofia
        .post(&prefs)
        .form(&[("needs_review", "off")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let html = page(&sofia, &server.url("/account/notifications")).await;
    assert!(html.contains("Notification settings saved."), "{html}");
    assert!(
        html.contains(r#"id="pref-needs_review-off" name="needs_review" value="off" checked"#),
        "{html}"
    );
    ravi.post(&prefs)
        .form(&[("needs_review", "digest")])
        .send()
        .await
        .unwrap();

    // Channels: the support team's Slack, and two JSON webhooks on the refunds gate, one of
    // which always fails. Non-admins and bad targets are refused and add nothing.
    let support_team: String = on_db!(&db, |p| sqlx::query_scalar(
        "SELECT id FROM teams WHERE name = 'Customer Support'"
    )
    .fetch_one(p)
    .await
    .unwrap());
    let refunds_gate: String = on_db!(&db, |p| sqlx::query_scalar(
        "SELECT id FROM gates WHERE key = 'refunds'"
    )
    .fetch_one(p)
    .await
    .unwrap());
    let slack_url = format!("{hooks}/slack/T000/B000/sl4ckT0KEN");
    let add = |client: &reqwest::Client, form: Vec<(&str, String)>| {
        let form: Vec<(String, String)> =
            form.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        client
            .post(server.url("/admin/channels"))
            .form(&form)
            .send()
    };
    let res = add(
        &dana,
        vec![
            ("scope", format!("team:{support_team}")),
            ("kind", "slack".into()),
            ("target", slack_url.clone()),
            ("ev_needs_review", "on".into()),
        ],
    )
    .await
    .unwrap();
    assert_eq!(res.status(), 403);
    for (form, why) in [
        (
            vec![
                ("scope", format!("team:{support_team}")),
                ("kind", "slack".into()),
                ("target", "ftp://x.example/h".into()),
                ("ev_needs_review", "on".into()),
            ],
            "target: use an https://",
        ),
        (
            vec![
                ("scope", "team:nope".into()),
                ("kind", "slack".into()),
                ("target", slack_url.clone()),
                ("ev_needs_review", "on".into()),
            ],
            "scope: no such team",
        ),
        (
            vec![
                ("scope", format!("team:{support_team}")),
                ("kind", "slack".into()),
                ("target", slack_url.clone()),
            ],
            "events: tick at least one",
        ),
    ] {
        let res = add(&alex, form).await.unwrap();
        assert_eq!(res.status(), 303);
        let html = page(&alex, &server.url("/admin")).await;
        assert!(html.contains(why), "{why}");
    }
    assert_eq!(common::count(&db, "notification_channels", &[]).await, 0);
    const EVERY_EVENT: [&str; 6] = [
        "ev_needs_review",
        "ev_reminder",
        "ev_escalated",
        "ev_dual_conflict",
        "ev_breaker_opened",
        "ev_outcome",
    ];
    let all_events = |scope: String, kind: &str, target: String| {
        let mut form = vec![
            ("scope", scope),
            ("kind", kind.to_owned()),
            ("target", target),
        ];
        form.extend(EVERY_EVENT.map(|e| (e, "on".to_owned())));
        form
    };
    add(
        &alex,
        all_events(format!("team:{support_team}"), "slack", slack_url.clone()),
    )
    .await
    .unwrap();
    let html = page(&alex, &server.url("/admin")).await;
    assert!(
        html.contains("Channel added: Slack 127.0.0.1/…0KEN."),
        "{html}"
    );
    add(
        &alex,
        all_events(
            format!("gate:{refunds_gate}"),
            "webhook",
            format!("{hooks}/hook/h00kT0KEN"),
        ),
    )
    .await
    .unwrap();
    let html = page(&alex, &server.url("/admin")).await;
    let secret = reveal(&html, "Webhook signing secret");
    assert!(secret.starts_with("whsec_"));
    add(
        &alex,
        all_events(
            format!("gate:{refunds_gate}"),
            "webhook",
            format!("{hooks}/fail"),
        ),
    )
    .await
    .unwrap();
    let html = page(&alex, &server.url("/admin")).await;
    assert!(html.contains("data-testid=\"channels-table\""), "{html}");
    for secret_part in ["sl4ckT0KEN", "h00kT0KEN", &secret] {
        assert!(
            !html.contains(secret_part),
            "{secret_part} shown on the admin page"
        );
    }
    assert_eq!(common::count(&db, "notification_channels", &[]).await, 3);

    // A refund over 1,000 EUR made for Priya waits for review.
    let r = submit(
        &server,
        &agent.token,
        refund("Refund 2,500.00 EUR to Hooli", Some("priya@example.com")),
        "n-1",
    )
    .await;
    assert_eq!(r["status"], "pending", "{r}");
    let id = r["id"].as_str().unwrap().to_owned();
    let link = format!("{}/inbox/{id}", server.base);
    // Ravi's digest item was written from the submission, not read back from the stored
    // request; it says what the stored request reads back as.
    let held: String = on_db!(&db, |p| sqlx::query_scalar(
        "SELECT summary FROM digest_items WHERE user_id = 'usr_ravi' AND request_id = $1"
    )
    .bind(&id)
    .fetch_one(p)
    .await
    .unwrap());
    let mut tx = db.begin_write().await.unwrap();
    let mut read_back = countersign::notify::outbox::summary_of(&mut tx, &id)
        .await
        .unwrap();
    drop(tx);
    read_back.payload = Value::Null;
    assert_eq!(
        serde_json::from_str::<Value>(&held).unwrap(),
        serde_json::to_value(&read_back).unwrap()
    );

    wait_for("review emails", async || {
        recipients(&mails(&sink, "Review needed")).len() >= 2
    })
    .await;
    wait_for("the Slack and webhook messages", async || {
        !receiver.hits("slack/T000/B000/sl4ckT0KEN").is_empty()
            && !receiver.hits("hook/h00kT0KEN").is_empty()
    })
    .await;
    let review = mails(&sink, "Review needed");
    assert_eq!(
        recipients(&review),
        vec![
            "dana@example.com".to_owned(),
            "marcus@example.com".to_owned()
        ],
        "Sofia chose off, Ravi a digest; Priya may not review a request made for her; \
         Alex and Ines do not review"
    );
    let (_, mail) = &review[0];
    assert_eq!(
        mail.header("subject").unwrap(),
        "[Countersign] Review needed: Refund 2,500.00 EUR to Hooli"
    );
    for needle in [
        "2,500.00 EUR",
        "Hooli",
        "payment.refund",
        "2,500.00 EUR > 1,000.00 EUR threshold (rule over-1000)",
        "Deadline:",
        &link,
        LINK_NOTE,
    ] {
        assert!(
            mail.text.contains(needle),
            "{needle} missing:\n{}",
            mail.text
        );
    }
    assert!(!mail.text.contains("ORD-SECRET") && !mail.html.contains("ORD-SECRET"));

    // Chat carries the payload (the gate allows it) with the order id redacted.
    let slack = receiver.hits("slack/T000/B000/sl4ckT0KEN");
    assert_eq!(slack.len(), 1, "one message per channel, not per member");
    let slack_body = &slack[0].body;
    for needle in [
        "Review needed: Refund 2,500.00 EUR to Hooli",
        "2,500.00 EUR",
        "Hooli",
        "[redacted]",
        "2500.00",
        &link,
    ] {
        assert!(
            slack_body.contains(needle),
            "{needle} missing: {slack_body}"
        );
    }
    assert!(!slack_body.contains("ORD-SECRET"), "{slack_body}");
    let hook = &receiver.hits("hook/h00kT0KEN")[0];
    assert!(verify_signature(&secret, &hook.headers, &hook.body));
    let body: Value = serde_json::from_str(&hook.body).unwrap();
    assert_eq!(body["type"], "notification.needs_review");
    assert_eq!(body["data"]["request"]["id"], id.as_str());
    assert_eq!(body["data"]["request"]["payload"]["order_id"], "[redacted]");
    assert_eq!(body["data"]["request"]["counterparty"], "Hooli");

    // Scanner-safe: opening every link of every message, signed in or not, decides nothing.
    let before = snapshot(&db, &id).await;
    assert_eq!(before.0, "pending");
    let mut all_links: Vec<String> = Vec::new();
    for (_, m) in &review {
        all_links.extend(links(&server.base, &m.text));
        all_links.extend(links(&server.base, &m.html));
    }
    all_links.extend(links(&server.base, slack_body));
    all_links.extend(links(&server.base, &hook.body));
    all_links.sort();
    all_links.dedup();
    assert!(all_links.contains(&link), "{all_links:?}");
    let scanner = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::limited(5))
        .build()
        .unwrap();
    for l in &all_links {
        for client in [&scanner, &marcus, &dana] {
            let res = client.get(l).send().await.unwrap();
            assert!(res.status().as_u16() < 400, "{l}: {}", res.status());
            let res = client.head(l).send().await.unwrap();
            assert!(res.status().as_u16() < 500, "{l}: {}", res.status());
        }
    }
    assert_eq!(
        snapshot(&db, &id).await,
        before,
        "opening links changed the request"
    );

    // Ravi's digest arrives once the digest interval has passed, with the same facts.
    wait_for("Ravi's digest", async || !mails(&sink, "Digest").is_empty()).await;
    let digests = mails(&sink, "Digest");
    assert_eq!(digests.len(), 1);
    assert_eq!(digests[0].0, vec!["ravi@example.com".to_owned()]);
    let digest = &digests[0].1;
    assert_eq!(
        digest.header("subject").unwrap(),
        "[Countersign] Digest: 1 notification"
    );
    for needle in [
        "Review needed: Refund 2,500.00 EUR to Hooli",
        "2,500.00 EUR",
        "Hooli",
        &link,
    ] {
        assert!(
            digest.text.contains(needle),
            "{needle} missing:\n{}",
            digest.text
        );
    }
    assert_eq!(
        common::count(
            &db,
            "digest_items WHERE user_id = 'usr_ravi' AND sent_in IS NOT NULL",
            &[]
        )
        .await,
        1
    );

    // Dana rejects while one of the gate's channels fails: the decision is committed all the same.
    let res = dana
        .post(server.url(&format!("/inbox/{id}/decide")))
        .form(&[
            ("state_version", "1"),
            ("verdict", "reject"),
            ("reason", "Order was never shipped"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/inbox");
    assert_eq!(snapshot(&db, &id).await.0, "rejected");

    // The outcome reaches Priya (it was made for her) and Alex (he owns the agent), not Dana.
    wait_for("outcome emails", async || {
        recipients(&mails(&sink, "Rejected:")).len() >= 2
    })
    .await;
    let outcome = mails(&sink, "Rejected:");
    assert_eq!(
        recipients(&outcome),
        vec![
            "alex@example.com".to_owned(),
            "priya@example.com".to_owned()
        ]
    );
    let text = &outcome[0].1.text;
    for needle in [
        "Your request was rejected by Dana Whitfield.",
        "Order was never shipped",
        "2,500.00 EUR",
        "Hooli",
        &link,
    ] {
        assert!(text.contains(needle), "{needle} missing:\n{text}");
    }

    // The failing channel was tried on the retry schedule, then given up; the log says so.
    wait_for("the failing channel to be given up", async || {
        common::count(
            &db,
            "notifications n JOIN notification_channels c ON c.id = n.channel_id \
             WHERE c.channel LIKE '%/fail%' AND n.gave_up_at IS NOT NULL",
            &[],
        )
        .await
            >= 2
    })
    .await;
    let failed: Vec<(i64, Option<String>)> = on_db!(&db, |p| sqlx::query_as(
        "SELECT n.attempts, n.last_error FROM notifications n \
         JOIN notification_channels c ON c.id = n.channel_id WHERE c.channel LIKE '%/fail%'"
    )
    .fetch_all(p)
    .await
    .unwrap());
    for (attempts, error) in &failed {
        assert_eq!(*attempts, 3, "{error:?}");
        assert!(
            error.as_deref().unwrap_or_default().contains("HTTP 500"),
            "{error:?}"
        );
    }
    assert_eq!(receiver.hits("fail").len(), 3 * failed.len());
    let admin = page(&alex, &server.url("/admin")).await;
    assert!(admin.contains("gave up after 3 attempt(s)"), "{admin}");
    assert!(admin.contains("the receiver answered HTTP 500"), "{admin}");
    assert!(
        admin.contains("Webhook 127.0.0.1/…fail (signed)"),
        "{admin}"
    );
    assert!(!admin.contains("h00kT0KEN"));

    // Removing a channel stops it; removing it twice is refused.
    let chan: String = on_db!(&db, |p| sqlx::query_scalar(
        "SELECT id FROM notification_channels WHERE channel LIKE '%/fail%'"
    )
    .fetch_one(p)
    .await
    .unwrap());
    for expected in ["Channel removed", "already removed"] {
        let res = alex
            .post(server.url(&format!("/admin/channels/{chan}/remove")))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 303);
        assert!(page(&alex, &server.url("/admin")).await.contains(expected));
    }
    assert_eq!(
        common::count(
            &db,
            "audit_events WHERE event_type LIKE 'notification_channel_%'",
            &[]
        )
        .await,
        4
    );
    server.stop().await;
}
on_both_engines!(
    events_and_preferences,
    events_reach_people_and_channels_as_they_chose
);

async fn a_dual_conflict_goes_to_senior_reviewers(engine: Engine) {
    let Some(t) = common::fresh_db(engine).await else {
        return;
    };
    load_demo(&t.db, 12, 1, 4, now_ms()).await;
    let agent = countersign::api::tokens::create_agent(
        &t.db,
        "dual-bot",
        "",
        &countersign::audit::repo::Actor::System,
    )
    .await
    .unwrap();
    let (sink, smtp) = SmtpSink::start().await;
    let server = TestServer::start_with(t, |c| {
        c.smtp_url = Some(smtp.clone());
        c.job_interval = Duration::from_millis(50);
    })
    .await;
    let db = server.db.db.clone();
    let r = submit(
        &server,
        &agent.token,
        json!({
            "action_type": "payment.vendor",
            "title": "Pay Initech 30,000.00 EUR",
            "payload": {"invoice": "INV-9", "amount": "30000.00"},
            "amount": {"value": "30000.00", "currency": "EUR"},
            "counterparty": "Initech",
        }),
        "dual-1",
    )
    .await;
    assert_eq!(r["tier"], "dual", "{r}");
    let id = r["id"].as_str().unwrap().to_owned();
    // Marcus is one of the two reviewers, so the other senior reviewer... there is none in the
    // demo: add one, and record the two disagreeing decisions as the dual flow would.
    on_db!(&db, |p| {
        for sql in [
            "INSERT INTO users (id, email, display_name, created_at) VALUES ('usr_sam', 'sam@example.com', 'Sam Senior', 0)",
            "INSERT INTO user_roles (user_id, role) VALUES ('usr_sam', 'senior_reviewer')",
        ] {
            sqlx::query(sql).execute(p).await.unwrap();
        }
    });
    let mut tx = db.begin_write().await.unwrap();
    for (n, (who, kind, reason)) in [
        ("usr_dana", "approve", None),
        ("usr_marcus", "reject", Some("wrong IBAN")),
    ]
    .into_iter()
    .enumerate()
    {
        countersign::requests::repo::insert_decision(
            &mut tx,
            &countersign::requests::repo::NewDecision {
                id: format!("dec_dual_{n}"),
                request_id: id.clone(),
                reviewer_id: Some(who.into()),
                kind,
                state_version: 1,
                edited_payload: None,
                reason_code: None,
                reason_text: reason.map(Into::into),
                created_at: now_ms() + n as i64,
            },
        )
        .await
        .unwrap();
    }
    let queued = countersign::notify::dual_conflict(&mut tx, &server.state, &id, now_ms())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(queued, 1, "only Sam: Marcus already decided");
    wait_for("the conflict email", async || {
        !mails(&sink, "Reviewers disagree").is_empty()
    })
    .await;
    let got = mails(&sink, "Reviewers disagree");
    assert_eq!(recipients(&got), vec!["sam@example.com".to_owned()]);
    let text = &got[0].1.text;
    for needle in [
        "Reviewers disagree: Pay Initech 30,000.00 EUR",
        "Dana Whitfield: approve; Marcus Chen: reject (wrong IBAN)",
        "30,000.00 EUR",
        "Initech",
        &format!("{}/inbox/{id}", server.base),
    ] {
        assert!(text.contains(needle), "{needle} missing:\n{text}");
    }
    server.stop().await;
}
on_both_engines!(dual_conflict, a_dual_conflict_goes_to_senior_reviewers);

/// Posts a form and returns the page it redirects to (with its one-time message).
async fn post_and_read(
    server: &TestServer,
    client: &reqwest::Client,
    path: &str,
    form: &[(&str, &str)],
) -> String {
    let res = client
        .post(server.url(path))
        .form(form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303, "{path}");
    let to = res.headers()["location"].to_str().unwrap().to_owned();
    page(client, &server.url(&to)).await
}

async fn draft_settings(db: &countersign::server::Db) -> Value {
    let text: String = on_db!(db, |p| sqlx::query_scalar(
        "SELECT v.definition FROM gate_versions v JOIN gates g ON g.id = v.gate_id \
         WHERE g.key = 'refunds' AND v.published_at IS NULL"
    )
    .fetch_one(p)
    .await
    .unwrap());
    serde_json::from_str::<Value>(&text).unwrap()["settings"].clone()
}

async fn payloads_reach_chat_only_through_a_published_gate_setting(engine: Engine) {
    let Some(t) = common::fresh_db(engine).await else {
        return;
    };
    load_demo(&t.db, 13, 1, 4, now_ms()).await;
    let server = TestServer::start(t).await;
    let db = server.db.db.clone();
    let alex = server.signed_in("alex@example.com").await;
    post_and_read(&server, &alex, "/gates/refunds/draft", &[]).await;
    let before = draft_settings(&db).await;
    assert_eq!(before["include_payload_in_chat"], false, "off by default");
    let form = |redact: &'static str| {
        vec![
            ("deadline_minutes", "1440"),
            ("reminder_before_minutes", "60"),
            ("escalation_group", ""),
            ("auto_sample_rate", "0.02"),
            ("rejection_reasons", "wrong-amount: Wrong amount"),
            ("payload_schema", ""),
            ("breaker_rate_percent", "15"),
            ("breaker_window_minutes", "60"),
            ("breaker_min_decisions", "20"),
            ("breaker_on_open", "force_review"),
            ("chat_fields", "1"),
            ("include_payload_in_chat", "on"),
            ("redact_fields_in_chat", redact),
        ]
    };
    let html = post_and_read(
        &server,
        &alex,
        "/gates/refunds/draft/settings",
        &form("/order_id\nno-slash"),
    )
    .await;
    assert!(html.contains("redact_fields_in_chat[1]"), "{html}");
    assert_eq!(draft_settings(&db).await, before, "nothing changed");

    let html = post_and_read(
        &server,
        &alex,
        "/gates/refunds/draft/settings",
        &form("/order_id\n/customer/*/iban"),
    )
    .await;
    assert!(html.contains("Settings saved"), "{html}");
    assert!(
        html.contains(r#"name="include_payload_in_chat" checked"#),
        "{html}"
    );
    let saved = draft_settings(&db).await;
    assert_eq!(saved["include_payload_in_chat"], true);
    assert_eq!(
        saved["redact_fields_in_chat"],
        json!(["/order_id", "/customer/*/iban"])
    );

    // Sending payloads to chat is a loosening: one admin cannot publish it alone.
    let html = post_and_read(&server, &alex, "/gates/refunds/draft/publish", &[]).await;
    assert!(
        html.contains("payloads now included in chat and webhook notifications"),
        "{html}"
    );
    let live: i64 = common::count(
        &db,
        "gate_versions v JOIN gates g ON g.id = v.gate_id \
         WHERE g.key = 'refunds' AND v.published_at IS NOT NULL AND v.definition LIKE '%\"include_payload_in_chat\":true%'",
        &[],
    )
    .await;
    assert_eq!(live, 0, "not published yet");
    server.stop().await;
}
on_both_engines!(
    payload_in_chat,
    payloads_reach_chat_only_through_a_published_gate_setting
);
