//! Agent submissions end to end over HTTP, against the limit of the same storage.
//!
//! A real server (the router `countersign serve` runs, with its background jobs) on a loopback
//! port over a fresh SQLite database with the demo gates; `CLIENTS` concurrent agents POST
//! `/api/v1/actions` (bearer token, idempotency key, validation, gate evaluation, insert, audit
//! append, outbox) for `SECONDS`. The reference is the bare insert of the same kind of rows, one
//! write transaction each as a submission does, on a fresh database with the same settings and
//! the same concurrency: what the storage allows at most.
//!
//! Run: `cargo bench --features ssr --bench submit` (set COUNTERSIGN_BENCH_CLIENTS and
//! COUNTERSIGN_BENCH_SECONDS to change the load). Prints one line per figure.

use countersign::audit::repo::Actor;
use countersign::requests::repo::{self, NewActionRequest};
use countersign::server::config::{Config, DatabaseTarget};
use countersign::server::{demo, http, now_ms, AppState, Db};
use serde_json::json;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A fresh database: SQLite in `dir`, or with `COUNTERSIGN_BENCH_PG_URL` a new PostgreSQL
/// database on that server (dropped by the next run's clean-up, see [`drop_pg_databases`]).
async fn fresh_db(dir: &std::path::Path) -> (Db, DatabaseTarget) {
    let target = match pg_url() {
        None => DatabaseTarget::Sqlite {
            path: dir.join("countersign.db"),
        },
        Some(admin) => {
            static N: AtomicU64 = AtomicU64::new(0);
            let name = format!(
                "bench_submit_{}_{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            );
            let admin_db = Db::connect(&DatabaseTarget::Postgres {
                url: admin.clone(),
                display: "bench".into(),
            })
            .await
            .unwrap();
            countersign::on_db!(&admin_db, |p| sqlx::query(&format!(
                "CREATE DATABASE {name}"
            ))
            .execute(p)
            .await
            .map(|_| ())
            .unwrap());
            admin_db.close().await;
            let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
            DatabaseTarget::Postgres {
                url: format!("{base}/{name}"),
                display: name,
            }
        }
    };
    let db = Db::connect(&target).await.unwrap();
    db.migrate().await.unwrap();
    (db, target)
}

fn pg_url() -> Option<String> {
    std::env::var("COUNTERSIGN_BENCH_PG_URL")
        .ok()
        .filter(|u| !u.is_empty())
}

/// Drops the databases earlier runs created on the PostgreSQL server (`bench_submit_*`).
async fn drop_pg_databases(keep_pid: u32) {
    let Some(admin) = pg_url() else { return };
    let db = Db::connect(&DatabaseTarget::Postgres {
        url: admin,
        display: "bench".into(),
    })
    .await
    .unwrap();
    let names: Vec<String> = countersign::on_db!(&db, |p| sqlx::query_scalar(
        "SELECT datname FROM pg_database WHERE datname LIKE 'bench_submit_%'"
    )
    .fetch_all(p)
    .await
    .unwrap());
    for name in names {
        if keep_pid == 0 || !name.starts_with(&format!("bench_submit_{keep_pid}_")) {
            let _ = countersign::on_db!(&db, |p| sqlx::query(&format!(
                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
            ))
            .execute(p)
            .await
            .map(|_| ()));
        }
    }
    db.close().await;
}

/// A mix like a refund agent's: most small (auto), some logged, some for review.
fn refund(n: u64) -> serde_json::Value {
    let amount = match n % 20 {
        0..=11 => "42.00",
        12..=16 => "240.00",
        _ => "1500.00",
    };
    json!({
        "action_type": "payment.refund",
        "title": format!("Refund {amount} EUR for order {n}"),
        "payload": {"order_id": format!("ORD-{n}"), "amount": amount, "currency": "EUR"},
        "reasoning": "The parcel arrived damaged; the photos match the order.",
        "confidence": 0.9,
        "amount": {"value": amount, "currency": "EUR"},
        "customer_tier": "smb",
    })
}

struct Figures {
    groups: Option<GroupFigures>,
    done: u64,
    errors: u64,
    elapsed: Duration,
    latencies_us: Vec<u64>,
}

impl Figures {
    fn per_second(&self) -> f64 {
        self.done as f64 / self.elapsed.as_secs_f64()
    }

    fn percentile_ms(&mut self, p: f64) -> f64 {
        self.latencies_us.sort_unstable();
        let i = ((self.latencies_us.len() as f64 * p).ceil() as usize).saturating_sub(1);
        self.latencies_us.get(i).copied().unwrap_or(0) as f64 / 1000.0
    }
}

/// Runs `clients` loops of `step` until `seconds` pass; each step returns whether it succeeded.
async fn drive<F, Fut>(clients: u64, seconds: u64, step: F) -> Figures
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let step = Arc::new(step);
    // With COUNTERSIGN_BENCH_COUNT, exactly that many steps run whatever the time (for
    // instruction counts under callgrind, which are repeatable where timings are not).
    let count = env_or("COUNTERSIGN_BENCH_COUNT", u64::MAX);
    let counter = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let until = started + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (step, counter, errors) = (step.clone(), counter.clone(), errors.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while count != u64::MAX || Instant::now() < until {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                if n >= count {
                    break;
                }
                let t = Instant::now();
                if step(n).await {
                    latencies.push(t.elapsed().as_micros() as u64);
                } else {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
            }
            latencies
        }));
    }
    let mut latencies_us = Vec::new();
    for t in tasks {
        latencies_us.extend(t.await.unwrap());
    }
    Figures {
        groups: None,
        done: latencies_us.len() as u64,
        errors: errors.load(Ordering::Relaxed),
        elapsed: started.elapsed(),
        latencies_us,
    }
}

async fn submissions(clients: u64, seconds: u64) -> Figures {
    let dir = tempfile::tempdir().unwrap();
    let (db, target) = fresh_db(dir.path()).await;
    demo::load(
        &db,
        &countersign::server::cli::DemoArgs {
            seed: 1,
            days: 1,
            per_day: 0,
            force: false,
        },
        now_ms(),
    )
    .await
    .unwrap();
    let agent =
        countersign::api::tokens::create_agent(&db, "load-bot", "load driver", &Actor::System)
            .await
            .unwrap();
    let mut config = Config::new(
        target,
        dir.path().to_path_buf(),
        "127.0.0.1:0".parse::<SocketAddr>().unwrap(),
        PathBuf::from("target/site"),
    );
    config.session.secure_cookie = false;
    let listener = http::bind(&config).await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    config.public_url = base.clone();
    let state = AppState::new(db, config).unwrap();
    let app = http::router(state.clone());
    let jobs = countersign::server::jobs::spawn(state);
    tokio::spawn(async move {
        http::serve(listener, app, std::future::pending())
            .await
            .unwrap();
    });
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(clients as usize)
        .build()
        .unwrap();
    let url = format!("{base}/api/v1/actions");
    let token = agent.token;
    let figures = drive(clients, seconds, move |n| {
        let (client, url, token) = (client.clone(), url.clone(), token.clone());
        async move {
            client
                .post(&url)
                .bearer_auth(&token)
                .header("idempotency-key", format!("load-{n}"))
                .json(&refund(n))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
        }
    })
    .await;
    let metrics = reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    jobs.abort();
    Figures {
        groups: Some(GroupFigures::from_metrics(&metrics, figures.elapsed)),
        ..figures
    }
}

/// How the server grouped the submissions into commits, from its `/metrics`.
struct GroupFigures {
    groups: f64,
    grouped: f64,
    busy_seconds: f64,
    elapsed: Duration,
}

impl GroupFigures {
    fn from_metrics(text: &str, elapsed: Duration) -> GroupFigures {
        let value = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        GroupFigures {
            groups: value("countersign_submission_groups_total"),
            grouped: value("countersign_submissions_grouped_total"),
            busy_seconds: value("countersign_submission_writer_busy_seconds_total"),
            elapsed,
        }
    }
}

async fn bare_inserts(clients: u64, seconds: u64) -> Figures {
    let dir = tempfile::tempdir().unwrap();
    let (db, _) = fresh_db(dir.path()).await;
    demo::load(
        &db,
        &countersign::server::cli::DemoArgs {
            seed: 1,
            days: 1,
            per_day: 0,
            force: false,
        },
        now_ms(),
    )
    .await
    .unwrap();
    let agent: String = countersign::on_db!(&db, |p| sqlx::query_scalar(
        "SELECT id FROM agents ORDER BY id LIMIT 1"
    )
    .fetch_one(p)
    .await
    .unwrap());
    drive(clients, seconds, move |n| {
        let (db, agent) = (db.clone(), agent.clone());
        async move {
            let body = refund(n);
            let now = now_ms();
            let row = NewActionRequest {
                id: format!("req_bare_{n}"),
                agent_id: agent,
                idempotency_key: format!("bare-{n}"),
                body_sha256: repo::sha256_hex(body.to_string().as_bytes()),
                action_type: "payment.refund".into(),
                title: body["title"].as_str().unwrap_or_default().into(),
                payload: body["payload"].to_string(),
                current_state: None,
                inputs: None,
                reasoning: body["reasoning"].as_str().unwrap_or_default().into(),
                alternatives: None,
                confidence: Some(0.9),
                amount_minor: Some(4200),
                currency: Some("EUR".into()),
                counterparty: None,
                customer_tier: Some("smb".into()),
                record_count: None,
                recipient_count: None,
                risk_class: None,
                acting_for: None,
                tenant: None,
                callback_url: None,
                deadline_at: None,
                tier: "auto".into(),
                status: "approved".into(),
                gate_id: None,
                gate_version: None,
                matched_rules: "[]".into(),
                explanation: String::new(),
                created_at: now,
                decided_at: Some(now),
            };
            let Ok(mut tx) = db.begin_write().await else {
                return false;
            };
            repo::insert(&mut tx, &row).await.is_ok() && tx.commit().await.is_ok()
        }
    })
    .await
}

fn main() {
    let clients = env_or("COUNTERSIGN_BENCH_CLIENTS", 32);
    let seconds = env_or("COUNTERSIGN_BENCH_SECONDS", 10);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    // COUNTERSIGN_BENCH_ONLY=submit or =bare runs one half (for profiling).
    let only = std::env::var("COUNTERSIGN_BENCH_ONLY").unwrap_or_default();
    rt.block_on(async {
        drop_pg_databases(0).await;
        let empty = || Figures {
            groups: None,
            done: 0,
            errors: 0,
            elapsed: Duration::from_secs(1),
            latencies_us: Vec::new(),
        };
        let mut limit = if only == "submit" {
            empty()
        } else {
            bare_inserts(clients, seconds).await
        };
        let mut http = if only == "bare" {
            empty()
        } else {
            submissions(clients, seconds).await
        };
        drop_pg_databases(0).await;
        let engine = if pg_url().is_some() {
            "PostgreSQL"
        } else {
            "SQLite"
        };
        println!("{engine}, {clients} concurrent clients, {seconds} s each:");
        println!(
            "  bare insert (reference): {:>8.0}/s   p50 {:>6.2} ms   p99 {:>6.2} ms   errors {}",
            limit.per_second(),
            limit.percentile_ms(0.50),
            limit.percentile_ms(0.99),
            limit.errors
        );
        println!(
            "  HTTP submission:         {:>8.0}/s   p50 {:>6.2} ms   p99 {:>6.2} ms   errors {}",
            http.per_second(),
            http.percentile_ms(0.50),
            http.percentile_ms(0.99),
            http.errors
        );
        if let Some(g) = http.groups.as_ref().filter(|g| g.groups > 0.0) {
            println!(
                "  group commits:           {:>8.0}    {:.1} submissions each on average, {:.2} ms each; writer busy {:.0}% of the time",
                g.groups,
                g.grouped / g.groups.max(1.0),
                g.busy_seconds * 1000.0 / g.groups.max(1.0),
                100.0 * g.busy_seconds / g.elapsed.as_secs_f64()
            );
        }
        println!(
            "  ratio to the limit:      {:>8.2}   (target: at least 2,000/s with p99 under 50 ms)",
            http.per_second() / limit.per_second()
        );
    });
}
