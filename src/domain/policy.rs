//! Gate policy: which tier an action request gets, and why.
//!
//! A [`GateDefinition`] is what an admin writes (and what is stored, as JSON, per gate version).
//! [`compile`] validates a set of definitions into a [`Policy`]; [`Policy::evaluate`] is the pure,
//! allocation-light function every request goes through.
//!
//! Semantics, chosen so that a policy can only fail closed:
//! - Every gate whose action patterns match the request is evaluated; no match means `review`.
//! - Within a gate the tier is the strictest of the gate's base tier and every rule whose
//!   conditions all hold. Across gates the strictest gate wins. Adding a rule therefore never
//!   makes any request's tier less strict.
//! - A condition on an attribute the request does not carry holds: an amount that was not stated
//!   cannot be shown to be under a threshold. The explanation says so.
//! - An amount threshold in one currency holds for amounts in a currency it has no threshold for.

use super::money::{Currency, Money, MoneyError};
use super::tier::Tier;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;

/// A gate as an admin writes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GateDefinition {
    /// Stable identifier (slug), e.g. `refunds`.
    pub key: String,
    pub name: String,
    /// Action types this gate applies to: exact (`payment.refund`) or prefix (`payment.*`).
    pub action_types: Vec<String>,
    /// The tier when no rule raises it.
    pub base_tier: Tier,
    #[serde(default)]
    pub rules: Vec<RuleDefinition>,
    /// Deadline, reminder, escalation, eligibility, reasons, payload schema, sampling,
    /// notification redaction, dual-review rules and the circuit breaker.
    #[serde(default)]
    pub settings: super::gate_settings::GateSettings,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleDefinition {
    /// Stable identifier within the gate, e.g. `large-refund`.
    pub key: String,
    /// All conditions must hold for the rule to apply.
    pub when: Vec<Condition>,
    pub tier: Tier,
}

/// One test over a request attribute.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "attribute", deny_unknown_fields)]
pub enum Condition {
    /// Amount strictly above a threshold; thresholds per currency.
    AmountAbove {
        thresholds: Vec<Threshold>,
    },
    RecordCountAbove {
        count: i64,
    },
    RecipientCountAbove {
        count: i64,
    },
    /// Confidence strictly below a value in [0, 1].
    ConfidenceBelow {
        value: f64,
    },
    CustomerTierIn {
        tiers: Vec<String>,
    },
    RiskClassIn {
        classes: Vec<String>,
    },
    AgentIn {
        agents: Vec<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Threshold {
    /// Decimal string, e.g. "1000.00".
    pub amount: String,
    pub currency: String,
}

/// The attributes of a request that policy looks at.
#[derive(Debug, Clone, Copy, Default)]
pub struct Facts<'a> {
    pub action_type: &'a str,
    pub agent: &'a str,
    pub amount: Option<Money>,
    pub record_count: Option<i64>,
    pub recipient_count: Option<i64>,
    pub confidence: Option<f64>,
    pub customer_tier: Option<&'a str>,
    pub risk_class: Option<&'a str>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PolicyError {
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
}

fn invalid(path: impl Into<String>, message: impl Into<String>) -> PolicyError {
    PolicyError::Invalid {
        path: path.into(),
        message: message.into(),
    }
}

/// A validated, ready-to-evaluate set of gates, each with its version.
#[derive(Debug, Clone)]
pub struct Policy {
    gates: Vec<CompiledGate>,
}

#[derive(Debug, Clone)]
struct CompiledGate {
    definition: GateDefinition,
    version: i64,
    patterns: Vec<Pattern>,
    rules: Vec<Vec<CompiledCondition>>,
}

#[derive(Debug, Clone)]
enum Pattern {
    Exact(String),
    Prefix(String),
}

impl Pattern {
    fn matches(&self, action_type: &str) -> bool {
        match self {
            Pattern::Exact(s) => s == action_type,
            Pattern::Prefix(p) => action_type.starts_with(p.as_str()),
        }
    }
}

#[derive(Debug, Clone)]
enum CompiledCondition {
    AmountAbove(Vec<Money>),
    RecordCountAbove(i64),
    RecipientCountAbove(i64),
    ConfidenceBelow(f64),
    CustomerTierIn(Vec<String>),
    RiskClassIn(Vec<String>),
    AgentIn(Vec<String>),
}

/// The outcome of evaluating one request.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    pub tier: Tier,
    /// The gates that matched, strictest first; empty when none matched (fail closed).
    pub gates: Vec<GateOutcome>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct GateOutcome {
    pub gate_key: String,
    pub version: i64,
    pub tier: Tier,
    /// Keys of the rules whose conditions all held.
    pub matched_rules: Vec<String>,
}

impl Evaluation {
    /// The gate that decided the tier, if any gate matched.
    pub fn deciding_gate(&self) -> Option<&GateOutcome> {
        self.gates.first()
    }
}

fn valid_key(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

fn compile_pattern(path: &str, p: &str) -> Result<Pattern, PolicyError> {
    let body = p.strip_suffix('*');
    let core = body.unwrap_or(p);
    let ok_chars = core.bytes().all(|b| {
        b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'_' || b == b'-'
    });
    if !ok_chars || core.contains('*') || (body.is_none() && core.is_empty()) || core.len() > 128 {
        return Err(invalid(
            path,
            format!(
                "{p:?} is not an action type such as payment.refund or a prefix such as payment.*"
            ),
        ));
    }
    Ok(match body {
        Some(prefix) => Pattern::Prefix(prefix.to_owned()),
        None => Pattern::Exact(p.to_owned()),
    })
}

fn compile_condition(path: &str, c: &Condition) -> Result<CompiledCondition, PolicyError> {
    let non_empty = |items: &Vec<String>, what: &str| {
        if items.is_empty() || items.iter().any(|s| s.trim().is_empty()) {
            Err(invalid(
                path,
                format!("list at least one {what}, none blank"),
            ))
        } else {
            Ok(items.clone())
        }
    };
    Ok(match c {
        Condition::AmountAbove { thresholds } => {
            if thresholds.is_empty() {
                return Err(invalid(path, "give at least one threshold"));
            }
            let mut out: Vec<Money> = Vec::with_capacity(thresholds.len());
            for (i, t) in thresholds.iter().enumerate() {
                let m = Money::parse(&t.amount, &t.currency).map_err(|e: MoneyError| {
                    invalid(format!("{path}.thresholds[{i}]"), e.to_string())
                })?;
                if out.iter().any(|o| o.currency == m.currency) {
                    return Err(invalid(
                        format!("{path}.thresholds[{i}]"),
                        format!("{} has two thresholds", m.currency.code()),
                    ));
                }
                out.push(m);
            }
            CompiledCondition::AmountAbove(out)
        }
        Condition::RecordCountAbove { count } | Condition::RecipientCountAbove { count } => {
            if *count < 0 {
                return Err(invalid(path, "count must not be negative"));
            }
            if matches!(c, Condition::RecordCountAbove { .. }) {
                CompiledCondition::RecordCountAbove(*count)
            } else {
                CompiledCondition::RecipientCountAbove(*count)
            }
        }
        Condition::ConfidenceBelow { value } => {
            if !(0.0..=1.0).contains(value) {
                return Err(invalid(path, "confidence must be between 0 and 1"));
            }
            CompiledCondition::ConfidenceBelow(*value)
        }
        Condition::CustomerTierIn { tiers } => {
            CompiledCondition::CustomerTierIn(non_empty(tiers, "customer tier")?)
        }
        Condition::RiskClassIn { classes } => {
            CompiledCondition::RiskClassIn(non_empty(classes, "risk class")?)
        }
        Condition::AgentIn { agents } => CompiledCondition::AgentIn(non_empty(agents, "agent")?),
    })
}

/// Conditions of one rule that can never hold together (for a request that states the
/// attributes), which would make the rule dead weight an admin believes is guarding something.
fn contradiction(when: &[Condition]) -> Option<String> {
    fn lists(c: &Condition) -> Option<(&'static str, &Vec<String>)> {
        match c {
            Condition::CustomerTierIn { tiers } => Some(("customer tier", tiers)),
            Condition::RiskClassIn { classes } => Some(("risk class", classes)),
            Condition::AgentIn { agents } => Some(("agent", agents)),
            _ => None,
        }
    }
    for (i, a) in when.iter().enumerate() {
        let Some((what, xs)) = lists(a) else { continue };
        for b in &when[i + 1..] {
            if let Some((other, ys)) = lists(b) {
                if other == what && !xs.iter().any(|x| ys.contains(x)) {
                    return Some(format!(
                        "two {what} conditions with nothing in common can never both hold"
                    ));
                }
            }
        }
    }
    None
}

/// Validates gate definitions (each with its version) into an evaluable policy.
pub fn compile(gates: Vec<(GateDefinition, i64)>) -> Result<Policy, PolicyError> {
    let mut compiled = Vec::with_capacity(gates.len());
    for (definition, version) in gates {
        let gp = format!("gates[{}]", definition.key);
        if !valid_key(&definition.key) {
            return Err(invalid(
                format!("{gp}.key"),
                "use lower-case letters, digits, '-' or '_' (at most 64)",
            ));
        }
        if compiled
            .iter()
            .any(|g: &CompiledGate| g.definition.key == definition.key)
        {
            return Err(invalid(format!("{gp}.key"), "two gates share this key"));
        }
        if definition.name.trim().is_empty() {
            return Err(invalid(format!("{gp}.name"), "a gate needs a name"));
        }
        if definition.action_types.is_empty() {
            return Err(invalid(
                format!("{gp}.action_types"),
                "list at least one action type",
            ));
        }
        if let Err(problems) = definition.settings.validate(&format!("{gp}.settings")) {
            let first = &problems[0];
            let more = match problems.len() {
                1 => String::new(),
                n => format!(" (and {} more problems)", n - 1),
            };
            return Err(invalid(
                first.path.clone(),
                format!("{}{more}", first.message),
            ));
        }
        let patterns = definition
            .action_types
            .iter()
            .enumerate()
            .map(|(i, p)| compile_pattern(&format!("{gp}.action_types[{i}]"), p))
            .collect::<Result<Vec<_>, _>>()?;
        let mut rules = Vec::with_capacity(definition.rules.len());
        for (ri, rule) in definition.rules.iter().enumerate() {
            let rp = format!("{gp}.rules[{ri}]");
            if !valid_key(&rule.key) {
                return Err(invalid(
                    format!("{rp}.key"),
                    "use lower-case letters, digits, '-' or '_'",
                ));
            }
            if definition.rules[..ri].iter().any(|r| r.key == rule.key) {
                return Err(invalid(format!("{rp}.key"), "two rules share this key"));
            }
            if rule.when.is_empty() {
                return Err(invalid(
                    format!("{rp}.when"),
                    "a rule needs at least one condition; use the gate's base tier for 'always'",
                ));
            }
            if rule.tier <= definition.base_tier {
                return Err(invalid(
                    format!("{rp}.tier"),
                    format!(
                        "rule tier {} is not stricter than the gate's base tier {}, so the rule could never change anything",
                        rule.tier, definition.base_tier
                    ),
                ));
            }
            if let Some(problem) = contradiction(&rule.when) {
                return Err(invalid(format!("{rp}.when"), problem));
            }
            let conds = rule
                .when
                .iter()
                .enumerate()
                .map(|(ci, c)| compile_condition(&format!("{rp}.when[{ci}]"), c))
                .collect::<Result<Vec<_>, _>>()?;
            rules.push(conds);
        }
        compiled.push(CompiledGate {
            definition,
            version,
            patterns,
            rules,
        });
    }
    Ok(Policy { gates: compiled })
}

impl CompiledCondition {
    fn holds(&self, f: &Facts<'_>) -> bool {
        match self {
            CompiledCondition::AmountAbove(ts) => match f.amount {
                None => true,
                Some(a) => match ts.iter().find(|t| t.currency == a.currency) {
                    Some(t) => a.minor > t.minor,
                    None => true,
                },
            },
            CompiledCondition::RecordCountAbove(n) => f.record_count.is_none_or(|c| c > *n),
            CompiledCondition::RecipientCountAbove(n) => f.recipient_count.is_none_or(|c| c > *n),
            CompiledCondition::ConfidenceBelow(v) => f.confidence.is_none_or(|c| c < *v),
            CompiledCondition::CustomerTierIn(ts) => {
                f.customer_tier.is_none_or(|t| ts.iter().any(|x| x == t))
            }
            CompiledCondition::RiskClassIn(cs) => {
                f.risk_class.is_none_or(|t| cs.iter().any(|x| x == t))
            }
            CompiledCondition::AgentIn(agents) => agents.iter().any(|x| x == f.agent),
        }
    }

    fn explain(&self, f: &Facts<'_>, out: &mut String) {
        let _ = match self {
            CompiledCondition::AmountAbove(ts) => match f.amount {
                None => write!(out, "amount not stated"),
                Some(a) => match ts.iter().find(|t| t.currency == a.currency) {
                    Some(t) => write!(out, "amount {a} > {t} threshold"),
                    None => write!(out, "amount {a} has no threshold in {}", a.currency.code()),
                },
            },
            CompiledCondition::RecordCountAbove(n) => match f.record_count {
                None => write!(out, "record count not stated"),
                Some(c) => write!(out, "{c} records > {n}"),
            },
            CompiledCondition::RecipientCountAbove(n) => match f.recipient_count {
                None => write!(out, "recipient count not stated"),
                Some(c) => write!(out, "{c} recipients > {n}"),
            },
            CompiledCondition::ConfidenceBelow(v) => match f.confidence {
                None => write!(out, "confidence not stated"),
                Some(c) => write!(out, "confidence {c:.2} < {v:.2}"),
            },
            CompiledCondition::CustomerTierIn(_) => match f.customer_tier {
                None => write!(out, "customer tier not stated"),
                Some(t) => write!(out, "customer tier {t}"),
            },
            CompiledCondition::RiskClassIn(_) => match f.risk_class {
                None => write!(out, "risk class not stated"),
                Some(t) => write!(out, "risk class {t}"),
            },
            CompiledCondition::AgentIn(_) => write!(out, "agent {}", f.agent),
        };
    }
}

impl Policy {
    pub fn empty() -> Policy {
        Policy { gates: Vec::new() }
    }

    /// The definition of the gate with `key`, if it is part of this policy.
    pub fn definition(&self, key: &str) -> Option<&GateDefinition> {
        self.gates
            .iter()
            .find(|g| g.definition.key == key)
            .map(|g| &g.definition)
    }

    pub fn gate_definitions(&self) -> impl Iterator<Item = (&GateDefinition, i64)> {
        self.gates.iter().map(|g| (&g.definition, g.version))
    }

    /// The tier for a request, with the gates and rules that produced it.
    pub fn evaluate(&self, facts: &Facts<'_>) -> Evaluation {
        let mut gates: Vec<GateOutcome> = Vec::new();
        for gate in &self.gates {
            if !gate.patterns.iter().any(|p| p.matches(facts.action_type)) {
                continue;
            }
            let mut tier = gate.definition.base_tier;
            let mut matched_rules = Vec::new();
            for (ri, conds) in gate.rules.iter().enumerate() {
                if conds.iter().all(|c| c.holds(facts)) {
                    let rule = &gate.definition.rules[ri];
                    tier = tier.strictest(rule.tier);
                    matched_rules.push(rule.key.clone());
                }
            }
            gates.push(GateOutcome {
                gate_key: gate.definition.key.clone(),
                version: gate.version,
                tier,
                matched_rules,
            });
        }
        // Stable sort keeps definition order among equally strict gates.
        gates.sort_by_key(|g| std::cmp::Reverse(g.tier));
        let tier = gates.first().map(|g| g.tier).unwrap_or(Tier::Review);
        Evaluation { tier, gates }
    }

    /// A sentence a reviewer reads: "review because amount 4,200.00 EUR > 1,000.00 EUR threshold
    /// (rule large-refund, gate Refunds v3)".
    pub fn explain(&self, facts: &Facts<'_>, evaluation: &Evaluation) -> String {
        let Some(deciding) = evaluation.deciding_gate() else {
            return format!(
                "review because no gate matches action type {}; unmatched actions fail closed",
                facts.action_type
            );
        };
        let Some(gate) = self
            .gates
            .iter()
            .find(|g| g.definition.key == deciding.gate_key)
        else {
            return format!("{} by gate {}", evaluation.tier, deciding.gate_key);
        };
        let label = format!("gate {} v{}", gate.definition.name, gate.version);
        let deciding_rules: Vec<usize> = gate
            .definition
            .rules
            .iter()
            .enumerate()
            .filter(|(_, r)| deciding.matched_rules.contains(&r.key) && r.tier == deciding.tier)
            .map(|(i, _)| i)
            .collect();
        if deciding_rules.is_empty() {
            return format!("{} by default ({label})", evaluation.tier);
        }
        let mut out = format!("{} because ", evaluation.tier);
        for (n, ri) in deciding_rules.iter().enumerate() {
            if n > 0 {
                out.push_str("; and ");
            }
            for (ci, cond) in gate.rules[*ri].iter().enumerate() {
                if ci > 0 {
                    out.push_str(" and ");
                }
                cond.explain(facts, &mut out);
            }
            let _ = write!(out, " (rule {}", gate.definition.rules[*ri].key);
            out.push(')');
        }
        let _ = write!(out, ", {label}");
        out
    }
}

/// Parses the currency of a stated amount for [`Facts`]; kept here so callers share one path.
pub fn money_fact(minor: Option<i64>, currency: Option<&str>) -> Option<Money> {
    let currency = Currency::parse(currency?).ok()?;
    Some(Money::from_minor(minor?, currency))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refunds() -> GateDefinition {
        serde_json::from_value(serde_json::json!({
            "key": "refunds",
            "name": "Refunds",
            "action_types": ["payment.refund"],
            "base_tier": "auto",
            "rules": [
                {"key": "over-100", "when": [{"attribute": "amount_above", "thresholds": [{"amount": "100", "currency": "EUR"}]}], "tier": "log"},
                {"key": "over-1000", "when": [{"attribute": "amount_above", "thresholds": [{"amount": "1000", "currency": "EUR"}, {"amount": "1100", "currency": "USD"}]}], "tier": "review"},
                {"key": "enterprise-large", "when": [
                    {"attribute": "customer_tier_in", "tiers": ["enterprise"]},
                    {"attribute": "amount_above", "thresholds": [{"amount": "5000", "currency": "EUR"}]}
                ], "tier": "dual"}
            ]
        }))
        .unwrap()
    }

    fn payments_catch_all() -> GateDefinition {
        serde_json::from_value(serde_json::json!({
            "key": "payments",
            "name": "All payments",
            "action_types": ["payment.*"],
            "base_tier": "log",
            "rules": [
                {"key": "low-confidence", "when": [{"attribute": "confidence_below", "value": 0.5}], "tier": "review"}
            ]
        }))
        .unwrap()
    }

    fn eur(s: &str) -> Option<Money> {
        Some(Money::parse(s, "EUR").unwrap())
    }

    fn refund(amount: Option<Money>) -> Facts<'static> {
        Facts {
            action_type: "payment.refund",
            agent: "refund-bot",
            amount,
            confidence: Some(0.9),
            customer_tier: Some("smb"),
            ..Facts::default()
        }
    }

    #[test]
    fn thresholds_raise_the_tier_step_by_step() {
        let p = compile(vec![(refunds(), 3)]).unwrap();
        assert_eq!(p.evaluate(&refund(eur("50"))).tier, Tier::Auto);
        assert_eq!(
            p.evaluate(&refund(eur("100"))).tier,
            Tier::Auto,
            "strictly above"
        );
        assert_eq!(p.evaluate(&refund(eur("100.01"))).tier, Tier::Log);
        let e = p.evaluate(&refund(eur("4200")));
        assert_eq!(e.tier, Tier::Review);
        assert_eq!(e.gates[0].matched_rules, vec!["over-100", "over-1000"]);
        assert_eq!(e.gates[0].version, 3);
    }

    #[test]
    fn explanation_names_the_amount_threshold_rule_and_version() {
        let p = compile(vec![(refunds(), 3)]).unwrap();
        let f = refund(eur("4200"));
        let e = p.evaluate(&f);
        assert_eq!(
            p.explain(&f, &e),
            "review because amount 4,200.00 EUR > 1,000.00 EUR threshold (rule over-1000), gate Refunds v3"
        );
        let small = refund(eur("5"));
        assert_eq!(
            p.explain(&small, &p.evaluate(&small)),
            "auto by default (gate Refunds v3)"
        );
    }

    #[test]
    fn all_conditions_of_a_rule_must_hold() {
        let p = compile(vec![(refunds(), 1)]).unwrap();
        let mut f = refund(eur("6000"));
        assert_eq!(p.evaluate(&f).tier, Tier::Review);
        f.customer_tier = Some("enterprise");
        assert_eq!(p.evaluate(&f).tier, Tier::Dual);
    }

    #[test]
    fn unmatched_action_types_fail_closed_to_review() {
        let p = compile(vec![(refunds(), 1)]).unwrap();
        let f = Facts {
            action_type: "contract.amend",
            ..Facts::default()
        };
        let e = p.evaluate(&f);
        assert_eq!(e.tier, Tier::Review);
        assert!(e.gates.is_empty());
        assert!(p
            .explain(&f, &e)
            .contains("no gate matches action type contract.amend"));
        assert_eq!(Policy::empty().evaluate(&f).tier, Tier::Review);
    }

    #[test]
    fn missing_attributes_and_foreign_currencies_fail_closed() {
        let p = compile(vec![(refunds(), 1)]).unwrap();
        assert_eq!(p.evaluate(&refund(None)).tier, Tier::Review);
        let jpy = Some(Money::parse("10", "JPY").unwrap());
        assert_eq!(p.evaluate(&refund(jpy)).tier, Tier::Review);
        let usd = Some(Money::parse("1050", "USD").unwrap());
        assert_eq!(
            p.evaluate(&refund(usd)).tier,
            Tier::Log,
            "USD has its own threshold"
        );
    }

    #[test]
    fn the_strictest_of_several_matching_gates_wins() {
        let p = compile(vec![(refunds(), 1), (payments_catch_all(), 7)]).unwrap();
        let f = refund(eur("50"));
        let e = p.evaluate(&f);
        assert_eq!(e.tier, Tier::Log);
        assert_eq!(e.deciding_gate().unwrap().gate_key, "payments");
        let mut unsure = refund(eur("50"));
        unsure.confidence = Some(0.2);
        assert_eq!(p.evaluate(&unsure).tier, Tier::Review);
        let vendor = Facts {
            action_type: "payment.vendor",
            confidence: Some(0.99),
            ..Facts::default()
        };
        assert_eq!(p.evaluate(&vendor).tier, Tier::Log, "prefix match");
    }

    #[test]
    fn invalid_definitions_are_refused_with_the_path() {
        let mut g = refunds();
        g.rules[1].when = vec![Condition::AmountAbove {
            thresholds: vec![Threshold {
                amount: "1000".into(),
                currency: "EUX".into(),
            }],
        }];
        let err = compile(vec![(g, 1)]).unwrap_err().to_string();
        assert!(
            err.starts_with("gates[refunds].rules[1].when[0].thresholds[0]: unknown currency"),
            "{err}"
        );

        let mut g = refunds();
        g.rules[0].tier = Tier::Auto;
        let err = compile(vec![(g, 1)]).unwrap_err().to_string();
        assert!(
            err.contains("rules[0].tier") && err.contains("never change"),
            "{err}"
        );

        let mut g = refunds();
        g.action_types = vec!["payment.*.x".into()];
        assert!(compile(vec![(g, 1)]).is_err());

        let mut g = refunds();
        g.rules[0].when = vec![Condition::ConfidenceBelow { value: 1.5 }];
        assert!(compile(vec![(g, 1)])
            .unwrap_err()
            .to_string()
            .contains("between 0 and 1"));

        assert!(compile(vec![(refunds(), 1), (refunds(), 2)])
            .unwrap_err()
            .to_string()
            .contains("two gates share this key"));

        let contradictory = serde_json::from_value::<GateDefinition>(serde_json::json!({
            "key": "x", "name": "X", "action_types": ["a"], "base_tier": "auto", "rules": [
                {"key": "r", "when": [
                    {"attribute": "customer_tier_in", "tiers": ["smb"]},
                    {"attribute": "customer_tier_in", "tiers": ["enterprise"]}
                ], "tier": "review"}
            ]
        }))
        .unwrap();
        let err = compile(vec![(contradictory, 1)]).unwrap_err().to_string();
        assert!(
            err.contains("rules[0].when") && err.contains("never both hold"),
            "{err}"
        );
        let unknown_field = serde_json::from_value::<GateDefinition>(serde_json::json!({
            "key": "x", "name": "X", "action_types": ["a"], "base_tier": "auto", "colour": "red"
        }));
        assert!(unknown_field.is_err());
    }
}

#[cfg(test)]
pub(crate) mod properties {
    use super::*;
    use proptest::prelude::*;

    const ACTION_TYPES: [&str; 4] = [
        "payment.refund",
        "payment.vendor",
        "email.bulk_send",
        "access.grant",
    ];
    const PATTERNS: [&str; 5] = [
        "payment.refund",
        "payment.*",
        "email.bulk_send",
        "access.*",
        "crm.*",
    ];

    pub(crate) fn condition() -> impl Strategy<Value = Condition> {
        prop_oneof![
            (
                0u32..20_000,
                prop::sample::select(vec!["EUR", "USD", "JPY"])
            )
                .prop_map(|(a, c)| {
                    Condition::AmountAbove {
                        thresholds: vec![Threshold {
                            amount: a.to_string(),
                            currency: c.to_owned(),
                        }],
                    }
                }),
            (0i64..5_000).prop_map(|count| Condition::RecordCountAbove { count }),
            (0i64..5_000).prop_map(|count| Condition::RecipientCountAbove { count }),
            (0u32..=100).prop_map(|v| Condition::ConfidenceBelow {
                value: v as f64 / 100.0
            }),
            prop::sample::select(vec!["smb", "enterprise"]).prop_map(|t| {
                Condition::CustomerTierIn {
                    tiers: vec![t.to_owned()],
                }
            }),
            prop::sample::select(vec!["bot-a", "bot-b"]).prop_map(|a| Condition::AgentIn {
                agents: vec![a.to_owned()]
            }),
        ]
    }

    /// A valid gate: rules are always stricter than the base tier.
    pub(crate) fn gate(key: &'static str) -> impl Strategy<Value = GateDefinition> {
        (
            prop::sample::subsequence(PATTERNS.to_vec(), 1..3),
            prop::sample::select(vec![Tier::Auto, Tier::Log, Tier::Review]),
            prop::collection::vec((prop::collection::vec(condition(), 1..3), 1usize..4), 0..6),
        )
            .prop_map(move |(patterns, base, rules)| GateDefinition {
                settings: Default::default(),
                key: key.to_owned(),
                name: key.to_owned(),
                action_types: patterns.into_iter().map(str::to_owned).collect(),
                base_tier: base,
                rules: rules
                    .into_iter()
                    .filter(|(when, _)| super::contradiction(when).is_none())
                    .enumerate()
                    .map(|(i, (when, step))| RuleDefinition {
                        key: format!("r{i}"),
                        when,
                        tier: Tier::ALL
                            [(Tier::ALL.iter().position(|t| *t == base).unwrap() + step).min(4)],
                    })
                    .collect(),
            })
    }

    #[derive(Debug, Clone)]
    pub(crate) struct OwnedFacts {
        action_type: &'static str,
        agent: &'static str,
        amount: Option<(u32, &'static str)>,
        record_count: Option<i64>,
        recipient_count: Option<i64>,
        confidence: Option<f64>,
        customer_tier: Option<&'static str>,
    }

    impl OwnedFacts {
        pub(crate) fn facts(&self) -> Facts<'_> {
            Facts {
                action_type: self.action_type,
                agent: self.agent,
                amount: self
                    .amount
                    .map(|(a, c)| Money::parse(&a.to_string(), c).unwrap()),
                record_count: self.record_count,
                recipient_count: self.recipient_count,
                confidence: self.confidence,
                customer_tier: self.customer_tier,
                risk_class: None,
            }
        }
    }

    pub(crate) fn facts() -> impl Strategy<Value = OwnedFacts> {
        (
            prop::sample::select(ACTION_TYPES.to_vec()),
            prop::sample::select(vec!["bot-a", "bot-b", "bot-c"]),
            prop::option::of((
                0u32..30_000,
                prop::sample::select(vec!["EUR", "USD", "JPY", "GBP"]),
            )),
            prop::option::of(0i64..10_000),
            prop::option::of(0i64..10_000),
            prop::option::of((0u32..=100).prop_map(|v| v as f64 / 100.0)),
            prop::option::of(prop::sample::select(vec!["smb", "enterprise"])),
        )
            .prop_map(
                |(
                    action_type,
                    agent,
                    amount,
                    record_count,
                    recipient_count,
                    confidence,
                    customer_tier,
                )| {
                    OwnedFacts {
                        action_type,
                        agent,
                        amount,
                        record_count,
                        recipient_count,
                        confidence,
                        customer_tier,
                    }
                },
            )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn adding_a_rule_never_makes_a_tier_less_strict(
            a in gate("a"), b in gate("b"), extra in prop::collection::vec(condition(), 1..3),
            extra_step in 1usize..4, f in facts()
        ) {
            prop_assume!(super::contradiction(&extra).is_none());
            let before = compile(vec![(a.clone(), 1), (b.clone(), 1)]).unwrap();
            let mut a2 = a.clone();
            let base_index = Tier::ALL.iter().position(|t| *t == a2.base_tier).unwrap();
            a2.rules.push(RuleDefinition {
                key: "extra".into(),
                when: extra,
                tier: Tier::ALL[(base_index + extra_step).min(4)],
            });
            let after = compile(vec![(a2, 1), (b, 1)]).unwrap();
            let facts = f.facts();
            prop_assert!(after.evaluate(&facts).tier >= before.evaluate(&facts).tier);
        }

        #[test]
        fn adding_a_gate_never_makes_a_tier_less_strict_unless_it_matches_an_unmatched_type(
            a in gate("a"), b in gate("b"), f in facts()
        ) {
            let facts = f.facts();
            let one = compile(vec![(a.clone(), 1)]).unwrap().evaluate(&facts);
            let two = compile(vec![(a, 1), (b, 1)]).unwrap().evaluate(&facts);
            if !one.gates.is_empty() {
                prop_assert!(two.tier >= one.tier);
            }
        }

        #[test]
        fn the_tier_is_at_least_every_matching_gates_base_and_unmatched_is_review(
            a in gate("a"), b in gate("b"), f in facts()
        ) {
            let policy = compile(vec![(a.clone(), 1), (b.clone(), 1)]).unwrap();
            let facts = f.facts();
            let e = policy.evaluate(&facts);
            if e.gates.is_empty() {
                prop_assert_eq!(e.tier, Tier::Review);
            }
            for g in &e.gates {
                let def = if g.gate_key == "a" { &a } else { &b };
                prop_assert!(g.tier >= def.base_tier);
                prop_assert!(e.tier >= g.tier);
            }
            // Every explanation is a sentence that starts with the tier.
            prop_assert!(policy.explain(&facts, &e).starts_with(e.tier.as_str()));
        }
    }
}
