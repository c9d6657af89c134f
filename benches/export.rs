//! Audit export at scale, through the real server: 1,000,000 events streamed as JSON Lines over
//! HTTP on loopback (target: under 10 s with the server's peak memory under 100 MB; see
//! BENCHMARKS.md). Run with `cargo bench --features ssr --bench export`.
//!
//! Not a criterion bench: one run of a multi-second export is the measurement, and the figure
//! that matters besides time is the server process's peak resident memory (VmHWM).
//!
//! With `COUNTERSIGN_BENCH_PG_URL` the chain is copied into a new PostgreSQL database
//! (`support/postgres.rs`) and the server exports from there.

#[path = "support/postgres.rs"]
mod postgres;

use countersign::audit::chain::{chain_hash, EventBody, GENESIS_HASH};
use countersign::server::config::DatabaseTarget;
use countersign::server::Db;
use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// 1,000,000, or `COUNTERSIGN_BENCH_EVENTS` (the smoke run uses a few thousand).
fn events() -> i64 {
    std::env::var("COUNTERSIGN_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000)
}
const PASSWORD: &str = "benchmark passphrase";

#[tokio::main]
async fn main() {
    // `cargo bench` passes `--bench`; a filter that does not match this bench skips it.
    if std::env::args()
        .skip(1)
        .any(|a| !a.starts_with('-') && !"export".contains(a.as_str()))
    {
        return;
    }
    let bin = env!("CARGO_BIN_EXE_countersign");
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap().to_owned();

    let started = Instant::now();
    fill(&dir.path().join("countersign.db")).await;
    println!(
        "generated {} chained audit events in {:.1} s",
        events(),
        started.elapsed().as_secs_f64()
    );
    let pg = postgres::url();
    let run_database = format!("bench_export_run_{}", std::process::id());
    let database_url = match &pg {
        None => String::new(),
        Some(admin) => {
            postgres::template_of(admin, &run_database, &dir.path().join("countersign.db")).await;
            postgres::database_url(admin, &run_database)
        }
    };

    let mut add = Command::new(bin)
        .args([
            "--data-dir",
            &data,
            "user",
            "add",
            "--role",
            "auditor",
            "bench@example.com",
        ])
        .env("DATABASE_URL", &database_url)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    add.stdin
        .take()
        .unwrap()
        .write_all(format!("{PASSWORD}\n").as_bytes())
        .unwrap();
    assert!(add.wait().unwrap().success());

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let mut server = Command::new(bin)
        .args([
            "--data-dir",
            &data,
            "serve",
            "--bind",
            &format!("127.0.0.1:{port}"),
            "--insecure-cookies",
        ])
        .env("RUST_LOG", "warn")
        .env("DATABASE_URL", &database_url)
        .spawn()
        .unwrap();
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for _ in 0..200 {
        if client.get(format!("{base}/healthz")).send().await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let rss_before = memory(server.id(), "VmRSS");
    let res = client
        .post(format!("{base}/auth/login"))
        .header("origin", &base)
        .form(&[
            ("email", "bench@example.com"),
            ("password", PASSWORD),
            ("next", "/audit"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303, "the auditor signs in");

    let started = Instant::now();
    let mut res = client
        .get(format!("{base}/audit/export.jsonl"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let (mut bytes, mut lines) = (0_u64, 0_u64);
    while let Some(chunk) = res.chunk().await.unwrap() {
        bytes += chunk.len() as u64;
        lines += chunk.iter().filter(|b| **b == b'\n').count() as u64;
    }
    let took = started.elapsed();
    let peak = memory(server.id(), "VmHWM");
    let _ = server.kill();
    let _ = server.wait();
    if let Some(admin) = &pg {
        postgres::drop_database(admin, &run_database).await;
    }
    assert!(
        lines as i64 > events(),
        "every event was exported ({lines} lines)"
    );
    println!(
        "export from {}: {lines} events, {:.0} MB of JSON Lines in {:.2} s = {:.0} events/s (target: 1,000,000 in under 10 s)",
        if pg.is_some() { "PostgreSQL" } else { "SQLite" },
        bytes as f64 / 1e6,
        took.as_secs_f64(),
        lines as f64 / took.as_secs_f64()
    );
    println!(
        "server memory: {:.0} MB resident at start, {:.0} MB peak during the export (target: peak under 100 MB)",
        rss_before as f64 / 1024.0,
        peak as f64 / 1024.0
    );
}

/// Peak (`VmHWM`) or current (`VmRSS`) resident memory of a process, in KiB.
fn memory(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Writes a valid chain of demo-shaped events straight into a fresh database.
async fn fill(path: &std::path::Path) {
    let db = Db::connect(&DatabaseTarget::Sqlite {
        path: path.to_owned(),
    })
    .await
    .unwrap();
    db.migrate().await.unwrap();
    let Db::Sqlite(pool) = &db else {
        unreachable!()
    };
    let mut tx = pool.begin().await.unwrap();
    let mut prev = GENESIS_HASH.to_owned();
    const BATCH: i64 = 500;
    let total = events();
    for start in (1..=total).step_by(BATCH as usize) {
        let mut sql = String::from(
            "INSERT INTO audit_events (seq, occurred_at, actor_kind, actor_id, event_type, request_id, detail, prev_hash, hash) VALUES ",
        );
        let mut rows = Vec::new();
        for seq in start..(start + BATCH).min(total + 1) {
            let e = EventBody {
                seq,
                occurred_at: 1_790_000_000_000 + seq * 1_000,
                actor_kind: "user".into(),
                actor_id: Some(format!("usr_{}", seq % 9)),
                event_type: if seq % 2 == 0 {
                    "decision"
                } else {
                    "request_viewed"
                }
                .into(),
                request_id: Some(format!("req_{seq:012}")),
                detail: format!(
                    r#"{{"kind":"approve","state_version":1,"ip":"10.0.0.{}","user_agent":"Mozilla/5.0 (X11; Linux x86_64) Chrome/156.0.0.0"}}"#,
                    seq % 255
                ),
            };
            let hash = chain_hash(&prev, &e);
            rows.push((e, prev.clone(), hash.clone()));
            prev = hash;
        }
        sql.push_str(&vec!["(?, ?, ?, ?, ?, ?, ?, ?, ?)"; rows.len()].join(", "));
        let mut q = sqlx::query(&sql);
        for (e, p, h) in rows {
            q = q
                .bind(e.seq)
                .bind(e.occurred_at)
                .bind(e.actor_kind)
                .bind(e.actor_id)
                .bind(e.event_type)
                .bind(e.request_id)
                .bind(e.detail)
                .bind(p)
                .bind(h);
        }
        q.execute(&mut *tx).await.unwrap();
    }
    tx.commit().await.unwrap();
    db.close().await;
}
