//! Policy editing: drafts checked against the live policy, maker-checker on loosening, versions
//! that in-flight requests keep, the test box, and every change audited.

mod common;

use common::{load_demo, Engine, TestServer};
use countersign::on_db;
use countersign::server::now_ms;
use serde_json::{json, Value};

async fn live_version(db: &countersign::server::Db, key: &str) -> i64 {
    on_db!(db, |p| sqlx::query_scalar(
        "SELECT MAX(v.version) FROM gate_versions v JOIN gates g ON g.id = v.gate_id \
         WHERE g.key = $1 AND v.published_at IS NOT NULL"
    )
    .bind(key)
    .fetch_one(p)
    .await
    .unwrap())
}

async fn draft_definition(db: &countersign::server::Db, key: &str) -> Option<String> {
    on_db!(db, |p| sqlx::query_scalar(
        "SELECT v.definition FROM gate_versions v JOIN gates g ON g.id = v.gate_id \
         WHERE g.key = $1 AND v.published_at IS NULL"
    )
    .bind(key)
    .fetch_optional(p)
    .await
    .unwrap())
}

/// Posts a form and returns the flash the next page shows (notice or error).
async fn post_and_read(
    server: &TestServer,
    client: &reqwest::Client,
    path: &str,
    form: &[(&str, &str)],
) -> String {
    let res = client
        .post(server.url(path))
        .form(form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303, "{path}");
    let to = res.headers()["location"].to_str().unwrap().to_owned();
    client
        .get(server.url(&to))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

async fn submit(server: &TestServer, token: &str, key: &str, amount: &str) -> Value {
    reqwest::Client::new()
        .post(server.url("/api/v1/actions"))
        .bearer_auth(token)
        .header("idempotency-key", key)
        .json(&json!({
            "action_type": "payment.refund",
            "payload": {"order_id": key, "amount": amount, "currency": "EUR"},
            "amount": {"value": amount, "currency": "EUR"},
            "confidence": 0.95,
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn admins_edit_a_draft_and_a_second_admin_approves_a_loosening(engine: Engine) {
    let Some(t) = common::fresh_db(engine).await else {
        return;
    };
    load_demo(&t.db, 3, 1, 5, now_ms()).await;
    let agent = countersign::api::tokens::create_agent(
        &t.db,
        "gate-test-bot",
        "",
        &countersign::audit::repo::Actor::System,
    )
    .await
    .unwrap();
    let server = TestServer::start(t).await;
    let db = server.db.db.clone();
    let alex = server.signed_in("alex@example.com").await;
    let priya = server.signed_in("priya@example.com").await;
    let dana = server.signed_in("dana@example.com").await;

    let list = alex
        .get(server.url("/gates"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        list.contains("data-testid=\"gates-table\"") && list.contains("/gates/refunds"),
        "{list}"
    );
    assert_eq!(
        dana.get(server.url("/gates"))
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
    assert_eq!(
        dana.post(server.url("/gates/refunds/draft"))
            .send()
            .await
            .unwrap()
            .status(),
        403,
        "reviewers cannot edit policy"
    );

    // A request gated now by version 1 (2,500 EUR > 1,000: review) stays on version 1.
    let before = submit(&server, &agent.token, "before", "2500.00").await;
    assert_eq!(before["tier"], "review", "{before}");
    assert_eq!(live_version(&db, "refunds").await, 1);

    // Start a draft and raise the threshold; bad values are refused and change nothing.
    let page = post_and_read(&server, &alex, "/gates/refunds/draft", &[]).await;
    assert!(page.contains("Draft version 2 started"), "{page}");
    let saved = draft_definition(&db, "refunds").await.unwrap();
    for (value, expect) in [("3000", "amount and a currency"), ("3000 XXX", "XXX")] {
        let page = post_and_read(
            &server,
            &alex,
            "/gates/refunds/draft/rules/over-1000",
            &[
                ("attr_0", "amount_above"),
                ("value_0", value),
                ("tier", "review"),
            ],
        )
        .await;
        assert!(page.contains(expect), "{value}: {page}");
        assert_eq!(
            draft_definition(&db, "refunds").await.unwrap(),
            saved,
            "unchanged"
        );
    }
    let page = post_and_read(
        &server,
        &alex,
        "/gates/refunds/draft/json",
        &[("json", r#"{"key": "refunds", "name": "R", "action_types": ["payment.refund"], "base_tier": "auto", "colour": "red"}"#)],
    )
    .await;
    assert!(page.contains("colour"), "unknown fields are named: {page}");
    let page = post_and_read(
        &server,
        &alex,
        "/gates/refunds/draft/rules/over-1000",
        &[
            ("attr_0", "amount_above"),
            ("value_0", "3000 EUR, 3300 USD, 2700 GBP"),
            ("tier", "review"),
        ],
    )
    .await;
    assert!(page.contains("Rule over-1000 saved"), "{page}");

    // The test box shows both versions' answers for a pasted request.
    let test = r#"{"action_type": "payment.refund", "amount": {"value": "2500.00", "currency": "EUR"}, "confidence": 0.95}"#;
    let html = alex
        .get(server.url(&format!(
            "/gates/refunds?test={}",
            countersign::shell::query_escape(test)
        )))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("data-testid=\"test-result\""), "{html}");
    assert!(
        html.contains("tier tier-review") && html.contains("tier tier-log"),
        "live review, draft log"
    );
    let bad = alex
        .get(server.url("/gates/refunds?test=%7Bnot%20json"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(bad.contains("not JSON"), "{bad}");

    // Raising a threshold loosens: publishing waits for a second admin, and not the maker.
    let page = post_and_read(&server, &alex, "/gates/refunds/draft/publish", &[]).await;
    assert!(page.contains("a second admin must approve"), "{page}");
    assert_eq!(live_version(&db, "refunds").await, 1, "not live yet");
    let page = post_and_read(&server, &alex, "/gates/refunds/draft/approve", &[]).await;
    assert!(page.contains("you made or submitted this change"), "{page}");
    assert_eq!(live_version(&db, "refunds").await, 1);
    let page = post_and_read(&server, &priya, "/gates/refunds/draft/approve", &[]).await;
    assert!(page.contains("Approved: version 2 is live"), "{page}");
    assert_eq!(live_version(&db, "refunds").await, 2);

    // New requests are gated by version 2; the earlier one keeps version 1.
    let after = submit(&server, &agent.token, "after", "2500.00").await;
    assert_eq!(after["tier"], "log", "{after}");
    let versions: Vec<(String, i64)> = on_db!(&db, |p| {
        sqlx::query_as(
        "SELECT idempotency_key, gate_version FROM action_requests WHERE idempotency_key IN ('before', 'after') ORDER BY idempotency_key"
    )
    .fetch_all(p)
    .await
    .unwrap()
    });
    assert_eq!(versions, vec![("after".into(), 2), ("before".into(), 1)]);

    // Tightening needs nobody else: lower it again and publish at once.
    post_and_read(&server, &alex, "/gates/refunds/draft", &[]).await;
    post_and_read(
        &server,
        &alex,
        "/gates/refunds/draft/rules/over-1000",
        &[
            ("attr_0", "amount_above"),
            ("value_0", "500 EUR, 550 USD, 450 GBP"),
            ("tier", "dual"),
        ],
    )
    .await;
    let page = post_and_read(&server, &alex, "/gates/refunds/draft/publish", &[]).await;
    assert!(page.contains("Version 3 is live"), "{page}");

    // Every step is audited, the approval naming who made and who approved the change.
    let published: Vec<String> = on_db!(&db, |p| sqlx::query_scalar(
        "SELECT detail FROM audit_events WHERE event_type = 'gate_published' ORDER BY seq"
    )
    .fetch_all(p)
    .await
    .unwrap());
    assert_eq!(published.len(), 2);
    let approved: Value = serde_json::from_str(&published[0]).unwrap();
    assert_eq!(approved["approval"], "second admin");
    assert_eq!(approved["submitted_by"], "usr_alex");
    assert!(approved["changes"]
        .as_array()
        .is_some_and(|c| !c.is_empty()));
    assert_eq!(
        common::count(
            &db,
            "audit_events WHERE event_type = 'gate_publish_requested'",
            &[]
        )
        .await,
        1
    );

    // A new gate starts as a draft; discarding it removes it.
    let page = post_and_read(
        &server,
        &alex,
        "/gates",
        &[
            ("key", "crm-updates"),
            ("name", "CRM updates"),
            ("action_types", "crm.*"),
            ("base_tier", "log"),
        ],
    )
    .await;
    assert!(page.contains("created as a draft"), "{page}");
    let page = post_and_read(
        &server,
        &alex,
        "/gates",
        &[
            ("key", "Bad Key"),
            ("name", "x"),
            ("action_types", "crm.*"),
            ("base_tier", "log"),
        ],
    )
    .await;
    assert!(
        page.contains("role=\"alert\""),
        "a bad key is refused: {page}"
    );
    let page = post_and_read(&server, &alex, "/gates/crm-updates/draft/discard", &[]).await;
    assert!(page.contains("Draft discarded"), "{page}");
    assert_eq!(
        common::count(&db, "gates WHERE key = 'crm-updates'", &[]).await,
        0
    );
    server.stop().await;
}
on_both_engines!(
    policy_editing,
    admins_edit_a_draft_and_a_second_admin_approves_a_loosening
);

async fn a_breaker_opens_on_corrections_raises_the_tier_and_an_admin_rearms_it(engine: Engine) {
    let Some(t) = common::fresh_db(engine).await else {
        return;
    };
    load_demo(&t.db, 4, 1, 5, now_ms()).await;
    let agent = countersign::api::tokens::create_agent(
        &t.db,
        "sloppy-bot",
        "",
        &countersign::audit::repo::Actor::System,
    )
    .await
    .unwrap();
    let server = TestServer::start(t).await;
    let db = server.db.db.clone();
    let dana = server.signed_in("dana@example.com").await;
    let alex = server.signed_in("alex@example.com").await;

    // 20 refunds over 1,000 EUR wait for review; Dana rejects 4 and approves 16: 20% > 15%.
    for i in 0..20 {
        let r = submit(&server, &agent.token, &format!("big-{i}"), "2500.00").await;
        assert_eq!(r["status"], "pending", "{r}");
        let id = r["id"].as_str().unwrap();
        let form: Vec<(&str, &str)> = if i < 4 {
            vec![
                ("state_version", "1"),
                ("verdict", "reject"),
                ("reason", "wrong order"),
            ]
        } else {
            vec![("state_version", "1"), ("verdict", "approve")]
        };
        let res = dana
            .post(server.url(&format!("/inbox/{id}/decide")))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 303);
        let open = common::count(&db, "breakers WHERE state = 'open'", &[]).await;
        assert_eq!(
            open,
            if i < 19 { 0 } else { 2 },
            "opens at the 20th decision, not before ({i})"
        );
    }
    assert_eq!(
        common::count(&db, "audit_events WHERE event_type = 'breaker_opened'", &[]).await,
        2
    );
    // Both admins (Alex, Priya) are alerted by email through the notification outbox.
    let alerted: Vec<String> = on_db!(&db, |p| sqlx::query_scalar(
        "SELECT user_id FROM notifications WHERE kind = 'breaker_opened' ORDER BY user_id"
    )
    .fetch_all(p)
    .await
    .unwrap());
    assert_eq!(alerted, vec!["usr_alex".to_owned(), "usr_priya".to_owned()]);

    // A small refund that would run on its own now waits for a reviewer, and says why.
    let small = submit(&server, &agent.token, "small-1", "50.00").await;
    assert_eq!(small["status"], "pending", "{small}");
    assert_eq!(small["tier"], "review");
    assert!(
        small["explanation"]
            .as_str()
            .unwrap()
            .contains("circuit breaker open"),
        "{small}"
    );

    // Admins see it and re-arm both breakers; then small refunds run on their own again.
    let admin = alex
        .get(server.url("/admin"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        admin.contains("data-testid=\"breakers\"") && admin.contains("sloppy-bot"),
        "{admin}"
    );
    for gate in ["", "refunds"] {
        let page = post_and_read(
            &server,
            &alex,
            "/admin/breakers/rearm",
            &[("agent", "sloppy-bot"), ("gate", gate)],
        )
        .await;
        assert!(page.contains("re-armed"), "{page}");
    }
    let again = post_and_read(
        &server,
        &alex,
        "/admin/breakers/rearm",
        &[("agent", "sloppy-bot"), ("gate", "")],
    )
    .await;
    assert!(again.contains("not open"), "{again}");
    assert_eq!(
        dana.post(server.url("/admin/breakers/rearm"))
            .form(&[("agent", "sloppy-bot")])
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
    assert_eq!(
        common::count(
            &db,
            "audit_events WHERE event_type = 'breaker_rearmed'",
            &[]
        )
        .await,
        2
    );
    let admin = alex
        .get(server.url("/admin"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !admin.contains("data-testid=\"breakers\""),
        "no breaker is open any more"
    );
    assert!(
        admin.contains("re-armed (all gates) by Alex") && admin.contains("opened (one gate)"),
        "the agent's breaker history: {admin}"
    );
    let small = submit(&server, &agent.token, "small-2", "50.00").await;
    assert_eq!(small["status"], "approved", "{small}");
    server.stop().await;
}
on_both_engines!(
    breakers,
    a_breaker_opens_on_corrections_raises_the_tier_and_an_admin_rearms_it
);

fn settings_form<'a>(schema: &'a str, team: &'a str, rate: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("deadline_minutes", "120"),
        ("reminder_before_minutes", "30"),
        ("escalation_group", team),
        ("auto_sample_rate", "0.05"),
        (
            "rejection_reasons",
            "wrong-amount: Wrong amount\nno-evidence: Not enough evidence",
        ),
        ("payload_schema", schema),
        ("breaker_rate_percent", rate),
        ("breaker_window_minutes", "60"),
        ("breaker_min_decisions", "20"),
        ("breaker_on_open", "force_review"),
    ]
}

async fn gate_settings_are_checked_and_a_payload_schema_guards_submissions(engine: Engine) {
    let Some(t) = common::fresh_db(engine).await else {
        return;
    };
    load_demo(&t.db, 5, 1, 5, now_ms()).await;
    let agent = countersign::api::tokens::create_agent(
        &t.db,
        "schema-bot",
        "",
        &countersign::audit::repo::Actor::System,
    )
    .await
    .unwrap();
    let server = TestServer::start(t).await;
    let db = server.db.db.clone();
    let alex = server.signed_in("alex@example.com").await;
    post_and_read(&server, &alex, "/gates/refunds/draft", &[]).await;
    let saved = draft_definition(&db, "refunds").await.unwrap();
    let schema = r#"{"type": "object", "required": ["order_id", "amount"], "properties": {"order_id": {"type": "string", "minLength": 3}}}"#;

    for (form, expect) in [
        (settings_form(schema, "nobody", "15"), "there is no team"),
        (
            settings_form(r#"{"type": "object", "colour": 1}"#, "", "15"),
            "colour",
        ),
        (
            settings_form("{not json", "", "15"),
            "payload_schema: not JSON",
        ),
        (settings_form(schema, "", "100"), "settings.breaker.rate"),
    ] {
        let page = post_and_read(&server, &alex, "/gates/refunds/draft/settings", &form).await;
        assert!(page.contains(expect), "{expect}: {page}");
        assert_eq!(
            draft_definition(&db, "refunds").await.unwrap(),
            saved,
            "nothing changed"
        );
    }
    let page = post_and_read(
        &server,
        &alex,
        "/gates/refunds/draft/settings",
        &settings_form(schema, "", "15"),
    )
    .await;
    assert!(page.contains("Settings saved"), "{page}");
    let page = post_and_read(&server, &alex, "/gates/refunds/draft/publish", &[]).await;
    assert!(
        page.contains("is live"),
        "settings alone do not loosen tiers: {page}"
    );

    // The schema now refuses a payload that does not fit, naming the field; nothing is stored.
    let before = common::count(&db, "action_requests", &[]).await;
    let res = reqwest::Client::new()
        .post(server.url("/api/v1/actions"))
        .bearer_auth(&agent.token)
        .header("idempotency-key", "short-id")
        .json(&json!({
            "action_type": "payment.refund",
            "payload": {"order_id": "A1", "amount": "20.00"},
            "amount": {"value": "20.00", "currency": "EUR"},
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let problem: Value = res.json().await.unwrap();
    assert_eq!(problem["field"], "payload/order_id", "{problem}");
    assert_eq!(common::count(&db, "action_requests", &[]).await, before);
    // A fitting one passes, with the gate's 2-hour deadline when it waits for review.
    let ok = submit(&server, &agent.token, "A-1234", "2500.00").await;
    assert_eq!(ok["status"], "pending", "{ok}");
    let deadline: Option<i64> = on_db!(&db, |p| sqlx::query_scalar(
        "SELECT deadline_at - created_at FROM action_requests WHERE idempotency_key = 'A-1234'"
    )
    .fetch_one(p)
    .await
    .unwrap());
    assert_eq!(deadline, Some(120 * 60_000));

    // Deciding follows the gate's settings: an edit must fit the schema, a reason code must be
    // one of the gate's, and only eligible roles decide (Alex is an admin, not a reviewer).
    use countersign::accounts::{CurrentUser, Role};
    use countersign::requests::lifecycle::{decide, Verdict};
    let id = ok["id"].as_str().unwrap();
    let dana = CurrentUser {
        id: "usr_dana".into(),
        email: "dana@example.com".into(),
        display_name: "Dana Whitfield".into(),
        roles: vec![Role::Reviewer],
    };
    let edit = json!({"order_id": "A", "amount": "2000.00"});
    let err = decide(&server.state, &dana, id, 1, Verdict::ApproveWithEdit(edit))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("order_id") || format!("{err:?}").contains("order_id"),
        "{err:?}"
    );
    let err = decide(
        &server.state,
        &dana,
        id,
        1,
        Verdict::Reject {
            reason_code: Some("bogus".into()),
            reason: String::new(),
        },
    )
    .await
    .unwrap_err();
    assert!(format!("{err:?}").contains("rejection reasons"), "{err:?}");
    let page = post_and_read(
        &server,
        &alex,
        &format!("/inbox/{id}/decide"),
        &[("state_version", "1"), ("verdict", "approve")],
    )
    .await;
    assert!(
        page.contains("This gate is decided by people with the role reviewer or senior_reviewer"),
        "{page}"
    );
    assert_eq!(
        common::count(&db, "decisions WHERE request_id = $1", &[id]).await,
        0,
        "nothing decided"
    );
    let decided = decide(
        &server.state,
        &dana,
        id,
        1,
        Verdict::Reject {
            reason_code: Some("wrong-amount".into()),
            reason: String::new(),
        },
    )
    .await;
    assert!(decided.is_ok(), "{decided:?}");
    server.stop().await;
}
on_both_engines!(
    gate_settings,
    gate_settings_are_checked_and_a_payload_schema_guards_submissions
);
