//! What the statistics and tuning screens read from their URLs, checked: the window, the
//! grouping, and the candidate change to backtest. Pure, so every rule about bad input is unit
//! tested and shared by the pages, the CSV download and the "save as draft" post.

use crate::domain::backtest::{self, Attribute, ThresholdChange, Tunable};
use crate::domain::money::Money;
use crate::domain::policy::GateDefinition;
use crate::domain::stats::{GroupBy, Outcome, Window};
use crate::domain::status::Status;
use crate::domain::tier::Tier;
use crate::error::AppError;
use serde::{Deserialize, Serialize};

pub const DAY: i64 = 86_400_000;
/// The window a page shows when the URL names none.
pub const DEFAULT_DAYS: i64 = 30;
/// Ten years: longer windows are a typo, not a question.
pub const MAX_DAYS: i64 = 3_650;

fn text(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

fn push(out: &mut Vec<String>, key: &str, v: &Option<String>) {
    if let Some(v) = text(v) {
        out.push(format!("{key}={}", crate::shell::query_escape(v)));
    }
}

/// The window as it arrives: `days` back from the end of today (UTC), or `from`/`to` days
/// (`YYYY-MM-DD`, both included). Dates win over `days` when given.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowQuery {
    pub days: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
}

impl WindowQuery {
    pub fn from_query(q: &leptos_router::params::ParamsMap) -> WindowQuery {
        WindowQuery {
            days: q.get("days"),
            from: q.get("from"),
            to: q.get("to"),
        }
    }

    fn push_to(&self, out: &mut Vec<String>) {
        push(out, "days", &self.days);
        push(out, "from", &self.from);
        push(out, "to", &self.to);
    }

    /// The checked window; days are whole UTC days, so trend buckets are calendar days.
    pub fn window(&self, now_ms: i64) -> Result<Window, AppError> {
        let end_of_today = (now_ms.div_euclid(DAY) + 1) * DAY;
        let day = |field: &str, v: &str| {
            crate::domain::time::parse_day(v).ok_or_else(|| {
                AppError::invalid(field, format!("{v:?} is not a date such as 2026-11-21"))
            })
        };
        let window = match (text(&self.from), text(&self.to)) {
            (None, None) => {
                let days = match text(&self.days) {
                    None => DEFAULT_DAYS,
                    Some(d) => d
                        .parse::<i64>()
                        .ok()
                        .filter(|d| (1..=MAX_DAYS).contains(d))
                        .ok_or_else(|| {
                            AppError::invalid(
                                "days",
                                format!("{d:?} is not a number of days from 1 to {MAX_DAYS}"),
                            )
                        })?,
                };
                Window {
                    from_ms: end_of_today - days * DAY,
                    to_ms: end_of_today,
                }
            }
            (from, to) => {
                let to_ms = match to {
                    Some(t) => day("to", t)? + DAY,
                    None => end_of_today,
                };
                let from_ms = match from {
                    Some(f) => day("from", f)?,
                    None => to_ms - DEFAULT_DAYS * DAY,
                };
                if from_ms >= to_ms {
                    return Err(AppError::invalid("from", "must not be after to"));
                }
                if to_ms - from_ms > MAX_DAYS * DAY {
                    return Err(AppError::invalid(
                        "from",
                        format!("the window is longer than {MAX_DAYS} days"),
                    ));
                }
                Window { from_ms, to_ms }
            }
        };
        Ok(window)
    }
}

/// The width of a trend bucket for a window: days up to a quarter, weeks up to two years, then
/// 30-day months, so a chart has between a handful and about a hundred bars.
pub fn bucket_ms(window: &Window) -> i64 {
    let days = (window.to_ms - window.from_ms) / DAY;
    if days <= 92 {
        DAY
    } else if days <= 731 {
        7 * DAY
    } else {
        30 * DAY
    }
}

pub const GROUPINGS: [(&str, &str); 5] = [
    ("gate", "Gate"),
    ("rule", "Rule"),
    ("agent", "Agent"),
    ("action_type", "Action type"),
    ("reviewer", "Reviewer"),
];

pub fn group_by(name: &str) -> Option<GroupBy> {
    Some(match name {
        "gate" => GroupBy::Gate,
        "rule" => GroupBy::Rule,
        "agent" => GroupBy::Agent,
        "action_type" => GroupBy::ActionType,
        "reviewer" => GroupBy::Reviewer,
        _ => return None,
    })
}

/// The statistics page's URL: a window, a grouping, and optionally one gate.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatsQuery {
    pub window: WindowQuery,
    pub group: Option<String>,
    pub gate: Option<String>,
}

/// A checked [`StatsQuery`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatsParams {
    pub window: Window,
    pub group_by: GroupBy,
    pub group_name: &'static str,
    pub gate: Option<String>,
    pub bucket_ms: i64,
}

impl StatsQuery {
    pub fn from_query(q: &leptos_router::params::ParamsMap) -> StatsQuery {
        StatsQuery {
            window: WindowQuery::from_query(q),
            group: q.get("group"),
            gate: q.get("gate"),
        }
    }

    /// The query as a URL query string (empty values left out), for links and downloads.
    pub fn query_string(&self) -> String {
        let mut out = Vec::new();
        self.window.push_to(&mut out);
        push(&mut out, "group", &self.group);
        push(&mut out, "gate", &self.gate);
        out.join("&")
    }

    pub fn parse(&self, now_ms: i64) -> Result<StatsParams, AppError> {
        let window = self.window.window(now_ms)?;
        let group_name = text(&self.group).unwrap_or("gate");
        let (group_name, group_by) = GROUPINGS
            .iter()
            .find(|(n, _)| *n == group_name)
            .and_then(|(n, _)| Some((*n, group_by(n)?)))
            .ok_or_else(|| {
                AppError::invalid(
                    "group",
                    format!(
                        "{group_name:?} is not one of gate, rule, agent, action_type, reviewer"
                    ),
                )
            })?;
        Ok(StatsParams {
            bucket_ms: bucket_ms(&window),
            window,
            group_by,
            group_name,
            gate: text(&self.gate).map(str::to_owned),
        })
    }
}

/// How a stored request ended, from its tier, status and (for a request that was approved and
/// then executed) the kind of the final human decision.
pub fn outcome_of(tier: Tier, status: Status, final_kind: Option<&str>) -> Outcome {
    match tier {
        Tier::Auto | Tier::Log => Outcome::AutoApproved,
        Tier::Block => Outcome::Blocked,
        Tier::Review | Tier::Dual => match status {
            Status::Pending | Status::InReview | Status::Escalated => Outcome::Pending,
            Status::Approved => Outcome::ApprovedUnchanged,
            Status::ApprovedWithEdit => Outcome::ApprovedWithEdit,
            Status::Rejected => Outcome::Rejected,
            Status::Expired => Outcome::Expired,
            Status::Withdrawn => Outcome::Withdrawn,
            // Execution does not say what was approved; the final decision does.
            Status::Executed | Status::ExecutionFailed => match final_kind {
                Some("approve_with_edit") => Outcome::ApprovedWithEdit,
                _ => Outcome::ApprovedUnchanged,
            },
        },
    }
}

/// A threshold's id in URLs: `rule:attribute`, with the currency for amounts
/// (`over-1000:amount:EUR`).
pub fn tunable_id(t: &Tunable) -> String {
    match t.attribute {
        Attribute::Amount { currency } => format!("{}:amount:{}", t.rule_key, currency.code()),
        Attribute::Confidence => format!("{}:confidence", t.rule_key),
        Attribute::RecordCount => format!("{}:record_count", t.rule_key),
        Attribute::RecipientCount => format!("{}:recipient_count", t.rule_key),
    }
}

/// A value of `attribute` as a person writes it: amounts in major units with the currency.
pub fn value_text(attribute: Attribute, v: f64) -> String {
    match attribute {
        Attribute::Amount { currency } => Money::from_minor(v.round() as i64, currency).to_string(),
        Attribute::Confidence => format!("{v:.2}"),
        Attribute::RecordCount | Attribute::RecipientCount => {
            crate::inbox::group_digits(v.round() as i64)
        }
    }
}

/// The same value as the threshold box takes it (no grouping, no currency).
pub fn input_text(attribute: Attribute, v: f64) -> String {
    match attribute {
        Attribute::Amount { currency } => {
            Money::from_minor(v.round() as i64, currency).to_decimal_string()
        }
        Attribute::Confidence => format!("{v}"),
        Attribute::RecordCount | Attribute::RecipientCount => format!("{}", v.round() as i64),
    }
}

pub fn attribute_label(attribute: Attribute) -> String {
    match attribute {
        Attribute::Amount { currency } => format!("amount ({})", currency.code()),
        Attribute::Confidence => "confidence".into(),
        Attribute::RecordCount => "record count".into(),
        Attribute::RecipientCount => "recipient count".into(),
    }
}

/// The tuning screen's URL: a window, which threshold to show, and the candidate change: a new
/// `value` for threshold `t`, or a new `tier` (or `remove`) for `rule`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TuneQuery {
    pub window: WindowQuery,
    pub t: Option<String>,
    pub value: Option<String>,
    pub rule: Option<String>,
    pub tier: Option<String>,
}

/// A checked candidate: the gate definition to backtest, and what changed, in words.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub definition: GateDefinition,
    pub description: String,
    /// The candidate threshold in histogram units, to mark on the chart.
    pub marker: Option<(Tunable, f64)>,
}

impl TuneQuery {
    pub fn from_query(q: &leptos_router::params::ParamsMap) -> TuneQuery {
        TuneQuery {
            window: WindowQuery::from_query(q),
            t: q.get("t"),
            value: q.get("value"),
            rule: q.get("rule"),
            tier: q.get("tier"),
        }
    }

    pub fn window_string(&self) -> String {
        let mut out = Vec::new();
        self.window.push_to(&mut out);
        out.join("&")
    }

    pub fn query_string(&self) -> String {
        let mut out = Vec::new();
        self.window.push_to(&mut out);
        push(&mut out, "t", &self.t);
        push(&mut out, "value", &self.value);
        push(&mut out, "rule", &self.rule);
        push(&mut out, "tier", &self.tier);
        out.join("&")
    }

    /// The threshold the page charts: the one named by `t`, else the first of the gate's.
    pub fn shown(&self, tunables: &[Tunable]) -> Result<Option<Tunable>, AppError> {
        match text(&self.t) {
            None => Ok(tunables.first().cloned()),
            Some(id) => tunables
                .iter()
                .find(|t| tunable_id(t) == id)
                .cloned()
                .map(Some)
                .ok_or_else(|| {
                    AppError::invalid("t", format!("this gate has no threshold {id:?}"))
                }),
        }
    }

    /// The candidate definition for the live gate `def`, or `None` when the URL asks for no
    /// change. Bad text is refused with the field named; [`backtest::candidate`] then checks the
    /// whole policy as publishing would.
    pub fn candidate(&self, def: &GateDefinition) -> Result<Option<Candidate>, AppError> {
        if let Some(value) = text(&self.value) {
            let tunables = backtest::tunable_thresholds(def);
            let Some(t) = self.shown(&tunables)? else {
                return Err(AppError::invalid(
                    "t",
                    "this gate has no numeric threshold to move",
                ));
            };
            let (change, v) = threshold_change(t.attribute, value)?;
            let definition = backtest::with_threshold(def, &t.rule_key, &change)
                .map_err(|e| AppError::invalid("t", e.to_string()))?;
            let description = format!(
                "rule {}: {} threshold {} instead of {}",
                t.rule_key,
                attribute_label(t.attribute),
                value_text(t.attribute, v),
                value_text(t.attribute, t.value)
            );
            return Ok(Some(Candidate {
                definition,
                description,
                marker: Some((t, v)),
            }));
        }
        match (text(&self.rule), text(&self.tier)) {
            (None, None) => Ok(None),
            (None, Some(_)) => Err(AppError::invalid("rule", "choose the rule to change")),
            (Some(_), None) => Err(AppError::invalid("tier", "choose the rule's new tier")),
            (Some(rule), Some("remove")) => Ok(Some(Candidate {
                definition: backtest::without_rule(def, rule)
                    .map_err(|e| AppError::invalid("rule", e.to_string()))?,
                description: format!("rule {rule} removed"),
                marker: None,
            })),
            (Some(rule), Some(tier)) => {
                let tier: Tier = tier
                    .parse()
                    .map_err(|e: crate::domain::tier::UnknownTier| {
                        AppError::invalid("tier", e.to_string())
                    })?;
                let definition = backtest::with_rule_tier(def, rule, tier)
                    .map_err(|e| AppError::invalid("rule", e.to_string()))?;
                Ok(Some(Candidate {
                    definition,
                    description: format!("rule {rule} assigns {tier}"),
                    marker: None,
                }))
            }
        }
    }
}

/// Parses a threshold typed for `attribute`; returns the change and its value in histogram
/// units (minor units for amounts).
pub fn threshold_change(
    attribute: Attribute,
    value: &str,
) -> Result<(ThresholdChange, f64), AppError> {
    let bad = |why: String| AppError::invalid("value", why);
    match attribute {
        Attribute::Amount { currency } => {
            let m = Money::parse(value, currency.code()).map_err(|e| bad(e.to_string()))?;
            Ok((
                ThresholdChange::Amount {
                    amount: m.to_decimal_string(),
                    currency: currency.code().to_owned(),
                },
                m.minor as f64,
            ))
        }
        Attribute::Confidence => {
            let v = value
                .parse::<f64>()
                .ok()
                .filter(|v| (0.0..=1.0).contains(v))
                .ok_or_else(|| bad(format!("{value:?} is not a confidence from 0 to 1")))?;
            Ok((ThresholdChange::Confidence { value: v }, v))
        }
        Attribute::RecordCount | Attribute::RecipientCount => {
            let n = value
                .replace([',', '_'], "")
                .parse::<i64>()
                .ok()
                .filter(|n| *n >= 0)
                .ok_or_else(|| bad(format!("{value:?} is not a whole number of 0 or more")))?;
            let change = if attribute == Attribute::RecordCount {
                ThresholdChange::RecordCount { count: n }
            } else {
                ThresholdChange::RecipientCount { count: n }
            };
            Ok((change, n as f64))
        }
    }
}

/// Round bucket edges from 0 to at least `hi`, about `buckets` of them, with a 1-2-5 step so
/// thresholds (usually round numbers) fall on an edge and split the chart exactly. For whole
/// units (minor units of money, counts), so the step is at least 1.
pub fn nice_edges(hi: f64, buckets: u32) -> Vec<f64> {
    let buckets = buckets.max(1);
    let hi = if hi.is_finite() && hi > 0.0 { hi } else { 1.0 };
    let raw = hi / f64::from(buckets);
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * magnitude)
        .max(1.0);
    let n = (hi / step).ceil().max(1.0) as usize;
    (0..=n).map(|i| i as f64 * step).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_795_219_200_000 + 10 * 3_600_000; // 2026-11-21T10:00Z

    fn w(days: &str) -> WindowQuery {
        WindowQuery {
            days: Some(days.into()),
            ..WindowQuery::default()
        }
    }

    #[test]
    fn windows_are_whole_utc_days_and_bad_ones_are_named() {
        let midnight_after = 1_795_219_200_000 + DAY;
        let d = WindowQuery::default().window(NOW).unwrap();
        assert_eq!(
            (d.from_ms, d.to_ms),
            (midnight_after - 30 * DAY, midnight_after)
        );
        assert_eq!(
            w("7").window(NOW).unwrap().from_ms,
            midnight_after - 7 * DAY
        );
        for bad in ["0", "-3", "x", "3651", "1.5"] {
            let e = w(bad).window(NOW).unwrap_err();
            assert!(e.to_string().starts_with("days: "), "{bad}: {e}");
        }
        let dates = WindowQuery {
            from: Some("2026-11-01".into()),
            to: Some("2026-11-02".into()),
            days: Some("nonsense, ignored".into()),
        };
        let d = dates.window(NOW).unwrap();
        assert_eq!(d.to_ms - d.from_ms, 2 * DAY, "both days included");
        let backwards = WindowQuery {
            from: Some("2026-11-03".into()),
            to: Some("2026-11-02".into()),
            ..WindowQuery::default()
        };
        assert!(backwards
            .window(NOW)
            .unwrap_err()
            .to_string()
            .contains("after"));
        let typo = WindowQuery {
            from: Some("2026-02-30".into()),
            ..WindowQuery::default()
        };
        assert!(typo
            .window(NOW)
            .unwrap_err()
            .to_string()
            .starts_with("from: "));
    }

    #[test]
    fn buckets_keep_charts_readable() {
        let span = |days| Window {
            from_ms: 0,
            to_ms: days * DAY,
        };
        assert_eq!(bucket_ms(&span(30)), DAY);
        assert_eq!(bucket_ms(&span(92)), DAY);
        assert_eq!(bucket_ms(&span(365)), 7 * DAY);
        assert_eq!(bucket_ms(&span(3650)), 30 * DAY);
    }

    #[test]
    fn stats_query_parses_groupings_and_round_trips() {
        let q = StatsQuery {
            window: w("90"),
            group: Some("reviewer".into()),
            gate: Some("refunds".into()),
        };
        let p = q.parse(NOW).unwrap();
        assert_eq!(p.group_by, GroupBy::Reviewer);
        assert_eq!(p.bucket_ms, DAY);
        assert_eq!(p.gate.as_deref(), Some("refunds"));
        assert_eq!(q.query_string(), "days=90&group=reviewer&gate=refunds");
        let default = StatsQuery::default().parse(NOW).unwrap();
        assert_eq!(
            (default.group_by, default.group_name),
            (GroupBy::Gate, "gate")
        );
        let bad = StatsQuery {
            group: Some("colour".into()),
            ..StatsQuery::default()
        };
        assert!(bad
            .parse(NOW)
            .unwrap_err()
            .to_string()
            .starts_with("group: "));
        for (name, _) in GROUPINGS {
            assert!(group_by(name).is_some(), "{name}");
        }
    }

    #[test]
    fn outcomes_come_from_tier_status_and_final_decision() {
        use Outcome::*;
        let o = |tier, status, kind| outcome_of(tier, status, kind);
        assert_eq!(o(Tier::Auto, Status::Executed, None), AutoApproved);
        assert_eq!(o(Tier::Log, Status::Approved, None), AutoApproved);
        assert_eq!(o(Tier::Block, Status::Rejected, None), Blocked);
        assert_eq!(o(Tier::Review, Status::InReview, None), Pending);
        assert_eq!(o(Tier::Dual, Status::Escalated, None), Pending);
        assert_eq!(
            o(Tier::Review, Status::Approved, Some("approve")),
            ApprovedUnchanged
        );
        assert_eq!(
            o(Tier::Review, Status::ApprovedWithEdit, None),
            ApprovedWithEdit
        );
        assert_eq!(o(Tier::Review, Status::Rejected, Some("reject")), Rejected);
        assert_eq!(o(Tier::Review, Status::Expired, None), Expired);
        assert_eq!(o(Tier::Review, Status::Withdrawn, None), Withdrawn);
        assert_eq!(
            o(Tier::Review, Status::Executed, Some("approve_with_edit")),
            ApprovedWithEdit
        );
        assert_eq!(
            o(Tier::Review, Status::ExecutionFailed, Some("approve")),
            ApprovedUnchanged
        );
    }

    fn refunds() -> GateDefinition {
        serde_json::from_value(serde_json::json!({
            "key": "refunds", "name": "Refunds", "action_types": ["payment.refund"],
            "base_tier": "auto",
            "rules": [
                {"key": "over-100", "when": [{"attribute": "amount_above", "thresholds": [{"amount": "100", "currency": "EUR"}]}], "tier": "log"},
                {"key": "large", "when": [{"attribute": "amount_above", "thresholds": [{"amount": "1000", "currency": "EUR"}, {"amount": "1100", "currency": "USD"}]}], "tier": "review"},
                {"key": "unsure", "when": [{"attribute": "confidence_below", "value": 0.7}, {"attribute": "record_count_above", "count": 10}], "tier": "dual"}
            ]
        }))
        .unwrap()
    }

    fn tq(t: &str, value: &str, rule: &str, tier: &str) -> TuneQuery {
        let o = |s: &str| (!s.is_empty()).then(|| s.to_owned());
        TuneQuery {
            window: WindowQuery::default(),
            t: o(t),
            value: o(value),
            rule: o(rule),
            tier: o(tier),
        }
    }

    #[test]
    fn candidates_move_one_threshold_or_one_rule_tier() {
        let def = refunds();
        let ids: Vec<String> = backtest::tunable_thresholds(&def)
            .iter()
            .map(tunable_id)
            .collect();
        assert_eq!(
            ids,
            vec![
                "over-100:amount:EUR",
                "large:amount:EUR",
                "large:amount:USD",
                "unsure:confidence",
                "unsure:record_count"
            ]
        );
        assert_eq!(tq("", "", "", "").candidate(&def).unwrap(), None);

        let c = tq("large:amount:EUR", "2000", "", "")
            .candidate(&def)
            .unwrap()
            .unwrap();
        assert_eq!(
            c.description,
            "rule large: amount (EUR) threshold 2,000.00 EUR instead of 1,000.00 EUR"
        );
        assert_eq!(c.marker.as_ref().unwrap().1, 200_000.0);
        let want = backtest::with_threshold(
            &def,
            "large",
            &ThresholdChange::Amount {
                amount: "2000.00".into(),
                currency: "EUR".into(),
            },
        )
        .unwrap();
        assert_eq!(c.definition, want);

        let c = tq("unsure:record_count", "1,000", "", "")
            .candidate(&def)
            .unwrap()
            .unwrap();
        assert_eq!(
            c.definition.rules[2].when[1],
            crate::domain::policy::Condition::RecordCountAbove { count: 1000 }
        );
        let c = tq("", "", "large", "log").candidate(&def).unwrap().unwrap();
        assert_eq!(c.definition.rules[1].tier, Tier::Log);
        let c = tq("", "", "over-100", "remove")
            .candidate(&def)
            .unwrap()
            .unwrap();
        assert_eq!(c.definition.rules.len(), 2);
    }

    #[test]
    fn bad_candidates_name_the_field() {
        let def = refunds();
        let err = |q: TuneQuery| q.candidate(&def).unwrap_err().to_string();
        assert!(err(tq("large:amount:EUR", "lots", "", "")).starts_with("value: "));
        assert!(err(tq("large:amount:EUR", "-5", "", "")).starts_with("value: "));
        assert!(err(tq("large:amount:EUR", "10.001", "", "")).starts_with("value: "));
        assert!(err(tq("unsure:confidence", "1.5", "", "")).starts_with("value: "));
        assert!(err(tq("unsure:record_count", "2.5", "", "")).starts_with("value: "));
        assert!(err(tq("nope:confidence", "0.5", "", "")).starts_with("t: "));
        assert!(err(tq("", "", "nope", "log")).starts_with("rule: "));
        assert!(err(tq("", "", "large", "sometimes")).starts_with("tier: "));
        assert!(err(tq("", "", "large", "")).starts_with("tier: "));
        assert!(err(tq("", "", "", "log")).starts_with("rule: "));
    }

    #[test]
    fn nice_edges_are_round_and_cover_the_range() {
        assert_eq!(
            nice_edges(100.0, 10),
            (0..=10).map(|i| i as f64 * 10.0).collect::<Vec<_>>()
        );
        let e = nice_edges(432_100.0, 20);
        assert_eq!(e[1], 25_000.0, "a 1-2-2.5-5 step");
        assert!(*e.last().unwrap() >= 432_100.0);
        assert!(e.len() <= 21);
        assert_eq!(nice_edges(0.0, 5), vec![0.0, 1.0], "whole units");
        assert_eq!(
            nice_edges(7.0, 20),
            (0..=7).map(f64::from).collect::<Vec<_>>()
        );
    }

    #[test]
    fn values_read_as_people_write_them() {
        let eur = Attribute::Amount {
            currency: crate::domain::money::Currency::parse("EUR").unwrap(),
        };
        assert_eq!(value_text(eur, 123_456.0), "1,234.56 EUR");
        assert_eq!(input_text(eur, 123_456.0), "1234.56");
        assert_eq!(value_text(Attribute::RecordCount, 12_000.0), "12,000");
        assert_eq!(input_text(Attribute::Confidence, 0.7), "0.7");
        assert_eq!(value_text(Attribute::Confidence, 0.7), "0.70");
    }
}
