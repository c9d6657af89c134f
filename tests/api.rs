//! The agent API against the real server, on SQLite and PostgreSQL.

mod common;

use common::{fresh_db, load_demo, Engine, TestServer};
use countersign::accounts::{CurrentUser, Role};
use countersign::api::tokens;
use countersign::on_db;
use countersign::requests::lifecycle::{decide, Verdict};
use countersign::server::now_ms;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::Duration;

struct Api {
    server: TestServer,
    http: reqwest::Client,
    token: String,
    secret: String,
}

impl Api {
    async fn start(engine: Engine) -> Option<Api> {
        Api::start_with(engine, |_| {}).await
    }

    async fn start_with(
        engine: Engine,
        tweak: impl FnOnce(&mut countersign::server::config::Config),
    ) -> Option<Api> {
        let t = fresh_db(engine).await?;
        // The demo brings the gates, the people and some history.
        load_demo(&t.db, 2, 1, 5, now_ms()).await;
        let agent = tokens::create_agent(
            &t.db,
            "refund-bot-2",
            "test agent",
            &countersign::audit::repo::Actor::System,
        )
        .await
        .unwrap();
        let server = TestServer::start_with(t, tweak).await;
        Some(Api {
            server,
            http: reqwest::Client::new(),
            token: agent.token,
            secret: agent.webhook_secret,
        })
    }

    async fn submit(&self, key: &str, body: &Value) -> (u16, Value, reqwest::header::HeaderMap) {
        self.submit_raw(key, body.to_string().into_bytes()).await
    }

    async fn submit_raw(
        &self,
        key: &str,
        body: Vec<u8>,
    ) -> (u16, Value, reqwest::header::HeaderMap) {
        let res = self
            .http
            .post(self.server.url("/api/v1/actions"))
            .bearer_auth(&self.token)
            .header("idempotency-key", key)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        (status, res.json().await.unwrap_or(Value::Null), headers)
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        let res = self
            .http
            .get(self.server.url(path))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        (
            res.status().as_u16(),
            res.json().await.unwrap_or(Value::Null),
        )
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let res = self
            .http
            .post(self.server.url(path))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .unwrap();
        (
            res.status().as_u16(),
            res.json().await.unwrap_or(Value::Null),
        )
    }

    async fn count(&self, table: &str) -> i64 {
        common::count(&self.server.db.db, table, &[]).await
    }
}

fn refund(amount: &str) -> Value {
    json!({
        "action_type": "payment.refund",
        "title": format!("Refund {amount} EUR"),
        "payload": {"order_id": "ORD-1", "amount": amount, "currency": "EUR"},
        "reasoning": "damaged item",
        "confidence": 0.9,
        "amount": {"value": amount, "currency": "EUR"},
        "customer_tier": "smb",
    })
}

fn dana() -> CurrentUser {
    CurrentUser {
        id: "usr_dana".into(),
        email: "dana@example.com".into(),
        display_name: "Dana Whitfield".into(),
        roles: vec![Role::Reviewer],
    }
}

async fn every_tier_answers_as_documented(engine: Engine) {
    let Some(api) = Api::start(engine).await else {
        return;
    };
    let (s, v, _) = api.submit("k-auto", &refund("5.00")).await;
    assert_eq!(
        (s, v["tier"].as_str(), v["status"].as_str()),
        (201, Some("auto"), Some("approved")),
        "{v}"
    );
    assert!(v["approval_token"].as_str().unwrap().starts_with("cst_"));
    assert_eq!(v["approved_payload"]["amount"], "5.00");

    let (_, v, _) = api.submit("k-log", &refund("500.00")).await;
    assert_eq!(
        (v["tier"].as_str(), v["status"].as_str()),
        (Some("log"), Some("approved")),
        "{v}"
    );

    let (_, v, _) = api.submit("k-review", &refund("4200.00")).await;
    assert_eq!(
        (v["tier"].as_str(), v["status"].as_str()),
        (Some("review"), Some("pending")),
        "{v}"
    );
    assert!(v["approval_token"].is_null());
    assert_eq!(
        v["status_url"],
        format!("/api/v1/actions/{}", v["id"].as_str().unwrap())
    );
    assert_eq!(v["gate"]["key"], "refunds");
    assert!(
        v["explanation"]
            .as_str()
            .unwrap()
            .contains("amount 4,200.00 EUR > 1,000.00 EUR threshold"),
        "{v}"
    );

    let mut big = refund("6000.00");
    big["customer_tier"] = json!("enterprise");
    let (_, v, _) = api.submit("k-dual", &big).await;
    assert_eq!(v["tier"], "dual", "{v}");

    let blast = json!({"action_type": "email.bulk_send", "payload": {"segment": "everyone"}, "recipient_count": 250000});
    let (_, v, _) = api.submit("k-block", &blast).await;
    assert_eq!(
        (v["tier"].as_str(), v["status"].as_str()),
        (Some("block"), Some("rejected")),
        "{v}"
    );
    assert_eq!(v["matched_rules"], json!(["large-segment", "whole-base"]));
    assert!(
        v["explanation"]
            .as_str()
            .unwrap()
            .contains("rule whole-base"),
        "{v}"
    );

    let unknown = json!({"action_type": "warehouse.reorder", "payload": {"sku": "X"}});
    let (_, v, _) = api.submit("k-unknown", &unknown).await;
    assert_eq!(
        (v["tier"].as_str(), v["gate"].is_null()),
        (Some("review"), true),
        "fail closed: {v}"
    );
    api.server.stop().await;
}
on_both_engines!(tiers, every_tier_answers_as_documented);

async fn idempotency_keys_follow_stripe_semantics(engine: Engine) {
    let Some(api) = Api::start(engine).await else {
        return;
    };
    let body = refund("4200.00");
    let (s1, first, h1) = api.submit("same-key", &body).await;
    assert_eq!(s1, 201);
    assert!(h1.get("idempotent-replayed").is_none());
    // Same key, same body (keys in another order): the stored response, marked as a replay.
    let reordered = r#"{"customer_tier":"smb","amount":{"currency":"EUR","value":"4200.00"},"confidence":0.9,"reasoning":"damaged item","payload":{"currency":"EUR","amount":"4200.00","order_id":"ORD-1"},"title":"Refund 4200.00 EUR","action_type":"payment.refund"}"#.to_string();
    let (s2, second, h2) = api.submit_raw("same-key", reordered.into_bytes()).await;
    assert_eq!((s2, &second), (201, &first));
    assert_eq!(h2["idempotent-replayed"], "true");
    assert_eq!(
        api.count("action_requests WHERE idempotency_key = 'same-key'")
            .await,
        1
    );

    // Same key, different body.
    let (s3, problem, _) = api.submit("same-key", &refund("4300.00")).await;
    assert_eq!(s3, 422);
    assert_eq!(problem["field"], "Idempotency-Key");

    // A decision later does not change what the key returns: the original response, forever.
    let id = first["id"].as_str().unwrap();
    decide(&api.server.state, &dana(), id, 1, Verdict::Approve)
        .await
        .unwrap();
    let (_, after_decision, _) = api.submit("same-key", &body).await;
    assert_eq!(after_decision, first);

    // A concurrent duplicate while the first is in flight: 409.
    let agent_id: String = on_db!(&api.server.db.db, |p| sqlx::query_scalar(
        "SELECT id FROM agents WHERE name = 'refund-bot-2'"
    )
    .fetch_one(p)
    .await
    .unwrap());
    on_db!(&api.server.db.db, |p| {
        sqlx::query(
        "INSERT INTO idempotency_keys (agent_id, idempotency_key, body_sha256, claimed_at) VALUES ($1, 'busy', 'x', $2)"
    )
    .bind(&agent_id)
    .bind(now_ms())
    .execute(p)
    .await
    .map(|_| ())
    .unwrap()
    });
    let busy_body = refund("1.00");
    // A key claimed for another body is a mismatch even while that request is in flight.
    let (s4, p4, _) = api.submit("busy", &busy_body).await;
    assert_eq!(s4, 422, "{p4}");
    on_db!(&api.server.db.db, |p| sqlx::query(
        "DELETE FROM idempotency_keys WHERE idempotency_key = 'busy'"
    )
    .execute(p)
    .await
    .map(|_| ())
    .unwrap());
    let (first_busy, _, _) = api.submit("busy-2", &busy_body).await;
    assert_eq!(first_busy, 201);
    on_db!(&api.server.db.db, |p| {
        sqlx::query(
        "UPDATE idempotency_keys SET response_status = NULL, response_body = NULL, claimed_at = $1 WHERE idempotency_key = 'busy-2'"
    )
    .bind(now_ms())
    .execute(p)
    .await
    .map(|_| ())
    .unwrap()
    });
    let (s5, p5, _) = api.submit("busy-2", &busy_body).await;
    assert_eq!(s5, 409, "{p5}");
    assert_eq!(
        p5["type"],
        "urn:countersign:problem:idempotency-key-in-flight"
    );

    // The stored response survives a restart of the server.
    let db = api.server.db;
    let restarted = TestServer::start(db).await;
    let res = reqwest::Client::new()
        .post(restarted.url("/api/v1/actions"))
        .bearer_auth(&api.token)
        .header("idempotency-key", "same-key")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.json::<Value>().await.unwrap(), first);
    restarted.stop().await;
}
on_both_engines!(idempotency, idempotency_keys_follow_stripe_semantics);

async fn a_long_poll_returns_as_soon_as_the_decision_lands(engine: Engine) {
    let Some(api) = Api::start(engine).await else {
        return;
    };
    let (_, v, _) = api.submit("poll", &refund("4200.00")).await;
    let id = v["id"].as_str().unwrap().to_owned();
    let (s, still) = api.get(&format!("/api/v1/actions/{id}?wait=100ms")).await;
    assert_eq!((s, still["status"].as_str()), (200, Some("pending")));

    let started = std::time::Instant::now();
    let poll = {
        let (http, url, token) = (
            api.http.clone(),
            api.server.url(&format!("/api/v1/actions/{id}?wait=30s")),
            api.token.clone(),
        );
        tokio::spawn(async move {
            http.get(url)
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    decide(
        &api.server.state,
        &dana(),
        &id,
        1,
        Verdict::ApproveWithEdit(
            json!({"order_id": "ORD-1", "amount": "4000.00", "currency": "EUR"}),
        ),
    )
    .await
    .unwrap();
    let answer = poll.await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "woke on the decision, not the timeout"
    );
    assert_eq!(answer["status"], "approved_with_edit");
    assert_eq!(
        answer["approved_payload"]["amount"], "4000.00",
        "the agent receives the edited payload"
    );
    assert_eq!(
        answer["decision"]["decided_by"][0]["name"],
        "Dana Whitfield"
    );
    assert!(answer["approval_token"].as_str().is_some());

    let (s, _) = api.get("/api/v1/actions/req_doesnotexist").await;
    assert_eq!(s, 404);
    let (s, p) = api.get(&format!("/api/v1/actions/{id}?wait=5h")).await;
    assert_eq!((s, p["field"].as_str()), (400, Some("wait")));
    api.server.stop().await;
}
on_both_engines!(long_poll, a_long_poll_returns_as_soon_as_the_decision_lands);

#[derive(Clone, Default)]
struct Receiver {
    seen: Arc<Mutex<Vec<(axum::http::HeaderMap, String)>>>,
    fail_first: Arc<Mutex<usize>>,
}

async fn start_receiver(fail_first: usize) -> (String, Receiver) {
    use axum::routing::post;
    let r = Receiver {
        seen: Default::default(),
        fail_first: Arc::new(Mutex::new(fail_first)),
    };
    let state = r.clone();
    let app = axum::Router::new().route(
        "/hook",
        post(move |headers: axum::http::HeaderMap, body: String| {
            let state = state.clone();
            async move {
                state.seen.lock().unwrap().push((headers, body));
                let mut left = state.fail_first.lock().unwrap();
                if *left > 0 {
                    *left -= 1;
                    axum::http::StatusCode::SERVICE_UNAVAILABLE
                } else {
                    axum::http::StatusCode::NO_CONTENT
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, r)
}

/// Verifies a Standard Webhooks signature independently of the server's code.
fn verify_signature(secret: &str, headers: &axum::http::HeaderMap, body: &str) -> bool {
    use base64::Engine as _;
    use hmac::{Hmac, Mac};
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret.trim_start_matches("whsec_"))
        .unwrap();
    let signed = format!(
        "{}.{}.{}",
        headers["webhook-id"].to_str().unwrap(),
        headers["webhook-timestamp"].to_str().unwrap(),
        body
    );
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    mac.update(signed.as_bytes());
    let expected = format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    );
    headers["webhook-signature"]
        .to_str()
        .unwrap()
        .split(' ')
        .any(|s| s == expected)
}

async fn webhooks_are_signed_and_retried_until_delivered(engine: Engine) {
    let Some(api) = Api::start_with(engine, |c| {
        c.webhook_schedule = [0, 200, 200, 200]
            .into_iter()
            .map(Duration::from_millis)
            .collect();
        c.job_interval = Duration::from_millis(50);
    })
    .await
    else {
        return;
    };
    let (url, receiver) = start_receiver(2).await;
    let mut body = refund("4200.00");
    body["callback_url"] = json!(url);
    let (_, v, _) = api.submit("hook", &body).await;
    let id = v["id"].as_str().unwrap().to_owned();
    decide(
        &api.server.state,
        &dana(),
        &id,
        1,
        Verdict::Reject {
            reason_code: Some("policy-violation".into()),
            reason: "Outside the refund policy".into(),
        },
    )
    .await
    .unwrap();
    for _ in 0..100 {
        if api
            .count("webhook_outbox WHERE delivered_at IS NOT NULL")
            .await
            == 1
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let seen = receiver.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 3, "two failures, then success");
    let ids: Vec<_> = seen.iter().map(|(h, _)| h["webhook-id"].clone()).collect();
    assert!(
        ids.iter().all(|i| *i == ids[0]),
        "retries keep the message id"
    );
    assert!(
        seen.iter().all(|(_, b)| *b == seen[0].1),
        "retries keep the body"
    );
    for (headers, body) in &seen {
        assert!(
            verify_signature(&api.secret, headers, body),
            "signature verifies"
        );
        assert!(!verify_signature(
            "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            headers,
            body
        ));
    }
    let event: Value = serde_json::from_str(&seen[0].1).unwrap();
    assert_eq!(event["type"], "action.rejected");
    assert_eq!(event["data"]["id"], id.as_str());
    assert_eq!(
        event["data"]["decision"]["reason"],
        "Outside the refund policy"
    );
    assert_eq!(event["data"]["decision"]["reason_code"], "policy-violation");
    assert_eq!(api.count("webhook_attempts").await, 3);
    assert_eq!(
        api.count("audit_events WHERE event_type = 'webhook_delivered'")
            .await,
        1
    );

    // The delivery log is on the admin page, and an admin can send the message again.
    let alex = api.server.signed_in("alex@example.com").await;
    let page = alex
        .get(api.server.url("/admin"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let message_id = ids[0].to_str().unwrap().to_owned();
    assert!(
        page.contains(&message_id) && page.contains("delivered"),
        "{page}"
    );
    let res = alex
        .post(
            api.server
                .url(&format!("/admin/webhooks/{message_id}/redeliver")),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    for _ in 0..100 {
        if receiver.seen.lock().unwrap().len() == 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let seen = receiver.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 4, "redelivered");
    assert_eq!(seen[3].0["webhook-id"], message_id.as_str());
    assert_eq!(seen[3].1, seen[0].1, "same body");
    let dana = api.server.signed_in("dana@example.com").await;
    let refused = dana
        .post(
            api.server
                .url(&format!("/admin/webhooks/{message_id}/redeliver")),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    api.server.stop().await;
}
on_both_engines!(webhooks, webhooks_are_signed_and_retried_until_delivered);

async fn approval_tokens_are_bound_to_the_payload_and_single_use(engine: Engine) {
    let Some(api) = Api::start(engine).await else {
        return;
    };
    let (_, pending, _) = api.submit("exec-pending", &refund("4200.00")).await;
    let pid = pending["id"].as_str().unwrap();
    let (s, p) = api
        .post(
            &format!("/api/v1/actions/{pid}/execution"),
            json!({"approval_token": "cst_x", "payload": {}, "outcome": "succeeded"}),
        )
        .await;
    assert_eq!(
        (s, p["type"].as_str()),
        (403, Some("urn:countersign:problem:no-approval")),
        "nothing executes without a decision"
    );

    let (_, v, _) = api.submit("exec", &refund("5.00")).await;
    let id = v["id"].as_str().unwrap();
    let token = v["approval_token"].as_str().unwrap();
    let path = format!("/api/v1/actions/{id}/execution");
    let approved = v["approved_payload"].clone();
    let mut tampered = approved.clone();
    tampered["amount"] = json!("50.00");

    let (s, p) = api
        .post(
            &path,
            json!({"approval_token": token, "payload": tampered, "outcome": "succeeded"}),
        )
        .await;
    assert_eq!((s, p["field"].as_str()), (403, Some("payload")), "{p}");
    let (s, p) = api
        .post(
            &path,
            json!({"approval_token": "cst_forged", "payload": approved, "outcome": "succeeded"}),
        )
        .await;
    assert_eq!(
        (s, p["field"].as_str()),
        (403, Some("approval_token")),
        "{p}"
    );
    let (s, _) = api
        .post(&path, json!({"payload": approved, "outcome": "succeeded"}))
        .await;
    assert_eq!(s, 400, "a missing token is refused");
    assert_eq!(
        api.count("audit_events WHERE event_type = 'execution_refused'")
            .await,
        3
    );

    let (s, v) = api.post(&path, json!({"approval_token": token, "payload": approved, "outcome": "succeeded", "detail": "refund id re_123"})).await;
    assert_eq!((s, v["status"].as_str()), (200, Some("executed")), "{v}");
    assert!(
        v["approval_token"].is_null(),
        "a used token is not handed out again"
    );
    let (s, p) = api
        .post(
            &path,
            json!({"approval_token": token, "payload": approved, "outcome": "succeeded"}),
        )
        .await;
    assert_eq!(
        (s, p["type"].as_str()),
        (403, Some("urn:countersign:problem:token-used"))
    );
    api.server.stop().await;
}
on_both_engines!(
    approval_tokens,
    approval_tokens_are_bound_to_the_payload_and_single_use
);

async fn an_agent_can_withdraw_a_pending_request(engine: Engine) {
    let Some(api) = Api::start(engine).await else {
        return;
    };
    let (_, v, _) = api.submit("withdraw", &refund("4200.00")).await;
    let id = v["id"].as_str().unwrap();
    let (s, v) = api
        .post(&format!("/api/v1/actions/{id}/withdraw"), json!({}))
        .await;
    assert_eq!((s, v["status"].as_str()), (200, Some("withdrawn")));
    let (s, p) = api
        .post(&format!("/api/v1/actions/{id}/withdraw"), json!({}))
        .await;
    assert_eq!(
        (s, p["type"].as_str()),
        (409, Some("urn:countersign:problem:not-open"))
    );
    let late = decide(&api.server.state, &dana(), id, 1, Verdict::Approve).await;
    assert!(
        matches!(late, Err(countersign::error::AppError::Conflict(_))),
        "reviewers cannot decide a withdrawn request"
    );
    api.server.stop().await;
}
on_both_engines!(withdrawal, an_agent_can_withdraw_a_pending_request);

/// An agent revising or withdrawing at the moment a reviewer decides: exactly one of the two
/// goes through (invariant 4), never both.
async fn a_revision_or_withdrawal_racing_a_decision_never_both_succeed(engine: Engine) {
    let Some(api) = Api::start(engine).await else {
        return;
    };
    let reviewer = dana();
    for n in 0..8 {
        let (_, v, _) = api.submit(&format!("race-{n}"), &refund("4200.00")).await;
        let id = v["id"].as_str().unwrap().to_owned();
        let withdrawing = n % 2 == 1;
        let agent_move = async {
            if withdrawing {
                api.post(&format!("/api/v1/actions/{id}/withdraw"), json!({}))
                    .await
            } else {
                let payload = json!({"order_id": "ORD-1", "amount": "4100.00", "currency": "EUR"});
                api.post(
                    &format!("/api/v1/actions/{id}/revise"),
                    json!({"payload": payload}),
                )
                .await
            }
        };
        let ((agent_status, _), decided) = tokio::join!(
            agent_move,
            decide(&api.server.state, &reviewer, &id, 1, Verdict::Approve)
        );
        let (_, now) = api.get(&format!("/api/v1/actions/{id}")).await;
        match (agent_status, &decided) {
            (200, Err(countersign::error::AppError::Conflict(_))) => {
                let expected = if withdrawing { "withdrawn" } else { "pending" };
                assert_eq!(now["status"], expected, "{id}: {now}");
            }
            (409, Ok(_)) => assert_eq!(now["status"], "approved", "{id}: {now}"),
            other => panic!(
                "{id}: agent {} and decision {:?} both went through or both failed",
                other.0, other.1
            ),
        }
        let decisions =
            common::count(&api.server.db.db, "decisions WHERE request_id = $1", &[&id]).await;
        assert!(decisions <= 1, "{id}: {decisions} decisions");
    }
    api.server.stop().await;
}
on_both_engines!(
    revision_races,
    a_revision_or_withdrawal_racing_a_decision_never_both_succeed
);

/// Runs `submissions` while another transaction holds the audit trail (and on SQLite the single
/// writer) for half a second, so they all wait: on SQLite they queue and are written as one
/// group; on PostgreSQL their transactions all wait for the chain's lock.
async fn while_the_trail_is_held<T>(
    api: &Api,
    submissions: impl std::future::Future<Output = T>,
) -> T {
    let mut hold = api.server.db.db.begin_write().await.unwrap();
    countersign::audit::repo::lock_chain(&mut hold)
        .await
        .unwrap();
    let release = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        hold.commit().await.unwrap();
    };
    tokio::join!(submissions, release).0
}

/// How many rows of `table` belong to request `id`.
async fn rows_of(db: &countersign::server::Db, table: &str, id: &str) -> i64 {
    common::count(db, &format!("{table} WHERE request_id = $1"), &[id]).await
}

/// (user, channel) of every notification queued about request `id`, in order.
async fn recipients(
    db: &countersign::server::Db,
    id: &str,
) -> Vec<(Option<String>, Option<String>)> {
    on_db!(db, |p| sqlx::query_as(
        "SELECT user_id, channel_id FROM notifications WHERE request_id = $1 \
         ORDER BY user_id, channel_id"
    )
    .bind(id)
    .fetch_all(p)
    .await
    .unwrap())
}

/// Submissions arriving together (on SQLite, in one group commit): each still gets its own
/// answer, a key used twice stores one request, and a write that fails fails alone.
async fn concurrent_submissions_share_commits_and_keep_their_answers(engine: Engine) {
    let Some(api) = Api::start(engine).await else {
        return;
    };
    // Every key twice with one body, and the first four keys once more with another body.
    let mut sent = Vec::new();
    for n in 0..16 {
        sent.push((format!("group-{n}"), refund("42.00")));
        sent.push((format!("group-{n}"), refund("42.00")));
        if n < 4 {
            sent.push((format!("group-{n}"), refund("43.00")));
        }
    }
    let answers = while_the_trail_is_held(
        &api,
        futures::future::join_all(sent.iter().map(|(k, b)| api.submit(k, b))),
    )
    .await;
    for n in 0..16 {
        let key = format!("group-{n}");
        let stored: Vec<(String, String)> = on_db!(&api.server.db.db, |p| sqlx::query_as(
            "SELECT id, title FROM action_requests WHERE idempotency_key = $1"
        )
        .bind(&key)
        .fetch_all(p)
        .await
        .unwrap());
        assert_eq!(stored.len(), 1, "{key}: {stored:?}");
        let (id, title) = &stored[0];
        for ((k, body), (status, answer, _)) in sent.iter().zip(&answers) {
            if *k != key {
                continue;
            }
            if body["title"] == title.as_str() {
                assert_eq!(
                    (*status, answer["id"].as_str()),
                    (201, Some(id.as_str())),
                    "{key}"
                );
            } else {
                assert_eq!(*status, 422, "{key}: {answer}");
            }
        }
    }
    let gated = common::count(
        &api.server.db.db,
        "audit_events e JOIN action_requests r ON r.id = e.request_id \
         WHERE e.event_type = 'request_gated' AND r.idempotency_key LIKE 'group-%'",
        &[],
    )
    .await;
    assert_eq!(
        gated,
        api.count("action_requests WHERE idempotency_key LIKE 'group-%'")
            .await
    );

    // A write that fails (a trigger refuses one title) inside a group of good ones: the others
    // are stored and answered, the failed one leaves nothing behind, and the chain still holds.
    let poison = match engine {
        Engine::Sqlite => vec![
            "CREATE TRIGGER poison BEFORE INSERT ON action_requests WHEN NEW.title = 'poison' \
             BEGIN SELECT RAISE(ABORT, 'poisoned'); END",
        ],
        Engine::Postgres => vec![
            "CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
             IF NEW.title = 'poison' THEN RAISE EXCEPTION 'poisoned'; END IF; RETURN NEW; END $$",
            "CREATE TRIGGER poison BEFORE INSERT ON action_requests \
             FOR EACH ROW EXECUTE FUNCTION poison()",
        ],
    };
    for sql in poison {
        on_db!(&api.server.db.db, |p| sqlx::query(sql)
            .execute(p)
            .await
            .map(|_| ())
            .unwrap());
    }
    let mut poisoned = refund("42.00");
    poisoned["title"] = json!("poison");
    let mut batch: Vec<(String, Value)> = (0..12)
        .map(|n| (format!("good-{n}"), refund("42.00")))
        .collect();
    batch.insert(6, ("bad".into(), poisoned));
    let answers = while_the_trail_is_held(
        &api,
        futures::future::join_all(batch.iter().map(|(k, b)| api.submit(k, b))),
    )
    .await;
    for ((key, _), (status, answer, _)) in batch.iter().zip(&answers) {
        let expected = if key == "bad" { 500 } else { 201 };
        assert_eq!(*status, expected, "{key}: {answer}");
    }
    assert_eq!(
        api.count("action_requests WHERE idempotency_key LIKE 'good-%'")
            .await,
        12
    );
    assert_eq!(
        api.count("idempotency_keys WHERE idempotency_key = 'bad'")
            .await,
        0
    );
    let verified = countersign::audit::verify::verify_trail(
        &api.server.db.db,
        &api.server.state.audit_key.public_hex(),
    )
    .await;
    assert!(verified.is_ok(), "{verified:?}");

    // A mixed group (auto, log and review; some with a callback; one review made for Dana)
    // stores for each member exactly what it stores when it is written alone.
    let with = |amount: &str, callback: bool, acting_for: Option<&str>| {
        let mut body = refund(amount);
        if callback {
            body["callback_url"] = json!("https://agent.example/hook");
        }
        if let Some(who) = acting_for {
            body["acting_for"] = json!(who);
        }
        body
    };
    let (status, alone, _) = api
        .submit("alone-review", &with("1500.00", false, None))
        .await;
    assert_eq!((status, alone["status"].as_str()), (201, Some("pending")));
    let mixed: Vec<(String, Value)> = [
        ("42.00", true, None),
        ("240.00", false, None),
        ("1500.00", true, None),
        ("42.00", false, None),
        ("1500.00", false, Some("dana@example.com")),
        ("240.00", true, None),
        ("1500.00", false, None),
    ]
    .into_iter()
    .enumerate()
    .map(|(n, (amount, callback, acting_for))| {
        (format!("mixed-{n}"), with(amount, callback, acting_for))
    })
    .collect();
    let answers = while_the_trail_is_held(
        &api,
        futures::future::join_all(mixed.iter().map(|(k, b)| api.submit(k, b))),
    )
    .await;
    let db = &api.server.db.db;
    let told_alone = recipients(db, alone["id"].as_str().unwrap()).await;
    assert!(
        told_alone
            .iter()
            .any(|(u, _)| u.as_deref() == Some("usr_dana")),
        "{told_alone:?}"
    );
    let mut tiers: Vec<&str> = answers
        .iter()
        .filter_map(|(_, a, _)| a["tier"].as_str())
        .collect();
    tiers.sort_unstable();
    tiers.dedup();
    assert_eq!(tiers, ["auto", "log", "review"]);
    for ((key, body), (status, answer, _)) in mixed.iter().zip(&answers) {
        assert_eq!(*status, 201, "{key}: {answer}");
        let id = answer["id"].as_str().unwrap().to_owned();
        let state = answer["status"].as_str().unwrap();
        assert_eq!(rows_of(db, "request_states", &id).await, 1, "{key}");
        assert_eq!(
            rows_of(db, "approval_tokens", &id).await,
            i64::from(state == "approved"),
            "{key}"
        );
        // Every `log` request is queued for after-the-fact review, and an `auto` one when the
        // gate's sample picks its id (a fixed share of ids, so either may happen here).
        let queued = common::count(
            db,
            "after_fact_reviews WHERE request_id = $1 AND reason = $2",
            &[
                &id,
                if answer["tier"] == "log" {
                    "log"
                } else {
                    "sampled_auto"
                },
            ],
        )
        .await;
        let expected = match answer["tier"].as_str() {
            Some("log") => 1..=1,
            Some("auto") => 0..=1,
            _ => 0..=0,
        };
        assert!(expected.contains(&queued), "{key}: {queued}");
        assert_eq!(
            rows_of(db, "after_fact_reviews", &id).await,
            queued,
            "{key}: queued for no other reason"
        );
        assert_eq!(
            rows_of(db, "webhook_outbox", &id).await,
            i64::from(state != "pending" && body.get("callback_url").is_some()),
            "{key}"
        );
        let told = recipients(db, &id).await;
        if state == "pending" {
            let expected: Vec<_> = told_alone
                .iter()
                .filter(|(u, _)| {
                    body.get("acting_for").is_none() || u.as_deref() != Some("usr_dana")
                })
                .cloned()
                .collect();
            assert_eq!(told, expected, "{key}");
        } else {
            assert!(told.is_empty(), "{key}: {told:?}");
        }
    }
    let verified = countersign::audit::verify::verify_trail(
        &api.server.db.db,
        &api.server.state.audit_key.public_hex(),
    )
    .await;
    assert!(verified.is_ok(), "{verified:?}");
    api.server.stop().await;
}
on_both_engines!(
    group_commit,
    concurrent_submissions_share_commits_and_keep_their_answers
);

/// By default callbacks reach public addresses only (against server-side request forgery):
/// a URL naming a private host is refused at submission and stores nothing; a URL stored while
/// private callbacks were allowed, or a host name that resolves only to private addresses, is
/// refused when it would be called, and the delivery log says why.
async fn callbacks_must_be_public(engine: Engine) {
    let Some(api) = Api::start_with(engine, |c| {
        c.allow_private_callbacks = false;
        c.webhook_schedule = vec![Duration::ZERO];
        c.job_interval = Duration::from_millis(50);
    })
    .await
    else {
        return;
    };
    let (receiver_url, receiver) = start_receiver(0).await;
    let requests_before = api.count("action_requests").await;
    let keys_before = api.count("idempotency_keys").await;
    for (i, url) in [
        receiver_url.as_str(),
        "http://localhost:9/hook",
        "http://[::1]/hook",
        "http://10.0.0.7/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://2130706433/hook",
    ]
    .into_iter()
    .enumerate()
    {
        let mut body = refund("4200.00");
        body["callback_url"] = json!(url);
        let (status, problem, _) = api.submit(&format!("private-{i}"), &body).await;
        assert_eq!(status, 400, "{url}: {problem}");
        assert_eq!(problem["field"], "callback_url", "{url}: {problem}");
        assert!(
            problem["detail"]
                .as_str()
                .unwrap()
                .contains("public address"),
            "{url}: {problem}"
        );
    }
    assert_eq!(api.count("action_requests").await, requests_before);
    assert_eq!(api.count("idempotency_keys").await, keys_before);

    // Delivery refuses what submission would refuse now: a loopback URL stored earlier.
    let (status, v, _) = api.submit("stored-earlier", &refund("4200.00")).await;
    assert_eq!(status, 201, "{v}");
    let id = v["id"].as_str().unwrap().to_owned();
    on_db!(&api.server.db.db, |p| sqlx::query(
        "UPDATE action_requests SET callback_url = $1 WHERE id = $2"
    )
    .bind(&receiver_url)
    .bind(&id)
    .execute(p)
    .await
    .map(|_| ())
    .unwrap());
    let reject = || Verdict::Reject {
        reason_code: None,
        reason: "no".into(),
    };
    decide(&api.server.state, &dana(), &id, 1, reject())
        .await
        .unwrap();
    let gave_up = "audit_events WHERE event_type = 'webhook_gave_up'";
    for _ in 0..100 {
        if api.count(gave_up).await == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(api.count(gave_up).await, 1);
    let refused = "webhook_attempts WHERE error LIKE '%must reach a public address%'";
    assert_eq!(api.count(refused).await, 1);
    assert!(receiver.seen.lock().unwrap().is_empty(), "nothing was sent");

    // A host name is judged by what it resolves to, when it is called: any name /etc/hosts maps
    // to a private address (here the machine's own name) will do.
    let private_name = std::fs::read_to_string("/etc/hosts")
        .unwrap_or_default()
        .lines()
        .filter_map(|line| {
            let mut fields = line.split('#').next()?.split_whitespace();
            let ip: std::net::IpAddr = fields.next()?.parse().ok()?;
            let names: Vec<String> = fields.map(str::to_ascii_lowercase).collect();
            (!countersign::server::outbound::is_public(ip)).then_some(names)
        })
        .flatten()
        .find(|name| name != "localhost" && !name.ends_with(".localhost"));
    match private_name {
        Some(name) => {
            let mut body = refund("4200.00");
            body["callback_url"] = json!(format!("http://{name}:9/hook"));
            let (status, v, _) = api.submit("resolves-private", &body).await;
            assert_eq!(status, 201, "a host name is accepted: {v}");
            let id = v["id"].as_str().unwrap().to_owned();
            decide(&api.server.state, &dana(), &id, 1, reject())
                .await
                .unwrap();
            for _ in 0..100 {
                if api.count(gave_up).await == 2 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let no_public = "webhook_attempts WHERE error LIKE '%resolves to no public address%'";
            assert_eq!(api.count(no_public).await, 1, "{name}");
        }
        None => eprintln!("skipping the resolver check: /etc/hosts names no private host"),
    }
    api.server.stop().await;
}
on_both_engines!(public_callbacks, callbacks_must_be_public);

async fn bad_input_gets_a_problem_naming_the_field_and_stores_nothing(engine: Engine) {
    let Some(api) = Api::start(engine).await else {
        return;
    };
    let requests_before = api.count("action_requests").await;
    let keys_before = api.count("idempotency_keys").await;
    let cases: Vec<(Vec<u8>, u16, &str)> = vec![
        (b"{not json".to_vec(), 400, "body"),
        (vec![0xff, 0xfe, 0xfd], 400, "body"),
        (br#"{"payload":{}}"#.to_vec(), 400, "action_type"),
        (br#"{"action_type":"payment.refund","payload":{},"confidence":"sure"}"#.to_vec(), 400, "confidence"),
        (br#"{"action_type":"payment.refund","payload":{},"amount":{"value":"-1","currency":"EUR"}}"#.to_vec(), 400, "amount.value"),
        (br#"{"action_type":"payment.refund","payload":{},"amount":{"value":"1","currency":"XYZ"}}"#.to_vec(), 400, "amount.currency"),
        (br#"{"action_type":"payment.refund","payload":{},"amount":{"value":"1e308","currency":"EUR"}}"#.to_vec(), 400, "amount.value"),
        (br#"{"action_type":"payment.refund","payload":{},"record_count":99999999999999999999}"#.to_vec(), 400, "record_count"),
        (br#"{"action_type":"payment.refund","payload":{},"admin":true}"#.to_vec(), 400, "admin"),
        (br#"{"action_type":"payment.refund'; DROP TABLE action_requests;--","payload":{}}"#.to_vec(), 400, "action_type"),
        (format!(r#"{{"action_type":"a.b","payload":"{}"}}"#, "x".repeat(300 * 1024)).into_bytes(), 413, "body"),
    ];
    for (i, (body, status, field)) in cases.into_iter().enumerate() {
        let (s, p, h) = api.submit_raw(&format!("bad-{i}"), body).await;
        assert_eq!(s, status, "case {i}: {p}");
        assert_eq!(p["field"], field, "case {i}: {p}");
        assert_eq!(h["content-type"], "application/problem+json");
        assert!(
            p["detail"].as_str().unwrap().len() > 5 && p["title"].is_string(),
            "case {i}: {p}"
        );
    }
    let (s, p, _) = api.submit("", &refund("1.00")).await;
    assert_eq!((s, p["field"].as_str()), (400, Some("Idempotency-Key")));
    let no_key = api
        .http
        .post(api.server.url("/api/v1/actions"))
        .bearer_auth(&api.token)
        .json(&refund("1.00"))
        .send()
        .await
        .unwrap();
    assert_eq!(no_key.status(), 400);
    let no_auth = api
        .http
        .post(api.server.url("/api/v1/actions"))
        .header("idempotency-key", "x")
        .json(&refund("1.00"))
        .send()
        .await
        .unwrap();
    assert_eq!(no_auth.status(), 401);
    assert_eq!(no_auth.headers()["www-authenticate"], "Bearer");
    assert_eq!(
        api.count("action_requests").await,
        requests_before,
        "nothing stored"
    );
    assert_eq!(
        api.count("idempotency_keys").await,
        keys_before,
        "no key claimed"
    );
    api.server.stop().await;
}
on_both_engines!(
    bad_input,
    bad_input_gets_a_problem_naming_the_field_and_stores_nothing
);

async fn a_revoked_token_stops_working_at_once(engine: Engine) {
    let Some(api) = Api::start(engine).await else {
        return;
    };
    let (s, _, _) = api.submit("before", &refund("1.00")).await;
    assert_eq!(s, 201);
    tokens::revoke_tokens(
        &api.server.db.db,
        "refund-bot-2",
        &countersign::audit::repo::Actor::System,
    )
    .await
    .unwrap();
    let (s, _, _) = api.submit("after", &refund("1.00")).await;
    assert_eq!(s, 401);
    let rotated = tokens::issue_token(
        &api.server.db.db,
        "refund-bot-2",
        true,
        &countersign::audit::repo::Actor::System,
    )
    .await
    .unwrap();
    let res = api
        .http
        .get(api.server.url("/api/v1/actions/x"))
        .bearer_auth(rotated)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404, "the new token authenticates");
    api.server.stop().await;
}
on_both_engines!(token_revocation, a_revoked_token_stops_working_at_once);

async fn the_openapi_document_is_served_and_lists_real_routes(engine: Engine) {
    let Some(api) = Api::start(engine).await else {
        return;
    };
    let served: Value = api
        .http
        .get(api.server.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(served, countersign::api::openapi::document());
    for (method, path) in countersign::api::openapi::OPERATIONS {
        let url = api.server.url(&path.replace("{id}", "req_x"));
        let res = match *method {
            "get" => api.http.get(url),
            _ => api.http.post(url),
        }
        .send()
        .await
        .unwrap();
        assert_eq!(
            res.status(),
            401,
            "{method} {path} exists and asks for a token"
        );
    }
    api.server.stop().await;
}
on_both_engines!(
    openapi,
    the_openapi_document_is_served_and_lists_real_routes
);

async fn an_unanswered_request_escalates_then_expires_and_never_approves(engine: Engine) {
    let Some(api) = Api::start_with(engine, |c| {
        c.escalation_window = Duration::from_millis(400);
        c.job_interval = Duration::from_millis(50);
        c.webhook_schedule = vec![Duration::ZERO];
    })
    .await
    else {
        return;
    };
    let (url, receiver) = start_receiver(0).await;
    let mut body = refund("4200.00");
    body["callback_url"] = json!(url);
    let deadline = time::OffsetDateTime::now_utc() + time::Duration::milliseconds(1500);
    body["deadline"] = json!(deadline
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap());
    let (_, v, _) = api.submit("expire-me", &body).await;
    let id = v["id"].as_str().unwrap().to_owned();
    assert_eq!(v["status"], "pending");

    let mut seen = Vec::new();
    for _ in 0..80 {
        let (_, now) = api.get(&format!("/api/v1/actions/{id}")).await;
        let status = now["status"].as_str().unwrap().to_owned();
        if seen.last() != Some(&status) {
            seen.push(status.clone());
        }
        if status == "expired" {
            assert_eq!(now["decision"]["kind"], "expire");
            assert_eq!(now["decision"]["reason_code"], "expired");
            assert!(
                now["approval_token"].is_null() && now["approved_payload"].is_null(),
                "a timeout never approves"
            );
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        seen,
        vec!["pending", "escalated", "expired"],
        "reminder -> escalation -> rejection"
    );
    assert_eq!(
        api.count(&format!("approval_tokens WHERE request_id = '{id}'"))
            .await,
        0
    );
    for _ in 0..40 {
        if !receiver.seen.lock().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let hooks = receiver.seen.lock().unwrap().clone();
    assert_eq!(hooks.len(), 1, "one webhook, for the terminal transition");
    assert!(hooks[0].1.contains("\"type\":\"action.expired\""));
    // Late decisions are refused.
    let late = decide(&api.server.state, &dana(), &id, 1, Verdict::Approve).await;
    assert!(matches!(
        late,
        Err(countersign::error::AppError::Conflict(_))
    ));
    api.server.stop().await;
}
on_both_engines!(
    expiry,
    an_unanswered_request_escalates_then_expires_and_never_approves
);

async fn the_typed_client_drives_a_whole_round_trip(engine: Engine) {
    use countersign::api::checkpoint::CheckpointBody;
    use countersign::api::client::{Client, ClientError};
    let Some(api) = Api::start(engine).await else {
        return;
    };
    let client = Client::new(&api.server.base, &api.token);
    let checkpoint: CheckpointBody = serde_json::from_value(refund("4200.00")).unwrap();
    let submitted = client.submit("client-1", &checkpoint).await.unwrap();
    assert_eq!(submitted.status, "pending");
    let again = client.submit("client-1", &checkpoint).await.unwrap();
    assert_eq!(again, submitted, "a retry returns the original answer");

    let waiter = {
        let (client, id) = (client.clone(), submitted.id.clone());
        tokio::spawn(async move { client.wait_for_decision(&id, Duration::from_secs(20)).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    decide(
        &api.server.state,
        &dana(),
        &submitted.id,
        1,
        Verdict::Approve,
    )
    .await
    .unwrap();
    let decided = waiter.await.unwrap().unwrap();
    assert_eq!(decided.status, "approved");
    let token = decided.approval_token.clone().unwrap();
    let payload = decided.approved_payload.clone().unwrap();
    let executed = client
        .report_execution(&decided.id, &token, &payload, true, Some("re_1"))
        .await
        .unwrap();
    assert_eq!(executed.status, "executed");
    match client
        .report_execution(&decided.id, &token, &payload, true, None)
        .await
    {
        Err(ClientError::Problem(p)) => assert_eq!(
            (p.status, p.field.as_deref()),
            (403, Some("approval_token"))
        ),
        other => panic!("{other:?}"),
    }
    match Client::new(&api.server.base, "csa_wrong")
        .get(&decided.id, None)
        .await
    {
        Err(ClientError::Problem(p)) => assert_eq!(p.status, 401),
        other => panic!("{other:?}"),
    }
    api.server.stop().await;
}
on_both_engines!(typed_client, the_typed_client_drives_a_whole_round_trip);
