//! Threshold tuning: per-gate statistics over a chosen window (`/stats`, with trend charts, a
//! table behind every chart and CSV downloads), rubber-stamp and rising-correction alarms, and
//! the per-gate tuning screen (`/stats/gates/:key`) with the distribution of a gated attribute
//! and a what-if backtest of a candidate threshold or rule tier, which an admin can save as the
//! gate's policy draft (then published through the normal maker-checker flow).
//!
//! The numbers come from [`crate::domain::stats`] and [`crate::domain::backtest`]; this module
//! loads the history (`queries`), checks the URL (`params`), draws (`charts`) and serves.

pub mod charts;
#[cfg(feature = "ssr")]
pub mod csv;
#[cfg(feature = "ssr")]
pub mod handlers;
pub mod page;
pub mod params;
#[cfg(feature = "ssr")]
pub mod queries;
pub mod tune;

use crate::accounts::Role;
use crate::domain::backtest::BacktestReport;
use crate::domain::stats::{GroupStats, Outcome, OutcomeCounts, TrendPoint, Window};
use crate::domain::tier::Tier;
use crate::error::AppError;
use leptos::prelude::*;
use params::{StatsQuery, TuneQuery};
use serde::{Deserialize, Serialize};

/// Who may read statistics and backtests: the people who tune and audit policy. Saving a
/// candidate as a draft is for admins only.
pub const READERS: [Role; 3] = [Role::Admin, Role::Auditor, Role::SeniorReviewer];

/// One row of the statistics table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupRow {
    /// What people read: a gate's or rule's key, an agent's name, a reviewer's display name.
    pub label: String,
    /// The gate to tune from this row, if the row is a gate or one of its rules.
    pub gate: Option<String>,
    pub stats: GroupStats,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlarmRow {
    /// "Rubber stamp" or "Rising corrections".
    pub kind: String,
    pub key: String,
    pub detail: String,
    pub suggestion: String,
    /// The tuning screen, with the suggested change filled in where there is one.
    pub tune_href: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatsData {
    pub query: StatsQuery,
    pub window: Window,
    pub group_name: String,
    pub bucket_ms: i64,
    pub requests: u64,
    pub groups: Vec<GroupRow>,
    pub alarms: Vec<AlarmRow>,
    pub trend: Vec<TrendPoint>,
    /// (key, name) of every gate, for the filter.
    pub gates: Vec<(String, String)>,
}

/// A rule of the live gate, as the tuning screen lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleLine {
    pub key: String,
    pub conditions: String,
    pub tier: Tier,
}

/// The threshold the distribution chart is about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Shown {
    pub id: String,
    pub rule_key: String,
    pub attribute: String,
    /// The live threshold as people read it, and as the threshold box takes it.
    pub live_text: String,
    pub live_input: String,
}

/// One bar of the distribution: a range of the attribute and the outcomes in it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistogramRow {
    /// Short label for the chart's x axis.
    pub tick: String,
    /// The range in words, for the table.
    pub range: String,
    pub counts: OutcomeCounts,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistogramView {
    pub rows: Vec<HistogramRow>,
    /// Requests that did not state the attribute (policy treats the condition as holding).
    pub missing: OutcomeCounts,
    /// Marker positions in bars from the left (see [`charts::Marker`]).
    pub live_at: Option<f64>,
    pub candidate_at: Option<f64>,
    pub candidate_text: Option<String>,
}

/// A request the candidate would have let through that a human corrected.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MissRow {
    pub id: String,
    pub title: String,
    pub created_at: i64,
    pub live_tier: Tier,
    pub candidate_tier: Tier,
    pub outcome: Outcome,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CandidateView {
    pub description: String,
    pub report: BacktestReport,
    pub misses: Vec<MissRow>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TuneData {
    pub key: String,
    pub name: String,
    pub live_version: i64,
    pub query: TuneQuery,
    pub window: Window,
    pub action_types: Vec<String>,
    pub base_tier: Tier,
    pub rules: Vec<RuleLine>,
    /// (id, label) of every numeric threshold of the gate.
    pub tunables: Vec<(String, String)>,
    pub shown: Option<Shown>,
    pub histogram: Option<HistogramView>,
    /// Requests in the window whose action type the gate matches: what the backtest re-gates.
    pub considered: u64,
    /// Of those, the ones this gate decided (the gate's own statistics).
    pub stats: Option<GroupStats>,
    pub candidate: Option<CandidateView>,
    /// Why the candidate in the URL cannot be backtested; nothing else on the page depends on it.
    pub candidate_error: Option<AppError>,
    pub can_save: bool,
    /// The gate's current draft version, which saving would replace.
    pub draft_version: Option<i64>,
    pub review_seconds: u32,
}

#[server]
pub async fn load_stats(query: StatsQuery) -> Result<StatsData, AppError> {
    crate::accounts::session::require_any_role(&READERS)?;
    let state = crate::server::state()?;
    queries::stats(&state.db, &query, crate::server::now_ms()).await
}

#[server]
pub async fn load_tune(key: String, query: TuneQuery) -> Result<TuneData, AppError> {
    let user = crate::accounts::session::require_any_role(&READERS)?;
    let state = crate::server::state()?;
    queries::tune(
        &state.db,
        &key,
        &query,
        user.has(Role::Admin),
        crate::server::now_ms(),
    )
    .await
}

/// "95.2%", or a dash when there is nothing to divide by.
pub fn pct(rate: Option<f64>) -> String {
    match rate {
        Some(r) => format!("{:.1}%", r * 100.0),
        None => "—".into(),
    }
}

/// A decision time as people read it ("3h"), or a dash.
pub fn duration(ms: Option<i64>) -> String {
    ms.map(crate::domain::time::compact_duration)
        .unwrap_or_else(|| "—".into())
}

/// The x label of a trend bucket: the day it starts ("11-21"), with the year for long windows.
pub fn bucket_label(start_ms: i64, bucket_ms: i64) -> String {
    let iso = crate::domain::time::iso_utc(start_ms);
    if bucket_ms >= 30 * params::DAY {
        iso[..7].to_owned()
    } else {
        iso[5..10].to_owned()
    }
}

pub fn window_text(w: &Window) -> String {
    use crate::domain::time::iso_utc;
    format!(
        "{} to {} (UTC)",
        &iso_utc(w.from_ms)[..10],
        &iso_utc(w.to_ms - 1)[..10]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_formatters() {
        assert_eq!(pct(Some(0.9523)), "95.2%");
        assert_eq!(pct(None), "—");
        assert_eq!(duration(Some(3 * 3_600_000)), "3h");
        assert_eq!(duration(None), "—");
        let day = params::DAY;
        let nov21 = 1_795_219_200_000;
        assert_eq!(bucket_label(nov21, day), "11-21");
        assert_eq!(bucket_label(nov21, 30 * day), "2026-11");
        let w = Window {
            from_ms: nov21 - 2 * day,
            to_ms: nov21 + day,
        };
        assert_eq!(window_text(&w), "2026-11-19 to 2026-11-21 (UTC)");
    }
}
