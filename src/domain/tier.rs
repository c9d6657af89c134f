//! Tiers: how much human attention an action request needs.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The tier a gate assigns. The declaration order is the strictness order: a later variant is
/// stricter, so `Ord` answers "which of two tiers wins" directly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    /// Execute and record.
    Auto,
    /// Execute, record, and queue for after-the-fact review.
    Log,
    /// Wait for one eligible human.
    Review,
    /// Wait for two independent humans.
    Dual,
    /// Refuse, always.
    Block,
}

impl Tier {
    pub const ALL: [Tier; 5] = [Tier::Auto, Tier::Log, Tier::Review, Tier::Dual, Tier::Block];

    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Auto => "auto",
            Tier::Log => "log",
            Tier::Review => "review",
            Tier::Dual => "dual",
            Tier::Block => "block",
        }
    }

    /// The stricter of two tiers.
    pub fn strictest(self, other: Tier) -> Tier {
        self.max(other)
    }

    /// Whether a request in this tier waits for a human before the agent may act.
    pub fn needs_human(self) -> bool {
        matches!(self, Tier::Review | Tier::Dual)
    }
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown tier {0:?}; expected one of auto, log, review, dual, block")]
pub struct UnknownTier(pub String);

impl FromStr for Tier {
    type Err = UnknownTier;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Tier::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| UnknownTier(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strictness_order_is_auto_log_review_dual_block() {
        let mut shuffled = vec![Tier::Block, Tier::Auto, Tier::Dual, Tier::Log, Tier::Review];
        shuffled.sort();
        assert_eq!(shuffled, Tier::ALL.to_vec());
    }

    #[test]
    fn strictest_is_symmetric_and_picks_the_stricter() {
        for a in Tier::ALL {
            for b in Tier::ALL {
                assert_eq!(a.strictest(b), b.strictest(a));
                assert!(a.strictest(b) >= a && a.strictest(b) >= b);
            }
        }
        assert_eq!(Tier::Log.strictest(Tier::Dual), Tier::Dual);
    }

    #[test]
    fn parses_its_own_names_and_refuses_others() {
        for t in Tier::ALL {
            assert_eq!(t.as_str().parse::<Tier>(), Ok(t));
        }
        assert_eq!("Review".parse::<Tier>(), Err(UnknownTier("Review".into())));
        assert!("".parse::<Tier>().is_err());
    }

    #[test]
    fn only_review_and_dual_wait_for_a_human() {
        let waiting: Vec<_> = Tier::ALL.into_iter().filter(|t| t.needs_human()).collect();
        assert_eq!(waiting, vec![Tier::Review, Tier::Dual]);
    }
}
