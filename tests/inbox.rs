//! The inbox list over HTTP: saved views, who is on a request, grouping and sorting, and bad
//! input refused without changing anything. SQLite and PostgreSQL alike.

mod common;

use common::{with_demo, Engine};
use countersign::on_db;

async fn saved_view_count(server: &common::TestServer) -> i64 {
    on_db!(&server.state.db, |p| {
        sqlx::query_scalar("SELECT COUNT(*) FROM saved_views")
            .fetch_one(p)
            .await
            .unwrap()
    })
}

async fn saved_views_belong_to_their_owner(engine: Engine) {
    let Some(server) = with_demo(engine, 5, 7, 80).await else {
        return;
    };
    let dana = server.signed_in("dana@example.com").await;
    let ravi = server.signed_in("ravi@example.com").await;
    let save = |client: &reqwest::Client, name: &str, query: &str| {
        let req = client
            .post(server.url("/inbox/views"))
            .form(&[("name", name), ("query", query)]);
        async move {
            let res = req.send().await.unwrap();
            assert_eq!(res.status(), 303);
            res.headers()["location"].to_str().unwrap().to_owned()
        }
    };

    let to = save(
        &dana,
        "Big refunds, Dana",
        "sort=amount&gate=refunds&min_amount=1000&after=an.1.0.5.req_1.",
    )
    .await;
    assert_eq!(to, "/inbox?gate=refunds&min_amount=1000&sort=amount");
    let html = dana
        .get(server.url("/inbox"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains(r#"href="/inbox?gate=refunds&amp;min_amount=1000&amp;sort=amount""#));
    assert!(html.contains("Big refunds, Dana"));
    let theirs = ravi
        .get(server.url("/inbox"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!theirs.contains("Big refunds, Dana"), "views are private");

    // Bad input: refused, nothing written.
    for (name, query) in [
        ("", "gate=refunds"),
        ("Broken", "tier=urgent"),
        ("Broken", "min_amount=lots"),
        ("Big refunds, Dana", "gate=refunds"),
    ] {
        save(&dana, name, query).await;
        assert_eq!(saved_view_count(&server).await, 1, "{name:?} {query:?}");
    }
    let html = dana
        .get(server.url("/inbox"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("already have a view named"),
        "the refusal is shown once"
    );

    // Someone else cannot delete it; its owner can.
    let id: String = on_db!(&server.state.db, |p| {
        sqlx::query_scalar("SELECT id FROM saved_views")
            .fetch_one(p)
            .await
            .unwrap()
    });
    let path = format!("/inbox/views/{id}/delete");
    let res = ravi.post(server.url(&path)).send().await.unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(saved_view_count(&server).await, 1);
    let res = dana.post(server.url(&path)).send().await.unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(saved_view_count(&server).await, 0);
    server.stop().await;
}
on_both_engines!(saved_views, saved_views_belong_to_their_owner);

async fn claims_show_who_is_on_a_request_and_filter_the_list(engine: Engine) {
    let Some(server) = with_demo(engine, 5, 7, 80).await else {
        return;
    };
    let dana = server.signed_in("dana@example.com").await;
    let ravi = server.signed_in("ravi@example.com").await;
    let now = countersign::server::now_ms();
    // The oldest open review request, claimed by Dana; a second one with a lapsed claim.
    let ids: Vec<String> = on_db!(&server.state.db, |p| {
        sqlx::query_scalar(
            "SELECT id FROM action_requests WHERE status = 'pending' AND tier = 'review' \
             ORDER BY id LIMIT 2",
        )
        .fetch_all(p)
        .await
        .unwrap()
    });
    on_db!(&server.state.db, |p| {
        for (id, expires) in [(&ids[0], now + 600_000), (&ids[1], now - 1)] {
            sqlx::query(
                "INSERT INTO request_claims (request_id, user_id, claimed_at, expires_at) \
                 VALUES ($1, 'usr_dana', $2, $3)",
            )
            .bind(id)
            .bind(now - 1000)
            .bind(expires)
            .execute(p)
            .await
            .unwrap();
        }
    });
    let page = |client: &reqwest::Client, query: &str| {
        let req = client.get(server.url(&format!("/inbox?{query}")));
        async move {
            let res = req.send().await.unwrap();
            (res.status().as_u16(), res.text().await.unwrap())
        }
    };
    let row_ids = |html: &str| -> Vec<String> {
        html.split("<tr data-id=\"")
            .skip(1)
            .map(|s| s.split('"').next().unwrap().to_owned())
            .collect()
    };

    let (_, mine) = page(&dana, "assigned=me").await;
    assert_eq!(
        row_ids(&mine),
        vec![ids[0].clone()],
        "a lapsed claim is nobody's"
    );
    assert!(mine.contains("You are reviewing"));
    let (_, seen_by_ravi) = page(&ravi, "tier=review").await;
    assert!(seen_by_ravi.contains("Dana Whitfield is reviewing"));
    let (_, ravis) = page(&ravi, "assigned=me").await;
    assert!(row_ids(&ravis).is_empty());
    let (_, free) = page(&ravi, "assigned=unassigned&tier=review").await;
    let free = row_ids(&free);
    assert!(!free.contains(&ids[0]));
    assert!(
        free.contains(&ids[1]),
        "a lapsed claim leaves it unassigned"
    );

    // Grouped and sorted views answer, and bad parameters name their field.
    for query in [
        "group=gate&sort=deadline",
        "group=customer&sort=amount",
        "group=tier&sort=risk",
        "group=agent&age=1h&min_amount=10&max_amount=100000",
    ] {
        let (status, html) = page(&dana, query).await;
        assert_eq!(status, 200, "{query}");
        assert!(html.contains("data-testid=\"open-count\""), "{query}");
    }
    for (query, field) in [
        ("group=colour", "group:"),
        ("sort=random", "sort:"),
        ("min_amount=5&max_amount=1", "max_amount:"),
        ("age=3w", "age:"),
        ("assigned=everyone", "assigned:"),
        ("status=approved", "status:"),
        ("group=gate&after=an.1.0.5.req_1.", "after:"),
    ] {
        let (status, html) = page(&dana, query).await;
        assert_eq!(status, 400, "{query}");
        assert!(html.contains(field), "{query}");
    }
    server.stop().await;
}
on_both_engines!(
    claims_and_views,
    claims_show_who_is_on_a_request_and_filter_the_list
);
