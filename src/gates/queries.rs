//! Reads for the gates screens (both engines), and the "test this request" evaluation.

use super::drafts::{versions, VersionRow};
use super::page::{GateDetail, GateLine, TestOutcome, VersionView};
use crate::accounts::{CurrentUser, Role};
use crate::domain::diff::{field_diff, FieldChange};
use crate::domain::money::Money;
use crate::domain::policy::{compile, Facts, GateDefinition, Policy};
use crate::error::AppError;
use crate::on_db;
use crate::server::{now_ms, Db};
use std::collections::HashMap;

pub async fn gate_lines(db: &Db) -> Result<Vec<GateLine>, AppError> {
    type Row = (String, String, String, i64, Option<i64>, Option<i64>);
    let rows: Vec<Row> = on_db!(db, |p| sqlx::query_as(
        "SELECT g.id, g.key, v.definition, v.version, v.published_at, v.submitted_at \
         FROM gates g JOIN gate_versions v ON v.gate_id = g.id ORDER BY g.key, v.version DESC"
    )
    .fetch_all(p)
    .await)?;
    let since = now_ms() - 30 * 86_400_000;
    let mix: Vec<(String, String, i64)> = on_db!(db, |p| sqlx::query_as(
        "SELECT gate_id, tier, COUNT(*) FROM action_requests WHERE created_at >= $1 \
         AND gate_id IS NOT NULL GROUP BY gate_id, tier"
    )
    .bind(since)
    .fetch_all(p)
    .await)?;
    let mut out: Vec<(String, GateLine)> = Vec::new();
    for (id, key, definition, version, published_at, submitted_at) in rows {
        let def: Option<GateDefinition> = serde_json::from_str(&definition).ok();
        if out.last().map(|(i, _)| i != &id).unwrap_or(true) {
            out.push((
                id.clone(),
                GateLine {
                    key,
                    name: def.as_ref().map(|d| d.name.clone()).unwrap_or_default(),
                    action_types: def
                        .as_ref()
                        .map(|d| d.action_types.clone())
                        .unwrap_or_default(),
                    live_version: None,
                    draft: None,
                    tier_mix: [0; 5],
                },
            ));
        }
        let line = &mut out.last_mut().expect("pushed above").1;
        match published_at {
            Some(_) if line.live_version.is_none() => line.live_version = Some(version),
            None => {
                line.draft = Some(
                    if submitted_at.is_some() {
                        "awaiting approval"
                    } else {
                        "draft"
                    }
                    .into(),
                )
            }
            _ => {}
        }
    }
    for (gate_id, tier, n) in mix {
        if let (Some((_, line)), Ok(t)) = (
            out.iter_mut().find(|(id, _)| *id == gate_id),
            tier.parse::<crate::domain::tier::Tier>(),
        ) {
            line.tier_mix[crate::domain::tier::Tier::ALL
                .iter()
                .position(|x| *x == t)
                .unwrap_or(0)] += n;
        }
    }
    Ok(out.into_iter().map(|(_, l)| l).collect())
}

fn changes(before: Option<&GateDefinition>, after: &GateDefinition) -> Vec<FieldChange> {
    let before = before
        .map(|b| serde_json::to_value(b).unwrap_or_default())
        .unwrap_or(serde_json::Value::Null);
    field_diff(&before, &serde_json::to_value(after).unwrap_or_default())
        .into_iter()
        .filter(|c| !matches!(c, FieldChange::Unchanged { .. }))
        .collect()
}

pub async fn gate_detail(
    db: &Db,
    user: &CurrentUser,
    key: &str,
    test: Option<String>,
) -> Result<GateDetail, AppError> {
    let rows = versions(db, key).await?;
    if rows.is_empty() {
        return Err(AppError::NotFound);
    }
    let names: HashMap<String, String> = on_db!(db, |p| sqlx::query_as::<_, (String, String)>(
        "SELECT id, display_name FROM users"
    )
    .fetch_all(p)
    .await)?
    .into_iter()
    .collect();
    let name = |id: &Option<String>| {
        id.as_ref()
            .map(|i| names.get(i).cloned().unwrap_or_else(|| i.clone()))
    };
    let parse = |r: &VersionRow| -> Result<GateDefinition, AppError> {
        serde_json::from_str(&r.definition).map_err(crate::error::internal)
    };
    let published: Vec<&VersionRow> = rows.iter().filter(|r| r.published_at.is_some()).collect();
    let mut history = Vec::new();
    for (i, r) in published.iter().enumerate() {
        let def = parse(r)?;
        let previous = published.get(i + 1).map(|p| parse(p)).transpose()?;
        history.push(view_of(r, def, previous.as_ref(), &name));
    }
    let live = history.first().cloned();
    let draft = match rows.iter().find(|r| r.published_at.is_none()) {
        Some(r) => {
            let def = parse(r)?;
            Some(view_of(r, def, live.as_ref().map(|l| &l.definition), &name))
        }
        None => None,
    };
    let test = match test.filter(|t| !t.trim().is_empty()) {
        None => None,
        Some(input) => Some(evaluate_test(db, input, draft.as_ref().map(|d| &d.definition)).await?),
    };
    Ok(GateDetail {
        key: key.to_owned(),
        name: draft
            .as_ref()
            .or(live.as_ref())
            .map(|v| v.definition.name.clone())
            .unwrap_or_default(),
        live,
        draft,
        history,
        can_edit: user.has(Role::Admin),
        me: user.id.clone(),
        test,
    })
}

fn view_of(
    r: &VersionRow,
    definition: GateDefinition,
    previous: Option<&GateDefinition>,
    name: &impl Fn(&Option<String>) -> Option<String>,
) -> VersionView {
    VersionView {
        version: r.version,
        changes: changes(previous, &definition),
        definition,
        edited_by: name(&r.created_by),
        edited_by_id: r.created_by.clone(),
        created_at: r.created_at,
        published_by: name(&r.published_by),
        published_at: r.published_at,
        submitted_by: name(&r.submitted_by),
        submitted_at: r.submitted_at,
        loosenings: r
            .loosenings
            .as_deref()
            .and_then(|l| serde_json::from_str(l).ok())
            .unwrap_or_default(),
    }
}

/// The facts of a pasted request (the JSON an agent submits); only what policy looks at.
struct TestFacts {
    action_type: String,
    agent: String,
    amount: Option<Money>,
    record_count: Option<i64>,
    recipient_count: Option<i64>,
    confidence: Option<f64>,
    customer_tier: Option<String>,
    risk_class: Option<String>,
}

fn parse_test(input: &str) -> Result<TestFacts, String> {
    let v: serde_json::Value = serde_json::from_str(input).map_err(|e| format!("not JSON: {e}"))?;
    let text = |k: &str| v[k].as_str().map(str::to_owned);
    let int = |k: &str| -> Result<Option<i64>, String> {
        match &v[k] {
            serde_json::Value::Null => Ok(None),
            n => n
                .as_i64()
                .map(Some)
                .ok_or_else(|| format!("{k} must be a whole number")),
        }
    };
    let amount = match &v["amount"] {
        serde_json::Value::Null => None,
        a => {
            let (Some(value), Some(currency)) = (a["value"].as_str(), a["currency"].as_str())
            else {
                return Err(
                    r#"amount must look like {"value": "4200.00", "currency": "EUR"}"#.into(),
                );
            };
            Some(Money::parse(value, currency).map_err(|e| format!("amount: {e}"))?)
        }
    };
    let confidence = match &v["confidence"] {
        serde_json::Value::Null => None,
        c => Some(
            c.as_f64()
                .filter(|c| (0.0..=1.0).contains(c))
                .ok_or("confidence must be a number between 0 and 1")?,
        ),
    };
    Ok(TestFacts {
        action_type: text("action_type").ok_or("action_type is required")?,
        agent: text("agent").unwrap_or_default(),
        amount,
        record_count: int("record_count")?,
        recipient_count: int("recipient_count")?,
        confidence,
        customer_tier: text("customer_tier"),
        risk_class: text("risk_class"),
    })
}

async fn evaluate_test(
    db: &Db,
    input: String,
    draft: Option<&GateDefinition>,
) -> Result<TestOutcome, AppError> {
    if input.len() > 20_000 {
        return Err(AppError::invalid(
            "test",
            "is longer than 20,000 characters",
        ));
    }
    let mut outcome = TestOutcome {
        input: input.clone(),
        error: None,
        live: None,
        draft: None,
    };
    let facts = match parse_test(&input) {
        Ok(f) => f,
        Err(e) => {
            outcome.error = Some(e);
            return Ok(outcome);
        }
    };
    let f = Facts {
        action_type: &facts.action_type,
        agent: &facts.agent,
        amount: facts.amount,
        record_count: facts.record_count,
        recipient_count: facts.recipient_count,
        confidence: facts.confidence,
        customer_tier: facts.customer_tier.as_deref(),
        risk_class: facts.risk_class.as_deref(),
    };
    let live = super::repo::live_policy(db)
        .await
        .map_err(crate::error::internal)?;
    let run = |p: &Policy| {
        let e = p.evaluate(&f);
        (e.tier.as_str().to_owned(), p.explain(&f, &e))
    };
    outcome.live = Some(run(&live.policy));
    if let Some(d) = draft {
        let mut gates: Vec<(GateDefinition, i64)> = live
            .policy
            .gate_definitions()
            .filter(|(g, _)| g.key != d.key)
            .map(|(g, v)| (g.clone(), v))
            .collect();
        gates.push((d.clone(), 0));
        match compile(gates) {
            Ok(p) => outcome.draft = Some(run(&p)),
            Err(e) => outcome.error = Some(format!("the draft does not compile: {e}")),
        }
    }
    Ok(outcome)
}
