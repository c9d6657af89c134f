//! Deciding in the browser: the request page, the decision forms, and every refusal.

mod common;

use common::{with_demo, Engine};
use countersign::on_db;

async fn open_request(db: &countersign::server::Db, extra: &str) -> String {
    on_db!(db, |p| {
        sqlx::query_scalar(&format!(
        "SELECT id FROM action_requests WHERE status IN ('pending', 'in_review', 'escalated') AND tier = 'review' {extra} ORDER BY id LIMIT 1"
    ))
    .fetch_one(p)
    .await
    .unwrap()
    })
}

async fn status_of(db: &countersign::server::Db, id: &str) -> String {
    on_db!(db, |p| sqlx::query_scalar(
        "SELECT status FROM action_requests WHERE id = $1"
    )
    .bind(id)
    .fetch_one(p)
    .await
    .unwrap())
}

async fn a_reviewer_opens_a_request_and_decides_it_with_every_guard_in_place(engine: Engine) {
    let Some(server) = with_demo(engine, 9, 7, 80).await else {
        return;
    };
    let db = server.db.db.clone();
    let dana = server.signed_in("dana@example.com").await;
    let id = open_request(&db, "AND (acting_for IS NULL OR acting_for <> 'usr_dana')").await;
    let page = format!("/inbox/{id}");
    let decide = server.url(&format!("/inbox/{id}/decide"));

    // Opening the request shows the checkpoint and records the view (invariant 6).
    let html = dana
        .get(server.url(&page))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("Why it is here") && html.contains("Approve") && html.contains("Reject"),
        "{html}"
    );
    let views = common::count(
        &db,
        "audit_events WHERE event_type = 'request_viewed' AND request_id = $1 AND actor_id = 'usr_dana'",
        &[&id],
    )
    .await;
    assert_eq!(views, 1);

    // A GET on the decision address decides nothing.
    let get = dana.get(decide.clone()).send().await.unwrap();
    assert_eq!(get.status(), 405);

    // Rejecting without a reason is refused and changes nothing.
    let res = dana
        .post(decide.clone())
        .form(&[
            ("state_version", "1"),
            ("verdict", "reject"),
            ("reason", " "),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["location"], page.as_str());
    let html = dana
        .get(server.url(&page))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("reason: a rejection needs a reason"),
        "{html}"
    );
    assert_ne!(status_of(&db, &id).await, "rejected");

    // A decision on a state the reviewer did not see is refused (invariant 4).
    dana.post(decide.clone())
        .form(&[("state_version", "0"), ("verdict", "approve")])
        .send()
        .await
        .unwrap();
    let html = dana
        .get(server.url(&page))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("changed since you opened it"), "{html}");

    // A forged cross-site post is refused.
    let forged = dana
        .post(decide.clone())
        .header("origin", "https://evil.example")
        .form(&[("state_version", "1"), ("verdict", "approve")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);

    // An auditor reads but cannot decide.
    let ines = server.signed_in("ines@example.com").await;
    let html = ines
        .get(server.url(&page))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("your role does not decide"), "{html}");
    ines.post(decide.clone())
        .form(&[("state_version", "1"), ("verdict", "approve")])
        .send()
        .await
        .unwrap();
    assert!(matches!(
        status_of(&db, &id).await.as_str(),
        "pending" | "in_review" | "escalated"
    ));

    // Dana approves: back to the inbox with a notice; an approval token now exists.
    let res = dana
        .post(decide.clone())
        .form(&[("state_version", "1"), ("verdict", "approve")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["location"], "/inbox");
    let inbox = dana
        .get(server.url("/inbox"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(inbox.contains(&format!("Approved: {id}")), "notice shown");
    assert_eq!(status_of(&db, &id).await, "approved");
    let tokens = common::count(&db, "approval_tokens WHERE request_id = $1", &[&id]).await;
    assert_eq!(tokens, 1);
    // Deciding again is refused: terminal states never change.
    dana.post(decide)
        .form(&[
            ("state_version", "1"),
            ("verdict", "reject"),
            ("reason", "changed my mind"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(status_of(&db, &id).await, "approved");

    // Self-review is impossible (invariant 3).
    let own: Option<String> = on_db!(&db, |p| {
        sqlx::query_scalar(
        "SELECT id FROM action_requests WHERE status IN ('pending', 'in_review', 'escalated') AND acting_for = 'usr_dana' LIMIT 1"
    )
    .fetch_optional(p)
    .await
    .unwrap()
    });
    if let Some(own) = own {
        let html = dana
            .get(server.url(&format!("/inbox/{own}")))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(html.contains("acts on your behalf"), "{html}");
        dana.post(server.url(&format!("/inbox/{own}/decide")))
            .form(&[("state_version", "1"), ("verdict", "approve")])
            .send()
            .await
            .unwrap();
        assert_ne!(status_of(&db, &own).await, "approved");
    }
    server.stop().await;
}
on_both_engines!(
    deciding,
    a_reviewer_opens_a_request_and_decides_it_with_every_guard_in_place
);

async fn a_missing_request_is_a_404_page(engine: Engine) {
    let Some(server) = with_demo(engine, 9, 1, 10).await else {
        return;
    };
    let dana = server.signed_in("dana@example.com").await;
    let res = dana
        .get(server.url("/inbox/req_nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    assert!(res.text().await.unwrap().contains("Not found."));
    server.stop().await;
}
on_both_engines!(missing_request, a_missing_request_is_a_404_page);

async fn the_request_page_shows_what_would_change(engine: Engine) {
    let Some(server) = with_demo(engine, 9, 7, 80).await else {
        return;
    };
    let dana = server.signed_in("dana@example.com").await;
    let contract: String = on_db!(&server.db.db, |p| {
        sqlx::query_scalar(
        "SELECT id FROM action_requests WHERE action_type = 'contract.amend' ORDER BY id LIMIT 1"
    )
    .fetch_one(p)
    .await
    .unwrap()
    });
    let html = dana
        .get(server.url(&format!("/inbox/{contract}")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("What would change"), "{html}");
    assert!(
        html.contains("<del>90</del>"),
        "the old notice period, struck through: {html}"
    );
    assert!(
        html.contains("<ins>30</ins>")
            || html.contains("<ins>45</ins>")
            || html.contains("<ins>60</ins>"),
        "{html}"
    );
    assert!(html.contains("field(s) unchanged"));
    server.stop().await;
}
on_both_engines!(
    field_and_text_diff,
    the_request_page_shows_what_would_change
);

async fn a_reviewer_edits_the_payload_then_approves(engine: Engine) {
    let Some(server) = with_demo(engine, 10, 3, 40).await else {
        return;
    };
    let db = server.db.db.clone();
    let dana = server.signed_in("dana@example.com").await;
    let id = open_request(
        &db,
        "AND action_type = 'payment.refund' AND (acting_for IS NULL OR acting_for <> 'usr_dana')",
    )
    .await;
    let html = dana
        .get(server.url(&format!("/inbox/{id}")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("Edit, then approve") && html.contains("name=\"payload\""),
        "{html}"
    );
    let decide = server.url(&format!("/inbox/{id}/decide"));
    let payload: String = on_db!(&db, |p| sqlx::query_scalar(
        "SELECT payload FROM action_requests WHERE id = $1"
    )
    .bind(&id)
    .fetch_one(p)
    .await
    .unwrap());
    let mut edited: serde_json::Value = serde_json::from_str(&payload).unwrap();
    edited["note"] = serde_json::json!("partial refund agreed with the customer");

    // Not JSON, or no change at all: refused with the reason, nothing decided.
    let before = status_of(&db, &id).await;
    for (text, expect) in [("{oops", "not JSON"), (payload.as_str(), "changes nothing")] {
        let res = dana
            .post(&decide)
            .form(&[
                ("state_version", "1"),
                ("verdict", "approve_with_edit"),
                ("payload", text),
            ])
            .send()
            .await
            .unwrap();
        let to = res.headers()["location"].to_str().unwrap().to_owned();
        let page = dana
            .get(server.url(&to))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(page.contains(expect), "{expect}: {page}");
        assert_eq!(status_of(&db, &id).await, before);
    }
    let res = dana
        .post(&decide)
        .form(&[
            ("state_version", "1"),
            ("verdict", "approve_with_edit"),
            ("payload", &edited.to_string()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["location"], "/inbox");
    assert_eq!(status_of(&db, &id).await, "approved_with_edit");
    let stored: Option<String> = on_db!(&db, |p| {
        sqlx::query_scalar(
        "SELECT edited_payload FROM decisions WHERE request_id = $1 AND kind = 'approve_with_edit'"
    )
    .bind(&id)
    .fetch_one(p)
    .await
    .unwrap()
    });
    let stored: serde_json::Value = serde_json::from_str(&stored.unwrap()).unwrap();
    assert_eq!(stored, edited);
    server.stop().await;
}
on_both_engines!(
    edit_then_approve,
    a_reviewer_edits_the_payload_then_approves
);

async fn the_inbox_searches_text_and_narrows_by_deadline(engine: Engine) {
    let Some(server) = with_demo(engine, 11, 5, 60).await else {
        return;
    };
    let db = server.db.db.clone();
    let dana = server.signed_in("dana@example.com").await;
    let ids = |html: &str| -> Vec<String> {
        html.split("<tr data-id=\"")
            .skip(1)
            .map(|s| s.split('"').next().unwrap().to_owned())
            .collect()
    };
    let get = |path: String| {
        let dana = dana.clone();
        let url = server.url(&path);
        async move {
            let res = dana.get(url).send().await.unwrap();
            (res.status().as_u16(), res.text().await.unwrap())
        }
    };
    // A counterparty of an open request, searched in any case, finds it; every hit mentions it.
    let (_id, counterparty): (String, String) = on_db!(&db, |p| {
        sqlx::query_as(
        "SELECT id, counterparty FROM action_requests WHERE status = 'pending' AND counterparty IS NOT NULL ORDER BY id LIMIT 1"
    )
    .fetch_one(p)
    .await
    .unwrap()
    });
    let (status, html) = get(format!(
        "/inbox?q={}",
        countersign::shell::query_escape(&counterparty.to_uppercase())
    ))
    .await;
    assert_eq!(status, 200);
    let found = ids(&html);
    assert!(!found.is_empty(), "{html}");
    for hit in &found {
        let text: String = on_db!(&db, |p| {
            sqlx::query_scalar(
            "SELECT LOWER(title || ' ' || COALESCE(counterparty, '') || ' ' || reasoning || ' ' || payload) FROM action_requests WHERE id = $1"
        )
        .bind(hit)
        .fetch_one(p)
        .await
        .unwrap()
        });
        assert!(
            text.contains(&counterparty.to_lowercase()),
            "{hit} does not mention {counterparty}"
        );
    }
    // Wildcards are taken literally.
    let (status, html) = get("/inbox?q=%25%25%25".into()).await;
    assert_eq!(status, 200);
    assert!(
        ids(&html).is_empty(),
        "nothing contains three percent signs"
    );

    // Overdue: every row's deadline has passed; within 24 hours: at most a day away.
    let now = countersign::server::now_ms();
    for (due, limit) in [("overdue", now), ("24h", now + 86_400_000)] {
        let (status, html) = get(format!("/inbox?due={due}")).await;
        assert_eq!(status, 200);
        for hit in ids(&html) {
            let deadline: Option<i64> = on_db!(&db, |p| sqlx::query_scalar(
                "SELECT deadline_at FROM action_requests WHERE id = $1"
            )
            .bind(&hit)
            .fetch_one(p)
            .await
            .unwrap());
            assert!(
                deadline.is_some_and(|d| d <= limit + 60_000),
                "{due}: {hit}"
            );
        }
    }
    let (status, html) = get("/inbox?due=soonish".into()).await;
    assert_eq!(status, 400);
    assert!(html.contains("overdue, 1h, 4h or 24h"), "{html}");
    server.stop().await;
}
on_both_engines!(
    inbox_search_and_due,
    the_inbox_searches_text_and_narrows_by_deadline
);

/// Two reviewers press approve / reject on the same requests at the same moment: each request
/// gets exactly one decision, one of them is told it went through and the other is refused.
async fn simultaneous_decisions_on_one_request_record_exactly_one(engine: Engine) {
    let Some(server) = with_demo(engine, 9, 7, 80).await else {
        return;
    };
    let db = server.db.db.clone();
    let dana = server.signed_in("dana@example.com").await;
    let sofia = server.signed_in("sofia@example.com").await;
    let ids: Vec<String> = on_db!(&db, |p| {
        sqlx::query_scalar(
        "SELECT id FROM action_requests WHERE status IN ('pending', 'in_review') AND tier = 'review' \
         AND (acting_for IS NULL OR acting_for NOT IN ('usr_dana', 'usr_sofia')) ORDER BY id LIMIT 12"
    )
    .fetch_all(p)
    .await
    .unwrap()
    });
    assert!(ids.len() >= 6, "the demo has open review requests: {ids:?}");
    for id in &ids {
        let decide = server.url(&format!("/inbox/{id}/decide"));
        let send = |client: &reqwest::Client, verdict: &'static str| {
            client
                .post(decide.clone())
                .form(&[
                    ("state_version", "1"),
                    ("verdict", verdict),
                    ("reason", "both at once"),
                ])
                .send()
        };
        let (a, b) = tokio::join!(send(&dana, "approve"), send(&sofia, "reject"));
        let accepted = [a.unwrap(), b.unwrap()]
            .iter()
            .filter(|r| r.status() == 303 && r.headers()["location"] == "/inbox")
            .count();
        let decisions = common::count(
            &db,
            "decisions WHERE request_id = $1 AND reviewer_id IS NOT NULL",
            &[id],
        )
        .await;
        assert_eq!(
            (accepted, decisions),
            (1, 1),
            "{id}: one decision is accepted and recorded, the other refused"
        );
        let outbox = common::count(&db, "webhook_outbox WHERE request_id = $1", &[id]).await;
        assert!(outbox <= 1, "{id}: {outbox} webhook messages");
        assert!(
            ["approved", "rejected"].contains(&status_of(&db, id).await.as_str()),
            "{id}"
        );
    }
    server.stop().await;
}
on_both_engines!(
    simultaneous_decisions,
    simultaneous_decisions_on_one_request_record_exactly_one
);
