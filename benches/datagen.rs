//! How fast the benchmarks' history is generated: the demo simulator's requests and decisions
//! (see `support/history.rs`) into a fresh SQLite database, timed end to end (people, gates,
//! simulation, inserts, final checkpoint).
//!
//! Run: `cargo bench --features ssr --bench datagen` (`COUNTERSIGN_BENCH_ROWS`, default
//! 1,000,000, changes the size). Target: millions of rows in under a minute.

#[path = "support/history.rs"]
mod history;

fn main() {
    let rows: u64 = std::env::var("COUNTERSIGN_BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let days = 365u32;
    let per_day = rows.div_ceil(days as u64) as u32;
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let spec = history::Spec {
        seed: 7,
        days,
        per_day,
        now: 1_795_219_200_000,
        pending: Some((rows / 10, countersign::server::now_ms())),
    };
    let g = rt.block_on(history::generate(&dir.path().join("c.db"), &spec));
    let size = std::fs::metadata(dir.path().join("c.db"))
        .map(|m| m.len())
        .unwrap_or(0);
    println!(
        "data generation: {} requests ({} open) in {:.1} s = {:.0} rows/s, {:.0} MB   \
         (first version: 1,000,100 in 514 s; target: millions of rows in under a minute)",
        g.requests,
        g.opened,
        g.seconds,
        g.requests as f64 / g.seconds,
        size as f64 / 1e6
    );
    println!(
        "  of which: simulator busy {:.1} s (its own thread, overlapping the inserts), \
         index builds after the load {:.1} s",
        g.simulating, g.indexing
    );
}
