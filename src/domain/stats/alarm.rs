//! Alarms over gate statistics: gates whose reviewers rubber-stamp, and gates whose reviewers
//! correct more and more.

use super::GroupStats;
use serde::{Deserialize, Serialize};

/// When to raise an alarm about a group.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AlarmSettings {
    /// Flag when approved-unchanged is *more than* this share of human decisions.
    pub rubber_stamp_share: f64,
    /// ...over at least this many human decisions. 50 because the share then moves in steps of
    /// two points, so "more than 95%" still allows two corrections (48 of 50) where at 20
    /// decisions it would demand none at all, and because 50 is about a week of a gate that
    /// reviews ten requests a day.
    pub rubber_stamp_min_decisions: u64,
    /// Flag when the second half's correction rate exceeds the first half's by at least this.
    pub rising_margin: f64,
    /// ...and each half has at least this many human decisions.
    pub rising_min_per_half: u64,
}

impl Default for AlarmSettings {
    fn default() -> Self {
        AlarmSettings {
            rubber_stamp_share: 0.95,
            rubber_stamp_min_decisions: 50,
            rising_margin: 0.10,
            rising_min_per_half: 20,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Alarm {
    /// Reviewers approve nearly everything unchanged: the gate trains them to click approve.
    RubberStamp {
        key: String,
        decisions: u64,
        approval_rate: f64,
    },
    /// Reviewers correct more and more: the gate (or the agent) is drifting the wrong way.
    RisingCorrections {
        key: String,
        first_half_rate: f64,
        second_half_rate: f64,
        first_half_decisions: u64,
        second_half_decisions: u64,
    },
}

impl Alarm {
    pub fn key(&self) -> &str {
        match self {
            Alarm::RubberStamp { key, .. } | Alarm::RisingCorrections { key, .. } => key,
        }
    }

    /// What the admin could do about it; the backtest shows what it would cost.
    pub fn suggestion(&self) -> &'static str {
        match self {
            Alarm::RubberStamp { .. } => {
                "Reviewers approve almost everything unchanged here: raise the threshold, or move the rule to log so it is checked after the fact; backtest the change first."
            }
            Alarm::RisingCorrections { .. } => {
                "Reviewers edit or reject more and more here: lower the threshold or make the rule stricter, and check whether the agent changed."
            }
        }
    }
}

/// Alarms for the groups of a summary, in the summary's order (both kinds may fire for one
/// group). "Rising" compares the correction rate of the window's second half with its first.
pub fn alarms(stats: &[GroupStats], settings: &AlarmSettings) -> Vec<Alarm> {
    let mut out = Vec::new();
    for s in stats {
        let decisions = s.outcomes.human_decisions();
        if let Some(rate) = s.outcomes.approval_rate() {
            if decisions >= settings.rubber_stamp_min_decisions
                && rate > settings.rubber_stamp_share
            {
                out.push(Alarm::RubberStamp {
                    key: s.key.clone(),
                    decisions,
                    approval_rate: rate,
                });
            }
        }
        let [first, second] = &s.halves;
        let (n1, n2) = (first.human_decisions(), second.human_decisions());
        if let (Some(r1), Some(r2)) = (first.correction_rate(), second.correction_rate()) {
            let enough = n1.min(n2) >= settings.rising_min_per_half;
            if enough && r2 - r1 >= settings.rising_margin {
                out.push(Alarm::RisingCorrections {
                    key: s.key.clone(),
                    first_half_rate: r1,
                    second_half_rate: r2,
                    first_half_decisions: n1,
                    second_half_decisions: n2,
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::stats::HistoricRequest;
    use crate::domain::stats::{req, summarise, GroupBy, Outcome, Window};
    use crate::domain::tier::Tier;

    const DAY: i64 = 86_400_000;

    /// `n` human decisions in each half of [0, 2*DAY): `corrections` of them rejected.
    fn halves(key: &str, first: (u64, u64), second: (u64, u64)) -> Vec<HistoricRequest> {
        let mut h = Vec::new();
        for (start, (n, corrections)) in [(0, first), (DAY, second)] {
            for i in 0..n {
                let o = if i < corrections {
                    Outcome::Rejected
                } else {
                    Outcome::ApprovedUnchanged
                };
                let mut r = req("r", key, Tier::Review, o);
                r.created_at_ms = start;
                h.push(r);
            }
        }
        h
    }

    const TWO_DAYS: Window = Window {
        from_ms: 0,
        to_ms: 2 * DAY,
    };

    #[test]
    fn rubber_stamp_needs_more_than_the_share_over_enough_decisions() {
        let settings = AlarmSettings::default();
        let mut h = halves("stamped", (25, 0), (25, 1)); // 49 of 50 = 98%
        h.extend(halves("too-few", (24, 0), (25, 0))); // 49 of 49, but only 49
        h.extend(halves("exactly", (50, 2), (50, 3))); // 95 of 100 = 95%, not more
        h.extend(halves("fine", (50, 10), (50, 10)));
        let stats = summarise(&h, GroupBy::Gate, TWO_DAYS);
        let fired = alarms(&stats, &settings);
        assert_eq!(
            fired,
            vec![Alarm::RubberStamp {
                key: "stamped".into(),
                decisions: 50,
                approval_rate: 0.98
            }]
        );
        assert!(fired[0].suggestion().contains("raise the threshold"));
        assert_eq!(fired[0].key(), "stamped");
        let lenient = AlarmSettings {
            rubber_stamp_min_decisions: 49,
            ..settings
        };
        let keys: Vec<String> = alarms(&stats, &lenient)
            .iter()
            .map(|a| a.key().to_owned())
            .collect();
        assert_eq!(
            keys,
            vec!["stamped", "too-few"],
            "summary order, busiest first"
        );
    }

    #[test]
    fn rising_corrections_compare_the_window_halves() {
        let settings = AlarmSettings::default();
        let mut h = halves("rising", (20, 2), (20, 6)); // 10% -> 30%
        h.extend(halves("slight", (40, 4), (40, 7))); // 10% -> 17.5%
        h.extend(halves("thin", (19, 0), (40, 20))); // first half too small
        h.extend(halves("falling", (20, 10), (20, 0)));
        let fired = alarms(&summarise(&h, GroupBy::Gate, TWO_DAYS), &settings);
        assert_eq!(
            fired,
            vec![Alarm::RisingCorrections {
                key: "rising".into(),
                first_half_rate: 0.1,
                second_half_rate: 0.3,
                first_half_decisions: 20,
                second_half_decisions: 20,
            }]
        );
        assert!(fired[0].suggestion().contains("lower the threshold"));
    }
}
