//! Sign-in, sessions and web security against the real server, on SQLite and PostgreSQL.

mod common;

use common::{fresh_db, Engine, TestServer};
use countersign::server::demo::DEMO_PASSWORD;
use std::time::Duration;

fn location(res: &reqwest::Response) -> String {
    res.headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

fn session_cookie(res: &reqwest::Response) -> Option<String> {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("countersign_session=") || c.starts_with("__Host-countersign="))
        .map(str::to_owned)
}

async fn audit_count(db: &countersign::server::Db, event: &str) -> i64 {
    common::count(db, "audit_events WHERE event_type = $1", &[event]).await
}

async fn demo_server(
    engine: Engine,
    tweak: impl FnOnce(&mut countersign::server::config::Config),
) -> Option<TestServer> {
    common::with_demo_and(engine, 1, 1, 10, tweak).await
}

async fn sign_in_rotates_the_session_and_sign_out_ends_it(engine: Engine) {
    let Some(server) = demo_server(engine, |_| {}).await else {
        return;
    };
    let client = server.client();

    let res = client
        .get(server.url("/inbox?tier=dual"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(
        location(&res),
        "/login?next=%2Finbox%3Ftier%3Ddual",
        "pages need sign-in"
    );

    // A failed attempt leaves a session (carrying the error message) ...
    let res = client
        .post(server.url("/auth/login"))
        .form(&[
            ("email", "dana@example.com"),
            ("password", "not the password"),
        ])
        .send()
        .await
        .unwrap();
    let before = session_cookie(&res).expect("a session for the error message");
    let html = client
        .get(server.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("Email or password is wrong."), "{html}");

    // ... and signing in replaces its id.
    let res = client
        .post(server.url("/auth/login"))
        .form(&[
            ("email", "DANA@example.com"),
            ("password", DEMO_PASSWORD),
            ("next", "/inbox?tier=dual"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "/inbox?tier=dual");
    let after = session_cookie(&res).expect("a new session id at sign-in");
    let id = |c: &str| c.split(';').next().unwrap().to_owned();
    assert_ne!(id(&before), id(&after), "session id rotated at sign-in");

    // The pre-sign-in id is worthless now.
    let stale = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let res = stale
        .get(server.url("/inbox"))
        .header("cookie", id(&before))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);

    let res = client.get(server.url("/inbox")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("Dana Whitfield"));
    assert_eq!(audit_count(&server.db.db, "login").await, 1);
    assert_eq!(audit_count(&server.db.db, "login_failed").await, 1);

    let res = client
        .post(server.url("/auth/logout"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        (res.status().as_u16(), location(&res)),
        (303, "/login".into())
    );
    let html = client
        .get(server.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("You are signed out."));
    let res = client.get(server.url("/inbox")).send().await.unwrap();
    assert_eq!(res.status(), 303, "signed out");
    assert_eq!(audit_count(&server.db.db, "logout").await, 1);
    server.stop().await;
}
on_both_engines!(
    sign_in_and_out,
    sign_in_rotates_the_session_and_sign_out_ends_it
);

async fn unknown_accounts_and_wrong_passwords_look_the_same(engine: Engine) {
    let Some(server) = demo_server(engine, |_| {}).await else {
        return;
    };
    for (email, password) in [
        ("nobody@example.com", DEMO_PASSWORD),
        ("ravi@example.com", "wrong password!"),
    ] {
        let client = server.client();
        client
            .post(server.url("/auth/login"))
            .form(&[("email", email), ("password", password)])
            .send()
            .await
            .unwrap();
        let html = client
            .get(server.url("/login"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(html.contains("Email or password is wrong."), "{email}");
        assert_eq!(
            client
                .get(server.url("/inbox"))
                .send()
                .await
                .unwrap()
                .status(),
            303
        );
    }
    for bad in [
        vec![("email", ""), ("password", "x")],
        vec![("email", "a@b.c")],
    ] {
        let client = server.client();
        let res = client
            .post(server.url("/auth/login"))
            .form(&bad)
            .send()
            .await
            .unwrap();
        assert!(
            matches!(res.status().as_u16(), 303 | 422),
            "{bad:?}: {}",
            res.status()
        );
    }
    server.stop().await;
}
on_both_engines!(
    wrong_password,
    unknown_accounts_and_wrong_passwords_look_the_same
);

async fn repeated_failures_lock_the_account_then_the_address(engine: Engine) {
    let Some(server) = demo_server(engine, |_| {}).await else {
        return;
    };
    let client = server.client();
    for _ in 0..5 {
        server
            .sign_in(&client, "sofia@example.com", "guessing wrong")
            .await;
    }
    // Even the right password is refused while the account is locked.
    let to = server
        .sign_in(&client, "sofia@example.com", DEMO_PASSWORD)
        .await;
    assert!(to.starts_with("/login"), "{to}");
    let html = client
        .get(server.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("Too many failed sign-ins. Try again in 15 min."),
        "{html}"
    );
    assert_eq!(audit_count(&server.db.db, "login_throttled").await, 1);

    // Other accounts still work from this address, until the address itself hits its limit.
    assert_eq!(
        server
            .sign_in(&server.client(), "ravi@example.com", DEMO_PASSWORD)
            .await,
        "/inbox"
    );
    for i in 0..15 {
        server
            .sign_in(&server.client(), &format!("spray{i}@example.com"), "guess")
            .await;
    }
    let to = server
        .sign_in(&server.client(), "marcus@example.com", DEMO_PASSWORD)
        .await;
    assert!(
        to.starts_with("/login"),
        "address locked after 20 failures: {to}"
    );
    server.stop().await;
}
on_both_engines!(
    throttling,
    repeated_failures_lock_the_account_then_the_address
);

async fn idle_sessions_expire_and_activity_extends_them(engine: Engine) {
    let Some(server) = demo_server(engine, |c| {
        c.session.idle_timeout = Duration::from_millis(1500)
    })
    .await
    else {
        return;
    };
    let client = server.signed_in("dana@example.com").await;
    // Active use keeps the session alive past the idle timeout...
    for _ in 0..6 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(
            client
                .get(server.url("/inbox"))
                .send()
                .await
                .unwrap()
                .status(),
            200
        );
    }
    // ... and silence ends it.
    tokio::time::sleep(Duration::from_millis(2200)).await;
    assert_eq!(
        client
            .get(server.url("/inbox"))
            .send()
            .await
            .unwrap()
            .status(),
        303
    );
    server.stop().await;
}
on_both_engines!(idle_expiry, idle_sessions_expire_and_activity_extends_them);

async fn sessions_end_at_the_absolute_timeout_however_active(engine: Engine) {
    let Some(server) = demo_server(engine, |c| {
        c.session.absolute_timeout = Duration::from_millis(2000)
    })
    .await
    else {
        return;
    };
    let client = server.signed_in("dana@example.com").await;
    assert_eq!(
        client
            .get(server.url("/inbox"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let _ = client.get(server.url("/inbox")).send().await.unwrap();
    }
    assert_eq!(
        client
            .get(server.url("/inbox"))
            .send()
            .await
            .unwrap()
            .status(),
        303
    );
    server.stop().await;
}
on_both_engines!(
    absolute_expiry,
    sessions_end_at_the_absolute_timeout_however_active
);

async fn sign_out_everywhere_ends_every_session(engine: Engine) {
    let Some(server) = demo_server(engine, |_| {}).await else {
        return;
    };
    let laptop = server.signed_in("dana@example.com").await;
    let phone = server.signed_in("dana@example.com").await;
    let other = server.signed_in("ravi@example.com").await;
    let res = laptop
        .post(server.url("/auth/logout-everywhere"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(
        phone
            .get(server.url("/inbox"))
            .send()
            .await
            .unwrap()
            .status(),
        303
    );
    assert_eq!(
        laptop
            .get(server.url("/inbox"))
            .send()
            .await
            .unwrap()
            .status(),
        303
    );
    assert_eq!(
        other
            .get(server.url("/inbox"))
            .send()
            .await
            .unwrap()
            .status(),
        200,
        "only Dana's sessions"
    );
    assert!(
        server
            .signed_in("dana@example.com")
            .await
            .get(server.url("/inbox"))
            .send()
            .await
            .unwrap()
            .status()
            == 200
    );
    server.stop().await;
}
on_both_engines!(logout_everywhere, sign_out_everywhere_ends_every_session);

async fn cross_site_posts_are_refused(engine: Engine) {
    let Some(server) = demo_server(engine, |_| {}).await else {
        return;
    };
    let client = server.signed_in("dana@example.com").await;
    let forged = client
        .post(server.url("/auth/logout"))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    let forged = client
        .post(server.url("/auth/logout-everywhere"))
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    assert_eq!(
        client
            .get(server.url("/inbox"))
            .send()
            .await
            .unwrap()
            .status(),
        200,
        "still signed in"
    );
    let forged_login = server
        .client()
        .post(server.url("/auth/login"))
        .header("origin", "https://evil.example")
        .form(&[("email", "dana@example.com"), ("password", DEMO_PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(forged_login.status(), 403, "login CSRF refused too");
    server.stop().await;
}
on_both_engines!(csrf, cross_site_posts_are_refused);

async fn each_role_reaches_exactly_what_it_may(engine: Engine) {
    let Some(server) = demo_server(engine, |_| {}).await else {
        return;
    };
    // (who, /inbox, /admin)
    let matrix = [
        ("dana@example.com", 200, 403),   // reviewer
        ("marcus@example.com", 200, 403), // senior reviewer
        ("alex@example.com", 200, 200),   // admin
        ("ines@example.com", 200, 403),   // auditor
    ];
    for (email, inbox, admin) in matrix {
        let client = server.signed_in(email).await;
        assert_eq!(
            client
                .get(server.url("/inbox"))
                .send()
                .await
                .unwrap()
                .status(),
            inbox,
            "{email} /inbox"
        );
        let res = client.get(server.url("/admin")).send().await.unwrap();
        assert_eq!(res.status(), admin, "{email} /admin");
        let html = res.text().await.unwrap();
        if admin == 403 {
            assert!(html.contains("You are not allowed to do that."), "{email}");
            assert!(!html.contains("users-table"), "{email} sees no user list");
        } else {
            assert!(html.contains("ines@example.com") && html.contains("refund-bot"));
        }
    }
    let anonymous = server.client();
    for path in ["/inbox", "/admin", "/audit", "/gates", "/stats"] {
        let res = anonymous.get(server.url(path)).send().await.unwrap();
        assert_eq!(res.status(), 303, "{path}");
        assert!(location(&res).starts_with("/login?next="), "{path}");
    }
    server.stop().await;
}
on_both_engines!(role_matrix, each_role_reaches_exactly_what_it_may);

async fn responses_carry_security_headers_and_a_nonce_policy(engine: Engine) {
    let Some(server) = demo_server(engine, |_| {}).await else {
        return;
    };
    let res = server
        .client()
        .get(server.url("/login"))
        .send()
        .await
        .unwrap();
    let h = res.headers().clone();
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["referrer-policy"], "same-origin");
    let csp = h["content-security-policy"].to_str().unwrap().to_owned();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    let html = res.text().await.unwrap();
    let nonce = csp
        .split("'nonce-")
        .nth(1)
        .and_then(|r| r.split('\'').next())
        .expect("page CSP has a nonce");
    assert!(
        html.contains(&format!("nonce=\"{nonce}\"")),
        "the loader script carries the same nonce"
    );
    let other = server
        .client()
        .get(server.url("/login"))
        .send()
        .await
        .unwrap();
    assert!(
        !other.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains(nonce),
        "a fresh nonce per response"
    );
    server.stop().await;
}
on_both_engines!(
    security_headers,
    responses_carry_security_headers_and_a_nonce_policy
);

async fn production_cookies_are_host_only_secure_and_strict(engine: Engine) {
    let Some(server) = demo_server(engine, |c| c.session.secure_cookie = true).await else {
        return;
    };
    let res = server
        .client()
        .post(server.url("/auth/login"))
        .form(&[("email", "dana@example.com"), ("password", DEMO_PASSWORD)])
        .send()
        .await
        .unwrap();
    let cookie = session_cookie(&res).expect("session cookie");
    assert!(cookie.starts_with("__Host-countersign="), "{cookie}");
    for attr in ["Secure", "HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(attr), "{attr} missing: {cookie}");
    }
    assert!(!cookie.contains("Domain="), "{cookie}");
    server.stop().await;
}
on_both_engines!(
    secure_cookies,
    production_cookies_are_host_only_secure_and_strict
);

async fn the_setup_link_creates_the_first_admin_once(engine: Engine) {
    let Some(t) = fresh_db(engine).await else {
        return;
    };
    let token = countersign::server::http::new_setup_link(&t.db)
        .await
        .unwrap();
    let server = TestServer::start(t).await;
    let client = server.client();
    let html = client
        .get(server.url(&format!("/setup?token={token}")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("Create admin"), "{html}");
    let bad = client
        .get(server.url("/setup?token=wrong"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(bad.contains("This setup link is used, expired or wrong."));

    // A weak password is refused and creates nobody.
    let res = client
        .post(server.url("/auth/setup"))
        .form(&[
            ("token", token.as_str()),
            ("email", "root@example.com"),
            ("display_name", "Root"),
            ("password", "short"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let html = client
        .get(server.url(&location(&res)))
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
    assert!(!countersign::accounts::repo::admin_exists(&server.db.db)
        .await
        .unwrap());

    let form = [
        ("token", token.as_str()),
        ("email", "root@example.com"),
        ("display_name", "Root Admin"),
        ("password", "a long enough passphrase"),
    ];
    let res = client
        .post(server.url("/auth/setup"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(location(&res), "/login");
    assert_eq!(
        server
            .sign_in(&client, "root@example.com", "a long enough passphrase")
            .await,
        "/inbox"
    );
    assert_eq!(
        client
            .get(server.url("/admin"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    let again = server
        .client()
        .post(server.url("/auth/setup"))
        .form(&[
            ("token", token.as_str()),
            ("email", "second@example.com"),
            ("display_name", "Second"),
            ("password", "a long enough passphrase"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(location(&again), "/login");
    assert!(
        countersign::accounts::repo::login_record(&server.db.db, "second@example.com")
            .await
            .unwrap()
            .is_none(),
        "a used link creates nobody"
    );
    server.stop().await;
}
on_both_engines!(setup_link, the_setup_link_creates_the_first_admin_once);

async fn server_functions_refuse_callers_without_the_role(engine: Engine) {
    use countersign::admin::AdminOverview;
    use countersign::audit::explorer::LoadAudit;
    use countersign::inbox::detail::LoadRequest;
    use countersign::inbox::LoadInbox;
    use leptos::server_fn::ServerFn;
    let Some(server) = demo_server(engine, |_| {}).await else {
        return;
    };
    let anonymous = server.client();
    let dana = server.signed_in("dana@example.com").await;
    let ines = server.signed_in("ines@example.com").await;
    // (endpoint, form body, who is refused, the message they get)
    let cases: Vec<(&str, &str, &reqwest::Client, &str)> = vec![
        (LoadInbox::PATH, "", &anonymous, "Please sign in."),
        (LoadRequest::PATH, "id=req_x", &anonymous, "Please sign in."),
        (AdminOverview::PATH, "", &anonymous, "Please sign in."),
        (
            AdminOverview::PATH,
            "",
            &dana,
            "You are not allowed to do that.",
        ),
        (
            AdminOverview::PATH,
            "",
            &ines,
            "You are not allowed to do that.",
        ),
        (
            LoadAudit::PATH,
            "filter%5Bbefore%5D=9",
            &anonymous,
            "Please sign in.",
        ),
        (
            LoadAudit::PATH,
            "filter%5Bbefore%5D=9",
            &dana,
            "You are not allowed to do that.",
        ),
    ];
    for (path, body, client, message) in cases {
        let res = client
            .post(server.url(path))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("accept", "application/json")
            .body(body.to_owned())
            .send()
            .await
            .unwrap();
        let status = res.status();
        let text = res.text().await.unwrap();
        assert!(!status.is_success(), "{path}: {status} {text}");
        assert!(
            text.contains(message)
                || text.contains("Unauthenticated")
                || text.contains("Forbidden"),
            "{path}: {text}"
        );
        assert!(
            !text.contains("@example.com"),
            "{path} leaks nothing: {text}"
        );
    }
    server.stop().await;
}
on_both_engines!(
    server_fn_matrix,
    server_functions_refuse_callers_without_the_role
);
