//! Admin screens: people, roles, teams, agents and tokens; every change audited.

mod common;

use common::{with_demo, Engine};
use countersign::on_db;
use countersign::server::demo::DEMO_PASSWORD;

async fn audit_count(db: &countersign::server::Db, event: &str) -> i64 {
    common::count(
        db,
        "audit_events WHERE event_type = $1 AND actor_id = 'usr_alex'",
        &[event],
    )
    .await
}

fn reveal(html: &str, label: &str) -> String {
    let after = html
        .split(&format!("<dt>{label}</dt>"))
        .nth(1)
        .unwrap_or_else(|| panic!("{label} not revealed"));
    after
        .split("<code>")
        .nth(1)
        .unwrap()
        .split("</code>")
        .next()
        .unwrap()
        .to_owned()
}

async fn people_and_roles_are_managed_and_audited(engine: Engine) {
    let Some(server) = with_demo(engine, 4, 1, 10).await else {
        return;
    };
    let db = server.db.db.clone();
    let alex = server.signed_in("alex@example.com").await;

    // Bad input changes nothing.
    alex.post(server.url("/admin/users"))
        .form(&[
            ("email", "new@example.com"),
            ("display_name", "New Person"),
            ("password", "short"),
            ("role_reviewer", "on"),
        ])
        .send()
        .await
        .unwrap();
    let html = alex
        .get(server.url("/admin"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("password: use at least 12 characters"),
        "{html}"
    );
    assert!(
        countersign::accounts::repo::login_record(&db, "new@example.com")
            .await
            .unwrap()
            .is_none()
    );

    // A new person can sign in with the initial password.
    let res = alex
        .post(server.url("/admin/users"))
        .form(&[
            ("email", "new@example.com"),
            ("display_name", "New Person"),
            ("password", "a fine initial passphrase"),
            ("role_reviewer", "on"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["location"], "/admin");
    assert_eq!(
        server
            .sign_in(
                &server.client(),
                "new@example.com",
                "a fine initial passphrase"
            )
            .await,
        "/inbox"
    );
    assert_eq!(audit_count(&db, "user_created").await, 1);

    // Changing Dana's roles ends her sessions; the change is audited.
    let dana = server.signed_in("dana@example.com").await;
    let res = alex
        .post(server.url("/admin/users/usr_dana"))
        .form(&[("role_reviewer", "on"), ("role_senior_reviewer", "on")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["location"], "/admin");
    assert_eq!(
        dana.get(server.url("/inbox"))
            .send()
            .await
            .unwrap()
            .status(),
        303,
        "privilege change ends her sessions"
    );
    assert_eq!(
        countersign::accounts::repo::roles_of(&db, "usr_dana")
            .await
            .unwrap(),
        vec![
            countersign::accounts::Role::Reviewer,
            countersign::accounts::Role::SeniorReviewer
        ]
    );
    assert_eq!(audit_count(&db, "user_changed").await, 1);

    // Disabling someone locks them out.
    alex.post(server.url("/admin/users/usr_ravi"))
        .form(&[("role_reviewer", "on"), ("disabled", "on")])
        .send()
        .await
        .unwrap();
    assert!(server
        .sign_in(&server.client(), "ravi@example.com", DEMO_PASSWORD)
        .await
        .starts_with("/login"));

    // The last active admin cannot remove themselves.
    alex.post(server.url("/admin/users/usr_priya"))
        .form(&[("role_reviewer", "on")])
        .send()
        .await
        .unwrap();
    let alex = server.signed_in("alex@example.com").await;
    alex.post(server.url("/admin/users/usr_alex"))
        .form(&[("role_reviewer", "on")])
        .send()
        .await
        .unwrap();
    let html = alex
        .get(server.url("/admin"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("At least one active admin must remain."),
        "{html}"
    );

    // Changing one's own privileges rotates the session id and keeps one signed in.
    let res = alex
        .post(server.url("/admin/users/usr_alex"))
        .form(&[("role_admin", "on"), ("role_auditor", "on")])
        .send()
        .await
        .unwrap();
    let rotated = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .any(|c| c.to_str().unwrap().starts_with("countersign_session="));
    assert!(rotated, "a new session id after one's own privilege change");
    assert_eq!(
        alex.get(server.url("/admin"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    // Non-admins are refused.
    let sofia = server.signed_in("sofia@example.com").await;
    let res = sofia
        .post(server.url("/admin/users"))
        .form(&[
            ("email", "x@example.com"),
            ("display_name", "X"),
            ("password", "a fine initial passphrase"),
            ("role_admin", "on"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert!(
        countersign::accounts::repo::login_record(&db, "x@example.com")
            .await
            .unwrap()
            .is_none()
    );
    server.stop().await;
}
on_both_engines!(people, people_and_roles_are_managed_and_audited);

async fn teams_are_created_and_staffed(engine: Engine) {
    let Some(server) = with_demo(engine, 4, 1, 10).await else {
        return;
    };
    let alex = server.signed_in("alex@example.com").await;
    alex.post(server.url("/admin/teams"))
        .form(&[("name", "Payments Desk")])
        .send()
        .await
        .unwrap();
    let team_id: String = on_db!(&server.db.db, |p| sqlx::query_scalar(
        "SELECT id FROM teams WHERE name = 'Payments Desk'"
    )
    .fetch_one(p)
    .await
    .unwrap());
    let members = format!("/admin/teams/{team_id}/members");
    alex.post(server.url(&members))
        .form(&[("user_id", "usr_sofia"), ("change", "add")])
        .send()
        .await
        .unwrap();
    let html = alex
        .get(server.url("/admin"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("Team updated."));
    let count = |db: countersign::server::Db, id: String| async move {
        common::count(&db, "team_members WHERE team_id = $1", &[&id]).await
    };
    assert_eq!(count(server.db.db.clone(), team_id.clone()).await, 1);
    alex.post(server.url(&members))
        .form(&[("user_id", "usr_sofia"), ("change", "remove")])
        .send()
        .await
        .unwrap();
    assert_eq!(count(server.db.db.clone(), team_id.clone()).await, 0);
    alex.post(server.url("/admin/teams"))
        .form(&[("name", "payments desk")])
        .send()
        .await
        .unwrap();
    let html = alex
        .get(server.url("/admin"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("exists already"), "{html}");
    assert_eq!(audit_count(&server.db.db, "team_created").await, 1);
    server.stop().await;
}
on_both_engines!(teams, teams_are_created_and_staffed);

async fn agent_tokens_are_shown_once_rotated_and_revoked(engine: Engine) {
    let Some(server) = with_demo(engine, 4, 1, 10).await else {
        return;
    };
    let alex = server.signed_in("alex@example.com").await;
    let api = reqwest::Client::new();
    let works = |token: String| {
        let (api, url) = (api.clone(), server.url("/api/v1/actions/req_none"));
        async move {
            api.get(url)
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };

    alex.post(server.url("/admin/agents"))
        .form(&[("name", "ops-bot"), ("description", "Ops")])
        .send()
        .await
        .unwrap();
    let html = alex
        .get(server.url("/admin"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let first = reveal(&html, "API token for ops-bot");
    assert!(reveal(&html, "Webhook secret for ops-bot").starts_with("whsec_"));
    assert_eq!(
        works(first.clone()).await,
        404,
        "the token authenticates (the request id does not exist)"
    );
    let again = alex
        .get(server.url("/admin"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!again.contains(&first), "shown once");

    alex.post(server.url("/admin/agents/ops-bot/token"))
        .form(&[("revoke_others", "1")])
        .send()
        .await
        .unwrap();
    let html = alex
        .get(server.url("/admin"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let second = reveal(&html, "API token for ops-bot");
    assert_eq!(
        works(first).await,
        401,
        "rotation revokes the old token at once"
    );
    assert_eq!(works(second.clone()).await, 404);

    alex.post(server.url("/admin/agents/ops-bot/revoke"))
        .send()
        .await
        .unwrap();
    assert_eq!(works(second).await, 401, "revocation takes effect at once");
    alex.post(server.url("/admin/agents"))
        .form(&[("name", "Bad Name!")])
        .send()
        .await
        .unwrap();
    let html = alex
        .get(server.url("/admin"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("agent names use lower-case letters"),
        "{html}"
    );
    for event in [
        "agent_created",
        "agent_token_created",
        "agent_token_rotated",
        "agent_tokens_revoked",
    ] {
        assert!(
            audit_count(&server.db.db, event).await >= 1,
            "{event} audited"
        );
    }
    server.stop().await;
}
on_both_engines!(
    agent_tokens,
    agent_tokens_are_shown_once_rotated_and_revoked
);
