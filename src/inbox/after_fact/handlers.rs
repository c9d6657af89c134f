//! The after-the-fact judgement posts: one item ("looks right" or "should not have happened"
//! with a note), or several ticked items marked "looks right" together. Plain form posts that
//! land back on the queue, keeping its filter, with what happened.

use super::repo::judge;
use crate::accounts::session::{set_flash, Flash};
use crate::accounts::CurrentUser;
use crate::domain::after_fact::Judgement;
use crate::error::AppError;
use crate::server::AppState;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::post;
use axum::{Extension, Router};
use tower_sessions::Session;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/inbox/after/{id}/judge", post(judge_one))
        .route("/inbox/after/fine", post(judge_many))
}

/// The fields of an urlencoded body, repeated keys kept in order.
pub fn form_fields(body: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// The queue again, with the filter the form came from (only a query string is accepted, so the
/// redirect cannot leave the page).
fn back_to(fields: &[(String, String)]) -> String {
    match field(fields, "back") {
        Some(q)
            if !q.is_empty()
                && q.len() <= 512
                && q.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-%=&".contains(&b)) =>
        {
            format!("/inbox/after?{q}")
        }
        _ => "/inbox/after".to_owned(),
    }
}

async fn land(
    session: &Session,
    to: &str,
    result: Result<usize, AppError>,
    done: impl FnOnce(usize) -> String,
) -> Response {
    let flash = match result {
        Ok(n) => Flash {
            notice: Some(done(n)),
            ..Flash::default()
        },
        Err(e) => Flash {
            error: Some(e.to_string()),
            ..Flash::default()
        },
    };
    set_flash(session, flash).await;
    Redirect::to(to).into_response()
}

async fn judge_one(
    State(state): State<AppState>,
    user: Option<Extension<CurrentUser>>,
    session: Session,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let Some(Extension(user)) = user else {
        return Redirect::to("/login?next=%2Finbox%2Fafter").into_response();
    };
    let fields = form_fields(&body);
    let to = back_to(&fields);
    let result = match field(&fields, "verdict").and_then(Judgement::parse) {
        None => Err(AppError::invalid(
            "verdict",
            "choose looks right or should not have happened",
        )),
        Some(v) => {
            judge(
                &state,
                &user,
                std::slice::from_ref(&id),
                v,
                field(&fields, "note"),
            )
            .await
        }
    };
    let verdict = field(&fields, "verdict").and_then(Judgement::parse);
    land(&session, &to, result, |_| match verdict {
        Some(Judgement::ShouldNotHaveHappened) => {
            format!("Marked {id} as should not have happened.")
        }
        _ => format!("Marked {id} as looks right."),
    })
    .await
}

async fn judge_many(
    State(state): State<AppState>,
    user: Option<Extension<CurrentUser>>,
    session: Session,
    body: Bytes,
) -> Response {
    let Some(Extension(user)) = user else {
        return Redirect::to("/login?next=%2Finbox%2Fafter").into_response();
    };
    let fields = form_fields(&body);
    let picks: Vec<String> = fields
        .iter()
        .filter(|(k, _)| k == "pick")
        .map(|(_, v)| v.clone())
        .collect();
    let result = judge(&state, &user, &picks, Judgement::Fine, None).await;
    land(&session, &back_to(&fields), result, |n| {
        if n == 1 {
            "Marked 1 item as looks right.".to_owned()
        } else {
            format!("Marked {n} items as looks right.")
        }
    })
    .await
}
