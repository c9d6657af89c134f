//! Building a candidate policy: the live one with one gate changed, one rule at a time.

use crate::domain::policy::{compile, Condition, GateDefinition, Policy, PolicyError, Threshold};
use crate::domain::tier::Tier;
use serde::{Deserialize, Serialize};

/// The live policy with one gate replaced by `gate` (matched by key, given the next version
/// number) or, for a new key, added. Validated exactly as a saved policy would be.
pub fn candidate(live: &Policy, gate: GateDefinition) -> Result<Policy, PolicyError> {
    let mut gates: Vec<(GateDefinition, i64)> = Vec::new();
    let mut replacement = Some(gate);
    for (def, version) in live.gate_definitions() {
        match replacement.take_if(|g| g.key == def.key) {
            Some(g) => gates.push((g, version + 1)),
            None => gates.push((def.clone(), version)),
        }
    }
    if let Some(g) = replacement {
        gates.push((g, 1));
    }
    compile(gates)
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TuneError {
    #[error("gate {gate} has no rule {rule:?}")]
    UnknownRule { gate: String, rule: String },
    #[error("rule {rule} has no {attribute} condition")]
    NoSuchCondition {
        rule: String,
        attribute: &'static str,
    },
}

/// A new threshold for the conditions of one kind in a rule. Values are checked by [`compile`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "attribute")]
pub enum ThresholdChange {
    /// Replaces the threshold in `currency`, or adds one. Adding narrows the rule: amounts in a
    /// currency without a threshold always satisfied it.
    Amount {
        amount: String,
        currency: String,
    },
    RecordCount {
        count: i64,
    },
    RecipientCount {
        count: i64,
    },
    Confidence {
        value: f64,
    },
}

impl ThresholdChange {
    fn attribute(&self) -> &'static str {
        match self {
            ThresholdChange::Amount { .. } => "amount_above",
            ThresholdChange::RecordCount { .. } => "record_count_above",
            ThresholdChange::RecipientCount { .. } => "recipient_count_above",
            ThresholdChange::Confidence { .. } => "confidence_below",
        }
    }

    /// Applies to `c` if it is a condition of this kind; says whether it did.
    fn apply(&self, c: &mut Condition) -> bool {
        match (self, c) {
            (
                ThresholdChange::Amount { amount, currency },
                Condition::AmountAbove { thresholds },
            ) => match thresholds.iter_mut().find(|t| &t.currency == currency) {
                Some(t) => t.amount = amount.clone(),
                None => thresholds.push(Threshold {
                    amount: amount.clone(),
                    currency: currency.clone(),
                }),
            },
            (ThresholdChange::RecordCount { count }, Condition::RecordCountAbove { count: c })
            | (
                ThresholdChange::RecipientCount { count },
                Condition::RecipientCountAbove { count: c },
            ) => *c = *count,
            (ThresholdChange::Confidence { value }, Condition::ConfidenceBelow { value: v }) => {
                *v = *value
            }
            _ => return false,
        }
        true
    }
}

fn rule_index(def: &GateDefinition, rule_key: &str) -> Result<usize, TuneError> {
    def.rules
        .iter()
        .position(|r| r.key == rule_key)
        .ok_or_else(|| TuneError::UnknownRule {
            gate: def.key.clone(),
            rule: rule_key.to_owned(),
        })
}

/// `def` with a new threshold on every condition of that kind in rule `rule_key`.
pub fn with_threshold(
    def: &GateDefinition,
    rule_key: &str,
    change: &ThresholdChange,
) -> Result<GateDefinition, TuneError> {
    let ri = rule_index(def, rule_key)?;
    let mut out = def.clone();
    let mut applied = false;
    for c in &mut out.rules[ri].when {
        applied |= change.apply(c);
    }
    if !applied {
        return Err(TuneError::NoSuchCondition {
            rule: rule_key.to_owned(),
            attribute: change.attribute(),
        });
    }
    Ok(out)
}

/// `def` with rule `rule_key` assigning `tier` (e.g. `log` for a rubber-stamped rule). A tier
/// not stricter than the gate's base tier is refused by [`compile`]; use [`without_rule`].
pub fn with_rule_tier(
    def: &GateDefinition,
    rule_key: &str,
    tier: Tier,
) -> Result<GateDefinition, TuneError> {
    let ri = rule_index(def, rule_key)?;
    let mut out = def.clone();
    out.rules[ri].tier = tier;
    Ok(out)
}

/// `def` without rule `rule_key`: its requests fall back to the base tier or other rules.
pub fn without_rule(def: &GateDefinition, rule_key: &str) -> Result<GateDefinition, TuneError> {
    let ri = rule_index(def, rule_key)?;
    let mut out = def.clone();
    out.rules.remove(ri);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::backtest::tests::{live, refunds, with};

    #[test]
    fn candidate_builders_edit_one_rule_or_say_why_not() {
        let def = refunds("1000");
        let usd = ThresholdChange::Amount {
            amount: "1100".into(),
            currency: "USD".into(),
        };
        let added = with_threshold(&def, "large", &usd).unwrap();
        let Condition::AmountAbove { thresholds } = &added.rules[1].when[0] else {
            panic!("amount condition expected");
        };
        assert_eq!(thresholds.len(), 2, "a new currency is added");
        let fewer =
            with_threshold(&def, "unsure", &ThresholdChange::RecordCount { count: 3 }).unwrap();
        assert_eq!(
            fewer.rules[2].when[1],
            Condition::RecordCountAbove { count: 3 }
        );
        let surer =
            with_threshold(&def, "unsure", &ThresholdChange::Confidence { value: 0.5 }).unwrap();
        assert_eq!(
            surer.rules[2].when[0],
            Condition::ConfidenceBelow { value: 0.5 }
        );
        assert_eq!(
            with_threshold(&def, "nope", &usd),
            Err(TuneError::UnknownRule {
                gate: "refunds".into(),
                rule: "nope".into()
            })
        );
        let err = with_threshold(&def, "large", &ThresholdChange::RecipientCount { count: 1 })
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "rule large has no recipient_count_above condition"
        );

        let logged = with_rule_tier(&def, "large", Tier::Log).unwrap();
        assert_eq!(logged.rules[1].tier, Tier::Log);
        assert!(with_rule_tier(&def, "nope", Tier::Log).is_err());
        let gone = without_rule(&def, "over-100").unwrap();
        assert_eq!(gone.rules.len(), 2);
        assert!(without_rule(&def, "nope").is_err());
        let refused = with_rule_tier(&def, "over-100", Tier::Auto).unwrap();
        assert!(candidate(&live(), refused).is_err(), "compile validates");
    }

    #[test]
    fn candidate_replaces_the_gate_by_key_or_adds_it() {
        let p = with(refunds("2000"));
        let defs: Vec<(String, i64)> = p
            .gate_definitions()
            .map(|(d, v)| (d.key.clone(), v))
            .collect();
        assert_eq!(defs, vec![("refunds".to_owned(), 4)]);
        let mut other = refunds("1000");
        other.key = "other".into();
        other.action_types = vec!["email.*".into()];
        let p = candidate(&live(), other).unwrap();
        let keys: Vec<String> = p.gate_definitions().map(|(d, _)| d.key.clone()).collect();
        assert_eq!(keys, vec!["refunds", "other"]);
    }
}
