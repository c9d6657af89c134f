//! What-if backtest for threshold tuning: re-gate past requests with a candidate policy and show
//! what would have changed, before an admin saves it.
//!
//! The backtest calls the real [`Policy::evaluate`] for every request, once with the live policy
//! and once with the candidate (see [`candidate`], which validates it with
//! [`compile`](crate::domain::policy::compile)); it never approximates a rule with a formula of
//! its own, so what it shows is what the gate would do.
//!
//! Definitions:
//! - The **baseline** is the live policy's tier for each request, not the tier stored with it:
//!   requests gated by older gate versions would otherwise show up as "changed" by a candidate
//!   identical to the live policy. [`BacktestReport::drifted`] counts those that differ.
//! - **Released**: the live policy holds the request (review, dual or block) and the candidate
//!   lets it execute (auto or log). A **miss** is a released request that a human rejected or
//!   edited: an action the candidate would have let through as proposed.
//! - **Reviewer hours** come from a per-review estimate ([`BacktestSettings::review_seconds`],
//!   default two minutes), times one review per `review` request and two per `dual`. The stored
//!   time to decision is not used: it is mostly time in the queue, not time spent reviewing.
//! - The **approval rate** is the one of [`crate::domain::stats`]: approved unchanged over human
//!   decisions, here over the requests the policy sends to a human. A request that executed
//!   without a human but would now reach one counts as approved unchanged unless after-the-fact
//!   review flagged it ("should not have happened" counts as a correction); those are counted in
//!   `assumed_*`. Blocked, expired, withdrawn and pending requests do not count. Raising a
//!   threshold on a rubber-stamped gate therefore lowers the rate: humans see fewer, harder cases.
//!
//! Building a candidate lives in `backtest/candidate.rs`, histograms of the gated attribute in
//! `backtest/distribution.rs`; both are re-exported here.

mod candidate;
mod distribution;

pub use candidate::{candidate, with_rule_tier, with_threshold, without_rule};
pub use candidate::{ThresholdChange, TuneError};
pub use distribution::{
    distribution, even_edges, histogram, histogram_of_values, tunable_thresholds,
};
pub use distribution::{Attribute, Histogram, Tunable};

use crate::domain::policy::Policy;
use crate::domain::stats::{Hindsight, HistoricRequest, Outcome};
use crate::domain::tier::Tier;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BacktestSettings {
    /// Reviewer time one review takes. Two minutes: long enough to read a payload, its diff and
    /// the agent's reasoning, which is what a gate asks of a reviewer.
    pub review_seconds: u32,
    /// How many misses to list by id (the first ones in the order given); all are counted.
    pub max_misses: usize,
}

impl Default for BacktestSettings {
    fn default() -> Self {
        BacktestSettings {
            review_seconds: 120,
            max_misses: 100,
        }
    }
}

/// A request a human corrected that the candidate would have let through.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Miss {
    pub id: String,
    pub live_tier: Tier,
    pub candidate_tier: Tier,
    pub outcome: Outcome,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct BacktestReport {
    pub evaluated: u64,
    /// Requests whose stored tier differs from the live policy's (gated by an older version).
    pub drifted: u64,
    pub changed_tier: u64,
    /// The candidate's tier is less strict than the live policy's.
    pub loosened: u64,
    /// The candidate's tier is stricter.
    pub tightened: u64,
    /// Held by the live policy, executed without a human by the candidate.
    pub released: u64,
    /// Executed without a human by the live policy, held by the candidate.
    pub newly_held: u64,
    pub misses_total: u64,
    /// The first [`BacktestSettings::max_misses`] misses.
    pub misses: Vec<Miss>,
    /// Reviews (one per `review`, two per `dual` request) under each policy.
    pub reviews_before: u64,
    pub reviews_after: u64,
    /// Negative when the candidate asks for more reviews.
    pub reviewer_hours_saved: f64,
    /// Requests that execute without a human (auto or log) under each policy.
    pub unattended_before: u64,
    pub unattended_after: u64,
    pub approval_rate_before: Option<f64>,
    pub approval_rate_after: Option<f64>,
    /// Requests counted in the approval rate without a human decision on record.
    pub assumed_before: u64,
    pub assumed_after: u64,
}

fn unattended(t: Tier) -> bool {
    matches!(t, Tier::Auto | Tier::Log)
}

fn reviews(t: Tier) -> u64 {
    match t {
        Tier::Review => 1,
        Tier::Dual => 2,
        _ => 0,
    }
}

/// Approved-unchanged and human-decision tallies, plus how many of them were assumed.
#[derive(Default)]
struct Rate {
    approved: u64,
    decided: u64,
    assumed: u64,
}

impl Rate {
    /// Counts `r` as if a policy had gated it at `tier`.
    fn add(&mut self, r: &HistoricRequest, tier: Tier) {
        if !tier.needs_human() {
            return;
        }
        let approved = match r.outcome {
            Outcome::ApprovedUnchanged => true,
            Outcome::ApprovedWithEdit | Outcome::Rejected => false,
            Outcome::AutoApproved => {
                self.assumed += 1;
                r.hindsight != Hindsight::ShouldNotHaveHappened
            }
            Outcome::Blocked | Outcome::Expired | Outcome::Withdrawn | Outcome::Pending => return,
        };
        self.decided += 1;
        self.approved += u64::from(approved);
    }

    fn rate(&self) -> Option<f64> {
        (self.decided > 0).then(|| self.approved as f64 / self.decided as f64)
    }
}

/// Re-gates `records` with `live` and `candidate` and compares. One pass; the only allocations
/// besides those inside `Policy::evaluate` are the listed misses.
pub fn run<'a>(
    live: &Policy,
    candidate: &Policy,
    records: impl IntoIterator<Item = &'a HistoricRequest>,
    settings: &BacktestSettings,
) -> BacktestReport {
    let mut backtest = Backtest::new(live, candidate, *settings);
    for r in records {
        backtest.add(r);
    }
    backtest.finish()
}

/// [`run`] fed one record at a time, so a history streamed from the database never has to be
/// held in memory at once.
pub struct Backtest<'p> {
    live: &'p Policy,
    candidate: &'p Policy,
    settings: BacktestSettings,
    report: BacktestReport,
    before: Rate,
    after: Rate,
}

impl<'p> Backtest<'p> {
    pub fn new(live: &'p Policy, candidate: &'p Policy, settings: BacktestSettings) -> Self {
        Backtest {
            live,
            candidate,
            settings,
            report: BacktestReport::default(),
            before: Rate::default(),
            after: Rate::default(),
        }
    }

    pub fn add(&mut self, r: &HistoricRequest) {
        let report = &mut self.report;
        let facts = r.facts();
        let old = self.live.evaluate(&facts).tier;
        let new = self.candidate.evaluate(&facts).tier;
        report.evaluated += 1;
        report.drifted += u64::from(old != r.tier);
        report.reviews_before += reviews(old);
        report.reviews_after += reviews(new);
        report.unattended_before += u64::from(unattended(old));
        report.unattended_after += u64::from(unattended(new));
        self.before.add(r, old);
        self.after.add(r, new);
        if old == new {
            return;
        }
        report.changed_tier += 1;
        if new < old {
            report.loosened += 1;
        } else {
            report.tightened += 1;
        }
        if unattended(old) && !unattended(new) {
            report.newly_held += 1;
        }
        if !unattended(old) && unattended(new) {
            report.released += 1;
            if r.outcome.is_correction() {
                report.misses_total += 1;
                if report.misses.len() < self.settings.max_misses {
                    report.misses.push(Miss {
                        id: r.id.clone(),
                        live_tier: old,
                        candidate_tier: new,
                        outcome: r.outcome,
                    });
                }
            }
        }
    }

    pub fn finish(self) -> BacktestReport {
        let mut report = self.report;
        let saved = report.reviews_before as f64 - report.reviews_after as f64;
        report.reviewer_hours_saved = saved * f64::from(self.settings.review_seconds) / 3600.0;
        report.approval_rate_before = self.before.rate();
        report.approval_rate_after = self.after.rate();
        report.assumed_before = self.before.assumed;
        report.assumed_after = self.after.assumed;
        report
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::policy::{compile, Condition, GateDefinition};
    use crate::domain::stats::req;

    /// Refunds: auto; over 100 EUR log; over `review_above` EUR review.
    pub(super) fn refunds(review_above: &str) -> GateDefinition {
        serde_json::from_value(serde_json::json!({
            "key": "refunds", "name": "Refunds", "action_types": ["payment.refund"],
            "base_tier": "auto",
            "rules": [
                {"key": "over-100", "when": [{"attribute": "amount_above", "thresholds": [{"amount": "100", "currency": "EUR"}]}], "tier": "log"},
                {"key": "large", "when": [{"attribute": "amount_above", "thresholds": [{"amount": review_above, "currency": "EUR"}]}], "tier": "review"},
                {"key": "unsure", "when": [{"attribute": "confidence_below", "value": 0.3}, {"attribute": "record_count_above", "count": 10}], "tier": "dual"}
            ]
        }))
        .unwrap()
    }

    pub(super) fn live() -> Policy {
        compile(vec![(refunds("1000"), 3)]).unwrap()
    }

    pub(super) fn refund(id: &str, eur: i64, tier: Tier, outcome: Outcome) -> HistoricRequest {
        let mut r = req(id, "refunds", tier, outcome);
        r.amount_minor = Some(eur * 100);
        r.currency = Some("EUR".into());
        // Stated, so the `unsure` rule does not hold (an unstated attribute would fail closed).
        r.confidence = Some(0.9);
        r.record_count = Some(1);
        r
    }

    pub(super) fn history() -> Vec<HistoricRequest> {
        use Outcome::*;
        let mut flagged = refund("l-150", 150, Tier::Log, AutoApproved);
        flagged.hindsight = Hindsight::ShouldNotHaveHappened;
        vec![
            refund("a-50", 50, Tier::Auto, AutoApproved),
            flagged,
            refund("ok-1200-0", 1200, Tier::Review, ApprovedUnchanged),
            refund("ok-1200-1", 1200, Tier::Review, ApprovedUnchanged),
            refund("ok-1200-2", 1200, Tier::Review, ApprovedUnchanged),
            refund("x-1300", 1300, Tier::Review, Expired),
            refund("r-1500", 1500, Tier::Review, Rejected),
            refund("e-1800", 1800, Tier::Review, ApprovedWithEdit),
            refund("ok-2500", 2500, Tier::Review, ApprovedUnchanged),
            refund("r-6000", 6000, Tier::Review, Rejected),
        ]
    }

    pub(super) fn with(gate: GateDefinition) -> Policy {
        candidate(&live(), gate).unwrap()
    }

    #[test]
    fn a_candidate_identical_to_the_live_policy_changes_nothing() {
        let mut h = history();
        // Gated by an older version at review; the live policy says auto.
        h.push(refund("old", 20, Tier::Review, Outcome::ApprovedUnchanged));
        let r = run(
            &live(),
            &with(refunds("1000")),
            &h,
            &BacktestSettings::default(),
        );
        assert_eq!(r.evaluated, 11);
        assert_eq!(r.drifted, 1);
        assert_eq!((r.changed_tier, r.loosened, r.tightened), (0, 0, 0));
        assert_eq!((r.released, r.newly_held, r.misses_total), (0, 0, 0));
        assert!(r.misses.is_empty());
        assert_eq!(r.reviews_before, r.reviews_after);
        assert_eq!(r.reviewer_hours_saved, 0.0);
        assert_eq!(r.approval_rate_before, r.approval_rate_after);
        assert_eq!(r.unattended_before, r.unattended_after);
    }

    #[test]
    fn raising_a_threshold_lists_the_misses_and_the_hours_saved() {
        let raised = with_threshold(
            &refunds("1000"),
            "large",
            &ThresholdChange::Amount {
                amount: "2000".into(),
                currency: "EUR".into(),
            },
        )
        .unwrap();
        let r = run(
            &live(),
            &with(raised),
            &history(),
            &BacktestSettings::default(),
        );
        assert_eq!((r.evaluated, r.drifted), (10, 0));
        assert_eq!((r.changed_tier, r.loosened, r.tightened), (6, 6, 0));
        assert_eq!((r.released, r.newly_held), (6, 0));
        assert_eq!(r.misses_total, 2);
        let ids: Vec<(&str, Tier, Tier, Outcome)> = r
            .misses
            .iter()
            .map(|m| (m.id.as_str(), m.live_tier, m.candidate_tier, m.outcome))
            .collect();
        assert_eq!(
            ids,
            vec![
                ("r-1500", Tier::Review, Tier::Log, Outcome::Rejected),
                ("e-1800", Tier::Review, Tier::Log, Outcome::ApprovedWithEdit),
            ]
        );
        assert_eq!((r.reviews_before, r.reviews_after), (8, 2));
        assert!((r.reviewer_hours_saved - 0.2).abs() < 1e-12, "6 x 2 min");
        assert_eq!((r.unattended_before, r.unattended_after), (2, 8));
        assert_eq!(
            r.approval_rate_before,
            Some(4.0 / 7.0),
            "expiry not counted"
        );
        assert_eq!(
            r.approval_rate_after,
            Some(0.5),
            "humans keep the hard cases"
        );
        assert_eq!((r.assumed_before, r.assumed_after), (0, 0));

        let capped = BacktestSettings {
            max_misses: 1,
            ..BacktestSettings::default()
        };
        let r = run(
            &live(),
            &with(with_threshold(&refunds("1000"), "large", &amount_eur("2000")).unwrap()),
            &history(),
            &capped,
        );
        assert_eq!((r.misses.len(), r.misses_total), (1, 2));
    }

    pub(super) fn amount_eur(a: &str) -> ThresholdChange {
        ThresholdChange::Amount {
            amount: a.into(),
            currency: "EUR".into(),
        }
    }

    #[test]
    fn tightening_holds_more_and_assumes_unflagged_ones_approved() {
        let lowered = with_threshold(&refunds("1000"), "large", &amount_eur("100")).unwrap();
        let r = run(
            &live(),
            &with(lowered),
            &history(),
            &BacktestSettings::default(),
        );
        assert_eq!((r.changed_tier, r.tightened, r.newly_held), (1, 1, 1));
        assert_eq!((r.released, r.misses_total), (0, 0));
        assert_eq!((r.reviews_before, r.reviews_after), (8, 9));
        assert!((r.reviewer_hours_saved + 120.0 / 3600.0).abs() < 1e-12);
        // l-150 would reach a human; it was flagged after the fact, so it counts as corrected.
        assert_eq!(r.assumed_after, 1);
        assert_eq!(r.approval_rate_after, Some(4.0 / 8.0));

        let mut h = history();
        h[1].hindsight = Hindsight::NotReviewed;
        let lowered = with_threshold(&refunds("1000"), "large", &amount_eur("100")).unwrap();
        let r = run(&live(), &with(lowered), &h, &BacktestSettings::default());
        assert_eq!(r.approval_rate_after, Some(5.0 / 8.0));
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        const TIERS: [Tier; 4] = [Tier::Log, Tier::Review, Tier::Dual, Tier::Block];

        /// A gate shaped like a real one: amount, count and confidence thresholds, a customer
        /// tier combination; every rule stricter than the auto base.
        fn gate(amount: u32, count: i64, confidence: u32, tiers: [usize; 4]) -> GateDefinition {
            let t = |i: usize| TIERS[tiers[i]].as_str();
            serde_json::from_value(serde_json::json!({
                "key": "g", "name": "G", "action_types": ["payment.*"], "base_tier": "auto",
                "rules": [
                    {"key": "amount", "when": [{"attribute": "amount_above", "thresholds": [{"amount": amount.to_string(), "currency": "EUR"}]}], "tier": t(0)},
                    {"key": "count", "when": [{"attribute": "record_count_above", "count": count}], "tier": t(1)},
                    {"key": "unsure", "when": [{"attribute": "confidence_below", "value": confidence as f64 / 100.0}], "tier": t(2)},
                    {"key": "big-client", "when": [{"attribute": "customer_tier_in", "tiers": ["enterprise"]}, {"attribute": "amount_above", "thresholds": [{"amount": (amount / 2).to_string(), "currency": "EUR"}]}], "tier": t(3)}
                ]
            }))
            .unwrap()
        }

        fn other_gate() -> GateDefinition {
            serde_json::from_value(serde_json::json!({
                "key": "email", "name": "Email", "action_types": ["email.send"], "base_tier": "log",
                "rules": [{"key": "many", "when": [{"attribute": "recipient_count_above", "count": 100}], "tier": "review"}]
            }))
            .unwrap()
        }

        fn record() -> impl Strategy<Value = HistoricRequest> {
            (
                prop::sample::select(vec![
                    "payment.refund",
                    "payment.wire",
                    "email.send",
                    "crm.x",
                ]),
                prop::option::of((0i64..3_000_000, prop::sample::select(vec!["EUR", "USD"]))),
                prop::option::of(0i64..200),
                prop::option::of((0u32..=100).prop_map(|c| c as f64 / 100.0)),
                prop::option::of(prop::sample::select(vec!["smb", "enterprise"])),
                prop::sample::select(Outcome::ALL.to_vec()),
                prop::sample::select(vec![
                    Hindsight::NotReviewed,
                    Hindsight::Fine,
                    Hindsight::ShouldNotHaveHappened,
                ]),
            )
                .prop_map(
                    |(action, amount, count, confidence, customer, outcome, sight)| {
                        let mut r = req("p", "g", Tier::Review, outcome);
                        r.action_type = action.to_owned();
                        r.amount_minor = amount.map(|a| a.0);
                        r.currency = amount.map(|a| a.1.to_owned());
                        r.record_count = count;
                        r.recipient_count = count.map(|c| c * 3);
                        r.confidence = confidence;
                        r.customer_tier = customer.map(str::to_owned);
                        r.hindsight = sight;
                        r
                    },
                )
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            #[test]
            fn an_identical_candidate_changes_nothing(
                amount in 0u32..30_000, count in 0i64..200, confidence in 0u32..=100,
                tiers in prop::array::uniform4(0usize..4),
                h in prop::collection::vec(record(), 0..60)
            ) {
                let def = gate(amount, count, confidence, tiers);
                let live = compile(vec![(def.clone(), 1), (other_gate(), 1)]).unwrap();
                let r = run(&live, &candidate(&live, def).unwrap(), &h, &BacktestSettings::default());
                prop_assert_eq!(r.changed_tier, 0);
                prop_assert_eq!(r.misses_total, 0);
                prop_assert_eq!(r.reviews_before, r.reviews_after);
                prop_assert_eq!(r.approval_rate_before, r.approval_rate_after);
            }

            #[test]
            fn a_stricter_candidate_never_lets_more_through(
                amount in 0u32..30_000, count in 0i64..200, confidence in 0u32..=100,
                tiers in prop::array::uniform4(0usize..4),
                lower_amount in 0u32..30_000, lower_count in 0i64..200, raise_confidence in 0u32..=100,
                raise_tiers in prop::array::uniform4(0usize..4),
                extra_rule in prop::option::of((0i64..200, 0usize..4)),
                h in prop::collection::vec(record(), 0..60)
            ) {
                let live_def = gate(amount, count, confidence, tiers);
                let live = compile(vec![(live_def.clone(), 1), (other_gate(), 1)]).unwrap();
                // Lower "above" thresholds, raise "below" ones, raise rule tiers, add a rule:
                // each makes every rule hold at least as often, at least as strictly.
                let stricter_tiers = [0, 1, 2, 3].map(|i| (tiers[i] + raise_tiers[i]).min(3));
                let mut def = gate(
                    amount.saturating_sub(lower_amount),
                    (count - lower_count).max(0),
                    (confidence + raise_confidence).min(100),
                    stricter_tiers,
                );
                if let Some((n, tier)) = extra_rule {
                    def.rules.push(crate::domain::policy::RuleDefinition {
                        key: "extra".into(),
                        when: vec![Condition::RecipientCountAbove { count: n }],
                        tier: TIERS[tier],
                    });
                }
                let r = run(&live, &candidate(&live, def).unwrap(), &h, &BacktestSettings::default());
                prop_assert_eq!(r.loosened, 0);
                prop_assert_eq!(r.released, 0);
                prop_assert_eq!(r.misses_total, 0);
                prop_assert!(r.unattended_after <= r.unattended_before);
                prop_assert_eq!(r.changed_tier, r.tightened);
            }
        }
    }
}
