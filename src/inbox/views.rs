//! Saved views: a reviewer names the inbox view they are looking at ("my refunds over 1,000")
//! and gets it back as a link. Plain form posts, so saving works without JavaScript.

use super::listing::{InboxFilter, ListQuery};
use crate::accounts::session::{set_flash, Flash};
use crate::accounts::CurrentUser;
use crate::error::AppError;
use crate::on_db;
use crate::server::AppState;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::post;
use axum::{Extension, Form, Router};
use serde::Deserialize;
use tower_sessions::Session;

/// Enough for any reviewer's habits; a cap keeps the view bar readable.
pub const MAX_VIEWS_PER_USER: i64 = 30;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/inbox/views", post(save))
        .route("/inbox/views/{id}/delete", post(delete))
}

#[derive(Deserialize)]
pub struct SaveForm {
    name: String,
    /// The view's query string, as the inbox page put it in the form.
    query: String,
}

/// Checks a view name and a query string, returning the name and the query in its one
/// canonical spelling (so the same view saved twice reads the same).
pub fn checked_view(name: &str, query: &str) -> Result<(String, String), AppError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 80 || name.chars().any(char::is_control) {
        return Err(AppError::invalid(
            "name",
            "give the view a name of 1 to 80 characters",
        ));
    }
    let pairs = url::form_urlencoded::parse(query.trim_start_matches('?').as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect::<Vec<_>>();
    let mut filter = InboxFilter::from_pairs(pairs);
    filter.after = None;
    ListQuery::parse(&filter)?;
    Ok((name.to_owned(), filter.query()))
}

async fn save(
    State(state): State<AppState>,
    user: Option<Extension<CurrentUser>>,
    session: Session,
    Form(form): Form<SaveForm>,
) -> Response {
    let Some(Extension(user)) = user else {
        return Redirect::to("/login?next=/inbox").into_response();
    };
    match save_view(&state, &user, &form.name, &form.query).await {
        Ok((name, query)) => {
            notice(&session, None, Some(format!("Saved the view “{name}”."))).await;
            let to = if query.is_empty() {
                "/inbox".to_owned()
            } else {
                format!("/inbox?{query}")
            };
            Redirect::to(&to).into_response()
        }
        Err(e) => {
            notice(&session, Some(e.to_string()), None).await;
            let back = checked_view("x", &form.query)
                .map(|(_, q)| format!("/inbox?{q}"))
                .unwrap_or_else(|_| "/inbox".to_owned());
            Redirect::to(&back).into_response()
        }
    }
}

pub async fn save_view(
    state: &AppState,
    user: &CurrentUser,
    name: &str,
    query: &str,
) -> Result<(String, String), AppError> {
    let (name, query) = checked_view(name, query)?;
    let id = crate::server::ids::new_id("view");
    let now = crate::server::now_ms();
    let saved: Result<(), AppError> = on_db!(&state.db, |p| {
        let (count, taken): (i64, i64) = sqlx::query_as(
            "SELECT COUNT(*), COALESCE(SUM(CASE WHEN name = $2 THEN 1 ELSE 0 END), 0) \
             FROM saved_views WHERE user_id = $1",
        )
        .bind(&user.id)
        .bind(&name)
        .fetch_one(p)
        .await?;
        if taken > 0 {
            Err(AppError::Conflict(format!(
                "you already have a view named “{name}”; delete it first or pick another name"
            )))
        } else if count >= MAX_VIEWS_PER_USER {
            Err(AppError::Conflict(format!(
                "you have {count} saved views, the most we keep; delete one first"
            )))
        } else {
            sqlx::query(
                "INSERT INTO saved_views (id, user_id, name, query, created_at) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(&id)
            .bind(&user.id)
            .bind(&name)
            .bind(&query)
            .bind(now)
            .execute(p)
            .await?;
            Ok(())
        }
    });
    saved.map(|()| (name, query))
}

async fn delete(
    State(state): State<AppState>,
    user: Option<Extension<CurrentUser>>,
    session: Session,
    Path(id): Path<String>,
) -> Response {
    let Some(Extension(user)) = user else {
        return Redirect::to("/login?next=/inbox").into_response();
    };
    let deleted: Result<u64, AppError> = async {
        Ok(on_db!(&state.db, |p| {
            sqlx::query("DELETE FROM saved_views WHERE id = $1 AND user_id = $2")
                .bind(&id)
                .bind(&user.id)
                .execute(p)
                .await?
                .rows_affected()
        }))
    }
    .await;
    match deleted {
        Ok(1) => notice(&session, None, Some("Deleted the saved view.".into())).await,
        Ok(_) => {
            notice(
                &session,
                Some("That saved view is not yours or is gone.".into()),
                None,
            )
            .await
        }
        Err(e) => notice(&session, Some(e.to_string()), None).await,
    }
    Redirect::to("/inbox").into_response()
}

async fn notice(session: &Session, error: Option<String>, notice: Option<String>) {
    set_flash(
        session,
        Flash {
            error,
            notice,
            ..Flash::default()
        },
    )
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_view_is_stored_in_one_spelling() {
        let (name, query) = checked_view(
            "  My refunds over 1,000 ",
            "?sort=amount&gate=refunds&min_amount=1000&after=an.1.0.5.req_1.&q=",
        )
        .unwrap();
        assert_eq!(name, "My refunds over 1,000");
        assert_eq!(query, "gate=refunds&min_amount=1000&sort=amount");
    }

    #[test]
    fn bad_views_are_refused_by_field() {
        for (name, query, field) in [
            ("", "gate=refunds", "name"),
            (&"n".repeat(81) as &str, "", "name"),
            ("ok", "tier=urgent", "tier"),
            ("ok", "min_amount=lots", "min_amount"),
        ] {
            match checked_view(name, query) {
                Err(AppError::Invalid { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{name} {query}: {other:?}"),
            }
        }
    }
}
