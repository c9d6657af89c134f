//! Group commit for agent submissions, on both engines.
//!
//! A submission's write is small, but its commit is not: with `synchronous = FULL` it is an
//! fsync of the WAL plus every page the write touched (the request's row and its indexes, the
//! audit event, the key), written whole, under SQLite's single writer. Submissions therefore
//! queue for one writer per process, which writes everything that queued while its previous
//! commit ran in one transaction and commits once. Each submission is answered only after that
//! commit, so an acknowledged submission is as durable as before, and the audit chain stays one
//! gapless sequence in commit order.
//!
//! A group is written with one statement per table, not one per submission
//! (`store_all`, [`crate::server::rows`]): every statement is a round trip (to SQLite's worker
//! thread, or to PostgreSQL), and a fresh run of the statement.
//!
//! The writer runs on a thread of its own with a connection of its own. On the runtime shared
//! with the HTTP handlers every answer to its statements waited in line behind them, and the
//! pool's connections were busy with their reads.
//!
//! PostgreSQL has no single writer, but every submission appends to the audit chain, whose
//! lock serialises them anyway; there the group's gain is fewer round trips and commits per
//! submission (BENCHMARKS.md, "Group commit"). Several server processes each run a writer.
//!
//! When any write in a group fails, the group's transaction is rolled back and each submission
//! is written again in a transaction of its own, so one failure never takes the others with it.

use super::problem::Problem;
use super::submit::{store_all, Prepared, Stored};
use crate::server::{AppState, Db};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Instant;
use tokio::sync::{mpsc, oneshot};

/// The most submissions one commit takes. Under a steady load the group is what queued during
/// the previous commit, which stays well below this.
const MAX_GROUP: usize = 64;

/// Prepared statements the writer's connection keeps: each of the group's tables for each group
/// size (see [`crate::server::rows`]).
const WRITER_STATEMENTS: usize = 8 * MAX_GROUP;

/// The SQLite writer's page cache, in KiB (SQLite's default is 2 MiB). Measured: with the
/// default, a group's request inserts took twice as long (BENCHMARKS.md, "One statement per
/// table").
const WRITER_CACHE_KIB: u32 = 32 * 1024;

/// Submissions waiting for the writer at most; beyond it a submission waits to be queued.
const QUEUE_CAPACITY: usize = 1024;

struct Queued {
    prepared: Prepared,
    state: AppState,
    answer: oneshot::Sender<Result<Stored, Problem>>,
}

/// This process's queue of submissions for its writer, which starts with the first
/// submission and ends when the last [`AppState`] holding the queue is dropped.
#[derive(Default)]
pub struct SubmissionQueue {
    sender: OnceLock<mpsc::Sender<Queued>>,
    /// Group commits written, submissions in them, and the writer's time spent on them: how
    /// large groups are and how busy the writer is (`/metrics`).
    groups: AtomicU64,
    grouped: AtomicU64,
    busy_micros: AtomicU64,
}

impl SubmissionQueue {
    /// The counters in Prometheus text format.
    pub fn render_metrics(&self, out: &mut String) {
        let _ = write!(
            out,
            "# HELP countersign_submission_groups_total Group commits of agent submissions by this process.\n\
             # TYPE countersign_submission_groups_total counter\n\
             countersign_submission_groups_total {}\n\
             # HELP countersign_submissions_grouped_total Agent submissions written in those group commits.\n\
             # TYPE countersign_submissions_grouped_total counter\n\
             countersign_submissions_grouped_total {}\n\
             # HELP countersign_submission_writer_busy_seconds_total Time the submission writer spent writing and committing groups.\n\
             # TYPE countersign_submission_writer_busy_seconds_total counter\n\
             countersign_submission_writer_busy_seconds_total {}\n",
            self.groups.load(Ordering::Relaxed),
            self.grouped.load(Ordering::Relaxed),
            self.busy_micros.load(Ordering::Relaxed) as f64 / 1e6,
        );
    }
}

/// Stores a prepared submission in the next group commit and answers once it is committed.
pub(super) async fn store(state: &AppState, prepared: Prepared) -> Result<Stored, Problem> {
    let id = prepared.request_id().to_owned();
    let stored = in_next_group(state, prepared).await;
    if let Ok(Stored::Created(..)) = &stored {
        crate::server::live::publish(state, crate::server::live::LiveEvent::submitted(&id));
    }
    stored
}

async fn in_next_group(state: &AppState, prepared: Prepared) -> Result<Stored, Problem> {
    let sender = state.submissions.sender.get_or_init(|| {
        let (sender, queue) = mpsc::channel(QUEUE_CAPACITY);
        spawn_writer_thread(queue, state.db.clone());
        sender
    });
    let (answer, answered) = oneshot::channel();
    let queued = Queued {
        prepared,
        state: state.clone(),
        answer,
    };
    match sender.send(queued).await {
        Ok(()) => answered.await.unwrap_or_else(|_| {
            Err(Problem::from(crate::error::internal(
                "the submission writer stopped before answering",
            )))
        }),
        // The writer is gone (it panicked): write this one here, on its own.
        Err(mpsc::error::SendError(queued)) => {
            alone(&queued.state.db, &queued.state, &queued.prepared).await
        }
    }
}

/// The writer runs on its own thread with its own connection: waiting for one of the pool's,
/// which the HTTP handlers' reads keep busy, held up every group.
fn spawn_writer_thread(queue: mpsc::Receiver<Queued>, shared: Db) {
    let started = std::thread::Builder::new()
        .name("submission-writer".into())
        .spawn(move || {
            match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime.block_on(async move {
                    match own_connection(&shared).await {
                        Ok(own) => {
                            writer(queue, &own).await;
                            own.close().await;
                        }
                        // Writing through the shared pool is slower, not wrong.
                        Err(e) => {
                            tracing::warn!(
                                "the submission writer has no connection of its own: {e}"
                            );
                            writer(queue, &shared).await;
                        }
                    }
                }),
                // Dropping the queue makes every submission write itself.
                Err(e) => tracing::error!("cannot start the submission writer: {e}"),
            }
        });
    if let Err(e) = started {
        tracing::error!("cannot start the submission writer thread: {e}");
    }
}

/// A pool of one connection to the shared pool's database, for the writer. A group's
/// statements differ with its size (one row per submission), so it keeps more of them prepared
/// than the pool's connections do; on SQLite it also keeps more pages in memory, because every
/// group touches a page or two of each of the request table's indexes.
async fn own_connection(shared: &Db) -> Result<Db, sqlx::Error> {
    Ok(match shared {
        Db::Sqlite(pool) => {
            let options = (*pool.connect_options())
                .clone()
                .statement_cache_capacity(WRITER_STATEMENTS)
                .pragma("cache_size", format!("-{WRITER_CACHE_KIB}"));
            Db::Sqlite(
                sqlx::sqlite::SqlitePoolOptions::new()
                    .max_connections(1)
                    .connect_with(options)
                    .await?,
            )
        }
        Db::Postgres(pool) => {
            let options = (*pool.connect_options())
                .clone()
                .statement_cache_capacity(WRITER_STATEMENTS);
            Db::Postgres(
                sqlx::postgres::PgPoolOptions::new()
                    .max_connections(1)
                    .connect_with(options)
                    .await?,
            )
        }
    })
}

/// Writes groups on `db` until every sender is gone.
async fn writer(mut queue: mpsc::Receiver<Queued>, db: &Db) {
    let mut group = Vec::with_capacity(MAX_GROUP);
    while queue.recv_many(&mut group, MAX_GROUP).await > 0 {
        let started = Instant::now();
        let counters = group[0].state.submissions.clone();
        let size = group.len() as u64;
        write_group(
            db,
            std::mem::replace(&mut group, Vec::with_capacity(MAX_GROUP)),
        )
        .await;
        counters.groups.fetch_add(1, Ordering::Relaxed);
        counters.grouped.fetch_add(size, Ordering::Relaxed);
        counters
            .busy_micros
            .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
    }
}

async fn write_group(db: &Db, group: Vec<Queued>) {
    if group.len() > 1 {
        match together(db, &group).await {
            Ok(results) => {
                for (queued, stored) in group.into_iter().zip(results) {
                    answer(queued, Ok(stored));
                }
                return;
            }
            Err(problem) => tracing::warn!(
                "a group commit of {} submissions failed ({}); writing each on its own",
                group.len(),
                problem.detail
            ),
        }
    }
    for queued in group {
        let stored = alone(db, &queued.state, &queued.prepared).await;
        answer(queued, stored);
    }
}

/// One transaction for the whole group.
async fn together(db: &Db, group: &[Queued]) -> Result<Vec<Stored>, Problem> {
    let mut tx = db.begin_write().await?;
    let all: Vec<&Prepared> = group.iter().map(|q| &q.prepared).collect();
    let results = store_all(&mut tx, &group[0].state, &all, &mut None).await?;
    tx.commit().await?;
    Ok(results)
}

/// One transaction for one submission.
async fn alone(db: &Db, state: &AppState, prepared: &Prepared) -> Result<Stored, Problem> {
    let mut tx = db.begin_write().await?;
    let stored = store_all(&mut tx, state, &[prepared], &mut None).await?;
    tx.commit().await?;
    stored
        .into_iter()
        .next()
        .ok_or_else(|| Problem::from(crate::error::internal("a stored submission gave no result")))
}

fn answer(queued: Queued, stored: Result<Stored, Problem>) {
    // The submitter may have gone (its client hung up); what was committed stays committed, and
    // a retry with the same key gets the stored answer.
    let _ = queued.answer.send(stored);
}
