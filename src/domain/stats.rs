//! Gate statistics: what happened to past action requests, grouped by gate, rule, agent, action
//! type or reviewer, so an admin can see which gates earn their keep.
//!
//! Everything here is a pure function over [`HistoricRequest`] records that the server loads for
//! a window. One pass over the records, no allocation per record (group keys are only allocated
//! when a group is first seen), so a stats page over a million requests stays fast.
//!
//! Definitions, used consistently here and in the backtest:
//! - A **human decision** is an approval unchanged, an approval with edit, or a rejection.
//!   Expiry and withdrawal are not judgements about the action, so they count in volume only.
//! - The **approval rate** is approved-unchanged over human decisions. It is the rate of the
//!   field's "60% -> 85% -> 95%" journey: it rises as the agent earns trust, and a rate near 100%
//!   means reviewers are no longer adding anything (the rubber-stamp alarm).
//! - The **correction rate** is (edited + rejected) over human decisions: 1 - approval rate.
//! - Time to decision is `decided_at - created_at` of human decisions; percentiles use the
//!   nearest-rank method (see [`percentile`]).
//!
//! The record type lives in `stats/history.rs`, the alarms in `stats/alarm.rs`; both are
//! re-exported here.

mod alarm;
mod history;

pub use alarm::{alarms, Alarm, AlarmSettings};
#[cfg(test)]
pub(crate) use history::tests::req;
pub use history::{Hindsight, HindsightCounts, HistoricRequest, Outcome, OutcomeCounts};

use crate::domain::tier::Tier;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// A half-open time range `[from_ms, to_ms)` over `created_at_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    pub from_ms: i64,
    pub to_ms: i64,
}

impl Window {
    pub fn contains(&self, ms: i64) -> bool {
        self.from_ms <= ms && ms < self.to_ms
    }

    /// 0 for the first half of the window, 1 for the second.
    fn half(&self, ms: i64) -> usize {
        // In i128 so an all-time window (i64::MIN..i64::MAX) does not overflow.
        let mid = (i128::from(self.from_ms) + i128::from(self.to_ms)).div_euclid(2) as i64;
        usize::from(ms >= mid)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupBy {
    Gate,
    /// Key `gate/rule`. A request counts once for every rule that matched, so rule groups can
    /// sum to more than the requests; one decided by the gate's base tier counts under
    /// `gate/(base)` (parentheses cannot appear in a rule key). Requests no gate matched count
    /// under `(no gate)`, here and for [`GroupBy::Gate`].
    Rule,
    Agent,
    ActionType,
    /// Only requests a human decided, expired on or withdrew from have a reviewer.
    Reviewer,
}

pub const NO_GATE: &str = "(no gate)";
pub const BASE_TIER: &str = "(base)";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewerLoad {
    pub reviewer: String,
    pub decisions: u64,
}

/// Everything the statistics page shows for one gate (or rule, agent, action type, reviewer).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct GroupStats {
    pub key: String,
    /// Requests per tier as gated, indexed like [`Tier::ALL`].
    pub by_tier: [u64; 5],
    pub outcomes: OutcomeCounts,
    /// Outcomes in the first and second half of the window, for trend alarms.
    pub halves: [OutcomeCounts; 2],
    pub median_decision_ms: Option<i64>,
    pub p90_decision_ms: Option<i64>,
    pub hindsight: HindsightCounts,
    /// Human decisions per reviewer, busiest first.
    pub reviewers: Vec<ReviewerLoad>,
}

impl GroupStats {
    pub fn total(&self) -> u64 {
        self.by_tier.iter().sum()
    }

    pub fn tier(&self, t: Tier) -> u64 {
        self.by_tier[t as usize]
    }
}

#[derive(Default)]
struct Accumulator {
    stats: GroupStats,
    decision_ms: Vec<i64>,
    reviewers: HashMap<String, u64>,
}

impl Accumulator {
    fn add(&mut self, r: &HistoricRequest, half: usize) {
        self.stats.by_tier[r.tier as usize] += 1;
        self.stats.outcomes.add(r.outcome);
        self.stats.halves[half].add(r.outcome);
        self.stats.hindsight.add(r);
        if let Some(ms) = r.decision_ms() {
            self.decision_ms.push(ms);
        }
        if let (Some(who), true) = (&r.reviewer_id, r.outcome.is_human_decision()) {
            bump(&mut self.reviewers, who);
        }
    }

    fn finish(mut self, key: String) -> GroupStats {
        let mut s = self.stats;
        s.key = key;
        s.median_decision_ms = percentile(&mut self.decision_ms, 50);
        s.p90_decision_ms = percentile(&mut self.decision_ms, 90);
        s.reviewers = self
            .reviewers
            .into_iter()
            .map(|(reviewer, decisions)| ReviewerLoad {
                reviewer,
                decisions,
            })
            .collect();
        s.reviewers.sort_by(|a, b| {
            b.decisions
                .cmp(&a.decisions)
                .then_with(|| a.reviewer.cmp(&b.reviewer))
        });
        s
    }
}

/// Looks up by `&str` first, so a key is allocated once per group, not once per record.
fn entry<'m, V: Default>(map: &'m mut HashMap<String, V>, key: &str) -> &'m mut V {
    if !map.contains_key(key) {
        map.insert(key.to_owned(), V::default());
    }
    map.get_mut(key).expect("inserted above")
}

fn bump(map: &mut HashMap<String, u64>, key: &str) {
    *entry(map, key) += 1;
}

/// A streaming summary: feed records with [`Summary::add`] (in any order, in chunks if they come
/// from a cursor), then [`Summary::finish`].
pub struct Summary {
    group_by: GroupBy,
    window: Window,
    groups: HashMap<String, Accumulator>,
    scratch: String,
}

impl Summary {
    pub fn new(group_by: GroupBy, window: Window) -> Summary {
        Summary {
            group_by,
            window,
            groups: HashMap::new(),
            scratch: String::new(),
        }
    }

    /// Counts one record; records created outside the window are ignored.
    pub fn add(&mut self, r: &HistoricRequest) {
        if !self.window.contains(r.created_at_ms) {
            return;
        }
        let half = self.window.half(r.created_at_ms);
        let gate = r.gate_key.as_deref().unwrap_or(NO_GATE);
        let key = match self.group_by {
            GroupBy::Gate => gate,
            GroupBy::Agent => &r.agent,
            GroupBy::ActionType => &r.action_type,
            GroupBy::Reviewer => match &r.reviewer_id {
                Some(who) => who,
                None => return,
            },
            GroupBy::Rule => {
                let (groups, scratch) = (&mut self.groups, &mut self.scratch);
                let mut add = |rule: &str| {
                    scratch.clear();
                    scratch.push_str(gate);
                    scratch.push('/');
                    scratch.push_str(rule);
                    entry(groups, scratch).add(r, half);
                };
                if r.matched_rules.is_empty() {
                    add(BASE_TIER);
                }
                for rule in &r.matched_rules {
                    add(rule);
                }
                return;
            }
        };
        entry(&mut self.groups, key).add(r, half);
    }

    /// The groups, busiest first (ties by key, so the order is stable).
    pub fn finish(self) -> Vec<GroupStats> {
        let mut out: Vec<GroupStats> = self
            .groups
            .into_iter()
            .map(|(key, acc)| acc.finish(key))
            .collect();
        out.sort_by(|a, b| b.total().cmp(&a.total()).then_with(|| a.key.cmp(&b.key)));
        out
    }
}

/// Statistics per group over the records created inside `window`.
pub fn summarise<'a>(
    records: impl IntoIterator<Item = &'a HistoricRequest>,
    group_by: GroupBy,
    window: Window,
) -> Vec<GroupStats> {
    let mut summary = Summary::new(group_by, window);
    for r in records {
        summary.add(r);
    }
    summary.finish()
}

/// The nearest-rank percentile: the smallest value with at least `p`% of the values at or below
/// it, i.e. the value at rank `ceil(p/100 * n)` (at least 1) in sorted order. It is always one
/// of the observed values (no interpolation), so a "median decision time" is a real request's.
/// The median of an even count is the lower middle value. O(n) via selection; reorders `values`.
pub fn percentile(values: &mut [i64], p: u8) -> Option<i64> {
    if values.is_empty() {
        return None;
    }
    let n = values.len();
    let rank = (usize::from(p.min(100)) * n).div_ceil(100).max(1);
    let (_, v, _) = values.select_nth_unstable(rank - 1);
    Some(*v)
}

/// One bucket of a trend chart.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TrendPoint {
    pub start_ms: i64,
    pub by_tier: [u64; 5],
    pub outcomes: OutcomeCounts,
    pub hindsight: HindsightCounts,
}

/// More buckets than any chart can draw (a daily chart over ten years is 3,653).
pub const MAX_BUCKETS: usize = 10_000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StatsError {
    #[error("bucket width must be positive")]
    BucketWidth,
    #[error("{0} buckets is more than {MAX_BUCKETS}; choose a wider bucket or a shorter window")]
    TooManyBuckets(u64),
}

/// Volume and outcomes per time bucket (`bucket_ms` wide, the first starting at the window's
/// start, so a window from midnight UTC gives calendar days), every bucket present even if empty
/// so a chart's x axis is continuous. Filter `records` to a gate first for a gate's trend.
pub fn trend<'a>(
    records: impl IntoIterator<Item = &'a HistoricRequest>,
    window: Window,
    bucket_ms: i64,
) -> Result<Vec<TrendPoint>, StatsError> {
    let mut t = Trend::new(window, bucket_ms)?;
    for r in records {
        t.add(r);
    }
    Ok(t.finish())
}

/// [`trend`] fed one record at a time, for histories streamed from the database.
pub struct Trend {
    window: Window,
    bucket_ms: i64,
    points: Vec<TrendPoint>,
}

impl Trend {
    pub fn new(window: Window, bucket_ms: i64) -> Result<Trend, StatsError> {
        if bucket_ms <= 0 {
            return Err(StatsError::BucketWidth);
        }
        let span = window.to_ms.saturating_sub(window.from_ms).max(0) as u64;
        let buckets = span.div_ceil(bucket_ms as u64);
        if buckets > MAX_BUCKETS as u64 {
            return Err(StatsError::TooManyBuckets(buckets));
        }
        let points = (0..buckets as i64)
            .map(|i| TrendPoint {
                start_ms: window.from_ms + i * bucket_ms,
                ..TrendPoint::default()
            })
            .collect();
        Ok(Trend {
            window,
            bucket_ms,
            points,
        })
    }

    /// Counts one record; records created outside the window are ignored.
    pub fn add(&mut self, r: &HistoricRequest) {
        if !self.window.contains(r.created_at_ms) {
            return;
        }
        let p =
            &mut self.points[((r.created_at_ms - self.window.from_ms) / self.bucket_ms) as usize];
        p.by_tier[r.tier as usize] += 1;
        p.outcomes.add(r.outcome);
        p.hindsight.add(r);
    }

    pub fn finish(self) -> Vec<TrendPoint> {
        self.points
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;
    const DAY: i64 = 86_400_000;

    fn decided(mut r: HistoricRequest, created: i64, took: i64, who: &str) -> HistoricRequest {
        r.created_at_ms = created;
        r.decided_at_ms = Some(created + took);
        r.reviewer_id = Some(who.to_owned());
        r
    }

    const ALL_TIME: Window = Window {
        from_ms: i64::MIN,
        to_ms: i64::MAX,
    };

    fn by_key<'s>(stats: &'s [GroupStats], key: &str) -> &'s GroupStats {
        stats.iter().find(|s| s.key == key).expect(key)
    }

    #[test]
    fn counts_tiers_and_outcomes_per_gate() {
        use Outcome::*;
        let mut h = Vec::new();
        for i in 0..3 {
            h.push(req(&format!("a{i}"), "refunds", Tier::Auto, AutoApproved));
        }
        h.push(req("l", "refunds", Tier::Log, AutoApproved));
        for (i, o) in [
            ApprovedUnchanged,
            ApprovedUnchanged,
            ApprovedWithEdit,
            Rejected,
        ]
        .into_iter()
        .enumerate()
        {
            h.push(req(&format!("r{i}"), "refunds", Tier::Review, o));
        }
        h.push(req("x", "refunds", Tier::Review, Expired));
        h.push(req("w", "refunds", Tier::Dual, Withdrawn));
        h.push(req("e1", "emails", Tier::Review, ApprovedUnchanged));
        h.push(req("e2", "emails", Tier::Block, Blocked));
        h.push(req("n", "", Tier::Review, Pending));

        let stats = summarise(&h, GroupBy::Gate, ALL_TIME);
        let keys: Vec<&str> = stats.iter().map(|s| s.key.as_str()).collect();
        assert_eq!(keys, vec!["refunds", "emails", NO_GATE], "busiest first");
        let refunds = &stats[0];
        assert_eq!(refunds.total(), 10);
        assert_eq!(refunds.by_tier, [3, 1, 5, 1, 0]);
        assert_eq!(refunds.tier(Tier::Review), 5);
        let o = refunds.outcomes;
        assert_eq!(
            (o.auto_approved, o.approved_unchanged, o.approved_with_edit),
            (4, 2, 1)
        );
        assert_eq!((o.rejected, o.expired, o.withdrawn), (1, 1, 1));
        assert_eq!(o.total(), 10);
        assert_eq!(
            o.human_decisions(),
            4,
            "expiry and withdrawal are no judgement"
        );
        assert_eq!(o.approval_rate(), Some(0.5));
        assert_eq!(o.correction_rate(), Some(0.5));
        assert_eq!(by_key(&stats, "emails").outcomes.blocked, 1);
        assert_eq!(by_key(&stats, NO_GATE).outcomes.pending, 1);
        assert_eq!(by_key(&stats, NO_GATE).outcomes.approval_rate(), None);
    }

    #[test]
    fn percentile_is_nearest_rank() {
        let data = [15, 20, 35, 40, 50];
        for (p, want) in [(0, 15), (5, 15), (30, 20), (40, 20), (50, 35), (100, 50)] {
            assert_eq!(percentile(&mut data.clone(), p), Some(want), "p{p}");
        }
        let mut ten: Vec<i64> = (1..=10).rev().collect();
        assert_eq!(
            percentile(&mut ten, 50),
            Some(5),
            "lower middle of an even count"
        );
        assert_eq!(percentile(&mut ten, 90), Some(9));
        assert_eq!(percentile(&mut ten, 91), Some(10));
        assert_eq!(percentile(&mut [], 50), None);
        assert_eq!(percentile(&mut [7], 90), Some(7));
    }

    #[test]
    fn decision_times_count_human_decisions_only() {
        let mut h: Vec<HistoricRequest> = (1..=10)
            .map(|i| {
                let o = if i % 3 == 0 {
                    Outcome::Rejected
                } else {
                    Outcome::ApprovedUnchanged
                };
                decided(req("r", "g", Tier::Review, o), i * DAY, i * 10 * MIN, "ann")
            })
            .collect();
        // Neither an instant auto approval nor a slow expiry is a reviewer's decision time.
        h.push(decided(
            req("a", "g", Tier::Auto, Outcome::AutoApproved),
            0,
            0,
            "x",
        ));
        h.push(decided(
            req("x", "g", Tier::Review, Outcome::Expired),
            0,
            99 * DAY,
            "x",
        ));
        let mut skewed = decided(
            req("s", "g", Tier::Review, Outcome::ApprovedWithEdit),
            DAY,
            0,
            "x",
        );
        skewed.decided_at_ms = Some(DAY - 1);
        h.push(skewed);
        let s = &summarise(&h, GroupBy::Gate, ALL_TIME)[0];
        assert_eq!(s.median_decision_ms, Some(50 * MIN));
        assert_eq!(s.p90_decision_ms, Some(90 * MIN));
        assert_eq!(
            s.reviewers,
            vec![
                ReviewerLoad {
                    reviewer: "ann".into(),
                    decisions: 10
                },
                ReviewerLoad {
                    reviewer: "x".into(),
                    decisions: 1
                }
            ]
        );
    }

    #[test]
    fn the_window_filters_and_splits_in_halves() {
        let w = Window {
            from_ms: 10 * DAY,
            to_ms: 20 * DAY,
        };
        let at = |day: i64, o| {
            let mut r = req("r", "g", Tier::Review, o);
            r.created_at_ms = day * DAY;
            r
        };
        let h = [
            at(9, Outcome::Rejected),
            at(10, Outcome::Rejected),
            at(14, Outcome::ApprovedUnchanged),
            at(15, Outcome::ApprovedWithEdit),
            at(19, Outcome::ApprovedUnchanged),
            at(20, Outcome::Rejected),
        ];
        let s = &summarise(&h, GroupBy::Gate, w)[0];
        assert_eq!(s.total(), 4, "from inclusive, to exclusive");
        assert_eq!(s.halves[0].rejected + s.halves[0].approved_unchanged, 2);
        assert_eq!(
            s.halves[1].approved_with_edit, 1,
            "the midpoint is second half"
        );
        assert_eq!(s.halves[1].total(), 2);
    }

    #[test]
    fn other_groupings_rule_agent_action_type_reviewer() {
        let mut a = req("a", "refunds", Tier::Review, Outcome::Rejected);
        a.matched_rules = vec!["over-100".into(), "over-1000".into()];
        a.reviewer_id = Some("bob".into());
        let mut b = req("b", "refunds", Tier::Log, Outcome::AutoApproved);
        b.matched_rules = vec!["over-100".into()];
        b.agent = "other-bot".into();
        let c = req("c", "refunds", Tier::Auto, Outcome::AutoApproved);
        let mut d = req("d", "", Tier::Review, Outcome::ApprovedUnchanged);
        d.action_type = "contract.amend".into();
        d.reviewer_id = Some("bob".into());
        let h = [a, b, c, d];

        let rules = summarise(&h, GroupBy::Rule, ALL_TIME);
        let keys: Vec<(&str, u64)> = rules.iter().map(|s| (s.key.as_str(), s.total())).collect();
        assert_eq!(
            keys,
            vec![
                ("refunds/over-100", 2),
                ("(no gate)/(base)", 1),
                ("refunds/(base)", 1),
                ("refunds/over-1000", 1),
            ]
        );
        let agents = summarise(&h, GroupBy::Agent, ALL_TIME);
        assert_eq!(by_key(&agents, "refund-bot").total(), 3);
        assert_eq!(by_key(&agents, "other-bot").total(), 1);
        let types = summarise(&h, GroupBy::ActionType, ALL_TIME);
        assert_eq!(by_key(&types, "contract.amend").total(), 1);
        let reviewers = summarise(&h, GroupBy::Reviewer, ALL_TIME);
        assert_eq!(reviewers.len(), 1, "no reviewer, no group");
        assert_eq!(reviewers[0].key, "bob");
        assert_eq!(reviewers[0].outcomes.human_decisions(), 2);
        assert_eq!(reviewers[0].outcomes.approval_rate(), Some(0.5));
    }

    #[test]
    fn trend_has_every_bucket_from_the_window_start() {
        let w = Window {
            from_ms: 0,
            to_ms: 3 * DAY + 1,
        };
        let at = |ms: i64, tier, o| {
            let mut r = req("r", "g", tier, o);
            r.created_at_ms = ms;
            r
        };
        let h = [
            at(0, Tier::Auto, Outcome::AutoApproved),
            at(DAY - 1, Tier::Review, Outcome::Rejected),
            at(2 * DAY, Tier::Review, Outcome::ApprovedUnchanged),
            at(3 * DAY, Tier::Log, Outcome::AutoApproved),
            at(-1, Tier::Log, Outcome::AutoApproved),
        ];
        let t = trend(&h, w, DAY).unwrap();
        let starts: Vec<i64> = t.iter().map(|p| p.start_ms).collect();
        assert_eq!(starts, vec![0, DAY, 2 * DAY, 3 * DAY]);
        assert_eq!(t[0].by_tier, [1, 0, 1, 0, 0]);
        assert_eq!(t[0].outcomes.rejected, 1);
        assert_eq!(
            t[1],
            TrendPoint {
                start_ms: DAY,
                ..TrendPoint::default()
            }
        );
        assert_eq!(t[2].outcomes.approval_rate(), Some(1.0));
        assert_eq!(t[3].by_tier[Tier::Log as usize], 1, "partial last bucket");
        assert_eq!(trend(&h, w, 0), Err(StatsError::BucketWidth));
        assert_eq!(
            trend(&h, w, 1),
            Err(StatsError::TooManyBuckets(3 * DAY as u64 + 1))
        );
        let empty = Window {
            from_ms: 5,
            to_ms: 5,
        };
        assert_eq!(trend(&h, empty, DAY), Ok(vec![]));
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn percentile_is_the_smallest_value_covering_p_percent(
                mut values in prop::collection::vec(-1000i64..1000, 1..200), p in 0u8..=100
            ) {
                let mut sorted = values.clone();
                sorted.sort_unstable();
                // The definition: the smallest value with at least p% of the values at or below it.
                let n = sorted.len();
                let want = sorted
                    .iter()
                    .copied()
                    .find(|v| sorted.iter().filter(|x| *x <= v).count() * 100 >= usize::from(p) * n)
                    .unwrap();
                prop_assert_eq!(percentile(&mut values, p), Some(want));
            }

            #[test]
            fn gate_groups_partition_the_window(
                gates in prop::collection::vec((0usize..3, -5i64..15), 0..100)
            ) {
                let h: Vec<HistoricRequest> = gates.iter().map(|(g, day)| {
                    let mut r = req("r", ["a", "b", ""][*g], Tier::Review, Outcome::Rejected);
                    r.created_at_ms = day * DAY;
                    r
                }).collect();
                let w = Window { from_ms: 0, to_ms: 10 * DAY };
                let inside = h.iter().filter(|r| w.contains(r.created_at_ms)).count() as u64;
                let stats = summarise(&h, GroupBy::Gate, w);
                prop_assert_eq!(stats.iter().map(GroupStats::total).sum::<u64>(), inside);
                let t = trend(&h, w, DAY).unwrap();
                prop_assert_eq!(t.iter().map(|p| p.outcomes.total()).sum::<u64>(), inside);
            }
        }
    }
}
