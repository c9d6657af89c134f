//! Invariant 9 against the real binary: an acknowledged decision (made by the gate at once, or by
//! a reviewer) survives `kill -9`, the agent learns it by polling, and its webhook is delivered
//! after the restart.

use serde_json::{json, Value};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

fn countersign(data: &str, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_countersign"))
        .args(["--data-dir", data])
        .args(args)
        .env_remove("DATABASE_URL")
        .env("RUST_LOG", "off")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn serve(data: &str, port: u16) -> Child {
    Command::new(env!("CARGO_BIN_EXE_countersign"))
        .args([
            "--data-dir",
            data,
            "serve",
            "--bind",
            &format!("127.0.0.1:{port}"),
            "--insecure-cookies",
            // The test's webhook receiver listens on loopback.
            "--allow-private-callbacks",
        ])
        .env_remove("DATABASE_URL")
        .env("RUST_LOG", "off")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Registers an agent with the real binary and returns its API token (printed once).
fn new_agent_token(data: &str, name: &str) -> String {
    countersign(data, &["agent", "add", name])
        .lines()
        .find_map(|l| l.strip_prefix("API token (shown once):"))
        .unwrap()
        .trim()
        .to_owned()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn wait_until_up(base: &str) {
    for _ in 0..200 {
        if reqwest::get(format!("{base}/healthz"))
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("server did not start");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acknowledged_decision_survives_kill_9_and_its_webhook_is_delivered_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    countersign(data, &["demo", "--days", "1", "--per-day", "5"]);
    let token = new_agent_token(data, "crash-test-agent");

    // The receiver's port is reserved but nothing listens yet: the first delivery fails.
    let hook_port = free_port();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut server = serve(data, port);
    wait_until_up(&base).await;

    let http = reqwest::Client::new();
    let res = http
        .post(format!("{base}/api/v1/actions"))
        .bearer_auth(&token)
        .header("idempotency-key", "crash-1")
        .json(&json!({
            "action_type": "payment.refund",
            "payload": {"order_id": "ORD-9", "amount": "5.00", "currency": "EUR"},
            "amount": {"value": "5.00", "currency": "EUR"},
            "confidence": 0.95,
            "callback_url": format!("http://127.0.0.1:{hook_port}/hook"),
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let acknowledged: Value = res.json().await.unwrap();
    assert_eq!(
        acknowledged["status"], "approved",
        "auto tier: decided at once"
    );
    let id = acknowledged["id"].as_str().unwrap().to_owned();

    // kill -9 right after the acknowledgement, before any webhook could be delivered.
    server.kill().unwrap();
    server.wait().unwrap();

    // Now the agent's receiver comes up, and the server restarts.
    let mut hook_rx = receiver(hook_port).await;
    let mut server = serve(data, port);
    wait_until_up(&base).await;

    // Polling shows the decision...
    let polled: Value = http
        .get(format!("{base}/api/v1/actions/{id}"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(polled["status"], "approved");
    assert_eq!(polled["approval_token"], acknowledged["approval_token"]);

    // ... and the webhook arrives (its retry is due within the 5 s backoff).
    let (message_id, body) = tokio::time::timeout(Duration::from_secs(30), hook_rx.recv())
        .await
        .expect("webhook delivered after the restart")
        .unwrap();
    let event: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(event["data"]["id"], id.as_str());
    assert_eq!(event["type"], "action.approved");
    assert!(message_id.starts_with("msg_"));

    // The same key after the crash returns the original response.
    let replay: Value = http
        .post(format!("{base}/api/v1/actions"))
        .bearer_auth(&token)
        .header("idempotency-key", "crash-1")
        .json(&json!({
            "action_type": "payment.refund",
            "payload": {"order_id": "ORD-9", "amount": "5.00", "currency": "EUR"},
            "amount": {"value": "5.00", "currency": "EUR"},
            "confidence": 0.95,
            "callback_url": format!("http://127.0.0.1:{hook_port}/hook"),
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(replay, acknowledged);
    server.kill().unwrap();
    server.wait().unwrap();
}

/// Starts the agent's webhook receiver on `port`; each delivery arrives as (message id, body).
async fn receiver(port: u16) -> tokio::sync::mpsc::UnboundedReceiver<(String, String)> {
    let (hook_tx, hook_rx) = tokio::sync::mpsc::unbounded_channel::<(String, String)>();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
            let tx = hook_tx.clone();
            async move {
                let _ = tx.send((headers["webhook-id"].to_str().unwrap().to_owned(), body));
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    hook_rx
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reviewers_acknowledged_decision_survives_kill_9_and_reaches_the_agent_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    countersign(data, &["demo", "--days", "1", "--per-day", "5"]);
    let token = new_agent_token(data, "crash-review-agent");
    let hook_port = free_port();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut server = serve(data, port);
    wait_until_up(&base).await;

    // A refund over 1,000 EUR waits for a reviewer.
    let agent = reqwest::Client::new();
    let submitted: Value = agent
        .post(format!("{base}/api/v1/actions"))
        .bearer_auth(&token)
        .header("idempotency-key", "crash-review-1")
        .json(&json!({
            "action_type": "payment.refund",
            "payload": {"order_id": "ORD-77", "amount": "2500.00", "currency": "EUR"},
            "amount": {"value": "2500.00", "currency": "EUR"},
            "confidence": 0.95,
            "callback_url": format!("http://127.0.0.1:{hook_port}/hook"),
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(submitted["status"], "pending", "{submitted}");
    let id = submitted["id"].as_str().unwrap().to_owned();

    // Dana signs in and approves; the 303 is the acknowledgement.
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("origin", base.parse().unwrap());
    let dana = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .default_headers(headers)
        .build()
        .unwrap();
    let signed_in = dana
        .post(format!("{base}/auth/login"))
        .form(&[
            ("email", "dana@example.com"),
            ("password", countersign::server::demo::DEMO_PASSWORD),
            ("next", "/inbox"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.headers()["location"], "/inbox");
    let decided = dana
        .post(format!("{base}/inbox/{id}/decide"))
        .form(&[("state_version", "1"), ("verdict", "approve")])
        .send()
        .await
        .unwrap();
    assert_eq!(decided.status(), 303, "the decision is acknowledged");

    // kill -9 before the webhook could be delivered (nothing listens on the hook port yet).
    server.kill().unwrap();
    server.wait().unwrap();
    let mut hooks = receiver(hook_port).await;
    let mut server = serve(data, port);
    wait_until_up(&base).await;

    let polled: Value = agent
        .get(format!("{base}/api/v1/actions/{id}"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(polled["status"], "approved", "{polled}");
    assert!(polled["approval_token"]
        .as_str()
        .is_some_and(|t| t.starts_with("cst_")));
    let (_, body) = tokio::time::timeout(Duration::from_secs(30), hooks.recv())
        .await
        .expect("webhook delivered after the restart")
        .unwrap();
    let event: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(event["type"], "action.approved");
    assert_eq!(event["data"]["id"], id.as_str());
    assert_eq!(event["data"]["approval_token"], polled["approval_token"]);
    server.kill().unwrap();
    server.wait().unwrap();
}
