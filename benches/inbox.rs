//! The inbox page under load, through the real server (release binary) on loopback.
//!
//! The database holds the demo simulator's year (see `support/history.rs`): 1,000,000 requests,
//! 100,000 of them still open (human-tier requests left undecided, deadlines 30 days ahead),
//! generated once into the temp directory and copied for each run. `countersign serve` runs on
//! the copy as its own process; 20 reviewers sign in through the login form (each its own
//! session) and load the server-rendered `GET /inbox` with the views in [`PAGES`] in turn
//! (filtered, grouped, sorted), while an agent submits review-tier refunds through the API at
//! `SUBMIT_RATE` a second, so the inbox keeps changing as it does in use.
//!
//! Two passes of `SECONDS` each: reviewers who read what they loaded (a pause of 0.5 to 1.5
//! times `THINK_MS` between pages, a page a second each on average: the target's load), then
//! the same reviewers with no pause at all (the server's capacity; latency there is queueing).
//! Memory is the server process's resident set (`VmRSS`, sampled every 100 ms, its highest
//! value reported per pass) and its peak (`VmHWM`), read from `/proc`.
//!
//! Run: `cargo bench --features ssr --bench inbox` (`COUNTERSIGN_BENCH_CLIENTS`, default 20;
//! `COUNTERSIGN_BENCH_SECONDS`, default 20; `COUNTERSIGN_BENCH_ROWS`, default 1,000,000, with a
//! tenth open; `COUNTERSIGN_BENCH_THINK_MS`, default 1000; `COUNTERSIGN_BENCH_SUBMIT_RATE`,
//! default 1: 3,600 requests an hour for people, more than 20 reviewers decide). Targets: p95 under 100 ms, resident memory under 150 MB.
//!
//! With `COUNTERSIGN_BENCH_PG_URL` the same history is copied into PostgreSQL
//! (`support/postgres.rs`) and the server runs on a copy of it there; its memory is then the
//! server process's alone, without PostgreSQL's.

#[path = "support/history.rs"]
mod history;
#[path = "support/postgres.rs"]
mod postgres;

use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const REVIEWERS: [&str; 3] = [
    "marcus@example.com",
    "sofia@example.com",
    "priya@example.com",
];

pub const PAGES: [&str; 6] = [
    "/inbox",
    "/inbox?tier=review",
    "/inbox?tier=review&gate=refunds&sort=amount",
    "/inbox?group=gate",
    "/inbox?gate=vendor-payments&sort=deadline",
    "/inbox?agent=ap-clerk&group=tier",
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
    let think_ms = env_or("COUNTERSIGN_BENCH_THINK_MS", 1000);
    let submit_rate = env_or("COUNTERSIGN_BENCH_SUBMIT_RATE", 1);
    let days = 365u32;
    let dir = std::env::temp_dir().join(format!("countersign-bench-inbox-v1-{rows}"));
    let spec = history::Spec {
        seed: 11,
        days,
        per_day: rows.div_ceil(days as u64) as u32,
        now: countersign::server::now_ms(),
        pending: Some((rows / 10, countersign::server::now_ms())),
    };
    let fixture = history::cached(&dir, &spec).await;
    // A copy per run: the agent's submissions during the run must not pile up in the fixture.
    let scratch = tempfile::tempdir_in(std::env::temp_dir()).unwrap();
    let pg = postgres::url();
    let run_database = format!("bench_inbox_run_{}", std::process::id());
    let target = match &pg {
        None => {
            std::fs::copy(&fixture, scratch.path().join("countersign.db")).unwrap();
            countersign::server::config::DatabaseTarget::Sqlite {
                path: scratch.path().join("countersign.db"),
            }
        }
        Some(admin) => {
            let template =
                postgres::template_of(admin, &format!("bench_inbox_v1_{rows}"), &fixture).await;
            postgres::copy_of(admin, &template, &run_database).await
        }
    };
    let database_url = match &target {
        countersign::server::config::DatabaseTarget::Postgres { url, .. } => url.clone(),
        countersign::server::config::DatabaseTarget::Sqlite { .. } => String::new(),
    };
    let (open_count, total, agent_token) = {
        let db = countersign::server::Db::connect(&target).await.unwrap();
        db.migrate().await.unwrap();
        let counts: (i64, i64) = countersign::on_db!(&db, |p| {
            sqlx::query_as(
            "SELECT SUM(CASE WHEN status IN ('pending', 'in_review', 'escalated') THEN 1 ELSE 0 END), COUNT(*) \
             FROM action_requests"
        )
        .fetch_one(p)
        .await
        .unwrap()
        });
        let agent = countersign::api::tokens::create_agent(
            &db,
            "inbox-load-bot",
            "submits while reviewers read",
            &countersign::audit::repo::Actor::System,
        )
        .await
        .unwrap();
        db.close().await;
        (counts.0, counts.1, agent.token)
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
            scratch.path().to_str().unwrap(),
            "serve",
            "--bind",
            &format!("127.0.0.1:{port}"),
            "--insecure-cookies",
        ])
        .env("RUST_LOG", "warn")
        .env("DATABASE_URL", &database_url)
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
    let submitted = Arc::new(AtomicU64::new(0));
    let submitter = {
        let (sampling, submitted, base) = (sampling.clone(), submitted.clone(), base.clone());
        let every = Duration::from_secs_f64(1.0 / submit_rate.max(1) as f64);
        tokio::spawn(async move {
            let agent = reqwest::Client::new();
            let mut tick = tokio::time::interval(every);
            let mut n = 0u64;
            while sampling.load(Ordering::Relaxed) && submit_rate > 0 {
                tick.tick().await;
                n += 1;
                let res = agent
                    .post(format!("{base}/api/v1/actions"))
                    .bearer_auth(&agent_token)
                    .header("idempotency-key", format!("inbox-load-{n}"))
                    .json(&serde_json::json!({
                        "action_type": "payment.refund",
                        "title": format!("Refund 1500.00 EUR for order L-{n}"),
                        "payload": {"order_id": format!("L-{n}"), "amount": "1500.00", "currency": "EUR"},
                        "reasoning": "The parcel arrived damaged; the photos match the order.",
                        "confidence": 0.9,
                        "amount": {"value": "1500.00", "currency": "EUR"},
                        "customer_tier": "smb",
                    }))
                    .send()
                    .await;
                if res.is_ok_and(|r| r.status().is_success()) {
                    submitted.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    };

    println!(
        "inbox on {}: {total} requests, {open_count} open; {clients} signed-in reviewers, {} views in turn; \
         an agent submitting {submit_rate} review-tier requests a second",
        if pg.is_some() { "PostgreSQL" } else { "SQLite" },
        PAGES.len()
    );
    let reading = load(&sessions, &base, seconds, think_ms).await;
    reading.print(&format!(
        "reading (a pause of {:.1} s on average between pages)",
        think_ms as f64 / 1000.0
    ));
    // The target's load is the reading pass; the capacity pass is reported on its own.
    let rss_reading = rss_max.swap(memory(pid, "VmRSS"), Ordering::Relaxed);
    let saturated = load(&sessions, &base, seconds, 0).await;
    saturated.print("no pause (capacity; latency here is queueing)");
    sampling.store(false, Ordering::Relaxed);
    let _ = sampler.await;
    submitter.abort();
    let peak = memory(pid, "VmHWM");
    let (anon, file) = (memory(pid, "RssAnon"), memory(pid, "RssFile"));
    let _ = server.kill();
    let _ = server.wait();
    if let Some(admin) = &pg {
        postgres::drop_database(admin, &run_database).await;
    }
    println!(
        "  agent submissions during the load: {} accepted",
        submitted.load(Ordering::Relaxed)
    );
    println!(
        "  server memory: {:.0} MB resident at start, {:.0} MB at most while reading, {:.0} MB at most with no pause, {:.0} MB peak (VmHWM; at the end {:.0} MB anonymous + {:.0} MB file-backed)   (target: under 150 MB)",
        rss_start as f64 / 1024.0,
        rss_reading as f64 / 1024.0,
        rss_max.load(Ordering::Relaxed) as f64 / 1024.0,
        peak as f64 / 1024.0,
        anon as f64 / 1024.0,
        file as f64 / 1024.0,
    );
}

struct Pass {
    latencies_us: Vec<u64>,
    /// Latencies per view of [`PAGES`], sorted.
    by_view: Vec<Vec<u64>>,
    errors: u64,
    bytes: u64,
    elapsed: Duration,
}

impl Pass {
    fn print(&self, what: &str) {
        let done = self.latencies_us.len() as f64;
        println!(
            "  GET /inbox, {what}:\n    {:>6.0} pages/s   p50 {:>6.1} ms   p95 {:>6.1} ms   p99 {:>6.1} ms   errors {}   ({:.0} KB a page; target: p95 under 100 ms)",
            done / self.elapsed.as_secs_f64(),
            percentile_ms(&self.latencies_us, 0.50),
            percentile_ms(&self.latencies_us, 0.95),
            percentile_ms(&self.latencies_us, 0.99),
            self.errors,
            self.bytes as f64 / done.max(1.0) / 1e3,
        );
        for (page, us) in PAGES.iter().zip(&self.by_view) {
            println!(
                "      {page:<46} p50 {:>6.1} ms   p95 {:>6.1} ms   ({} pages)",
                percentile_ms(us, 0.50),
                percentile_ms(us, 0.95),
                us.len()
            );
        }
    }
}

/// Every session loads the pages in turn for `seconds`, pausing 0.5 to 1.5 times `think_ms`
/// (uniformly, differently per reviewer) after each page.
async fn load(sessions: &[reqwest::Client], base: &str, seconds: u64, think_ms: u64) -> Pass {
    let errors = Arc::new(AtomicU64::new(0));
    let bytes = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let until = started + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for (i, client) in sessions.iter().cloned().enumerate() {
        let (base, errors, bytes) = (base.to_owned(), errors.clone(), bytes.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies: Vec<(usize, u64)> = Vec::new();
            let mut n = i;
            let mut seed = 0x9e37_79b9_7f4a_7c15u64 ^ (i as u64 + 1);
            // Reviewers do not start in step.
            if think_ms > 0 {
                tokio::time::sleep(Duration::from_millis(seed % think_ms.max(1))).await;
            }
            while Instant::now() < until {
                let view = n % PAGES.len();
                let url = format!("{base}{}", PAGES[view]);
                n += 1;
                let t = Instant::now();
                match client.get(&url).send().await {
                    Ok(r) if r.status() == 200 => match r.bytes().await {
                        Ok(b) => {
                            latencies.push((view, t.elapsed().as_micros() as u64));
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
                if think_ms > 0 {
                    // xorshift: a different, repeatable pause per reviewer.
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    let pause = think_ms / 2 + seed % (think_ms + 1);
                    tokio::time::sleep(Duration::from_millis(pause)).await;
                }
            }
            latencies
        }));
    }
    let mut by_view = vec![Vec::new(); PAGES.len()];
    for t in tasks {
        for (view, us) in t.await.unwrap() {
            by_view[view].push(us);
        }
    }
    let mut latencies_us: Vec<u64> = by_view.iter().flatten().copied().collect();
    latencies_us.sort_unstable();
    for v in &mut by_view {
        v.sort_unstable();
    }
    Pass {
        latencies_us,
        by_view,
        errors: errors.load(Ordering::Relaxed),
        bytes: bytes.load(Ordering::Relaxed),
        elapsed: started.elapsed(),
    }
}
