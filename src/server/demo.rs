//! `countersign demo`: a reproducible history from a simulated fleet of agents.
//!
//! Six agents (refunds, vendor payments, contract amendments, bulk emails, CRM bulk updates,
//! access grants) propose actions over several weeks. Each request is gated by the real policy
//! evaluation against the demo gates, and past requests get the outcomes a real team produces:
//! mostly approvals, some edits and rejections, a few expiries. The last day and a half stays
//! pending so the inbox has work in it. The same seed and end time give the same history.

use super::cli::DemoArgs;
use super::db::Db;
use crate::accounts::{repo as accounts, Role};
use crate::audit::repo::{append, Actor};
use crate::domain::after_fact::{queue_reason, Judgement, QueueReason};
use crate::domain::money::Money;
use crate::domain::policy::{Facts, GateDefinition};
use crate::domain::status::Status;
use crate::domain::tier::Tier;
use crate::gates::repo as gates;
use crate::on_db;
use crate::requests::repo::{self as requests, NewActionRequest, NewDecision};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::json;

const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;

/// Every demo person's password; the README lists it. Demo data is for trying the product,
/// never for production.
pub const DEMO_PASSWORD: &str = "countersign-demo";

/// Named demo people; the README lists them.
pub const DEMO_USERS: &[(&str, &str, &str, &[Role])] = &[
    (
        "usr_dana",
        "dana@example.com",
        "Dana Whitfield",
        &[Role::Reviewer],
    ),
    (
        "usr_ravi",
        "ravi@example.com",
        "Ravi Menon",
        &[Role::Reviewer],
    ),
    (
        "usr_sofia",
        "sofia@example.com",
        "Sofia Alvarez",
        &[Role::Reviewer],
    ),
    (
        "usr_marcus",
        "marcus@example.com",
        "Marcus Chen",
        &[Role::Reviewer, Role::SeniorReviewer],
    ),
    (
        "usr_alex",
        "alex@example.com",
        "Alex Okafor",
        &[Role::Admin],
    ),
    (
        "usr_priya",
        "priya@example.com",
        "Priya Natarajan",
        &[Role::Admin, Role::Reviewer],
    ),
    (
        "usr_ines",
        "ines@example.com",
        "Ines Laurent",
        &[Role::Auditor],
    ),
];

const REVIEWERS: &[&str] = &[
    "usr_dana",
    "usr_ravi",
    "usr_sofia",
    "usr_marcus",
    "usr_priya",
];

struct AgentSpec {
    id: &'static str,
    name: &'static str,
    description: &'static str,
    /// Share of the fleet's daily volume.
    weight: u32,
}

const AGENTS: &[AgentSpec] = &[
    AgentSpec {
        id: "agt_refunds",
        name: "refund-bot",
        description: "Support agent that issues customer refunds",
        weight: 40,
    },
    AgentSpec {
        id: "agt_ap",
        name: "ap-clerk",
        description: "Accounts-payable agent that pays vendor invoices",
        weight: 15,
    },
    AgentSpec {
        id: "agt_contracts",
        name: "contracts-assistant",
        description: "Drafts contract amendments for renewals",
        weight: 8,
    },
    AgentSpec {
        id: "agt_campaigns",
        name: "campaign-agent",
        description: "Sends lifecycle and marketing emails to segments",
        weight: 12,
    },
    AgentSpec {
        id: "agt_crm",
        name: "crm-hygiene",
        description: "Deduplicates and normalises CRM records in bulk",
        weight: 15,
    },
    AgentSpec {
        id: "agt_access",
        name: "it-access-bot",
        description: "Grants system access from IT tickets",
        weight: 10,
    },
];

/// The demo gates, as an admin would write them.
pub fn demo_gates() -> Vec<GateDefinition> {
    let defs = json!([
        {"key": "refunds", "name": "Refunds", "action_types": ["payment.refund"], "base_tier": "auto", "rules": [
            {"key": "over-100", "when": [{"attribute": "amount_above", "thresholds": [{"amount": "100", "currency": "EUR"}, {"amount": "110", "currency": "USD"}, {"amount": "90", "currency": "GBP"}]}], "tier": "log"},
            {"key": "over-1000", "when": [{"attribute": "amount_above", "thresholds": [{"amount": "1000", "currency": "EUR"}, {"amount": "1100", "currency": "USD"}, {"amount": "900", "currency": "GBP"}]}], "tier": "review"},
            {"key": "low-confidence", "when": [{"attribute": "confidence_below", "value": 0.7}], "tier": "review"},
            {"key": "enterprise-large", "when": [{"attribute": "customer_tier_in", "tiers": ["enterprise"]}, {"attribute": "amount_above", "thresholds": [{"amount": "5000", "currency": "EUR"}, {"amount": "5500", "currency": "USD"}, {"amount": "4500", "currency": "GBP"}]}], "tier": "dual"}
        ]},
        {"key": "vendor-payments", "name": "Vendor payments", "action_types": ["payment.vendor"], "base_tier": "review", "rules": [
            {"key": "over-25k", "when": [{"attribute": "amount_above", "thresholds": [{"amount": "25000", "currency": "EUR"}, {"amount": "27000", "currency": "USD"}]}], "tier": "dual"}
        ]},
        {"key": "contracts", "name": "Contract changes", "action_types": ["contract.*"], "base_tier": "review", "rules": [
            {"key": "high-risk", "when": [{"attribute": "risk_class_in", "classes": ["high"]}], "tier": "dual"}
        ]},
        {"key": "bulk-email", "name": "Bulk email", "action_types": ["email.bulk_send"], "base_tier": "log", "rules": [
            {"key": "large-segment", "when": [{"attribute": "recipient_count_above", "count": 1000}], "tier": "review"},
            {"key": "whole-base", "when": [{"attribute": "recipient_count_above", "count": 100000}], "tier": "block"}
        ]},
        {"key": "crm-bulk", "name": "CRM bulk updates", "action_types": ["crm.bulk_update"], "base_tier": "auto", "rules": [
            {"key": "over-100-records", "when": [{"attribute": "record_count_above", "count": 100}], "tier": "review"},
            {"key": "over-10k-records", "when": [{"attribute": "record_count_above", "count": 10000}], "tier": "dual"}
        ]},
        {"key": "access", "name": "Access grants", "action_types": ["access.*"], "base_tier": "review", "rules": [
            {"key": "privileged", "when": [{"attribute": "risk_class_in", "classes": ["critical"]}], "tier": "dual"}
        ]}
    ]);
    serde_json::from_value(defs).expect("demo gates are valid definitions")
}

const CUSTOMERS: &[(&str, &str)] = &[
    ("Northwind Traders", "enterprise"),
    ("Contoso Ltd", "enterprise"),
    ("Fabrikam GmbH", "mid"),
    ("Tailspin Toys", "smb"),
    ("Wide World Importers", "mid"),
    ("Adventure Works", "enterprise"),
    ("Blue Yonder Airlines", "mid"),
    ("Coho Winery", "smb"),
    ("Alpine Ski House", "smb"),
    ("Litware Inc", "mid"),
    ("Proseware", "smb"),
    ("Lucerne Publishing", "smb"),
];
const VENDORS: &[&str] = &[
    "Acme Logistics",
    "Globex Cloud",
    "Initech Consulting",
    "Umbrella Facilities",
    "Hooli Ads",
    "Stark Components",
    "Wayne Office Supply",
];
const CURRENCIES: &[&str] = &["EUR", "EUR", "EUR", "USD", "GBP"];
const REFUND_REASONS: &[&str] = &[
    "Item arrived damaged",
    "Duplicate charge",
    "Service outage credit",
    "Late delivery",
    "Cancelled within trial",
    "Wrong size shipped",
];
const REJECT_REASONS: &[(&str, &str)] = &[
    ("policy", "Outside refund policy"),
    ("amount", "Amount does not match the invoice"),
    ("duplicate", "Already handled in another ticket"),
    ("evidence", "Not enough evidence in the inputs"),
    ("counterparty", "Counterparty details look wrong"),
];
const SYSTEMS: &[(&str, &str, &str)] = &[
    ("GitHub", "maintainer", "high"),
    ("Salesforce", "read-only", "low"),
    ("AWS production", "administrator", "critical"),
    ("Snowflake", "analyst", "low"),
    ("Okta", "super-admin", "critical"),
    ("Jira", "project-admin", "low"),
];
const SEGMENTS: &[(&str, i64)] = &[
    ("trial users, day 7", 420),
    ("churn-risk customers", 2_300),
    ("EU newsletter", 48_000),
    ("all customers", 240_000),
    ("webinar attendees", 180),
    ("enterprise admins", 950),
];

struct Proposal {
    agent: usize,
    action_type: &'static str,
    title: String,
    payload: serde_json::Value,
    current_state: Option<serde_json::Value>,
    inputs: serde_json::Value,
    reasoning: String,
    alternatives: serde_json::Value,
    confidence: f64,
    amount: Option<Money>,
    counterparty: Option<String>,
    customer_tier: Option<&'static str>,
    record_count: Option<i64>,
    recipient_count: Option<i64>,
    risk_class: Option<&'static str>,
    acting_for: Option<&'static str>,
    deadline_hours: i64,
}

fn pick<'a, T>(rng: &mut ChaCha8Rng, items: &'a [T]) -> &'a T {
    &items[rng.gen_range(0..items.len())]
}

/// A log-normal-ish amount: most small, a long tail of large ones.
fn amount(rng: &mut ChaCha8Rng, median: f64, spread: f64, currency: &str) -> Money {
    let z: f64 = (0..6).map(|_| rng.gen::<f64>()).sum::<f64>() - 3.0;
    let major = (median * (spread * z).exp()).clamp(1.0, 2_000_000.0);
    let cents = (major * 100.0).round() as i64;
    Money::parse(&format!("{}.{:02}", cents / 100, cents % 100), currency)
        .expect("demo amounts are valid")
}

fn propose(rng: &mut ChaCha8Rng, agent: usize, n: u64) -> Proposal {
    let confidence = (0.55 + rng.gen::<f64>() * 0.45 - if rng.gen_bool(0.08) { 0.2 } else { 0.0 })
        .clamp(0.3, 0.99);
    let confidence = (confidence * 100.0).round() / 100.0;
    match agent {
        0 => {
            let (customer, tier) = *pick(rng, CUSTOMERS);
            let currency = *pick(rng, CURRENCIES);
            let m = amount(rng, 120.0, 0.9, currency);
            let reason = *pick(rng, REFUND_REASONS);
            let order = format!("ORD-{}", 100_000 + n * 7 % 900_000);
            Proposal {
                agent, action_type: "payment.refund", title: format!("Refund {m} to {customer}"),
                payload: json!({"order_id": order, "customer": customer, "amount": m.to_decimal_string(), "currency": currency, "method": "original_payment", "note_to_customer": format!("Hello, we have refunded {m} to your original payment method. Reason: {reason}.")}),
                current_state: None,
                inputs: json!({"ticket": format!("SUP-{}", 40_000 + n), "customer_message": format!("{reason}. Please refund.")}),
                reasoning: format!("Ticket reports: {reason}. Order is eligible under the 30-day policy; the full amount matches the payment."),
                alternatives: json!(["store credit", "partial refund of shipping only"]),
                confidence, amount: Some(m), counterparty: Some(customer.to_owned()), customer_tier: Some(tier),
                record_count: None, recipient_count: None, risk_class: None, acting_for: None, deadline_hours: 24,
            }
        }
        1 => {
            let vendor = *pick(rng, VENDORS);
            let currency = if rng.gen_bool(0.8) { "EUR" } else { "USD" };
            let m = amount(rng, 6_000.0, 1.0, currency);
            let invoice = format!("INV-{}-{}", 2026, 1000 + n);
            Proposal {
                agent, action_type: "payment.vendor", title: format!("Pay {vendor} {m} for {invoice}"),
                payload: json!({"vendor": vendor, "invoice": invoice, "amount": m.to_decimal_string(), "currency": currency, "iban": format!("DE89 3704 0044 0532 01{:02} 00", n % 100), "execute_on": "next business day"}),
                current_state: None,
                inputs: json!({"invoice_pdf": format!("s3://ap-inbox/{invoice}.pdf"), "po": format!("PO-{}", 5000 + n % 900)}),
                reasoning: format!("Invoice {invoice} matches purchase order and goods receipt; due within 10 days."),
                alternatives: json!(["wait for the monthly payment run"]),
                confidence, amount: Some(m), counterparty: Some(vendor.to_owned()), customer_tier: None,
                record_count: None, recipient_count: None, risk_class: None, acting_for: Some("usr_alex"), deadline_hours: 48,
            }
        }
        2 => {
            let (customer, _) = *pick(rng, CUSTOMERS);
            let risk = if rng.gen_bool(0.3) { "high" } else { "medium" };
            let days = *pick(rng, &[30, 45, 60]);
            let cap = *pick(
                rng,
                &[
                    "12 months of fees",
                    "the fees paid in the prior 6 months",
                    "EUR 250,000",
                ],
            );
            Proposal {
                agent, action_type: "contract.amend", title: format!("Shorten {customer}'s termination notice to {days} days"),
                payload: json!({"contract": format!("MSA-{}", 300 + n % 200), "counterparty": customer, "clause": "9.2 Termination", "text": format!("Either party may terminate this Agreement for convenience on {days} days' written notice. Liability on termination is capped at {cap}.")}),
                current_state: Some(json!({"contract": format!("MSA-{}", 300 + n % 200), "counterparty": customer, "clause": "9.2 Termination", "text": "Either party may terminate this Agreement for convenience on 90 days' written notice. Liability on termination is capped at 12 months of fees."})),
                inputs: json!({"renewal_thread": format!("CRM-OPP-{}", 7000 + n)}),
                reasoning: format!("Customer asked for a shorter notice period during renewal; {days} days is within the negotiation playbook."),
                alternatives: json!(["keep 90 days and offer a discount instead"]),
                confidence, amount: None, counterparty: Some(customer.to_owned()), customer_tier: None,
                record_count: None, recipient_count: None, risk_class: Some(risk), acting_for: Some("usr_priya"), deadline_hours: 72,
            }
        }
        3 => {
            let (segment, size) = *pick(rng, SEGMENTS);
            let recipients = (size as f64 * (0.8 + rng.gen::<f64>() * 0.4)) as i64;
            Proposal {
                agent,
                action_type: "email.bulk_send",
                title: format!(
                    "Email the monthly update to {segment} ({} recipients)",
                    crate::inbox::group_digits(recipients)
                ),
                payload: json!({"segment": segment, "subject": "Your account: what's new this month", "body": format!("Hi {{first_name}},\n\nWe shipped three improvements this month that {segment} asked for. Read the notes and reply to this email with questions.\n\nThe Team"), "send_at": "now"}),
                current_state: None,
                inputs: json!({"campaign_brief": format!("CMP-{}", 200 + n % 50)}),
                reasoning: format!("Monthly update for {segment}; content approved in the brief."),
                alternatives: json!(["in-app banner only"]),
                confidence,
                amount: None,
                counterparty: None,
                customer_tier: None,
                record_count: None,
                recipient_count: Some(recipients),
                risk_class: None,
                acting_for: None,
                deadline_hours: 12,
            }
        }
        4 => {
            let records = *pick(rng, &[12, 40, 85, 240, 1_800, 15_000]);
            Proposal {
                agent, action_type: "crm.bulk_update", title: "Normalise country 'Deutschland' to 'Germany'".to_owned(),
                payload: json!({"object": "contacts", "filter": "country = 'Deutschland'", "set": {"country": "Germany"}, "record_count": records}),
                current_state: Some(json!({"object": "contacts", "filter": "country = 'Deutschland'", "set": {"country": "Deutschland"}, "record_count": records})),
                inputs: json!({"report": "country-normalisation"}),
                reasoning: "Country values are inconsistent; normalising to the ISO English name used by reporting.".into(),
                alternatives: json!(["fix on import only"]),
                confidence, amount: None, counterparty: None, customer_tier: None,
                record_count: Some(records), recipient_count: None, risk_class: None, acting_for: None, deadline_hours: 24,
            }
        }
        _ => {
            let (system, role, risk) = *pick(rng, SYSTEMS);
            let requester = *pick(rng, &["usr_dana", "usr_ravi", "usr_sofia"]);
            Proposal {
                agent, action_type: "access.grant", title: format!("Grant {role} on {system} to {requester}"),
                payload: json!({"user": requester, "system": system, "role": role, "duration_days": *pick(rng, &[1, 7, 30, 90]), "ticket": format!("IT-{}", 8_000 + n)}),
                current_state: Some(json!({"user": requester, "system": system, "role": "none"})),
                inputs: json!({"ticket_text": format!("Need {role} on {system} for the quarter-end work.")}),
                reasoning: format!("Ticket approved by the requester's manager; {role} is the least privilege that covers the task."),
                alternatives: json!(["temporary pairing with an existing admin"]),
                confidence, amount: None, counterparty: None, customer_tier: None,
                record_count: None, recipient_count: None, risk_class: Some(risk), acting_for: Some(requester), deadline_hours: 8,
            }
        }
    }
}

/// Deterministic UUIDv7-shaped id for `at`, so the same seed gives the same ids.
fn demo_id(rng: &mut ChaCha8Rng, prefix: &str, at: i64) -> String {
    let random: [u8; 10] = rng.gen();
    let uuid = uuid::Builder::from_unix_timestamp_millis(at as u64, &random).into_uuid();
    format!("{prefix}_{}", uuid.simple())
}

#[derive(Debug, Default)]
pub struct DemoSummary {
    pub requests: u64,
    pub pending: u64,
    pub decisions: u64,
}

async fn request_count(db: &Db) -> anyhow::Result<i64> {
    Ok(on_db!(db, |p| sqlx::query_scalar::<_, i64>(
        "SELECT COUNT(*) FROM action_requests"
    )
    .fetch_one(p)
    .await)?)
}

/// Loads the demo history. Leaves a database that already holds requests alone unless `force`.
pub async fn load(db: &Db, args: &DemoArgs, now: i64) -> anyhow::Result<Option<DemoSummary>> {
    if request_count(db).await? > 0 && !args.force {
        return Ok(None);
    }
    let start = now - args.days as i64 * DAY;
    let mut tx = db.begin_write().await?;

    let mut setup_rng = ChaCha8Rng::seed_from_u64(args.seed ^ 0x5eed);
    let has_people = on_db!(db, |p| sqlx::query_scalar::<_, i64>(
        "SELECT COUNT(*) FROM users"
    )
    .fetch_one(p)
    .await)?
        > 0;
    if !has_people {
        for (id, email, name, roles) in DEMO_USERS {
            accounts::insert_user(&mut tx, id, email, name, roles, start - DAY).await?;
            let hash = crate::accounts::password::hash(DEMO_PASSWORD);
            accounts::set_password_hash(&mut tx, id, &hash).await?;
        }
        accounts::insert_team(
            &mut tx,
            "team_finance",
            "Finance Ops",
            &["usr_dana", "usr_ravi", "usr_marcus"],
            start - DAY,
        )
        .await?;
        accounts::insert_team(
            &mut tx,
            "team_support",
            "Customer Support",
            &["usr_sofia", "usr_dana"],
            start - DAY,
        )
        .await?;
        accounts::insert_team(
            &mut tx,
            "team_security",
            "IT Security",
            &["usr_marcus", "usr_priya"],
            start - DAY,
        )
        .await?;
        for a in AGENTS {
            accounts::insert_agent(
                &mut tx,
                a.id,
                a.name,
                a.description,
                Some("usr_alex"),
                start - DAY,
            )
            .await?;
        }
        for g in demo_gates() {
            let id = demo_id(&mut setup_rng, "gate", start - DAY);
            gates::create_published(&mut tx, &id, &g, Some("usr_alex"), start - DAY).await?;
        }
    }
    tx.commit().await?;
    let live = gates::live_policy(db).await?;

    let mut summary = DemoSummary::default();
    let mut tx = db.begin_write().await?;
    let rows: Vec<DemoRow> = simulate(&live, args.seed, args.days, args.per_day, now)
        .map(|(request, decisions)| DemoRow { request, decisions })
        .collect();
    let after_fact = after_fact_history(db, &live, &rows, args.seed, now).await?;
    // The audit trail is appended in time order, as it would have been written live.
    let mut events: Vec<(i64, usize, Event)> = Vec::with_capacity(rows.len() * 2);
    for (i, row) in rows.iter().enumerate() {
        events.push((row.request.created_at, i, Event::Gated));
        for (j, d) in row.decisions.iter().enumerate() {
            events.push((d.created_at, i, Event::Decided(j)));
        }
        if let Some((_, Some(j))) = &after_fact[i] {
            events.push((j.at, i, Event::Judged));
        }
    }
    events.sort();
    for (k, (_, i, event)) in events.into_iter().enumerate() {
        let row = &rows[i];
        let r = &row.request;
        if event == Event::Judged {
            if let Some((reason, Some(j))) = &after_fact[i] {
                judge_in_demo(&mut tx, &r.id, *reason, j).await?;
            }
        } else if let Event::Decided(j) = event {
            let d = &row.decisions[j];
            requests::insert_decision(&mut tx, d).await?;
            summary.decisions += 1;
            let actor = d
                .reviewer_id
                .clone()
                .map(Actor::User)
                .unwrap_or(Actor::System);
            append(
                &mut tx,
                &actor,
                if d.kind == "expire" { "expired" } else { "decision" },
                Some(&r.id),
                json!({"kind": d.kind, "state_version": d.state_version, "reason_code": d.reason_code, "reason": d.reason_text, "edited_payload": d.edited_payload.as_deref().and_then(|p| serde_json::from_str::<serde_json::Value>(p).ok())}),
                d.created_at,
            )
            .await?;
        } else {
            requests::insert(&mut tx, r).await?;
            summary.requests += 1;
            if r.status.parse::<Status>().is_ok_and(Status::is_open) {
                summary.pending += 1;
            }
            if let Some((reason, _)) = &after_fact[i] {
                crate::inbox::after_fact::repo::enqueue(&mut tx, &r.id, *reason, r.created_at)
                    .await?;
            }
            append(
                &mut tx,
                &Actor::Agent(r.agent_id.clone()),
                "request_gated",
                Some(&r.id),
                json!({"action_type": r.action_type, "tier": r.tier, "gate_version": r.gate_version, "matched_rules": r.matched_rules, "explanation": r.explanation, "state_version": 1, "after_fact_review": after_fact[i].as_ref().map(|(reason, _)| reason)}),
                r.created_at,
            )
            .await?;
        }
        if k % 2000 == 1999 {
            tx.commit().await?;
            tx = db.begin_write().await?;
        }
    }
    tx.commit().await?;
    Ok(Some(summary))
}

/// What happens to one request in the demo's trail, in this order when at the same moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Event {
    Gated,
    Decided(usize),
    Judged,
}

/// A demo after-the-fact judgement.
struct DemoJudgement {
    reviewer: &'static str,
    verdict: Judgement,
    note: Option<&'static str>,
    at: i64,
}

const AFTER_FACT_NOTES: &[&str] = &[
    "Refund went to a customer already refunded in another ticket",
    "Segment included people who unsubscribed last week",
    "Amount is above what the policy allows without a receipt",
    "Wrong records: the filter matched archived accounts",
];

/// Per row: whether it is in the after-the-fact queue (every `log` request, `auto` ones as the
/// gate samples them, decided exactly as a live submission would) and how a reviewer judged it:
/// all of those older than a week, most of those older than two days. The last two days stay
/// unjudged so the queue has work in it. A separate random stream keeps the simulated requests
/// themselves unchanged.
async fn after_fact_history(
    db: &Db,
    live: &gates::LivePolicy,
    rows: &[DemoRow],
    seed: u64,
    now: i64,
) -> anyhow::Result<Vec<Option<(QueueReason, Option<DemoJudgement>)>>> {
    let keys: Vec<(String, String)> = on_db!(db, |p| sqlx::query_as("SELECT id, key FROM gates")
        .fetch_all(p)
        .await)?;
    let rate = |gate_id: &Option<String>| {
        gate_id
            .as_ref()
            .and_then(|g| keys.iter().find(|(id, _)| id == g))
            .and_then(|(_, key)| live.policy.definition(key))
            .map_or(0.0, |d| d.settings.auto_sample_rate)
    };
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xaf7e_4fac);
    Ok(rows
        .iter()
        .map(|row| {
            let r = &row.request;
            let tier: Tier = r.tier.parse().ok()?;
            let reason = queue_reason(tier, &r.id, rate(&r.gate_id))?;
            let age = now - r.created_at;
            let judged = (age > 2 * DAY && (age > 7 * DAY || rng.gen_bool(0.6))).then(|| {
                let bad = rng.gen_bool(0.06);
                DemoJudgement {
                    reviewer: pick_reviewer(&mut rng, r.acting_for.as_deref(), None),
                    verdict: if bad {
                        Judgement::ShouldNotHaveHappened
                    } else {
                        Judgement::Fine
                    },
                    note: bad.then(|| *pick(&mut rng, AFTER_FACT_NOTES)),
                    at: (r.created_at + rng.gen_range(HOUR..30 * HOUR)).min(now - MINUTE),
                }
            });
            Some((reason, judged))
        })
        .collect())
}

async fn judge_in_demo(
    tx: &mut super::db::Tx,
    request_id: &str,
    reason: QueueReason,
    j: &DemoJudgement,
) -> anyhow::Result<()> {
    crate::on_tx!(tx, |c| {
        sqlx::query(
        "UPDATE after_fact_reviews SET verdict = $2, reviewer_id = $3, note = $4, reviewed_at = $5 \
         WHERE request_id = $1"
    )
    .bind(request_id)
    .bind(j.verdict.as_str())
    .bind(j.reviewer)
    .bind(j.note)
    .bind(j.at)
    .execute(&mut *c)
    .await
    .map(|_| ())
    })?;
    append(
        tx,
        &Actor::User(j.reviewer.to_owned()),
        "after_fact_reviewed",
        Some(request_id),
        json!({"verdict": j.verdict.as_str(), "note": j.note, "queued_because": reason.as_str(), "state_version": 1, "together_with": 0}),
        j.at,
    )
    .await?;
    Ok(())
}

/// The demo's simulated history without storing it: `days * per_day` requests ending at `now`,
/// gated by `live` (the demo gates), each with the decision made on it, if any. `load` stores
/// these with their audit trail; benchmarks bulk-load them without.
pub fn simulate(
    live: &gates::LivePolicy,
    seed: u64,
    days: u32,
    per_day: u32,
    now: i64,
) -> impl Iterator<Item = (NewActionRequest, Vec<NewDecision>)> + '_ {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let start = now - days as i64 * DAY;
    let total_weight: u32 = AGENTS.iter().map(|a| a.weight).sum();
    let expected = days as u64 * per_day as u64;
    (0..expected).map(move |n| {
        // Spread over the window, denser on weekdays and working hours.
        let mut at = start + rng.gen_range(0..(days as i64 * DAY));
        let hour = (at % DAY) / HOUR;
        if !(7..19).contains(&hour) && rng.gen_bool(0.6) {
            at = at - (at % DAY) + 9 * HOUR + rng.gen_range(0..9 * HOUR);
        }
        if at >= now {
            at = now - rng.gen_range(1..HOUR);
        }
        let mut pick_w = rng.gen_range(0..total_weight);
        let agent = AGENTS.iter().position(|a| {
            if pick_w < a.weight {
                true
            } else {
                pick_w -= a.weight;
                false
            }
        });
        let proposal = propose(&mut rng, agent.unwrap_or(0), n);
        let row = gate_and_decide(&mut rng, live, proposal, at, now, n);
        (row.request, row.decisions)
    })
}

struct DemoRow {
    request: NewActionRequest,
    /// One decision, or for a dual request the two reviewers' (the deciding one last).
    decisions: Vec<NewDecision>,
}

fn gate_and_decide(
    rng: &mut ChaCha8Rng,
    live: &gates::LivePolicy,
    p: Proposal,
    at: i64,
    now: i64,
    n: u64,
) -> DemoRow {
    let agent = &AGENTS[p.agent];
    let facts = Facts {
        action_type: p.action_type,
        agent: agent.name,
        amount: p.amount,
        record_count: p.record_count,
        recipient_count: p.recipient_count,
        confidence: Some(p.confidence),
        customer_tier: p.customer_tier,
        risk_class: p.risk_class,
    };
    let gates::Gating {
        evaluation,
        explanation,
        gate_id,
        gate_version,
        matched_rules: matched,
    } = live.gate(&facts);
    let id = demo_id(rng, "req", at);
    let deadline = at + p.deadline_hours * HOUR;

    let age = now - at;
    let (status, decision_kind, decided_at): (Status, Option<&'static str>, Option<i64>) =
        match evaluation.tier {
            Tier::Auto | Tier::Log => (
                if rng.gen_bool(0.9) {
                    Status::Executed
                } else {
                    Status::Approved
                },
                None,
                Some(at),
            ),
            Tier::Block => (Status::Rejected, None, Some(at)),
            Tier::Review | Tier::Dual => {
                let still_open = age < 36 * HOUR && rng.gen_bool(0.85);
                let escalation = super::config::DEFAULT_ESCALATION_WINDOW.as_millis() as i64;
                if still_open && now > deadline + escalation {
                    // Nobody answered the escalation either: the job loop expired it.
                    (Status::Expired, Some("expire"), Some(deadline + escalation))
                } else if still_open {
                    let s = if now > deadline {
                        Status::Escalated
                    } else if rng.gen_bool(0.1) {
                        Status::InReview
                    } else {
                        Status::Pending
                    };
                    (s, None, None)
                } else {
                    let decided = (at
                        + rng.gen_range(5 * MINUTE..(p.deadline_hours * HOUR).min(10 * HOUR)))
                    .min(now - MINUTE)
                    // Never before the request itself (it may be less than a minute old).
                    .max(at);
                    let roll: f64 = rng.gen();
                    if roll < 0.70 {
                        (
                            if rng.gen_bool(0.85) {
                                Status::Executed
                            } else {
                                Status::Approved
                            },
                            Some("approve"),
                            Some(decided),
                        )
                    } else if roll < 0.81 {
                        (
                            Status::ApprovedWithEdit,
                            Some("approve_with_edit"),
                            Some(decided),
                        )
                    } else if roll < 0.96 {
                        (Status::Rejected, Some("reject"), Some(decided))
                    } else {
                        (
                            Status::Expired,
                            Some("expire"),
                            Some(deadline.min(now - MINUTE).max(at)),
                        )
                    }
                }
            }
        };

    let payload_text = p.payload.to_string();
    let request = NewActionRequest {
        id: id.clone(),
        agent_id: agent.id.to_owned(),
        idempotency_key: format!("demo-{n}"),
        body_sha256: requests::sha256_hex(payload_text.as_bytes()),
        action_type: p.action_type.to_owned(),
        title: p.title,
        payload: payload_text,
        current_state: p.current_state.map(|v| v.to_string()),
        inputs: Some(p.inputs.to_string()),
        reasoning: p.reasoning,
        alternatives: Some(p.alternatives.to_string()),
        confidence: Some(p.confidence),
        amount_minor: p.amount.map(|m| m.minor),
        currency: p.amount.map(|m| m.currency.code().to_owned()),
        counterparty: p.counterparty,
        customer_tier: p.customer_tier.map(str::to_owned),
        record_count: p.record_count,
        recipient_count: p.recipient_count,
        risk_class: p.risk_class.map(str::to_owned),
        acting_for: p.acting_for.map(str::to_owned),
        tenant: Some("acme-eu".to_owned()),
        callback_url: None,
        // An escalated request's deadline has moved out by the escalation window.
        deadline_at: evaluation
            .tier
            .needs_human()
            .then_some(if status == Status::Escalated {
                deadline + super::config::DEFAULT_ESCALATION_WINDOW.as_millis() as i64
            } else {
                deadline
            }),
        tier: evaluation.tier.as_str().to_owned(),
        status: status.as_str().to_owned(),
        gate_id,
        gate_version,
        matched_rules: serde_json::to_string(&matched).unwrap_or_else(|_| "[]".into()),
        explanation,
        created_at: at,
        decided_at,
    };

    let mut decisions = Vec::new();
    if let Some(kind) = decision_kind {
        let decided = decided_at.unwrap_or(at);
        let reviewer = pick_reviewer(rng, p.acting_for, None);
        let (reason_code, reason_text) = if kind == "reject" {
            let (c, t) = *pick(rng, REJECT_REASONS);
            (Some(c.to_owned()), Some(t.to_owned()))
        } else if kind == "expire" {
            (
                Some("expired".to_owned()),
                Some("No decision before the deadline".to_owned()),
            )
        } else {
            (None, None)
        };
        let edited = (kind == "approve_with_edit").then(|| edit_payload(&request.payload));
        if request.tier == "dual" && kind != "expire" {
            // The other, independent half: a different person, who approved what the outcome
            // approves (or approved the proposal, when the outcome is the first's rejection).
            let other = pick_reviewer(rng, p.acting_for, Some(reviewer));
            let earlier = (decided - rng.gen_range(60_000..3_600_000)).max(at);
            decisions.push(NewDecision {
                id: demo_id(rng, "dec", earlier),
                request_id: id.clone(),
                reviewer_id: Some(other.to_owned()),
                kind: if kind == "reject" { "approve" } else { kind },
                state_version: 1,
                edited_payload: edited.clone(),
                reason_code: None,
                reason_text: None,
                created_at: earlier,
            });
        }
        decisions.push(NewDecision {
            id: demo_id(rng, "dec", decided),
            request_id: id.clone(),
            reviewer_id: (kind != "expire").then(|| reviewer.to_owned()),
            kind,
            state_version: 1,
            edited_payload: edited,
            reason_code,
            reason_text,
            created_at: decided,
        });
    }
    DemoRow { request, decisions }
}

/// A demo reviewer who is neither the person the request acts for nor `besides`.
fn pick_reviewer(
    rng: &mut ChaCha8Rng,
    acting_for: Option<&str>,
    besides: Option<&'static str>,
) -> &'static str {
    loop {
        let r = *pick(rng, REVIEWERS);
        if Some(r) != acting_for && Some(r) != besides {
            break r;
        }
    }
}

/// A reviewer's typical edit: lower an amount, or soften a text.
fn edit_payload(payload: &str) -> String {
    let mut v: serde_json::Value = serde_json::from_str(payload).unwrap_or_default();
    if let Some(obj) = v.as_object_mut() {
        if let Some(serde_json::Value::String(a)) = obj.get("amount").cloned() {
            if let Ok(x) = a.parse::<f64>() {
                obj.insert(
                    "amount".into(),
                    json!(format!("{:.2}", (x * 0.8 * 100.0).round() / 100.0)),
                );
            }
        } else if let Some(serde_json::Value::String(t)) = obj.get("text").cloned() {
            obj.insert(
                "text".into(),
                json!(t.replace(
                    "for convenience",
                    "for convenience, after a good-faith escalation,"
                )),
            );
        } else if obj.contains_key("duration_days") {
            obj.insert("duration_days".into(), json!(1));
        } else if let Some(serde_json::Value::String(s)) = obj.get("subject").cloned() {
            obj.insert("subject".into(), json!(format!("{s} (please read)")));
        }
    }
    v.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_gates_compile() {
        let defs = demo_gates().into_iter().map(|g| (g, 1)).collect();
        crate::domain::policy::compile(defs).unwrap();
    }

    #[test]
    fn the_same_seed_gives_the_same_proposals() {
        let gen = |seed| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            (0..50)
                .map(|n| propose(&mut rng, (n % 6) as usize, n).payload.to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(gen(7), gen(7));
        assert_ne!(gen(7), gen(8));
    }

    #[test]
    fn no_decision_predates_its_request_even_for_brand_new_requests() {
        let defs = demo_gates().into_iter().map(|g| (g, 1)).collect();
        let live = gates::LivePolicy::new(crate::domain::policy::compile(defs).unwrap(), vec![]);
        let now = 1_795_219_200_000;
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for n in 0..3000 {
            // Requests from 40 hours to one second old, so some are decided and some are fresh.
            let age = if n % 2 == 0 { 1_000 } else { 40 * HOUR };
            let proposal = propose(&mut rng, (n % 6) as usize, n);
            let row = gate_and_decide(&mut rng, &live, proposal, now - age, now, n);
            for d in &row.decisions {
                assert!(
                    d.created_at >= row.request.created_at,
                    "decision before request: {n}"
                );
            }
            if let Some(t) = row.request.decided_at {
                assert!(t >= row.request.created_at);
            }
        }
    }

    #[test]
    fn edits_change_the_payload() {
        let p = json!({"amount": "100.00", "currency": "EUR"}).to_string();
        let edited: serde_json::Value = serde_json::from_str(&edit_payload(&p)).unwrap();
        assert_eq!(edited["amount"], "80.00");
    }
}
