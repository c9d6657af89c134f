//! Repository tests, run against SQLite and PostgreSQL alike.

mod common;

use common::{fresh_db, load_demo, Engine};
use countersign::domain::tier::Tier;
use countersign::inbox::{list_queries, GroupBy, InboxFilter, ListQuery, SortBy};
use countersign::on_db;
use countersign::server::now_ms;
use std::collections::HashSet;

fn tier_only(tier: Tier) -> ListQuery {
    ListQuery {
        tier: Some(tier),
        ..Default::default()
    }
}

async fn migrations_are_idempotent(engine: Engine) {
    let Some(t) = fresh_db(engine).await else {
        return;
    };
    t.db.migrate().await.expect("second migrate is a no-op");
}
on_both_engines!(migrations_are_idempotent_on, migrations_are_idempotent);

async fn demo_loads_once_and_inbox_pages_cover_every_open_request(engine: Engine) {
    let Some(t) = fresh_db(engine).await else {
        return;
    };
    let now = now_ms();
    let summary = load_demo(&t.db, 7, 14, 60, now).await;
    assert_eq!(summary.requests, 14 * 60);
    assert!(
        summary.pending > 5,
        "demo leaves work in the inbox: {summary:?}"
    );
    assert!(summary.decisions > 100, "{summary:?}");

    // A second load leaves existing data alone.
    let again = countersign::server::demo::load(&t.db, &common::demo_args(7, 14, 60), now)
        .await
        .unwrap();
    assert!(again.is_none());

    // The newest waiting request, escalated: it must come first although it is the youngest.
    let escalated: String = on_db!(&t.db, |p| sqlx::query_scalar(
        "SELECT id FROM action_requests WHERE status = 'pending' AND deadline_at > $1 \
         ORDER BY created_at DESC LIMIT 1"
    )
    .bind(now)
    .fetch_one(p)
    .await
    .unwrap());
    on_db!(&t.db, |p| sqlx::query(
        "UPDATE action_requests SET status = 'escalated' WHERE id = $1"
    )
    .bind(&escalated)
    .execute(p)
    .await
    .map(|_| ())
    .unwrap());
    let first = list_queries::open_requests(
        &t.db,
        list_queries::CountSource::Fresh,
        &ListQuery::default(),
        "nobody",
        50,
    )
    .await
    .unwrap();
    let at = first.rows.iter().position(|r| r.id == escalated);
    assert!(
        at.is_some_and(|i| first.rows[..=i].iter().all(|r| r.urgent)),
        "the escalated request is among the urgent ones at the top: {at:?}"
    );

    // Walk every page of every grouping and order: no overlaps, nothing missed, and each page
    // continues the order of the one before.
    for group in GroupBy::ALL {
        for sort in SortBy::ALL {
            let mut seen = HashSet::new();
            let mut last: Option<(String, bool, String)> = None;
            // Oldest first: (urgent first, created, id) strictly increasing inside a group.
            let mut last_age: Option<(String, bool, i64, String)> = None;
            let mut urgent_seen = 0;
            let mut filter = InboxFilter {
                group: Some(group.param().to_owned()),
                sort: Some(sort.param().to_owned()),
                ..Default::default()
            };
            loop {
                let q = ListQuery::parse(&filter).unwrap();
                let page = list_queries::open_requests(
                    &t.db,
                    list_queries::CountSource::Fresh,
                    &q,
                    "nobody",
                    7,
                )
                .await
                .unwrap();
                assert_eq!(page.open_total, summary.pending as i64);
                let group_total: i64 = page.groups.iter().map(|g| g.count).sum();
                assert_eq!(group_total, page.open_total);
                for row in &page.rows {
                    assert!(
                        seen.insert(row.id.clone()),
                        "{group:?}/{sort:?}: row {} appeared twice",
                        row.id
                    );
                    assert!(matches!(
                        row.status.as_str(),
                        "pending" | "in_review" | "escalated"
                    ));
                    // Groups are contiguous and, inside one, urgent rows come first.
                    let here = (row.group_value.clone(), !row.urgent, row.id.clone());
                    if let Some(prev) = &last {
                        assert!(prev.0 <= here.0, "{group:?}/{sort:?}: groups in order");
                        if prev.0 == here.0 {
                            assert!(prev.1 <= here.1, "{group:?}/{sort:?}: urgent first");
                        }
                    }
                    last = Some(here);
                    urgent_seen += usize::from(row.urgent);
                    if sort == SortBy::Age {
                        let here = (
                            row.group_value.clone(),
                            !row.urgent,
                            row.created_at,
                            row.id.clone(),
                        );
                        if let Some(prev) = &last_age {
                            assert!(
                                prev.0 != here.0 || *prev < here,
                                "{group:?}/{sort:?}: {prev:?} before {here:?}"
                            );
                        }
                        last_age = Some(here);
                    }
                }
                match page.next_after {
                    Some(c) => filter.after = Some(c),
                    None => break,
                }
            }
            assert_eq!(seen.len() as u64, summary.pending, "{group:?}/{sort:?}");
            assert!(
                urgent_seen > 0 && urgent_seen < seen.len(),
                "the demo's open work has overdue and waiting requests ({urgent_seen} urgent)"
            );
        }
    }

    let dual = list_queries::open_requests(
        &t.db,
        list_queries::CountSource::Fresh,
        &tier_only(Tier::Dual),
        "nobody",
        1000,
    )
    .await
    .unwrap();
    assert!(dual.rows.iter().all(|r| r.tier == "dual"));
    let review = list_queries::open_requests(
        &t.db,
        list_queries::CountSource::Fresh,
        &tier_only(Tier::Review),
        "nobody",
        1000,
    )
    .await
    .unwrap();
    assert_eq!(
        dual.open_total + review.open_total,
        summary.pending as i64,
        "only review and dual requests wait for people"
    );

    // Amount ranges compare in major units; the largest-amount order agrees.
    let all = list_queries::open_requests(
        &t.db,
        list_queries::CountSource::Fresh,
        &ListQuery::parse(&InboxFilter {
            sort: Some("amount".into()),
            ..Default::default()
        })
        .unwrap(),
        "nobody",
        1000,
    )
    .await
    .unwrap();
    let amounts: Vec<i64> = all.rows.iter().filter_map(|r| r.amount_minor).collect();
    assert!(amounts.len() > 3, "the demo has amounts to sort");
    let eur_or_usd = |r: &countersign::inbox::InboxRow| {
        matches!(r.currency.as_deref(), Some("EUR" | "USD" | "GBP"))
    };
    let sorted: Vec<i64> = all
        .rows
        .iter()
        .filter(|r| !r.urgent && eur_or_usd(r))
        .filter_map(|r| r.amount_minor)
        .collect();
    assert!(
        sorted.windows(2).all(|w| w[0] >= w[1]),
        "largest first: {sorted:?}"
    );
    let over_1000 = list_queries::open_requests(
        &t.db,
        list_queries::CountSource::Fresh,
        &ListQuery::parse(&InboxFilter {
            min_amount: Some("1,000".into()),
            ..Default::default()
        })
        .unwrap(),
        "nobody",
        1000,
    )
    .await
    .unwrap();
    // Every match has an amount of at least 1,000 in its own currency; nothing without one.
    assert!(over_1000.open_total > 0 && over_1000.open_total < all.open_total);
    for r in &over_1000.rows {
        let minor = r
            .amount_minor
            .expect("an amount filter drops requests without one");
        if eur_or_usd(r) {
            assert!(minor >= 100_000, "{} {minor}", r.id);
        }
    }
    let expected = all
        .rows
        .iter()
        .filter(|r| eur_or_usd(r) && r.amount_minor.is_some_and(|m| m >= 100_000))
        .count();
    assert_eq!(
        over_1000.rows.iter().filter(|r| eur_or_usd(r)).count(),
        expected
    );
}
on_both_engines!(
    demo_and_inbox_paging,
    demo_loads_once_and_inbox_pages_cover_every_open_request
);

async fn demo_is_reproducible(engine: Engine) {
    let (Some(a), Some(b)) = (fresh_db(engine).await, fresh_db(engine).await) else {
        return;
    };
    let now = 1_795_219_200_000;
    load_demo(&a.db, 11, 5, 40, now).await;
    load_demo(&b.db, 11, 5, 40, now).await;
    let (da, db_) = (dump_requests(&a.db).await, dump_requests(&b.db).await);
    assert_eq!(da.len(), 200);
    assert_eq!(da, db_);
}
on_both_engines!(demo_reproducible, demo_is_reproducible);

async fn dump_requests(db: &countersign::server::Db) -> Vec<(String, String, String, String)> {
    on_db!(db, |p| sqlx::query_as(
        "SELECT id, payload, tier, status FROM action_requests ORDER BY id"
    )
    .fetch_all(p)
    .await
    .unwrap())
}

async fn every_request_records_the_gate_version_that_gated_it(engine: Engine) {
    let Some(t) = fresh_db(engine).await else {
        return;
    };
    load_demo(&t.db, 3, 3, 50, now_ms()).await;
    let ungated: i64 = on_db!(&t.db, |p| sqlx::query_scalar(
        "SELECT COUNT(*) FROM action_requests WHERE gate_id IS NULL OR gate_version IS NULL"
    )
    .fetch_one(p)
    .await
    .unwrap());
    assert_eq!(ungated, 0, "every demo action type is matched by a gate");
}
on_both_engines!(
    gate_version_recorded,
    every_request_records_the_gate_version_that_gated_it
);

async fn audit_events_refuse_update_and_delete(engine: Engine) {
    let Some(t) = fresh_db(engine).await else {
        return;
    };
    on_db!(&t.db, |p| {
        sqlx::query(
            "INSERT INTO audit_events (seq, occurred_at, actor_kind, event_type, detail, prev_hash, hash) \
             VALUES (1, 0, 'system', 'test', '{}', '00', '11')",
        )
        .execute(p)
        .await
        .unwrap();
        let update = sqlx::query("UPDATE audit_events SET detail = 'x' WHERE seq = 1")
            .execute(p)
            .await;
        assert!(update.unwrap_err().to_string().contains("append-only"));
        let delete = sqlx::query("DELETE FROM audit_events WHERE seq = 1")
            .execute(p)
            .await;
        assert!(delete.unwrap_err().to_string().contains("append-only"));
        let still: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_events")
            .fetch_one(p)
            .await
            .unwrap();
        assert_eq!(still, 1);
    });
    if let countersign::server::Db::Postgres(p) = &t.db {
        let truncate = sqlx::query("TRUNCATE audit_events").execute(p).await;
        assert!(truncate.unwrap_err().to_string().contains("append-only"));
    }
    // Checkpoints are evidence too.
    on_db!(&t.db, |p| {
        sqlx::query(
            "INSERT INTO audit_checkpoints (seq, hash, signed_at, public_key, signature) \
             VALUES (1, '11', 0, 'k', 's')",
        )
        .execute(p)
        .await
        .unwrap();
        for statement in [
            "UPDATE audit_checkpoints SET hash = '22'",
            "DELETE FROM audit_checkpoints",
        ] {
            let refused = sqlx::query(statement).execute(p).await;
            assert!(
                refused.unwrap_err().to_string().contains("append-only"),
                "{statement}"
            );
        }
    });
}
on_both_engines!(audit_append_only, audit_events_refuse_update_and_delete);

async fn concurrent_audit_appends_form_one_gapless_valid_chain(engine: Engine) {
    use countersign::audit::repo::{append, Actor};
    let Some(t) = fresh_db(engine).await else {
        return;
    };
    let mut tasks = Vec::new();
    for worker in 0..8 {
        let db = t.db.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..10 {
                let mut tx = db.begin_write().await.unwrap();
                append(
                    &mut tx,
                    &Actor::System,
                    "test",
                    None,
                    serde_json::json!({"worker": worker, "i": i}),
                    now_ms(),
                )
                .await
                .unwrap();
                tx.commit().await.unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let verified = countersign::audit::verify::verify_trail(&t.db, NO_KEY)
        .await
        .expect("the chain verifies");
    assert_eq!(
        (verified.events, verified.head_seq),
        (80, 80),
        "80 appends, numbered 1..=80 without gaps"
    );
}
on_both_engines!(
    audit_chain_under_concurrency,
    concurrent_audit_appends_form_one_gapless_valid_chain
);

/// The trusted checkpoint key, where a test writes no checkpoints.
const NO_KEY: &str = "no checkpoints in this test";

/// Changes rows as a database superuser would, going around the append-only triggers.
async fn tamper(db: &countersign::server::Db, statements: &[&str]) {
    match db {
        countersign::server::Db::Sqlite(p) => {
            let mut c = p.acquire().await.unwrap();
            sqlx::query("DROP TRIGGER audit_events_no_update")
                .execute(&mut *c)
                .await
                .unwrap();
            sqlx::query("DROP TRIGGER audit_events_no_delete")
                .execute(&mut *c)
                .await
                .unwrap();
            sqlx::query("DROP TRIGGER audit_checkpoints_no_delete")
                .execute(&mut *c)
                .await
                .unwrap();
            for s in statements {
                sqlx::query(s).execute(&mut *c).await.unwrap();
            }
        }
        countersign::server::Db::Postgres(p) => {
            let mut c = p.acquire().await.unwrap();
            sqlx::query("SET session_replication_role = replica")
                .execute(&mut *c)
                .await
                .unwrap();
            for s in statements {
                sqlx::query(s).execute(&mut *c).await.unwrap();
            }
            sqlx::query("SET session_replication_role = origin")
                .execute(&mut *c)
                .await
                .unwrap();
        }
    }
}

async fn verify_names_the_first_changed_removed_or_reordered_event(engine: Engine) {
    use countersign::audit::chain::ChainError;
    use countersign::audit::repo::{append, Actor};
    use countersign::audit::verify::{verify_trail, VerifyError};
    let cases: [(&[&str], ChainError); 3] = [
        (
            &["UPDATE audit_events SET detail = '{\"n\":99}' WHERE seq = 3"],
            ChainError::Tampered { seq: 3 },
        ),
        (
            &["DELETE FROM audit_events WHERE seq = 2"],
            ChainError::Gap {
                seq: 3,
                expected: 2,
            },
        ),
        (
            &[
                "UPDATE audit_events SET seq = -1 WHERE seq = 2",
                "UPDATE audit_events SET seq = 2 WHERE seq = 3",
                "UPDATE audit_events SET seq = 3 WHERE seq = -1",
            ],
            ChainError::BrokenLink { seq: 2 },
        ),
    ];
    for (statements, expected) in cases {
        let Some(t) = fresh_db(engine).await else {
            return;
        };
        let mut tx = t.db.begin_write().await.unwrap();
        for n in 0..5 {
            append(
                &mut tx,
                &Actor::System,
                "test",
                None,
                serde_json::json!({"n": n}),
                now_ms(),
            )
            .await
            .unwrap();
        }
        tx.commit().await.unwrap();
        let ok = verify_trail(&t.db, NO_KEY).await.unwrap();
        assert_eq!((ok.events, ok.head_seq), (5, 5));
        tamper(&t.db, statements).await;
        match verify_trail(&t.db, NO_KEY).await {
            Err(VerifyError::Broken(found)) => assert_eq!(found, expected, "{statements:?}"),
            other => panic!("{statements:?}: {other:?}"),
        }
    }
}
on_both_engines!(
    audit_verify,
    verify_names_the_first_changed_removed_or_reordered_event
);

async fn signed_checkpoints_catch_a_cut_off_tail_and_a_foreign_key(engine: Engine) {
    use countersign::audit::checkpoints::{checkpoint, Schedule};
    use countersign::audit::repo::{append, Actor};
    use countersign::audit::signing::AuditKey;
    use countersign::audit::verify::{verify_trail, VerifyError};
    let Some(t) = fresh_db(engine).await else {
        return;
    };
    let key = AuditKey::generate();
    let add = |n: usize| {
        let db = t.db.clone();
        async move {
            let mut tx = db.begin_write().await.unwrap();
            for i in 0..n {
                append(
                    &mut tx,
                    &Actor::System,
                    "test",
                    None,
                    serde_json::json!({"i": i}),
                    now_ms(),
                )
                .await
                .unwrap();
            }
            tx.commit().await.unwrap();
        }
    };
    assert_eq!(
        checkpoint(&t.db, &key, None, now_ms()).await.unwrap(),
        None,
        "nothing to sign yet"
    );
    add(5).await;
    let schedule = Schedule {
        every_events: 10,
        every_ms: i64::MAX,
    };
    let first = checkpoint(&t.db, &key, Some(schedule), now_ms())
        .await
        .unwrap();
    assert_eq!(
        first.map(|c| c.seq),
        Some(5),
        "the first checkpoint is due at once"
    );
    add(3).await;
    assert_eq!(
        checkpoint(&t.db, &key, Some(schedule), now_ms())
            .await
            .unwrap(),
        None,
        "3 new events are fewer than 10 and the interval has not passed"
    );
    let ok = verify_trail(&t.db, &key.public_hex()).await.unwrap();
    assert_eq!((ok.events, ok.checkpoints, ok.head_seq), (8, 1, 8));

    // Another key's checkpoints are not trusted.
    let stranger = AuditKey::generate();
    match verify_trail(&t.db, &stranger.public_hex()).await {
        Err(VerifyError::BadCheckpoint { seq: 5, .. }) => {}
        other => panic!("a foreign key must be refused: {other:?}"),
    }

    // Cut the tail: events 4..8 go, so the checkpoint at 5 points past the end.
    tamper(&t.db, &["DELETE FROM audit_events WHERE seq >= 4"]).await;
    let err = verify_trail(&t.db, &key.public_hex()).await.unwrap_err();
    match &err {
        VerifyError::Truncated {
            first_missing: 4,
            head: 3,
            checkpoint: 5,
        } => {}
        other => panic!("a cut-off tail must be caught: {other:?}"),
    }
    assert!(err.to_string().contains("event 4"), "{err}");
}
on_both_engines!(
    audit_checkpoints,
    signed_checkpoints_catch_a_cut_off_tail_and_a_foreign_key
);
