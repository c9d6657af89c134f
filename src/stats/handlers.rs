//! Plain HTTP routes of the statistics screens: the CSV downloads (same filters as `/stats`,
//! same roles) and "Save as draft" from the tuning screen (admins only), which writes the
//! candidate as the gate's draft through the gates' maker-checker flow and changes nothing when
//! the input is bad.

use super::params::{StatsQuery, TuneQuery, WindowQuery};
use super::READERS;
use crate::accounts::session::{set_flash, Flash};
use crate::accounts::CurrentUser;
use crate::admin::handlers::Admin;
use crate::error::AppError;
use crate::gates::drafts::{self, DraftError};
use crate::server::{now_ms, AppState};
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Form, Router};
use serde::Deserialize;
use tower_sessions::Session;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/stats.csv", get(download))
        .route("/stats/gates/{key}/draft", post(save_draft))
}

/// `/stats.csv`'s query: the page's filters plus which table.
#[derive(Debug, Deserialize)]
struct CsvQuery {
    days: Option<String>,
    from: Option<String>,
    to: Option<String>,
    group: Option<String>,
    gate: Option<String>,
    table: Option<String>,
}

fn refuse(e: AppError) -> Response {
    let status = StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
    (status, e.to_string()).into_response()
}

async fn download(
    State(state): State<AppState>,
    user: Option<Extension<CurrentUser>>,
    Query(q): Query<CsvQuery>,
) -> Response {
    match user {
        None => return Redirect::to("/login?next=%2Fstats").into_response(),
        Some(Extension(u)) if READERS.iter().any(|r| u.has(*r)) => {}
        Some(_) => return refuse(AppError::Forbidden),
    }
    let table = q.table.as_deref().unwrap_or("groups");
    if !matches!(table, "groups" | "trend") {
        return refuse(AppError::invalid("table", "is groups or trend"));
    }
    let query = StatsQuery {
        window: WindowQuery {
            days: q.days,
            from: q.from,
            to: q.to,
        },
        group: q.group,
        gate: q.gate,
    };
    let data = match super::queries::stats(&state.db, &query, now_ms()).await {
        Ok(d) => d,
        Err(e) => return refuse(e),
    };
    let body = if table == "trend" {
        super::csv::trend_csv(&data.trend)
    } else {
        super::csv::groups_csv(&data.groups)
    };
    let day = |ms: i64| crate::domain::time::iso_utc(ms)[..10].to_owned();
    let name = format!(
        "countersign-stats-{}-{}-to-{}.csv",
        if table == "trend" {
            "trend".to_owned()
        } else {
            format!("by-{}", data.group_name)
        },
        day(data.window.from_ms),
        day(data.window.to_ms - 1)
    );
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        body,
    )
        .into_response()
}

/// The tuning screen's candidate, posted back.
#[derive(Debug, Deserialize)]
struct SaveForm {
    #[serde(default)]
    days: Option<String>,
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    to: Option<String>,
    #[serde(default)]
    t: Option<String>,
    #[serde(default)]
    value: Option<String>,
    #[serde(default)]
    rule: Option<String>,
    #[serde(default)]
    tier: Option<String>,
    #[serde(default)]
    replace_draft: Option<String>,
}

async fn save_draft(
    State(state): State<AppState>,
    Admin(admin): Admin,
    session: Session,
    Path(key): Path<String>,
    Form(form): Form<SaveForm>,
) -> Response {
    let query = TuneQuery {
        window: WindowQuery {
            days: form.days,
            from: form.from,
            to: form.to,
        },
        t: form.t,
        value: form.value,
        rule: form.rule,
        tier: form.tier,
    };
    let back = format!(
        "/stats/gates/{}?{}",
        crate::shell::query_escape(&key),
        query.query_string()
    );
    let replace = form.replace_draft.as_deref() == Some("yes");
    let result = save(&state, &admin, &key, &query, replace).await;
    let (flash, to) = match result {
        Ok(version) => (
            Flash {
                notice: Some(format!(
                    "Saved as draft version {version} of gate {key}. Review the changes and publish; a change that loosens the policy needs a second admin."
                )),
                ..Flash::default()
            },
            format!("/gates/{}", crate::shell::query_escape(&key)),
        ),
        Err(e) => (
            Flash {
                error: Some(e.to_string()),
                ..Flash::default()
            },
            back,
        ),
    };
    set_flash(&session, flash).await;
    Redirect::to(&to).into_response()
}

/// Builds the candidate from the live gate exactly as the tuning screen did, and saves it as the
/// gate's draft. Refused, with nothing written, for bad input or an existing draft the admin did
/// not agree to replace.
async fn save(
    state: &AppState,
    admin: &CurrentUser,
    key: &str,
    query: &TuneQuery,
    replace: bool,
) -> Result<i64, AppError> {
    let (live, def, _) = super::queries::live_definition(&state.db, key).await?;
    let Some(candidate) = query.candidate(&def)? else {
        return Err(AppError::invalid(
            "candidate",
            "choose a threshold or a rule tier to change first",
        ));
    };
    crate::domain::backtest::candidate(&live.policy, candidate.definition.clone())
        .map_err(|e| AppError::invalid("candidate", e.to_string()))?;
    let existing = drafts::versions(&state.db, key)
        .await?
        .into_iter()
        .find(|v| v.published_at.is_none());
    if let Some(d) = existing.filter(|_| !replace) {
        return Err(AppError::Conflict(format!(
            "Gate {key} already has a draft (version {}); tick \"Replace the gate's current draft\" to overwrite it, or publish or discard it first.",
            d.version
        )));
    }
    let definition = candidate.definition;
    drafts::edit_draft(
        &state.db,
        &admin.id,
        key,
        move |d| {
            *d = definition;
            Ok(())
        },
        now_ms(),
    )
    .await
    .map_err(|e| match e {
        DraftError::Refused(why) => AppError::Conflict(why),
        DraftError::Db(e) => e.into(),
    })
}
