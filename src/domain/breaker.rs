//! Circuit breakers: when reviewers keep correcting an agent, stop trusting it automatically.
//!
//! Per agent (and per agent at one gate) the server keeps the human decisions on its requests.
//! [`assess`] computes the correction rate (rejected or edited, over human decisions) in a rolling
//! window; when it is *above* the configured rate over at least a minimum sample, the breaker
//! opens. An open breaker sends what would have run unseen (`auto`, `log`) to `review`, or, if so
//! configured, refuses everything the agent asks ([`apply`]). Only an admin closes it again
//! (re-arms it); the server alerts admins on opening and audits both.
//!
//! After-the-fact judgements of requests that ran without waiting (`log`, sampled `auto`) are
//! human decisions on the agent's actions too, and count as samples: "should not have happened"
//! as a correction (like a rejection, since the reviewer would have refused it), "looks right"
//! as an unchanged approval. Without them, an agent whose work mostly runs unseen could never
//! trip its breaker however often its logged actions were wrong.
//!
//! Choices, each so that the breaker can only make the system stricter:
//! - "Above" is strictly greater: at the default 15% over 20 decisions, 3 corrections (exactly
//!   15%) keep it closed and 4 open it. The setting reads "tolerate up to this rate".
//! - An open breaker never closes by itself, however the rate recovers: the rate recovers
//!   precisely because fewer requests reach a human while it is open, so an automatic close
//!   would flap. A person looks, then re-arms.
//! - Applying a breaker never lowers a tier; `dual` and `block` are left alone.

use super::stats::Outcome;
use super::tier::Tier;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Longest window we accept: 90 days. The server loads every decision in the window, and a
/// breaker that averages over months cannot notice an agent that went wrong this morning.
pub const MAX_WINDOW_MS: i64 = 90 * 24 * 3_600_000;

/// When a breaker opens and what it does then. `{}` gives the defaults.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BreakerSettings {
    /// Open when the correction rate is strictly above this share, in (0, 1): at 1 it could never
    /// be above, and a breaker that cannot open is one nobody should believe is watching.
    pub rate: f64,
    /// The rolling window the rate is computed over, in milliseconds.
    pub window_ms: i64,
    /// ...and only with at least this many human decisions in the window, so that two early
    /// rejections of a new agent do not trip it.
    pub min_decisions: u32,
    pub on_open: OnOpen,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        BreakerSettings {
            rate: 0.15,
            window_ms: 3_600_000,
            min_decisions: 20,
            on_open: OnOpen::ForceReview,
        }
    }
}

/// What an open breaker does to the agent's requests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnOpen {
    /// Requests that would be `auto` or `log` wait for a human (`review`).
    #[default]
    ForceReview,
    /// Every request is refused (`block`) until an admin re-arms the breaker.
    RefuseAll,
}

/// One invalid breaker setting, named by its field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct InvalidBreakerSetting {
    pub field: &'static str,
    pub message: String,
}

impl BreakerSettings {
    /// Every problem with these settings, each naming its field.
    pub fn validate(&self) -> Result<(), Vec<InvalidBreakerSetting>> {
        let mut errors = Vec::new();
        let mut fail = |field, message: &str| {
            errors.push(InvalidBreakerSetting {
                field,
                message: message.to_owned(),
            })
        };
        // Written so that NaN fails too.
        if !(self.rate > 0.0 && self.rate < 1.0) {
            fail(
                "rate",
                "must be above 0 and below 1 (0.15 opens at more than 15% corrected; at 1 it could never open)",
            );
        }
        if self.window_ms <= 0 {
            fail("window_ms", "the window must be longer than 0 ms");
        } else if self.window_ms > MAX_WINDOW_MS {
            fail("window_ms", "the window must be at most 90 days");
        }
        if self.min_decisions == 0 {
            fail(
                "min_decisions",
                "must be at least 1; a breaker needs decisions to judge by",
            );
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

/// What a breaker is kept per: an agent everywhere, or an agent at one gate.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct BreakerScope {
    pub agent: String,
    /// `None` for the agent across all gates.
    pub gate: Option<String>,
}

impl BreakerScope {
    pub fn agent(agent: impl Into<String>) -> BreakerScope {
        BreakerScope {
            agent: agent.into(),
            gate: None,
        }
    }

    pub fn agent_at_gate(agent: impl Into<String>, gate: impl Into<String>) -> BreakerScope {
        BreakerScope {
            agent: agent.into(),
            gate: Some(gate.into()),
        }
    }

    /// The two breakers a request by `agent` gated by `gate` answers to.
    pub fn for_request(agent: &str, gate: &str) -> [BreakerScope; 2] {
        [
            BreakerScope::agent(agent),
            BreakerScope::agent_at_gate(agent, gate),
        ]
    }
}

impl fmt::Display for BreakerScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.gate {
            None => write!(f, "agent {}", self.agent),
            Some(gate) => write!(f, "agent {} at gate {gate}", self.agent),
        }
    }
}

/// One human decision on one of the agent's requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecisionSample {
    /// When the decision was made (ms since the Unix epoch).
    pub at_ms: i64,
    /// Rejected, or approved only after an edit.
    pub corrected: bool,
}

impl DecisionSample {
    /// The sample for a request's outcome, if it was a human decision. Expiry and withdrawal say
    /// nothing about the action, and auto/blocked requests had no human: none of them count,
    /// matching the correction rate of the gate statistics.
    pub fn from_outcome(at_ms: i64, outcome: Outcome) -> Option<DecisionSample> {
        let corrected = match outcome {
            Outcome::ApprovedUnchanged => false,
            Outcome::ApprovedWithEdit | Outcome::Rejected => true,
            Outcome::AutoApproved
            | Outcome::Blocked
            | Outcome::Expired
            | Outcome::Withdrawn
            | Outcome::Pending => return None,
        };
        Some(DecisionSample { at_ms, corrected })
    }
}

/// The correction rate in the window, and whether it opens the breaker.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Assessment {
    pub decisions: u32,
    pub corrections: u32,
    /// `corrections / decisions`; 0 when there were no decisions.
    pub rate: f64,
    pub should_open: bool,
}

/// Assesses the decisions in `(now_ms - window, now_ms]`, in any order.
///
/// Samples at or before `rearmed_at_ms` are ignored. Right after an admin re-arms a breaker, the
/// decisions that opened it are still inside the window; counting them would open it again on
/// the next assessment and make re-arming useless. Re-arming says "I have looked at those; judge
/// the agent afresh", so a re-armed breaker needs `min_decisions` new decisions before it can
/// open again. A decision in the same millisecond as the re-arm counts as seen: within one
/// millisecond the order of the two is unknowable.
pub fn assess(
    samples: &[DecisionSample],
    now_ms: i64,
    rearmed_at_ms: Option<i64>,
    settings: &BreakerSettings,
) -> Assessment {
    let window_start = now_ms.saturating_sub(settings.window_ms);
    let after = rearmed_at_ms.map_or(window_start, |r| r.max(window_start));
    let (mut decisions, mut corrections) = (0u32, 0u32);
    for s in samples {
        if s.at_ms > after && s.at_ms <= now_ms {
            decisions = decisions.saturating_add(1);
            corrections = corrections.saturating_add(u32::from(s.corrected));
        }
    }
    let rate = if decisions == 0 {
        0.0
    } else {
        // Division, not `rate * decisions`: a correctly rounded quotient equals the correctly
        // rounded setting when the true values are equal, so 3/20 is exactly 0.15 here.
        f64::from(corrections) / f64::from(decisions)
    };
    Assessment {
        decisions,
        corrections,
        rate,
        should_open: decisions >= settings.min_decisions && rate > settings.rate,
    }
}

/// A breaker's state, as stored per [`BreakerScope`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum BreakerState {
    #[default]
    Closed,
    /// Open since `since_ms`, because of the assessment it records (shown in its history).
    Open {
        since_ms: i64,
        rate: f64,
        decisions: u32,
        corrections: u32,
    },
}

impl BreakerState {
    pub fn is_open(&self) -> bool {
        matches!(self, BreakerState::Open { .. })
    }

    /// The open state to store when `assessment` trips this breaker at `now_ms`; `None` when it
    /// does not (it is already open, or the assessment does not say so). On `Some` the caller
    /// stores it, alerts the admins and audits the opening.
    pub fn trip(&self, assessment: &Assessment, now_ms: i64) -> Option<BreakerState> {
        match self {
            BreakerState::Closed if assessment.should_open => Some(BreakerState::Open {
                since_ms: now_ms,
                rate: assessment.rate,
                decisions: assessment.decisions,
                corrections: assessment.corrections,
            }),
            _ => None,
        }
    }
}

/// What a breaker does to one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BreakerEffect {
    /// The tier after the breaker: never less strict than the gate's.
    pub tier: Tier,
    /// The breaker, not the gate, refuses this request (the tier is then `block`), so the
    /// rejection names the breaker.
    pub refused: bool,
    /// The breaker made the tier stricter than the gate's.
    pub raised: bool,
}

/// The effect of one breaker on a request the gates put in `tier`.
pub fn apply(tier: Tier, state: &BreakerState, settings: &BreakerSettings) -> BreakerEffect {
    let after = match (state, settings.on_open) {
        (BreakerState::Closed, _) => tier,
        (BreakerState::Open { .. }, OnOpen::ForceReview) => tier.strictest(Tier::Review),
        (BreakerState::Open { .. }, OnOpen::RefuseAll) => Tier::Block,
    };
    BreakerEffect {
        tier: after,
        refused: state.is_open() && settings.on_open == OnOpen::RefuseAll && tier != Tier::Block,
        raised: after > tier,
    }
}

/// The effect of every breaker a request answers to (see [`BreakerScope::for_request`]). The
/// strictest wins, so the order does not matter.
pub fn apply_all<'a>(
    tier: Tier,
    breakers: impl IntoIterator<Item = (&'a BreakerState, &'a BreakerSettings)>,
) -> BreakerEffect {
    let mut effect = BreakerEffect {
        tier,
        refused: false,
        raised: false,
    };
    for (state, settings) in breakers {
        let e = apply(tier, state, settings);
        effect.tier = effect.tier.strictest(e.tier);
        effect.refused |= e.refused;
        effect.raised |= e.raised;
    }
    effect
}

#[cfg(test)]
mod tests;
