use super::*;
use proptest::prelude::*;

const MIN: i64 = 60_000;
const NOW: i64 = 1_700_000_000_000;

/// `n` decisions, the first `corrected` of them corrected, one a second up to `NOW`.
fn samples(n: usize, corrected: usize) -> Vec<DecisionSample> {
    (0..n)
        .map(|i| DecisionSample {
            at_ms: NOW - (i as i64) * 1000,
            corrected: i < corrected,
        })
        .collect()
}

fn open() -> BreakerState {
    BreakerState::Open {
        since_ms: NOW,
        rate: 0.5,
        decisions: 20,
        corrections: 10,
    }
}

#[test]
fn the_defaults_are_15_percent_over_an_hour_with_20_decisions() {
    let d = BreakerSettings::default();
    assert_eq!(
        (d.rate, d.window_ms, d.min_decisions),
        (0.15, 3_600_000, 20)
    );
    assert_eq!(d.on_open, OnOpen::ForceReview);
    let parsed: BreakerSettings = serde_json::from_str("{}").unwrap();
    assert_eq!(parsed, d);
    let refuse: BreakerSettings = serde_json::from_str(r#"{"on_open":"refuse_all"}"#).unwrap();
    assert_eq!(refuse.on_open, OnOpen::RefuseAll);
    assert!(serde_json::from_str::<BreakerSettings>(r#"{"threshold":0.2}"#).is_err());
    assert!(d.validate().is_ok());
}

#[test]
fn too_few_decisions_never_open_it() {
    let a = assess(&samples(19, 19), NOW, None, &BreakerSettings::default());
    assert_eq!((a.decisions, a.corrections, a.rate), (19, 19, 1.0));
    assert!(!a.should_open);
}

#[test]
fn exactly_the_rate_keeps_it_closed_and_above_opens_it() {
    let s = BreakerSettings::default();
    let at = assess(&samples(20, 3), NOW, None, &s);
    assert_eq!(at.rate, 0.15);
    assert!(!at.should_open, "3 of 20 is 15%, not above it");
    let above = assess(&samples(20, 4), NOW, None, &s);
    assert_eq!((above.decisions, above.corrections), (20, 4));
    assert!(above.should_open);
}

#[test]
fn only_the_window_counts_with_its_start_excluded_and_now_included() {
    let s = BreakerSettings::default();
    let start = NOW - s.window_ms;
    let mut v = samples(20, 0);
    v.push(DecisionSample {
        at_ms: start,
        corrected: true,
    });
    v.push(DecisionSample {
        at_ms: NOW + 1,
        corrected: true,
    });
    let a = assess(&v, NOW, None, &s);
    assert_eq!((a.decisions, a.corrections), (20, 0));
    v.push(DecisionSample {
        at_ms: start + 1,
        corrected: true,
    });
    assert_eq!(assess(&v, NOW, None, &s).corrections, 1);
    let later = assess(&v, NOW + 30 * MIN, None, &s);
    assert_eq!(
        (later.decisions, later.corrections),
        (21, 1),
        "the future sample is inside now, the oldest ones fell out"
    );
    assert_eq!(
        assess(&[], NOW, None, &s),
        Assessment {
            decisions: 0,
            corrections: 0,
            rate: 0.0,
            should_open: false
        }
    );
}

#[test]
fn a_rearmed_breaker_judges_only_new_decisions() {
    let s = BreakerSettings::default();
    let bad = samples(20, 10);
    let a = assess(&bad, NOW, None, &s);
    let state = BreakerState::Closed.trip(&a, NOW).unwrap();
    assert!(state.is_open());
    assert_eq!(state.trip(&a, NOW + 1), None, "already open");

    // Re-armed at NOW: the same samples (including one at NOW) no longer count.
    let after = assess(&bad, NOW + MIN, Some(NOW), &s);
    assert_eq!(after.decisions, 0);
    assert_eq!(BreakerState::Closed.trip(&after, NOW + MIN), None);

    // Fresh bad decisions after the re-arm open it again.
    let mut more = bad.clone();
    more.extend((1..=20).map(|i| DecisionSample {
        at_ms: NOW + i,
        corrected: i <= 4,
    }));
    let again = assess(&more, NOW + MIN, Some(NOW), &s);
    assert_eq!((again.decisions, again.corrections), (20, 4));
    assert!(again.should_open);
}

#[test]
fn an_open_breaker_sends_auto_and_log_to_review_and_leaves_the_rest() {
    let s = BreakerSettings::default();
    for (tier, want) in [
        (Tier::Auto, Tier::Review),
        (Tier::Log, Tier::Review),
        (Tier::Review, Tier::Review),
        (Tier::Dual, Tier::Dual),
        (Tier::Block, Tier::Block),
    ] {
        let e = apply(tier, &open(), &s);
        assert_eq!(e.tier, want, "{tier}");
        assert_eq!(e.raised, want != tier);
        assert!(!e.refused);
    }
}

#[test]
fn refuse_all_blocks_everything_and_says_so_unless_the_gate_blocked_already() {
    let s = BreakerSettings {
        on_open: OnOpen::RefuseAll,
        ..BreakerSettings::default()
    };
    let e = apply(Tier::Dual, &open(), &s);
    assert_eq!((e.tier, e.refused, e.raised), (Tier::Block, true, true));
    let e = apply(Tier::Block, &open(), &s);
    assert_eq!((e.tier, e.refused, e.raised), (Tier::Block, false, false));
    let closed = apply(Tier::Auto, &BreakerState::Closed, &s);
    assert_eq!((closed.tier, closed.refused), (Tier::Auto, false));
}

#[test]
fn the_strictest_breaker_of_a_request_wins() {
    let force = BreakerSettings::default();
    let refuse = BreakerSettings {
        on_open: OnOpen::RefuseAll,
        ..force
    };
    let closed = BreakerState::Closed;
    let e = apply_all(Tier::Auto, [(&open(), &force), (&closed, &refuse)]);
    assert_eq!((e.tier, e.refused), (Tier::Review, false));
    let e = apply_all(Tier::Auto, [(&open(), &force), (&open(), &refuse)]);
    assert_eq!((e.tier, e.refused), (Tier::Block, true));
    assert_eq!(apply_all(Tier::Log, []).tier, Tier::Log);
}

#[test]
fn invalid_settings_name_every_field() {
    let bad = BreakerSettings {
        rate: 0.0,
        window_ms: -5,
        min_decisions: 0,
        on_open: OnOpen::ForceReview,
    };
    let fields: Vec<_> = bad
        .validate()
        .unwrap_err()
        .iter()
        .map(|e| e.field)
        .collect();
    assert_eq!(fields, vec!["rate", "window_ms", "min_decisions"]);
    for rate in [f64::NAN, 1.0, 1.01, 0.0, -0.1] {
        let s = BreakerSettings {
            rate,
            ..BreakerSettings::default()
        };
        assert!(s.validate().is_err(), "{rate}");
    }
    let all_but_one = BreakerSettings {
        rate: 0.99,
        min_decisions: 1,
        ..BreakerSettings::default()
    };
    assert!(all_but_one.validate().is_ok());
    let long = BreakerSettings {
        window_ms: MAX_WINDOW_MS + 1,
        ..BreakerSettings::default()
    };
    assert_eq!(
        long.validate().unwrap_err()[0].to_string(),
        "window_ms: the window must be at most 90 days"
    );
}

#[test]
fn only_human_decisions_become_samples() {
    let corrected: Vec<_> = Outcome::ALL
        .into_iter()
        .map(|o| DecisionSample::from_outcome(5, o).map(|s| s.corrected))
        .collect();
    assert_eq!(
        corrected,
        vec![
            None,
            None,
            Some(false),
            Some(true),
            Some(true),
            None,
            None,
            None
        ]
    );
}

#[test]
fn scopes_read_as_what_they_cover() {
    let [agent, at_gate] = BreakerScope::for_request("refund-bot", "refunds");
    assert_eq!(agent.to_string(), "agent refund-bot");
    assert_eq!(at_gate.to_string(), "agent refund-bot at gate refunds");
    let json = serde_json::to_value(BreakerState::Closed).unwrap();
    assert_eq!(json, serde_json::json!({"state": "closed"}));
}

fn state() -> impl Strategy<Value = BreakerState> {
    prop_oneof![
        Just(BreakerState::Closed),
        (0u32..100).prop_map(|d| BreakerState::Open {
            since_ms: NOW,
            rate: 0.5,
            decisions: d,
            corrections: d / 2
        }),
    ]
}

fn settings() -> impl Strategy<Value = BreakerSettings> {
    (
        1u32..100,
        1i64..10_000,
        1u32..40,
        prop::bool::ANY.prop_map(|r| {
            if r {
                OnOpen::RefuseAll
            } else {
                OnOpen::ForceReview
            }
        }),
    )
        .prop_map(|(r, window_ms, min_decisions, on_open)| BreakerSettings {
            rate: f64::from(r) / 100.0,
            window_ms,
            min_decisions,
            on_open,
        })
}

fn sample_list() -> impl Strategy<Value = Vec<DecisionSample>> {
    prop::collection::vec(
        (-12_000i64..2_000, prop::bool::ANY).prop_map(|(o, corrected)| DecisionSample {
            at_ms: NOW + o,
            corrected,
        }),
        0..80,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn a_breaker_never_lowers_a_tier_and_a_closed_one_changes_nothing(
        t in 0usize..5, st in state(), s in settings()
    ) {
        let tier = Tier::ALL[t];
        let e = apply(tier, &st, &s);
        prop_assert!(e.tier >= tier);
        prop_assert_eq!(e.raised, e.tier > tier);
        prop_assert!(!e.refused || (e.tier == Tier::Block && e.raised));
        if tier == Tier::Block {
            prop_assert_eq!(e.tier, Tier::Block);
        }
        if st == BreakerState::Closed {
            prop_assert_eq!(e, BreakerEffect { tier, refused: false, raised: false });
        }
    }

    #[test]
    fn combining_breakers_ignores_their_order(
        t in 0usize..5, a in state(), b in state(), sa in settings(), sb in settings()
    ) {
        let tier = Tier::ALL[t];
        let ab = apply_all(tier, [(&a, &sa), (&b, &sb)]);
        prop_assert_eq!(ab, apply_all(tier, [(&b, &sb), (&a, &sa)]));
        prop_assert_eq!(ab.tier, apply(tier, &a, &sa).tier.strictest(apply(tier, &b, &sb).tier));
    }

    #[test]
    fn assessment_ignores_order_and_obeys_its_rule(
        v in sample_list(), s in settings(), rearm in prop::option::of(-12_000i64..2_000)
    ) {
        let rearmed = rearm.map(|r| NOW + r);
        let a = assess(&v, NOW, rearmed, &s);
        let mut rev = v.clone();
        rev.reverse();
        prop_assert_eq!(a, assess(&rev, NOW, rearmed, &s));
        let counted = v.iter().filter(|x| {
            x.at_ms > NOW - s.window_ms && x.at_ms <= NOW && rearmed.is_none_or(|r| x.at_ms > r)
        });
        prop_assert_eq!(a.decisions as usize, counted.clone().count());
        prop_assert_eq!(a.corrections as usize, counted.filter(|x| x.corrected).count());
        prop_assert!((0.0..=1.0).contains(&a.rate));
        prop_assert_eq!(a.should_open, a.decisions >= s.min_decisions && a.rate > s.rate);
    }

    #[test]
    fn another_correction_never_closes_what_would_open_and_rearming_now_clears_all(
        v in sample_list(), s in settings(), at in -500i64..=0
    ) {
        let before = assess(&v, NOW, None, &s);
        let mut more = v.clone();
        more.push(DecisionSample { at_ms: NOW + at, corrected: true });
        let after = assess(&more, NOW, None, &s);
        prop_assert!(!before.should_open || after.should_open);
        prop_assert_eq!(assess(&v, NOW, Some(NOW), &s).decisions, 0);
    }
}
