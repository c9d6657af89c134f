//! Appending to the audit trail (both engines).
//!
//! Appends are serialised so the chain stays one gapless sequence: SQLite's `BEGIN IMMEDIATE`
//! already holds the single write lock; on PostgreSQL a transaction-scoped advisory lock does the
//! same across every server process sharing the database.

use super::chain::{chain_hash, EventBody, GENESIS_HASH};
use crate::on_tx;
use crate::server::db::Tx;

/// Who caused an event.
#[derive(Debug, Clone)]
pub enum Actor {
    User(String),
    Agent(String),
    System,
}

impl Actor {
    fn kind_and_id(&self) -> (&'static str, Option<String>) {
        match self {
            Actor::User(id) => ("user", Some(id.clone())),
            Actor::Agent(id) => ("agent", Some(id.clone())),
            Actor::System => ("system", None),
        }
    }
}

/// Arbitrary but fixed: the advisory lock key that serialises audit appends on PostgreSQL.
const AUDIT_LOCK_KEY: i64 = 0x0c5a_0d17;

/// Holds the chain still until the transaction ends: on PostgreSQL a transaction-scoped
/// advisory lock; on SQLite the write transaction already excludes other writers.
pub async fn lock_chain(tx: &mut Tx) -> Result<(), sqlx::Error> {
    if let Tx::Postgres(t) = tx {
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(AUDIT_LOCK_KEY)
            .execute(&mut **t)
            .await?;
    }
    Ok(())
}

/// Appends one event in the caller's write transaction; it commits or rolls back with it.
pub async fn append(
    tx: &mut Tx,
    actor: &Actor,
    event_type: &str,
    request_id: Option<&str>,
    detail: serde_json::Value,
    at: i64,
) -> Result<i64, sqlx::Error> {
    append_after(tx, &mut None, actor, event_type, request_id, detail, at).await
}

/// The chain's last event, (seq, hash), as a transaction that appends several events knows it.
pub type ChainHead = Option<(i64, String)>;

/// [`append`], for a transaction that appends several events and nothing else writes to the
/// trail in between: `head` is read once (when `None`) and then kept up to date here, which
/// saves a read per event. The transaction must hold the chain ([`lock_chain`]) throughout.
pub async fn append_after(
    tx: &mut Tx,
    head: &mut ChainHead,
    actor: &Actor,
    event_type: &str,
    request_id: Option<&str>,
    detail: serde_json::Value,
    at: i64,
) -> Result<i64, sqlx::Error> {
    if head.is_none() {
        lock_chain(tx).await?;
    }
    let (actor_kind, actor_id) = actor.kind_and_id();
    on_tx!(tx, |c| {
        let last = match head.take() {
            Some(known) => Some(known),
            None => {
                sqlx::query_as("SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1")
                    .fetch_optional(&mut *c)
                    .await?
            }
        };
        let (prev_seq, prev_hash) = last.unwrap_or((0, GENESIS_HASH.to_owned()));
        let body = EventBody {
            seq: prev_seq + 1,
            occurred_at: at,
            actor_kind: actor_kind.to_owned(),
            actor_id,
            event_type: event_type.to_owned(),
            request_id: request_id.map(str::to_owned),
            detail: detail.to_string(),
        };
        let hash = chain_hash(&prev_hash, &body);
        sqlx::query(
            "INSERT INTO audit_events (seq, occurred_at, actor_kind, actor_id, event_type, request_id, \
             detail, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(body.seq)
        .bind(body.occurred_at)
        .bind(&body.actor_kind)
        .bind(&body.actor_id)
        .bind(&body.event_type)
        .bind(&body.request_id)
        .bind(&body.detail)
        .bind(&prev_hash)
        .bind(&hash)
        .execute(&mut *c)
        .await?;
        *head = Some((body.seq, hash));
        Ok(body.seq)
    })
}
