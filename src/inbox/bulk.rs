//! `POST /inbox/bulk`: approve several low-risk requests at once from the inbox list.
//!
//! The form carries one `pick=<request id>@<state version>` per ticked row and `action=approve`.
//! Only `review`-tier requests of gates that allow it (`bulk_approve`, on by default) qualify;
//! `dual` never does, since two independent people must each look. The batch is all or nothing:
//! every pick is checked first (open, the version the reviewer saw, not made on their behalf,
//! a gate they may review), and any refusal names the request and changes nothing. Each
//! approval is then its own decision with its own audit event, approval token, webhook and
//! breaker bookkeeping (the single-decision path's `conclude`), all in one transaction.

use crate::accounts::session::{set_flash, Flash};
use crate::accounts::CurrentUser;
use crate::audit::repo::{append, Actor};
use crate::domain::status::Status;
use crate::error::AppError;
use crate::inbox::after_fact::handlers::form_fields;
use crate::requests::lifecycle::{conclude, current};
use crate::requests::repo::{self as requests, NewDecision};
use crate::server::{ids, now_ms, AppState};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::post;
use axum::{Extension, Router};
use serde_json::{json, Value};
use tower_sessions::Session;

/// The most requests approved in one go; a page of the inbox holds fewer.
pub const MAX_PICKS: usize = 200;

pub fn routes() -> Router<AppState> {
    Router::new().route("/inbox/bulk", post(bulk_form))
}

/// Reads `pick` values (`req_...@3`), naming the first malformed one.
pub fn parse_picks<'a>(
    values: impl IntoIterator<Item = &'a str>,
) -> Result<Vec<(String, i64)>, AppError> {
    let mut picks: Vec<(String, i64)> = Vec::new();
    for v in values {
        let bad = || {
            AppError::invalid(
                "pick",
                format!("{v:?} is not a request and its version (req_…@N); reload the inbox"),
            )
        };
        let (id, version) = v.rsplit_once('@').ok_or_else(bad)?;
        let version = version
            .parse::<i64>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(bad)?;
        if id.is_empty()
            || id.len() > 64
            || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return Err(bad());
        }
        if picks.iter().any(|(p, _)| p == id) {
            return Err(AppError::invalid("pick", format!("{id} is selected twice")));
        }
        picks.push((id.to_owned(), version));
    }
    if picks.is_empty() {
        return Err(AppError::invalid(
            "pick",
            "select at least one request to approve",
        ));
    }
    if picks.len() > MAX_PICKS {
        return Err(AppError::invalid(
            "pick",
            format!("approve at most {MAX_PICKS} requests at a time"),
        ));
    }
    Ok(picks)
}

/// Approves every pick, or none. Returns how many were approved.
pub async fn approve_all(
    state: &AppState,
    reviewer: &CurrentUser,
    picks: &[(String, i64)],
) -> Result<usize, AppError> {
    if !reviewer.may_decide() {
        return Err(AppError::Forbidden);
    }
    let now = now_ms();
    let mut tx = state.db.begin_write().await?;
    let teams = crate::gates::eligibility::teams_of_tx(&mut tx, &reviewer.id).await?;
    let refuse =
        |id: &str, why: &str| AppError::Conflict(format!("{id}: {why} Nothing was approved."));
    let mut checked = Vec::with_capacity(picks.len());
    // `current` locks each row on PostgreSQL; taking the locks in one order means two bulk
    // approvals over overlapping picks wait for each other instead of deadlocking.
    let mut in_lock_order: Vec<&(String, i64)> = picks.iter().collect();
    in_lock_order.sort();
    for (id, version) in in_lock_order {
        let now_is = match current(&mut tx, id).await {
            Err(AppError::NotFound) => {
                return Err(AppError::invalid(
                    "pick",
                    format!("{id} is not a request. Nothing was approved."),
                ))
            }
            other => other?,
        };
        let status: Status = now_is.status.parse().map_err(crate::error::internal)?;
        if !status.is_open() {
            return Err(refuse(
                id,
                &format!("it is already {}.", status.label().to_lowercase()),
            ));
        }
        match now_is.tier.as_str() {
            "review" => {}
            "dual" => {
                return Err(refuse(
                    id,
                    "it needs two independent reviews (dual) and cannot be approved in bulk; open it and review it on its own.",
                ))
            }
            other => {
                return Err(refuse(
                    id,
                    &format!("it is a {other} request; only review-tier requests can be approved together."),
                ))
            }
        }
        if now_is.state_version != *version {
            return Err(refuse(
                id,
                "it changed since you opened the inbox. Review the new version before deciding.",
            ));
        }
        if now_is
            .acting_for
            .as_deref()
            .is_some_and(|a| a == reviewer.id || a.eq_ignore_ascii_case(&reviewer.email))
        {
            return Err(refuse(
                id,
                "it was made on your behalf, and you cannot review it.",
            ));
        }
        let settings = crate::gates::eligibility::settings_of_tx(&mut tx, id).await?;
        if !settings.bulk_approve {
            return Err(refuse(
                id,
                "its gate does not allow bulk approval; approve it on its own page.",
            ));
        }
        if let Some(why) = crate::gates::eligibility::why_not(&settings, reviewer, &teams) {
            return Err(refuse(id, &why));
        }
        let payload: Value =
            serde_json::from_str(&now_is.payload).map_err(crate::error::internal)?;
        checked.push((id, *version, payload, now_is.callback_url, settings.breaker));
    }
    let mut alerts = Vec::new();
    for (id, version, payload, callback_url, breaker) in &checked {
        requests::insert_decision(
            &mut tx,
            &NewDecision {
                id: ids::new_id("dec"),
                request_id: (*id).clone(),
                reviewer_id: Some(reviewer.id.clone()),
                kind: "approve",
                state_version: *version,
                edited_payload: None,
                reason_code: None,
                reason_text: None,
                created_at: now,
            },
        )
        .await?;
        append(
            &mut tx,
            &Actor::User(reviewer.id.clone()),
            "decision",
            Some(id.as_str()),
            json!({"kind": "approve", "state_version": version, "reason_code": null, "reason": null, "edited_payload": null, "bulk": checked.len()}),
            now,
        )
        .await?;
        let done = conclude(
            &mut tx,
            state,
            id,
            Status::Approved,
            Some(payload),
            callback_url.as_deref(),
            *breaker,
            now,
        )
        .await?;
        alerts.extend(done.opened);
    }
    tx.commit().await?;
    for alert in alerts {
        tracing::warn!("{alert}");
    }
    state.notify_changed();
    for (id, ..) in &checked {
        crate::server::live::publish(state, crate::server::live::LiveEvent::decided(id.as_str()));
    }
    Ok(checked.len())
}

/// A refusal as a page of its own (the batch changed nothing), with the status that says why.
fn refused(e: &AppError) -> Response {
    let status = StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
    let message = html_escape(&e.to_string());
    let body = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>Nothing was approved · Countersign</title>\
         <link rel=\"stylesheet\" href=\"/pkg/countersign.css\"></head><body><main id=\"main\">\
         <section class=\"empty-state\"><h1>Nothing was approved</h1>\
         <p class=\"error\" role=\"alert\" data-testid=\"bulk-error\">{message}</p>\
         <p><a href=\"/inbox\">Back to the inbox</a></p></section></main></body></html>"
    );
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response()
}

fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

async fn bulk_form(
    State(state): State<AppState>,
    user: Option<Extension<CurrentUser>>,
    session: Session,
    body: Bytes,
) -> Response {
    let Some(Extension(user)) = user else {
        return Redirect::to("/login?next=%2Finbox").into_response();
    };
    let fields = form_fields(&body);
    let action = fields
        .iter()
        .find(|(k, _)| k == "action")
        .map(|(_, v)| v.as_str());
    let result = match action {
        Some("approve") => match parse_picks(
            fields
                .iter()
                .filter(|(k, _)| k == "pick")
                .map(|(_, v)| v.as_str()),
        ) {
            Ok(picks) => approve_all(&state, &user, &picks).await,
            Err(e) => Err(e),
        },
        _ => Err(AppError::invalid(
            "action",
            "the only bulk action is approve",
        )),
    };
    match result {
        Ok(n) => {
            let notice = if n == 1 {
                "Approved 1 request".to_owned()
            } else {
                format!("Approved {n} requests")
            };
            set_flash(
                &session,
                Flash {
                    notice: Some(notice),
                    ..Flash::default()
                },
            )
            .await;
            Redirect::to("/inbox").into_response()
        }
        Err(e) => refused(&e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_are_parsed_and_bad_ones_named() {
        assert_eq!(
            parse_picks(["req_a@1", "req_b@3"]).unwrap(),
            vec![("req_a".to_owned(), 1), ("req_b".to_owned(), 3)]
        );
        for bad in [
            vec![],
            vec!["req_a"],
            vec!["req_a@"],
            vec!["req_a@0"],
            vec!["req_a@x"],
            vec!["@2"],
            vec!["req a@2"],
            vec!["req_a@1", "req_a@1"],
        ] {
            assert!(
                matches!(parse_picks(bad.clone()), Err(AppError::Invalid { ref field, .. }) if field == "pick"),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn refusals_are_escaped() {
        assert_eq!(html_escape("<b>&\"'"), "&lt;b&gt;&amp;&quot;&#39;");
    }
}
