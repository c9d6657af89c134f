//! The after-the-fact queue (`/inbox/after`): requests that ran without waiting (every `log`
//! request and the sampled share of `auto`), judged "looks right" or "should not have happened".
//!
//! The list is server HTML with plain forms: a GET form filters (gate, reason) and keeps the
//! filter in the URL, keyset links page, and each judgement is a POST (one item, or several
//! ticked items marked "looks right" together), so it all works without JavaScript. The list
//! shows the facts of what executed; the full payload is one click away on the request's page,
//! which records who saw it (invariant 6).

#[cfg(feature = "ssr")]
pub mod handlers;
#[cfg(feature = "ssr")]
pub mod repo;

use crate::domain::after_fact::QueueReason;
use crate::domain::time::{compact_duration, iso_utc};
use crate::error::AppError;
use crate::inbox::group_digits;
use crate::shell::{query_escape, ErrorNotice};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;
use serde::{Deserialize, Serialize};

/// Items per page.
pub const PAGE_SIZE: i64 = 50;

/// One unjudged item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(sqlx::FromRow))]
pub struct AfterRow {
    pub request_id: String,
    pub reason: String,
    pub queued_at: i64,
    pub action_type: String,
    pub title: String,
    pub agent_name: String,
    pub amount_minor: Option<i64>,
    pub currency: Option<String>,
    pub counterparty: Option<String>,
    pub record_count: Option<i64>,
    pub recipient_count: Option<i64>,
    pub tier: String,
    pub status: String,
    pub gate_name: Option<String>,
    pub gate_version: Option<i64>,
    pub explanation: String,
    pub acting_for: Option<String>,
}

impl AfterRow {
    /// What executed, in a line: amount and counterparty, or the size of a bulk action.
    pub fn facts(&self) -> String {
        let mut parts: Vec<String> = Vec::new();
        parts.extend(
            crate::domain::policy::money_fact(self.amount_minor, self.currency.as_deref())
                .map(|m| m.to_string()),
        );
        parts.extend(self.counterparty.clone());
        if let Some(n) = self.recipient_count {
            parts.push(format!("{} recipients", group_digits(n)));
        }
        if let Some(n) = self.record_count {
            parts.push(format!("{} records", group_digits(n)));
        }
        parts.join(" · ")
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AfterPage {
    pub rows: Vec<AfterRow>,
    /// Unjudged items matching the filter, on every page.
    pub total: i64,
    pub next_after: Option<String>,
    pub now: i64,
    /// (key, name) of every gate, for the filter.
    pub gates: Vec<(String, String)>,
    /// Whether the signed-in person's roles judge at all (auditors read only).
    pub may_judge: bool,
    /// The signed-in person's id and email, to mark items made on their behalf.
    pub me: String,
}

/// What the queue is narrowed to, from the URL.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AfterFilter {
    pub gate: Option<String>,
    pub reason: Option<QueueReason>,
}

impl AfterFilter {
    /// Checks the URL's values, naming a bad one.
    pub fn parse(gate: Option<String>, reason: Option<String>) -> Result<AfterFilter, AppError> {
        let gate = match gate.filter(|g| !g.is_empty()) {
            None => None,
            Some(g)
                if g.len() <= 128
                    && g.bytes().all(|b| {
                        b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b)
                    }) =>
            {
                Some(g)
            }
            Some(_) => {
                return Err(AppError::invalid(
                    "gate",
                    "is not a gate key; choose one from the list",
                ))
            }
        };
        let reason = match reason.filter(|r| !r.is_empty()) {
            None => None,
            Some(r) => Some(
                QueueReason::parse(&r)
                    .ok_or_else(|| AppError::invalid("reason", "choose log or sampled_auto"))?,
            ),
        };
        Ok(AfterFilter { gate, reason })
    }

    /// The filter as a query string (without `?`).
    pub fn query(&self) -> String {
        let mut parts = Vec::new();
        if let Some(g) = &self.gate {
            parts.push(format!("gate={}", query_escape(g)));
        }
        if let Some(r) = self.reason {
            parts.push(format!("reason={}", r.as_str()));
        }
        parts.join("&")
    }
}

#[server]
pub async fn load_after_fact(
    gate: Option<String>,
    reason: Option<String>,
    after: Option<String>,
) -> Result<AfterPage, AppError> {
    let user = crate::accounts::session::require_user()?;
    let state = crate::server::state()?;
    let filter = AfterFilter::parse(gate, reason)?;
    let after = after
        .filter(|s| !s.is_empty())
        .map(|s| crate::inbox::listing::TimeCursor::parse(&s))
        .transpose()?;
    let mut page = repo::unjudged(&state.db, &filter, after.as_ref(), PAGE_SIZE).await?;
    page.may_judge = user.may_decide();
    page.me = format!("{} {}", user.id, user.email.to_lowercase());
    Ok(page)
}

#[component]
pub fn AfterFactPage() -> impl IntoView {
    let query = use_query_map();
    let params = move || {
        let q = query.read();
        (q.get("gate"), q.get("reason"), q.get("after"))
    };
    let page = Resource::new(params, |(g, r, a)| load_after_fact(g, r, a));
    let flash = Resource::new(|| (), |_| crate::accounts::pages::take_flash());
    view! {
        <Title text="After the fact"/>
        <div class="page-head">
            <h1>"After the fact"</h1>
            <a href="/inbox">"Back to the inbox"</a>
        </div>
        <p class="muted lede">
            "These ran without waiting: every log-tier request, and a sample of auto ones. Say whether each should have happened. "
            "“Should not have happened” shows in Stats and counts against the agent’s circuit breaker."
        </p>
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                let f = flash.await.unwrap_or_default();
                view! {
                    {f.notice.map(|n| view! { <p class="notice" role="status">{n}</p> })}
                    {f.error.map(|e| view! { <p class="error" role="alert">{e}</p> })}
                }
            })}
        </Suspense>
        <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || Suspend::new(async move {
                let (g, r, _) = params();
                match page.await {
                    Ok(p) => {
                        let f = AfterFilter::parse(g, r).unwrap_or_default();
                        view! { <AfterFilters page=p.clone() f=f.clone()/><AfterList page=p f/> }.into_any()
                    }
                    Err(e) => view! { <ErrorNotice error=e/><p><a href="/inbox/after">"Clear the filters"</a></p> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn AfterFilters(page: AfterPage, f: AfterFilter) -> impl IntoView {
    let chosen_gate = |k: &str| f.gate.as_deref() == Some(k);
    let reason = f.reason;
    view! {
        <form class="filters" method="get" action="/inbox/after" role="search">
            <label>
                "Gate "
                <select name="gate">
                    <option value="" selected=f.gate.is_none()>"All"</option>
                    {page.gates.iter().map(|(key, name)| view! { <option value=key.clone() selected=chosen_gate(key)>{name.clone()}</option> }).collect_view()}
                </select>
            </label>
            <label>
                "Why "
                <select name="reason">
                    <option value="" selected=reason.is_none()>"Logged and sampled"</option>
                    <option value="log" selected=reason == Some(QueueReason::Log)>"Logged"</option>
                    <option value="sampled_auto" selected=reason == Some(QueueReason::SampledAuto)>"Sampled auto"</option>
                </select>
            </label>
            <button type="submit">"Apply"</button>
            {(!f.query().is_empty()).then(|| view! { <a href="/inbox/after">"Clear"</a> })}
        </form>
    }
}

#[component]
fn AfterList(page: AfterPage, f: AfterFilter) -> impl IntoView {
    if page.rows.is_empty() {
        return view! {
            <section class="empty-state" data-testid="after-empty">
                <h2>"Nothing left to look at"</h2>
                <p>"Every logged and sampled request matching this view has been judged. New ones arrive as agents act."</p>
            </section>
        }
        .into_any();
    }
    let kept = f.query();
    let next = page.next_after.map(|after| {
        if kept.is_empty() {
            format!("/inbox/after?after={after}")
        } else {
            format!("/inbox/after?{kept}&after={after}")
        }
    });
    let now = page.now;
    let may_judge = page.may_judge;
    let me = page.me.clone();
    view! {
        <div class="after-bar">
            <p class="count" data-testid="after-count">{format!("{} waiting", group_digits(page.total))}</p>
            {may_judge.then(|| view! {
                <form id="after-many" method="post" action="/inbox/after/fine" class="inline-form">
                    <input type="hidden" name="back" value=kept.clone()/>
                    <button type="submit" class="secondary-action">"Mark selected “Looks right”"</button>
                </form>
            })}
            {(!may_judge).then(|| view! { <p class="muted">"Your role reads this queue; reviewers judge it."</p> })}
        </div>
        <ul class="after-list" data-testid="after-list">
            {page.rows.into_iter().map(|row| view! { <AfterItem row now may_judge me=me.clone() back=kept.clone()/> }).collect_view()}
        </ul>
        {next.map(|href| view! { <nav class="pager" aria-label="Pages"><a href=href rel="next">"Next page →"</a></nav> })}
    }
    .into_any()
}

#[component]
fn AfterItem(row: AfterRow, now: i64, may_judge: bool, me: String, back: String) -> impl IntoView {
    let facts = row.facts();
    let mine = row.acting_for.as_deref().is_some_and(|a| {
        let a = a.to_lowercase();
        me.split(' ').any(|m| m == a)
    });
    let reason = QueueReason::parse(&row.reason).unwrap_or(QueueReason::Log);
    let status = row
        .status
        .parse::<crate::domain::status::Status>()
        .map(|s| s.label())
        .unwrap_or("Unknown");
    let gate = match (&row.gate_name, row.gate_version) {
        (Some(name), Some(v)) => format!("{name} v{v}"),
        _ => "No gate".to_owned(),
    };
    let title = if row.title.is_empty() {
        row.action_type.clone()
    } else {
        row.title.clone()
    };
    let id = row.request_id.clone();
    let judge = format!("/inbox/after/{id}/judge");
    let queued_iso = iso_utc(row.queued_at);
    let note_id = format!("note-{id}");
    let actions = if !may_judge {
        None
    } else if mine {
        Some(
            view! { <p class="muted small">"Made on your behalf: someone else judges it."</p> }
                .into_any(),
        )
    } else {
        Some(view! {
            <div class="after-actions">
                <form method="post" action=judge.clone()>
                    <input type="hidden" name="verdict" value="fine"/>
                    <input type="hidden" name="back" value=back.clone()/>
                    <button type="submit" class="looks-right">"Looks right"</button>
                </form>
                <form method="post" action=judge class="after-flag">
                    <input type="hidden" name="verdict" value="should_not_have_happened"/>
                    <input type="hidden" name="back" value=back/>
                    <label class="visually-hidden" for=note_id.clone()>"What was wrong"</label>
                    <input type="text" id=note_id name="note" required maxlength="2000" placeholder="What was wrong?"/>
                    <button type="submit" class="danger">"Should not have happened"</button>
                </form>
            </div>
        }.into_any())
    };
    view! {
        <li class="after-item" data-id=id.clone()>
            {(may_judge && !mine).then(|| view! {
                <input type="checkbox" class="after-pick" name="pick" value=id.clone() form="after-many" aria-label=format!("Select {title}")/>
            })}
            <div class="after-what">
                <a class="title" href=format!("/inbox/{id}")>{title.clone()}</a>
                <span class="after-tags">
                    <span class=format!("tier tier-{}", row.tier)>{row.tier.clone()}</span>
                    <span class="reason-tag">{reason.label()}</span>
                    <span class="status-tag">{status}</span>
                </span>
                <span class="facts">{facts}</span>
                <span class="muted small" title=row.explanation.clone()>
                    <code>{row.action_type.clone()}</code>" · "{row.agent_name.clone()}" · "{gate}" · "
                    <time datetime=queued_iso.clone() title=queued_iso>{format!("{} ago", compact_duration(now - row.queued_at))}</time>
                </span>
            </div>
            {actions}
        </li>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_filter_round_trips_through_the_url_and_names_bad_values() {
        let f = AfterFilter::parse(Some("refunds".into()), Some("sampled_auto".into())).unwrap();
        assert_eq!(f.query(), "gate=refunds&reason=sampled_auto");
        assert_eq!(
            AfterFilter::parse(Some(String::new()), Some(String::new())).unwrap(),
            AfterFilter::default()
        );
        assert!(matches!(
            AfterFilter::parse(None, Some("review".into())),
            Err(AppError::Invalid { field, .. }) if field == "reason"
        ));
        assert!(matches!(
            AfterFilter::parse(Some("Refunds; DROP".into()), None),
            Err(AppError::Invalid { field, .. }) if field == "gate"
        ));
    }
}
