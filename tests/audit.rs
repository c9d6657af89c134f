//! The audit explorer and the Verify button.

mod common;

use common::{with_demo, Engine};
use countersign::on_db;

async fn auditors_explore_filter_and_verify_the_trail(engine: Engine) {
    let Some(server) = with_demo(engine, 6, 2, 30).await else {
        return;
    };
    let db = server.db.db.clone();
    let ines = server.signed_in("ines@example.com").await;

    let html = ines
        .get(server.url("/audit"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("data-testid=\"audit-table\""), "{html}");
    assert!(
        html.contains("request_gated") && html.contains(">login<"),
        "demo history and live sign-ins are there"
    );

    let request: String = on_db!(&db, |p| sqlx::query_scalar(
        "SELECT request_id FROM audit_events WHERE event_type = 'decision' LIMIT 1"
    )
    .fetch_one(p)
    .await
    .unwrap());
    let html = ines
        .get(server.url(&format!("/audit?request={request}")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let rows = html.matches("<tr data-seq=").count();
    assert_eq!(rows, 2, "gated and decided: {html}");
    let html = ines
        .get(server.url("/audit?event_type=login&actor=ines%40example.com"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(html.matches("<tr data-seq=").count(), 1, "her own sign-in");

    let bad = ines
        .get(server.url("/audit?before=abc"))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);

    let res = ines.post(server.url("/audit/verify")).send().await.unwrap();
    assert_eq!(res.headers()["location"], "/audit");
    let html = ines
        .get(server.url("/audit"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("The chain verifies:"), "{html}");
    let checks = common::count(
        &db,
        "audit_events WHERE event_type = 'audit_verified' AND actor_id = 'usr_ines'",
        &[],
    )
    .await;
    assert_eq!(checks, 1, "verification is itself recorded");

    let dana = server.signed_in("dana@example.com").await;
    let res = dana.get(server.url("/audit")).send().await.unwrap();
    assert_eq!(res.status(), 403, "reviewers do not read the trail");
    assert_eq!(
        dana.post(server.url("/audit/verify"))
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
    server.stop().await;
}
on_both_engines!(explorer, auditors_explore_filter_and_verify_the_trail);
