//! Threshold tuning over a long history: a what-if backtest over 1,000,000 past requests
//! (target: under 5 s on the 2-core reference machine) and the per-rule statistics for the same
//! history; see BENCHMARKS.md. The history mixes the demo's action types, amounts and outcomes.

use countersign::domain::backtest::{
    candidate, run, with_threshold, BacktestSettings, ThresholdChange,
};
use countersign::domain::policy::{compile, GateDefinition, Policy};
use countersign::domain::stats::{summarise, GroupBy, Hindsight, HistoricRequest, Outcome, Window};
use countersign::domain::tier::Tier;
use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;

const REQUESTS: usize = 1_000_000;

fn refunds(threshold: &str) -> GateDefinition {
    serde_json::from_value(serde_json::json!({
        "key": "refunds", "name": "Refunds", "action_types": ["payment.refund"], "base_tier": "auto",
        "rules": [
            {"key": "large", "when": [{"attribute": "amount_above", "thresholds": [{"amount": threshold, "currency": "EUR"}]}], "tier": "review"},
            {"key": "unsure", "when": [{"attribute": "confidence_below", "value": 0.7}], "tier": "review"},
            {"key": "strategic", "when": [{"attribute": "customer_tier_in", "tiers": ["strategic"]}], "tier": "dual"}
        ]
    }))
    .expect("valid gate")
}

fn others() -> Vec<(GateDefinition, i64)> {
    (0..9)
        .map(|g| {
            let def: GateDefinition = serde_json::from_value(serde_json::json!({
                "key": format!("gate-{g}"), "name": format!("Gate {g}"),
                "action_types": [format!("domain{g}.*")], "base_tier": "log",
                "rules": (0..5).map(|r| serde_json::json!({
                    "key": format!("rule-{r}"),
                    "when": [{"attribute": "record_count_above", "count": 100 * (r + 1)}],
                    "tier": "review"
                })).collect::<Vec<_>>()
            }))
            .expect("valid gate");
            (def, 1)
        })
        .collect()
}

fn live() -> Policy {
    let mut gates = others();
    gates.push((refunds("1000"), 1));
    compile(gates).expect("policy compiles")
}

fn history() -> Vec<HistoricRequest> {
    let outcomes = [
        Outcome::ApprovedUnchanged,
        Outcome::ApprovedUnchanged,
        Outcome::ApprovedUnchanged,
        Outcome::ApprovedWithEdit,
        Outcome::Rejected,
        Outcome::AutoApproved,
    ];
    (0..REQUESTS)
        .map(|i| {
            let refund = i % 3 != 0;
            HistoricRequest {
                id: format!("req_{i:08}"),
                action_type: if refund {
                    "payment.refund".into()
                } else {
                    format!("domain{}.update", i % 9)
                },
                agent: format!("agent-{}", i % 6),
                amount_minor: Some((i as i64 * 7_919) % 500_000),
                currency: Some("EUR".into()),
                record_count: Some((i as i64 * 31) % 700),
                recipient_count: None,
                confidence: Some(0.5 + (i % 50) as f64 / 100.0),
                customer_tier: Some(if i % 97 == 0 { "strategic" } else { "standard" }.into()),
                risk_class: None,
                tier: if i % 2 == 0 { Tier::Review } else { Tier::Auto },
                gate_key: Some(if refund {
                    "refunds".into()
                } else {
                    format!("gate-{}", i % 9)
                }),
                matched_rules: vec!["large".into()],
                outcome: outcomes[i % outcomes.len()],
                created_at_ms: 1_790_000_000_000 + i as i64 * 1_000,
                decided_at_ms: Some(
                    1_790_000_000_000 + i as i64 * 1_000 + 60_000 + (i as i64 % 7) * 600_000,
                ),
                reviewer_id: Some(format!("usr_{}", i % 5)),
                hindsight: Hindsight::NotReviewed,
            }
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let history = history();
    let live = live();
    let raised = with_threshold(
        &refunds("1000"),
        "large",
        &ThresholdChange::Amount {
            amount: "2000".into(),
            currency: "EUR".into(),
        },
    )
    .expect("rule exists");
    let candidate = candidate(&live, raised).expect("candidate compiles");
    let settings = BacktestSettings::default();
    let mut group = c.benchmark_group("tuning");
    group.sample_size(10);
    group.bench_function("backtest 1,000,000 requests (raise a threshold)", |b| {
        b.iter(|| black_box(run(&live, &candidate, &history, &settings)))
    });
    let window = Window {
        from_ms: i64::MIN,
        to_ms: i64::MAX,
    };
    group.bench_function("stats by rule over 1,000,000 requests", |b| {
        b.iter(|| black_box(summarise(&history, GroupBy::Rule, window)))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
