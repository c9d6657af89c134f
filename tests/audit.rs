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

    let request: String = on_db!(&db, |p| {
        sqlx::query_scalar(
        "SELECT e.request_id FROM audit_events e JOIN action_requests r ON r.id = e.request_id \
         WHERE e.event_type = 'decision' AND r.tier <> 'dual' LIMIT 1"
    )
    .fetch_one(p)
    .await
    .unwrap()
    });
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

async fn get_text(client: &reqwest::Client, url: String) -> (u16, String) {
    let res = client.get(url).send().await.unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

async fn auditors_filter_follow_a_request_and_take_evidence_away(engine: Engine) {
    let Some(server) = common::with_demo_and(engine, 7, 2, 30, |c| {
        c.audit_retention_days = Some(1);
    })
    .await
    else {
        return;
    };
    let db = server.db.db.clone();
    let dana = server.signed_in("dana@example.com").await;
    let ines = server.signed_in("ines@example.com").await;

    // A reviewer opens a request (recorded), so the timeline has a view to show.
    let request: String = on_db!(&db, |p| sqlx::query_scalar(
        "SELECT id FROM action_requests WHERE status = 'pending' ORDER BY id LIMIT 1"
    )
    .fetch_one(p)
    .await
    .unwrap());
    let (status, _) = get_text(&dana, server.url(&format!("/inbox/{request}"))).await;
    assert_eq!(status, 200);

    // The per-person view: everything Dana saw and did.
    let (status, html) = get_text(&ines, server.url("/audit?actor=dana%40example.com")).await;
    assert_eq!(status, 200);
    assert!(html.contains("data-testid=\"person-summary\""), "{html}");
    assert!(html.contains("request_viewed"), "{html}");
    assert!(
        html.contains("data-testid=\"retention\""),
        "retention is reported"
    );
    assert!(html.contains("data-testid=\"public-key\""));

    // Gate, agent and time range filters; a bad date is named.
    let gate: String = on_db!(&db, |p| sqlx::query_scalar(
        "SELECT g.key FROM action_requests r JOIN gates g ON g.id = r.gate_id WHERE r.id = $1"
    )
    .bind(&request)
    .fetch_one(p)
    .await
    .unwrap());
    let (status, html) = get_text(
        &ines,
        server.url(&format!("/audit?gate={gate}&event_type=request_viewed")),
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        html.contains(&request),
        "the view of a {gate} request is found by gate"
    );
    let (_, html) = get_text(&ines, server.url("/audit?from=2001-01-01&to=2001-01-02")).await;
    assert!(html.contains("No events match"), "nothing happened in 2001");
    let (status, body) = get_text(&ines, server.url("/audit/export.csv?from=2026-02-30")).await;
    assert_eq!(status, 400);
    assert!(body.contains("from"), "{body}");

    // The request's timeline shows the state Dana saw.
    let (status, html) = get_text(&ines, server.url(&format!("/audit/requests/{request}"))).await;
    assert_eq!(status, 200);
    assert!(html.contains("data-testid=\"timeline\""), "{html}");
    assert!(html.contains("opened it and saw state version 1"), "{html}");
    assert!(html.contains("data-testid=\"snapshot-payload\""), "{html}");
    let (status, _) = get_text(&ines, server.url("/audit/requests/req_nope")).await;
    assert_eq!(status, 404);

    // CSV and JSON Lines carry exactly the filtered events, hashes included.
    let (status, csv) = get_text(
        &ines,
        server.url(&format!("/audit/export.csv?request={request}")),
    )
    .await;
    assert_eq!(status, 200);
    let mut lines = csv.lines();
    assert!(lines
        .next()
        .unwrap()
        .starts_with("seq,occurred_at,occurred_at_ms,actor_kind"));
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 3, "gated, viewed and claimed: {csv}");
    let (_, jsonl) = get_text(
        &ines,
        server.url(&format!("/audit/export.jsonl?request={request}")),
    )
    .await;
    let events: Vec<serde_json::Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events.len(), 3);
    assert_eq!(events[1]["event_type"], "request_viewed");
    assert_eq!(events[2]["event_type"], "request_claimed");
    assert_eq!(events[1]["hash"].as_str().unwrap().len(), 64);
    // An event whose detail holds every kind of character JSON must escape.
    let mut tx = db.begin_write().await.unwrap();
    countersign::audit::repo::append(
        &mut tx,
        &countersign::audit::repo::Actor::System,
        "escaping_checked",
        None,
        serde_json::json!({"text": "tab\t nl\n cr\r ctl\u{1} del\u{7f} \"q\" back\\ slash/ é 🎉 \u{2028}"}),
        countersign::server::now_ms(),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let total: i64 = common::count(&db, "audit_events", &[]).await;
    let (_, everything) = get_text(&ines, server.url("/audit/export.jsonl")).await;
    assert!(
        everything.lines().count() as i64 >= total,
        "an unfiltered export streams all {total} events across pages"
    );
    // Line for line the same values as the events read as rows (on SQLite the database writes
    // the lines itself), in order.
    let rows = countersign::audit::queries::events_after(
        &db,
        &countersign::audit::queries::EventQuery::default(),
        0,
        i64::MAX,
    )
    .await
    .unwrap();
    let exported: Vec<serde_json::Value> = everything
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(exported.len() <= rows.len());
    for (line, row) in exported.iter().zip(&rows) {
        assert_eq!(line, &serde_json::to_value(row).unwrap());
    }
    let exports = common::count(
        &db,
        "audit_events WHERE event_type = 'audit_exported' AND actor_id = 'usr_ines'",
        &[],
    )
    .await;
    assert_eq!(
        exports, 3,
        "every export is recorded (the refused one is not)"
    );

    // The evidence bundle verifies offline with the pinned key, and a changed byte is caught.
    let res = ines
        .get(server.url(&format!("/audit/export/bundle?request={request}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/gzip");
    let bundle = res.bytes().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bundle.tar.gz");
    std::fs::write(&path, &bundle).unwrap();
    let key = server.state.audit_key.public_hex();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_countersign"))
        .args([
            "audit",
            "verify-bundle",
            path.to_str().unwrap(),
            "--public-key",
            &key,
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("bundle verified") && stdout.contains("3 events"),
        "{stdout}"
    );
    assert!(stdout.contains("1 state snapshots"), "{stdout}");

    let report = countersign::audit::bundle::verify_bundle_file(&path, Some(&key)).unwrap();
    assert_eq!((report.events, report.snapshots), (3, 1));
    let wrong_key = countersign::audit::signing::AuditKey::generate().public_hex();
    let err = countersign::audit::bundle::verify_bundle_file(&path, Some(&wrong_key)).unwrap_err();
    assert!(err.to_string().contains("not by the pinned key"), "{err}");

    // Rebuild the archive with one event's detail changed: the manifest no longer matches.
    let tampered = dir.path().join("tampered.tar.gz");
    rewrite_bundle(&path, &tampered, "events.jsonl", |text| {
        text.replacen("\"request_viewed\"", "\"request_viewed_\"", 1)
    });
    let err = countersign::audit::bundle::verify_bundle_file(&tampered, Some(&key)).unwrap_err();
    assert!(err.to_string().contains("events.jsonl"), "{err}");

    // Reviewers cannot export.
    assert_eq!(
        dana.get(server.url("/audit/export.csv"))
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
    assert_eq!(
        dana.get(server.url("/audit/export/bundle"))
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
    assert_eq!(
        dana.get(server.url(&format!("/audit/requests/{request}")))
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
    server.stop().await;
}
on_both_engines!(
    exports_and_timeline,
    auditors_filter_follow_a_request_and_take_evidence_away
);

/// Copies a bundle, passing one member's text through `change`.
fn rewrite_bundle(
    from: &std::path::Path,
    to: &std::path::Path,
    member: &str,
    change: impl Fn(&str) -> String,
) {
    use std::io::Read as _;
    let mut input = tar::Archive::new(flate2::read::GzDecoder::new(
        std::fs::File::open(from).unwrap(),
    ));
    let out = flate2::write::GzEncoder::new(
        std::fs::File::create(to).unwrap(),
        flate2::Compression::default(),
    );
    let mut builder = tar::Builder::new(out);
    for entry in input.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().to_string_lossy().into_owned();
        let mut data = String::new();
        entry.read_to_string(&mut data).unwrap();
        if name.ends_with(member) {
            data = change(&data);
        }
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder
            .append_data(&mut header, &name, data.as_bytes())
            .unwrap();
    }
    builder.into_inner().unwrap().finish().unwrap();
}
