//! The inbox page under load, through the real server (release binary) on loopback.
//!
//! The database holds the demo simulator's year (see `support/history.rs`): 1,000,000 requests,
//! 100,000 of them still open (human-tier requests left undecided, deadlines 30 days ahead), kept
//! in the temp directory and reused. `countersign serve` runs on it as its own process; 20
//! reviewers sign in through the login form (each its own session) and load the server-rendered
//! `GET /inbox` with filters for `SECONDS`: the unfiltered first page, `tier=review`,
//! `tier=review&gate=refunds`, `gate=vendor-payments` and `agent=ap-clerk`, in turn.
//! Memory is the server process's resident set (`VmRSS`, sampled every 100 ms) and its peak
//! (`VmHWM`), read from `/proc`.
//!
//! Run: `cargo bench --features ssr --bench inbox` (`COUNTERSIGN_BENCH_CLIENTS`, default 20;
//! `COUNTERSIGN_BENCH_SECONDS`, default 20; `COUNTERSIGN_BENCH_ROWS`, default 1,000,000, with a
//! tenth open). Targets: p95 under 100 ms, resident memory under 150 MB.

#[path = "support/history.rs"]
mod history;

use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const REVIEWERS: [&str; 3] = [
    "marcus@example.com",
    "sofia@example.com",
    "priya@example.com",
];

pub const PAGES: [&str; 5] = [
    "/inbox",
    "/inbox?tier=review",
    "/inbox?tier=review&gate=refunds",
    "/inbox?gate=vendor-payments",
    "/inbox?agent=ap-clerk",
];

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Current (`VmRSS`) or peak (`VmHWM`) resident memory of a process, in KiB.
fn memory(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn percentile_ms(sorted_us: &[u64], p: f64) -> f64 {
    let i = ((sorted_us.len() as f64 * p).ceil() as usize).saturating_sub(1);
    sorted_us.get(i).copied().unwrap_or(0) as f64 / 1000.0
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let clients = env_or("COUNTERSIGN_BENCH_CLIENTS", 20);
    let seconds = env_or("COUNTERSIGN_BENCH_SECONDS", 20);
    let rows = env_or("COUNTERSIGN_BENCH_ROWS", 1_000_000);
    let days = 365u32;
    let dir = std::env::temp_dir().join(format!("countersign-bench-inbox-v1-{rows}"));
    let spec = history::Spec {
        seed: 11,
        days,
        per_day: rows.div_ceil(days as u64) as u32,
        now: countersign::server::now_ms(),
        pending: Some((rows / 10, countersign::server::now_ms())),
    };
    history::cached(&dir, &spec).await;
    let (open_count, total) = {
        let db = countersign::server::Db::connect(
            &countersign::server::config::DatabaseTarget::Sqlite {
                path: dir.join("countersign.db"),
            },
        )
        .await
        .unwrap();
        let counts: (i64, i64) = countersign::on_db!(&db, |p| {
            sqlx::query_as(
            "SELECT SUM(CASE WHEN status IN ('pending', 'in_review', 'escalated') THEN 1 ELSE 0 END), COUNT(*) \
             FROM action_requests"
        )
        .fetch_one(p)
        .await
        .unwrap()
        });
        db.close().await;
        counts
    };

    let bin = env!("CARGO_BIN_EXE_countersign");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let mut server = Command::new(bin)
        .args([
            "--data-dir",
            dir.to_str().unwrap(),
            "serve",
            "--bind",
            &format!("127.0.0.1:{port}"),
            "--insecure-cookies",
        ])
        .env("RUST_LOG", "warn")
        .spawn()
        .unwrap();
    let pid = server.id();
    let probe = reqwest::Client::new();
    for _ in 0..400 {
        if probe.get(format!("{base}/healthz")).send().await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let rss_start = memory(pid, "VmRSS");

    let mut sessions = Vec::new();
    for i in 0..clients {
        let client = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(1)
            .build()
            .unwrap();
        let res = client
            .post(format!("{base}/auth/login"))
            .header("origin", &base)
            .form(&[
                ("email", REVIEWERS[i as usize % REVIEWERS.len()]),
                ("password", countersign::server::demo::DEMO_PASSWORD),
                ("next", "/inbox"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 303, "reviewer {i} signs in");
        sessions.push(client);
    }
    // Each page once, unmeasured, so the figures are for a warm server.
    for page in PAGES {
        let res = sessions[0]
            .get(format!("{base}{page}"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{page}");
        res.bytes().await.unwrap();
    }

    let sampling = Arc::new(AtomicBool::new(true));
    let rss_max = Arc::new(AtomicU64::new(0));
    let sampler = {
        let (sampling, rss_max) = (sampling.clone(), rss_max.clone());
        tokio::spawn(async move {
            while sampling.load(Ordering::Relaxed) {
                rss_max.fetch_max(memory(pid, "VmRSS"), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    let errors = Arc::new(AtomicU64::new(0));
    let bytes = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let until = started + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for (i, client) in sessions.into_iter().enumerate() {
        let (base, errors, bytes) = (base.clone(), errors.clone(), bytes.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut n = i;
            while Instant::now() < until {
                let url = format!("{base}{}", PAGES[n % PAGES.len()]);
                n += 1;
                let t = Instant::now();
                match client.get(&url).send().await {
                    Ok(r) if r.status() == 200 => match r.bytes().await {
                        Ok(b) => {
                            latencies.push(t.elapsed().as_micros() as u64);
                            bytes.fetch_add(b.len() as u64, Ordering::Relaxed);
                        }
                        Err(_) => {
                            errors.fetch_add(1, Ordering::Relaxed);
                        }
                    },
                    _ => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await.unwrap());
    }
    let elapsed = started.elapsed();
    sampling.store(false, Ordering::Relaxed);
    let _ = sampler.await;
    let peak = memory(pid, "VmHWM");
    let _ = server.kill();
    let _ = server.wait();
    latencies.sort_unstable();
    let done = latencies.len() as f64;
    println!(
        "inbox: {total} requests, {open_count} open; {clients} signed-in reviewers for {:.1} s",
        elapsed.as_secs_f64()
    );
    println!(
        "  GET /inbox (5 filters):  {:>8.0}/s   p50 {:>6.1} ms   p95 {:>6.1} ms   p99 {:>6.1} ms   errors {}   ({:.0} KB a page; target: p95 under 100 ms)",
        done / elapsed.as_secs_f64(),
        percentile_ms(&latencies, 0.50),
        percentile_ms(&latencies, 0.95),
        percentile_ms(&latencies, 0.99),
        errors.load(Ordering::Relaxed),
        bytes.load(Ordering::Relaxed) as f64 / done.max(1.0) / 1e3,
    );
    println!(
        "  server memory: {:.0} MB resident at start, {:.0} MB at most during the load, {:.0} MB peak (VmHWM)   (target: under 150 MB)",
        rss_start as f64 / 1024.0,
        rss_max.load(Ordering::Relaxed) as f64 / 1024.0,
        peak as f64 / 1024.0
    );
}
