//! Group commit for agent submissions on SQLite.
//!
//! A submission's write is small, but its commit is not: with `synchronous = FULL` it is an
//! fsync of the WAL plus every page the write touched (the request's row and its indexes, the
//! audit event, the key), written whole, under SQLite's single writer. Submissions therefore
//! queue for one writer per process, which writes everything that queued while its previous
//! commit ran in one transaction and commits once. Each submission is answered only after that
//! commit, so an acknowledged submission is as durable as before, and the audit chain stays one
//! gapless sequence in commit order.
//!
//! The writer runs on a thread of its own with a connection of its own. Each of its statements
//! is a round trip to the connection's worker thread; on the runtime shared with the HTTP
//! handlers every answer waited in line behind them, and the pool's connections were busy with
//! their reads. A group's statements run one after another under the single writer, so each of
//! those waits was paid once per statement by every submission in the group.
//!
//! PostgreSQL is left to write submissions in concurrent transactions of their own: it has no
//! single writer, it groups commits in its WAL by itself, and one writer task there measured
//! slower than concurrent transactions (BENCHMARKS.md, "Agent submissions over HTTP").
//!
//! When any write in a group fails, the group's transaction is rolled back and each submission
//! is written again in a transaction of its own, so one failure never takes the others with it.

use super::problem::Problem;
use super::submit::{Prepared, Stored};
use crate::server::{AppState, Db};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;
use tokio::sync::{mpsc, oneshot};

/// The most submissions one commit takes. Under a steady load the group is what queued during
/// the previous commit, which stays well below this.
const MAX_GROUP: usize = 64;

/// Submissions waiting for the writer at most; beyond it a submission waits to be queued.
const QUEUE_CAPACITY: usize = 1024;

struct Queued {
    prepared: Prepared,
    state: AppState,
    answer: oneshot::Sender<Result<Stored, Problem>>,
}

/// This process's queue of submissions for its SQLite writer, which starts with the first
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

/// Stores a prepared submission (on SQLite in the next group commit) and answers once it is
/// committed.
pub(super) async fn store(state: &AppState, prepared: Prepared) -> Result<Stored, Problem> {
    let id = prepared.request_id().to_owned();
    let stored = match &state.db {
        Db::Sqlite(pool) => in_next_group(state, pool, prepared).await,
        Db::Postgres(_) => alone(&state.db, state, &prepared).await,
    };
    if let Ok(Stored::Created(..)) = &stored {
        crate::server::live::publish(state, crate::server::live::LiveEvent::submitted(&id));
    }
    stored
}

async fn in_next_group(
    state: &AppState,
    pool: &sqlx::SqlitePool,
    prepared: Prepared,
) -> Result<Stored, Problem> {
    let sender = state.submissions.sender.get_or_init(|| {
        let (sender, queue) = mpsc::channel(QUEUE_CAPACITY);
        spawn_writer_thread(queue, pool.connect_options());
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

/// The SQLite writer runs on its own thread with its own connection: waiting for one of the
/// pool's, which the HTTP handlers' reads keep busy, held up every group.
fn spawn_writer_thread(
    queue: mpsc::Receiver<Queued>,
    options: Arc<sqlx::sqlite::SqliteConnectOptions>,
) {
    let started = std::thread::Builder::new()
        .name("submission-writer".into())
        .spawn(move || {
            match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime.block_on(async move {
                    let own = sqlx::sqlite::SqlitePoolOptions::new()
                        .max_connections(1)
                        .connect_with((*options).clone())
                        .await;
                    match own {
                        Ok(pool) => {
                            let db = Db::Sqlite(pool);
                            writer(queue, Some(db.clone())).await;
                            db.close().await;
                        }
                        // Writing through the shared pool is slower, not wrong.
                        Err(e) => {
                            tracing::warn!(
                                "the submission writer has no connection of its own: {e}"
                            );
                            writer(queue, None).await;
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

/// Writes groups until every sender is gone, on `own` or else on the shared pool.
async fn writer(mut queue: mpsc::Receiver<Queued>, own: Option<Db>) {
    let mut group = Vec::with_capacity(MAX_GROUP);
    while queue.recv_many(&mut group, MAX_GROUP).await > 0 {
        let started = Instant::now();
        let counters = group[0].state.submissions.clone();
        let size = group.len() as u64;
        let db = own.clone().unwrap_or_else(|| group[0].state.db.clone());
        write_group(
            &db,
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
    // The chain is held for the whole group (on SQLite the write transaction already holds it),
    // so its head, once read, stays the head.
    crate::audit::repo::lock_chain(&mut tx).await?;
    let mut chain = None;
    let mut results = Vec::with_capacity(group.len());
    for queued in group {
        results.push(
            queued
                .prepared
                .store(&mut tx, &queued.state, &mut chain)
                .await?,
        );
    }
    tx.commit().await?;
    Ok(results)
}

/// One transaction for one submission.
async fn alone(db: &Db, state: &AppState, prepared: &Prepared) -> Result<Stored, Problem> {
    let mut tx = db.begin_write().await?;
    let stored = prepared.store(&mut tx, state, &mut None).await?;
    tx.commit().await?;
    Ok(stored)
}

fn answer(queued: Queued, stored: Result<Stored, Problem>) {
    // The submitter may have gone (its client hung up); what was committed stays committed, and
    // a retry with the same key gets the stored answer.
    let _ = queued.answer.send(stored);
}
