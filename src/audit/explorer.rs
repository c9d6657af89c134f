//! The audit explorer: every event, newest first, filtered by type, actor and request (all in
//! the URL), with keyset paging and a Verify button. Auditors and admins only.

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
}

/// Filters as they arrive from the URL; every one optional.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AuditFilter {
    pub event_type: Option<String>,
    pub actor: Option<String>,
    pub request: Option<String>,
    pub before: Option<String>,
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
    let clean = |s: Option<String>, field: &str| -> Result<Option<String>, AppError> {
        match s.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()) {
            Some(v) if v.len() > 200 => Err(AppError::invalid(field, "is too long")),
            other => Ok(other),
        }
    };
    let event_type = clean(filter.event_type, "event_type")?;
    let actor = clean(filter.actor, "actor")?;
    let request = clean(filter.request, "request")?;
    super::queries::page(&state.db, event_type, actor, request, before, PAGE_SIZE).await
}

#[component]
pub fn AuditExplorer() -> impl IntoView {
    let query = use_query_map();
    let filter = move || {
        let q = query.read();
        AuditFilter {
            event_type: q.get("event_type"),
            actor: q.get("actor"),
            request: q.get("request"),
            before: q.get("before"),
        }
    };
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
    let next = page.next_before.map(|b| {
        let mut q = String::new();
        for (k, v) in [
            ("event_type", &f.event_type),
            ("actor", &f.actor),
            ("request", &f.request),
        ] {
            if let Some(v) = v.as_ref().filter(|v| !v.is_empty()) {
                q.push_str(&format!("{k}={}&", crate::shell::query_escape(v)));
            }
        }
        format!("/audit?{q}before={b}")
    });
    view! {
        <form class="filters" method="get" action="/audit" role="search">
            <label>"Event "
                <select name="event_type">
                    <option value="" selected=selected.is_empty()>"All"</option>
                    {page.event_types.iter().map(|t| view! { <option value=t.clone() selected=*t == selected>{t.clone()}</option> }).collect_view()}
                </select>
            </label>
            <label>"Actor "<input type="text" name="actor" placeholder="email or id" value=f.actor.clone().unwrap_or_default()/></label>
            <label>"Request "<input type="text" name="request" placeholder="req_…" value=f.request.clone().unwrap_or_default()/></label>
            <button type="submit">"Apply"</button>
        </form>
        {if page.rows.is_empty() {
            view! { <section class="empty-state"><h2>"No events match"</h2><p>"Clear a filter to see more."</p></section> }.into_any()
        } else {
            view! {
                <table class="inbox audit" data-testid="audit-table">
                    <thead><tr><th scope="col">"#"</th><th scope="col">"When (UTC)"</th><th scope="col">"Who"</th><th scope="col">"Event"</th><th scope="col">"Request"</th><th scope="col">"Detail"</th><th scope="col">"Hash"</th></tr></thead>
                    <tbody>
                        {page.rows.into_iter().map(|r| view! {
                            <tr data-seq=r.seq>
                                <td>{r.seq}</td>
                                <td><time datetime=iso_utc(r.occurred_at)>{iso_utc(r.occurred_at)}</time></td>
                                <td>{r.actor.unwrap_or_else(|| r.actor_kind.clone())}</td>
                                <td><code>{r.event_type}</code></td>
                                <td>{r.request_id.map(|id| view! { <a href=format!("/inbox/{id}")>{id.clone()}</a> })}</td>
                                <td class="detail"><code>{r.detail}</code></td>
                                <td title=r.hash.clone()><code>{r.hash[..12.min(r.hash.len())].to_owned()}"…"</code></td>
                            </tr>
                        }).collect_view()}
                    </tbody>
                </table>
                {next.map(|href| view! { <nav class="pager" aria-label="Pages"><a href=href rel="next">"Older events →"</a></nav> })}
            }.into_any()
        }}
    }
}
