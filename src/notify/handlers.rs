//! Form posts for notifications: a person's own preferences, and (admins) the team and gate
//! channels. Plain forms answering with a redirect and a one-time message; bad input changes
//! nothing and says which field is wrong.

use super::channel_config::{self, ChannelError, Scope};
use super::prefs;
use super::{Channel, NotificationKind};
use crate::accounts::session::{set_flash, Flash};
use crate::accounts::CurrentUser;
use crate::admin::handlers::Admin;
use crate::audit::repo::{append, Actor};
use crate::server::{now_ms, AppState};
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::post;
use axum::{Extension, Form, Router};
use serde_json::json;
use tower_sessions::Session;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/account/notifications/save", post(save_preferences))
        .route("/admin/channels", post(add_channel))
        .route("/admin/channels/{id}/remove", post(remove_channel))
}

async fn back(session: &Session, to: &str, result: Result<Flash, String>) -> Response {
    let flash = result.unwrap_or_else(|error| Flash {
        error: Some(error),
        ..Flash::default()
    });
    set_flash(session, flash).await;
    Redirect::to(to).into_response()
}

fn notice(text: impl Into<String>) -> Flash {
    Flash {
        notice: Some(text.into()),
        ..Flash::default()
    }
}

fn internal(e: impl std::fmt::Display) -> String {
    crate::error::internal(e).to_string()
}

async fn save_preferences(
    State(state): State<AppState>,
    user: Option<Extension<CurrentUser>>,
    session: Session,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    const PAGE: &str = "/account/notifications";
    let Some(Extension(user)) = user else {
        return Redirect::to("/login?next=%2Faccount%2Fnotifications").into_response();
    };
    let result = async {
        let changes = prefs::parse_form(&pairs)?;
        if changes.is_empty() {
            return Err("Choose at least one setting to save.".to_owned());
        }
        let now = now_ms();
        let mut tx = state.db.begin_write().await.map_err(internal)?;
        prefs::save(&mut tx, &user.id, &changes, now)
            .await
            .map_err(internal)?;
        let detail: serde_json::Map<String, serde_json::Value> = changes
            .iter()
            .map(|(k, m)| (k.as_str().to_owned(), json!(m.as_str())))
            .collect();
        append(
            &mut tx,
            &Actor::User(user.id.clone()),
            "notification_preferences_changed",
            None,
            json!({"user_id": user.id, "modes": detail}),
            now,
        )
        .await
        .map_err(internal)?;
        tx.commit().await.map_err(internal)?;
        Ok(notice("Notification settings saved."))
    }
    .await;
    back(&session, PAGE, result).await
}

/// The add-channel form: `scope` (`team:ID` or `gate:ID`), `kind`, `target`, and one `ev_KIND`
/// checkbox per event kind.
fn read_channel_form(
    pairs: &[(String, String)],
) -> Result<(Scope, Channel, Vec<NotificationKind>), String> {
    let field = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let scope = field("scope")
        .and_then(Scope::parse)
        .ok_or("scope: choose a team or a gate")?;
    let channel = channel_config::parse_channel(
        field("kind").unwrap_or_default(),
        field("target").unwrap_or_default(),
    )?;
    let mut events = Vec::new();
    for (key, _) in pairs {
        if let Some(name) = key.strip_prefix("ev_") {
            let kind = NotificationKind::parse(name).ok_or_else(|| {
                format!(
                    "events: {} is not a kind of notification",
                    name.chars().take(40).collect::<String>()
                )
            })?;
            if !events.contains(&kind) {
                events.push(kind);
            }
        }
    }
    Ok((scope, channel, events))
}

async fn add_channel(
    State(state): State<AppState>,
    Admin(admin): Admin,
    session: Session,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    let result = async {
        let (scope, channel, events) = read_channel_form(&pairs)?;
        channel_config::add(&state.db, &admin.id, &scope, &channel, &events, now_ms())
            .await
            .map_err(|e| match e {
                ChannelError::Refused(why) => why,
                ChannelError::Db(e) => internal(e),
            })?;
        let mut flash = notice(format!(
            "Channel added: {}.",
            channel_config::display(&channel)
        ));
        if let Channel::Webhook {
            secret: Some(secret),
            ..
        } = &channel
        {
            // Receivers verify the Standard Webhooks signature with it; it is not shown again.
            flash.reveal = vec![("Webhook signing secret".to_owned(), secret.clone())];
        }
        Ok(flash)
    }
    .await;
    back(&session, "/admin#channels", result).await
}

async fn remove_channel(
    State(state): State<AppState>,
    Admin(admin): Admin,
    session: Session,
    Path(id): Path<String>,
) -> Response {
    let result = channel_config::remove(&state.db, &admin.id, &id, now_ms())
        .await
        .map(|_| notice("Channel removed; messages still waiting for it are dropped."))
        .map_err(|e| match e {
            ChannelError::Refused(why) => why,
            ChannelError::Db(e) => internal(e),
        });
    back(&session, "/admin#channels", result).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_channel_form_names_each_problem() {
        let (scope, channel, events) = read_channel_form(&form(&[
            ("scope", "team:team_finance"),
            ("kind", "slack"),
            ("target", "https://hooks.slack.com/services/T/B/x"),
            ("ev_needs_review", "on"),
            ("ev_outcome", "on"),
        ]))
        .unwrap();
        assert_eq!(scope, Scope::Team("team_finance".into()));
        assert!(matches!(channel, Channel::Slack { .. }));
        assert_eq!(
            events,
            vec![NotificationKind::NeedsReview, NotificationKind::Outcome]
        );
        for (bad, why) in [
            (
                form(&[("kind", "slack"), ("target", "https://x.example/h")]),
                "scope:",
            ),
            (
                form(&[("scope", "gate:g"), ("kind", "slack"), ("target", "x")]),
                "target:",
            ),
            (
                form(&[
                    ("scope", "gate:g"),
                    ("kind", "email"),
                    ("target", "ops@example.com"),
                    ("ev_everything", "on"),
                ]),
                "events: everything",
            ),
        ] {
            let e = read_channel_form(&bad).unwrap_err();
            assert!(e.starts_with(why), "{e}");
        }
    }
}
