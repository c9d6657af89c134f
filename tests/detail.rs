//! The request page beyond the bare decision: claims (the soft lock), the edit preview, agent
//! revisions and the stale-state refusal that shows them, escalation with a note, and moving on
//! to the next request after a decision.

mod common;

use common::{with_demo, Engine, TestServer};
use countersign::on_db;

/// An open `review` request of `action_type` that neither Dana nor Ravi acts for.
async fn open_request(db: &countersign::server::Db, action_type: &str) -> String {
    on_db!(db, |p| {
        sqlx::query_scalar(
            "SELECT id FROM action_requests WHERE status IN ('pending', 'in_review', 'escalated') \
             AND tier = 'review' AND action_type = $1 AND (acting_for IS NULL OR acting_for NOT IN ('usr_dana', 'usr_ravi')) \
             ORDER BY created_at, id LIMIT 1",
        )
        .bind(action_type)
        .fetch_one(p)
        .await
        .unwrap()
    })
}

async fn scalar(db: &countersign::server::Db, sql: &str, id: &str) -> Option<String> {
    on_db!(db, |p| sqlx::query_scalar(sql)
        .bind(id)
        .fetch_optional(p)
        .await
        .unwrap())
}

async fn page(server: &TestServer, client: &reqwest::Client, path: &str) -> (u16, String) {
    let res = client.get(server.url(path)).send().await.unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

fn location(res: &reqwest::Response) -> String {
    res.headers()["location"].to_str().unwrap().to_owned()
}

async fn claims_are_taken_shown_and_released(engine: Engine) {
    let Some(server) = with_demo(engine, 21, 3, 60).await else {
        return;
    };
    let db = server.db.db.clone();
    let id = open_request(&db, "payment.vendor").await;
    let holder = "SELECT user_id FROM request_claims WHERE request_id = $1";
    let path = format!("/inbox/{id}");
    let dana = server.signed_in("dana@example.com").await;
    let ravi = server.signed_in("ravi@example.com").await;

    // Dana opens it: she holds it, and her page says so with a Release button.
    let (status, html) = page(&server, &dana, &path).await;
    assert_eq!(status, 200);
    assert!(html.contains("You are reviewing this"), "{html}");
    assert!(html.contains(&format!("action=\"/inbox/{id}/release\"")));
    assert_eq!(scalar(&db, holder, &id).await.as_deref(), Some("usr_dana"));

    // Ravi sees that Dana is reviewing; opening it does not take it from her.
    let (_, html) = page(&server, &ravi, &path).await;
    assert!(
        html.contains("Dana Whitfield is reviewing (since "),
        "{html}"
    );
    assert!(html.contains("Approve"), "a claim is advisory: {html}");
    assert_eq!(scalar(&db, holder, &id).await.as_deref(), Some("usr_dana"));
    // Ravi cannot release Dana's claim.
    ravi.post(server.url(&format!("{path}/release")))
        .send()
        .await
        .unwrap();
    assert_eq!(scalar(&db, holder, &id).await.as_deref(), Some("usr_dana"));

    // Dana releases: the claim is gone and that is audited.
    let res = dana
        .post(server.url(&format!("{path}/release")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(scalar(&db, holder, &id).await, None);
    let released = common::count(
        &db,
        "audit_events WHERE event_type = 'request_released' AND request_id = $1",
        &[&id],
    )
    .await;
    assert_eq!(released, 1);
    // A beacon release answers without a page.
    let res = dana
        .post(server.url(&format!("{path}/release?beacon=1")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);

    // Ravi takes it now; once his claim expires, Dana takes it over.
    page(&server, &ravi, &path).await;
    assert_eq!(scalar(&db, holder, &id).await.as_deref(), Some("usr_ravi"));
    on_db!(&db, |p| sqlx::query(
        "UPDATE request_claims SET expires_at = 1 WHERE request_id = $1"
    )
    .bind(&id)
    .execute(p)
    .await
    .map(|_| ())
    .unwrap());
    let (_, html) = page(&server, &dana, &path).await;
    assert!(!html.contains("Ravi Menon is reviewing"), "{html}");
    assert_eq!(scalar(&db, holder, &id).await.as_deref(), Some("usr_dana"));

    // Ravi decides anyway (advisory): the claim ends in the same transaction, and he lands on
    // the next request he may decide, with a notice of what he did.
    let res = ravi
        .post(server.url(&format!("{path}/decide")))
        .form(&[
            ("state_version", "1"),
            ("verdict", "approve"),
            ("then", "next"),
        ])
        .send()
        .await
        .unwrap();
    let next = location(&res);
    assert!(
        next.starts_with("/inbox/req_") && next != path,
        "the next request: {next}"
    );
    assert_eq!(scalar(&db, holder, &id).await, None);
    let (_, html) = page(&server, &ravi, &next).await;
    assert!(html.contains(&format!("Approved: {id}")), "{html}");
    assert!(html.contains("data-kbd=\"approve\""), "{html}");

    // Bad input is refused, naming the field.
    for (q, field) in [
        ("?diff=sideways", "diff"),
        ("?since=zero", "since"),
        ("?step=jump", "step"),
    ] {
        let (status, html) = page(&server, &dana, &format!("{next}{q}")).await;
        assert_eq!(status, 400, "{q}");
        assert!(html.contains(&format!("{field}: ")), "{q}: {html}");
    }
    let (status, _) = page(&server, &dana, "/inbox/req_nope").await;
    assert_eq!(status, 404);
    server.stop().await;
}
on_both_engines!(claims, claims_are_taken_shown_and_released);

async fn an_edit_is_previewed_then_confirmed_and_kept_apart(engine: Engine) {
    let Some(server) = with_demo(engine, 22, 3, 60).await else {
        return;
    };
    let db = server.db.db.clone();
    let id = open_request(&db, "payment.vendor").await;
    let path = format!("/inbox/{id}");
    let dana = server.signed_in("dana@example.com").await;
    page(&server, &dana, &path).await;
    let payload = scalar(
        &db,
        "SELECT payload FROM action_requests WHERE id = $1",
        &id,
    )
    .await
    .unwrap();
    let mut edited: serde_json::Value = serde_json::from_str(&payload).unwrap();
    edited["execute_on"] = serde_json::json!("after the invoice is matched to PO");

    // Not JSON: back to the editor with the reason, the text kept, nothing decided.
    let res = dana
        .post(server.url(&format!("{path}/edit")))
        .form(&[("state_version", "1"), ("payload", "{oops")])
        .send()
        .await
        .unwrap();
    assert_eq!(location(&res), format!("{path}?step=edit#edit"));
    let (_, html) = page(&server, &dana, &format!("{path}?step=edit")).await;
    assert!(html.contains("the edited payload is not JSON"), "{html}");
    assert!(
        html.contains("{oops"),
        "the text stays in the editor: {html}"
    );

    // A real edit goes to the preview: the difference, and a confirmation carrying the edit.
    let res = dana
        .post(server.url(&format!("{path}/edit")))
        .form(&[("state_version", "1"), ("payload", &edited.to_string())])
        .send()
        .await
        .unwrap();
    assert_eq!(location(&res), format!("{path}?step=preview#preview"));
    for mode in ["", "&diff=unified"] {
        let (_, html) = page(&server, &dana, &format!("{path}?step=preview{mode}")).await;
        assert!(html.contains("Check your edit before approving"), "{html}");
        assert!(
            html.contains("<ins>after the invoice is matched to PO</ins>")
                || html.contains("<ins>after the invoice is matched to PO"),
            "{html}"
        );
        assert!(html.contains("value=\"approve_with_edit\""), "{html}");
    }
    let open = scalar(&db, "SELECT status FROM action_requests WHERE id = $1", &id).await;
    assert_ne!(
        open.as_deref(),
        Some("approved_with_edit"),
        "nothing decided yet"
    );

    // Confirming approves exactly the edit; the proposal, the edit and the diff are kept apart.
    let res = dana
        .post(server.url(&format!("{path}/decide")))
        .form(&[
            ("state_version", "1"),
            ("verdict", "approve_with_edit"),
            ("payload", &serde_json::to_string_pretty(&edited).unwrap()),
            ("then", "next"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(
        scalar(&db, "SELECT status FROM action_requests WHERE id = $1", &id)
            .await
            .as_deref(),
        Some("approved_with_edit")
    );
    let (original, stored, diff): (String, String, String) = on_db!(&db, |p| sqlx::query_as(
        "SELECT original, edited, diff FROM payload_edits WHERE request_id = $1"
    )
    .bind(&id)
    .fetch_one(p)
    .await
    .unwrap());
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&original).unwrap(),
        serde_json::from_str::<serde_json::Value>(&payload).unwrap()
    );
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&stored).unwrap(),
        edited
    );
    assert!(
        diff.contains("execute_on") && !diff.contains("iban"),
        "{diff}"
    );
    // The decided page shows the approved edit against the proposal.
    let (_, html) = page(&server, &dana, &path).await;
    assert!(html.contains("approved-edit-diff"), "{html}");
    server.stop().await;
}
on_both_engines!(
    edit_preview,
    an_edit_is_previewed_then_confirmed_and_kept_apart
);

async fn a_revision_refuses_the_stale_decision_and_shows_what_changed(engine: Engine) {
    let Some(server) = with_demo(engine, 23, 3, 60).await else {
        return;
    };
    let db = server.db.db.clone();
    let id = open_request(&db, "payment.vendor").await;
    let path = format!("/inbox/{id}");
    let agent = scalar(
        &db,
        "SELECT a.name FROM action_requests r JOIN agents a ON a.id = r.agent_id WHERE r.id = $1",
        &id,
    )
    .await
    .unwrap();
    let token = countersign::api::tokens::issue_token(
        &db,
        &agent,
        false,
        &countersign::audit::repo::Actor::System,
    )
    .await
    .unwrap();
    let http = reqwest::Client::new();
    let revise = server.url(&format!("/api/v1/actions/{id}/revise"));
    let dana = server.signed_in("dana@example.com").await;
    let (_, html) = page(&server, &dana, &path).await;
    assert!(html.contains("data-testid=\"state-version\">1<"), "{html}");

    // Bad revisions are refused naming the field, and change nothing.
    for (body, field) in [
        (serde_json::json!({"payload": null}), "payload"),
        (serde_json::json!({"payload": {}, "colour": "red"}), "body"),
    ] {
        let res = http
            .post(&revise)
            .bearer_auth(&token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400);
        let p: serde_json::Value = res.json().await.unwrap();
        assert_eq!(p["field"], field, "{p}");
    }
    let res = http
        .post(&revise)
        .json(&serde_json::json!({"payload": {}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);

    // The agent revises the payload: a new state version, with its snapshot and audit event.
    let payload = scalar(
        &db,
        "SELECT payload FROM action_requests WHERE id = $1",
        &id,
    )
    .await
    .unwrap();
    let mut revised: serde_json::Value = serde_json::from_str(&payload).unwrap();
    revised["execute_on"] = serde_json::json!("Friday");
    let res = http
        .post(&revise)
        .bearer_auth(&token)
        .json(&serde_json::json!({"payload": revised, "reasoning": "Vendor asked for Friday"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        common::count(&db, "request_states WHERE request_id = $1", &[&id]).await,
        2
    );

    // Dana decides on the version she loaded: refused, and the page shows what changed.
    let res = dana
        .post(server.url(&format!("{path}/decide")))
        .form(&[
            ("state_version", "1"),
            ("verdict", "approve"),
            ("then", "next"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(location(&res), format!("{path}?since=1#changed"));
    let (_, html) = page(&server, &dana, &format!("{path}?since=1")).await;
    assert!(
        html.contains("Changed since you opened it: version 1 → 2"),
        "{html}"
    );
    assert!(html.contains("<ins>Friday</ins>"), "{html}");
    assert!(html.contains("revision-diff"), "{html}");
    let status = scalar(&db, "SELECT status FROM action_requests WHERE id = $1", &id).await;
    assert_ne!(status.as_deref(), Some("approved"));
    // Deciding on the new version works; a revision of a decided request is refused.
    let res = dana
        .post(server.url(&format!("{path}/decide")))
        .form(&[("state_version", "2"), ("verdict", "approve")])
        .send()
        .await
        .unwrap();
    assert_eq!(location(&res), "/inbox");
    let res = http
        .post(&revise)
        .bearer_auth(&token)
        .json(&serde_json::json!({"payload": {"x": 1}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 409);
    // The agent is told to execute the revised payload.
    let view: serde_json::Value = http
        .get(server.url(&format!("/api/v1/actions/{id}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(view["approved_payload"], revised);
    server.stop().await;
}
on_both_engines!(
    revision,
    a_revision_refuses_the_stale_decision_and_shows_what_changed
);

async fn escalating_needs_a_note_and_tells_the_group(engine: Engine) {
    let Some(server) = with_demo(engine, 24, 3, 60).await else {
        return;
    };
    let db = server.db.db.clone();
    let id: String = on_db!(&db, |p| {
        sqlx::query_scalar(
        "SELECT id FROM action_requests WHERE status IN ('pending', 'in_review') AND tier = 'review' \
         AND action_type = 'payment.vendor' AND (acting_for IS NULL OR acting_for <> 'usr_dana') \
         ORDER BY created_at LIMIT 1"
    )
    .fetch_one(p)
    .await
    .unwrap()
    });
    let path = format!("/inbox/{id}");
    let dana = server.signed_in("dana@example.com").await;
    let (_, html) = page(&server, &dana, &path).await;
    assert!(html.contains("data-kbd=\"escalate\""), "{html}");
    let decide = server.url(&format!("{path}/decide"));
    dana.post(&decide)
        .form(&[
            ("state_version", "1"),
            ("verdict", "escalate"),
            ("note", " "),
        ])
        .send()
        .await
        .unwrap();
    let (_, html) = page(&server, &dana, &path).await;
    assert!(
        html.contains("note: say what the escalation group"),
        "{html}"
    );
    let before = common::count(&db, "notifications WHERE kind = 'escalated'", &[]).await;
    let res = dana
        .post(&decide)
        .form(&[
            ("state_version", "1"),
            ("verdict", "escalate"),
            ("note", "IBAN differs from the vendor master data"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(
        scalar(&db, "SELECT status FROM action_requests WHERE id = $1", &id)
            .await
            .as_deref(),
        Some("escalated")
    );
    assert_eq!(
        scalar(
            &db,
            "SELECT reason_text FROM decisions WHERE request_id = $1 AND kind = 'escalate'",
            &id
        )
        .await
        .as_deref(),
        Some("IBAN differs from the vendor master data")
    );
    let after = common::count(&db, "notifications WHERE kind = 'escalated'", &[]).await;
    assert!(after > before, "the escalation group is told");
    server.stop().await;
}
on_both_engines!(escalate, escalating_needs_a_note_and_tells_the_group);
