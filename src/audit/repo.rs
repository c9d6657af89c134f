//! Appending to the audit trail (both engines).
//!
//! Appends are serialised so the chain stays one gapless sequence: SQLite's `BEGIN IMMEDIATE`
//! already holds the single write lock; on PostgreSQL a transaction-scoped advisory lock does the
//! same across every server process sharing the database.

use super::chain::{chain_hash, EventBody, GENESIS_HASH};
use crate::on_tx;
use crate::server::db::Tx;
use crate::server::rows::{self, Val};

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
    let detail = detail.to_string();
    let event = NewEvent {
        actor,
        event_type,
        request_id,
        detail: &detail,
        at,
    };
    append_all(tx, head, std::slice::from_ref(&event)).await
}

/// One event for [`append_all`].
pub struct NewEvent<'a> {
    pub actor: &'a Actor,
    pub event_type: &'a str,
    pub request_id: Option<&'a str>,
    /// The detail as JSON text.
    pub detail: &'a str,
    pub at: i64,
}

/// [`append_after`] for several events in one statement, in their order; the last one's
/// sequence number (the head's when `events` is empty).
pub async fn append_all(
    tx: &mut Tx,
    head: &mut ChainHead,
    events: &[NewEvent<'_>],
) -> Result<i64, sqlx::Error> {
    if head.is_none() {
        lock_chain(tx).await?;
        let last: ChainHead = on_tx!(tx, |c| sqlx::query_as(
            "SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1"
        )
        .fetch_optional(&mut *c)
        .await)?;
        *head = Some(last.unwrap_or((0, GENESIS_HASH.to_owned())));
    }
    let Some((mut seq, mut hash)) = head.take() else {
        unreachable!("the head was read above")
    };
    let mut bodies = Vec::with_capacity(events.len());
    for e in events {
        let (actor_kind, actor_id) = e.actor.kind_and_id();
        let body = EventBody {
            seq: seq + 1,
            occurred_at: e.at,
            actor_kind: actor_kind.to_owned(),
            actor_id,
            event_type: e.event_type.to_owned(),
            request_id: e.request_id.map(str::to_owned),
            detail: e.detail.to_owned(),
        };
        let next = chain_hash(&hash, &body);
        seq = body.seq;
        bodies.push((body, std::mem::replace(&mut hash, next)));
    }
    // Until the insert succeeds the head is unknown, so a caller that goes on reads it again.
    let mut vals: Vec<Val> = Vec::with_capacity(bodies.len() * 9);
    for (i, (body, prev_hash)) in bodies.iter().enumerate() {
        let own_hash = bodies.get(i + 1).map_or(hash.as_str(), |(_, h)| h.as_str());
        vals.extend([
            Val::from(body.seq),
            body.occurred_at.into(),
            (&body.actor_kind).into(),
            (&body.actor_id).into(),
            (&body.event_type).into(),
            (&body.request_id).into(),
            (&body.detail).into(),
            prev_hash.into(),
            own_hash.into(),
        ]);
    }
    rows::insert(
        tx,
        "INSERT INTO audit_events (seq, occurred_at, actor_kind, actor_id, event_type, \
         request_id, detail, prev_hash, hash)",
        &rows::bound(9),
        &vals,
    )
    .await?;
    *head = Some((seq, hash));
    Ok(seq)
}
