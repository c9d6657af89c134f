//! Server-side sessions (tower-sessions with its sqlx store on the app's own database) and the
//! signed-in user for every request.
//!
//! Cookie: `__Host-countersign`, Secure, HttpOnly, SameSite=Strict, Path=/ (plain-HTTP loopback
//! development may turn Secure off, and then the cookie is named `countersign_session` since the
//! `__Host-` prefix requires Secure). The id is rotated at sign-in. Sessions end after the idle
//! timeout (tower-sessions' inactivity expiry, refreshed as the user works), at the absolute
//! timeout counted from sign-in, and when the user's session epoch changes (sign out everywhere,
//! account disabled).

use super::{repo, CurrentUser, Role};
use crate::error::AppError;
use crate::server::{now_ms, AppState, Db};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Router;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use tower_sessions::cookie::SameSite;
use tower_sessions::{Expiry, Session, SessionManagerLayer};
use tower_sessions_sqlx_store::{PostgresStore, SqliteStore};

pub const KEY_USER: &str = "uid";
pub const KEY_LOGIN_AT: &str = "login_at";
pub const KEY_EPOCH: &str = "epoch";
pub const KEY_SEEN: &str = "seen";
pub const KEY_FLASH: &str = "flash";

#[derive(Debug, Clone)]
pub struct SessionSettings {
    pub idle_timeout: Duration,
    pub absolute_timeout: Duration,
    pub secure_cookie: bool,
}

impl SessionSettings {
    pub fn cookie_name(&self) -> &'static str {
        if self.secure_cookie {
            "__Host-countersign"
        } else {
            "countersign_session"
        }
    }
}

/// A one-time message for the next page (sign-in errors survive the redirect back).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Flash {
    pub error: Option<String>,
    pub notice: Option<String>,
    pub email: Option<String>,
    /// Secrets shown exactly once (a new agent token or webhook secret), as (label, value).
    #[serde(default)]
    pub reveal: Vec<(String, String)>,
}

pub async fn set_flash(session: &Session, flash: Flash) {
    if let Err(e) = session.insert(KEY_FLASH, flash).await {
        tracing::warn!("could not store flash message: {e}");
    }
}

/// Adds the session layer for the configured engine, and a task that deletes expired sessions.
pub fn apply<S: Clone + Send + Sync + 'static>(
    router: Router<S>,
    db: &Db,
    settings: &SessionSettings,
) -> Router<S> {
    use tower_sessions::session_store::ExpiredDeletion;
    let expiry = Expiry::OnInactivity(
        time::Duration::try_from(settings.idle_timeout).unwrap_or(time::Duration::minutes(30)),
    );
    macro_rules! layer {
        ($store:expr) => {{
            let store = $store;
            tokio::spawn(
                store
                    .clone()
                    .continuously_delete_expired(Duration::from_secs(300)),
            );
            router.layer(
                SessionManagerLayer::new(store)
                    .with_name(settings.cookie_name())
                    .with_secure(settings.secure_cookie)
                    .with_http_only(true)
                    .with_same_site(SameSite::Strict)
                    .with_path("/")
                    .with_expiry(expiry),
            )
        }};
    }
    match db {
        Db::Sqlite(p) => layer!(SqliteStore::new(p.clone())
            .with_table_name("sessions")
            .expect("valid table name")),
        Db::Postgres(p) => layer!(PostgresStore::new(p.clone())
            .with_schema_name("public")
            .expect("valid schema name")
            .with_table_name("sessions")
            .expect("valid table name")),
    }
}

/// The user signed in on `session`, ending the session if it has outlived its absolute timeout
/// or its epoch, and refreshing its idle expiry as the user works.
pub async fn resolve(state: &AppState, session: &Session) -> Option<CurrentUser> {
    let uid: String = session.get(KEY_USER).await.ok().flatten()?;
    let login_at: i64 = session.get(KEY_LOGIN_AT).await.ok().flatten().unwrap_or(0);
    let epoch: i64 = session.get(KEY_EPOCH).await.ok().flatten().unwrap_or(-1);
    let now = now_ms();
    let settings = &state.config.session;
    if now - login_at > settings.absolute_timeout.as_millis() as i64 {
        let _ = session.flush().await;
        return None;
    }
    let user = match repo::session_user(&state.db, &uid, epoch).await {
        Ok(Some(u)) => u,
        Ok(None) => {
            let _ = session.flush().await;
            return None;
        }
        Err(e) => {
            tracing::error!("loading the session user failed: {e}");
            return None;
        }
    };
    // Saving the session is what extends its inactivity expiry; do it a few times per idle
    // period rather than on every request.
    let touch_every = (settings.idle_timeout.as_millis() as i64 / 4).clamp(250, 60_000);
    let seen: i64 = session.get(KEY_SEEN).await.ok().flatten().unwrap_or(0);
    if now - seen >= touch_every {
        let _ = session.insert(KEY_SEEN, now).await;
    }
    Some(user)
}

/// Paths anyone may open: the sign-in and setup pages, static assets, health, readiness and
/// metrics (counts only; firewall them in production), and the endpoints that authenticate
/// themselves (server functions, the agent API, sign-in posts).
fn is_public(path: &str) -> bool {
    matches!(
        path,
        "/login" | "/setup" | "/healthz" | "/readyz" | "/metrics" | "/favicon.svg"
    ) || path.starts_with("/pkg/")
        || path.starts_with("/auth/")
        || path.starts_with("/api/")
}

/// Middleware: attaches the signed-in user to the request, and sends anyone else who asks for
/// a page to the sign-in page (remembering where they were going).
pub async fn attach_user(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    // Static files are the same for everyone: no session lookup for them.
    if path.starts_with("/pkg/") || path == "/favicon.svg" {
        return next.run(req).await;
    }
    let session = req.extensions().get::<Session>().cloned();
    let user = match &session {
        Some(s) => resolve(&state, s).await,
        None => None,
    };
    match user {
        Some(u) => {
            req.extensions_mut().insert(u);
        }
        None if !is_public(&path) && req.method() == axum::http::Method::GET => {
            let target = req
                .uri()
                .path_and_query()
                .map(|pq| pq.as_str().to_owned())
                .unwrap_or_else(|| "/".into());
            let next_param =
                url::form_urlencoded::byte_serialize(target.as_bytes()).collect::<String>();
            return Redirect::to(&format!("/login?next={next_param}")).into_response();
        }
        None => {}
    }
    next.run(req).await
}

/// The signed-in user for the current server function or page render.
pub fn current_user() -> Option<CurrentUser> {
    leptos::prelude::use_context::<axum::http::request::Parts>()
        .and_then(|parts| parts.extensions.get::<CurrentUser>().cloned())
}

pub fn require_user() -> Result<CurrentUser, AppError> {
    current_user().ok_or(AppError::Unauthenticated)
}

/// The signed-in user if they hold any of `roles`.
pub fn require_any_role(roles: &[Role]) -> Result<CurrentUser, AppError> {
    let user = require_user()?;
    if roles.iter().any(|r| user.has(*r)) {
        Ok(user)
    } else {
        Err(AppError::Forbidden)
    }
}

/// Only local paths are allowed as a post-sign-in destination (no open redirects).
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.contains('\\')
                && !n.chars().any(char::is_control)
                && !n.starts_with("/login") =>
        {
            n.to_owned()
        }
        _ => "/inbox".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_followed_after_sign_in() {
        assert_eq!(safe_next(Some("/inbox?tier=dual")), "/inbox?tier=dual");
        for bad in [
            "https://evil.example",
            "//evil.example",
            "/\\evil",
            "javascript:alert(1)",
            "",
            "/login?next=/x",
            "/a\nb",
        ] {
            assert_eq!(safe_next(Some(bad)), "/inbox", "{bad:?}");
        }
        assert_eq!(safe_next(None), "/inbox");
    }

    #[test]
    fn public_paths() {
        for p in [
            "/login",
            "/setup",
            "/pkg/countersign.js",
            "/api/v1/actions",
            "/auth/login",
            "/healthz",
            "/readyz",
            "/metrics",
        ] {
            assert!(is_public(p), "{p}");
        }
        for p in ["/", "/inbox", "/admin", "/audit", "/loginx"] {
            assert!(!is_public(p), "{p}");
        }
    }
}
