//! The real server on a random port with a fresh database, on SQLite and PostgreSQL.

mod common;

use common::{fresh_db, load_demo, with_demo, Engine, TestServer};
use countersign::server::now_ms;

async fn inbox_lists_open_requests_from_the_database(engine: Engine) {
    let Some(t) = fresh_db(engine).await else {
        return;
    };
    let summary = load_demo(&t.db, 5, 7, 80, now_ms()).await;
    let server = TestServer::start(t).await;
    let client = server.signed_in("dana@example.com").await;

    let health = client.get(server.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);

    for path in ["/", "/inbox"] {
        let res = client.get(server.url(path)).send().await.unwrap();
        assert_eq!(res.status(), 200, "{path}");
        let html = res.text().await.unwrap();
        assert!(
            html.contains("<title>Inbox · Countersign</title>"),
            "{path}"
        );
        let shown = html
            .split(" open</p>")
            .next()
            .and_then(|head| head.rsplit('>').next())
            .map(|n| format!("{n} open"))
            .unwrap_or_default();
        assert_eq!(shown, format!("{} open", summary.pending), "{path}");
        let rows = html.matches("<tr data-id=\"req_").count();
        assert_eq!(rows as u64, summary.pending.min(50), "{path}");
        assert!(
            html.contains("<leptos-island"),
            "the page carries its interactive island"
        );
        assert!(
            html.contains("Dana Whitfield"),
            "the user slot names who is signed in"
        );
    }
    server.stop().await;
}
on_both_engines!(
    inbox_lists_open_requests,
    inbox_lists_open_requests_from_the_database
);

async fn bad_filters_get_a_clear_400_and_change_nothing(engine: Engine) {
    let Some(server) = with_demo(engine, 5, 2, 40).await else {
        return;
    };
    let client = server.signed_in("dana@example.com").await;
    let before = client
        .get(server.url("/inbox"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for (query, message) in [
        ("tier=bogus", "tier: unknown tier"),
        ("after=not-a-cursor", "after: not a page position"),
        (
            "after=1.x%27%3BDROP%20TABLE%20action_requests",
            "after: not a page position",
        ),
        ("tier=%FF%FE", "tier: unknown tier"),
    ] {
        let res = client
            .get(server.url(&format!("/inbox?{query}")))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400, "{query}");
        let html = res.text().await.unwrap();
        assert!(html.contains(message), "{query}: {html}");
    }
    let after = client
        .get(server.url("/inbox"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let count = |html: &str| html.matches("<tr data-id=\"req_").count();
    assert_eq!(count(&before), count(&after), "bad input changed nothing");
    server.stop().await;
}
on_both_engines!(
    bad_filters_are_refused,
    bad_filters_get_a_clear_400_and_change_nothing
);

async fn unknown_pages_are_404_with_a_way_back(engine: Engine) {
    let Some(server) = with_demo(engine, 5, 1, 10).await else {
        return;
    };
    let client = server.signed_in("dana@example.com").await;
    let res = client
        .get(server.url("/no/such/page"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    assert!(res.text().await.unwrap().contains("Go to the inbox"));
    server.stop().await;
}
on_both_engines!(unknown_pages, unknown_pages_are_404_with_a_way_back);

async fn empty_inbox_says_what_to_expect(engine: Engine) {
    let Some(t) = fresh_db(engine).await else {
        return;
    };
    load_demo(&t.db, 5, 1, 10, now_ms()).await;
    countersign::on_db!(&t.db, |p| {
        sqlx::query(
        "UPDATE action_requests SET status = 'rejected' WHERE status IN ('pending', 'in_review', 'escalated')"
    )
    .execute(p)
    .await
    .map(|_| ())
        .unwrap()
    });
    let server = TestServer::start(t).await;
    let client = server.signed_in("dana@example.com").await;
    let html = client
        .get(server.url("/inbox"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("Nothing waiting for you"));
    server.stop().await;
}
on_both_engines!(empty_inbox, empty_inbox_says_what_to_expect);

async fn the_inbox_filters_by_gate_agent_and_action_type(engine: Engine) {
    let Some(server) = with_demo(engine, 5, 7, 80).await else {
        return;
    };
    let client = server.signed_in("dana@example.com").await;
    let get = |path: String| {
        let (client, url) = (client.clone(), server.url(&path));
        async move {
            let res = client.get(url).send().await.unwrap();
            (res.status().as_u16(), res.text().await.unwrap())
        }
    };
    let (status, html) = get("/inbox?gate=vendor-payments".into()).await;
    assert_eq!(status, 200);
    let rows = html.matches("<tr data-id=").count();
    assert!(rows > 0, "{html}");
    assert_eq!(
        html.matches("<td class=\"gate\">Vendor payments v1</td>")
            .count(),
        rows,
        "only that gate's rows"
    );
    assert!(
        html.contains(r#"<option value="vendor-payments" selected"#)
            || html.contains(r#"selected="" value="vendor-payments""#),
        "the form shows the filter"
    );

    // Which agents still have open work depends on the demo's clock, so ask the database.
    let (agent, action_type): (String, String) = countersign::on_db!(&server.state.db, |p| {
        sqlx::query_as(
            "SELECT a.name, r.action_type FROM action_requests r JOIN agents a ON a.id = r.agent_id \
             WHERE r.status IN ('pending', 'in_review', 'escalated') ORDER BY r.id LIMIT 1",
        )
        .fetch_one(p)
        .await
        .unwrap()
    });
    let (_, html) = get(format!("/inbox?agent={agent}&action_type={action_type}")).await;
    let rows = html.matches("<tr data-id=").count();
    assert!(rows > 0, "{html}");
    assert_eq!(
        html.matches(&format!("<td class=\"agent\">{agent}</td>"))
            .count(),
        rows
    );

    let other = if action_type == "access.grant" {
        "payment.refund"
    } else {
        "access.grant"
    };
    let (_, html) = get(format!("/inbox?agent={agent}&action_type={other}")).await;
    assert!(html.contains("Nothing waiting for you"), "filters combine");

    for (query, field) in [
        ("gate=Vendor%20Payments", "gate:"),
        ("agent=%3Cscript%3E", "agent:"),
        ("action_type=x%27%20OR%201%3D1", "action_type:"),
    ] {
        let (status, html) = get(format!("/inbox?{query}")).await;
        assert_eq!(status, 400, "{query}");
        assert!(html.contains(field), "{query}: {html}");
    }
    server.stop().await;
}
on_both_engines!(
    inbox_filters,
    the_inbox_filters_by_gate_agent_and_action_type
);

async fn readiness_and_metrics_answer(engine: Engine) {
    let Some(server) = common::with_demo(engine, 12, 2, 30).await else {
        return;
    };
    let http = reqwest::Client::new();
    let ready = http.get(server.url("/readyz")).send().await.unwrap();
    let status = ready.status();
    assert_eq!(
        (status.as_u16(), ready.text().await.unwrap().as_str()),
        (200, "ready")
    );
    let _ = http.get(server.url("/login")).send().await.unwrap();
    let res = http.get(server.url("/metrics")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let text = res.text().await.unwrap();
    for expected in [
        "countersign_http_requests_total{class=\"2xx\"}",
        "countersign_http_request_duration_seconds_bucket{le=\"+Inf\"}",
        "countersign_pending_requests{gate=\"",
        "countersign_webhooks_waiting ",
        "countersign_breakers_open 0",
        "countersign_audit_events ",
        "countersign_http_requests_in_flight 1",
        "countersign_webhooks_oldest_waiting_seconds ",
        "countersign_webhooks_leased ",
        "countersign_webhook_failed_attempts ",
        "countersign_live_subscribers 0",
    ] {
        assert!(text.contains(expected), "{expected} missing from:\n{text}");
    }
    // Every metric line is `name{labels} value` or `name value` with a number.
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let value = line.rsplit(' ').next().unwrap();
        assert!(value.parse::<f64>().is_ok(), "{line}");
    }
    // Once a graceful shutdown begins, load balancers are told to stop sending work.
    server.state.begin_shutdown();
    let closing = http.get(server.url("/readyz")).send().await.unwrap();
    assert_eq!(closing.status(), 503);
    server.stop().await;
}
on_both_engines!(operations_endpoints, readiness_and_metrics_answer);

/// With a metrics token configured, `/metrics` answers only a request bearing it; without the
/// token, or with another, it says 401 and shows nothing.
async fn metrics_can_require_a_bearer_token(engine: Engine) {
    let token = "prometheus-scrapes-with-this";
    let Some(server) = common::with_demo_and(engine, 12, 1, 10, |c| {
        c.metrics_token = Some(countersign::server::config::BearerToken::new(token).unwrap());
    })
    .await
    else {
        return;
    };
    let http = reqwest::Client::new();
    for authorization in [
        None,
        Some("Bearer wrong-token-of-enough-length".to_owned()),
        Some(format!("Basic {token}")),
    ] {
        let mut req = http.get(server.url("/metrics"));
        if let Some(a) = &authorization {
            req = req.header("authorization", a);
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), 401, "{authorization:?}");
        assert!(res.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer"));
        let text = res.text().await.unwrap();
        assert!(!text.contains("countersign_"), "{text}");
    }
    let res = http
        .get(server.url("/metrics"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res
        .text()
        .await
        .unwrap()
        .contains("countersign_audit_events "));
    // Health and readiness stay open for load balancers.
    let ready = http.get(server.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    server.stop().await;
}
on_both_engines!(metrics_token, metrics_can_require_a_bearer_token);
