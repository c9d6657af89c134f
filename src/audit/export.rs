//! Exports for auditors: any filtered view of the trail as CSV or JSON Lines, streamed a page at
//! a time so memory stays flat however many events match; and the signed evidence bundle.
//! Every export is itself recorded in the trail before the first byte is sent.

use super::explorer::AuditFilter;
use super::queries::{events_after, EventQuery, FullEvent};
use crate::accounts::{CurrentUser, Role};
use crate::audit::repo::{append, Actor};
use crate::server::{now_ms, AppState, Db};
use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Extension, Router};
use serde_json::json;

/// Events read per query while streaming.
const CHUNK: i64 = 2_000;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/audit/export.csv", get(csv_export))
        .route("/audit/export.jsonl", get(jsonl_export))
        .route("/audit/export/bundle", get(super::bundle::download))
}

/// Why an export was not started.
pub(super) enum Refusal {
    SignIn,
    Forbidden,
    BadFilter(String),
    Internal(String),
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::SignIn => Redirect::to("/login?next=%2Faudit").into_response(),
            Refusal::Forbidden => {
                (StatusCode::FORBIDDEN, "You are not allowed to do that.").into_response()
            }
            Refusal::BadFilter(why) => (StatusCode::BAD_REQUEST, why).into_response(),
            Refusal::Internal(why) => (StatusCode::INTERNAL_SERVER_ERROR, why).into_response(),
        }
    }
}

/// Who may export: auditors and admins.
pub(super) fn exporter(user: Option<Extension<CurrentUser>>) -> Result<CurrentUser, Refusal> {
    match user {
        None => Err(Refusal::SignIn),
        Some(Extension(u)) if u.has(Role::Auditor) || u.has(Role::Admin) => Ok(u),
        Some(_) => Err(Refusal::Forbidden),
    }
}

/// Validates the filter; a bad value is named.
pub(super) fn checked(filter: &AuditFilter) -> Result<EventQuery, Refusal> {
    EventQuery::from_filter(filter).map_err(|e| Refusal::BadFilter(e.to_string()))
}

/// Records that `user` exported `what` with `filter`, in its own transaction.
pub(super) async fn record_export(
    db: &Db,
    user: &CurrentUser,
    what: &str,
    filter: &AuditFilter,
) -> Result<(), Refusal> {
    let result = async {
        let mut tx = db.begin_write().await?;
        append(
            &mut tx,
            &Actor::User(user.id.clone()),
            "audit_exported",
            None,
            json!({"format": what, "filter": filter.query_string()}),
            now_ms(),
        )
        .await?;
        tx.commit().await
    }
    .await;
    result.map_err(|e| Refusal::Internal(crate::error::internal(e).to_string()))
}

/// How an export encodes its events.
#[derive(Clone, Copy)]
pub(super) enum Format {
    Csv,
    Jsonl,
}

/// The next page of matching events after `after`, encoded: `(bytes, last sequence number,
/// events read)`. JSON Lines on SQLite come ready-made from the database
/// ([`super::queries::jsonl_after_sqlite`]); everything else is read as rows and encoded here.
async fn encoded_page(
    db: &Db,
    q: &EventQuery,
    after: i64,
    format: Format,
) -> Result<(Vec<u8>, Option<i64>, i64), sqlx::Error> {
    if let (Format::Jsonl, Db::Sqlite(pool)) = (format, db) {
        let page = super::queries::jsonl_after_sqlite(pool, q, after, CHUNK).await?;
        return Ok(match page {
            Some((mut lines, last, count)) => {
                lines.push('\n');
                (lines.into_bytes(), Some(last), count)
            }
            None => (Vec::new(), None, 0),
        });
    }
    let events = events_after(db, q, after, CHUNK).await?;
    let bytes = match format {
        Format::Csv => encode_csv(&events),
        Format::Jsonl => encode_jsonl(&events),
    };
    Ok((bytes, events.last().map(|e| e.seq), events.len() as i64))
}

/// A stream of encoded chunks: each page of matching events, oldest first. A separate task
/// reads and encodes the next pages while the current one is sent (at most two pages wait, so
/// memory stays flat); it stops when the client goes away.
pub(super) fn event_stream(
    db: Db,
    q: EventQuery,
    header: Option<Vec<u8>>,
    format: Format,
) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, sqlx::Error>>(2);
    tokio::spawn(async move {
        let mut after = 0_i64;
        loop {
            let (page, last, full) = match encoded_page(&db, &q, after, format).await {
                Ok((bytes, last, count)) => (Ok(bytes), last, count == CHUNK),
                Err(e) => (Err(e), None, false),
            };
            let failed = page.is_err();
            let empty = matches!(&page, Ok(bytes) if bytes.is_empty());
            if (!empty && tx.send(page).await.is_err()) || failed || !full {
                break;
            }
            after = last.unwrap_or(after);
        }
    });
    let first = futures::stream::iter(header.map(|h| Ok(Bytes::from(h))));
    let pages = futures::stream::unfold(rx, move |mut rx| async move {
        let chunk = match rx.recv().await? {
            Ok(bytes) => Ok(Bytes::from(bytes)),
            Err(e) => {
                tracing::error!("audit export stopped: {e}");
                Err(std::io::Error::other("the export could not be completed"))
            }
        };
        Some((chunk, rx))
    });
    // Fused: the HTTP body may poll once more after the end, which `unfold` does not allow.
    futures::StreamExt::fuse(futures::StreamExt::chain(first, pages))
}

pub const CSV_COLUMNS: [&str; 11] = [
    "seq",
    "occurred_at",
    "occurred_at_ms",
    "actor_kind",
    "actor_id",
    "actor_name",
    "event_type",
    "request_id",
    "detail",
    "prev_hash",
    "hash",
];

fn csv_header() -> Vec<u8> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let _ = w.write_record(CSV_COLUMNS);
    w.into_inner().unwrap_or_default()
}

pub fn encode_csv(events: &[FullEvent]) -> Vec<u8> {
    let mut w = csv::Writer::from_writer(Vec::with_capacity(events.len() * 300));
    for e in events {
        let _ = w.write_record([
            e.seq.to_string().as_str(),
            &crate::domain::time::iso_utc(e.occurred_at),
            &e.occurred_at.to_string(),
            &e.actor_kind,
            e.actor_id.as_deref().unwrap_or(""),
            e.actor_name.as_deref().unwrap_or(""),
            &e.event_type,
            e.request_id.as_deref().unwrap_or(""),
            &e.detail,
            &e.prev_hash,
            &e.hash,
        ]);
    }
    w.into_inner().unwrap_or_default()
}

pub fn encode_jsonl(events: &[FullEvent]) -> Vec<u8> {
    let mut out = Vec::with_capacity(events.len() * 400);
    for e in events {
        if serde_json::to_writer(&mut out, e).is_ok() {
            out.push(b'\n');
        }
    }
    out
}

fn attachment(name: &str, content_type: &str, body: Body) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type.to_owned()),
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

fn file_name(ext: &str) -> String {
    let day = &crate::domain::time::iso_utc(now_ms())[..10];
    format!("countersign-audit-{day}.{ext}")
}

async fn csv_export(
    State(state): State<AppState>,
    user: Option<Extension<CurrentUser>>,
    Query(filter): Query<AuditFilter>,
) -> Response {
    let user = match exporter(user) {
        Ok(u) => u,
        Err(r) => return r.into_response(),
    };
    let q = match checked(&filter) {
        Ok(q) => q,
        Err(r) => return r.into_response(),
    };
    if let Err(r) = record_export(&state.db, &user, "csv", &filter).await {
        return r.into_response();
    }
    let body = Body::from_stream(event_stream(
        state.db.clone(),
        q,
        Some(csv_header()),
        Format::Csv,
    ));
    attachment(&file_name("csv"), "text/csv; charset=utf-8", body)
}

async fn jsonl_export(
    State(state): State<AppState>,
    user: Option<Extension<CurrentUser>>,
    Query(filter): Query<AuditFilter>,
) -> Response {
    let user = match exporter(user) {
        Ok(u) => u,
        Err(r) => return r.into_response(),
    };
    let q = match checked(&filter) {
        Ok(q) => q,
        Err(r) => return r.into_response(),
    };
    if let Err(r) = record_export(&state.db, &user, "jsonl", &filter).await {
        return r.into_response();
    }
    let body = Body::from_stream(event_stream(state.db.clone(), q, None, Format::Jsonl));
    attachment(&file_name("jsonl"), "application/x-ndjson", body)
}
