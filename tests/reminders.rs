//! Deadlines end to end: a reminder before the deadline to everyone who may decide, escalation
//! to the gate's backup team when it passes, expiry as a rejection; notifications by email
//! through the outbox with a retry, and a link in them that decides nothing when opened.

mod common;
mod notify_support;

use common::{load_demo, Engine, TestServer};
use countersign::on_db;
use countersign::server::now_ms;
use notify_support::{parse_email, SmtpSink};
use serde_json::{json, Value};
use std::time::Duration;

async fn wait_for(what: &str, mut check: impl AsyncFnMut() -> bool) {
    for _ in 0..200 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

async fn reminders_and_escalations_reach_the_right_people(engine: Engine) {
    let Some(t) = common::fresh_db(engine).await else {
        return;
    };
    load_demo(&t.db, 6, 1, 5, now_ms()).await;
    let agent = countersign::api::tokens::create_agent(
        &t.db,
        "deadline-bot",
        "",
        &countersign::audit::repo::Actor::System,
    )
    .await
    .unwrap();
    // A backup team of two, one of whose mail server is busy the first time.
    on_db!(&t.db, |p| {
        for sql in [
            "INSERT INTO users (id, email, display_name, created_at) VALUES ('usr_busy', 'busy.backup@example.com', 'Busy Backup', 0)",
            "INSERT INTO teams (id, name, created_at) VALUES ('team_backup', 'backup', 0)",
            "INSERT INTO team_members (team_id, user_id) VALUES ('team_backup', 'usr_marcus')",
            "INSERT INTO team_members (team_id, user_id) VALUES ('team_backup', 'usr_busy')",
        ] {
            sqlx::query(sql).execute(p).await.unwrap();
        }
    });
    // The refunds gate escalates to that team and reminds 60 minutes before the deadline.
    countersign::gates::drafts::edit_draft(
        &t.db,
        "usr_alex",
        "refunds",
        |d| {
            d.settings.escalation_group = Some("backup".into());
            d.settings.reminder_before_minutes = Some(60);
            Ok(())
        },
        now_ms(),
    )
    .await
    .unwrap();
    countersign::gates::drafts::request_publish(&t.db, "usr_alex", "refunds", now_ms())
        .await
        .unwrap();

    let (sink, smtp) = SmtpSink::start().await;
    let server = TestServer::start_with(t, |c| {
        c.smtp_url = Some(smtp.clone());
        c.job_interval = Duration::from_millis(50);
        c.webhook_schedule = [0, 200, 200]
            .into_iter()
            .map(Duration::from_millis)
            .collect();
        c.escalation_window = Duration::from_secs(3600);
    })
    .await;
    let db = server.db.db.clone();

    // Due in 2 seconds: the reminder is due at once, the escalation when the deadline passes.
    let deadline = time::OffsetDateTime::now_utc() + time::Duration::seconds(2);
    let submitted: Value = reqwest::Client::new()
        .post(server.url("/api/v1/actions"))
        .bearer_auth(&agent.token)
        .header("idempotency-key", "soon")
        .json(&json!({
            "action_type": "payment.refund",
            "title": "Refund 2,500.00 EUR to Hooli",
            "payload": {"order_id": "ORD-1", "amount": "2500.00", "currency": "EUR"},
            "amount": {"value": "2500.00", "currency": "EUR"},
            "counterparty": "Hooli",
            "confidence": 0.95,
            "deadline": deadline.format(&time::format_description::well_known::Rfc3339).unwrap(),
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(submitted["status"], "pending", "{submitted}");
    let id = submitted["id"].as_str().unwrap().to_owned();

    // Reminders: one email to each person who may decide refunds (reviewers, senior reviewers).
    wait_for("reminders", async || {
        sink.messages().iter().any(|m| {
            parse_email(&m.data)
                .header("subject")
                .is_some_and(|s| s.contains("Reminder"))
        })
    })
    .await;
    let reminded: Vec<String> = on_db!(&db, |p| {
        sqlx::query_scalar(
        "SELECT u.email FROM notifications n JOIN users u ON u.id = n.user_id WHERE n.kind = 'reminder' ORDER BY u.email"
    )
    .fetch_all(p)
    .await
    .unwrap()
    });
    assert!(
        reminded.contains(&"dana@example.com".to_owned())
            && reminded.contains(&"marcus@example.com".to_owned()),
        "{reminded:?}"
    );
    assert!(
        !reminded.contains(&"ines@example.com".to_owned()),
        "auditors do not decide"
    );
    assert!(
        !reminded.contains(&"alex@example.com".to_owned()),
        "admins without a reviewing role do not decide"
    );
    assert_eq!(
        common::count(
            &db,
            "audit_events WHERE event_type = 'reminder_sent' AND request_id = $1",
            &[&id]
        )
        .await,
        1
    );

    // Escalation to the backup team; the busy server is retried.
    wait_for("escalation emails", async || {
        let to: Vec<String> = sink
            .messages()
            .iter()
            .filter(|m| {
                parse_email(&m.data)
                    .header("subject")
                    .is_some_and(|s| s.contains("Escalated"))
            })
            .flat_map(|m| m.to.clone())
            .collect();
        to.iter().any(|t| t.contains("marcus")) && to.iter().any(|t| t.contains("busy.backup"))
    })
    .await;
    // The sink has the message before the outbox row records its delivery.
    wait_for("the retried delivery to be recorded", async || {
        common::count(
            &db,
            "notifications WHERE kind = 'escalated' AND user_id = 'usr_busy' AND delivered_at IS NOT NULL",
            &[],
        )
        .await
            == 1
    })
    .await;
    let busy: (i64, Option<i64>) = on_db!(&db, |p| {
        sqlx::query_as(
        "SELECT attempts, delivered_at FROM notifications WHERE kind = 'escalated' AND user_id = 'usr_busy'"
    )
    .fetch_one(p)
    .await
    .unwrap()
    });
    assert_eq!(busy.0, 2, "refused once (451), delivered on the retry");
    assert!(busy.1.is_some());
    let status: String = on_db!(&db, |p| sqlx::query_scalar(
        "SELECT status FROM action_requests WHERE id = $1"
    )
    .bind(&id)
    .fetch_one(p)
    .await
    .unwrap());
    assert_eq!(status, "escalated");
    let escalated: String = on_db!(&db, |p| sqlx::query_scalar(
        "SELECT detail FROM audit_events WHERE event_type = 'escalated' AND request_id = $1"
    )
    .bind(&id)
    .fetch_one(p)
    .await
    .unwrap());
    assert!(
        escalated.contains("usr_busy") && escalated.contains("usr_marcus"),
        "{escalated}"
    );

    // The email's content, and its link: opening it (as a scanner or a person) decides nothing.
    let mail = sink
        .messages()
        .into_iter()
        .map(|m| parse_email(&m.data))
        .find(|m| m.header("subject").is_some_and(|s| s.contains("Escalated")))
        .unwrap();
    assert!(
        mail.text.contains("2,500.00 EUR") && mail.text.contains("Hooli"),
        "{}",
        mail.text
    );
    let link = format!("{}/inbox/{id}", server.base);
    assert!(mail.text.contains(&link), "{}", mail.text);
    let marcus = server.signed_in("marcus@example.com").await;
    assert_eq!(
        reqwest::get(&link).await.unwrap().status().as_u16() / 100,
        2,
        "an anonymous GET shows a page"
    );
    assert_eq!(marcus.get(&link).send().await.unwrap().status(), 200);
    assert_eq!(
        common::count(
            &db,
            "decisions WHERE request_id = $1 AND reviewer_id IS NOT NULL",
            &[&id]
        )
        .await,
        0
    );

    // Admins see the delivery log.
    let alex = server.signed_in("alex@example.com").await;
    let admin = alex
        .get(server.url("/admin"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        admin.contains("data-testid=\"notifications-table\"")
            && admin.contains("busy.backup@example.com"),
        "{admin}"
    );
    server.stop().await;
}
on_both_engines!(deadlines, reminders_and_escalations_reach_the_right_people);
