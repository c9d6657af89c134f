//! Live inbox updates: a hint to open inbox pages that something changed, streamed to browsers
//! as server-sent events at `GET /inbox/events`.
//!
//! Each process keeps a local broadcast channel. On SQLite there is one process, so publishing
//! broadcasts directly. On PostgreSQL several processes may serve one database: publishing
//! broadcasts locally and also sends `pg_notify('countersign_live', …)`; every process LISTENs on
//! that channel and relays what other processes published into its own broadcast. Events are
//! hints, not a log: a browser that misses one (lagging, reconnecting) still shows the truth
//! the next time it loads the inbox, so nothing here is retried or stored.

use super::{AppState, Db};
use crate::accounts::CurrentUser;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast;

/// The PostgreSQL notification channel.
pub const CHANNEL: &str = "countersign_live";

/// What happened to which request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LiveKind {
    Submitted,
    Decided,
    Claimed,
    Released,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveEvent {
    pub kind: LiveKind,
    #[serde(rename = "id")]
    pub request_id: String,
}

impl LiveEvent {
    pub fn submitted(request_id: impl Into<String>) -> LiveEvent {
        LiveEvent {
            kind: LiveKind::Submitted,
            request_id: request_id.into(),
        }
    }
    pub fn decided(request_id: impl Into<String>) -> LiveEvent {
        LiveEvent {
            kind: LiveKind::Decided,
            request_id: request_id.into(),
        }
    }
    pub fn claimed(request_id: impl Into<String>) -> LiveEvent {
        LiveEvent {
            kind: LiveKind::Claimed,
            request_id: request_id.into(),
        }
    }
    pub fn released(request_id: impl Into<String>) -> LiveEvent {
        LiveEvent {
            kind: LiveKind::Released,
            request_id: request_id.into(),
        }
    }
}

/// What travels through `pg_notify`: the event and the process that published it, so the
/// publisher does not relay its own event a second time.
#[derive(Serialize, Deserialize)]
struct Wire {
    kind: LiveKind,
    id: String,
    origin: String,
}

/// This process's side of the live updates.
#[derive(Clone)]
pub struct LiveHub {
    tx: broadcast::Sender<LiveEvent>,
    /// Tells this process's notifications apart from other processes'.
    origin: Arc<str>,
    /// Events seen so far (published here or relayed from elsewhere): what changes when any
    /// process changed a request, for caches of what the inbox shows.
    seen: Arc<std::sync::atomic::AtomicU64>,
}

impl Default for LiveHub {
    fn default() -> Self {
        LiveHub {
            // A browser slower than this many events behind skips ahead; it is only a hint.
            tx: broadcast::channel(256).0,
            origin: super::ids::random_token().into(),
            seen: Arc::default(),
        }
    }
}

impl LiveHub {
    pub fn subscribe(&self) -> broadcast::Receiver<LiveEvent> {
        self.tx.subscribe()
    }

    /// Open event streams on this process, for `/metrics`.
    pub fn subscribers(&self) -> usize {
        self.tx.receiver_count()
    }

    /// How many events this process has seen; grows with every change anywhere.
    pub fn seen(&self) -> u64 {
        self.seen.load(std::sync::atomic::Ordering::Acquire)
    }

    fn local(&self, event: LiveEvent) {
        self.seen.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        // No subscriber is not an error: nobody has an inbox open.
        let _ = self.tx.send(event);
    }
}

/// Tells every open inbox (on every process) that `event` happened. Call after the change has
/// committed. Never blocks the caller and never fails it: on PostgreSQL the notification is
/// sent in the background, and a failure is only logged.
pub fn publish(state: &AppState, event: LiveEvent) {
    state.live.local(event.clone());
    if let Db::Postgres(pool) = &state.db {
        let wire = Wire {
            kind: event.kind,
            id: event.request_id,
            origin: state.live.origin.to_string(),
        };
        let Ok(payload) = serde_json::to_string(&wire) else {
            return;
        };
        let pool = pool.clone();
        tokio::spawn(async move {
            if let Err(e) = sqlx::query("SELECT pg_notify($1, $2)")
                .bind(CHANNEL)
                .bind(payload)
                .execute(&pool)
                .await
            {
                tracing::warn!("live update not sent to other processes: {e}");
            }
        });
    }
}

/// On PostgreSQL, relays other processes' events into this process until it ends; reconnects
/// after losing the database. Nothing to do on SQLite.
pub fn spawn_listener(state: &AppState) -> Option<tokio::task::JoinHandle<()>> {
    let Db::Postgres(pool) = &state.db else {
        return None;
    };
    let pool = pool.clone();
    let hub = state.live.clone();
    Some(tokio::spawn(async move {
        loop {
            match listen(&pool, &hub).await {
                Ok(()) => return,
                Err(e) => {
                    tracing::warn!("live updates: LISTEN failed, retrying in 1 s: {e}");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }))
}

async fn listen(pool: &sqlx::PgPool, hub: &LiveHub) -> Result<(), sqlx::Error> {
    let mut listener = sqlx::postgres::PgListener::connect_with(pool).await?;
    listener.listen(CHANNEL).await?;
    loop {
        // `recv` reconnects and re-LISTENs by itself after a lost connection; an error here
        // means reconnecting failed, and the caller starts over after a pause.
        let n = listener.recv().await?;
        match serde_json::from_str::<Wire>(n.payload()) {
            Ok(w) if *w.origin == *hub.origin => {}
            Ok(w) => hub.local(LiveEvent {
                kind: w.kind,
                request_id: w.id,
            }),
            Err(e) => tracing::warn!("live updates: unreadable notification: {e}"),
        }
    }
}

pub fn routes() -> Router<AppState> {
    Router::new().route("/inbox/events", get(events))
}

/// `GET /inbox/events`: `event: changed` with data `{"kind": …, "id": …}` for every submission,
/// decision, claim and release, plus keep-alive comments. Signed-in people only. Ends when the
/// server shuts down, so an open stream does not hold up a graceful shutdown; the browser's
/// EventSource reconnects by itself.
async fn events(State(state): State<AppState>, user: Option<Extension<CurrentUser>>) -> Response {
    if user.is_none() {
        return (
            StatusCode::UNAUTHORIZED,
            "Sign in to receive inbox updates.",
        )
            .into_response();
    }
    let rx = state.live.subscribe();
    let stream = futures::stream::unfold((rx, state), |(mut rx, state)| async move {
        loop {
            let next = tokio::select! {
                next = rx.recv() => next,
                _ = state.closed() => return None,
            };
            match next {
                Ok(event) => {
                    let data = serde_json::to_string(&event).unwrap_or_default();
                    let sse = Event::default().event("changed").data(data);
                    return Some((Ok::<_, std::convert::Infallible>(sse), (rx, state)));
                }
                // Missed some: the page reloads its list on any event anyway.
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_serialize_as_kind_and_id() {
        let e = LiveEvent::decided("req_1");
        assert_eq!(
            serde_json::to_value(&e).unwrap(),
            serde_json::json!({"kind": "decided", "id": "req_1"})
        );
        let w: Wire = serde_json::from_str(r#"{"kind":"claimed","id":"r","origin":"o"}"#).unwrap();
        assert_eq!(w.kind, LiveKind::Claimed);
    }
}
