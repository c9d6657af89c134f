//! A request's timeline for auditors: every event about one request, oldest first, and for each
//! moment that involved a state (received, viewed, decided, escalated) the exact state version
//! the person saw, rendered, with what changed since the state shown before it (invariant 6).

use crate::error::AppError;
use crate::shell::ErrorNotice;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Moment {
    pub seq: i64,
    pub occurred_at: i64,
    pub actor: String,
    pub event_type: String,
    pub detail: String,
    /// The state version this moment was about, when it names one.
    pub state_version: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StateVersion {
    pub version: i64,
    pub content_sha256: String,
    /// The snapshot exactly as stored (JSON text).
    pub snapshot: String,
    pub cause: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Timeline {
    pub id: String,
    pub title: String,
    pub status: String,
    pub moments: Vec<Moment>,
    pub states: Vec<StateVersion>,
}

#[server]
pub async fn load_timeline(id: String) -> Result<Timeline, AppError> {
    use crate::accounts::Role;
    crate::accounts::session::require_any_role(&[Role::Auditor, Role::Admin])?;
    let state = crate::server::state()?;
    if id.len() > 100 {
        return Err(AppError::NotFound);
    }
    ssr::timeline(&state.db, &id).await
}

#[cfg(feature = "ssr")]
mod ssr {
    use super::*;
    use crate::on_db;
    use crate::server::Db;

    pub async fn timeline(db: &Db, id: &str) -> Result<Timeline, AppError> {
        let head: Option<(String, String, String)> = on_db!(db, |p| sqlx::query_as(
            "SELECT CASE WHEN title = '' THEN action_type ELSE title END, status, id \
             FROM action_requests WHERE id = $1"
        )
        .bind(id)
        .fetch_optional(p)
        .await)?;
        let Some((title, status, id)) = head else {
            return Err(AppError::NotFound);
        };
        type EventRow = (i64, i64, String, Option<String>, String, String);
        let events: Vec<EventRow> = on_db!(db, |p| {
            sqlx::query_as(
            "SELECT e.seq, e.occurred_at, e.actor_kind, COALESCE(u.display_name, a.name, e.actor_id), \
             e.event_type, e.detail FROM audit_events e \
             LEFT JOIN users u ON e.actor_kind = 'user' AND u.id = e.actor_id \
             LEFT JOIN agents a ON e.actor_kind = 'agent' AND a.id = e.actor_id \
             WHERE e.request_id = $1 ORDER BY e.seq"
        )
        .bind(&id)
        .fetch_all(p)
        .await
        })?;
        let states: Vec<(i64, String, String, String, i64)> = on_db!(db, |p| sqlx::query_as(
            "SELECT version, content_sha256, snapshot, cause, created_at FROM request_states \
             WHERE request_id = $1 ORDER BY version"
        )
        .bind(&id)
        .fetch_all(p)
        .await)?;
        Ok(Timeline {
            id,
            title,
            status,
            moments: events
                .into_iter()
                .map(|(seq, occurred_at, kind, actor, event_type, detail)| {
                    let state_version = serde_json::from_str::<serde_json::Value>(&detail)
                        .ok()
                        .and_then(|d| d["state_version"].as_i64());
                    Moment {
                        seq,
                        occurred_at,
                        actor: actor.unwrap_or(kind),
                        event_type,
                        detail,
                        state_version,
                    }
                })
                .collect(),
            states: states
                .into_iter()
                .map(
                    |(version, content_sha256, snapshot, cause, created_at)| StateVersion {
                        version,
                        content_sha256,
                        snapshot,
                        cause,
                        created_at,
                    },
                )
                .collect(),
        })
    }
}

#[component]
pub fn TimelinePage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.read().get("id").unwrap_or_default();
    let data = Resource::new(id, load_timeline);
    view! {
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                match data.await {
                    Err(e) => view! { <Title text="Timeline"/><ErrorNotice error=e/> }.into_any(),
                    Ok(t) => view! { <TimelineView t/> }.into_any(),
                }
            })}
        </Suspense>
    }
}

/// Sentences for the moments people care about most; the event type otherwise.
fn describe(m: &Moment) -> String {
    let v = m
        .state_version
        .map(|v| format!(" state version {v}"))
        .unwrap_or_default();
    match m.event_type.as_str() {
        "request_gated" => format!("{} submitted it;{v} received and gated", m.actor),
        "request_viewed" => format!("{} opened it and saw{v}", m.actor),
        "decision" => format!("{} decided on{v}", m.actor),
        "escalated" => format!("Escalated at{v}"),
        "expired" => format!("Expired at{v}"),
        "withdrawn" => format!("{} withdrew it", m.actor),
        other => format!("{}: {}", m.actor, other.replace('_', " ")),
    }
}

#[component]
fn TimelineView(t: Timeline) -> impl IntoView {
    use crate::domain::time::iso_utc;
    let snapshot_of = |v: i64| t.states.iter().find(|s| s.version == v).cloned();
    let mut shown: Option<(i64, i64)> = None; // (state version, seq) last rendered
    let moments = t
        .moments
        .iter()
        .map(|m| {
            let state = m.state_version.and_then(snapshot_of);
            let since = shown;
            if let Some(v) = m.state_version {
                shown = Some((v, m.seq));
            }
            let seen = state.map(|s| {
                let change = match since {
                    None => view! { <p class="muted">"The first state anyone saw."</p> }.into_any(),
                    Some((v, seq)) if v == s.version => view! {
                        <p class="muted" data-testid="unchanged">{format!("Unchanged since event #{seq} (state version {v}).")}</p>
                    }.into_any(),
                    Some((v, _)) => {
                        let before = t.states.iter().find(|x| x.version == v).map(|x| x.snapshot.clone()).unwrap_or_default();
                        view! {
                            <p>{format!("Changed since state version {v}:")}</p>
                            <crate::inbox::detail::Changes before payload=s.snapshot.clone()/>
                        }.into_any()
                    }
                };
                view! {
                    <details class="snapshot" data-testid="snapshot">
                        <summary>{format!("State version {} as seen (SHA-256 {}…)", s.version, &s.content_sha256[..12.min(s.content_sha256.len())])}</summary>
                        <Snapshot text=s.snapshot.clone()/>
                    </details>
                    {change}
                }
            });
            view! {
                <li data-seq=m.seq data-event=m.event_type.clone()>
                    <p><time datetime=iso_utc(m.occurred_at)>{iso_utc(m.occurred_at)}</time>" · #"{m.seq}" · "<strong>{describe(m)}</strong></p>
                    <p class="detail"><code>{m.detail.clone()}</code></p>
                    {seen}
                </li>
            }
        })
        .collect_view();
    view! {
        <Title text=format!("Timeline: {}", t.title)/>
        <p class="crumbs"><a href="/audit">"← Audit"</a>" · "<a href=format!("/inbox/{}", t.id)>"Open the request"</a></p>
        <div class="page-head">
            <h1>{format!("Timeline: {}", t.title)}</h1>
            <span class="muted">{t.status.replace('_', " ")}</span>
        </div>
        <p class="exports">"Export this request: "
            <a href=format!("/audit/export.csv?request={}", t.id) download>"CSV"</a>" · "
            <a href=format!("/audit/export/bundle?request={}", t.id) download>"Evidence bundle"</a>
        </p>
        <ol class="timeline" data-testid="timeline">{moments}</ol>
    }
}

/// A snapshot rendered for people: the facts first, then the payload and the record as it was.
#[component]
fn Snapshot(text: String) -> impl IntoView {
    let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    let scalar = |k: &str| match &v[k] {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) if s.is_empty() => None,
        serde_json::Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    };
    let amount =
        crate::domain::policy::money_fact(v["amount_minor"].as_i64(), v["currency"].as_str())
            .map(|m| m.to_string());
    let pretty = |x: &serde_json::Value| serde_json::to_string_pretty(x).unwrap_or_default();
    let facts = [
        ("Action", scalar("action_type")),
        ("Title", scalar("title")),
        ("Amount", amount),
        ("Counterparty", scalar("counterparty")),
        ("Customer tier", scalar("customer_tier")),
        ("Records", scalar("record_count")),
        ("Recipients", scalar("recipient_count")),
        ("Acting for", scalar("acting_for")),
        ("Confidence", scalar("confidence")),
        ("Reasoning", scalar("reasoning")),
    ];
    view! {
        <dl class="facts-list">
            {facts.into_iter().filter_map(|(k, val)| val.map(|val| view! { <dt>{k}</dt><dd>{val}</dd> })).collect_view()}
        </dl>
        <h4>"Payload"</h4>
        <pre class="json" data-testid="snapshot-payload">{pretty(&v["payload"])}</pre>
        {(!v["current_state"].is_null()).then(|| view! { <h4>"Record before"</h4><pre class="json">{pretty(&v["current_state"])}</pre> })}
    }
}
