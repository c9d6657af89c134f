//! Split-and-merge dual review through the real server: two blind halves by different people,
//! the merge, a senior reviewer settling a conflict, a send-back round, and what the agent sees.

mod common;

use common::{with_demo, Engine, TestServer};
use countersign::on_db;
use countersign::server::Db;
use serde_json::{json, Value};

/// The demos below make 400 requests a day: how many dual requests are still open depends on the
/// hour the demo is generated, and at 120 a day the merge-rules test, which needs five, found
/// only four at 11:45 UTC (16 to 24 at 400 a day, for each seed, at the same hour).
///
/// An open dual request nobody has reviewed yet, made on behalf of none of the test reviewers.
async fn fresh_dual_request(db: &Db, skip: i64) -> String {
    on_db!(db, |p| {
        sqlx::query_scalar(
        "SELECT id FROM action_requests WHERE tier = 'dual' AND status = 'pending' \
         AND (acting_for IS NULL OR acting_for NOT IN ('usr_dana', 'usr_ravi', 'usr_marcus', 'usr_sofia')) \
         AND (deadline_at IS NULL OR deadline_at > $1) ORDER BY id LIMIT 1 OFFSET $2"
    )
    .bind(countersign::server::now_ms() + 3_600_000)
    .bind(skip)
    .fetch_one(p)
    .await
    .unwrap()
    })
}

async fn scalar_text(db: &Db, sql: &str, id: &str) -> String {
    on_db!(db, |p| sqlx::query_scalar(sql)
        .bind(id)
        .fetch_one(p)
        .await
        .unwrap())
}

async fn status_of(db: &Db, id: &str) -> String {
    scalar_text(db, "SELECT status FROM action_requests WHERE id = $1", id).await
}

async fn payload_of(db: &Db, id: &str) -> Value {
    serde_json::from_str(
        &scalar_text(db, "SELECT payload FROM action_requests WHERE id = $1", id).await,
    )
    .unwrap()
}

/// What the agent that made the request reads from the status endpoint.
async fn agent_view(db: &Db, id: &str) -> countersign::api::view::ActionView {
    let agent = scalar_text(db, "SELECT agent_id FROM action_requests WHERE id = $1", id).await;
    countersign::api::view::load(db, &agent, id)
        .await
        .unwrap()
        .unwrap()
}

struct Reviewer<'a> {
    server: &'a TestServer,
    client: reqwest::Client,
}

impl<'a> Reviewer<'a> {
    async fn new(server: &'a TestServer, email: &str) -> Reviewer<'a> {
        Reviewer {
            server,
            client: server.signed_in(email).await,
        }
    }

    async fn page(&self, id: &str) -> String {
        self.client
            .get(self.server.url(&format!("/inbox/{id}")))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Posts a form and returns where it redirected to and the notice or error shown there.
    async fn post(&self, path: &str, form: &[(&str, &str)]) -> (String, String) {
        let res = self
            .client
            .post(self.server.url(path))
            .form(form)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 303, "{path}: {:?}", res.text().await);
        let to = res.headers()["location"].to_str().unwrap().to_owned();
        let shown = self
            .client
            .get(self.server.url(&to))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        (to, shown)
    }

    async fn decide(&self, id: &str, round: i64, form: &[(&str, &str)]) -> (String, String) {
        let round = round.to_string();
        let mut all = vec![("state_version", round.as_str())];
        all.extend_from_slice(form);
        self.post(&format!("/inbox/{id}/decide"), &all).await
    }

    async fn resolve(&self, id: &str, round: i64, form: &[(&str, &str)]) -> (String, String) {
        let round = round.to_string();
        let mut all = vec![("state_version", round.as_str())];
        all.extend_from_slice(form);
        self.post(&format!("/inbox/{id}/resolve"), &all).await
    }
}

fn with_field(payload: &Value, field: &str, value: &str) -> String {
    let mut p = payload.clone();
    p[field] = json!(value);
    p.to_string()
}

/// The field every demo payload has that an edit can change.
fn editable_field(payload: &Value) -> &'static str {
    ["memo", "reason", "subject", "note", "justification"]
        .into_iter()
        .find(|f| payload.get(*f).is_some_and(Value::is_string))
        .unwrap_or("reviewer_note")
}

async fn two_reviewers_disagree_blind_and_a_senior_settles_it(engine: Engine) {
    let Some(server) = with_demo(engine, 21, 7, 400).await else {
        return;
    };
    let db = server.db.db.clone();
    let id = fresh_dual_request(&db, 0).await;
    let proposed = payload_of(&db, &id).await;
    let field = editable_field(&proposed);
    let edit_a = with_field(&proposed, field, "Edited by the first reviewer: alpha-7731");
    let edit_b = with_field(
        &proposed,
        field,
        "Edited by the second reviewer: bravo-5519",
    );
    let dana = Reviewer::new(&server, "dana@example.com").await;
    let ravi = Reviewer::new(&server, "ravi@example.com").await;
    let marcus = Reviewer::new(&server, "marcus@example.com").await;

    assert!(dana
        .page(&id)
        .await
        .contains("Dual review: 0 of 2 reviews in."));
    let (to, shown) = dana
        .decide(
            &id,
            1,
            &[("verdict", "approve_with_edit"), ("payload", &edit_a)],
        )
        .await;
    assert_eq!(to, "/inbox");
    assert!(
        shown.contains("waits for the other, independent review"),
        "{shown}"
    );
    assert_eq!(status_of(&db, &id).await, "in_review");

    // The same person cannot take the second half.
    let (to, shown) = dana.decide(&id, 1, &[("verdict", "approve")]).await;
    assert_eq!(to, format!("/inbox/{id}"));
    assert!(shown.contains("already in"), "{shown}");

    // Blind: the second reviewer sees that one review is in, and nothing of it.
    let page = ravi.page(&id).await;
    assert!(page.contains("Dual review: 1 of 2 reviews in."), "{page}");
    assert!(!page.contains("alpha-7731"), "the first review leaked");
    // The server function behind the page reveals no more than the page.
    let res = ravi
        .client
        .post(server.url("/api/load_request"))
        .form(&[("id", id.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let data: Value = res.json().await.unwrap();
    assert_eq!(data["dual"]["reviews_in"], 1, "{data}");
    assert_eq!(data["dual"]["conflict"], Value::Null);
    assert!(!data.to_string().contains("alpha-7731"), "{data}");
    let audit: Vec<String> = on_db!(&db, |p| sqlx::query_scalar(
        "SELECT detail FROM audit_events WHERE request_id = $1 ORDER BY seq"
    )
    .bind(&id)
    .fetch_all(p)
    .await
    .unwrap());
    assert!(audit.iter().all(|d| !d.contains("alpha-7731")), "{audit:?}");
    assert!(audit.iter().any(|d| d.contains("verdict_sha256")));
    let decisions = common::count(&db, "decisions WHERE request_id = $1", &[&id]).await;
    assert_eq!(decisions, 0, "a half is not a decision until both are in");

    // Two different edits: a conflict, for a senior reviewer.
    ravi.decide(
        &id,
        1,
        &[("verdict", "approve_with_edit"), ("payload", &edit_b)],
    )
    .await;
    assert_eq!(status_of(&db, &id).await, "in_review");
    assert!(agent_view(&db, &id).await.decision.is_none());
    let told: Vec<String> = on_db!(&db, |p| sqlx::query_scalar(
        "SELECT user_id FROM notifications WHERE kind = 'dual_conflict' AND request_id = $1"
    )
    .bind(&id)
    .fetch_all(p)
    .await
    .unwrap());
    assert_eq!(told, ["usr_marcus"], "senior reviewers other than the two");

    // Now both are in, each reviewer sees the other's version; only a senior may settle it.
    let page = dana.page(&id).await;
    assert!(page.contains("bravo-5519") && page.contains("data-testid=\"cannot-resolve\""));
    let (_, shown) = dana.resolve(&id, 1, &[("resolution", "pick_a")]).await;
    assert!(
        shown.contains("not allowed") || shown.contains("permission"),
        "{shown}"
    );
    assert_eq!(status_of(&db, &id).await, "in_review");

    let page = marcus.page(&id).await;
    assert!(page.contains("data-testid=\"three-way\""), "{page}");
    assert!(page.contains("alpha-7731") && page.contains("bravo-5519"));
    // A stale resolution is refused.
    let (_, shown) = marcus.resolve(&id, 2, &[("resolution", "pick_b")]).await;
    assert!(shown.contains("changed since you opened it"), "{shown}");
    let (to, shown) = marcus.resolve(&id, 1, &[("resolution", "pick_b")]).await;
    assert_eq!(to, "/inbox", "{shown}");
    assert_eq!(status_of(&db, &id).await, "approved_with_edit");

    // The agent sees one outcome: B's edit, with everyone who decided it.
    let view = agent_view(&db, &id).await;
    let approved = view.approved_payload.unwrap();
    assert_eq!(approved, serde_json::from_str::<Value>(&edit_b).unwrap());
    let decision = view.decision.unwrap();
    assert_eq!(decision.kind, "approve_with_edit");
    let by: Vec<&str> = decision.decided_by.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(by.len(), 3, "{by:?}");
    for who in ["usr_dana", "usr_ravi", "usr_marcus"] {
        assert!(by.contains(&who), "{by:?}");
    }
    countersign::audit::verify::verify_trail(&db, &server.state.audit_key.public_hex())
        .await
        .expect("the audit chain verifies");
    server.stop().await;
}
on_both_engines!(
    conflict_settled_by_senior,
    two_reviewers_disagree_blind_and_a_senior_settles_it
);

async fn merge_rules_hold_at_the_server(engine: Engine) {
    let Some(server) = with_demo(engine, 22, 7, 400).await else {
        return;
    };
    let db = server.db.db.clone();
    let dana = Reviewer::new(&server, "dana@example.com").await;
    let ravi = Reviewer::new(&server, "ravi@example.com").await;
    let sofia = Reviewer::new(&server, "sofia@example.com").await;

    // Both approve unchanged: approved, by both.
    let id = fresh_dual_request(&db, 0).await;
    dana.decide(&id, 1, &[("verdict", "approve")]).await;
    assert_eq!(status_of(&db, &id).await, "in_review");
    // A third reviewer cannot take a half of a round whose halves are both taken... but here
    // one is free, so Sofia's approval completes it.
    sofia.decide(&id, 1, &[("verdict", "approve")]).await;
    assert_eq!(status_of(&db, &id).await, "approved");
    let view = agent_view(&db, &id).await;
    assert_eq!(view.approved_payload.unwrap(), payload_of(&db, &id).await);
    assert_eq!(view.decision.as_ref().unwrap().decided_by.len(), 2);
    assert!(view.approval_token.is_some());

    // Either rejects: rejected, and both reasons reach the agent when both reject.
    let id = fresh_dual_request(&db, 0).await;
    dana.decide(
        &id,
        1,
        &[
            ("verdict", "reject"),
            ("reason", "Counterparty not verified"),
        ],
    )
    .await;
    ravi.decide(
        &id,
        1,
        &[
            ("verdict", "reject"),
            ("reason", "Amount exceeds the contract"),
        ],
    )
    .await;
    assert_eq!(status_of(&db, &id).await, "rejected");
    let decision = agent_view(&db, &id).await.decision.unwrap();
    assert_eq!(decision.kind, "reject");
    let reasons: Vec<String> = decision
        .reasons
        .iter()
        .map(|r| r.reason.clone().unwrap())
        .collect();
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    assert!(reasons.contains(&"Counterparty not verified".to_owned()));
    assert!(reasons.contains(&"Amount exceeds the contract".to_owned()));

    // One approves, the other rejects: rejected; the approval never wins.
    let id = fresh_dual_request(&db, 0).await;
    dana.decide(&id, 1, &[("verdict", "approve")]).await;
    ravi.decide(
        &id,
        1,
        &[("verdict", "reject"), ("reason", "Looks like a duplicate")],
    )
    .await;
    assert_eq!(status_of(&db, &id).await, "rejected");
    let view = agent_view(&db, &id).await;
    assert!(view.approval_token.is_none() && view.approved_payload.is_none());
    assert_eq!(view.decision.unwrap().reasons.len(), 1);

    // Both approve the same edit: approved with that edit.
    let id = fresh_dual_request(&db, 0).await;
    let proposed = payload_of(&db, &id).await;
    let edit = with_field(&proposed, editable_field(&proposed), "Agreed wording");
    dana.decide(
        &id,
        1,
        &[("verdict", "approve_with_edit"), ("payload", &edit)],
    )
    .await;
    ravi.decide(
        &id,
        1,
        &[("verdict", "approve_with_edit"), ("payload", &edit)],
    )
    .await;
    assert_eq!(status_of(&db, &id).await, "approved_with_edit");
    assert_eq!(
        agent_view(&db, &id).await.approved_payload.unwrap(),
        serde_json::from_str::<Value>(&edit).unwrap()
    );
    // Each half's edit is kept with the proposal it changed, as a single reviewer's is.
    let edits: Vec<(String, String, String)> = on_db!(&db, |p| sqlx::query_as(
        "SELECT original, edited, diff FROM payload_edits WHERE request_id = $1"
    )
    .bind(&id)
    .fetch_all(p)
    .await
    .unwrap());
    assert_eq!(edits.len(), 2, "one edit per reviewer");
    for (original, edited, diff) in &edits {
        assert_eq!(serde_json::from_str::<Value>(original).unwrap(), proposed);
        assert_eq!(
            serde_json::from_str::<Value>(edited).unwrap(),
            serde_json::from_str::<Value>(&edit).unwrap()
        );
        assert!(diff.contains(editable_field(&proposed)), "{diff}");
    }

    // A bad edit is refused and changes nothing, not even taking a half.
    let id = fresh_dual_request(&db, 0).await;
    let (_, shown) = dana
        .decide(
            &id,
            1,
            &[("verdict", "approve_with_edit"), ("payload", "{not json")],
        )
        .await;
    assert!(shown.contains("not JSON"), "{shown}");
    assert_eq!(
        common::count(&db, "review_halves WHERE request_id = $1", &[&id]).await,
        0
    );
    server.stop().await;
}
on_both_engines!(merge_rules, merge_rules_hold_at_the_server);

async fn a_send_back_starts_a_new_round_for_the_same_two(engine: Engine) {
    let Some(server) = with_demo(engine, 23, 7, 400).await else {
        return;
    };
    let db = server.db.db.clone();
    let dana = Reviewer::new(&server, "dana@example.com").await;
    let ravi = Reviewer::new(&server, "ravi@example.com").await;
    let sofia = Reviewer::new(&server, "sofia@example.com").await;
    let marcus = Reviewer::new(&server, "marcus@example.com").await;
    let id = fresh_dual_request(&db, 0).await;
    let proposed = payload_of(&db, &id).await;
    let field = editable_field(&proposed);
    let edit = with_field(&proposed, field, "Only Dana's wording");
    dana.decide(
        &id,
        1,
        &[("verdict", "approve_with_edit"), ("payload", &edit)],
    )
    .await;
    ravi.decide(&id, 1, &[("verdict", "approve")]).await;
    // A lone edit is a conflict by default: it would otherwise stand on its author alone.
    assert_eq!(status_of(&db, &id).await, "in_review");
    let combined = with_field(&proposed, field, "Combined wording from the senior");
    let (to, shown) = marcus
        .resolve(
            &id,
            1,
            &[("resolution", "send_back"), ("payload", &combined)],
        )
        .await;
    assert_eq!(to, "/inbox", "{shown}");
    assert_eq!(
        payload_of(&db, &id).await,
        serde_json::from_str::<Value>(&combined).unwrap()
    );
    let version: i64 = on_db!(&db, |p| sqlx::query_scalar(
        "SELECT state_version FROM action_requests WHERE id = $1"
    )
    .bind(&id)
    .fetch_one(p)
    .await
    .unwrap());
    assert_eq!(version, 2);
    // The old round's form is stale; the new round belongs to the same two people.
    let (_, shown) = dana.decide(&id, 1, &[("verdict", "approve")]).await;
    assert!(shown.contains("changed since you opened it"), "{shown}");
    let page = sofia.page(&id).await;
    assert!(
        page.contains("Both halves of this dual review are held by other reviewers."),
        "{page}"
    );
    let (_, shown) = sofia.decide(&id, 2, &[("verdict", "approve")]).await;
    assert!(shown.contains("taken by other reviewers"), "{shown}");
    dana.decide(&id, 2, &[("verdict", "approve")]).await;
    ravi.decide(&id, 2, &[("verdict", "approve")]).await;
    assert_eq!(status_of(&db, &id).await, "approved");
    assert_eq!(
        agent_view(&db, &id).await.approved_payload.unwrap(),
        serde_json::from_str::<Value>(&combined).unwrap()
    );
    server.stop().await;
}
on_both_engines!(
    send_back_round,
    a_send_back_starts_a_new_round_for_the_same_two
);

async fn a_silent_half_escalates_alone(engine: Engine) {
    let Some(server) = with_demo(engine, 24, 7, 400).await else {
        return;
    };
    let db = server.db.db.clone();
    let dana = Reviewer::new(&server, "dana@example.com").await;
    let id = fresh_dual_request(&db, 0).await;
    dana.decide(&id, 1, &[("verdict", "approve")]).await;
    on_db!(&db, |p| sqlx::query(
        "UPDATE action_requests SET deadline_at = $2 WHERE id = $1"
    )
    .bind(&id)
    .bind(countersign::server::now_ms() - 1000)
    .execute(p)
    .await
    .map(|_| ())
    .unwrap());
    countersign::server::jobs::escalate_and_expire(&server.state)
        .await
        .unwrap();
    assert_eq!(status_of(&db, &id).await, "escalated");
    let detail = scalar_text(
        &db,
        "SELECT detail FROM audit_events WHERE request_id = $1 AND event_type = 'escalated'",
        &id,
    )
    .await;
    assert!(detail.contains("waiting for: half B"), "{detail}");
    // Dana's half stands: one more review completes the request.
    assert_eq!(
        common::count(
            &db,
            "review_halves WHERE request_id = $1 AND verdict IS NOT NULL",
            &[&id]
        )
        .await,
        1
    );
    let ravi = Reviewer::new(&server, "ravi@example.com").await;
    ravi.decide(&id, 1, &[("verdict", "approve")]).await;
    assert_eq!(status_of(&db, &id).await, "approved");
    server.stop().await;
}
on_both_engines!(silent_half, a_silent_half_escalates_alone);

async fn the_reminder_skips_the_reviewer_whose_half_is_in(engine: Engine) {
    let Some(server) = with_demo(engine, 25, 7, 400).await else {
        return;
    };
    let db = server.db.db.clone();
    let dana = Reviewer::new(&server, "dana@example.com").await;
    let id = fresh_dual_request(&db, 0).await;
    dana.decide(&id, 1, &[("verdict", "approve")]).await;
    // Within the demo gates' reminder time (an hour before the deadline).
    on_db!(&db, |p| sqlx::query(
        "UPDATE action_requests SET deadline_at = $2, reminded_at = NULL WHERE id = $1"
    )
    .bind(&id)
    .bind(countersign::server::now_ms() + 30 * 60_000)
    .execute(p)
    .await
    .map(|_| ())
    .unwrap());
    countersign::server::jobs::remind_due(&server.state)
        .await
        .unwrap();
    let told: Vec<String> = on_db!(&db, |p| sqlx::query_scalar(
        "SELECT user_id FROM notifications WHERE kind = 'reminder' AND request_id = $1"
    )
    .bind(&id)
    .fetch_all(p)
    .await
    .unwrap());
    assert!(told.iter().any(|u| u == "usr_ravi"), "{told:?}");
    assert!(!told.iter().any(|u| u == "usr_dana"), "{told:?}");
    server.stop().await;
}
on_both_engines!(reminder, the_reminder_skips_the_reviewer_whose_half_is_in);
