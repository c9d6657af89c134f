//! The decision form posts (plain HTML forms, so deciding works without JavaScript; a GET never
//! decides anything).

use crate::accounts::session::{set_flash, Flash};
use crate::accounts::CurrentUser;
use crate::domain::merge::Resolution;
use crate::domain::status::Status;
use crate::error::AppError;
use crate::requests::dual::resolve;
use crate::requests::lifecycle::{decide, Verdict};
use crate::server::AppState;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::post;
use axum::{Extension, Form, Router};
use serde::Deserialize;
use tower_sessions::Session;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/inbox/{id}/decide", post(decide_form))
        .route("/inbox/{id}/resolve", post(resolve_form))
}

#[derive(Deserialize)]
pub struct DecideForm {
    state_version: i64,
    verdict: String,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    reason_code: Option<String>,
    /// The edited payload (JSON text) for `approve_with_edit`.
    #[serde(default)]
    payload: Option<String>,
}

async fn decide_form(
    State(state): State<AppState>,
    user: Option<Extension<CurrentUser>>,
    session: Session,
    Path(id): Path<String>,
    Form(form): Form<DecideForm>,
) -> Response {
    let Some(Extension(user)) = user else {
        return Redirect::to(&format!("/login?next=%2Finbox%2F{id}")).into_response();
    };
    let verdict = match form.verdict.as_str() {
        "approve" => Ok(Verdict::Approve),
        "approve_with_edit" => {
            serde_json::from_str::<serde_json::Value>(form.payload.as_deref().unwrap_or(""))
                .map(Verdict::ApproveWithEdit)
                .map_err(|e| {
                    AppError::invalid("payload", format!("the edited payload is not JSON: {e}"))
                })
        }
        "reject" => Ok(Verdict::Reject {
            reason_code: form.reason_code.filter(|c| !c.is_empty()),
            reason: form.reason.unwrap_or_default().chars().take(2000).collect(),
        }),
        _ => Err(AppError::invalid("verdict", "choose approve or reject")),
    };
    let result = match verdict {
        Ok(v) => decide(&state, &user, &id, form.state_version, v).await,
        Err(e) => Err(e),
    };
    after(&session, &id, result).await
}

/// Where a decision or resolution lands: back to the inbox with what happened, or back to the
/// request with why it was refused (nothing changed).
async fn after(session: &Session, id: &str, result: Result<Status, AppError>) -> Response {
    match result {
        Ok(status) => {
            // A request still open after someone's review is a dual request waiting for its
            // other half or for a second round.
            let notice = if status.is_open() {
                format!("Your review of {id} is in; it waits for the other, independent review.")
            } else {
                format!("{}: {id}", status.label())
            };
            set_flash(
                session,
                Flash {
                    notice: Some(notice),
                    ..Flash::default()
                },
            )
            .await;
            Redirect::to("/inbox").into_response()
        }
        Err(AppError::NotFound) => Redirect::to("/inbox").into_response(),
        Err(e) => {
            set_flash(
                session,
                Flash {
                    error: Some(e.to_string()),
                    ..Flash::default()
                },
            )
            .await;
            Redirect::to(&format!("/inbox/{id}")).into_response()
        }
    }
}

#[derive(Deserialize)]
pub struct ResolveForm {
    state_version: i64,
    resolution: String,
    #[serde(default)]
    payload: Option<String>,
    #[serde(default)]
    reason: Option<String>,
}

/// A senior reviewer settles a dual-review conflict.
async fn resolve_form(
    State(state): State<AppState>,
    user: Option<Extension<CurrentUser>>,
    session: Session,
    Path(id): Path<String>,
    Form(form): Form<ResolveForm>,
) -> Response {
    let Some(Extension(user)) = user else {
        return Redirect::to(&format!("/login?next=%2Finbox%2F{id}")).into_response();
    };
    let resolution = match form.resolution.as_str() {
        "pick_a" => Ok(Resolution::PickA),
        "pick_b" => Ok(Resolution::PickB),
        "pick_proposed" => Ok(Resolution::PickProposed),
        "send_back" => {
            serde_json::from_str::<serde_json::Value>(form.payload.as_deref().unwrap_or(""))
                .map(|payload| Resolution::SendBack { payload })
                .map_err(|e| AppError::invalid("payload", format!("the payload is not JSON: {e}")))
        }
        "reject" => Ok(Resolution::Reject {
            reason_code: None,
            reason_text: form
                .reason
                .unwrap_or_default()
                .trim()
                .chars()
                .take(2000)
                .collect(),
        }),
        _ => Err(AppError::invalid(
            "resolution",
            "choose a version, send one back, or reject",
        )),
    };
    let result = match resolution {
        Ok(r) => resolve(&state, &user, &id, form.state_version, r).await,
        Err(e) => Err(e),
    };
    after(&session, &id, result).await
}
