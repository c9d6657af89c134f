//! The statistics and tuning screens over a database of 1,000,000 past requests: the stats page
//! query and summary for one gate and for all gates, and the database-backed what-if backtest
//! (load the gate's requests, re-gate each with the live and the candidate policy). See
//! BENCHMARKS.md. Run with `cargo bench --features ssr --bench stats`.
//!
//! The history is the demo simulator's (`countersign demo`: six agents, the demo gates, real
//! gating and realistic outcomes), bulk-inserted without the audit trail by
//! `support/history.rs`. The SQLite file is kept in the system temp directory and reused by later
//! runs; `COUNTERSIGN_BENCH_PER_DAY` shrinks it (the smoke run). With `COUNTERSIGN_BENCH_PG_URL`
//! the same history is copied into PostgreSQL once (`support/postgres.rs`) and read from there.

#[path = "support/history.rs"]
mod history;
#[path = "support/postgres.rs"]
mod postgres;

use countersign::server::config::DatabaseTarget;
use countersign::server::Db;
use countersign::stats::params::{StatsQuery, TuneQuery, WindowQuery};
use countersign::stats::queries;
use criterion::{criterion_group, criterion_main, Criterion};
use std::time::Duration;

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

/// The database with the simulated year, generated on first use (see `support/history.rs`).
async fn history() -> Db {
    let per_day = std::env::var("COUNTERSIGN_BENCH_PER_DAY")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(PER_DAY);
    let dir = std::env::temp_dir().join(format!("countersign-bench-stats-v2-{per_day}"));
    let spec = history::Spec {
        seed: 7,
        days: DAYS,
        per_day,
        now: NOW,
        pending: None,
    };
    let path = history::cached(&dir, &spec).await;
    let target = match postgres::url() {
        None => DatabaseTarget::Sqlite { path },
        // Read only: the template itself serves.
        Some(admin) => {
            let name =
                postgres::template_of(&admin, &format!("bench_stats_v2_{per_day}"), &path).await;
            postgres::target(&admin, &name)
        }
    };
    Db::connect(&target).await.unwrap()
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let db = rt.block_on(history());
    let mut group = c.benchmark_group(if postgres::url().is_some() {
        "stats over 1,000,000 requests, PostgreSQL"
    } else {
        "stats over 1,000,000 requests"
    });
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
