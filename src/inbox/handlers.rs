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
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::post;
use axum::{Extension, Form, Router};
use serde::Deserialize;
use tower_sessions::Session;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/inbox/{id}/decide", post(decide_form))
        .route("/inbox/{id}/resolve", post(resolve_form))
        .route("/inbox/{id}/release", post(release_form))
        .route("/inbox/{id}/edit", post(edit_form))
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
    /// The note for the escalation group, for `escalate`.
    #[serde(default)]
    note: Option<String>,
    /// `next`: after the decision, open the next request this reviewer may decide (the request
    /// page's forms send it); otherwise back to the inbox.
    #[serde(default)]
    then: Option<String>,
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
        "escalate" => Ok(Verdict::Escalate {
            note: form.note.unwrap_or_default().chars().take(2000).collect(),
        }),
        _ => Err(AppError::invalid(
            "verdict",
            "choose approve, reject or escalate",
        )),
    };
    let edited = matches!(form.verdict.as_str(), "approve_with_edit");
    let result = match verdict {
        Ok(v) => decide(&state, &user, &id, form.state_version, v).await,
        Err(e) => Err(e),
    };
    if result.is_ok() && edited {
        let _ = session.remove::<EditDraft>(KEY_EDIT_DRAFT).await;
    }
    let stale =
        matches!(&result, Err(AppError::Conflict(m)) if m.contains("changed since you opened it"));
    let then_next = form.then.as_deref() == Some("next");
    let response = after(&session, &id, result).await;
    if stale {
        // Show what changed since the version the reviewer decided on.
        return Redirect::to(&format!("/inbox/{id}?since={}#changed", form.state_version))
            .into_response();
    }
    match (then_next, response.headers().get("location")) {
        (true, Some(l)) if l.as_bytes() == b"/inbox" => {
            match crate::inbox::triage::next_for(&state.db, &user, &id).await {
                Ok(Some(next)) => Redirect::to(&format!("/inbox/{next}")).into_response(),
                Ok(None) => response,
                Err(e) => {
                    tracing::warn!("finding the next request failed: {e}");
                    response
                }
            }
        }
        _ => response,
    }
}

/// What a reviewer typed into the edit form, kept in their session between the edit and the
/// preview of its difference (so a refused edit is not lost either).
#[derive(Debug, Clone, serde::Serialize, Deserialize)]
pub struct EditDraft {
    pub request_id: String,
    pub state_version: i64,
    /// The edited payload as the reviewer wrote it (JSON text, maybe invalid).
    pub payload: String,
}

pub const KEY_EDIT_DRAFT: &str = "edit_draft";

/// `POST /inbox/{id}/edit`: the edit form (JSON text in `payload`, or one field per schema
/// property named `f/pointer`) becomes a draft; valid drafts go to the preview of the
/// difference, where the reviewer confirms the approval. Nothing is decided here.
async fn edit_form(
    State(state): State<AppState>,
    user: Option<Extension<CurrentUser>>,
    session: Session,
    Path(id): Path<String>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    let Some(Extension(user)) = user else {
        return Redirect::to(&format!("/login?next=%2Finbox%2F{id}")).into_response();
    };
    let get = |k: &str| {
        fields
            .iter()
            .rev()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
    };
    let Some(state_version) = get("state_version").and_then(|v| v.parse::<i64>().ok()) else {
        return refuse(
            &session,
            &id,
            AppError::invalid("state_version", "is missing"),
        )
        .await;
    };
    let checked = check_draft(&state, &user, &id, state_version, &fields).await;
    let (text, result) = match checked {
        Ok(v) => (serde_json::to_string_pretty(&v).unwrap_or_default(), Ok(())),
        Err((text, e)) => (text, Err(e)),
    };
    let draft = EditDraft {
        request_id: id.clone(),
        state_version,
        payload: text,
    };
    if let Err(e) = session.insert(KEY_EDIT_DRAFT, draft).await {
        tracing::warn!("could not keep the edit draft: {e}");
    }
    match result {
        Ok(()) => Redirect::to(&format!("/inbox/{id}?step=preview#preview")).into_response(),
        Err(e) => {
            set_flash(
                &session,
                Flash {
                    error: Some(e.to_string()),
                    ..Flash::default()
                },
            )
            .await;
            Redirect::to(&format!("/inbox/{id}?step=edit#edit")).into_response()
        }
    }
}

async fn refuse(session: &Session, id: &str, e: AppError) -> Response {
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

/// The edited payload from the form, checked as the decision will check it (JSON, changes
/// something, fits the gate's schema); on refusal, the text to put back in the editor.
async fn check_draft(
    state: &AppState,
    user: &CurrentUser,
    id: &str,
    state_version: i64,
    fields: &[(String, String)],
) -> Result<serde_json::Value, (String, AppError)> {
    let (proposed, version, settings) = super::detail::proposal(&state.db, id)
        .await
        .map_err(|e| (String::new(), e))?;
    if !user.may_decide() {
        return Err((String::new(), AppError::Forbidden));
    }
    if version != state_version {
        return Err((
            String::new(),
            AppError::Conflict(
                "This request changed since you opened it. Review the new version before deciding."
                    .into(),
            ),
        ));
    }
    let edited = if let Some((_, text)) = fields.iter().rev().find(|(n, _)| n == "payload") {
        serde_json::from_str::<serde_json::Value>(text).map_err(|e| {
            (
                text.clone(),
                AppError::invalid("payload", format!("the edited payload is not JSON: {e}")),
            )
        })?
    } else {
        let form = super::edit_form::fields_of(settings.payload_schema.as_ref(), &proposed);
        super::edit_form::apply(&form, &proposed, fields)
            .map_err(|(field, msg)| (proposed.to_string(), AppError::invalid(field, msg)))?
    };
    crate::requests::lifecycle::check_edit(&settings, &proposed, &edited)
        .map_err(|e| (serde_json::to_string_pretty(&edited).unwrap_or_default(), e))?;
    Ok(edited)
}

#[derive(Deserialize)]
pub struct ReleaseQuery {
    #[serde(default)]
    beacon: Option<String>,
}

/// `POST /inbox/{id}/release`: the reviewer leaves the request (the Release button, or the
/// page's `pagehide` beacon); their claim ends. Someone else's claim is never touched.
async fn release_form(
    State(state): State<AppState>,
    user: Option<Extension<CurrentUser>>,
    session: Session,
    Path(id): Path<String>,
    Query(q): Query<ReleaseQuery>,
) -> Response {
    let Some(Extension(user)) = user else {
        return Redirect::to(&format!("/login?next=%2Finbox%2F{id}")).into_response();
    };
    let beacon = q.beacon.is_some();
    match crate::inbox::claims::release(&state.db, &id, &user.id).await {
        // Nobody reads a beacon's answer, and a notice would surface on an unrelated page.
        Ok(_) if beacon => axum::http::StatusCode::NO_CONTENT.into_response(),
        Ok(released) => {
            if released {
                set_flash(
                    &session,
                    Flash {
                        notice: Some(format!("Released {id}; others can take it.")),
                        ..Flash::default()
                    },
                )
                .await;
            }
            Redirect::to("/inbox").into_response()
        }
        Err(e) => refuse(&session, &id, e).await,
    }
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
