//! Sign-in, sign-out and first-admin setup: plain form posts (no JavaScript needed) that answer
//! with a redirect, and tell the next page what happened through a one-time flash.

use super::session::{set_flash, Flash, KEY_EPOCH, KEY_LOGIN_AT, KEY_SEEN, KEY_USER};
use super::{password, password_policy, repo, throttle, CurrentUser, Role};
use crate::audit::repo::{append, Actor};
use crate::server::security::client_ip;
use crate::server::{ids, now_ms, AppState};
use axum::extract::{ConnectInfo, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::post;
use axum::{Extension, Form, Router};
use serde::Deserialize;
use serde_json::json;
use std::net::SocketAddr;
use tower_sessions::Session;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/auth/login", post(login))
        .route("/auth/logout", post(logout))
        .route("/auth/logout-everywhere", post(logout_everywhere))
        .route("/auth/setup", post(setup))
}

#[derive(Deserialize)]
pub struct LoginForm {
    email: String,
    password: String,
    #[serde(default)]
    next: Option<String>,
}

fn back_to_login(next: &str) -> Response {
    let next = url::form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>();
    Redirect::to(&format!("/login?next={next}")).into_response()
}

fn server_error(e: impl std::fmt::Display) -> Response {
    let err = crate::error::internal(e);
    (
        axum::http::StatusCode::INTERNAL_SERVER_ERROR,
        err.to_string(),
    )
        .into_response()
}

async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    session: Session,
    Form(form): Form<LoginForm>,
) -> Response {
    let next = super::session::safe_next(form.next.as_deref());
    let email = form.email.trim().to_owned();
    let now = now_ms();
    let ip = client_ip(peer, &headers, &state.config.trusted_proxies);
    let fail = |message: &str| Flash {
        error: Some(message.to_owned()),
        email: Some(email.chars().take(254).collect()),
        ..Flash::default()
    };
    if email.is_empty()
        || email.len() > 254
        || form.password.is_empty()
        || form.password.len() > password_policy::MAX_BYTES
    {
        set_flash(&session, fail("Enter your email and password.")).await;
        return back_to_login(&next);
    }
    let account_key = throttle::account_key(&email);
    let address_key = throttle::address_key(&ip);
    let keys = [
        (account_key.clone(), throttle::ACCOUNT_LIMIT),
        (address_key.clone(), throttle::ADDRESS_LIMIT),
    ];
    match throttle::locked_for(&state.db, &keys, now).await {
        Err(e) => return server_error(e),
        Ok(Some(wait_ms)) => {
            let minutes = (wait_ms + 59_999) / 60_000;
            if let Err(e) = audit_once(
                &state,
                &Actor::System,
                "login_throttled",
                json!({"email": email, "ip": ip.to_string()}),
                now,
            )
            .await
            {
                return server_error(e);
            }
            set_flash(
                &session,
                fail(&format!(
                    "Too many failed sign-ins. Try again in {minutes} min."
                )),
            )
            .await;
            return back_to_login(&next);
        }
        Ok(None) => {}
    }
    let record = match repo::login_record(&state.db, &email).await {
        Ok(r) => r,
        Err(e) => return server_error(e),
    };
    let stored = record
        .as_ref()
        .filter(|r| !r.disabled)
        .and_then(|r| r.password_hash.clone());
    let ok = password::verify_blocking(form.password, stored).await;
    let mut tx = match state.db.begin_write().await {
        Ok(t) => t,
        Err(e) => return server_error(e),
    };
    let Some(record) = record.filter(|_| ok) else {
        let result = async {
            throttle::record_failure(&mut tx, &[&account_key, &address_key], now).await?;
            append(
                &mut tx,
                &Actor::System,
                "login_failed",
                None,
                json!({"email": email, "ip": ip.to_string()}),
                now,
            )
            .await?;
            tx.commit().await
        }
        .await;
        if let Err(e) = result {
            return server_error(e);
        }
        set_flash(&session, fail("Email or password is wrong.")).await;
        return back_to_login(&next);
    };
    let result = async {
        throttle::clear(&mut tx, &account_key).await?;
        append(
            &mut tx,
            &Actor::User(record.id.clone()),
            "login",
            None,
            json!({"ip": ip.to_string()}),
            now,
        )
        .await?;
        tx.commit().await
    }
    .await;
    if let Err(e) = result {
        return server_error(e);
    }
    // A fresh id at sign-in, so a session id planted before sign-in is worthless after it.
    if let Err(e) = session.cycle_id().await {
        return server_error(e);
    }
    for (key, value) in [
        (KEY_LOGIN_AT, now),
        (KEY_EPOCH, record.session_epoch),
        (KEY_SEEN, now),
    ] {
        if let Err(e) = session.insert(key, value).await {
            return server_error(e);
        }
    }
    if let Err(e) = session.insert(KEY_USER, record.id).await {
        return server_error(e);
    }
    Redirect::to(&next).into_response()
}

async fn audit_once(
    state: &AppState,
    actor: &Actor,
    event: &str,
    detail: serde_json::Value,
    now: i64,
) -> Result<(), sqlx::Error> {
    let mut tx = state.db.begin_write().await?;
    append(&mut tx, actor, event, None, detail, now).await?;
    tx.commit().await
}

async fn logout(
    State(state): State<AppState>,
    user: Option<Extension<CurrentUser>>,
    session: Session,
) -> Response {
    if let Some(Extension(user)) = user {
        if let Err(e) =
            audit_once(&state, &Actor::User(user.id), "logout", json!({}), now_ms()).await
        {
            return server_error(e);
        }
    }
    let _ = session.flush().await;
    set_flash(
        &session,
        Flash {
            notice: Some("You are signed out.".into()),
            ..Flash::default()
        },
    )
    .await;
    Redirect::to("/login").into_response()
}

async fn logout_everywhere(
    State(state): State<AppState>,
    user: Option<Extension<CurrentUser>>,
    session: Session,
) -> Response {
    let Some(Extension(user)) = user else {
        return Redirect::to("/login").into_response();
    };
    let result = async {
        let mut tx = state.db.begin_write().await?;
        repo::bump_session_epoch(&mut tx, &user.id).await?;
        append(
            &mut tx,
            &Actor::User(user.id.clone()),
            "logout_everywhere",
            None,
            json!({}),
            now_ms(),
        )
        .await?;
        tx.commit().await
    }
    .await;
    if let Err(e) = result {
        return server_error(e);
    }
    let _ = session.flush().await;
    set_flash(
        &session,
        Flash {
            notice: Some("You are signed out on every device.".into()),
            ..Flash::default()
        },
    )
    .await;
    Redirect::to("/login").into_response()
}

#[derive(Deserialize)]
pub struct SetupForm {
    token: String,
    email: String,
    display_name: String,
    password: String,
}

/// Creates the first admin from a one-time setup link, then asks them to sign in.
async fn setup(
    State(state): State<AppState>,
    session: Session,
    Form(form): Form<SetupForm>,
) -> Response {
    let now = now_ms();
    let token_hash = crate::requests::repo::sha256_hex(form.token.as_bytes());
    let again = |message: String| {
        let token = url::form_urlencoded::byte_serialize(form.token.as_bytes()).collect::<String>();
        (message, format!("/setup?token={token}"))
    };
    let email = form.email.trim().to_owned();
    let name = form.display_name.trim().to_owned();
    let problem = if !email.contains('@') || email.len() > 254 {
        Some("email: enter an email address".to_owned())
    } else if name.is_empty() || name.chars().count() > 100 {
        Some("name: enter a name of at most 100 characters".to_owned())
    } else {
        password_policy::check_new_password(&form.password, &email)
            .err()
            .map(|m| format!("password: {m}"))
    };
    if let Some(message) = problem {
        let (message, to) = again(message);
        set_flash(
            &session,
            Flash {
                error: Some(message),
                email: Some(email),
                ..Flash::default()
            },
        )
        .await;
        return Redirect::to(&to).into_response();
    }
    match repo::email_taken(&state.db, &email).await {
        Ok(true) => {
            let (message, to) = again("email: an account with this email exists".into());
            set_flash(
                &session,
                Flash {
                    error: Some(message),
                    email: Some(email),
                    ..Flash::default()
                },
            )
            .await;
            return Redirect::to(&to).into_response();
        }
        Ok(false) => {}
        Err(e) => return server_error(e),
    }
    let hash = password::hash_blocking(form.password).await;
    let result = async {
        let mut tx = state.db.begin_write().await?;
        if !repo::consume_setup_token(&mut tx, &token_hash, now).await? {
            return Ok(false);
        }
        let id = ids::new_id("usr");
        repo::insert_user(&mut tx, &id, &email, &name, &[Role::Admin], now).await?;
        repo::set_password_hash(&mut tx, &id, &hash).await?;
        append(
            &mut tx,
            &Actor::User(id.clone()),
            "user_created",
            None,
            json!({"email": email, "roles": ["admin"], "via": "setup link"}),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok::<bool, sqlx::Error>(true)
    }
    .await;
    match result {
        Err(e) => server_error(e),
        Ok(false) => {
            set_flash(&session, Flash { error: Some("This setup link is used or expired. Run `countersign user add --admin EMAIL` instead.".into()), ..Flash::default() }).await;
            Redirect::to("/login").into_response()
        }
        Ok(true) => {
            set_flash(
                &session,
                Flash {
                    notice: Some("Your admin account is ready. Sign in.".into()),
                    email: Some(email),
                    ..Flash::default()
                },
            )
            .await;
            Redirect::to("/login").into_response()
        }
    }
}
