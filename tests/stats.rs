//! Statistics and threshold tuning against the real server: the numbers of a hand-built history
//! on the page and in the CSV, backtests of an identical and a looser candidate, saving a
//! candidate as a draft, and refusals (wrong role, bad input) that change nothing.

mod common;

use common::{load_demo, Engine, TestServer};
use countersign::on_db;
use countersign::requests::repo::{self as requests, NewActionRequest, NewDecision};
use countersign::server::{now_ms, Db};

const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;

async fn gate_id(db: &Db, key: &str) -> String {
    on_db!(db, |p| sqlx::query_scalar(
        "SELECT id FROM gates WHERE key = $1"
    )
    .bind(key)
    .fetch_one(p)
    .await
    .unwrap())
}

async fn draft_definition(db: &Db, key: &str) -> Option<String> {
    on_db!(db, |p| sqlx::query_scalar(
        "SELECT v.definition FROM gate_versions v JOIN gates g ON g.id = v.gate_id \
         WHERE g.key = $1 AND v.published_at IS NULL"
    )
    .bind(key)
    .fetch_optional(p)
    .await
    .unwrap())
}

/// One refund request of the demo `refunds` gate, as stored after gating.
#[allow(clippy::too_many_arguments)]
fn refund(
    id: &str,
    gate: &str,
    eur: i64,
    tier: &str,
    status: &str,
    rules: &[&str],
    created_at: i64,
    decided_at: Option<i64>,
) -> NewActionRequest {
    NewActionRequest {
        id: id.to_owned(),
        agent_id: "agt_refunds".into(),
        idempotency_key: id.to_owned(),
        body_sha256: "0".repeat(64),
        action_type: "payment.refund".into(),
        title: format!("Refund {eur} EUR ({id})"),
        payload: format!(r#"{{"amount": "{eur}.00", "currency": "EUR"}}"#),
        current_state: None,
        inputs: None,
        reasoning: String::new(),
        alternatives: None,
        confidence: Some(0.9),
        amount_minor: Some(eur * 100),
        currency: Some("EUR".into()),
        counterparty: None,
        customer_tier: Some("smb".into()),
        record_count: None,
        recipient_count: None,
        risk_class: None,
        acting_for: None,
        tenant: None,
        callback_url: None,
        deadline_at: None,
        tier: tier.into(),
        status: status.into(),
        gate_id: Some(gate.to_owned()),
        gate_version: Some(1),
        matched_rules: serde_json::to_string(rules).unwrap(),
        explanation: String::new(),
        created_at,
        decided_at,
    }
}

fn decision(
    id: &str,
    request: &str,
    reviewer: Option<&str>,
    kind: &'static str,
    at: i64,
) -> NewDecision {
    NewDecision {
        id: id.to_owned(),
        request_id: request.to_owned(),
        reviewer_id: reviewer.map(str::to_owned),
        kind,
        state_version: 1,
        edited_payload: (kind == "approve_with_edit").then(|| r#"{"amount": "1.00"}"#.to_owned()),
        reason_code: None,
        reason_text: (kind == "reject").then(|| "no".to_owned()),
        created_at: at,
    }
}

/// The demo people and gates, no demo requests, and ten refunds with known outcomes:
/// 3 auto and 1 log executed; 6 review: approved (Dana, 10 min), approved (Dana, 20 min),
/// approved with edit then executed (Ravi, 30 min), rejected (Ravi, 40 min), expired, pending.
async fn server_with_history(engine: Engine) -> Option<TestServer> {
    let t = common::fresh_db(engine).await?;
    load_demo(&t.db, 1, 1, 0, now_ms()).await;
    let gate = gate_id(&t.db, "refunds").await;
    let t0 = now_ms() - 48 * HOUR;
    let mut tx = t.db.begin_write().await.unwrap();
    let mut rows = Vec::new();
    for i in 0..3 {
        rows.push((
            refund(
                &format!("req_auto{i}"),
                &gate,
                50,
                "auto",
                "executed",
                &[],
                t0 + i,
                Some(t0 + i),
            ),
            None,
        ));
    }
    rows.push((
        refund(
            "req_log",
            &gate,
            500,
            "log",
            "executed",
            &["over-100"],
            t0,
            Some(t0),
        ),
        None,
    ));
    let review = |id: &str, status: &str, took: Option<i64>| {
        refund(
            id,
            &gate,
            1500,
            "review",
            status,
            &["over-100", "over-1000"],
            t0,
            took.map(|m| t0 + m * MINUTE),
        )
    };
    rows.push((
        review("req_ok1", "approved", Some(10)),
        Some(("usr_dana", "approve", 10)),
    ));
    rows.push((
        review("req_ok2", "executed", Some(20)),
        Some(("usr_dana", "approve", 20)),
    ));
    rows.push((
        review("req_edit", "executed", Some(30)),
        Some(("usr_ravi", "approve_with_edit", 30)),
    ));
    rows.push((
        review("req_no", "rejected", Some(40)),
        Some(("usr_ravi", "reject", 40)),
    ));
    let mut expired = review("req_late", "expired", Some(600));
    expired.amount_minor = Some(250_000);
    rows.push((expired, None));
    let mut pending = review("req_open", "pending", None);
    pending.amount_minor = Some(300_000);
    rows.push((pending, None));
    for (r, d) in &rows {
        requests::insert(&mut tx, r).await.unwrap();
        if let Some((who, kind, took)) = d {
            let d = decision(
                &format!("dec_{}", r.id),
                &r.id,
                Some(who),
                kind,
                t0 + took * MINUTE,
            );
            requests::insert_decision(&mut tx, &d).await.unwrap();
        }
    }
    let d = decision("dec_late", "req_late", None, "expire", t0 + 600 * MINUTE);
    requests::insert_decision(&mut tx, &d).await.unwrap();
    tx.commit().await.unwrap();
    Some(TestServer::start(t).await)
}

/// The visible text of an HTML fragment, one space between pieces.
fn text_of(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => {
                in_tag = true;
                out.push(' ');
            }
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.replace("&amp;", "&")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// The `<tr>` (or other element) whose opening tag contains `marker`, up to its end tag.
fn element<'h>(html: &'h str, marker: &str, end: &str) -> &'h str {
    let start = html
        .find(marker)
        .unwrap_or_else(|| panic!("{marker} not in page:\n{html}"));
    // From the end of the opening tag that holds the marker.
    let rest = &html[start..];
    let rest = &rest[rest.find('>').map_or(0, |i| i + 1)..];
    &rest[..rest.find(end).map(|i| i + end.len()).unwrap_or(rest.len())]
}

async fn get(client: &reqwest::Client, server: &TestServer, path: &str) -> (u16, String) {
    let res = client.get(server.url(path)).send().await.unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

async fn stats_page_and_csv_show_the_known_numbers(engine: Engine) {
    let Some(server) = server_with_history(engine).await else {
        return;
    };
    let ines = server.signed_in("ines@example.com").await;
    let (status, page) = get(&ines, &server, "/stats?days=7").await;
    assert_eq!(status, 200, "{page}");
    let row = text_of(element(&page, "data-key=\"refunds\"", "</tr>"));
    assert_eq!(
        row,
        "refunds tune 10 3 1 6 0 0 2 1 1 1 0 1 50.0% 20m · 40m \
         log: not reviewed · auto: not reviewed Dana Whitfield 2, Ravi Menon 2",
        "auto log review dual block; unchanged edit rejected expired withdrawn pending"
    );
    assert!(text_of(&page).contains("10 requests created"), "{page}");
    assert!(page.contains("<svg"), "charts are server-rendered SVG");
    assert!(page.contains("data-testid=\"trend-table\""));

    let (status, csv) = get(&ines, &server, "/stats.csv?days=7&group=gate").await;
    assert_eq!(status, 200);
    let lines: Vec<&str> = csv.lines().collect();
    assert!(
        lines[0].starts_with("group,label,requests,tier_auto"),
        "{csv}"
    );
    assert_eq!(
        lines[1],
        "refunds,refunds,10,3,1,6,0,0,4,0,2,1,1,1,0,1,0.5000,1200000,2400000,0,0,0,0,Dana Whitfield=2; Ravi Menon=2"
    );
    assert_eq!(lines.len(), 2, "one gate saw requests: {csv}");
    let (_, trend) = get(&ines, &server, "/stats.csv?days=7&table=trend").await;
    let buckets: Vec<&str> = trend.lines().skip(1).collect();
    assert_eq!(buckets.len(), 7, "one row per day: {trend}");
    let total: u64 = buckets
        .iter()
        .map(|l| {
            l.split(',')
                .skip(2)
                .take(5)
                .map(|n| n.parse::<u64>().unwrap())
                .sum::<u64>()
        })
        .sum();
    assert_eq!(total, 10);

    // Grouped by reviewer: a reviewer's decisions and approval rate.
    let (_, by_reviewer) = get(&ines, &server, "/stats.csv?days=7&group=reviewer").await;
    assert!(
        by_reviewer.contains("usr_ravi,Ravi Menon,2,0,0,2,0,0,0,0,0,1,1,0,0,0,0.0000"),
        "{by_reviewer}"
    );

    // Readers only; bad filters are named.
    let dana = server.signed_in("dana@example.com").await;
    assert_eq!(get(&dana, &server, "/stats").await.0, 403);
    assert_eq!(get(&dana, &server, "/stats.csv").await.0, 403);
    let (status, page) = get(&ines, &server, "/stats?days=0").await;
    assert_eq!(status, 400);
    assert!(page.contains("days: "), "{page}");
    let (status, body) = get(&ines, &server, "/stats.csv?group=colour").await;
    assert_eq!((status, body.starts_with("group: ")), (400, true), "{body}");
    server.stop().await;
}
on_both_engines!(
    stats_page_and_csv,
    stats_page_and_csv_show_the_known_numbers
);

async fn backtests_and_saving_a_draft(engine: Engine) {
    let Some(server) = server_with_history(engine).await else {
        return;
    };
    let db = server.db.db.clone();
    let alex = server.signed_in("alex@example.com").await;
    let base = "/stats/gates/refunds?days=7&t=over-1000%3Aamount%3AEUR";

    // The live threshold as the candidate: nothing changes.
    let (status, page) = get(&alex, &server, &format!("{base}&value=1000")).await;
    assert_eq!(status, 200, "{page}");
    let facts = text_of(element(&page, "data-testid=\"backtest\"", "</dl>"));
    assert!(facts.contains("Requests re-gated 10"), "{facts}");
    assert!(
        facts.contains("Would change tier 0 (0 less strict, 0 stricter)"),
        "{facts}"
    );
    assert!(facts.contains("Misses 0 of those"), "{facts}");
    assert!(facts.contains("Reviewer hours saved 0.0"), "{facts}");
    assert!(page.contains("data-testid=\"no-misses\""));

    // Raising it to 2,000 EUR releases the four 1,500 EUR requests (to log); humans had
    // corrected two of them. Four reviews of two minutes saved.
    let (status, page) = get(&alex, &server, &format!("{base}&value=2000")).await;
    assert_eq!(status, 200, "{page}");
    let facts = text_of(element(&page, "data-testid=\"backtest\"", "</dl>"));
    assert!(
        facts.contains("Would change tier 4 (4 less strict, 0 stricter)"),
        "{facts}"
    );
    assert!(
        facts.contains("Would run without a human 4 that humans reviewed"),
        "{facts}"
    );
    assert!(facts.contains("Misses 2 of those"), "{facts}");
    assert!(facts.contains("Reviewer hours saved 0.1"), "{facts}");
    assert!(
        facts.contains("Expected approval rate 50.0% → —"),
        "{facts}"
    );
    let misses = element(&page, "data-testid=\"misses\"", "</table>");
    assert!(
        misses.contains("href=\"/inbox/req_no\"") && misses.contains("href=\"/inbox/req_edit\""),
        "{misses}"
    );
    assert!(misses.contains("href=\"/audit/requests/req_no\""));
    assert!(!misses.contains("req_ok1"));
    assert!(
        page.contains("data-testid=\"distribution\"") && page.contains("candidate 2,000.00 EUR")
    );

    // Bad input: a clear error, and the page still shows the history.
    let (status, page) = get(&alex, &server, &format!("{base}&value=lots")).await;
    assert_eq!(status, 400);
    assert!(
        text_of(&page).contains("value: \"lots\" is not a decimal amount"),
        "{page}"
    );
    assert_eq!(get(&alex, &server, "/stats/gates/nope").await.0, 404);

    // Save as draft: refused to non-admins and for bad input, with nothing written.
    let ines = server.signed_in("ines@example.com").await;
    let form = [
        ("days", "7"),
        ("t", "over-1000:amount:EUR"),
        ("value", "2000"),
    ];
    let res = ines
        .post(server.url("/stats/gates/refunds/draft"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let bad = [
        ("days", "7"),
        ("t", "over-1000:amount:EUR"),
        ("value", "-1"),
    ];
    let res = alex
        .post(server.url("/stats/gates/refunds/draft"))
        .form(&bad)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let back = res.headers()["location"].to_str().unwrap().to_owned();
    assert!(back.starts_with("/stats/gates/refunds?"), "{back}");
    let (_, page) = get(&alex, &server, &back).await;
    assert!(
        text_of(&page).contains("value: amount must not be negative"),
        "{page}"
    );
    assert_eq!(
        draft_definition(&db, "refunds").await,
        None,
        "nothing saved"
    );

    let res = alex
        .post(server.url("/stats/gates/refunds/draft"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/gates/refunds");
    let (_, page) = get(&alex, &server, "/gates/refunds").await;
    assert!(
        page.contains("Saved as draft version 2 of gate refunds"),
        "{page}"
    );
    let draft: serde_json::Value =
        serde_json::from_str(&draft_definition(&db, "refunds").await.unwrap()).unwrap();
    let thresholds = &draft["rules"][1]["when"][0]["thresholds"];
    assert_eq!(
        thresholds[0],
        serde_json::json!({"amount": "2000.00", "currency": "EUR"}),
        "{draft}"
    );
    assert_eq!(
        thresholds[1]["amount"], "1100",
        "other currencies untouched"
    );

    // A second save does not silently overwrite the draft.
    let other = [("days", "7"), ("rule", "over-100"), ("tier", "remove")];
    let res = alex
        .post(server.url("/stats/gates/refunds/draft"))
        .form(&other)
        .send()
        .await
        .unwrap();
    let back = res.headers()["location"].to_str().unwrap().to_owned();
    let (_, page) = get(&alex, &server, &back).await;
    assert!(
        text_of(&page).contains("already has a draft (version 2)"),
        "{page}"
    );
    let unchanged: serde_json::Value =
        serde_json::from_str(&draft_definition(&db, "refunds").await.unwrap()).unwrap();
    assert_eq!(unchanged, draft);
    let replace = [
        ("days", "7"),
        ("rule", "over-100"),
        ("tier", "remove"),
        ("replace_draft", "yes"),
    ];
    let res = alex
        .post(server.url("/stats/gates/refunds/draft"))
        .form(&replace)
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["location"], "/gates/refunds");
    let replaced: serde_json::Value =
        serde_json::from_str(&draft_definition(&db, "refunds").await.unwrap()).unwrap();
    assert_eq!(
        replaced["rules"].as_array().unwrap().len(),
        3,
        "over-100 removed"
    );
    server.stop().await;
}
on_both_engines!(backtests_and_drafts, backtests_and_saving_a_draft);

/// The statistics read every fact of a request back as it was stored, on both engines (SQLite
/// scans on their own connection, PostgreSQL through the pool), whichever way they select.
async fn history_is_read_back_field_for_field(engine: Engine) {
    use countersign::domain::stats::{Hindsight, HistoricRequest, Outcome, Window};
    use countersign::domain::tier::Tier;
    use countersign::stats::queries::{for_each_request, Lookup, Scope};

    let Some(t) = common::fresh_db(engine).await else {
        return;
    };
    load_demo(&t.db, 1, 1, 0, now_ms()).await;
    let gate = gate_id(&t.db, "refunds").await;
    let t0 = now_ms() - HOUR;
    let mut edited = refund(
        "req_every_field",
        &gate,
        1234,
        "dual",
        "executed",
        &["over-100", "over-1000"],
        t0,
        Some(t0 + 7 * MINUTE),
    );
    edited.amount_minor = Some(123_456);
    edited.currency = Some("CHF".into());
    edited.record_count = Some(17);
    edited.recipient_count = Some(29);
    edited.confidence = Some(0.625);
    edited.customer_tier = Some("enterprise".into());
    edited.risk_class = Some("high".into());
    let mut other = refund(
        "req_other_type",
        &gate,
        1,
        "log",
        "executed",
        &[],
        t0,
        Some(t0),
    );
    other.action_type = "payment.payout".into();
    other.gate_id = None;
    other.gate_version = None;
    let mut tx = t.db.begin_write().await.unwrap();
    for r in [&edited, &other] {
        requests::insert(&mut tx, r).await.unwrap();
    }
    // Dual review: the final decision is the later one.
    let first = decision(
        "dec_first",
        &edited.id,
        Some("usr_dana"),
        "approve",
        t0 + MINUTE,
    );
    let last = decision(
        "dec_last",
        &edited.id,
        Some("usr_ravi"),
        "approve_with_edit",
        t0 + 7 * MINUTE,
    );
    for d in [&first, &last] {
        requests::insert_decision(&mut tx, d).await.unwrap();
    }
    tx.commit().await.unwrap();

    let expected = HistoricRequest {
        id: edited.id.clone(),
        action_type: "payment.refund".into(),
        agent: "refund-bot".into(),
        amount_minor: Some(123_456),
        currency: Some("CHF".into()),
        record_count: Some(17),
        recipient_count: Some(29),
        confidence: Some(0.625),
        customer_tier: Some("enterprise".into()),
        risk_class: Some("high".into()),
        tier: Tier::Dual,
        gate_key: Some("refunds".into()),
        matched_rules: vec!["over-100".into(), "over-1000".into()],
        outcome: Outcome::ApprovedWithEdit,
        created_at_ms: t0,
        decided_at_ms: Some(t0 + 7 * MINUTE),
        reviewer_id: Some("usr_ravi".into()),
        hindsight: Hindsight::NotReviewed,
    };
    let lookup = Lookup::load(&t.db).await.unwrap();
    let window = Window {
        from_ms: t0 - 1,
        to_ms: t0 + 1,
    };
    for (scope, ids) in [
        (Scope::All, vec!["req_every_field", "req_other_type"]),
        (Scope::DecidedBy(gate.clone()), vec!["req_every_field"]),
        (
            Scope::ActionTypes(vec!["payment.ref*".into()]),
            vec!["req_every_field"],
        ),
        (
            Scope::ActionTypes(vec!["payment.payout".into()]),
            vec!["req_other_type"],
        ),
    ] {
        let mut seen = Vec::new();
        let n = for_each_request(&t.db, window, &scope, &lookup, |r| seen.push(r))
            .await
            .unwrap();
        seen.sort_by(|a, b| a.id.cmp(&b.id));
        let seen_ids: Vec<&str> = seen.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(seen_ids, ids, "{scope:?}");
        assert_eq!(n as usize, ids.len());
        if let Some(read) = seen.iter().find(|r| r.id == edited.id) {
            assert_eq!(read, &expected, "{scope:?}");
        }
    }
    // Outside the window: nothing.
    let later = Window {
        from_ms: t0 + 1,
        to_ms: t0 + HOUR,
    };
    let n = for_each_request(&t.db, later, &Scope::All, &lookup, |_| {})
        .await
        .unwrap();
    assert_eq!(n, 0);
}

on_both_engines!(history_read_back, history_is_read_back_field_for_field);
