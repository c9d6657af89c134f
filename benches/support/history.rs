//! Fast generation of a large request history for the benchmarks, from the demo simulator.
//!
//! The rows are the simulator's (`countersign demo`: six agents, the demo gates, real gating,
//! realistic outcomes and decisions); only the storing differs from `countersign demo`: no audit
//! trail (no bench reads it), multi-row inserts of 400 rows through one cached prepared statement
//! per batch size, 100,000 rows per transaction, a 1 GiB page cache so the random-order index
//! inserts stay in memory, and `synchronous = OFF` on the loading connection (a fixture that is
//! rebuilt when incomplete needs no durability). The secondary indexes of the two loaded tables
//! are dropped first and built again from their own `CREATE INDEX` text at the end: one sort per
//! index instead of a million random-order B-tree inserts. The simulator runs on its own thread
//! while the rows are stored. The first version (one transaction per 400 rows, SQLite's 2 MB
//! default cache) took 514 s for 1,000,000 requests; see BENCHMARKS.md.

#![allow(dead_code)]

use countersign::requests::repo::{NewActionRequest, NewDecision};
use countersign::server::config::DatabaseTarget;
use countersign::server::{demo, Db};
use sqlx::sqlite::{SqliteConnectOptions, SqliteSynchronous};
use sqlx::{ConnectOptions, Connection};
use std::path::Path;
use std::time::Instant;

pub const BATCH: usize = 400;
const PER_TRANSACTION: usize = 100_000;

/// What to generate.
pub struct Spec {
    pub seed: u64,
    pub days: u32,
    pub per_day: u32,
    /// The end of the simulated window.
    pub now: i64,
    /// When set, about this many human-tier requests are left open (pending, no decision, a
    /// deadline 30 days after `open_deadline_from`) instead of decided, spread over the window.
    pub pending: Option<(u64, i64)>,
}

type Row = (NewActionRequest, Vec<NewDecision>);

async fn insert_batch(c: &mut sqlx::SqliteConnection, rows: &[Row]) -> sqlx::Result<()> {
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
    // `persistent` (the default) keeps the prepared statement for this batch size cached on the
    // connection, so every full batch reuses one compiled statement.
    q.build().execute(&mut *c).await?;
    let decisions: Vec<&NewDecision> = rows.iter().flat_map(|(_, d)| d).collect();
    for chunk in decisions.chunks(BATCH) {
        let mut q = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
            "INSERT INTO decisions (id, request_id, reviewer_id, kind, state_version, \
             edited_payload, reason_code, reason_text, created_at) ",
        );
        q.push_values(chunk, |mut b, d| {
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
        q.build().execute(&mut *c).await?;
    }
    Ok(())
}

/// Leaves a human-tier request open: no decision yet, a deadline in the future.
fn reopen(row: &mut Row, deadline_at: i64) {
    let (r, d) = row;
    r.status = "pending".into();
    r.decided_at = None;
    r.deadline_at = Some(deadline_at);
    d.clear();
}

fn is_human(r: &NewActionRequest) -> bool {
    r.tier == "review" || r.tier == "dual"
}

/// What a generation did and where its time went.
pub struct Generated {
    pub requests: u64,
    pub opened: u64,
    pub seconds: f64,
    /// Time the simulator thread spent producing rows (not waiting to hand them over).
    pub simulating: f64,
    /// Time spent building the secondary indexes after the load.
    pub indexing: f64,
}

/// The loaded tables' secondary indexes (the primary keys stay): their names and the statements
/// that build them again.
async fn secondary_indexes(c: &mut sqlx::SqliteConnection) -> Vec<(String, String)> {
    sqlx::query_as(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL \
         AND tbl_name IN ('action_requests', 'decisions') ORDER BY name",
    )
    .fetch_all(&mut *c)
    .await
    .unwrap()
}

/// Generates the history into the fresh SQLite database at `path` (people, agents and gates from
/// `countersign demo`, then `days * per_day` requests).
pub async fn generate(path: &Path, spec: &Spec) -> Generated {
    let started = Instant::now();
    let db = Db::connect(&DatabaseTarget::Sqlite {
        path: path.to_path_buf(),
    })
    .await
    .unwrap();
    db.migrate().await.unwrap();
    demo::load(
        &db,
        &countersign::server::cli::DemoArgs {
            seed: spec.seed,
            days: spec.days,
            per_day: 0,
            force: false,
        },
        spec.now,
    )
    .await
    .unwrap();
    let live = countersign::gates::repo::live_policy(&db).await.unwrap();
    db.close().await;
    // How often the simulator gates for a human, from a one-day sample, to spread the open ones.
    let open_share = spec.pending.map(|(target, _)| {
        let sample: Vec<Row> =
            demo::simulate(&live, spec.seed, 1, spec.per_day, spec.now).collect();
        let human = sample.iter().filter(|(r, _)| is_human(r)).count().max(1) as f64;
        let expected =
            human / sample.len().max(1) as f64 * (spec.days as f64 * spec.per_day as f64);
        (target as f64 / expected).min(1.0)
    });
    let (sender, receiver) = std::sync::mpsc::sync_channel::<Vec<Row>>(8);
    let (seed, days, per_day, now, pending) =
        (spec.seed, spec.days, spec.per_day, spec.now, spec.pending);
    let producer = std::thread::spawn(move || {
        use rand::{Rng, SeedableRng};
        let mut pick = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 0x0be2);
        let mut opened = 0u64;
        let mut batch = Vec::with_capacity(BATCH);
        let mut handing_over = std::time::Duration::ZERO;
        let producing = Instant::now();
        for mut row in demo::simulate(&live, seed, days, per_day, now) {
            if let (Some((target, from)), Some(share)) = (pending, open_share) {
                if opened < target && is_human(&row.0) && pick.gen_bool(share) {
                    reopen(&mut row, from + 30 * 86_400_000);
                    opened += 1;
                }
            }
            batch.push(row);
            if batch.len() == BATCH {
                let waiting = Instant::now();
                sender
                    .send(std::mem::replace(&mut batch, Vec::with_capacity(BATCH)))
                    .unwrap();
                handing_over += waiting.elapsed();
            }
        }
        let simulating = (producing.elapsed() - handing_over).as_secs_f64();
        if !batch.is_empty() {
            sender.send(batch).unwrap();
        }
        (opened, simulating)
    });
    let mut c = SqliteConnectOptions::new()
        .filename(path)
        .synchronous(SqliteSynchronous::Off)
        .pragma("cache_size", "-1048576")
        .pragma("temp_store", "memory")
        // The simulator's decisions always name a request of the same batch, stored first.
        .foreign_keys(false)
        .connect()
        .await
        .unwrap();
    // `COUNTERSIGN_BENCH_KEEP_INDEXES=1` loads with the indexes in place, as the earlier version
    // did, for a before/after on the same machine.
    let indexes = if std::env::var_os("COUNTERSIGN_BENCH_KEEP_INDEXES").is_some() {
        Vec::new()
    } else {
        secondary_indexes(&mut c).await
    };
    for (name, _) in &indexes {
        sqlx::query(&format!("DROP INDEX \"{name}\""))
            .execute(&mut c)
            .await
            .unwrap();
    }
    let mut n = 0u64;
    let mut in_tx = 0usize;
    let mut tx = c.begin().await.unwrap();
    while let Ok(batch) = receiver.recv() {
        insert_batch(&mut tx, &batch).await.unwrap();
        n += batch.len() as u64;
        in_tx += batch.len();
        if in_tx >= PER_TRANSACTION {
            tx.commit().await.unwrap();
            tx = c.begin().await.unwrap();
            in_tx = 0;
        }
    }
    tx.commit().await.unwrap();
    let building = Instant::now();
    for (_, create) in &indexes {
        sqlx::query(create).execute(&mut c).await.unwrap();
    }
    let indexing = building.elapsed().as_secs_f64();
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(&mut c)
        .await
        .unwrap();
    c.close().await.unwrap();
    let (opened, simulating) = producer.join().unwrap();
    Generated {
        requests: n,
        opened,
        seconds: started.elapsed().as_secs_f64(),
        simulating,
        indexing,
    }
}

/// The history at `dir`, generated on first use and kept for later runs (a `complete` marker
/// is written last, so an interrupted generation starts again).
pub async fn cached(dir: &Path, spec: &Spec) -> std::path::PathBuf {
    let path = dir.join("countersign.db");
    let done = dir.join("complete");
    if !done.exists() {
        let _ = std::fs::remove_dir_all(dir);
        std::fs::create_dir_all(dir).unwrap();
        let g = generate(&path, spec).await;
        println!(
            "generated {} requests ({} open) in {:.1} s ({:.0} rows/s)",
            g.requests,
            g.opened,
            g.seconds,
            g.requests as f64 / g.seconds
        );
        std::fs::write(&done, format!("{} {}", g.requests, g.opened)).unwrap();
    }
    path
}
