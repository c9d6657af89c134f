//! Audit verification throughput against its limit: plain SHA-256 over exactly the bytes the
//! chain hashes (target: verify at least 50% of plain SHA-256; see BENCHMARKS.md).

use countersign::audit::chain::{chain_hash, verify, EventBody, GENESIS_HASH};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sha2::{Digest, Sha256};
use std::hint::black_box;

const EVENTS: i64 = 100_000;

/// Events shaped like the demo's: a decision or a view with a few hundred bytes of detail.
fn trail() -> Vec<(EventBody, String, String)> {
    let mut prev = GENESIS_HASH.to_owned();
    (1..=EVENTS)
        .map(|seq| {
            let e = EventBody {
                seq,
                occurred_at: 1_790_000_000_000 + seq * 1_000,
                actor_kind: "user".into(),
                actor_id: Some(format!("usr_{}", seq % 9)),
                event_type: if seq % 2 == 0 { "decision" } else { "request_viewed" }.into(),
                request_id: Some(format!("req_01a1f97ddd8e7d64ae1c5d5a8d{seq:06}")),
                detail: format!(
                    r#"{{"edited_payload":null,"kind":"approve","reason":null,"reason_code":null,"state_version":1,"ip":"10.0.0.{}","user_agent":"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36"}}"#,
                    seq % 255
                ),
            };
            let hash = chain_hash(&prev, &e);
            let row = (e, prev.clone(), hash.clone());
            prev = hash;
            row
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let rows = trail();
    // The exact bytes each link hashes: the previous hash (raw) and the canonical event.
    let inputs: Vec<(Vec<u8>, Vec<u8>)> = rows
        .iter()
        .map(|(e, p, _)| (hex::decode(p).unwrap(), e.canonical_bytes()))
        .collect();
    let bytes: u64 = inputs.iter().map(|(p, e)| (p.len() + e.len()) as u64).sum();
    let mut group = c.benchmark_group("audit");
    group.sample_size(10);
    group.throughput(Throughput::Bytes(bytes));
    group.bench_function("plain SHA-256 over the chained bytes (the limit)", |b| {
        b.iter(|| {
            for (p, e) in &inputs {
                let mut h = Sha256::new();
                h.update(p);
                h.update(e);
                black_box(h.finalize());
            }
        })
    });
    group.bench_function("verify 100,000 events", |b| {
        b.iter(|| {
            black_box(
                verify(
                    rows.iter().map(|(e, p, h)| (e, p.as_str(), h.as_str())),
                    1,
                    GENESIS_HASH,
                )
                .expect("the chain verifies"),
            )
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
