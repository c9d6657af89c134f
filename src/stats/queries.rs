//! Loading history for statistics and backtests (both engines), and assembling the pages' data.
//!
//! Requests are streamed into streaming accumulators (`Summary`, `Trend`, `Backtest`), so memory
//! stays flat however long the window: on PostgreSQL row by row through sqlx (`fetch`), on
//! SQLite in batches from a read-only connection of their own ([`scan::for_each_row`], which
//! says why). Only the columns policy and the statistics read are selected; the final human
//! decision (kind and reviewer, in one lookup) is found through the `decisions (request_id,
//! created_at)` index, and only for requests a human decided.
//!
//! The after-the-fact judgement of `log` and sampled `auto` requests is looked up by primary key
//! in `after_fact_reviews`, only for those tiers; requests nobody judged (yet) load as
//! [`Hindsight::NotReviewed`], so "not reviewed" does not dilute the rate.

use super::params::{self, StatsQuery, TuneQuery};
use super::{
    AlarmRow, CandidateView, GroupRow, HistogramRow, HistogramView, MissRow, RuleLine, Shown,
    StatsData, TuneData,
};
use crate::domain::backtest::{self, Attribute, Backtest, BacktestSettings};
use crate::domain::policy::GateDefinition;
use crate::domain::stats::{
    alarms, Alarm, AlarmSettings, GroupBy, Hindsight, HistoricRequest, Outcome, Summary, Trend,
    Window, BASE_TIER,
};
use crate::domain::status::Status;
use crate::domain::tier::Tier;
use crate::error::{internal, AppError};
use crate::on_db;
use crate::server::{scan, Db};
use futures::TryStreamExt;
use rusqlite::types::Value;
use std::collections::HashMap;

/// Names for the ids stored on requests.
#[derive(Debug, Default)]
pub struct Lookup {
    pub gate_key: HashMap<String, String>,
    pub gate_name: HashMap<String, String>,
    pub agent_name: HashMap<String, String>,
    pub user_name: HashMap<String, String>,
}

impl Lookup {
    pub async fn load(db: &Db) -> Result<Lookup, sqlx::Error> {
        let gates: Vec<(String, String, String)> = on_db!(db, |p| sqlx::query_as(
            "SELECT id, key, name FROM gates ORDER BY key"
        )
        .fetch_all(p)
        .await)?;
        let agents: Vec<(String, String)> =
            on_db!(db, |p| sqlx::query_as("SELECT id, name FROM agents")
                .fetch_all(p)
                .await)?;
        let users: Vec<(String, String)> =
            on_db!(db, |p| sqlx::query_as("SELECT id, display_name FROM users")
                .fetch_all(p)
                .await)?;
        let mut l = Lookup::default();
        for (id, key, name) in gates {
            l.gate_name.insert(key.clone(), name);
            l.gate_key.insert(id, key);
        }
        l.agent_name.extend(agents);
        l.user_name.extend(users);
        Ok(l)
    }

    fn gate_id(&self, key: &str) -> Option<&str> {
        self.gate_key
            .iter()
            .find(|(_, k)| *k == key)
            .map(|(id, _)| id.as_str())
    }

    fn user(&self, id: &str) -> String {
        self.user_name
            .get(id)
            .cloned()
            .unwrap_or_else(|| id.to_owned())
    }
}

/// Which requests of the window to load.
#[derive(Debug, Clone)]
pub enum Scope {
    All,
    /// The requests a gate decided (its id).
    DecidedBy(String),
    /// The requests whose action type matches any of these gate patterns (`payment.refund`,
    /// `payment.*`): everything a gate's candidate could re-gate.
    ActionTypes(Vec<String>),
}

#[derive(sqlx::FromRow)]
struct Row {
    id: String,
    action_type: String,
    agent_id: String,
    amount_minor: Option<i64>,
    currency: Option<String>,
    record_count: Option<i64>,
    recipient_count: Option<i64>,
    confidence: Option<f64>,
    customer_tier: Option<String>,
    risk_class: Option<String>,
    tier: String,
    gate_id: Option<String>,
    matched_rules: String,
    status: String,
    created_at: i64,
    decided_at: Option<i64>,
    /// The final decision's kind and reviewer id, separated by a space (one lookup for both).
    final_decision: Option<String>,
    hindsight: Option<String>,
}

/// The final human decision, for requests a human decided (dual review: the second one): its
/// kind and reviewer in one text, so the decision is looked up once per request, not once per
/// column. Kinds contain no space.
const FINAL: &str = "CASE WHEN r.tier IN ('review', 'dual') AND r.status IN ('approved', \
    'approved_with_edit', 'rejected', 'executed', 'execution_failed') THEN (SELECT d.kind || ' ' \
    || COALESCE(d.reviewer_id, '') FROM decisions d WHERE d.request_id = r.id AND d.kind IN \
    ('approve', 'approve_with_edit', 'reject') ORDER BY d.created_at DESC, d.id DESC LIMIT 1) END";

fn select_sql(scope: &Scope) -> String {
    let mut sql = format!(
        "SELECT r.id, r.action_type, r.agent_id, r.amount_minor, r.currency, r.record_count, \
         r.recipient_count, r.confidence, r.customer_tier, r.risk_class, r.tier, r.gate_id, \
         r.matched_rules, r.status, r.created_at, r.decided_at, {FINAL} AS final_decision, \
         CASE WHEN r.tier IN ('auto', 'log') THEN (SELECT a.verdict FROM after_fact_reviews a \
         WHERE a.request_id = r.id) END AS hindsight \
         FROM action_requests r WHERE r.created_at >= $1 AND r.created_at < $2",
    );
    match scope {
        Scope::All => {}
        Scope::DecidedBy(_) => sql.push_str(" AND r.gate_id = $3"),
        Scope::ActionTypes(patterns) => {
            let tests: Vec<String> = patterns
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    if p.ends_with('*') {
                        format!("r.action_type LIKE ${} ESCAPE '\\'", i + 3)
                    } else {
                        format!("r.action_type = ${}", i + 3)
                    }
                })
                .collect();
            if tests.is_empty() {
                sql.push_str(" AND 1 = 0");
            } else {
                sql.push_str(&format!(" AND ({})", tests.join(" OR ")));
            }
        }
    }
    sql
}

/// What a gate pattern binds as: itself, or a LIKE pattern for a prefix (`_` and `%` escaped,
/// since action types may contain `_`).
fn bind_value(pattern: &str) -> String {
    match pattern.strip_suffix('*') {
        None => pattern.to_owned(),
        Some(prefix) => {
            let mut out = String::with_capacity(prefix.len() + 2);
            for c in prefix.chars() {
                if matches!(c, '%' | '_' | '\\') {
                    out.push('\\');
                }
                out.push(c);
            }
            out.push('%');
            out
        }
    }
}

/// The gate patterns' own test, exactly as policy applies it (LIKE folds ASCII case on SQLite).
fn matches_pattern(patterns: &[String], action_type: &str) -> bool {
    patterns.iter().any(|p| match p.strip_suffix('*') {
        Some(prefix) => action_type.starts_with(prefix),
        None => p == action_type,
    })
}

fn to_historic(row: Row, lookup: &Lookup) -> Result<HistoricRequest, String> {
    let tier: Tier = row
        .tier
        .parse()
        .map_err(|e| format!("request {}: {e}", row.id))?;
    let status: Status = row
        .status
        .parse()
        .map_err(|e| format!("request {}: {e:?}", row.id))?;
    let (final_kind, final_reviewer) = match row.final_decision.as_deref() {
        Some(both) => {
            let (kind, reviewer) = both.split_once(' ').unwrap_or((both, ""));
            (
                Some(kind),
                (!reviewer.is_empty()).then(|| reviewer.to_owned()),
            )
        }
        None => (None, None),
    };
    let outcome = params::outcome_of(tier, status, final_kind);
    let matched_rules = if row.matched_rules == "[]" {
        Vec::new()
    } else {
        serde_json::from_str(&row.matched_rules)
            .map_err(|e| format!("request {}: matched_rules: {e}", row.id))?
    };
    Ok(HistoricRequest {
        agent: lookup
            .agent_name
            .get(&row.agent_id)
            .cloned()
            .unwrap_or(row.agent_id),
        gate_key: row
            .gate_id
            .as_ref()
            .map(|g| lookup.gate_key.get(g).cloned().unwrap_or_else(|| g.clone())),
        id: row.id,
        action_type: row.action_type,
        amount_minor: row.amount_minor,
        currency: row.currency,
        record_count: row.record_count,
        recipient_count: row.recipient_count,
        confidence: row.confidence,
        customer_tier: row.customer_tier,
        risk_class: row.risk_class,
        tier,
        matched_rules,
        outcome,
        created_at_ms: row.created_at,
        decided_at_ms: row.decided_at,
        reviewer_id: final_reviewer,
        hindsight: match row.hindsight.as_deref() {
            Some("fine") => Hindsight::Fine,
            Some("should_not_have_happened") => Hindsight::ShouldNotHaveHappened,
            _ => Hindsight::NotReviewed,
        },
    })
}

/// Calls `each` for every request of `scope` created inside `window`, in no particular order.
/// Returns how many there were.
pub async fn for_each_request(
    db: &Db,
    window: Window,
    scope: &Scope,
    lookup: &Lookup,
    mut each: impl FnMut(HistoricRequest),
) -> Result<u64, AppError> {
    let sql = select_sql(scope);
    let mut n = 0u64;
    let mut take = |row: Row| -> Result<(), AppError> {
        if let Scope::ActionTypes(patterns) = scope {
            if !matches_pattern(patterns, &row.action_type) {
                return Ok(());
            }
        }
        each(to_historic(row, lookup).map_err(internal)?);
        n += 1;
        Ok(())
    };
    match db {
        Db::Sqlite(pool) => {
            let mut binds = vec![Value::from(window.from_ms), Value::from(window.to_ms)];
            binds.extend(scope_binds(scope).into_iter().map(Value::from));
            let path = pool.connect_options().get_filename().to_path_buf();
            scan::for_each_row(path, sql, binds, row_from_sqlite, &mut take).await?;
        }
        Db::Postgres(pool) => {
            let mut q = sqlx::query_as::<_, Row>(&sql)
                .bind(window.from_ms)
                .bind(window.to_ms);
            for value in scope_binds(scope) {
                q = q.bind(value);
            }
            let mut rows = q.fetch(pool);
            while let Some(row) = rows.try_next().await? {
                take(row)?;
            }
        }
    }
    Ok(n)
}

/// What `scope`'s placeholders (`$3`, …) bind.
fn scope_binds(scope: &Scope) -> Vec<String> {
    match scope {
        Scope::All => Vec::new(),
        Scope::DecidedBy(id) => vec![id.clone()],
        Scope::ActionTypes(patterns) => patterns.iter().map(|p| bind_value(p)).collect(),
    }
}

/// [`Row`] from a SQLite scan ([`scan::for_each_row`]), by column position in [`select_sql`].
fn row_from_sqlite(r: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
    Ok(Row {
        id: r.get(0)?,
        action_type: r.get(1)?,
        agent_id: r.get(2)?,
        amount_minor: r.get(3)?,
        currency: r.get(4)?,
        record_count: r.get(5)?,
        recipient_count: r.get(6)?,
        confidence: r.get(7)?,
        customer_tier: r.get(8)?,
        risk_class: r.get(9)?,
        tier: r.get(10)?,
        gate_id: r.get(11)?,
        matched_rules: r.get(12)?,
        status: r.get(13)?,
        created_at: r.get(14)?,
        decided_at: r.get(15)?,
        final_decision: r.get(16)?,
        hindsight: r.get(17)?,
    })
}

/// The gate part of a statistics key (`refunds` of `refunds/over-100`), unless it names no gate.
fn gate_of(key: &str) -> Option<&str> {
    let gate = key.split('/').next().unwrap_or(key);
    (gate != crate::domain::stats::NO_GATE).then_some(gate)
}

fn alarm_row(a: &Alarm, window: &str, live: &crate::domain::policy::Policy) -> AlarmRow {
    let key = a.key().to_owned();
    let (kind, detail) = match a {
        Alarm::RubberStamp {
            decisions,
            approval_rate,
            ..
        } => (
            "Rubber stamp",
            format!(
                "{} of {decisions} human decisions approved unchanged",
                super::pct(Some(*approval_rate))
            ),
        ),
        Alarm::RisingCorrections {
            first_half_rate,
            second_half_rate,
            first_half_decisions,
            second_half_decisions,
            ..
        } => (
            "Rising corrections",
            format!(
                "edited or rejected: {} of {first_half_decisions} in the first half of the window, {} of {second_half_decisions} in the second",
                super::pct(Some(*first_half_rate)),
                super::pct(Some(*second_half_rate))
            ),
        ),
    };
    let tune_href = gate_of(&key).map(|gate| {
        let mut href = format!("/stats/gates/{}?{window}", crate::shell::query_escape(gate));
        // A rubber-stamped review rule: prefill the suggested move to `log`, when the gate
        // allows it (a rule must stay stricter than the gate's base tier).
        let rule = key
            .split_once('/')
            .map(|(_, r)| r)
            .filter(|r| *r != BASE_TIER);
        if let (Alarm::RubberStamp { .. }, Some(rule), Some(def)) = (a, rule, live.definition(gate))
        {
            let movable = def.base_tier < Tier::Log
                && def
                    .rules
                    .iter()
                    .any(|r| r.key == rule && r.tier.needs_human());
            if movable {
                href.push_str(&format!(
                    "&rule={}&tier=log",
                    crate::shell::query_escape(rule)
                ));
            }
        }
        href
    });
    AlarmRow {
        kind: kind.into(),
        key,
        detail,
        suggestion: a.suggestion().into(),
        tune_href,
    }
}

async fn live_policy(db: &Db) -> Result<crate::gates::repo::LivePolicy, AppError> {
    crate::gates::repo::live_policy(db).await.map_err(internal)
}

pub async fn stats(db: &Db, query: &StatsQuery, now_ms: i64) -> Result<StatsData, AppError> {
    let p = query.parse(now_ms)?;
    let lookup = Lookup::load(db).await?;
    let scope = match &p.gate {
        None => Scope::All,
        Some(key) => match lookup.gate_id(key) {
            Some(id) => Scope::DecidedBy(id.to_owned()),
            None => {
                return Err(AppError::invalid(
                    "gate",
                    format!("there is no gate {key:?}"),
                ))
            }
        },
    };
    let live = live_policy(db).await?;
    let mut chosen = Summary::new(p.group_by, p.window);
    let mut by_gate = Summary::new(GroupBy::Gate, p.window);
    let mut by_rule = Summary::new(GroupBy::Rule, p.window);
    let mut trend =
        Trend::new(p.window, p.bucket_ms).map_err(|e| AppError::invalid("days", e.to_string()))?;
    let requests = for_each_request(db, p.window, &scope, &lookup, |r| {
        chosen.add(&r);
        if p.group_by != GroupBy::Gate {
            by_gate.add(&r);
        }
        if p.group_by != GroupBy::Rule {
            by_rule.add(&r);
        }
        trend.add(&r);
    })
    .await?;
    let groups = chosen.finish();
    let (gate_stats, rule_stats) = match p.group_by {
        GroupBy::Gate => (groups.clone(), by_rule.finish()),
        GroupBy::Rule => (by_gate.finish(), groups.clone()),
        _ => (by_gate.finish(), by_rule.finish()),
    };
    let settings = AlarmSettings::default();
    let window_query = {
        let mut w = StatsQuery {
            window: query.window.clone(),
            ..StatsQuery::default()
        }
        .query_string();
        if w.is_empty() {
            w = format!("days={}", params::DEFAULT_DAYS);
        }
        w
    };
    let alarm_rows: Vec<AlarmRow> = alarms(&gate_stats, &settings)
        .iter()
        .chain(alarms(&rule_stats, &settings).iter())
        .map(|a| alarm_row(a, &window_query, &live.policy))
        .collect();
    let groups = groups
        .into_iter()
        .map(|mut s| {
            let label = match p.group_by {
                GroupBy::Reviewer => lookup.user(&s.key),
                _ => s.key.clone(),
            };
            for r in &mut s.reviewers {
                r.reviewer = lookup.user(&r.reviewer);
            }
            let gate = match p.group_by {
                GroupBy::Gate | GroupBy::Rule => gate_of(&s.key).map(str::to_owned),
                _ => None,
            };
            GroupRow {
                label,
                gate,
                stats: s,
            }
        })
        .collect();
    let mut gates: Vec<(String, String)> = lookup
        .gate_name
        .iter()
        .map(|(k, n)| (k.clone(), n.clone()))
        .collect();
    gates.sort();
    Ok(StatsData {
        query: query.clone(),
        window: p.window,
        group_name: p.group_name.to_owned(),
        bucket_ms: p.bucket_ms,
        requests,
        groups,
        alarms: alarm_rows,
        trend: trend.finish(),
        gates,
    })
}

/// The live definition of gate `key`, or why there is none to tune.
pub async fn live_definition(
    db: &Db,
    key: &str,
) -> Result<(crate::gates::repo::LivePolicy, GateDefinition, i64), AppError> {
    let live = live_policy(db).await?;
    let found = live
        .policy
        .gate_definitions()
        .find(|(d, _)| d.key == key)
        .map(|(d, v)| (d.clone(), v));
    match found {
        Some((def, version)) => Ok((live, def, version)),
        None => {
            let exists = !crate::gates::drafts::versions(db, key).await?.is_empty();
            if exists {
                Err(AppError::invalid(
                    "gate",
                    format!("gate {key} is not published yet, so it has no history to tune"),
                ))
            } else {
                Err(AppError::NotFound)
            }
        }
    }
}

const BUCKETS: u32 = 20;

/// Bucket edges for the distribution: confidence in twentieths of [0, 1]; amounts and counts in
/// round steps from 0 to past the 95th percentile and past every marked threshold (the long
/// tail goes to one "over" bar instead of squashing the rest).
fn edges_for(attribute: Attribute, values: &mut [f64], marks: &[f64]) -> Vec<f64> {
    if attribute == Attribute::Confidence {
        return (0..=BUCKETS)
            .map(|i| f64::from(i) / f64::from(BUCKETS))
            .collect();
    }
    let p95 = if values.is_empty() {
        0.0
    } else {
        let k = (values.len() * 95).div_ceil(100).max(1) - 1;
        *values.select_nth_unstable_by(k, |a, b| a.total_cmp(b)).1
    };
    let hi = marks.iter().fold(p95, |hi, m| hi.max(m * 1.5));
    params::nice_edges(hi, BUCKETS)
}

fn range_text(attribute: Attribute, lo: f64, hi: f64) -> String {
    let v = |x| params::value_text(attribute, x);
    if attribute == Attribute::Confidence {
        format!("{} to below {}", v(lo), v(hi))
    } else {
        format!("over {} up to {}", v(lo), v(hi))
    }
}

fn tick_text(attribute: Attribute, v: f64) -> String {
    match attribute {
        Attribute::Amount { currency } => {
            let major = v / 10f64.powi(i32::from(currency.exponent()));
            crate::inbox::group_digits(major.round() as i64)
        }
        Attribute::Confidence => format!("{v:.2}"),
        _ => crate::inbox::group_digits(v.round() as i64),
    }
}

/// Where a threshold falls on the chart, in bars from the left.
fn marker_at(h: &crate::domain::backtest::Histogram, under_bar: bool, v: f64) -> Option<f64> {
    let (first, last) = (*h.edges.first()?, *h.edges.last()?);
    let buckets = h.buckets.len() as f64;
    let offset = f64::from(u8::from(under_bar));
    let at = if v <= first {
        offset
    } else if v >= last {
        offset + buckets
    } else {
        offset + (v - first) / (last - first) * buckets
    };
    Some(at)
}

fn histogram_view(
    attribute: Attribute,
    mut values: Vec<(Option<f64>, Outcome)>,
    live: f64,
    candidate: Option<f64>,
) -> HistogramView {
    let mut stated: Vec<f64> = values.iter().filter_map(|(v, _)| *v).collect();
    let marks: Vec<f64> = std::iter::once(live).chain(candidate).collect();
    let edges = edges_for(attribute, &mut stated, &marks);
    drop(stated);
    let h = backtest::histogram_of_values(values.drain(..), attribute, edges);
    let mut rows = Vec::with_capacity(h.buckets.len() + 2);
    let under_bar = h.under.total() > 0;
    if under_bar {
        rows.push(HistogramRow {
            tick: format!("≤{}", tick_text(attribute, h.edges[0])),
            range: format!("{} or less", params::value_text(attribute, h.edges[0])),
            counts: h.under,
        });
    }
    for (i, c) in h.buckets.iter().enumerate() {
        rows.push(HistogramRow {
            tick: tick_text(attribute, h.edges[i + 1]),
            range: range_text(attribute, h.edges[i], h.edges[i + 1]),
            counts: *c,
        });
    }
    if h.over.total() > 0 {
        let last = *h.edges.last().unwrap_or(&0.0);
        rows.push(HistogramRow {
            tick: format!(">{}", tick_text(attribute, last)),
            range: format!("over {}", params::value_text(attribute, last)),
            counts: h.over,
        });
    }
    HistogramView {
        live_at: marker_at(&h, under_bar, live),
        candidate_at: candidate.and_then(|c| marker_at(&h, under_bar, c)),
        candidate_text: candidate.map(|c| params::value_text(attribute, c)),
        rows,
        missing: h.missing,
    }
}

async fn miss_rows(db: &Db, misses: &[backtest::Miss]) -> Result<Vec<MissRow>, AppError> {
    if misses.is_empty() {
        return Ok(Vec::new());
    }
    let placeholders: Vec<String> = (1..=misses.len()).map(|i| format!("${i}")).collect();
    let sql = format!(
        "SELECT id, title, created_at FROM action_requests WHERE id IN ({})",
        placeholders.join(", ")
    );
    let found: Vec<(String, String, i64)> = on_db!(db, |p| {
        let mut q = sqlx::query_as(&sql);
        for m in misses {
            q = q.bind(m.id.clone());
        }
        q.fetch_all(p).await
    })?;
    let found: HashMap<String, (String, i64)> =
        found.into_iter().map(|(id, t, at)| (id, (t, at))).collect();
    Ok(misses
        .iter()
        .map(|m| {
            let (title, created_at) = found.get(&m.id).cloned().unwrap_or_default();
            MissRow {
                id: m.id.clone(),
                title,
                created_at,
                live_tier: m.live_tier,
                candidate_tier: m.candidate_tier,
                outcome: m.outcome,
            }
        })
        .collect())
}

fn rule_lines(def: &GateDefinition) -> Vec<RuleLine> {
    use crate::gates::editor::{condition_text, ATTRIBUTES};
    def.rules
        .iter()
        .map(|r| RuleLine {
            key: r.key.clone(),
            conditions: r
                .when
                .iter()
                .map(|c| {
                    let (attr, text) = condition_text(c);
                    let label = ATTRIBUTES
                        .iter()
                        .find(|(a, _)| *a == attr)
                        .map(|(_, l)| *l)
                        .unwrap_or(attr);
                    format!("{label} {text}")
                })
                .collect::<Vec<_>>()
                .join("; "),
            tier: r.tier,
        })
        .collect()
}

pub async fn tune(
    db: &Db,
    key: &str,
    query: &TuneQuery,
    can_save: bool,
    now_ms: i64,
) -> Result<TuneData, AppError> {
    let window = query.window.window(now_ms)?;
    let (live, def, live_version) = live_definition(db, key).await?;
    let tunables = backtest::tunable_thresholds(&def);
    let mut candidate_error = None;
    let shown = match query.shown(&tunables) {
        Ok(s) => s,
        Err(e) => {
            candidate_error = Some(e);
            tunables.first().cloned()
        }
    };
    let candidate = if candidate_error.is_some() {
        None
    } else {
        match query.candidate(&def) {
            Err(e) => {
                candidate_error = Some(e);
                None
            }
            Ok(None) => None,
            Ok(Some(c)) => match backtest::candidate(&live.policy, c.definition.clone()) {
                Ok(policy) => Some((c, policy)),
                Err(e) => {
                    candidate_error = Some(AppError::invalid("candidate", e.to_string()));
                    None
                }
            },
        }
    };
    let lookup = Lookup::load(db).await?;
    let settings = BacktestSettings::default();
    let mut bt = candidate
        .as_ref()
        .map(|(_, policy)| Backtest::new(&live.policy, policy, settings));
    let mut summary = Summary::new(GroupBy::Gate, window);
    let mut values: Vec<(Option<f64>, Outcome)> = Vec::new();
    let scope = Scope::ActionTypes(def.action_types.clone());
    let considered = for_each_request(db, window, &scope, &lookup, |r| {
        if let Some(bt) = bt.as_mut() {
            bt.add(&r);
        }
        if let Some(t) = &shown {
            values.push((t.attribute.value(&r), r.outcome));
        }
        summary.add(&r);
    })
    .await?;
    let candidate_marker = candidate
        .as_ref()
        .and_then(|(c, _)| c.marker.as_ref())
        .filter(|(t, _)| Some(t) == shown.as_ref())
        .map(|(_, v)| *v);
    let histogram = shown
        .as_ref()
        .map(|t| histogram_view(t.attribute, values, t.value, candidate_marker));
    let report = bt.map(Backtest::finish);
    let candidate = match (candidate, report) {
        (Some((c, _)), Some(report)) => {
            let misses = miss_rows(db, &report.misses).await?;
            Some(CandidateView {
                description: c.description,
                report,
                misses,
            })
        }
        _ => None,
    };
    let draft_version = crate::gates::drafts::versions(db, key)
        .await?
        .iter()
        .find(|v| v.published_at.is_none())
        .map(|v| v.version);
    Ok(TuneData {
        key: key.to_owned(),
        name: def.name.clone(),
        live_version,
        query: query.clone(),
        window,
        action_types: def.action_types.clone(),
        base_tier: def.base_tier,
        rules: rule_lines(&def),
        tunables: tunables
            .iter()
            .map(|t| {
                (
                    params::tunable_id(t),
                    format!(
                        "{}: {} above {}",
                        t.rule_key,
                        params::attribute_label(t.attribute),
                        params::value_text(t.attribute, t.value)
                    )
                    .replace("confidence above", "confidence below"),
                )
            })
            .collect(),
        shown: shown.as_ref().map(|t| Shown {
            id: params::tunable_id(t),
            rule_key: t.rule_key.clone(),
            attribute: params::attribute_label(t.attribute),
            live_text: params::value_text(t.attribute, t.value),
            live_input: params::input_text(t.attribute, t.value),
        }),
        histogram,
        considered,
        stats: summary.finish().into_iter().find(|s| s.key == key),
        candidate,
        candidate_error,
        can_save,
        draft_version,
        review_seconds: settings.review_seconds,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_patterns_become_escaped_like_patterns() {
        assert_eq!(bind_value("payment.refund"), "payment.refund");
        assert_eq!(bind_value("email.bulk_*"), "email.bulk\\_%");
        assert!(matches_pattern(&["contract.*".into()], "contract.amend"));
        assert!(!matches_pattern(&["contract.*".into()], "Contract.amend"));
        assert!(!matches_pattern(
            &["payment.refund".into()],
            "payment.refunds"
        ));
        let sql = select_sql(&Scope::ActionTypes(vec!["a.b".into(), "c.*".into()]));
        assert!(
            sql.ends_with("AND (r.action_type = $3 OR r.action_type LIKE $4 ESCAPE '\\')"),
            "{sql}"
        );
        assert!(select_sql(&Scope::ActionTypes(vec![])).ends_with("AND 1 = 0"));
    }

    #[test]
    fn statistics_keys_name_their_gate() {
        assert_eq!(gate_of("refunds"), Some("refunds"));
        assert_eq!(gate_of("refunds/over-100"), Some("refunds"));
        assert_eq!(gate_of("(no gate)"), None);
        assert_eq!(gate_of("(no gate)/(base)"), None);
    }

    #[test]
    fn the_distribution_marks_thresholds_on_bucket_edges() {
        let eur = Attribute::Amount {
            currency: crate::domain::money::Currency::parse("EUR").unwrap(),
        };
        // 100 requests from 1 to 100 EUR, a threshold at 50 EUR.
        let values: Vec<(Option<f64>, Outcome)> = (1..=100)
            .map(|i| (Some(f64::from(i) * 100.0), Outcome::ApprovedUnchanged))
            .chain(std::iter::once((None, Outcome::Rejected)))
            .collect();
        let h = histogram_view(eur, values, 5_000.0, Some(7_500.0));
        let total: u64 = h.rows.iter().map(|r| r.counts.total()).sum();
        assert_eq!(total, 100);
        assert_eq!(h.missing.rejected, 1);
        let at = h.live_at.unwrap();
        assert_eq!(at.fract(), 0.0, "on an edge");
        let below: u64 = h.rows[..at as usize].iter().map(|r| r.counts.total()).sum();
        assert_eq!(
            below, 50,
            "bars left of the line hold what the rule lets pass"
        );
        assert!(h.candidate_at.unwrap() > at);
        assert_eq!(h.candidate_text.as_deref(), Some("75.00 EUR"));
        assert!(h.rows[0].range.starts_with("over 0.00 EUR up to "));
    }
}
