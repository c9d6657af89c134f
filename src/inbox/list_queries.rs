//! The inbox list as SQL (both engines): one page of open requests in
//! `(group, urgency, sort key, id)` order, the counts per group, and what the filters offer.
//!
//! The page is read in two steps inside one statement: the ordering runs over the narrow
//! columns the partial index `action_requests_open_list` covers, and only the page's rows are
//! then read in full. Reading every open row's payload just to sort them would make the page
//! cost grow with the width of the requests, not only their number.

use super::count_cache::CountCache;
use super::listing::{
    contains_pattern, milli_factor_sql, Assigned, Cursor, GroupBy, ListQuery, SortBy,
};
use super::{GroupCount, InboxPage, InboxRow, SavedView};
use crate::error::AppError;
use crate::on_db;
use crate::server::db::Db;
use std::sync::Arc;
use std::time::Instant;

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
    /// The statement with its values, as a key for what it returns.
    fn key(&self, sql: &str) -> String {
        let mut key = sql.to_owned();
        for a in &self.0 {
            match a {
                Arg::Int(v) => key.push_str(&format!("\u{1}i{v}")),
                Arg::Text(v) => key.push_str(&format!("\u{1}t{v}")),
            }
        }
        key
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

/// The start of a page statement: the view's filter and the instant it is judged at (overdue,
/// claims), bound in fresh arguments. Each statement binds its own, so each builds its own.
fn page_filter(q: &ListQuery, me: &str, at: i64) -> (Args, String, String) {
    let mut args = Args::default();
    let filter = where_clause(q, me, at, &mut args);
    let at_arg = args.int(at);
    (args, filter, at_arg)
}

/// Which partial index of the open requests serves a view best: one led by the gate or the
/// agent when the view filters or groups by it (a range of the index instead of all of it),
/// otherwise the one in arrival order. All hold the same narrow columns, so each covers the
/// ordering, grouping and filtering.
fn open_index(q: &ListQuery) -> &'static str {
    if q.gate.is_some() {
        "action_requests_open_by_gate"
    } else if q.agent.is_some() {
        "action_requests_open_by_agent"
    } else {
        match q.group {
            GroupBy::Gate => "action_requests_open_by_gate",
            GroupBy::Agent => "action_requests_open_by_agent",
            _ => "action_requests_open_list",
        }
    }
}

/// `INDEXED BY` on SQLite, which without gathered statistics prefers the plain status index
/// (every wide row read); PostgreSQL's planner finds the partial indexes alone.
fn indexed_by(db: &Db, index: &str) -> String {
    match db {
        Db::Sqlite(_) => format!(" INDEXED BY {index}"),
        Db::Postgres(_) => String::new(),
    }
}

/// The rows the list orders and counts: open requests only, through a partial index that
/// covers them, joined to agents or gates only when the grouping needs their names.
fn from_open(db: &Db, q: &ListQuery) -> String {
    let index = indexed_by(db, open_index(q));
    let join = match q.group {
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

/// How many overdue requests per row of a page PostgreSQL reads in deadline order before it
/// looks for them in arrival order instead (see [`oldest_first_page`]).
const OVERDUE_READ_PER_ROW: i64 = 20;

/// One group of an oldest-first page: its value and which rows belong to it.
struct GroupWalk<'a> {
    value: &'a str,
    /// SQL selecting the group's rows, its value bound in `args`.
    only: String,
}

/// An oldest-first page (or its part in one group) without sorting every open request: three
/// walks that each stop after `limit` rows, merged. Escalated requests come through the status
/// index and overdue ones through the deadline index (both few, or already in
/// `(created_at, id)` order); the rest walk a partial index of the open requests in that order
/// (the gate's or agent's range of it when the view names one). Together they are exactly the
/// first `limit` rows in `(urgency, created_at, id)` order, as the general query gives them.
fn oldest_first_page(
    db: &Db,
    q: &ListQuery,
    group: Option<&GroupWalk>,
    filter: &str,
    at_arg: &str,
    limit: i64,
    args: &mut Args,
) -> String {
    let deadline_index = indexed_by(db, "action_requests_open_deadline");
    let open_index = indexed_by(db, open_index(q));
    let (grp, in_group) = match group {
        Some(g) => (args.text(g.value), format!(" AND {}", g.only)),
        None => ("''".to_owned(), String::new()),
    };
    // After a cursor in the urgent rows, the urgent walks resume after it and the other walk
    // starts at its beginning; after a cursor in the other rows, only that walk goes on. A
    // cursor in an earlier group does not apply to this one.
    let cursor = q
        .after
        .as_ref()
        .filter(|c| group.is_none_or(|g| g.value == c.group_value));
    let (urgent_after, rest_after) = match cursor {
        None => (Some(String::new()), String::new()),
        Some(c) => {
            let after = format!(
                " AND (r.created_at, r.id) > ({}, {})",
                args.int(c.key),
                args.text(&c.id)
            );
            if c.urgency == 0 {
                (Some(after), String::new())
            } else {
                (None, after)
            }
        }
    };
    let limit_value = limit;
    let limit = args.int(limit);
    let walk = |name: &str, urgency: i64, index: &str, only: &str, after: &str| {
        format!(
            "SELECT * FROM (SELECT r.id AS id, CAST({grp} AS TEXT) AS grp, \
             CAST({urgency} AS BIGINT) AS urg, CAST(r.created_at AS BIGINT) AS sk \
             FROM action_requests r{index} WHERE {filter}{in_group} AND {only}{after} \
             ORDER BY r.created_at, r.id LIMIT {limit}) AS {name}"
        )
    };
    let mut walks = Vec::new();
    if let Some(after) = urgent_after {
        walks.push(walk("escalated", 0, "", "r.status = 'escalated'", &after));
        let overdue = format!("r.status <> 'escalated' AND r.deadline_at <= {at_arg}");
        match db {
            Db::Sqlite(_) => walks.push(walk("overdue", 0, &deadline_index, &overdue, &after)),
            // PostgreSQL estimates how many open requests are overdue from the deadlines of the
            // whole table, where the past deadlines of decided requests dominate; believing half
            // the open ones overdue, it looked for them in arrival order and read every open
            // request when few were (31 of a page's 34 ms at 100,000 open; BENCHMARKS.md). So
            // the overdue ones are read in deadline order, at most a bounded number: when there
            // are no more than that, they are all there is and are ordered here; only when there
            // are more does the arrival-order walk run (a one-time filter picks the branch).
            Db::Postgres(_) => {
                let bound = args.int(limit_value.saturating_mul(OVERDUE_READ_PER_ROW));
                let in_deadline_order = |columns: &str, extra: &str| {
                    format!(
                        "SELECT {columns} FROM action_requests r WHERE {filter}{in_group} \
                         AND {overdue}{after} ORDER BY r.deadline_at LIMIT {bound}{extra}"
                    )
                };
                let how_many = format!(
                    "(SELECT COUNT(*) FROM ({}) AS n)",
                    in_deadline_order("1", " + 1")
                );
                walks.push(format!(
                    "SELECT * FROM (SELECT r.id AS id, CAST({grp} AS TEXT) AS grp, \
                     CAST(0 AS BIGINT) AS urg, CAST(r.created_at AS BIGINT) AS sk \
                     FROM ({}) AS r WHERE {how_many} <= {bound} \
                     ORDER BY r.created_at, r.id LIMIT {limit}) AS overdue_few",
                    in_deadline_order("r.id, r.created_at", "")
                ));
                walks.push(walk(
                    "overdue_many",
                    0,
                    "",
                    &format!("{overdue} AND {how_many} > {bound}"),
                    &after,
                ));
            }
        }
    }
    walks.push(walk(
        "waiting",
        1,
        &open_index,
        &format!("r.status <> 'escalated' AND (r.deadline_at IS NULL OR r.deadline_at > {at_arg})"),
        &rest_after,
    ));
    format!(
        "SELECT * FROM ({}) AS walks ORDER BY urg, sk, id LIMIT {limit}",
        walks.join(" UNION ALL ")
    )
}

/// The general page: every open request the view selects, ordered by
/// `(group, urgency, sort key, id)`, the first `limit` after the cursor.
fn sorted_page(
    db: &Db,
    q: &ListQuery,
    filter: &str,
    at_arg: &str,
    limit: i64,
    args: &mut Args,
) -> String {
    let (grp, key) = (q.group.sql(), q.sort.sql());
    let from = from_open(db, q);
    let urg = urgency_sql(at_arg);
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
    let limit_arg = args.int(limit);
    format!(
        "SELECT r.id AS id, CAST({grp} AS TEXT) AS grp, {urg} AS urg, \
         CAST({key} AS BIGINT) AS sk {from} \
         WHERE {filter}{position} ORDER BY 2, 3, 4, 1 LIMIT {limit_arg}"
    )
}

/// The page's rows in full: `page` is a statement giving `(id, grp, urg, sk)` in order.
async fn read_rows(
    db: &Db,
    page: &str,
    mut args: Args,
    at_arg: &str,
    me: &str,
) -> Result<Vec<Row>, AppError> {
    let me_arg = args.text(me);
    let sql = format!(
        "WITH page AS ({page}) \
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
    Ok(on_db!(db, |p| bind_all!(sqlx::query_as(&sql), args)
        .fetch_all(p)
        .await)?)
}

/// The counts per group of the view, as the page shows them (gate and agent names). Grouping
/// by gate or agent counts by id along the index led by it (no sort, no join) and names the
/// groups here.
async fn count_groups(
    db: &Db,
    q: &ListQuery,
    args: Args,
    filter: &str,
    names: &Names,
) -> Result<Vec<(String, i64)>, AppError> {
    // No join: gates and agents are counted by id and named below.
    let from = format!("FROM action_requests r{}", indexed_by(db, open_index(q)));
    let sql = match q.group {
        // One group: a plain count runs on the index alone, without GROUP BY's sorter.
        GroupBy::None => format!("SELECT CAST('' AS TEXT) AS grp, COUNT(*) AS n {from} WHERE {filter}"),
        GroupBy::Gate => format!(
            "SELECT CAST(COALESCE(r.gate_id, '') AS TEXT) AS grp, COUNT(*) AS n {from} WHERE {filter} GROUP BY r.gate_id"
        ),
        GroupBy::Agent => format!(
            "SELECT CAST(r.agent_id AS TEXT) AS grp, COUNT(*) AS n {from} WHERE {filter} GROUP BY r.agent_id"
        ),
        group => format!(
            "SELECT CAST({} AS TEXT) AS grp, COUNT(*) AS n {from} WHERE {filter} GROUP BY 1",
            group.sql()
        ),
    };
    let counted: Vec<(String, i64)> = on_db!(db, |p| bind_all!(sqlx::query_as(&sql), args)
        .fetch_all(p)
        .await)?;
    let mut named: std::collections::BTreeMap<String, i64> = Default::default();
    for (key, n) in counted {
        let name = match q.group {
            GroupBy::Gate => names.gate(&key).to_owned(),
            GroupBy::Agent => names.agent(&key).to_owned(),
            _ => key,
        };
        *named.entry(name).or_default() += n;
    }
    Ok(named.into_iter().filter(|(_, n)| *n > 0).collect())
}

/// Gate and agent names by id, for naming the groups counted by id.
struct Names {
    gates: Vec<(String, String, String)>,
    agents: Vec<(String, String)>,
}

impl Names {
    fn gate(&self, id: &str) -> &str {
        self.gates
            .iter()
            .find(|(gid, ..)| gid == id)
            .map_or("", |(.., name)| name.as_str())
    }
    fn agent(&self, id: &str) -> &str {
        self.agents
            .iter()
            .find(|(aid, _)| aid == id)
            .map_or("", |(_, name)| name.as_str())
    }
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

/// Where a page's per-group counts come from.
pub enum CountSource<'a> {
    /// Counted for this page.
    Fresh,
    /// Reused while nothing changed (the cache and the change generation read before counting).
    Cached(&'a CountCache, u64),
}

/// One page of the open requests `q` selects, as `me` sees them.
pub async fn open_requests(
    db: &Db,
    counts: CountSource<'_>,
    q: &ListQuery,
    me: &str,
    limit: i64,
) -> Result<InboxPage, AppError> {
    let now = crate::server::now_ms();
    // One instant for the whole walk through the pages, so "overdue" does not shift under it.
    let at = q.after.as_ref().map(|c| c.at).unwrap_or(now);

    type Lists = (
        Vec<(String, String, String)>,
        Vec<(String, String)>,
        Vec<Option<String>>,
        Vec<(String, String, String)>,
    );
    let (gates, agents, action_types, views): Lists = on_db!(db, |p| {
        let gates = sqlx::query_as("SELECT id, key, name FROM gates ORDER BY name")
            .fetch_all(p)
            .await?;
        let agents = sqlx::query_as("SELECT id, name FROM agents ORDER BY name")
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
        (gates, agents, action_types, views)
    });
    let names = Names { gates, agents };

    // The counts, reused while nothing changed. A view whose statement carries the current
    // instant (waiting time, deadline, assigned) never matches an earlier one.
    let mut count_args = Args::default();
    let count_filter = where_clause(q, me, at, &mut count_args);
    let count_key = count_args.key(&format!("{:?}\u{1}{count_filter}", q.group));
    let cached = match counts {
        CountSource::Cached(cache, generation) => cache.get(&count_key, generation, Instant::now()),
        CountSource::Fresh => None,
    };
    let groups = match cached {
        Some(reused) => reused,
        None => {
            let counted = Arc::new(count_groups(db, q, count_args, &count_filter, &names).await?);
            if let CountSource::Cached(cache, generation) = counts {
                cache.put(count_key, generation, Instant::now(), counted.clone());
            }
            counted
        }
    };

    let mut rows = match (q.sort, q.group) {
        (SortBy::Age, GroupBy::None) => {
            let (mut args, filter, at_arg) = page_filter(q, me, at);
            let page = oldest_first_page(db, q, None, &filter, &at_arg, limit + 1, &mut args);
            read_rows(db, &page, args, &at_arg, me).await?
        }
        // Group by group in name order, each an oldest-first walk of its own range, until the
        // page is full: a page rarely spans more than two groups.
        (SortBy::Age, GroupBy::Gate | GroupBy::Agent) => {
            let mut rows = Vec::new();
            let from = q.after.as_ref().map(|c| c.group_value.as_str());
            for (value, _) in groups
                .iter()
                .filter(|(v, _)| from.is_none_or(|f| v.as_str() >= f))
            {
                let (mut args, filter, at_arg) = page_filter(q, me, at);
                let v = args.text(value);
                let only = match (q.group, value.is_empty()) {
                    (GroupBy::Gate, true) => "r.gate_id IS NULL".to_owned(),
                    (GroupBy::Gate, false) => {
                        format!("r.gate_id IN (SELECT id FROM gates WHERE name = {v})")
                    }
                    _ => format!("r.agent_id IN (SELECT id FROM agents WHERE name = {v})"),
                };
                let group = GroupWalk { value, only };
                let want = limit + 1 - rows.len() as i64;
                let page =
                    oldest_first_page(db, q, Some(&group), &filter, &at_arg, want, &mut args);
                rows.extend(read_rows(db, &page, args, &at_arg, me).await?);
                if rows.len() as i64 > limit {
                    break;
                }
            }
            rows
        }
        _ => {
            let (mut args, filter, at_arg) = page_filter(q, me, at);
            let page = sorted_page(db, q, &filter, &at_arg, limit + 1, &mut args);
            read_rows(db, &page, args, &at_arg, me).await?
        }
    };
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
            .iter()
            .filter(|(_, count)| *count > 0)
            .map(|(value, count)| GroupCount {
                value: value.clone(),
                count: *count,
            })
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
        gates: names
            .gates
            .into_iter()
            .map(|(_, key, name)| (key, name))
            .collect(),
        agents: names.agents.into_iter().map(|(_, name)| name).collect(),
        action_types: action_types.into_iter().flatten().collect(),
        views: views
            .into_iter()
            .map(|(id, name, query)| SavedView { id, name, query })
            .collect(),
    })
}
