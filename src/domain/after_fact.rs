//! After-the-fact review: which requests that ran without waiting a human looks at afterwards.
//!
//! Every `log` request is queued. Of `auto` requests, the gate's `auto_sample_rate` share is: the
//! choice is a pure function of the request id, so it is decided once at submission, is the same
//! on every server and in every replay, and a test can predict it. Request ids are UUIDv7 (time
//! ordered, so consecutive ids share most of their bytes); the id is therefore hashed (FNV-1a,
//! then a SplitMix64 finaliser so that every input bit reaches the top bits) before it is mapped
//! to `[0, 1)`.

use super::tier::Tier;
use serde::{Deserialize, Serialize};

/// Why a request is in the after-the-fact queue; stored as `reason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QueueReason {
    /// The gate put it in `log`: execute, then always review.
    Log,
    /// An `auto` request drawn by the gate's sample rate.
    SampledAuto,
}

impl QueueReason {
    pub fn as_str(self) -> &'static str {
        match self {
            QueueReason::Log => "log",
            QueueReason::SampledAuto => "sampled_auto",
        }
    }

    pub fn parse(s: &str) -> Option<QueueReason> {
        match s {
            "log" => Some(QueueReason::Log),
            "sampled_auto" => Some(QueueReason::SampledAuto),
            _ => None,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            QueueReason::Log => "Logged",
            QueueReason::SampledAuto => "Sampled auto",
        }
    }
}

/// A reviewer's judgement of something that already ran; stored as `verdict`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Judgement {
    Fine,
    ShouldNotHaveHappened,
}

impl Judgement {
    pub fn as_str(self) -> &'static str {
        match self {
            Judgement::Fine => "fine",
            Judgement::ShouldNotHaveHappened => "should_not_have_happened",
        }
    }

    pub fn parse(s: &str) -> Option<Judgement> {
        match s {
            "fine" => Some(Judgement::Fine),
            "should_not_have_happened" => Some(Judgement::ShouldNotHaveHappened),
            _ => None,
        }
    }
}

/// A stable position of `request_id` in `[0, 1)`.
pub fn sample_point(request_id: &str) -> f64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in request_id.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    // SplitMix64's finaliser: FNV alone leaves the last bytes' influence in the low bits.
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^= h >> 31;
    // The top 53 bits fill an f64 mantissa exactly, so the result is strictly below 1.
    (h >> 11) as f64 / (1u64 << 53) as f64
}

/// Whether an `auto` request with this id is sampled at `rate` (0 never, 1 always; a rate
/// outside `[0, 1]` or NaN is clamped, as validation refuses it at save anyway).
pub fn is_sampled(request_id: &str, rate: f64) -> bool {
    let rate = if rate.is_nan() {
        0.0
    } else {
        rate.clamp(0.0, 1.0)
    };
    sample_point(request_id) < rate
}

/// Whether a request gated at `tier` (after breakers) goes to the after-the-fact queue, and why.
pub fn queue_reason(tier: Tier, request_id: &str, auto_sample_rate: f64) -> Option<QueueReason> {
    match tier {
        Tier::Log => Some(QueueReason::Log),
        Tier::Auto if is_sampled(request_id, auto_sample_rate) => Some(QueueReason::SampledAuto),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: usize) -> impl Iterator<Item = String> {
        // Shaped like real ids: a shared time prefix, differing in the last characters.
        (0..n).map(|i| format!("req_0193a1b2c3d47{i:011x}"))
    }

    #[test]
    fn the_point_is_stable_and_in_range() {
        let p = sample_point("req_0193a1b2c3d4700000000001");
        assert_eq!(p, sample_point("req_0193a1b2c3d4700000000001"));
        for id in ids(2000) {
            let p = sample_point(&id);
            assert!((0.0..1.0).contains(&p), "{id}: {p}");
        }
    }

    #[test]
    fn rate_zero_never_and_rate_one_always() {
        for id in ids(500) {
            assert!(!is_sampled(&id, 0.0));
            assert!(is_sampled(&id, 1.0));
            assert!(!is_sampled(&id, f64::NAN));
            assert!(is_sampled(&id, 7.0), "clamped to 1");
        }
    }

    #[test]
    fn the_share_sampled_follows_the_rate_for_time_ordered_ids() {
        for rate in [0.02, 0.1, 0.5] {
            let n = 20_000;
            let hit = ids(n).filter(|id| is_sampled(id, rate)).count() as f64 / n as f64;
            assert!((hit - rate).abs() < 0.01, "rate {rate}: sampled {hit}");
        }
    }

    #[test]
    fn a_higher_rate_keeps_every_request_a_lower_one_sampled() {
        // Raising the rate only adds requests: the sample is a prefix of one order.
        for id in ids(1000) {
            if is_sampled(&id, 0.05) {
                assert!(is_sampled(&id, 0.2));
            }
        }
    }

    #[test]
    fn only_log_and_sampled_auto_are_queued() {
        let id = "req_x";
        assert_eq!(queue_reason(Tier::Log, id, 0.0), Some(QueueReason::Log));
        assert_eq!(
            queue_reason(Tier::Auto, id, 1.0),
            Some(QueueReason::SampledAuto)
        );
        assert_eq!(queue_reason(Tier::Auto, id, 0.0), None);
        for t in [Tier::Review, Tier::Dual, Tier::Block] {
            assert_eq!(queue_reason(t, id, 1.0), None);
        }
    }

    #[test]
    fn names_round_trip() {
        for r in [QueueReason::Log, QueueReason::SampledAuto] {
            assert_eq!(QueueReason::parse(r.as_str()), Some(r));
        }
        for j in [Judgement::Fine, Judgement::ShouldNotHaveHappened] {
            assert_eq!(Judgement::parse(j.as_str()), Some(j));
        }
        assert_eq!(Judgement::parse("maybe"), None);
    }
}
