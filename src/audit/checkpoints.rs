//! Signed checkpoints: every so often the head of the chain (seq, hash) is signed with the
//! server's Ed25519 key. A changed event no longer matches the checkpoint after it, and a
//! checkpoint beyond the last event proves the tail was cut off, which the chain alone cannot.

use super::repo::lock_chain;
use super::signing::{checkpoint_message, AuditKey};
use crate::server::db::{Db, Tx};
use crate::{on_db, on_tx};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct Checkpoint {
    pub seq: i64,
    pub hash: String,
    pub signed_at: i64,
    pub public_key: String,
    pub signature: String,
}

/// When a checkpoint is due.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    pub every_events: i64,
    pub every_ms: i64,
}

/// Signs the current head when the schedule says so (or always, with `force`), unless the head
/// is already checkpointed. Runs in its own write transaction, holding the chain lock so the
/// head cannot move underneath it.
pub async fn checkpoint(
    db: &Db,
    key: &AuditKey,
    schedule: Option<Schedule>,
    now: i64,
) -> Result<Option<Checkpoint>, sqlx::Error> {
    let mut tx = db.begin_write().await?;
    lock_chain(&mut tx).await?;
    let (head, last) = on_tx!(&mut tx, |c| {
        let head: Option<(i64, String)> =
            sqlx::query_as("SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1")
                .fetch_optional(&mut *c)
                .await?;
        let last: Option<(i64, i64)> = sqlx::query_as(
            "SELECT seq, signed_at FROM audit_checkpoints ORDER BY seq DESC LIMIT 1",
        )
        .fetch_optional(&mut *c)
        .await?;
        Ok::<_, sqlx::Error>((head, last))
    })?;
    let Some((seq, hash)) = head else {
        return Ok(None);
    };
    let last_seq = last.map_or(0, |(s, _)| s);
    // The first checkpoint is always due: until it exists, nothing protects the tail.
    let due = match (schedule, last) {
        (None, _) | (_, None) => true,
        (Some(s), Some((last_seq, last_at))) => {
            seq - last_seq >= s.every_events || now - last_at >= s.every_ms
        }
    };
    if seq <= last_seq || !due {
        return Ok(None);
    }
    let row = Checkpoint {
        signature: key.sign(&checkpoint_message(seq, &hash, now)),
        seq,
        hash,
        signed_at: now,
        public_key: key.public_hex(),
    };
    insert(&mut tx, &row).await?;
    tx.commit().await?;
    Ok(Some(row))
}

async fn insert(tx: &mut Tx, row: &Checkpoint) -> Result<(), sqlx::Error> {
    on_tx!(tx, |c| {
        sqlx::query(
            "INSERT INTO audit_checkpoints (seq, hash, signed_at, public_key, signature) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(row.seq)
        .bind(&row.hash)
        .bind(row.signed_at)
        .bind(&row.public_key)
        .bind(&row.signature)
        .execute(&mut *c)
        .await
        .map(|_| ())
    })
}

/// Every checkpoint, oldest first.
pub async fn all(db: &Db) -> Result<Vec<Checkpoint>, sqlx::Error> {
    on_db!(db, |p| {
        sqlx::query_as(
            "SELECT seq, hash, signed_at, public_key, signature FROM audit_checkpoints ORDER BY seq",
        )
        .fetch_all(p)
        .await
    })
}
