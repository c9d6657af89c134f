//! The statistics and tuning screens over a database of 1,000,000 past requests: the stats page
//! query and summary for one gate and for all gates, and the database-backed what-if backtest
//! (load the gate's requests, re-gate each with the live and the candidate policy). See
//! BENCHMARKS.md. Run with `cargo bench --features ssr --bench stats`.
//!
//! The history is the demo simulator's (`countersign demo`: six agents, the demo gates, real
//! gating and realistic outcomes), bulk-inserted without the audit trail so generating it takes
//! seconds. The SQLite file is kept in the system temp directory and reused by later runs.

use countersign::requests::repo::{NewActionRequest, NewDecision};
use countersign::server::config::DatabaseTarget;
use countersign::server::{demo, Db};
use countersign::stats::params::{StatsQuery, TuneQuery, WindowQuery};
use countersign::stats::queries;
use criterion::{criterion_group, criterion_main, Criterion};
use std::time::{Duration, Instant};

const DAYS: u32 = 365;
const PER_DAY: u32 = 2_740; // 1,000,100 requests
/// A fixed end time (2026-11-21), so every run builds the same history.
const NOW: i64 = 1_795_219_200_000;

fn days() -> WindowQuery {
    WindowQuery {
        from: Some("2025-11-21".into()),
        to: Some("2026-11-21".into()),
        days: None,
    }
}

async fn insert_requests(db: &Db, rows: &[(NewActionRequest, Vec<NewDecision>)]) {
    let Db::Sqlite(pool) = db else {
        unreachable!("the bench uses SQLite")
    };
    let mut tx = pool.begin().await.unwrap();
    let mut q = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
        "INSERT INTO action_requests (id, agent_id, idempotency_key, body_sha256, action_type, \
         title, payload, current_state, inputs, reasoning, alternatives, confidence, amount_minor, \
         currency, counterparty, customer_tier, record_count, recipient_count, risk_class, \
         acting_for, tenant, deadline_at, tier, status, gate_id, gate_version, matched_rules, \
         explanation, created_at, updated_at, decided_at) ",
    );
    q.push_values(rows.iter().map(|(r, _)| r), |mut b, r| {
        b.push_bind(&r.id)
            .push_bind(&r.agent_id)
            .push_bind(&r.idempotency_key)
            .push_bind(&r.body_sha256)
            .push_bind(&r.action_type)
            .push_bind(&r.title)
            .push_bind(&r.payload)
            .push_bind(&r.current_state)
            .push_bind(&r.inputs)
            .push_bind(&r.reasoning)
            .push_bind(&r.alternatives)
            .push_bind(r.confidence)
            .push_bind(r.amount_minor)
            .push_bind(&r.currency)
            .push_bind(&r.counterparty)
            .push_bind(&r.customer_tier)
            .push_bind(r.record_count)
            .push_bind(r.recipient_count)
            .push_bind(&r.risk_class)
            .push_bind(&r.acting_for)
            .push_bind(&r.tenant)
            .push_bind(r.deadline_at)
            .push_bind(&r.tier)
            .push_bind(&r.status)
            .push_bind(&r.gate_id)
            .push_bind(r.gate_version)
            .push_bind(&r.matched_rules)
            .push_bind(&r.explanation)
            .push_bind(r.created_at)
            .push_bind(r.created_at)
            .push_bind(r.decided_at);
    });
    q.build().execute(&mut *tx).await.unwrap();
    let decisions: Vec<&NewDecision> = rows.iter().flat_map(|(_, d)| d).collect();
    if !decisions.is_empty() {
        let mut q = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
            "INSERT INTO decisions (id, request_id, reviewer_id, kind, state_version, \
             edited_payload, reason_code, reason_text, created_at) ",
        );
        q.push_values(decisions, |mut b, d| {
            b.push_bind(&d.id)
                .push_bind(&d.request_id)
                .push_bind(&d.reviewer_id)
                .push_bind(d.kind)
                .push_bind(d.state_version)
                .push_bind(&d.edited_payload)
                .push_bind(&d.reason_code)
                .push_bind(&d.reason_text)
                .push_bind(d.created_at);
        });
        q.build().execute(&mut *tx).await.unwrap();
    }
    tx.commit().await.unwrap();
}

/// The database with the simulated year, generated on first use.
async fn history() -> Db {
    let dir = std::env::temp_dir().join("countersign-bench-stats-v1");
    let path = dir.join("countersign.db");
    let done = dir.join("complete");
    let fresh = !done.exists();
    if fresh {
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
    }
    let db = Db::connect(&DatabaseTarget::Sqlite { path }).await.unwrap();
    db.migrate().await.unwrap();
    if !fresh {
        return db;
    }
    let started = Instant::now();
    let people = demo::load(
        &db,
        &countersign::server::cli::DemoArgs {
            seed: 1,
            days: DAYS,
            per_day: 0,
            force: false,
        },
        NOW,
    )
    .await
    .unwrap();
    assert!(people.is_some());
    let live = countersign::gates::repo::live_policy(&db).await.unwrap();
    let mut batch = Vec::with_capacity(400);
    let mut n = 0u64;
    for row in demo::simulate(&live, 7, DAYS, PER_DAY, NOW) {
        batch.push(row);
        if batch.len() == 400 {
            insert_requests(&db, &batch).await;
            n += batch.len() as u64;
            batch.clear();
        }
    }
    insert_requests(&db, &batch).await;
    n += batch.len() as u64;
    std::fs::write(&done, n.to_string()).unwrap();
    println!(
        "generated {n} requests in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    db
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let db = rt.block_on(history());
    let mut group = c.benchmark_group("stats over 1,000,000 requests");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(40));
    let gate = StatsQuery {
        window: days(),
        group: None,
        gate: Some("refunds".into()),
    };
    let all = StatsQuery {
        window: days(),
        group: Some("rule".into()),
        gate: None,
    };
    let raise = TuneQuery {
        window: days(),
        t: Some("over-1000:amount:EUR".into()),
        value: Some("2000".into()),
        rule: None,
        tier: None,
    };
    // Print the sizes once, so the figures can be read against them.
    rt.block_on(async {
        let s = queries::stats(&db, &gate, NOW).await.unwrap();
        let a = queries::stats(&db, &all, NOW).await.unwrap();
        let t = queries::tune(&db, "refunds", &raise, true, NOW).await.unwrap();
        let bt = t.candidate.as_ref().unwrap().report.clone();
        println!(
            "gate refunds: {} requests; all gates: {} requests; backtest re-gated {}, changed {}, misses {}",
            s.requests, a.requests, bt.evaluated, bt.changed_tier, bt.misses_total
        );
    });
    group.bench_function("stats page, one gate (refunds)", |b| {
        b.iter(|| rt.block_on(queries::stats(&db, &gate, NOW)).unwrap())
    });
    group.bench_function("stats page, all gates by rule", |b| {
        b.iter(|| rt.block_on(queries::stats(&db, &all, NOW)).unwrap())
    });
    group.bench_function(
        "tuning screen with backtest (refunds, 1,000 -> 2,000 EUR)",
        |b| {
            b.iter(|| {
                rt.block_on(queries::tune(&db, "refunds", &raise, true, NOW))
                    .unwrap()
            })
        },
    );
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
