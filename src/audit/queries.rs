//! Audit trail reads (both engines): the explorer's pages and the exports share one filter.

use super::explorer::{AuditFilter, AuditPage, AuditRow};
use crate::error::AppError;
use crate::on_db;
use crate::server::db::Db;

/// A validated filter; every field optional. Times are milliseconds, `to` exclusive.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventQuery {
    pub event_type: Option<String>,
    pub actor: Option<String>,
    pub request: Option<String>,
    pub gate: Option<String>,
    pub agent: Option<String>,
    pub from: Option<i64>,
    pub to: Option<i64>,
}

impl EventQuery {
    /// Checks a filter from the URL; a bad value is named in the error.
    pub fn from_filter(f: &AuditFilter) -> Result<EventQuery, AppError> {
        let clean = |s: &Option<String>, field: &str| -> Result<Option<String>, AppError> {
            match s.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
                Some(v) if v.len() > 200 => Err(AppError::invalid(field, "is too long")),
                other => Ok(other.map(str::to_owned)),
            }
        };
        let day = |s: &Option<String>, field: &str| -> Result<Option<i64>, AppError> {
            match s.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
                None => Ok(None),
                Some(v) => crate::domain::time::parse_day(v)
                    .map(Some)
                    .ok_or_else(|| AppError::invalid(field, "must be a date such as 2026-11-21")),
            }
        };
        let from = day(&f.from, "from")?;
        // `to` names the last day included.
        let to = day(&f.to, "to")?.map(|t| t + 86_400_000);
        if let (Some(a), Some(b)) = (from, to) {
            if a >= b {
                return Err(AppError::invalid("to", "must not be before from"));
            }
        }
        Ok(EventQuery {
            event_type: clean(&f.event_type, "event_type")?,
            actor: clean(&f.actor, "actor")?,
            request: clean(&f.request, "request")?,
            gate: clean(&f.gate, "gate")?,
            agent: clean(&f.agent, "agent")?,
            from,
            to,
        })
    }
}

/// Everything an export needs of one event.
#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize, serde::Deserialize)]
pub struct FullEvent {
    pub seq: i64,
    pub occurred_at: i64,
    pub actor_kind: String,
    pub actor_id: Option<String>,
    /// The actor's display name or agent name, for people reading the export (not hashed).
    pub actor_name: Option<String>,
    pub event_type: String,
    pub request_id: Option<String>,
    pub detail: String,
    pub prev_hash: String,
    pub hash: String,
}

/// A bind value for a query built at run time.
#[derive(Debug, Clone)]
enum Arg {
    Text(String),
    Int(i64),
}

/// `SELECT … FROM audit_events e … WHERE <filter> AND <keyset>`, joining only what the filter
/// needs (an unfiltered export reads the events and the actor names, nothing else). Actor
/// matches an id, a user's email or an agent's name; agent matches the acting agent or the
/// agent whose request the event is about; gate matches the request's gate key.
fn filtered(q: &EventQuery, columns: &str, keyset: Option<(&str, i64)>) -> (String, Vec<Arg>) {
    let mut sql = format!(
        "SELECT {columns} FROM audit_events e \
         LEFT JOIN users u ON e.actor_kind = 'user' AND u.id = e.actor_id \
         LEFT JOIN agents a ON e.actor_kind = 'agent' AND a.id = e.actor_id"
    );
    if q.gate.is_some() || q.agent.is_some() {
        sql.push_str(
            " LEFT JOIN action_requests r ON r.id = e.request_id \
             LEFT JOIN gates g ON g.id = r.gate_id \
             LEFT JOIN agents ra ON ra.id = r.agent_id",
        );
    }
    let mut args = Vec::new();
    let mut conditions: Vec<String> = Vec::new();
    let mut arg = |a: Arg| {
        args.push(a);
        format!("${}", args.len())
    };
    if let Some((op, at)) = keyset {
        conditions.push(format!("e.seq {op} {}", arg(Arg::Int(at))));
    }
    if let Some(t) = &q.event_type {
        conditions.push(format!("e.event_type = {}", arg(Arg::Text(t.clone()))));
    }
    if let Some(who) = &q.actor {
        let n = arg(Arg::Text(who.clone()));
        conditions.push(format!(
            "(e.actor_id = {n} OR LOWER(u.email) = LOWER({n}) OR a.name = {n})"
        ));
    }
    if let Some(r) = &q.request {
        conditions.push(format!("e.request_id = {}", arg(Arg::Text(r.clone()))));
    }
    if let Some(g) = &q.gate {
        conditions.push(format!("g.key = {}", arg(Arg::Text(g.clone()))));
    }
    if let Some(agent) = &q.agent {
        let n = arg(Arg::Text(agent.clone()));
        conditions.push(format!("(a.name = {n} OR ra.name = {n})"));
    }
    if let Some(from) = q.from {
        conditions.push(format!("e.occurred_at >= {}", arg(Arg::Int(from))));
    }
    if let Some(to) = q.to {
        conditions.push(format!("e.occurred_at < {}", arg(Arg::Int(to))));
    }
    if !conditions.is_empty() {
        sql.push_str(" WHERE ");
        sql.push_str(&conditions.join(" AND "));
    }
    (sql, args)
}

const EVENT_COLUMNS: &str = "e.seq, e.occurred_at, e.actor_kind, e.actor_id, \
     COALESCE(u.display_name, a.name) AS actor_name, e.event_type, e.request_id, e.detail, \
     e.prev_hash, e.hash";

/// Runs a built query for rows of `T` on either engine.
macro_rules! fetch_built {
    ($db:expr, $sql:expr, $args:expr) => {
        on_db!($db, |p| {
            let mut query = sqlx::query_as($sql);
            for a in $args {
                query = match a {
                    Arg::Text(t) => query.bind(t.clone()),
                    Arg::Int(i) => query.bind(*i),
                };
            }
            query.fetch_all(p).await
        })
    };
}

/// Events matching `q`, oldest first, after sequence number `after`.
pub async fn events_after(
    db: &Db,
    q: &EventQuery,
    after: i64,
    limit: i64,
) -> Result<Vec<FullEvent>, sqlx::Error> {
    let (mut sql, args) = filtered(q, EVENT_COLUMNS, Some((">", after)));
    sql.push_str(&format!(" ORDER BY e.seq LIMIT {limit}"));
    fetch_built!(db, &sql, &args)
}

/// The events of [`events_after`] as JSON Lines made by SQLite itself, one string for the page:
/// `(lines, last sequence number, events)`, or `None` when no event follows `after`. Each line
/// holds the fields of [`FullEvent`] in its order. Decoding a row in sqlx costs about as much as
/// the rest of the export together, and this reads one row per page instead of one per event.
pub async fn jsonl_after_sqlite(
    pool: &sqlx::SqlitePool,
    q: &EventQuery,
    after: i64,
    limit: i64,
) -> Result<Option<(String, i64, i64)>, sqlx::Error> {
    let (inner, args) = filtered(q, JSONL_LINE, Some((">", after)));
    let sql = format!(
        "SELECT group_concat(line, char(10) ORDER BY seq), MAX(seq), COUNT(*) \
         FROM ({inner} ORDER BY e.seq LIMIT {limit})"
    );
    let mut query = sqlx::query_as::<_, (Option<String>, Option<i64>, i64)>(&sql);
    for a in &args {
        query = match a {
            Arg::Text(t) => query.bind(t.clone()),
            Arg::Int(i) => query.bind(*i),
        };
    }
    let (lines, last, count) = query.fetch_one(pool).await?;
    Ok(lines.zip(last).map(|(lines, last)| (lines, last, count)))
}

/// One event as a JSON line (SQLite's `json_object`), and its sequence number to order by.
const JSONL_LINE: &str = "e.seq AS seq, json_object('seq', e.seq, 'occurred_at', e.occurred_at, \
     'actor_kind', e.actor_kind, 'actor_id', e.actor_id, \
     'actor_name', COALESCE(u.display_name, a.name), 'event_type', e.event_type, \
     'request_id', e.request_id, 'detail', e.detail, 'prev_hash', e.prev_hash, \
     'hash', e.hash) AS line";

/// One page of events, newest first, before `before` (a sequence number).
pub async fn page(
    db: &Db,
    q: &EventQuery,
    before: Option<i64>,
    limit: i64,
) -> Result<AuditPage, AppError> {
    let (mut sql, args) = filtered(q, EVENT_COLUMNS, before.map(|b| ("<", b)));
    sql.push_str(&format!(" ORDER BY e.seq DESC LIMIT {}", limit + 1));
    let rows: Vec<FullEvent> = fetch_built!(db, &sql, &args)?;
    let types: Vec<String> = on_db!(db, |p| sqlx::query_scalar(
        "SELECT DISTINCT event_type FROM audit_events ORDER BY event_type"
    )
    .fetch_all(p)
    .await)?;
    let gates: Vec<String> = on_db!(db, |p| sqlx::query_scalar(
        "SELECT key FROM gates ORDER BY key"
    )
    .fetch_all(p)
    .await)?;
    let more = rows.len() as i64 > limit;
    let rows: Vec<AuditRow> = rows
        .into_iter()
        .take(limit as usize)
        .map(|e| AuditRow {
            seq: e.seq,
            occurred_at: e.occurred_at,
            actor_kind: e.actor_kind,
            actor: e.actor_name.or(e.actor_id.clone()),
            actor_id: e.actor_id,
            event_type: e.event_type,
            request_id: e.request_id,
            detail: e.detail.chars().take(300).collect(),
            hash: e.hash,
        })
        .collect();
    Ok(AuditPage {
        next_before: if more {
            rows.last().map(|r| r.seq)
        } else {
            None
        },
        rows,
        event_types: types,
        gates,
        summary: Vec::new(),
        public_key: String::new(),
        retention: None,
    })
}

/// Per event type counts for a filter (the per-person summary: "viewed 42, decided 17").
pub async fn summary(db: &Db, q: &EventQuery) -> Result<Vec<(String, i64)>, sqlx::Error> {
    let (mut sql, args) = filtered(q, "e.event_type, COUNT(*) AS n", None);
    sql.push_str(" GROUP BY e.event_type ORDER BY n DESC, e.event_type LIMIT 50");
    fetch_built!(db, &sql, &args)
}

/// How many events are older than `cutoff` (past the retention period).
pub async fn count_older_than(db: &Db, cutoff: i64) -> Result<i64, sqlx::Error> {
    on_db!(db, |p| sqlx::query_scalar(
        "SELECT COUNT(*) FROM audit_events WHERE occurred_at < $1"
    )
    .bind(cutoff)
    .fetch_one(p)
    .await)
}
