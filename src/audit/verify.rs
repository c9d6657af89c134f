//! Verifying the stored trail: recompute the chain over every event, in sequence, a page at a
//! time (constant memory on any trail size), and check every signed checkpoint against it.

use super::chain::{verify, ChainError, EventBody, GENESIS_HASH};
use super::checkpoints::Checkpoint;
use super::signing::{checkpoint_message, verify_signature};
use crate::on_db;
use crate::server::db::Db;

/// How many events are read per query.
const PAGE: i64 = 5_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub events: i64,
    /// Signed checkpoints that matched the chain.
    pub checkpoints: i64,
    pub head_seq: i64,
    pub head_hash: String,
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("audit trail broken: {0}")]
    Broken(#[from] ChainError),
    #[error("audit trail broken: event {seq}: its hash differs from the checkpoint signed at that event (the event or an earlier one was changed)")]
    CheckpointMismatch { seq: i64 },
    #[error("audit trail broken: checkpoint at event {seq}: {problem}")]
    BadCheckpoint { seq: i64, problem: String },
    #[error("audit trail broken: event {first_missing}: missing; the trail ends at event {head} but a checkpoint vouches for events up to {checkpoint} (the tail was cut off)")]
    Truncated {
        first_missing: i64,
        head: i64,
        checkpoint: i64,
    },
    #[error("could not read the audit trail: {0}")]
    Read(#[from] sqlx::Error),
}

type Row = (
    i64,
    i64,
    String,
    Option<String>,
    String,
    Option<String>,
    String,
    String,
    String,
);

/// Checks one checkpoint's signature, and that the key is the one this server trusts.
pub fn check_checkpoint_signature(cp: &Checkpoint, trusted_key: &str) -> Result<(), VerifyError> {
    let bad = |problem: String| VerifyError::BadCheckpoint {
        seq: cp.seq,
        problem,
    };
    if cp.public_key != trusted_key {
        return Err(bad(format!(
            "signed by key {}, not by this server's key {trusted_key}",
            cp.public_key
        )));
    }
    verify_signature(
        &cp.public_key,
        &checkpoint_message(cp.seq, &cp.hash, cp.signed_at),
        &cp.signature,
    )
    .map_err(|p| bad(p.to_string()))
}

/// Recomputes the whole chain and checks every checkpoint (signed by `trusted_key`, hex); the
/// first bad event is named by its sequence number.
pub async fn verify_trail(db: &Db, trusted_key: &str) -> Result<Verified, VerifyError> {
    let checkpoints = super::checkpoints::all(db).await?;
    for cp in &checkpoints {
        check_checkpoint_signature(cp, trusted_key)?;
    }
    let mut pending = checkpoints.iter().peekable();
    let mut matched = 0_i64;
    let (mut next_seq, mut prev) = (1_i64, GENESIS_HASH.to_owned());
    let mut after = 0_i64;
    let mut count = 0_i64;
    loop {
        let rows: Vec<Row> = on_db!(db, |p| {
            sqlx::query_as(
            "SELECT seq, occurred_at, actor_kind, actor_id, event_type, request_id, detail, prev_hash, hash \
             FROM audit_events WHERE seq > $1 ORDER BY seq LIMIT $2"
        )
        .bind(after)
        .bind(PAGE)
        .fetch_all(p)
        .await
        })?;
        if rows.is_empty() {
            break;
        }
        let events: Vec<(EventBody, String, String)> = rows
            .into_iter()
            .map(
                |(
                    seq,
                    occurred_at,
                    actor_kind,
                    actor_id,
                    event_type,
                    request_id,
                    detail,
                    prev_hash,
                    hash,
                )| {
                    (
                        EventBody {
                            seq,
                            occurred_at,
                            actor_kind,
                            actor_id,
                            event_type,
                            request_id,
                            detail,
                        },
                        prev_hash,
                        hash,
                    )
                },
            )
            .collect();
        after = events.last().map(|(e, _, _)| e.seq).unwrap_or(after);
        count += events.len() as i64;
        let (last, hash) = verify(
            events.iter().map(|(e, p, h)| (e, p.as_str(), h.as_str())),
            next_seq,
            &prev,
        )?;
        next_seq = last + 1;
        prev = hash;
        while let Some(cp) = pending.next_if(|cp| cp.seq <= last) {
            let at = events.iter().find(|(e, _, _)| e.seq == cp.seq);
            match at {
                Some((_, _, h)) if *h == cp.hash => matched += 1,
                // The checkpoint predates this page (cannot happen in order) or does not match.
                _ => return Err(VerifyError::CheckpointMismatch { seq: cp.seq }),
            }
        }
    }
    if let Some(cp) = pending.last() {
        return Err(VerifyError::Truncated {
            first_missing: next_seq,
            head: next_seq - 1,
            checkpoint: cp.seq,
        });
    }
    Ok(Verified {
        events: count,
        checkpoints: matched,
        head_seq: next_seq - 1,
        head_hash: prev,
    })
}
