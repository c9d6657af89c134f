//! The distribution of a gated attribute over past requests, coloured by outcome, so an admin
//! can see where a threshold falls before moving it.
//!
//! Buckets are bounded the way policy compares, so that a threshold placed on an edge splits
//! the histogram exactly into "rule holds" and "rule does not hold":
//! - amounts and counts (`*_above`, strictly above): bucket `i` holds `edges[i] < v <= edges[i+1]`;
//! - confidence (`confidence_below`, strictly below): bucket `i` holds
//!   `edges[i] <= v < edges[i+1]`, the last bucket also holding its upper edge (1.0).

use crate::domain::money::{Currency, Money};
use crate::domain::policy::{Condition, GateDefinition};
use crate::domain::stats::{HistoricRequest, Outcome, OutcomeCounts};
use serde::{Deserialize, Serialize};

/// A gated attribute. Amounts are in minor units of one currency (a histogram cannot mix
/// currencies); requests in other currencies count as missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "attribute")]
pub enum Attribute {
    Amount { currency: Currency },
    Confidence,
    RecordCount,
    RecipientCount,
}

impl Attribute {
    /// The request's value of this attribute, if it stated one.
    pub fn value(&self, r: &HistoricRequest) -> Option<f64> {
        match self {
            Attribute::Amount { currency } => match (r.amount_minor, &r.currency) {
                (Some(minor), Some(c)) if c == currency.code() => Some(minor as f64),
                _ => None,
            },
            Attribute::Confidence => r.confidence,
            Attribute::RecordCount => r.record_count.map(|c| c as f64),
            Attribute::RecipientCount => r.recipient_count.map(|c| c as f64),
        }
    }

    fn is_below_kind(&self) -> bool {
        matches!(self, Attribute::Confidence)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    pub attribute: Attribute,
    /// `buckets.len() + 1` ascending edges (empty when no request stated the attribute).
    pub edges: Vec<f64>,
    pub buckets: Vec<OutcomeCounts>,
    /// Values below the first or above the last edge.
    pub under: OutcomeCounts,
    pub over: OutcomeCounts,
    /// Requests that did not state the attribute (policy treats the condition as holding).
    pub missing: OutcomeCounts,
}

/// Counts `records` into the buckets between `edges` (ascending), by outcome.
pub fn histogram<'a>(
    records: impl IntoIterator<Item = &'a HistoricRequest>,
    attribute: Attribute,
    edges: Vec<f64>,
) -> Histogram {
    histogram_of_values(
        records.into_iter().map(|r| (attribute.value(r), r.outcome)),
        attribute,
        edges,
    )
}

/// [`histogram`] over values already taken from the records (`None`: not stated), so a caller
/// streaming a large history can keep only the value and outcome of each request.
pub fn histogram_of_values(
    values: impl IntoIterator<Item = (Option<f64>, Outcome)>,
    attribute: Attribute,
    edges: Vec<f64>,
) -> Histogram {
    let mut h = Histogram {
        attribute,
        buckets: vec![OutcomeCounts::default(); edges.len().saturating_sub(1)],
        edges,
        under: OutcomeCounts::default(),
        over: OutcomeCounts::default(),
        missing: OutcomeCounts::default(),
    };
    let below_kind = attribute.is_below_kind();
    for (value, outcome) in values {
        let Some(v) = value else {
            h.missing.add(outcome);
            continue;
        };
        let n = h.edges.len();
        // k = edges on the "lower" side of v; bucket k-1 when 0 < k < n.
        let mut k = if below_kind {
            h.edges.partition_point(|e| *e <= v)
        } else {
            h.edges.partition_point(|e| *e < v)
        };
        if below_kind && k == n && n >= 2 && v == h.edges[n - 1] {
            k = n - 1;
        }
        let slot = match k {
            0 => &mut h.under,
            k if k >= n => &mut h.over,
            k => &mut h.buckets[k - 1],
        };
        slot.add(outcome);
    }
    h
}

/// `buckets` equal buckets over the attribute's observed range: confidence always over [0, 1],
/// amounts and counts over whole numbers from just below the smallest value to at least the
/// largest, so every stated value lands in a bucket.
pub fn even_edges(attribute: Attribute, min: f64, max: f64, buckets: usize) -> Vec<f64> {
    let n = buckets.max(1);
    if attribute.is_below_kind() {
        return (0..=n).map(|i| i as f64 / n as f64).collect();
    }
    let (lo, hi) = (min.floor() - 1.0, max.ceil().max(min.floor()));
    let width = ((hi - lo) / n as f64).ceil().max(1.0);
    (0..=n).map(|i| lo + i as f64 * width).collect()
}

/// The histogram of `attribute` over `records` in `buckets` even buckets (two passes: one for
/// the range, one to count).
pub fn distribution<'a, I>(records: I, attribute: Attribute, buckets: usize) -> Histogram
where
    I: IntoIterator<Item = &'a HistoricRequest> + Clone,
{
    let range = records
        .clone()
        .into_iter()
        .filter_map(|r| attribute.value(r))
        .fold(None, |acc: Option<(f64, f64)>, v| {
            Some(acc.map_or((v, v), |(lo, hi)| (lo.min(v), hi.max(v))))
        });
    let edges = match range {
        Some((min, max)) => even_edges(attribute, min, max, buckets),
        None => Vec::new(),
    };
    histogram(records, attribute, edges)
}

/// A threshold a gate's rule compares with, in the histogram's units, to mark on the chart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tunable {
    pub rule_key: String,
    pub attribute: Attribute,
    pub value: f64,
}

/// Every numeric threshold in `def`, in rule order (one per currency for amounts).
pub fn tunable_thresholds(def: &GateDefinition) -> Vec<Tunable> {
    let mut out = Vec::new();
    for rule in &def.rules {
        let mut push = |attribute, value| {
            out.push(Tunable {
                rule_key: rule.key.clone(),
                attribute,
                value,
            })
        };
        for c in &rule.when {
            match c {
                Condition::AmountAbove { thresholds } => {
                    for t in thresholds {
                        if let Ok(m) = Money::parse(&t.amount, &t.currency) {
                            let attribute = Attribute::Amount {
                                currency: m.currency,
                            };
                            push(attribute, m.minor as f64);
                        }
                    }
                }
                Condition::RecordCountAbove { count } => {
                    push(Attribute::RecordCount, *count as f64)
                }
                Condition::RecipientCountAbove { count } => {
                    push(Attribute::RecipientCount, *count as f64)
                }
                Condition::ConfidenceBelow { value } => push(Attribute::Confidence, *value),
                _ => {}
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::stats::{req, Outcome};
    use crate::domain::tier::Tier;

    fn eur() -> Attribute {
        Attribute::Amount {
            currency: Currency::parse("EUR").unwrap(),
        }
    }

    fn amount(minor: i64, currency: &str, outcome: Outcome) -> HistoricRequest {
        let mut r = req("r", "refunds", Tier::Review, outcome);
        r.amount_minor = Some(minor);
        r.currency = Some(currency.to_owned());
        r
    }

    #[test]
    fn amount_buckets_are_open_below_like_amount_above() {
        let h = [
            amount(100, "EUR", Outcome::ApprovedUnchanged), // on the first edge: under
            amount(101, "EUR", Outcome::Rejected),
            amount(200, "EUR", Outcome::ApprovedUnchanged), // on an edge: the lower bucket
            amount(201, "EUR", Outcome::ApprovedWithEdit),
            amount(300, "EUR", Outcome::ApprovedUnchanged),
            amount(301, "EUR", Outcome::ApprovedUnchanged), // over
            amount(150, "USD", Outcome::Rejected),          // another currency
            req("none", "refunds", Tier::Review, Outcome::Expired),
        ];
        let hist = histogram(&h, eur(), vec![100.0, 200.0, 300.0]);
        assert_eq!(hist.under.approved_unchanged, 1);
        assert_eq!(
            (hist.buckets[0].rejected, hist.buckets[0].approved_unchanged),
            (1, 1)
        );
        assert_eq!(hist.buckets[0].total(), 2);
        assert_eq!(hist.buckets[1].approved_with_edit, 1);
        assert_eq!(hist.buckets[1].total(), 2);
        assert_eq!(hist.over.total(), 1);
        assert_eq!(
            (hist.missing.rejected, hist.missing.expired),
            (1, 1),
            "USD and unstated"
        );
    }

    #[test]
    fn confidence_buckets_are_open_above_like_confidence_below() {
        let h: Vec<HistoricRequest> = [0.0, 0.5, 0.49, 0.99, 1.0]
            .into_iter()
            .map(|c| {
                let mut r = req("r", "g", Tier::Review, Outcome::ApprovedUnchanged);
                r.confidence = Some(c);
                r
            })
            .collect();
        let hist = distribution(&h, Attribute::Confidence, 2);
        assert_eq!(hist.edges, vec![0.0, 0.5, 1.0]);
        let counts: Vec<u64> = hist.buckets.iter().map(OutcomeCounts::total).collect();
        assert_eq!(
            counts,
            vec![2, 3],
            "0.5 is not below 0.5; 1.0 closes the last"
        );
        assert_eq!(hist.under.total() + hist.over.total(), 0);
    }

    #[test]
    fn even_edges_cover_every_stated_value() {
        let h: Vec<HistoricRequest> = [0, 7, 12, 40]
            .into_iter()
            .map(|n| {
                let mut r = req("r", "g", Tier::Review, Outcome::Rejected);
                r.record_count = Some(n);
                r
            })
            .collect();
        let hist = distribution(&h, Attribute::RecordCount, 4);
        assert_eq!(hist.edges, vec![-1.0, 10.0, 21.0, 32.0, 43.0]);
        let counts: Vec<u64> = hist.buckets.iter().map(OutcomeCounts::total).collect();
        assert_eq!(counts, vec![2, 1, 0, 1]);
        let none = distribution(&h, Attribute::RecipientCount, 4);
        assert!(none.edges.is_empty() && none.buckets.is_empty());
        assert_eq!(none.missing.rejected, 4);
        assert_eq!(even_edges(Attribute::RecordCount, 5.0, 5.0, 3).len(), 4);
    }

    #[test]
    fn tunable_thresholds_list_every_numeric_threshold() {
        let def: GateDefinition = serde_json::from_value(serde_json::json!({
            "key": "refunds", "name": "Refunds", "action_types": ["payment.refund"],
            "base_tier": "auto",
            "rules": [
                {"key": "big", "when": [{"attribute": "amount_above", "thresholds": [
                    {"amount": "1000", "currency": "EUR"}, {"amount": "1100", "currency": "USD"}]}],
                 "tier": "review"},
                {"key": "unsure", "when": [
                    {"attribute": "confidence_below", "value": 0.6},
                    {"attribute": "agent_in", "agents": ["bot"]}], "tier": "review"}
            ]
        }))
        .unwrap();
        let t = tunable_thresholds(&def);
        let shown: Vec<(&str, f64)> = t.iter().map(|t| (t.rule_key.as_str(), t.value)).collect();
        assert_eq!(
            shown,
            vec![("big", 100_000.0), ("big", 110_000.0), ("unsure", 0.6)]
        );
        assert_eq!(t[0].attribute, eur());
    }
}
