//! The inbox list as SQL (both engines): one page of open requests in
//! `(group, urgency, sort key, id)` order, the counts per group, and what the filters offer.
//!
//! The page is read in two steps inside one statement: the ordering runs over the narrow
//! columns the partial index `action_requests_open_list` covers, and only the page's rows are
//! then read in full. Reading every open row's payload just to sort them would make the page
//! cost grow with the width of the requests, not only their number.

use super::listing::{contains_pattern, milli_factor_sql, Assigned, Cursor, GroupBy, ListQuery};
use super::{GroupCount, InboxPage, InboxRow, SavedView};
use crate::error::AppError;
use crate::on_db;
use crate::server::db::Db;

/// A bound value, so the statement is built once and bound in order on either engine.
enum Arg {
    Int(i64),
    Text(String),
}

#[derive(Default)]
struct Args(Vec<Arg>);

impl Args {
    fn int(&mut self, v: i64) -> String {
        self.0.push(Arg::Int(v));
        format!("${}", self.0.len())
    }
    fn text(&mut self, v: &str) -> String {
        self.0.push(Arg::Text(v.to_owned()));
        format!("${}", self.0.len())
    }
}

/// Binds `args` to a query in order (a macro, because the query types differ per engine).
macro_rules! bind_all {
    ($q:expr, $args:expr) => {{
        let mut q = $q;
        for a in &$args.0 {
            q = match a {
                Arg::Int(v) => q.bind(*v),
                Arg::Text(v) => q.bind(v.as_str()),
            };
        }
        q
    }};
}

/// The rows the list orders and counts: open requests only, through the partial index that
/// covers them, joined to agents or gates only when the grouping needs their names.
/// SQLite without gathered statistics prefers the plain status index, which reads every wide
/// row, so it is told which index to use; PostgreSQL's planner finds it alone.
fn from_open(db: &Db, group: GroupBy) -> String {
    let index = match db {
        Db::Sqlite(_) => " INDEXED BY action_requests_open_list",
        Db::Postgres(_) => "",
    };
    let join = match group {
        GroupBy::Agent => " JOIN agents a ON a.id = r.agent_id",
        GroupBy::Gate => " LEFT JOIN gates g ON g.id = r.gate_id",
        _ => "",
    };
    format!("FROM action_requests r{index}{join}")
}

/// The `WHERE` clause of a view (without the page position), its values pushed onto `args`.
fn where_clause(q: &ListQuery, me: &str, at: i64, args: &mut Args) -> String {
    let mut w = vec!["r.status IN ('pending', 'in_review', 'escalated')".to_owned()];
    if let Some(t) = q.tier {
        w.push(format!("r.tier = {}", args.text(t.as_str())));
    }
    if let Some(s) = q.status {
        w.push(format!("r.status = {}", args.text(s.as_str())));
    }
    if let Some(gate) = &q.gate {
        w.push(format!(
            "r.gate_id IN (SELECT id FROM gates WHERE key = {})",
            args.text(gate)
        ));
    }
    if let Some(agent) = &q.agent {
        w.push(format!(
            "r.agent_id IN (SELECT id FROM agents WHERE name = {})",
            args.text(agent)
        ));
    }
    if let Some(t) = &q.action_type {
        w.push(format!("r.action_type = {}", args.text(t)));
    }
    if let Some(text) = &q.text {
        let p = args.text(&contains_pattern(text));
        w.push(format!(
            "(LOWER(r.title) LIKE {p} ESCAPE '\\' OR LOWER(COALESCE(r.counterparty, '')) LIKE {p} ESCAPE '\\' \
             OR LOWER(r.reasoning) LIKE {p} ESCAPE '\\' OR LOWER(r.payload) LIKE {p} ESCAPE '\\')"
        ));
    }
    if let Some(within) = q.due_within {
        w.push(format!("r.deadline_at <= {}", args.int(at + within)));
    }
    if q.min_milli.is_some() || q.max_milli.is_some() {
        let milli = format!("r.amount_minor * {}", milli_factor_sql());
        if let Some(lo) = q.min_milli {
            w.push(format!("{milli} >= {}", args.int(lo)));
        }
        if let Some(hi) = q.max_milli {
            w.push(format!("{milli} <= {}", args.int(hi)));
        }
    }
    if let Some(older) = q.older_than {
        w.push(format!("r.created_at <= {}", args.int(at - older)));
    }
    match q.assigned {
        None => {}
        Some(Assigned::Me) => {
            let (me, live) = (args.text(me), args.int(at));
            w.push(format!(
                "(EXISTS (SELECT 1 FROM request_claims c WHERE c.request_id = r.id \
                   AND c.user_id = {me} AND c.expires_at > {live}) \
                 OR EXISTS (SELECT 1 FROM review_halves h WHERE h.request_id = r.id \
                   AND h.state_version = r.state_version AND h.reviewer_id = {me} \
                   AND h.verdict IS NULL))"
            ));
        }
        Some(Assigned::Unassigned) => {
            let live = args.int(at);
            w.push(format!(
                "NOT EXISTS (SELECT 1 FROM request_claims c WHERE c.request_id = r.id \
                   AND c.expires_at > {live}) \
                 AND NOT EXISTS (SELECT 1 FROM review_halves h WHERE h.request_id = r.id \
                   AND h.state_version = r.state_version AND h.verdict IS NULL)"
            ));
        }
    }
    w.join(" AND ")
}

/// 0 for a request that is overdue or escalated (it floats up), 1 otherwise.
fn urgency_sql(at: &str) -> String {
    format!(
        "CAST(CASE WHEN r.status = 'escalated' OR r.deadline_at <= {at} THEN 0 ELSE 1 END AS BIGINT)"
    )
}

#[derive(sqlx::FromRow)]
struct Row {
    id: String,
    action_type: String,
    title: String,
    agent_name: String,
    amount_minor: Option<i64>,
    currency: Option<String>,
    counterparty: Option<String>,
    record_count: Option<i64>,
    recipient_count: Option<i64>,
    tier: String,
    status: String,
    gate_name: Option<String>,
    gate_version: Option<i64>,
    explanation: String,
    created_at: i64,
    deadline_at: Option<i64>,
    state_version: i64,
    dual_reviews_in: Option<i64>,
    claimed_by: Option<String>,
    claimed_by_me: i64,
    grp: String,
    urg: i64,
    sk: i64,
}

/// One page of the open requests `q` selects, as `me` sees them.
pub async fn open_requests(
    db: &Db,
    q: &ListQuery,
    me: &str,
    limit: i64,
) -> Result<InboxPage, AppError> {
    let now = crate::server::now_ms();
    // One instant for the whole walk through the pages, so "overdue" does not shift under it.
    let at = q.after.as_ref().map(|c| c.at).unwrap_or(now);
    let (grp, key) = (q.group.sql(), q.sort.sql());
    let from = from_open(db, q.group);

    let mut args = Args::default();
    let filter = where_clause(q, me, at, &mut args);
    let at_arg = args.int(at);
    let urg = urgency_sql(&at_arg);
    let position = match &q.after {
        None => String::new(),
        Some(c) => format!(
            " AND ({grp}, {urg}, {key}, r.id) > ({}, {}, {}, {})",
            args.text(&c.group_value),
            args.int(c.urgency),
            args.int(c.key),
            args.text(&c.id)
        ),
    };
    let me_arg = args.text(me);
    let limit_arg = args.int(limit + 1);
    let list_sql = format!(
        "WITH page AS (SELECT r.id AS id, CAST({grp} AS TEXT) AS grp, {urg} AS urg, \
           CAST({key} AS BIGINT) AS sk {from} \
           WHERE {filter}{position} ORDER BY 2, 3, 4, 1 LIMIT {limit_arg}) \
         SELECT r.id, r.action_type, r.title, a.name AS agent_name, r.amount_minor, r.currency, \
         r.counterparty, r.record_count, r.recipient_count, r.tier, r.status, \
         g.name AS gate_name, r.gate_version, r.explanation, r.created_at, r.deadline_at, \
         r.state_version, \
         CASE WHEN r.tier = 'dual' THEN (SELECT COUNT(*) FROM review_halves h \
           WHERE h.request_id = r.id AND h.state_version = r.state_version \
           AND h.verdict IS NOT NULL) END AS dual_reviews_in, \
         cu.display_name AS claimed_by, \
         CAST(CASE WHEN c.user_id = {me_arg} THEN 1 ELSE 0 END AS BIGINT) AS claimed_by_me, \
         p.grp, p.urg, p.sk \
         FROM page p JOIN action_requests r ON r.id = p.id JOIN agents a ON a.id = r.agent_id \
         LEFT JOIN gates g ON g.id = r.gate_id \
         LEFT JOIN request_claims c ON c.request_id = r.id AND c.expires_at > {at_arg} \
         LEFT JOIN users cu ON cu.id = c.user_id \
         ORDER BY p.grp, p.urg, p.sk, p.id"
    );

    let mut count_args = Args::default();
    let count_filter = where_clause(q, me, at, &mut count_args);
    let count_sql = format!(
        "SELECT CAST({grp} AS TEXT) AS grp, COUNT(*) AS n {from} WHERE {count_filter} GROUP BY 1 ORDER BY 1"
    );

    type Found = (
        Vec<Row>,
        Vec<(String, i64)>,
        Vec<(String, String)>,
        Vec<String>,
        Vec<Option<String>>,
        Vec<(String, String, String)>,
    );
    let (mut rows, groups, gates, agents, action_types, views): Found = on_db!(db, |p| {
        let rows = bind_all!(sqlx::query_as(&list_sql), args)
            .fetch_all(p)
            .await?;
        let groups = bind_all!(sqlx::query_as(&count_sql), count_args)
            .fetch_all(p)
            .await?;
        let gates = sqlx::query_as("SELECT key, name FROM gates ORDER BY name")
            .fetch_all(p)
            .await?;
        let agents = sqlx::query_scalar("SELECT name FROM agents ORDER BY name")
            .fetch_all(p)
            .await?;
        // Distinct action types by hopping through the index, not by reading every request.
        let action_types = sqlx::query_scalar(
            "WITH RECURSIVE t(v) AS (SELECT MIN(action_type) FROM action_requests \
             UNION ALL SELECT (SELECT MIN(action_type) FROM action_requests WHERE action_type > t.v) \
             FROM t WHERE t.v IS NOT NULL) SELECT v FROM t WHERE v IS NOT NULL",
        )
        .fetch_all(p)
        .await?;
        let views = sqlx::query_as(
            "SELECT id, name, query FROM saved_views WHERE user_id = $1 ORDER BY name",
        )
        .bind(me)
        .fetch_all(p)
        .await?;
        (rows, groups, gates, agents, action_types, views)
    });
    let next_after = if rows.len() as i64 > limit {
        rows.truncate(limit as usize);
        rows.last().map(|r| {
            Cursor {
                group: q.group,
                sort: q.sort,
                at,
                group_value: r.grp.clone(),
                urgency: r.urg,
                key: r.sk,
                id: r.id.clone(),
            }
            .encode()
        })
    } else {
        None
    };
    Ok(InboxPage {
        open_total: groups.iter().map(|(_, n)| n).sum(),
        groups: groups
            .into_iter()
            .map(|(value, count)| GroupCount { value, count })
            .collect(),
        rows: rows
            .into_iter()
            .map(|r| InboxRow {
                id: r.id,
                action_type: r.action_type,
                title: r.title,
                agent_name: r.agent_name,
                amount_minor: r.amount_minor,
                currency: r.currency,
                counterparty: r.counterparty,
                record_count: r.record_count,
                recipient_count: r.recipient_count,
                tier: r.tier,
                status: r.status,
                gate_name: r.gate_name,
                gate_version: r.gate_version,
                explanation: r.explanation,
                created_at: r.created_at,
                deadline_at: r.deadline_at,
                state_version: r.state_version,
                dual_reviews_in: r.dual_reviews_in,
                claimed_by: r.claimed_by,
                claimed_by_me: r.claimed_by_me == 1,
                urgent: r.urg == 0,
                group_value: r.grp,
            })
            .collect(),
        next_after,
        now: at,
        gates,
        agents,
        action_types: action_types.into_iter().flatten().collect(),
        views: views
            .into_iter()
            .map(|(id, name, query)| SavedView { id, name, query })
            .collect(),
    })
}
