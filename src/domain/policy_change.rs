//! What a policy change does to strictness, for maker-checker on policy itself: a change that
//! could let any request through more easily than before (a lower tier, a raised threshold, a
//! removed rule, a narrowed condition) must be approved by a second admin before it is published.
//!
//! The analysis is conservative: [`loosenings`] lists every reason the new definition *might*
//! give some request a less strict tier; an empty list is a proof (by construction, and checked by
//! a property test against the real evaluation) that no request gets a less strict tier.

use super::money::{Currency, Money};
use super::policy::{Condition, GateDefinition, Threshold};
use std::collections::HashSet;

/// Why `new` may be looser than `old`, in words for the approving admin; empty when it is not.
pub fn loosenings(old: &GateDefinition, new: &GateDefinition) -> Vec<String> {
    let mut out = Vec::new();
    if new.base_tier < old.base_tier {
        out.push(format!(
            "base tier lowered from {} to {}",
            old.base_tier.as_str(),
            new.base_tier.as_str()
        ));
    }
    for pattern in &old.action_types {
        if !new.action_types.contains(pattern) {
            out.push(format!(
                "no longer applies to {pattern} (those requests may fall to a looser gate)"
            ));
        }
    }
    for pattern in &new.action_types {
        if !old.action_types.contains(pattern) {
            out.push(format!(
                "now also applies to {pattern} (requests no gate matched went to review)"
            ));
        }
    }
    // Not a tier, but a loosening all the same: more of each payload leaves for chat.
    let (was, now) = (&old.settings, &new.settings);
    if now.include_payload_in_chat && !was.include_payload_in_chat {
        out.push("payloads now included in chat and webhook notifications".to_owned());
    } else if now.include_payload_in_chat {
        for pointer in &was.redact_fields_in_chat {
            if !now.redact_fields_in_chat.contains(pointer) {
                out.push(format!(
                    "{pointer} no longer redacted in chat notifications"
                ));
            }
        }
    }
    for rule in &old.rules {
        let Some(updated) = new.rules.iter().find(|r| r.key == rule.key) else {
            out.push(format!("rule {} removed", rule.key));
            continue;
        };
        if updated.tier < rule.tier {
            out.push(format!(
                "rule {}: tier lowered from {} to {}",
                rule.key,
                rule.tier.as_str(),
                updated.tier.as_str()
            ));
        }
        // The new rule must hold whenever the old one did: each of its conditions must be
        // implied by some condition of the old rule.
        for condition in &updated.when {
            if !rule.when.iter().any(|c| implies(c, condition)) {
                out.push(format!(
                    "rule {}: {} now holds for fewer requests",
                    rule.key,
                    describe(condition)
                ));
            }
        }
    }
    out
}

/// Why publishing a brand-new gate may be looser than today: without it, the action types it
/// matches fail closed to `review`.
pub fn loosenings_of_new(new: &GateDefinition) -> Vec<String> {
    use super::tier::Tier;
    let mut out = Vec::new();
    if new.base_tier < Tier::Review {
        out.push(format!(
            "a new gate lets {} through at {} (unmatched requests go to review)",
            new.action_types.join(", "),
            new.base_tier.as_str()
        ));
    }
    out
}

fn describe(c: &Condition) -> String {
    match c {
        Condition::AmountAbove { thresholds } => format!(
            "amount above {}",
            thresholds
                .iter()
                .map(|t| format!("{} {}", t.amount, t.currency))
                .collect::<Vec<_>>()
                .join(" / ")
        ),
        Condition::RecordCountAbove { count } => format!("records above {count}"),
        Condition::RecipientCountAbove { count } => format!("recipients above {count}"),
        Condition::ConfidenceBelow { value } => format!("confidence below {value}"),
        Condition::CustomerTierIn { tiers } => format!("customer tier in {}", tiers.join(", ")),
        Condition::RiskClassIn { classes } => format!("risk class in {}", classes.join(", ")),
        Condition::AgentIn { agents } => format!("agent in {}", agents.join(", ")),
    }
}

fn parsed(thresholds: &[Threshold]) -> Option<Vec<Money>> {
    thresholds
        .iter()
        .map(|t| Money::parse(&t.amount, &t.currency).ok())
        .collect()
}

fn threshold_for(list: &[Money], currency: &Currency) -> Option<i64> {
    list.iter()
        .find(|m| m.currency == *currency)
        .map(|m| m.minor)
}

/// Whether `a` holding guarantees `weaker` holds, for every request.
fn implies(a: &Condition, weaker: &Condition) -> bool {
    let superset = |small: &[String], big: &[String]| {
        let big: HashSet<&String> = big.iter().collect();
        small.iter().all(|s| big.contains(s))
    };
    match (a, weaker) {
        (Condition::AmountAbove { thresholds: t }, Condition::AmountAbove { thresholds: w }) => {
            let (Some(t), Some(w)) = (parsed(t), parsed(w)) else {
                return false;
            };
            // Per currency: a missing threshold holds for every amount in that currency.
            w.iter().all(|wm| match threshold_for(&t, &wm.currency) {
                Some(tm) => wm.minor <= tm,
                None => false,
            })
        }
        (Condition::RecordCountAbove { count: t }, Condition::RecordCountAbove { count: w })
        | (
            Condition::RecipientCountAbove { count: t },
            Condition::RecipientCountAbove { count: w },
        ) => w <= t,
        (Condition::ConfidenceBelow { value: t }, Condition::ConfidenceBelow { value: w }) => {
            w >= t
        }
        (Condition::CustomerTierIn { tiers: t }, Condition::CustomerTierIn { tiers: w }) => {
            superset(t, w)
        }
        (Condition::RiskClassIn { classes: t }, Condition::RiskClassIn { classes: w }) => {
            superset(t, w)
        }
        (Condition::AgentIn { agents: t }, Condition::AgentIn { agents: w }) => superset(t, w),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::policy::properties::{condition, facts, gate};
    use crate::domain::policy::{compile, RuleDefinition};
    use crate::domain::tier::Tier;
    use proptest::prelude::*;

    fn refunds(threshold: &str, tier: Tier) -> GateDefinition {
        serde_json::from_value(serde_json::json!({
            "key": "refunds", "name": "Refunds", "action_types": ["payment.refund"], "base_tier": "auto",
            "rules": [{"key": "large", "when": [{"attribute": "amount_above",
                "thresholds": [{"amount": threshold, "currency": "EUR"}]}], "tier": tier}]
        }))
        .unwrap()
    }

    fn higher(g: &GateDefinition) -> GateDefinition {
        GateDefinition {
            base_tier: Tier::Review,
            ..g.clone()
        }
    }

    #[test]
    fn raising_a_threshold_or_lowering_a_tier_needs_a_second_admin() {
        let live = refunds("1000", Tier::Review);
        assert_eq!(loosenings(&live, &live), Vec::<String>::new());
        assert_eq!(
            loosenings(&live, &refunds("2000", Tier::Review)),
            vec!["rule large: amount above 2000 EUR now holds for fewer requests"]
        );
        assert!(
            loosenings(&live, &refunds("500", Tier::Review)).is_empty(),
            "lowering tightens"
        );
        assert_eq!(
            loosenings(&live, &refunds("1000", Tier::Log)),
            vec!["rule large: tier lowered from review to log"]
        );
        assert!(loosenings(&live, &refunds("1000", Tier::Dual)).is_empty());
        let mut other_types = live.clone();
        other_types.action_types = vec!["payment.vendor".into()];
        assert_eq!(
            loosenings(&live, &other_types).len(),
            2,
            "one removed, one added"
        );
        assert_eq!(
            loosenings_of_new(&live).len(),
            1,
            "a new gate with an auto base tier"
        );
        assert!(loosenings_of_new(&higher(&live)).is_empty());
        let mut no_rules = live.clone();
        no_rules.rules.clear();
        assert_eq!(loosenings(&live, &no_rules), vec!["rule large removed"]);
        let mut lower_base = live.clone();
        lower_base.base_tier = Tier::Auto;
        let mut higher_base = live.clone();
        higher_base.base_tier = Tier::Log;
        assert!(loosenings(&live, &lower_base).is_empty());
        assert_eq!(
            loosenings(&higher_base, &live),
            vec!["base tier lowered from log to auto"]
        );
    }

    #[test]
    fn sending_payloads_to_chat_needs_a_second_admin() {
        let live = refunds("1000", Tier::Review);
        let mut chatty = live.clone();
        chatty.settings.include_payload_in_chat = true;
        chatty.settings.redact_fields_in_chat = vec!["/iban".into()];
        assert_eq!(
            loosenings(&live, &chatty),
            vec!["payloads now included in chat and webhook notifications"]
        );
        assert!(
            loosenings(&chatty, &live).is_empty(),
            "turning it off tightens"
        );
        let mut unredacted = chatty.clone();
        unredacted.settings.redact_fields_in_chat.clear();
        assert_eq!(
            loosenings(&chatty, &unredacted),
            vec!["/iban no longer redacted in chat notifications"]
        );
        assert!(loosenings(&unredacted, &chatty).is_empty());
    }

    #[test]
    fn conditions_narrow_or_widen_as_sets_and_numbers_say() {
        let with = |when: Vec<Condition>| GateDefinition {
            settings: Default::default(),
            key: "g".into(),
            name: "G".into(),
            action_types: vec!["a.*".into()],
            base_tier: Tier::Auto,
            rules: vec![RuleDefinition {
                key: "r".into(),
                when,
                tier: Tier::Review,
            }],
        };
        let tiers = |t: &[&str]| Condition::CustomerTierIn {
            tiers: t.iter().map(|s| s.to_string()).collect(),
        };
        let base = with(vec![
            tiers(&["smb"]),
            Condition::ConfidenceBelow { value: 0.7 },
        ]);
        // Wider sets and higher confidence bounds hold more often: tighter, fine.
        assert!(loosenings(
            &base,
            &with(vec![
                tiers(&["smb", "enterprise"]),
                Condition::ConfidenceBelow { value: 0.8 }
            ])
        )
        .is_empty());
        // Dropping a condition widens the rule: fine.
        assert!(loosenings(&base, &with(vec![tiers(&["smb"])])).is_empty());
        // Adding a condition or narrowing one: needs approval.
        assert_eq!(
            loosenings(
                &base,
                &with(vec![
                    tiers(&["smb"]),
                    Condition::ConfidenceBelow { value: 0.6 }
                ])
            )
            .len(),
            1
        );
        assert_eq!(
            loosenings(
                &base,
                &with(vec![
                    tiers(&["smb"]),
                    Condition::ConfidenceBelow { value: 0.7 },
                    Condition::RecordCountAbove { count: 5 }
                ])
            )
            .len(),
            1
        );
        // A threshold in a new currency narrows the rule for that currency.
        let eur = with(vec![Condition::AmountAbove {
            thresholds: vec![Threshold {
                amount: "10".into(),
                currency: "EUR".into(),
            }],
        }]);
        let eur_usd = with(vec![Condition::AmountAbove {
            thresholds: vec![
                Threshold {
                    amount: "10".into(),
                    currency: "EUR".into(),
                },
                Threshold {
                    amount: "10".into(),
                    currency: "USD".into(),
                },
            ],
        }]);
        assert_eq!(loosenings(&eur, &eur_usd).len(), 1);
        assert!(
            loosenings(&eur_usd, &eur).is_empty(),
            "removing a currency's threshold widens"
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// The promise maker-checker rests on: a change with no loosenings never gives any
        /// request a less strict tier under the real evaluation.
        #[test]
        fn a_change_without_loosenings_never_lowers_a_tier(
            old in gate("a"),
            edits in prop::collection::vec((0usize..6, condition(), 0usize..5), 0..4),
            f in facts()
        ) {
            let mut new = old.clone();
            for (i, c, t) in edits {
                if new.rules.is_empty() { break; }
                let r = i % new.rules.len();
                match t {
                    0 => new.rules[r].when.push(c),
                    1 => new.rules[r].when = vec![c],
                    2 => { new.rules.remove(r); }
                    3 => new.rules[r].tier = Tier::ALL[i % 5],
                    _ => new.base_tier = Tier::ALL[i % 3],
                }
            }
            prop_assume!(compile(vec![(new.clone(), 2)]).is_ok());
            let before = compile(vec![(old.clone(), 1)]).unwrap().evaluate(&f.facts()).tier;
            let after = compile(vec![(new.clone(), 2)]).unwrap().evaluate(&f.facts()).tier;
            if loosenings(&old, &new).is_empty() {
                prop_assert!(after >= before, "{old:?} -> {new:?}");
            }
        }
    }
}
