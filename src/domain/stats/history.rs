//! The record statistics and the backtest read: one past action request, what the gate saw, what
//! it decided and what the humans then did; and the counts kept over such records.

use crate::domain::policy::{money_fact, Facts};
use crate::domain::tier::Tier;
use serde::{Deserialize, Serialize};

/// How a request ended (or where it stands at the end of the window).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// `auto` or `log`: executed without waiting for a human.
    AutoApproved,
    /// `block`: refused by policy, no human involved.
    Blocked,
    ApprovedUnchanged,
    ApprovedWithEdit,
    Rejected,
    Expired,
    Withdrawn,
    /// Still open.
    Pending,
}

impl Outcome {
    pub const ALL: [Outcome; 8] = [
        Outcome::AutoApproved,
        Outcome::Blocked,
        Outcome::ApprovedUnchanged,
        Outcome::ApprovedWithEdit,
        Outcome::Rejected,
        Outcome::Expired,
        Outcome::Withdrawn,
        Outcome::Pending,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::AutoApproved => "auto_approved",
            Outcome::Blocked => "blocked",
            Outcome::ApprovedUnchanged => "approved_unchanged",
            Outcome::ApprovedWithEdit => "approved_with_edit",
            Outcome::Rejected => "rejected",
            Outcome::Expired => "expired",
            Outcome::Withdrawn => "withdrawn",
            Outcome::Pending => "pending",
        }
    }

    /// A human judged the action: approved (with or without edit) or rejected.
    pub fn is_human_decision(self) -> bool {
        matches!(
            self,
            Outcome::ApprovedUnchanged | Outcome::ApprovedWithEdit | Outcome::Rejected
        )
    }

    /// A human found the action wrong as proposed: the signal a gate exists to catch.
    pub fn is_correction(self) -> bool {
        matches!(self, Outcome::ApprovedWithEdit | Outcome::Rejected)
    }
}

/// The after-the-fact review of a request that executed without waiting (`log`, sampled `auto`).
/// Three states rather than a flag, so "not reviewed yet" does not dilute the rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Hindsight {
    #[default]
    NotReviewed,
    Fine,
    ShouldNotHaveHappened,
}

/// One past action request as statistics and the backtest see it: the facts policy looked at,
/// what it decided, and what the humans then did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoricRequest {
    pub id: String,
    pub action_type: String,
    pub agent: String,
    pub amount_minor: Option<i64>,
    pub currency: Option<String>,
    pub record_count: Option<i64>,
    pub recipient_count: Option<i64>,
    pub confidence: Option<f64>,
    pub customer_tier: Option<String>,
    pub risk_class: Option<String>,
    /// The tier it was gated at, by the gate version of the time.
    pub tier: Tier,
    /// The deciding gate; `None` when no gate matched (failed closed to review).
    pub gate_key: Option<String>,
    /// Rules of the deciding gate whose conditions held.
    pub matched_rules: Vec<String>,
    pub outcome: Outcome,
    pub created_at_ms: i64,
    pub decided_at_ms: Option<i64>,
    /// The reviewer who made the final decision (the second one, in dual review).
    pub reviewer_id: Option<String>,
    pub hindsight: Hindsight,
}

impl HistoricRequest {
    /// The facts exactly as the gate saw them, borrowed, for `Policy::evaluate`.
    pub fn facts(&self) -> Facts<'_> {
        Facts {
            action_type: &self.action_type,
            agent: &self.agent,
            amount: money_fact(self.amount_minor, self.currency.as_deref()),
            record_count: self.record_count,
            recipient_count: self.recipient_count,
            confidence: self.confidence,
            customer_tier: self.customer_tier.as_deref(),
            risk_class: self.risk_class.as_deref(),
        }
    }

    /// Time from request to human decision; `None` for anything a human did not decide, and
    /// for clock skew that would make it negative.
    pub fn decision_ms(&self) -> Option<i64> {
        if !self.outcome.is_human_decision() {
            return None;
        }
        let d = self.decided_at_ms? - self.created_at_ms;
        (d >= 0).then_some(d)
    }
}

/// Requests per outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutcomeCounts {
    pub auto_approved: u64,
    pub blocked: u64,
    pub approved_unchanged: u64,
    pub approved_with_edit: u64,
    pub rejected: u64,
    pub expired: u64,
    pub withdrawn: u64,
    pub pending: u64,
}

impl OutcomeCounts {
    pub fn add(&mut self, o: Outcome) {
        *self.slot(o) += 1;
    }

    pub fn get(&self, o: Outcome) -> u64 {
        match o {
            Outcome::AutoApproved => self.auto_approved,
            Outcome::Blocked => self.blocked,
            Outcome::ApprovedUnchanged => self.approved_unchanged,
            Outcome::ApprovedWithEdit => self.approved_with_edit,
            Outcome::Rejected => self.rejected,
            Outcome::Expired => self.expired,
            Outcome::Withdrawn => self.withdrawn,
            Outcome::Pending => self.pending,
        }
    }

    fn slot(&mut self, o: Outcome) -> &mut u64 {
        match o {
            Outcome::AutoApproved => &mut self.auto_approved,
            Outcome::Blocked => &mut self.blocked,
            Outcome::ApprovedUnchanged => &mut self.approved_unchanged,
            Outcome::ApprovedWithEdit => &mut self.approved_with_edit,
            Outcome::Rejected => &mut self.rejected,
            Outcome::Expired => &mut self.expired,
            Outcome::Withdrawn => &mut self.withdrawn,
            Outcome::Pending => &mut self.pending,
        }
    }

    pub fn total(&self) -> u64 {
        Outcome::ALL.iter().map(|o| self.get(*o)).sum()
    }

    pub fn human_decisions(&self) -> u64 {
        self.approved_unchanged + self.approved_with_edit + self.rejected
    }

    /// Approved unchanged over human decisions; `None` when no human decided anything.
    pub fn approval_rate(&self) -> Option<f64> {
        ratio(self.approved_unchanged, self.human_decisions())
    }

    /// Edited or rejected over human decisions.
    pub fn correction_rate(&self) -> Option<f64> {
        ratio(
            self.approved_with_edit + self.rejected,
            self.human_decisions(),
        )
    }
}

fn ratio(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

/// After-the-fact reviews of requests that executed without waiting, by tier as gated.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HindsightCounts {
    pub log_reviewed: u64,
    pub log_flagged: u64,
    pub auto_reviewed: u64,
    pub auto_flagged: u64,
}

impl HindsightCounts {
    pub fn add(&mut self, r: &HistoricRequest) {
        let (reviewed, flagged) = match r.tier {
            Tier::Log => (&mut self.log_reviewed, &mut self.log_flagged),
            Tier::Auto => (&mut self.auto_reviewed, &mut self.auto_flagged),
            _ => return,
        };
        match r.hindsight {
            Hindsight::NotReviewed => {}
            Hindsight::Fine => *reviewed += 1,
            Hindsight::ShouldNotHaveHappened => {
                *reviewed += 1;
                *flagged += 1;
            }
        }
    }

    /// "Should not have happened" over reviewed `log` requests.
    pub fn log_rate(&self) -> Option<f64> {
        ratio(self.log_flagged, self.log_reviewed)
    }

    /// "Should not have happened" over sampled-and-reviewed `auto` requests.
    pub fn auto_rate(&self) -> Option<f64> {
        ratio(self.auto_flagged, self.auto_reviewed)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A request of gate `gate` (none if empty) at `tier`, created at 0, not decided.
    pub(crate) fn req(id: &str, gate: &str, tier: Tier, outcome: Outcome) -> HistoricRequest {
        HistoricRequest {
            id: id.to_owned(),
            action_type: "payment.refund".to_owned(),
            agent: "refund-bot".to_owned(),
            amount_minor: None,
            currency: None,
            record_count: None,
            recipient_count: None,
            confidence: None,
            customer_tier: None,
            risk_class: None,
            tier,
            gate_key: (!gate.is_empty()).then(|| gate.to_owned()),
            matched_rules: Vec::new(),
            outcome,
            created_at_ms: 0,
            decided_at_ms: None,
            reviewer_id: None,
            hindsight: Hindsight::NotReviewed,
        }
    }

    #[test]
    fn outcome_counts_add_up_and_define_the_rates() {
        let mut c = OutcomeCounts::default();
        for (o, n) in Outcome::ALL.into_iter().zip(1..) {
            for _ in 0..n {
                c.add(o);
            }
            assert_eq!(c.get(o), n, "{}", o.as_str());
        }
        assert_eq!(c.total(), (1..=8).sum::<u64>());
        // approved unchanged 3, with edit 4, rejected 5.
        assert_eq!(c.human_decisions(), 12);
        assert_eq!(c.approval_rate(), Some(0.25));
        assert_eq!(c.correction_rate(), Some(0.75));
        let human: Vec<_> = Outcome::ALL
            .into_iter()
            .filter(|o| o.is_human_decision())
            .collect();
        let corrections: Vec<_> = Outcome::ALL
            .into_iter()
            .filter(|o| o.is_correction())
            .collect();
        assert_eq!(
            human,
            vec![
                Outcome::ApprovedUnchanged,
                Outcome::ApprovedWithEdit,
                Outcome::Rejected
            ]
        );
        assert_eq!(
            corrections,
            vec![Outcome::ApprovedWithEdit, Outcome::Rejected]
        );
    }

    #[test]
    fn hindsight_rates_cover_log_and_sampled_auto() {
        let mut h = Vec::new();
        for (tier, sight, n) in [
            (Tier::Log, Hindsight::ShouldNotHaveHappened, 1),
            (Tier::Log, Hindsight::Fine, 3),
            (Tier::Log, Hindsight::NotReviewed, 5),
            (Tier::Auto, Hindsight::ShouldNotHaveHappened, 2),
            (Tier::Auto, Hindsight::Fine, 18),
            (Tier::Auto, Hindsight::NotReviewed, 100),
            (Tier::Review, Hindsight::ShouldNotHaveHappened, 7),
        ] {
            for _ in 0..n {
                let mut r = req("r", "g", tier, Outcome::AutoApproved);
                r.hindsight = sight;
                h.push(r);
            }
        }
        let mut hs = HindsightCounts::default();
        h.iter().for_each(|r| hs.add(r));
        assert_eq!((hs.log_reviewed, hs.log_flagged), (4, 1));
        assert_eq!((hs.auto_reviewed, hs.auto_flagged), (20, 2));
        assert_eq!(hs.log_rate(), Some(0.25));
        assert_eq!(hs.auto_rate(), Some(0.1));
        assert_eq!(HindsightCounts::default().log_rate(), None);
    }

    #[test]
    fn facts_borrow_what_the_gate_saw() {
        let mut r = req("r", "refunds", Tier::Review, Outcome::Pending);
        r.amount_minor = Some(420_000);
        r.currency = Some("EUR".into());
        r.customer_tier = Some("enterprise".into());
        r.confidence = Some(0.4);
        let f = r.facts();
        assert_eq!(f.amount.unwrap().to_string(), "4,200.00 EUR");
        assert_eq!((f.action_type, f.agent), ("payment.refund", "refund-bot"));
        assert_eq!(f.customer_tier, Some("enterprise"));
        assert_eq!(f.confidence, Some(0.4));
        r.currency = Some("XXX".into());
        assert_eq!(
            r.facts().amount,
            None,
            "an unknown currency is an unstated amount"
        );
    }
}
