//! Graceful shutdown of the real binary: on SIGTERM it stops accepting connections, finishes a
//! request that is still arriving, lets the job loop finish the webhook it is delivering (so no
//! lease is left behind), and exits 0.

use countersign::server::config::DatabaseTarget;
use countersign::server::Db;
use serde_json::json;
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

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

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_in_flight_work_and_releases_leases() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    countersign(data, &["demo", "--days", "1", "--per-day", "5"]);
    let token = countersign(data, &["agent", "add", "shutdown-bot"])
        .lines()
        .find_map(|l| l.strip_prefix("API token (shown once):"))
        .unwrap()
        .trim()
        .to_owned();

    // A slow webhook receiver: it takes 2 s to answer, and says when a delivery began.
    let (began_tx, mut began) = tokio::sync::mpsc::unbounded_channel::<()>();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move || {
            let began = began_tx.clone();
            async move {
                let _ = began.send(());
                tokio::time::sleep(Duration::from_secs(2)).await;
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    let hooks = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook_port = hooks.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(hooks, app).await.unwrap() });

    let port = free_port();
    let mut server = Command::new(env!("CARGO_BIN_EXE_countersign"))
        .args([
            "--data-dir",
            data,
            "serve",
            "--bind",
            &format!("127.0.0.1:{port}"),
        ])
        // The test's webhook receiver listens on loopback.
        .args(["--insecure-cookies", "--allow-private-callbacks"])
        .env_remove("DATABASE_URL")
        .env("RUST_LOG", "off")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    while !reqwest::get(format!("{base}/readyz"))
        .await
        .is_ok_and(|r| r.status() == 200)
    {
        assert!(started.elapsed() < Duration::from_secs(20), "server starts");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // An auto-approved refund: its webhook goes out at once, and the receiver holds it.
    let body = |order: &str| {
        json!({
            "action_type": "payment.refund",
            "payload": {"order_id": order, "amount": "5.00", "currency": "EUR"},
            "amount": {"value": "5.00", "currency": "EUR"},
            "confidence": 0.95,
            "callback_url": format!("http://127.0.0.1:{hook_port}/hook"),
        })
        .to_string()
    };
    let res = reqwest::Client::new()
        .post(format!("{base}/api/v1/actions"))
        .bearer_auth(&token)
        .header("idempotency-key", "slow-hook")
        .header("content-type", "application/json")
        .body(body("ORD-1"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    tokio::time::timeout(Duration::from_secs(10), began.recv())
        .await
        .expect("the webhook delivery begins");

    // A slow request: headers and half the body now, the rest after SIGTERM.
    let second = body("ORD-2");
    let (head, tail) = second.split_at(second.len() / 2);
    let mut slow = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        slow,
        "POST /api/v1/actions HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer {token}\r\n\
         idempotency-key: slow-request\r\ncontent-type: application/json\r\n\
         content-length: {}\r\n\r\n{head}",
        second.len()
    )
    .unwrap();
    slow.flush().unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;

    assert!(Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap()
        .success());
    tokio::time::sleep(Duration::from_millis(500)).await;

    // No longer accepting...
    assert!(
        reqwest::Client::new()
            .get(format!("{base}/healthz"))
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .is_err(),
        "a shutting-down server accepts no new connection"
    );
    // ... but the request in flight completes.
    slow.write_all(tail.as_bytes()).unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut answer = Vec::new();
    let _ = slow.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");

    let exited = Instant::now();
    let status = loop {
        if let Some(s) = server.try_wait().unwrap() {
            break s;
        }
        assert!(
            exited.elapsed() < Duration::from_secs(20),
            "exits after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "{status}");

    // The webhook that was in flight finished and its lease was released.
    let db = Db::connect(&DatabaseTarget::Sqlite {
        path: dir.path().join("countersign.db"),
    })
    .await
    .unwrap();
    let Db::Sqlite(pool) = &db else {
        unreachable!()
    };
    let (leased, delivered): (i64, i64) = sqlx::query_as(
        "SELECT COUNT(locked_until), COUNT(delivered_at) FROM webhook_outbox \
         WHERE url LIKE '%/hook'",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(leased, 0, "no lease left behind");
    assert!(delivered >= 1, "the delivery in flight was finished");
    db.close().await;
}
