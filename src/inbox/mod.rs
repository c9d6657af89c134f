//! The reviewer inbox: open action requests, oldest first, with the time left to decide.

pub mod after_fact;
#[cfg(feature = "ssr")]
pub mod bulk;
pub mod detail;
pub mod dual_view;
#[cfg(feature = "ssr")]
pub mod handlers;
mod keyboard;
#[cfg(feature = "ssr")]
pub mod queries;

use crate::domain::time::{compact_duration, iso_utc};
use crate::error::AppError;
use crate::shell::ErrorNotice;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;
use serde::{Deserialize, Serialize};

pub use keyboard::KeyboardHelp;

/// Rows per page. Small enough to scan, large enough to triage without paging constantly.
pub const PAGE_SIZE: i64 = 50;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InboxRow {
    pub id: String,
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
    pub created_at: i64,
    pub deadline_at: Option<i64>,
    /// For a dual request: how many of its two blind reviews are in (2 means they disagree
    /// and wait for a senior reviewer, since agreement would have decided it).
    pub dual_reviews_in: Option<i64>,
}

impl InboxRow {
    /// The facts a reviewer scans beside the title: amount and counterparty, or the size of a
    /// bulk action.
    pub fn facts(&self) -> String {
        let amount = crate::domain::policy::money_fact(self.amount_minor, self.currency.as_deref())
            .map(|m| m.to_string());
        let mut parts: Vec<String> = Vec::new();
        parts.extend(amount);
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

/// 45427 -> "45,427".
pub fn group_digits(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if n < 0 {
        out.push('-');
    }
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InboxPage {
    pub rows: Vec<InboxRow>,
    pub open_total: i64,
    /// Keyset cursor for the next page, if there is one.
    pub next_after: Option<String>,
    /// Server time of the query, so every "time left" on the page is computed from one instant.
    pub now: i64,
    /// What the filters can choose from: (gate key, gate name), agent names, action types.
    pub gates: Vec<(String, String)>,
    pub agents: Vec<String>,
    pub action_types: Vec<String>,
}

/// A keyset position: the last row's creation time and id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub created_at: i64,
    pub id: String,
}

impl Cursor {
    pub fn encode(&self) -> String {
        format!("{}.{}", self.created_at, self.id)
    }

    pub fn parse(s: &str) -> Result<Cursor, AppError> {
        let bad = || {
            AppError::invalid(
                "after",
                "not a page position from this inbox; start again from the first page",
            )
        };
        let (at, id) = s.split_once('.').ok_or_else(bad)?;
        let created_at = at.parse::<i64>().map_err(|_| bad())?;
        if id.is_empty()
            || id.len() > 64
            || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return Err(bad());
        }
        Ok(Cursor {
            created_at,
            id: id.to_owned(),
        })
    }
}

/// Checks a filter value that names a gate, agent or action type.
#[cfg(feature = "ssr")]
fn name_filter(field: &str, value: Option<String>) -> Result<Option<String>, AppError> {
    match value.filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v)
            if v.len() <= 128
                && v.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b)
                }) =>
        {
            Ok(Some(v))
        }
        Some(_) => Err(AppError::invalid(
            field,
            "is not a name this inbox uses; choose one from the list",
        )),
    }
}

/// What the inbox is narrowed to; every field optional, all from the URL.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InboxFilter {
    pub tier: Option<String>,
    pub gate: Option<String>,
    pub agent: Option<String>,
    pub action_type: Option<String>,
    /// Free text, searched in the title, counterparty, reasoning and payload.
    pub q: Option<String>,
    /// `overdue`, `1h`, `4h` or `24h`: the deadline is within that.
    pub due: Option<String>,
}

impl InboxFilter {
    /// The filter as a query string (without `?`), for links that keep it.
    pub fn query(&self) -> String {
        [
            ("tier", &self.tier),
            ("gate", &self.gate),
            ("agent", &self.agent),
            ("action_type", &self.action_type),
            ("q", &self.q),
            ("due", &self.due),
        ]
        .into_iter()
        .filter_map(|(k, v)| {
            v.as_ref()
                .filter(|v| !v.is_empty())
                .map(|v| format!("{k}={}", crate::shell::query_escape(v)))
        })
        .collect::<Vec<_>>()
        .join("&")
    }
}

#[server]
pub async fn load_inbox(
    after: Option<String>,
    tier: Option<String>,
    gate: Option<String>,
    agent: Option<String>,
    action_type: Option<String>,
    q: Option<String>,
    due: Option<String>,
) -> Result<InboxPage, AppError> {
    use crate::domain::tier::Tier;
    crate::accounts::session::require_user()?;
    let state = crate::server::state()?;
    let after = after
        .filter(|s| !s.is_empty())
        .map(|s| Cursor::parse(&s))
        .transpose()?;
    let tier = tier
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<Tier>()
                .map_err(|e| AppError::invalid("tier", e.to_string()))
        })
        .transpose()?;
    let filter = queries::OpenFilter {
        tier,
        gate: name_filter("gate", gate)?,
        agent: name_filter("agent", agent)?,
        action_type: name_filter("action_type", action_type)?,
        text: match q.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            None => None,
            Some(t) if t.chars().count() > 200 => {
                return Err(AppError::invalid("q", "search for at most 200 characters"))
            }
            Some(t) => Some(t.to_owned()),
        },
        due_within: match due.as_deref().filter(|s| !s.is_empty()) {
            None => None,
            Some("overdue") => Some(0),
            Some("1h") => Some(3_600_000),
            Some("4h") => Some(4 * 3_600_000),
            Some("24h") => Some(24 * 3_600_000),
            Some(_) => return Err(AppError::invalid("due", "choose overdue, 1h, 4h or 24h")),
        },
    };
    queries::open_requests(&state.db, after.as_ref(), &filter, PAGE_SIZE).await
}

#[component]
pub fn InboxPage() -> impl IntoView {
    let query = use_query_map();
    let after = move || query.read().get("after");
    let filter = move || {
        let q = query.read();
        InboxFilter {
            tier: q.get("tier"),
            gate: q.get("gate"),
            agent: q.get("agent"),
            action_type: q.get("action_type"),
            q: q.get("q"),
            due: q.get("due"),
        }
    };
    let page = Resource::new(
        move || (after(), filter()),
        |(a, f)| load_inbox(a, f.tier, f.gate, f.agent, f.action_type, f.q, f.due),
    );
    let flash = Resource::new(|| (), |_| crate::accounts::pages::take_flash());
    view! {
        <Title text="Inbox"/>
        <div class="page-head">
            <h1>"Inbox"</h1>
            <KeyboardHelp/>
        </div>
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
                let f = filter();
                match page.await {
                    Ok(p) => view! { <Filters page=p.clone() f=f.clone()/><InboxTable page=p f/> }.into_any(),
                    Err(e) => view! { <ErrorNotice error=e/><p><a href="/inbox">"Clear the filters"</a></p> }.into_any(),
                }
            })}
        </Suspense>
    }
}

/// The filter bar: a GET form, so every filtered view is a link and works without JavaScript.
#[component]
fn Filters(page: InboxPage, f: InboxFilter) -> impl IntoView {
    let tier = f.tier.clone().unwrap_or_default();
    let chosen = |v: &Option<String>, x: &str| v.as_deref() == Some(x);
    view! {
        <form class="filters" method="get" action="/inbox" role="search">
            <label>
                "Tier "
                <select name="tier">
                    <option value="" selected=tier.is_empty()>"All"</option>
                    <option value="review" selected=tier == "review">"Review"</option>
                    <option value="dual" selected=tier == "dual">"Dual"</option>
                </select>
            </label>
            <label>
                "Gate "
                <select name="gate">
                    <option value="" selected=f.gate.is_none()>"All"</option>
                    {page.gates.iter().map(|(key, name)| view! { <option value=key.clone() selected=chosen(&f.gate, key)>{name.clone()}</option> }).collect_view()}
                </select>
            </label>
            <label>
                "Agent "
                <select name="agent">
                    <option value="" selected=f.agent.is_none()>"All"</option>
                    {page.agents.iter().map(|a| view! { <option value=a.clone() selected=chosen(&f.agent, a)>{a.clone()}</option> }).collect_view()}
                </select>
            </label>
            <label>
                "Action "
                <select name="action_type">
                    <option value="" selected=f.action_type.is_none()>"All"</option>
                    {page.action_types.iter().map(|t| view! { <option value=t.clone() selected=chosen(&f.action_type, t)>{t.clone()}</option> }).collect_view()}
                </select>
            </label>
            <label>
                "Due "
                <select name="due">
                    <option value="" selected=f.due.is_none()>"Any time"</option>
                    <option value="overdue" selected=chosen(&f.due, "overdue")>"Overdue"</option>
                    <option value="1h" selected=chosen(&f.due, "1h")>"Within 1 hour"</option>
                    <option value="4h" selected=chosen(&f.due, "4h")>"Within 4 hours"</option>
                    <option value="24h" selected=chosen(&f.due, "24h")>"Within 24 hours"</option>
                </select>
            </label>
            <label>"Search "<input type="search" name="q" placeholder="payload, reasoning, counterparty" value=f.q.clone().unwrap_or_default()/></label>
            <button type="submit">"Apply"</button>
            {(!f.query().is_empty()).then(|| view! { <a href="/inbox">"Clear"</a> })}
        </form>
    }
}

#[component]
fn InboxTable(page: InboxPage, f: InboxFilter) -> impl IntoView {
    if page.rows.is_empty() {
        return view! {
            <section class="empty-state">
                <h2>"Nothing waiting for you"</h2>
                <p>"No open action requests match. New requests appear here as agents submit them."</p>
            </section>
        }
        .into_any();
    }
    let now = page.now;
    let next = page.next_after.map(|after| {
        let kept = f.query();
        if kept.is_empty() {
            format!("/inbox?after={after}")
        } else {
            format!("/inbox?{kept}&after={after}")
        }
    });
    view! {
        <p class="count" data-testid="open-count">{format!("{} open", page.open_total)}</p>
        <table class="inbox" data-testid="inbox-table">
            <thead>
                <tr>
                    <th scope="col">"Age"</th>
                    <th scope="col">"Action"</th>
                    <th scope="col">"Request"</th>
                    <th scope="col">"Agent"</th>
                    <th scope="col">"Tier"</th>
                    <th scope="col">"Gate"</th>
                    <th scope="col">"Status"</th>
                    <th scope="col">"Time left"</th>
                </tr>
            </thead>
            <tbody>
                {page.rows.into_iter().map(|row| view! { <InboxRowView row now/> }).collect_view()}
            </tbody>
        </table>
        {next.map(|href| view! { <nav class="pager" aria-label="Pages"><a href=href rel="next">"Next page →"</a></nav> })}
    }
    .into_any()
}

#[component]
fn InboxRowView(row: InboxRow, now: i64) -> impl IntoView {
    let facts = row.facts();
    let (left_text, sla_class) = match row.deadline_at {
        Some(d) if d <= now => (
            format!("overdue {}", compact_duration(now - d)),
            "sla overdue",
        ),
        Some(d) if d - now < 2 * 3_600_000 => (compact_duration(d - now), "sla soon"),
        Some(d) => (compact_duration(d - now), "sla"),
        None => ("–".to_owned(), "sla"),
    };
    let status_label = row
        .status
        .parse::<crate::domain::status::Status>()
        .map(|s| s.label())
        .unwrap_or("Unknown");
    let gate = match (&row.gate_name, row.gate_version) {
        (Some(name), Some(v)) => format!("{name} v{v}"),
        _ => "No gate".to_owned(),
    };
    let created_iso = iso_utc(row.created_at);
    let deadline_iso = row.deadline_at.map(iso_utc).unwrap_or_default();
    view! {
        <tr data-id=row.id.clone()>
            <td><time datetime=created_iso.clone() title=created_iso>{compact_duration(now - row.created_at)}</time></td>
            <td><code>{row.action_type.clone()}</code></td>
            <td class="summary" title=row.explanation.clone()>
                <a class="title" href=format!("/inbox/{}", row.id)>{if row.title.is_empty() { row.action_type.clone() } else { row.title }}</a>
                <span class="facts muted">{facts}</span>
            </td>
            <td>{row.agent_name}</td>
            <td><span class=format!("tier tier-{}", row.tier)>{row.tier.clone()}</span>
                {row.dual_reviews_in.map(|n| if n >= 2 {
                    view! { <span class="dual-badge conflict" title="The two reviews disagree; a senior reviewer settles it">"conflict"</span> }.into_any()
                } else {
                    view! { <span class="dual-badge" title="Reviews in, of two">{format!("{n}/2")}</span> }.into_any()
                })}
            </td>
            <td>{gate}</td>
            <td>{status_label}</td>
            <td class=sla_class title=deadline_iso>{left_text}</td>
        </tr>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_garbage() {
        let c = Cursor {
            created_at: 1_700_000_000_000,
            id: "req_0191abc".into(),
        };
        assert_eq!(Cursor::parse(&c.encode()), Ok(c));
        for bad in ["", "x", "12", "abc.req_1", "12.", "12.req-1;DROP", "12.a b"] {
            assert!(
                matches!(Cursor::parse(bad), Err(AppError::Invalid { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn summary_shows_money_counterparty_and_counts() {
        let row = InboxRow {
            id: "req_1".into(),
            action_type: "payment.refund".into(),
            title: "Refund".into(),
            agent_name: "refund-bot".into(),
            amount_minor: Some(420_000),
            currency: Some("EUR".into()),
            counterparty: Some("Contoso Ltd".into()),
            record_count: None,
            recipient_count: Some(12_000),
            tier: "review".into(),
            status: "pending".into(),
            gate_name: None,
            gate_version: None,
            explanation: String::new(),
            created_at: 0,
            deadline_at: None,
            dual_reviews_in: None,
        };
        assert_eq!(
            row.facts(),
            "4,200.00 EUR · Contoso Ltd · 12,000 recipients"
        );
    }

    #[test]
    fn digits_are_grouped_by_thousands() {
        assert_eq!(group_digits(0), "0");
        assert_eq!(group_digits(999), "999");
        assert_eq!(group_digits(45_427), "45,427");
        assert_eq!(group_digits(1_000_000), "1,000,000");
        assert_eq!(group_digits(-12_345), "-12,345");
    }
}
