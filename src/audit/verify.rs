//! Verifying the stored trail: recompute the chain over every event, in sequence, a page at a
//! time (constant memory on any trail size).

use super::chain::{verify, ChainError, EventBody, GENESIS_HASH};
use crate::on_db;
use crate::server::db::Db;

/// How many events are read per query.
const PAGE: i64 = 5_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub events: i64,
    pub head_seq: i64,
    pub head_hash: String,
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("audit trail broken: {0}")]
    Broken(#[from] ChainError),
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

/// Recomputes the whole chain; the first bad event is named by its sequence number.
pub async fn verify_trail(db: &Db) -> Result<Verified, VerifyError> {
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
    }
    Ok(Verified {
        events: count,
        head_seq: next_seq - 1,
        head_hash: prev,
    })
}
