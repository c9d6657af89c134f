//! The after-the-fact queue (log and sampled auto requests judged afterwards, feeding statistics
//! and breakers) and bulk approval from the inbox, each on SQLite and PostgreSQL.

mod common;

use common::{count, load_demo, Engine, TestServer};
use countersign::gates::drafts::{self, PublishOutcome};
use countersign::on_db;
use countersign::server::{now_ms, Db};
use serde_json::{json, Value};

/// Changes the refunds gate's settings and publishes them (a second admin approves if needed).
async fn set_refunds(
    db: &Db,
    change: impl FnOnce(&mut countersign::domain::gate_settings::GateSettings),
) {
    drafts::edit_draft(
        db,
        "usr_alex",
        "refunds",
        |d| {
            change(&mut d.settings);
            Ok(())
        },
        now_ms(),
    )
    .await
    .unwrap();
    if let PublishOutcome::AwaitingApproval { .. } =
        drafts::request_publish(db, "usr_alex", "refunds", now_ms())
            .await
            .unwrap()
    {
        drafts::approve(db, "usr_priya", "refunds", now_ms())
            .await
            .unwrap();
    }
}

/// A server on a small demo (people and gates) with an agent of our own; returns its token.
async fn start(engine: Engine) -> Option<(TestServer, String)> {
    let t = common::fresh_db(engine).await?;
    load_demo(&t.db, 21, 1, 4, now_ms()).await;
    let agent = countersign::api::tokens::create_agent(
        &t.db,
        "after-bot",
        "",
        &countersign::audit::repo::Actor::System,
    )
    .await
    .unwrap();
    Some((TestServer::start(t).await, agent.token))
}

/// Submits a refund of `amount` EUR; `extra` adds fields (acting_for, customer_tier...).
async fn refund(server: &TestServer, token: &str, key: &str, amount: &str, extra: Value) -> Value {
    let mut body = json!({
        "action_type": "payment.refund",
        "payload": {"order_id": key, "amount": amount, "currency": "EUR"},
        "amount": {"value": amount, "currency": "EUR"},
        "confidence": 0.95,
    });
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    let res = reqwest::Client::new()
        .post(server.url("/api/v1/actions"))
        .bearer_auth(token)
        .header("idempotency-key", key)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201, "{key}");
    res.json().await.unwrap()
}

async fn text(client: &reqwest::Client, url: &str) -> String {
    client.get(url).send().await.unwrap().text().await.unwrap()
}

async fn verdict(db: &Db, id: &str) -> Option<String> {
    on_db!(db, |p| sqlx::query_scalar(
        "SELECT verdict FROM after_fact_reviews WHERE request_id = $1"
    )
    .bind(id)
    .fetch_one(p)
    .await
    .unwrap())
}

async fn queued_because(db: &Db, id: &str) -> Option<String> {
    on_db!(db, |p| sqlx::query_scalar(
        "SELECT reason FROM after_fact_reviews WHERE request_id = $1"
    )
    .bind(id)
    .fetch_optional(p)
    .await
    .unwrap())
}

/// Posts a judgement of `id`; returns the page the reviewer lands on.
async fn judge(
    server: &TestServer,
    client: &reqwest::Client,
    id: &str,
    form: &[(&str, &str)],
) -> String {
    let res = client
        .post(server.url(&format!("/inbox/after/{id}/judge")))
        .form(form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303, "{id}");
    let to = res.headers()["location"].to_str().unwrap().to_owned();
    assert!(to.starts_with("/inbox/after"), "{to}");
    text(client, &server.url(&to)).await
}

fn id_of(v: &Value) -> String {
    v["id"].as_str().unwrap().to_owned()
}

async fn log_and_sampled_auto_are_queued_judged_and_counted(engine: Engine) {
    let Some((server, token)) = start(engine).await else {
        return;
    };
    let db = server.db.db.clone();

    // Sampling off: an auto refund runs and is not queued; a logged one always is.
    set_refunds(&db, |s| s.auto_sample_rate = 0.0).await;
    let unsampled = refund(&server, &token, "auto-0", "50.00", json!({})).await;
    assert_eq!(unsampled["tier"], "auto", "{unsampled}");
    assert_eq!(queued_because(&db, &id_of(&unsampled)).await, None);
    let early = refund(&server, &token, "log-0", "500.00", json!({})).await;
    assert_eq!(early["tier"], "log", "{early}");
    assert_eq!(early["status"], "approved", "log executes without waiting");
    assert_eq!(
        queued_because(&db, &id_of(&early)).await.as_deref(),
        Some("log")
    );

    // Sampling everything: the auto refund is queued as sampled.
    set_refunds(&db, |s| {
        s.auto_sample_rate = 1.0;
        // A small breaker, so a few judgements can open it.
        s.breaker.min_decisions = 2;
    })
    .await;
    // (Judgements count against the breaker of the gate version that gated the request.)
    let logged = refund(&server, &token, "log-1", "500.00", json!({})).await;
    let sampled = refund(&server, &token, "auto-1", "50.00", json!({})).await;
    assert_eq!(sampled["tier"], "auto");
    let (logged, sampled) = (id_of(&logged), id_of(&sampled));
    assert_eq!(
        queued_because(&db, &sampled).await.as_deref(),
        Some("sampled_auto")
    );
    let danas = id_of(
        &refund(
            &server,
            &token,
            "log-dana",
            "400.00",
            json!({"acting_for": "usr_dana"}),
        )
        .await,
    );
    let gated = count(
        &db,
        "audit_events WHERE event_type = 'request_gated' AND request_id = $1 AND detail LIKE '%sampled_auto%'",
        &[&sampled],
    )
    .await;
    assert_eq!(gated, 1, "the trail says why it was queued");

    // The queue lists them, filtered by reason in the URL; a bad filter is named.
    let sofia = server.signed_in("sofia@example.com").await;
    let html = text(&sofia, &server.url("/inbox/after")).await;
    for id in [&logged, &sampled, &danas] {
        assert!(html.contains(id.as_str()), "{id} listed: {html}");
    }
    let html = text(&sofia, &server.url("/inbox/after?gate=refunds&reason=log")).await;
    assert!(html.contains(&logged) && !html.contains(&sampled), "{html}");
    let bad = sofia
        .get(server.url("/inbox/after?reason=review"))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    assert!(bad
        .text()
        .await
        .unwrap()
        .contains("reason: choose log or sampled_auto"));

    // An auditor reads the queue but cannot judge.
    let ines = server.signed_in("ines@example.com").await;
    let html = text(&ines, &server.url("/inbox/after")).await;
    assert!(
        html.contains(&logged) && html.contains("reviewers judge it"),
        "{html}"
    );
    let html = judge(&server, &ines, &logged, &[("verdict", "fine")]).await;
    assert!(html.contains("You are not allowed to do that."), "{html}");
    assert_eq!(verdict(&db, &logged).await, None);

    // Nobody judges a request made on their behalf (invariant 3).
    let dana = server.signed_in("dana@example.com").await;
    let html = judge(&server, &dana, &danas, &[("verdict", "fine")]).await;
    assert!(html.contains("made on your behalf"), "{html}");
    assert_eq!(verdict(&db, &danas).await, None);

    // "Should not have happened" needs a note.
    let html = judge(
        &server,
        &sofia,
        &logged,
        &[("verdict", "should_not_have_happened"), ("note", "  ")],
    )
    .await;
    assert!(html.contains("note: say what was wrong"), "{html}");
    assert_eq!(verdict(&db, &logged).await, None);
    assert_eq!(
        count(
            &db,
            "audit_events WHERE event_type = 'after_fact_reviewed'",
            &[]
        )
        .await,
        count(&db, "after_fact_reviews WHERE verdict IS NOT NULL", &[]).await,
        "nothing new was recorded"
    );

    // Several marked "looks right" at once: all or nothing.
    let m1 = id_of(&refund(&server, &token, "log-m1", "300.00", json!({})).await);
    let m2 = id_of(&refund(&server, &token, "log-m2", "310.00", json!({})).await);
    let many = server.url("/inbox/after/fine");
    for (form, why) in [
        (
            vec![("back", "")],
            "pick: select at least one item".to_owned(),
        ),
        (
            vec![("pick", m1.as_str()), ("pick", "req_nope")],
            "req_nope is not in the after-the-fact queue".to_owned(),
        ),
        (
            vec![
                ("pick", m1.as_str()),
                ("pick", m2.as_str()),
                ("pick", danas.as_str()),
            ],
            format!("{danas} was made on your behalf"),
        ),
    ] {
        let res = dana.post(&many).form(&form).send().await.unwrap();
        assert_eq!(res.status(), 303);
        let html = text(&dana, &server.url("/inbox/after")).await;
        assert!(html.contains(&why), "{why}: {html}");
        assert_eq!(verdict(&db, &m1).await, None);
    }
    dana.post(&many)
        .form(&[("pick", m1.as_str()), ("pick", m2.as_str())])
        .send()
        .await
        .unwrap();
    let html = text(&dana, &server.url("/inbox/after")).await;
    assert!(html.contains("Marked 2 items as looks right."), "{html}");
    for id in [&m1, &m2] {
        assert_eq!(verdict(&db, id).await.as_deref(), Some("fine"));
        assert_eq!(
            count(&db, "audit_events WHERE event_type = 'after_fact_reviewed' AND request_id = $1 AND actor_id = 'usr_dana'", &[id]).await,
            1
        );
    }

    // Two judgements, each with its audit event; both leave the queue.
    let html = judge(&server, &sofia, &sampled, &[("verdict", "fine")]).await;
    assert!(
        html.contains(&format!("Marked {sampled} as looks right.")),
        "{html}"
    );
    let html = judge(
        &server,
        &sofia,
        &logged,
        &[
            ("verdict", "should_not_have_happened"),
            ("note", "Customer was refunded twice"),
            ("back", "gate=refunds"),
        ],
    )
    .await;
    assert!(html.contains("as should not have happened"), "{html}");
    assert_eq!(verdict(&db, &sampled).await.as_deref(), Some("fine"));
    assert_eq!(
        verdict(&db, &logged).await.as_deref(),
        Some("should_not_have_happened")
    );
    for (id, v) in [(&sampled, "fine"), (&logged, "Customer was refunded twice")] {
        let n = count(
            &db,
            "audit_events WHERE event_type = 'after_fact_reviewed' AND request_id = $1 AND actor_id = 'usr_sofia' AND detail LIKE $2",
            &[id, &format!("%{v}%")],
        )
        .await;
        assert_eq!(n, 1, "{id}");
    }
    let html = text(&sofia, &server.url("/inbox/after")).await;
    assert!(
        !html.contains(&logged) && !html.contains(&sampled),
        "{html}"
    );
    assert!(html.contains(&danas));
    // Judged once only.
    let html = judge(&server, &sofia, &logged, &[("verdict", "fine")]).await;
    assert!(html.contains("already judged"), "{html}");

    // The statistics see the hindsight.
    let lookup = countersign::stats::queries::Lookup::load(&db)
        .await
        .unwrap();
    let mut seen = std::collections::HashMap::new();
    countersign::stats::queries::for_each_request(
        &db,
        countersign::domain::stats::Window {
            from_ms: now_ms() - 3_600_000,
            to_ms: now_ms() + 1,
        },
        &countersign::stats::queries::Scope::All,
        &lookup,
        |r| {
            seen.insert(r.id.clone(), r.hindsight);
        },
    )
    .await
    .unwrap();
    use countersign::domain::stats::Hindsight;
    assert_eq!(seen[&sampled], Hindsight::Fine);
    assert_eq!(seen[&logged], Hindsight::ShouldNotHaveHappened);
    assert_eq!(seen[&danas], Hindsight::NotReviewed);
    let alex = server.signed_in("alex@example.com").await;
    let stats = text(&alex, &server.url("/stats")).await;
    // Logged: 1 of 3 judged should not have happened; sampled auto: 0 of 1.
    assert!(
        stats.contains("33.3% of 3 reviewed") && stats.contains("of 1 reviewed"),
        "{stats}"
    );

    // ...and so does the breaker: 1 of 4 judgements at this gate said "should not have
    // happened", above the 15% it tolerates, so it opened and the next auto refund waits.
    assert_eq!(
        count(&db, "breakers b JOIN agents a ON a.id = b.agent_id WHERE a.name = 'after-bot' AND b.state = 'open' AND b.gate_id <> ''", &[]).await,
        1
    );
    let next = refund(&server, &token, "auto-2", "50.00", json!({})).await;
    assert_eq!(next["tier"], "review", "{next}");

    server.stop().await;
}
on_both_engines!(
    after_fact_queue,
    log_and_sampled_auto_are_queued_judged_and_counted
);

/// Two reviewers judging the same items at the same moment: each item is judged once, by one of
/// them, and the other is told it was already judged (the judgement is a conditional update,
/// which PostgreSQL re-checks after waiting for the first one's row lock).
async fn simultaneous_judgements_record_one_verdict(engine: Engine) {
    use countersign::accounts::{CurrentUser, Role};
    use countersign::domain::after_fact::Judgement;
    use countersign::inbox::after_fact::repo::judge;
    let Some((server, token)) = start(engine).await else {
        return;
    };
    let db = server.db.db.clone();
    let reviewer = |id: &str, name: &str| CurrentUser {
        id: format!("usr_{id}"),
        email: format!("{id}@example.com"),
        display_name: name.into(),
        roles: vec![Role::Reviewer],
    };
    let (dana, sofia) = (
        reviewer("dana", "Dana Whitfield"),
        reviewer("sofia", "Sofia"),
    );
    for n in 0..8 {
        let logged =
            id_of(&refund(&server, &token, &format!("race-{n}"), "500.00", json!({})).await);
        let picks = [logged.clone()];
        let (first, second) = tokio::join!(
            judge(&server.state, &dana, &picks, Judgement::Fine, None),
            judge(&server.state, &sofia, &picks, Judgement::Fine, None)
        );
        let accepted = [&first, &second].iter().filter(|r| r.is_ok()).count();
        assert_eq!(accepted, 1, "{logged}: {first:?} / {second:?}");
        for refused in [first, second].into_iter().filter_map(Result::err) {
            assert!(
                matches!(&refused, countersign::error::AppError::Conflict(m) if m.contains("already judged")),
                "{logged}: {refused:?}"
            );
        }
        let events = count(
            &db,
            "audit_events WHERE event_type = 'after_fact_reviewed' AND request_id = $1",
            &[&logged],
        )
        .await;
        assert_eq!(events, 1, "{logged}");
    }
    server.stop().await;
}
on_both_engines!(
    simultaneous_judgements,
    simultaneous_judgements_record_one_verdict
);

async fn decisions_on(db: &Db, id: &str) -> i64 {
    count(db, "decisions WHERE request_id = $1", &[id]).await
}

async fn status_of(db: &Db, id: &str) -> String {
    on_db!(db, |p| sqlx::query_scalar(
        "SELECT status FROM action_requests WHERE id = $1"
    )
    .bind(id)
    .fetch_one(p)
    .await
    .unwrap())
}

/// Posts a bulk approval; returns the status and body.
async fn bulk(
    server: &TestServer,
    client: &reqwest::Client,
    form: &[(&str, String)],
) -> (u16, String) {
    let res = client
        .post(server.url("/inbox/bulk"))
        .form(form)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.text().await.unwrap())
}

fn picks<S: AsRef<str>>(items: &[(S, i64)]) -> Vec<(&'static str, String)> {
    let mut form: Vec<(&'static str, String)> = vec![("action", "approve".to_owned())];
    form.extend(
        items
            .iter()
            .map(|(id, v)| ("pick", format!("{}@{v}", id.as_ref()))),
    );
    form
}

async fn bulk_approval_is_all_or_nothing(engine: Engine) {
    let Some((server, token)) = start(engine).await else {
        return;
    };
    let db = server.db.db.clone();
    let review = |k: &'static str, extra: Value| {
        let (server, token) = (&server, &token);
        async move {
            let v = refund(server, token, k, "2000.00", extra).await;
            assert_eq!(v["tier"], "review", "{v}");
            id_of(&v)
        }
    };
    let (r1, r2, r3, r4) = (
        review("r1", json!({})).await,
        review("r2", json!({})).await,
        review("r3", json!({})).await,
        review("r4", json!({})).await,
    );
    let mine = review("r-sofia", json!({"acting_for": "usr_sofia"})).await;
    let dual = refund(
        &server,
        &token,
        "d1",
        "6000.00",
        json!({"customer_tier": "enterprise"}),
    )
    .await;
    assert_eq!(dual["tier"], "dual", "{dual}");
    let dual = id_of(&dual);
    let sofia = server.signed_in("sofia@example.com").await;
    let decisions_before = count(&db, "decisions", &[]).await;
    let unchanged = |db: Db| async move {
        assert_eq!(
            count(&db, "decisions", &[]).await,
            decisions_before,
            "nothing was decided"
        );
    };

    // Refused as a whole, naming the request, changing nothing.
    for (form, code, why) in [
        (
            picks(&[(&r4, 1), (&dual, 1)]),
            409,
            format!("{dual}: it needs two independent reviews (dual)"),
        ),
        (
            picks(&[(&r4, 2)]),
            409,
            format!("{r4}: it changed since you opened the inbox"),
        ),
        (
            picks(&[(&r4, 1), (&mine, 1)]),
            409,
            format!("{mine}: it was made on your behalf"),
        ),
        (
            picks::<&str>(&[]),
            400,
            "pick: select at least one request to approve".to_owned(),
        ),
        (
            picks(&[("req_missing", 1)]),
            400,
            "req_missing is not a request".to_owned(),
        ),
        (
            vec![("action", "reject".to_owned()), ("pick", format!("{r4}@1"))],
            400,
            "action: the only bulk action is approve".to_owned(),
        ),
        (
            vec![
                ("action", "approve".to_owned()),
                ("pick", format!("{r4}@x")),
            ],
            400,
            "pick: ".to_owned(),
        ),
    ] {
        let (status, body) = bulk(&server, &sofia, &form).await;
        assert_eq!(status, code, "{why}: {body}");
        assert!(
            body.contains(&why) && body.contains("Back to the inbox"),
            "{why}: {body}"
        );
        unchanged(db.clone()).await;
        assert_eq!(status_of(&db, &r4).await, "pending");
    }
    // An auditor may not decide at all.
    let ines = server.signed_in("ines@example.com").await;
    let (status, _) = bulk(&server, &ines, &picks(&[(&r4, 1)])).await;
    assert_eq!(status, 403);
    unchanged(db.clone()).await;

    // Three approved: each its own decision, audit event and approval token.
    let res = sofia
        .post(server.url("/inbox/bulk"))
        .form(&picks(&[(&r1, 1), (&r2, 1), (&r3, 1)]))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/inbox");
    let inbox = text(&sofia, &server.url("/inbox")).await;
    assert!(inbox.contains("Approved 3 requests"), "{inbox}");
    for id in [&r1, &r2, &r3] {
        assert_eq!(status_of(&db, id).await, "approved");
        assert_eq!(decisions_on(&db, id).await, 1, "{id}");
        assert_eq!(
            count(&db, "decisions WHERE request_id = $1 AND kind = 'approve' AND reviewer_id = 'usr_sofia'", &[id]).await,
            1
        );
        assert_eq!(
            count(&db, "audit_events WHERE event_type = 'decision' AND request_id = $1 AND actor_id = 'usr_sofia'", &[id]).await,
            1
        );
        assert_eq!(
            count(&db, "approval_tokens WHERE request_id = $1", &[id]).await,
            1
        );
    }
    // The agent sees each approval with its own token.
    let seen: Value = reqwest::Client::new()
        .get(server.url(&format!("/api/v1/actions/{r2}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(seen["status"], "approved", "{seen}");
    // Approved already: a second batch naming it is refused.
    let (status, body) = bulk(&server, &sofia, &picks(&[(&r1, 1), (&r4, 1)])).await;
    assert_eq!(status, 409);
    assert!(
        body.contains(&format!("{r1}: it is already approved")),
        "{body}"
    );

    // A gate that disallows bulk: requests it gates from now on are refused (r4 keeps the
    // version that gated it, which allowed it).
    set_refunds(&db, |s| s.bulk_approve = false).await;
    let r5 = review("r5", json!({})).await;
    let (status, body) = bulk(&server, &sofia, &picks(&[(&r4, 1), (&r5, 1)])).await;
    assert_eq!(status, 409);
    assert!(
        body.contains(&format!("{r5}: its gate does not allow bulk approval")),
        "{body}"
    );
    assert_eq!(status_of(&db, &r4).await, "pending");
    let (status, _) = bulk(&server, &sofia, &picks(&[(&r4, 1)])).await;
    assert_eq!(status, 303);
    assert_eq!(status_of(&db, &r4).await, "approved");
    server.stop().await;
}
on_both_engines!(bulk_approve, bulk_approval_is_all_or_nothing);

/// The gate settings form carries the bulk-approval box; an old form without it changes nothing.
async fn the_gate_form_turns_bulk_approval_off(engine: Engine) {
    let Some((server, _)) = start(engine).await else {
        return;
    };
    let alex = server.signed_in("alex@example.com").await;
    let res = alex
        .post(server.url("/gates/refunds/draft"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let html = text(&alex, &server.url("/gates/refunds")).await;
    assert!(
        html.contains(r#"name="bulk_approve" checked"#),
        "on by default: {html}"
    );
    let form = [
        ("deadline_minutes", "120"),
        ("reminder_before_minutes", "30"),
        ("escalation_group", ""),
        ("auto_sample_rate", "0.05"),
        ("rejection_reasons", "wrong-amount: Wrong amount"),
        ("payload_schema", ""),
        ("breaker_rate_percent", "15"),
        ("breaker_window_minutes", "60"),
        ("breaker_min_decisions", "20"),
        ("breaker_on_open", "force_review"),
        ("bulk_fields", "1"),
    ];
    let res = alex
        .post(server.url("/gates/refunds/draft/settings"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let draft: String = on_db!(&server.db.db, |p| sqlx::query_scalar(
        "SELECT v.definition FROM gate_versions v JOIN gates g ON g.id = v.gate_id \
         WHERE g.key = 'refunds' AND v.published_at IS NULL"
    )
    .fetch_one(p)
    .await
    .unwrap());
    let draft: Value = serde_json::from_str(&draft).unwrap();
    assert_eq!(draft["settings"]["bulk_approve"], false, "{draft}");
    assert_eq!(draft["settings"]["auto_sample_rate"], 0.05);
    server.stop().await;
}
on_both_engines!(gate_form, the_gate_form_turns_bulk_approval_off);
