//! Group commit for agent submissions.
//!
//! A submission's write is small, but its commit is not: on SQLite with `synchronous = FULL` it
//! is an fsync of the WAL plus every page the write touched (the request's row and its indexes,
//! the audit event, the key), written whole, under the single writer; on PostgreSQL the audit
//! chain's lock is held from the append to the commit. Submissions therefore queue for one
//! writer task per process, which writes everything that queued while its previous commit ran
//! in one transaction and commits once. Each submission is answered only after that commit, so
//! an acknowledged submission is as durable as before, and the audit chain stays one gapless
//! sequence in commit order.
//!
//! On SQLite the writer runs on a thread of its own. Each of its statements is a round trip to
//! the connection's worker thread, and on a runtime shared with the HTTP handlers every answer
//! waited in line behind them; the group's statements run one after another under the single
//! writer, so that wait was paid once per statement by every submission in the group.
//!
//! When any write in a group fails, the group's transaction is rolled back and each submission
//! is written again in a transaction of its own, so one failure never takes the others with it.

use super::problem::Problem;
use super::submit::{Prepared, Stored};
use crate::server::{AppState, Db};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
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

/// This process's queue of submissions for its writer task, which starts with the first
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
    let sender = state.submissions.sender.get_or_init(|| {
        let (sender, queue) = mpsc::channel(QUEUE_CAPACITY);
        match state.db {
            Db::Sqlite(_) => spawn_writer_thread(queue),
            Db::Postgres(_) => {
                tokio::spawn(writer(queue));
            }
        }
        sender
    });
    let id = prepared.request_id().to_owned();
    let (answer, answered) = oneshot::channel();
    let queued = Queued {
        prepared,
        state: state.clone(),
        answer,
    };
    let stored = match sender.send(queued).await {
        Ok(()) => answered.await.unwrap_or_else(|_| {
            Err(Problem::from(crate::error::internal(
                "the submission writer stopped before answering",
            )))
        }),
        // The writer is gone (it panicked): write this one here, on its own.
        Err(mpsc::error::SendError(queued)) => alone(&queued.state, &queued.prepared).await,
    };
    if let Ok(Stored::Created(..)) = &stored {
        crate::server::live::publish(state, crate::server::live::LiveEvent::submitted(&id));
    }
    stored
}

fn spawn_writer_thread(queue: mpsc::Receiver<Queued>) {
    let started = std::thread::Builder::new()
        .name("submission-writer".into())
        .spawn(move || {
            match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime.block_on(writer(queue)),
                // Dropping the queue makes every submission write itself.
                Err(e) => tracing::error!("cannot start the submission writer: {e}"),
            }
        });
    if let Err(e) = started {
        tracing::error!("cannot start the submission writer thread: {e}");
    }
}

async fn writer(mut queue: mpsc::Receiver<Queued>) {
    let mut group = Vec::with_capacity(MAX_GROUP);
    while queue.recv_many(&mut group, MAX_GROUP).await > 0 {
        let started = Instant::now();
        let counters = group[0].state.submissions.clone();
        let size = group.len() as u64;
        write_group(std::mem::replace(&mut group, Vec::with_capacity(MAX_GROUP))).await;
        counters.groups.fetch_add(1, Ordering::Relaxed);
        counters.grouped.fetch_add(size, Ordering::Relaxed);
        counters
            .busy_micros
            .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
    }
}

async fn write_group(group: Vec<Queued>) {
    if group.len() > 1 {
        match together(&group).await {
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
        let stored = alone(&queued.state, &queued.prepared).await;
        answer(queued, stored);
    }
}

/// One transaction for the whole group.
async fn together(group: &[Queued]) -> Result<Vec<Stored>, Problem> {
    let db = &group[0].state.db;
    let mut tx = db.begin_write().await?;
    // On PostgreSQL the chain's lock comes first, as in every other writer of the trail after
    // its row locks, so two processes' groups never hold each other's keys and wait on the chain.
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
async fn alone(state: &AppState, prepared: &Prepared) -> Result<Stored, Problem> {
    let mut tx = state.db.begin_write().await?;
    let stored = prepared.store(&mut tx, state, &mut None).await?;
    tx.commit().await?;
    Ok(stored)
}

fn answer(queued: Queued, stored: Result<Stored, Problem>) {
    // The submitter may have gone (its client hung up); what was committed stays committed, and
    // a retry with the same key gets the stored answer.
    let _ = queued.answer.send(stored);
}
