//! Gate evaluation throughput for a 50-rule policy (target: at least 1,000,000 evaluations per
//! second on the 2-core reference machine; see BENCHMARKS.md).

use countersign::domain::money::Money;
use countersign::domain::policy::{compile, Facts, GateDefinition, Policy};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;

/// Ten gates of five rules each, over every kind of condition.
fn fifty_rule_policy() -> Policy {
    let mut gates = Vec::new();
    for g in 0..10 {
        let def: GateDefinition = serde_json::from_value(serde_json::json!({
            "key": format!("gate-{g}"),
            "name": format!("Gate {g}"),
            "action_types": [format!("domain{g}.*"), format!("payment.kind{g}")],
            "base_tier": "auto",
            "rules": [
                {"key": "amount", "when": [{"attribute": "amount_above", "thresholds": [
                    {"amount": format!("{}", 1000 + g * 100), "currency": "EUR"},
                    {"amount": "1200", "currency": "USD"}]}], "tier": "review"},
                {"key": "records", "when": [{"attribute": "record_count_above", "count": 100 + g}], "tier": "review"},
                {"key": "recipients", "when": [{"attribute": "recipient_count_above", "count": 1000}], "tier": "log"},
                {"key": "confidence", "when": [{"attribute": "confidence_below", "value": 0.6}], "tier": "review"},
                {"key": "enterprise-large", "when": [
                    {"attribute": "customer_tier_in", "tiers": ["enterprise", "strategic"]},
                    {"attribute": "amount_above", "thresholds": [{"amount": "5000", "currency": "EUR"}]}
                ], "tier": "dual"}
            ]
        }))
        .expect("valid gate");
        gates.push((def, 1));
    }
    compile(gates).expect("policy compiles")
}

fn bench(c: &mut Criterion) {
    let policy = fifty_rule_policy();
    let amounts: Vec<Money> = ["12.00", "950.00", "4200.00", "8000.00"]
        .iter()
        .map(|a| Money::parse(a, "EUR").unwrap())
        .collect();
    let action_types = [
        "payment.kind3",
        "domain7.bulk",
        "domain0.x",
        "unmatched.type",
    ];
    let facts: Vec<Facts<'static>> = (0..64)
        .map(|i| Facts {
            action_type: action_types[i % 4],
            agent: "bench-agent",
            amount: Some(amounts[i % amounts.len()]),
            record_count: Some((i as i64) * 7),
            recipient_count: None,
            confidence: Some(0.5 + (i % 5) as f64 / 10.0),
            customer_tier: Some(if i % 3 == 0 { "enterprise" } else { "smb" }),
            risk_class: None,
        })
        .collect();
    let mut group = c.benchmark_group("gate evaluation");
    group.throughput(Throughput::Elements(facts.len() as u64));
    group.bench_function("50-rule policy, 64 requests", |b| {
        b.iter(|| {
            for f in &facts {
                black_box(policy.evaluate(black_box(f)));
            }
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
