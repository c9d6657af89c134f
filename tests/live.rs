//! Live inbox updates (`GET /inbox/events`): on SQLite within one server, and on PostgreSQL
//! across two servers sharing one database (an event published on A reaches a browser on B).

mod common;

use common::{fresh_db, load_demo, Engine, TestDb, TestServer};
use countersign::api::tokens;
use countersign::server::now_ms;
use serde_json::{json, Value};
use std::time::Duration;

/// Reads server-sent events from `res` until one with `id` arrives; returns its data.
async fn next_event_for(res: &mut reqwest::Response, id: &str) -> Value {
    let mut buffer = String::new();
    let found = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let chunk = res.chunk().await.unwrap().expect("stream stays open");
            buffer.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = buffer.find("\n\n") {
                let frame: String = buffer.drain(..end + 2).collect();
                let mut event = None;
                let mut data = None;
                for line in frame.lines() {
                    if let Some(e) = line.strip_prefix("event: ") {
                        event = Some(e.to_owned());
                    } else if let Some(d) = line.strip_prefix("data: ") {
                        data = Some(d.to_owned());
                    }
                }
                if let (Some(e), Some(d)) = (event, data) {
                    assert_eq!(e, "changed");
                    let v: Value = serde_json::from_str(&d).unwrap();
                    if v["id"] == id {
                        return v;
                    }
                }
            }
        }
    })
    .await;
    found.expect("the event arrives within 20 s")
}

async fn open_stream(server: &TestServer) -> reqwest::Response {
    let reviewer = server.signed_in("dana@example.com").await;
    let res = reviewer
        .get(server.url("/inbox/events"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    res
}

async fn submit(server: &TestServer, token: &str, key: &str, amount: &str) -> Value {
    let res = reqwest::Client::new()
        .post(server.url("/api/v1/actions"))
        .bearer_auth(token)
        .header("idempotency-key", key)
        .json(&json!({
            "action_type": "payment.refund",
            "payload": {"order_id": key, "amount": amount, "currency": "EUR"},
            "amount": {"value": amount, "currency": "EUR"},
            "confidence": 0.9,
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    res.json().await.unwrap()
}

async fn events_reach_a_signed_in_inbox(engine: Engine) {
    let Some(t) = fresh_db(engine).await else {
        return;
    };
    load_demo(&t.db, 3, 1, 5, now_ms()).await;
    let agent = tokens::create_agent(
        &t.db,
        "live-bot",
        "",
        &countersign::audit::repo::Actor::System,
    )
    .await
    .unwrap();
    let target = t.target.clone();
    let a = TestServer::start(t).await;

    // Only signed-in people may listen.
    let anonymous = a.client().get(a.url("/inbox/events")).send().await.unwrap();
    assert_ne!(anonymous.status(), 200, "sign-in required");

    // On PostgreSQL the browser is on a second server; on SQLite (one process) on the same one.
    let b = match engine {
        Engine::Postgres => {
            let db = countersign::server::Db::connect(&target).await.unwrap();
            let dir = tempfile::tempdir().unwrap();
            Some(TestServer::start(TestDb { db, target, dir }).await)
        }
        Engine::Sqlite => None,
    };
    let watcher = b.as_ref().unwrap_or(&a);
    let mut stream = open_stream(watcher).await;
    // Let B's LISTEN settle before A publishes (it starts with B's job loop).
    tokio::time::sleep(Duration::from_millis(300)).await;

    let submitted = submit(&a, &agent.token, "live-1", "2500.00").await;
    let id = submitted["id"].as_str().unwrap();
    assert_eq!(
        next_event_for(&mut stream, id).await,
        json!({"kind": "submitted", "id": id})
    );

    // Dana decides on server A; the browser on B hears about it.
    let dana = a.signed_in("dana@example.com").await;
    let decided = dana
        .post(a.url(&format!("/inbox/{id}/decide")))
        .form(&[("state_version", "1"), ("verdict", "approve")])
        .send()
        .await
        .unwrap();
    assert_eq!(decided.status(), 303);
    assert_eq!(
        next_event_for(&mut stream, id).await,
        json!({"kind": "decided", "id": id})
    );

    // A stream does not hold up a graceful shutdown: it ends when the server closes.
    drop(stream);
    if let Some(b) = b {
        b.stop().await;
    }
    a.stop().await;
}
on_both_engines!(
    events_reach_a_signed_in_inbox,
    events_reach_a_signed_in_inbox
);
