//! The audit explorer: every event, newest first, filtered by type, actor, request, gate, agent
//! and time range (all in the URL), with keyset paging, a per-person summary, exports and a
//! Verify button. Auditors and admins only.

use crate::accounts::pages::{take_flash, Messages};
use crate::error::AppError;
use crate::shell::ErrorNotice;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;
use serde::{Deserialize, Serialize};

pub const PAGE_SIZE: i64 = 100;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRow {
    pub seq: i64,
    pub occurred_at: i64,
    pub actor_kind: String,
    pub actor: Option<String>,
    pub actor_id: Option<String>,
    pub event_type: String,
    pub request_id: Option<String>,
    pub detail: String,
    pub hash: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditPage {
    pub rows: Vec<AuditRow>,
    /// Keyset position for the next (older) page.
    pub next_before: Option<i64>,
    pub event_types: Vec<String>,
    pub gates: Vec<String>,
    /// Event counts by type when the filter names a person.
    pub summary: Vec<(String, i64)>,
    /// The Ed25519 key that signs checkpoints and bundles, for auditors to pin.
    pub public_key: String,
    pub retention: Option<Retention>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Retention {
    pub days: u32,
    pub older_events: i64,
}

/// Filters as they arrive from the URL; every one optional.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AuditFilter {
    pub event_type: Option<String>,
    pub actor: Option<String>,
    pub request: Option<String>,
    pub gate: Option<String>,
    pub agent: Option<String>,
    /// First day included, `YYYY-MM-DD` (UTC).
    pub from: Option<String>,
    /// Last day included, `YYYY-MM-DD` (UTC).
    pub to: Option<String>,
    pub before: Option<String>,
}

impl AuditFilter {
    pub fn from_query(q: &leptos_router::params::ParamsMap) -> AuditFilter {
        AuditFilter {
            event_type: q.get("event_type"),
            actor: q.get("actor"),
            request: q.get("request"),
            gate: q.get("gate"),
            agent: q.get("agent"),
            from: q.get("from"),
            to: q.get("to"),
            before: q.get("before"),
        }
    }

    /// The filter as a query string (without `before`), for paging and export links.
    pub fn query_string(&self) -> String {
        [
            ("event_type", &self.event_type),
            ("actor", &self.actor),
            ("request", &self.request),
            ("gate", &self.gate),
            ("agent", &self.agent),
            ("from", &self.from),
            ("to", &self.to),
        ]
        .into_iter()
        .filter_map(|(k, v)| {
            v.as_ref()
                .filter(|v| !v.trim().is_empty())
                .map(|v| format!("{k}={}", crate::shell::query_escape(v.trim())))
        })
        .collect::<Vec<_>>()
        .join("&")
    }
}

#[server]
pub async fn load_audit(filter: AuditFilter) -> Result<AuditPage, AppError> {
    use crate::accounts::Role;
    crate::accounts::session::require_any_role(&[Role::Auditor, Role::Admin])?;
    let state = crate::server::state()?;
    let before = match filter.before.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(b) => Some(
            b.parse::<i64>()
                .map_err(|_| AppError::invalid("before", "must be an event sequence number"))?,
        ),
    };
    let q = super::queries::EventQuery::from_filter(&filter)?;
    let mut page = super::queries::page(&state.db, &q, before, PAGE_SIZE).await?;
    if q.actor.is_some() {
        page.summary = super::queries::summary(&state.db, &q).await?;
    }
    page.public_key = state.audit_key.public_hex();
    if let Some(days) = state.config.audit_retention_days {
        let cutoff = crate::server::now_ms() - i64::from(days) * 86_400_000;
        page.retention = Some(Retention {
            days,
            older_events: super::queries::count_older_than(&state.db, cutoff).await?,
        });
    }
    Ok(page)
}

#[component]
pub fn AuditExplorer() -> impl IntoView {
    let query = use_query_map();
    let filter = move || AuditFilter::from_query(&query.read());
    let data = Resource::new(filter, load_audit);
    let flash = Resource::new(|| (), |_| take_flash());
    view! {
        <Title text="Audit"/>
        <div class="page-head">
            <h1>"Audit"</h1>
            <form method="post" action="/audit/verify"><button type="submit">"Verify the chain"</button></form>
        </div>
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                let messages = flash.await.unwrap_or_default();
                let f = filter();
                match data.await {
                    Err(e) => view! { <Messages view=messages/><ErrorNotice error=e/> }.into_any(),
                    Ok(page) => view! { <Messages view=messages/><Events page f/> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn Events(page: AuditPage, f: AuditFilter) -> impl IntoView {
    use crate::domain::time::iso_utc;
    let selected = f.event_type.clone().unwrap_or_default();
    let selected_gate = f.gate.clone().unwrap_or_default();
    let query = f.query_string();
    let joined = |base: &str| {
        if query.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{query}")
        }
    };
    let next = page.next_before.map(|b| {
        if query.is_empty() {
            format!("/audit?before={b}")
        } else {
            format!("/audit?{query}&before={b}")
        }
    });
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    let person = page
        .rows
        .first()
        .and_then(|r| r.actor.clone())
        .or_else(|| f.actor.clone())
        .unwrap_or_default();
    view! {
        <form class="filters" method="get" action="/audit" role="search">
            <label>"Event "
                <select name="event_type">
                    <option value="" selected=selected.is_empty()>"All"</option>
                    {page.event_types.iter().map(|t| view! { <option value=t.clone() selected=*t == selected>{t.clone()}</option> }).collect_view()}
                </select>
            </label>
            <label>"Actor "<input type="text" name="actor" placeholder="email, agent or id" value=text(&f.actor)/></label>
            <label>"Request "<input type="text" name="request" placeholder="req_…" value=text(&f.request)/></label>
            <label>"Gate "
                <select name="gate">
                    <option value="" selected=selected_gate.is_empty()>"All"</option>
                    {page.gates.iter().map(|g| view! { <option value=g.clone() selected=*g == selected_gate>{g.clone()}</option> }).collect_view()}
                </select>
            </label>
            <label>"Agent "<input type="text" name="agent" placeholder="agent name" value=text(&f.agent)/></label>
            <label>"From "<input type="date" name="from" value=text(&f.from)/></label>
            <label>"To "<input type="date" name="to" value=text(&f.to)/></label>
            <button type="submit">"Apply"</button>
        </form>
        <p class="exports">"Export this view: "
            <a href=joined("/audit/export.csv") download>"CSV"</a>" · "
            <a href=joined("/audit/export.jsonl") download>"JSON Lines"</a>" · "
            <a href=joined("/audit/export/bundle") download>"Evidence bundle"</a>
        </p>
        {page.retention.clone().map(|r| view! {
            <p class="notice" data-testid="retention">{format!(
                "Retention is {} days; {} events are older. Countersign never deletes them: export an evidence bundle to archive them.",
                r.days, crate::inbox::group_digits(r.older_events)
            )}</p>
        })}
        {(!page.summary.is_empty()).then(|| view! {
            <section class="card person" data-testid="person-summary">
                <h2>{format!("Everything {person} saw and did in this range")}</h2>
                <ul class="counts">
                    {page.summary.iter().map(|(t, n)| view! { <li><code>{t.clone()}</code>" "<strong>{*n}</strong></li> }).collect_view()}
                </ul>
            </section>
        })}
        {if page.rows.is_empty() {
            view! { <section class="empty-state"><h2>"No events match"</h2><p>"Clear a filter to see more."</p></section> }.into_any()
        } else {
            view! {
                <table class="inbox audit" data-testid="audit-table">
                    <thead><tr><th scope="col">"#"</th><th scope="col">"When (UTC)"</th><th scope="col">"Who"</th><th scope="col">"Event"</th><th scope="col">"Request"</th><th scope="col">"Detail"</th><th scope="col">"Hash"</th></tr></thead>
                    <tbody>
                        {page.rows.into_iter().map(|r| {
                            let who = r.actor.clone().unwrap_or_else(|| r.actor_kind.clone());
                            let who_link = r.actor_id.clone().map(|a| format!("/audit?actor={}", crate::shell::query_escape(&a)));
                            view! {
                            <tr data-seq=r.seq>
                                <td>{r.seq}</td>
                                <td><time datetime=iso_utc(r.occurred_at)>{iso_utc(r.occurred_at)}</time></td>
                                <td>{match who_link {
                                    Some(href) => view! { <a href=href title="Everything this actor saw and did">{who}</a> }.into_any(),
                                    None => view! { <span>{who}</span> }.into_any(),
                                }}</td>
                                <td><code>{r.event_type}</code></td>
                                <td>{r.request_id.map(|id| view! { <a href=format!("/audit/requests/{id}") title="Timeline">{id.clone()}</a> })}</td>
                                <td class="detail"><code>{r.detail}</code></td>
                                <td title=r.hash.clone()><code>{r.hash[..12.min(r.hash.len())].to_owned()}"…"</code></td>
                            </tr>
                        }}).collect_view()}
                    </tbody>
                </table>
                {next.map(|href| view! { <nav class="pager" aria-label="Pages"><a href=href rel="next">"Older events →"</a></nav> })}
            }.into_any()
        }}
        <p class="muted key">"Checkpoints and evidence bundles are signed with Ed25519 key "<code data-testid="public-key">{page.public_key}</code>". Pin it when you verify a bundle."</p>
    }
}
