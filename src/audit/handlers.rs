//! The Verify button: recompute the chain and record that it was checked.

use crate::accounts::session::{set_flash, Flash};
use crate::accounts::{CurrentUser, Role};
use crate::audit::repo::{append, Actor};
use crate::audit::verify::verify_trail;
use crate::server::{now_ms, AppState};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::post;
use axum::{Extension, Router};
use serde_json::json;
use tower_sessions::Session;

pub fn routes() -> Router<AppState> {
    Router::new().route("/audit/verify", post(verify))
}

async fn verify(
    State(state): State<AppState>,
    user: Option<Extension<CurrentUser>>,
    session: Session,
) -> Response {
    let Some(Extension(user)) = user else {
        return Redirect::to("/login?next=%2Faudit").into_response();
    };
    if !(user.has(Role::Auditor) || user.has(Role::Admin)) {
        return (StatusCode::FORBIDDEN, "You are not allowed to do that.").into_response();
    }
    let result = verify_trail(&state.db, &state.audit_key.public_hex()).await;
    let detail = match &result {
        Ok(v) => {
            json!({"ok": true, "events": v.events, "checkpoints": v.checkpoints, "head_seq": v.head_seq, "head_hash": v.head_hash})
        }
        Err(e) => json!({"ok": false, "problem": e.to_string()}),
    };
    let recorded = async {
        let mut tx = state.db.begin_write().await?;
        append(
            &mut tx,
            &Actor::User(user.id.clone()),
            "audit_verified",
            None,
            detail,
            now_ms(),
        )
        .await?;
        tx.commit().await
    }
    .await;
    if let Err(e) = recorded {
        let err = crate::error::internal(e);
        set_flash(
            &session,
            Flash {
                error: Some(err.to_string()),
                ..Flash::default()
            },
        )
        .await;
        return Redirect::to("/audit").into_response();
    }
    let flash = match result {
        Ok(v) => Flash {
            notice: Some(format!(
                "The chain verifies: {} events and {} signed checkpoints, head #{} {}.",
                v.events, v.checkpoints, v.head_seq, v.head_hash
            )),
            ..Flash::default()
        },
        Err(e) => Flash {
            error: Some(e.to_string()),
            ..Flash::default()
        },
    };
    set_flash(&session, flash).await;
    Redirect::to("/audit").into_response()
}
