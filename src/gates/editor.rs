//! The gate editor's forms, as pure functions: each rule condition is one attribute and one line
//! of text ("1000 EUR, 1100 USD", "500", "0.7", "enterprise, strategic"), so admins edit rules
//! in plain form fields and never have to write JSON.

use crate::domain::policy::{Condition, Threshold};

/// The attributes a condition can test, with their form names and labels.
pub const ATTRIBUTES: [(&str, &str); 7] = [
    ("amount_above", "Amount above"),
    ("record_count_above", "Records above"),
    ("recipient_count_above", "Recipients above"),
    ("confidence_below", "Confidence below"),
    ("customer_tier_in", "Customer tier is one of"),
    ("risk_class_in", "Risk class is one of"),
    ("agent_in", "Agent is one of"),
];

/// A condition as form fields: its attribute and its value as text.
pub fn condition_text(c: &Condition) -> (&'static str, String) {
    match c {
        Condition::AmountAbove { thresholds } => (
            "amount_above",
            thresholds
                .iter()
                .map(|t| format!("{} {}", t.amount, t.currency))
                .collect::<Vec<_>>()
                .join(", "),
        ),
        Condition::RecordCountAbove { count } => ("record_count_above", count.to_string()),
        Condition::RecipientCountAbove { count } => ("recipient_count_above", count.to_string()),
        Condition::ConfidenceBelow { value } => ("confidence_below", value.to_string()),
        Condition::CustomerTierIn { tiers } => ("customer_tier_in", tiers.join(", ")),
        Condition::RiskClassIn { classes } => ("risk_class_in", classes.join(", ")),
        Condition::AgentIn { agents } => ("agent_in", agents.join(", ")),
    }
}

fn list(text: &str) -> Vec<String> {
    text.split(',')
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

/// Reads a condition from form fields; the error says what was expected. Amounts and
/// currencies are checked again when the policy compiles.
pub fn parse_condition(attribute: &str, text: &str) -> Result<Condition, String> {
    let text = text.trim();
    let count = |what: &str| {
        text.parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .ok_or_else(|| format!("{what} must be a whole number, 0 or more, not {text:?}"))
    };
    let names = |what: &str| {
        let items = list(text);
        if items.is_empty() {
            Err(format!("list at least one {what}, separated by commas"))
        } else {
            Ok(items)
        }
    };
    Ok(match attribute {
        "amount_above" => {
            let mut thresholds = Vec::new();
            for item in list(text) {
                let mut parts = item.split_whitespace();
                match (parts.next(), parts.next(), parts.next()) {
                    (Some(amount), Some(currency), None) => thresholds.push(Threshold {
                        amount: amount.replace(['\u{a0}', '_'], ""),
                        currency: currency.to_uppercase(),
                    }),
                    _ => {
                        return Err(format!(
                            "write each threshold as an amount and a currency, e.g. \"1000 EUR, 1100 USD\"; {item:?} is not"
                        ))
                    }
                }
            }
            if thresholds.is_empty() {
                return Err("give at least one threshold, e.g. \"1000 EUR\"".into());
            }
            Condition::AmountAbove { thresholds }
        }
        "record_count_above" => Condition::RecordCountAbove {
            count: count("the record count")?,
        },
        "recipient_count_above" => Condition::RecipientCountAbove {
            count: count("the recipient count")?,
        },
        "confidence_below" => Condition::ConfidenceBelow {
            value: text
                .parse::<f64>()
                .ok()
                .filter(|v| (0.0..=1.0).contains(v))
                .ok_or_else(|| format!("confidence must be between 0 and 1, not {text:?}"))?,
        },
        "customer_tier_in" => Condition::CustomerTierIn {
            tiers: names("customer tier")?,
        },
        "risk_class_in" => Condition::RiskClassIn {
            classes: names("risk class")?,
        },
        "agent_in" => Condition::AgentIn {
            agents: names("agent")?,
        },
        other => return Err(format!("{other:?} is not a condition this editor knows")),
    })
}

/// Action type patterns from a comma-separated field.
pub fn parse_action_types(text: &str) -> Vec<String> {
    list(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_condition_round_trips_through_its_form_text() {
        let samples = [
            ("amount_above", "1000 EUR, 1100.50 USD"),
            ("record_count_above", "500"),
            ("recipient_count_above", "0"),
            ("confidence_below", "0.7"),
            ("customer_tier_in", "enterprise, strategic"),
            ("risk_class_in", "high"),
            ("agent_in", "refund-bot"),
        ];
        for (attribute, text) in samples {
            let c = parse_condition(attribute, text).unwrap();
            assert_eq!(condition_text(&c), (attribute, text.to_owned()));
        }
        assert_eq!(samples.len(), ATTRIBUTES.len());
    }

    #[test]
    fn bad_values_are_explained() {
        for (attribute, text, expect) in [
            ("amount_above", "1000", "amount and a currency"),
            ("amount_above", "", "at least one threshold"),
            ("record_count_above", "-1", "whole number"),
            ("record_count_above", "ten", "whole number"),
            ("confidence_below", "1.5", "between 0 and 1"),
            ("customer_tier_in", " , ", "at least one customer tier"),
            ("colour_is", "red", "not a condition"),
        ] {
            let err = parse_condition(attribute, text).unwrap_err();
            assert!(err.contains(expect), "{attribute} {text:?}: {err}");
        }
        assert_eq!(
            parse_condition("amount_above", "1000 eur").unwrap(),
            Condition::AmountAbove {
                thresholds: vec![Threshold {
                    amount: "1000".into(),
                    currency: "EUR".into()
                }]
            }
        );
    }
}
