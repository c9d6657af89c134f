//! The reviewer inbox: open action requests, grouped, filtered and sorted by the URL, with the
//! time left to decide, who is on each, live counts and keyboard triage.

pub mod after_fact;
#[cfg(feature = "ssr")]
pub mod bulk;
pub mod card;
pub mod claims;
#[cfg(feature = "ssr")]
pub mod count_cache;
pub mod detail;
pub mod dual_view;
pub mod edit_form;
#[cfg(feature = "ssr")]
pub mod handlers;
mod keyboard;
#[cfg(feature = "ssr")]
pub mod list_queries;
pub mod listing;
mod live_counter;
#[cfg(feature = "ssr")]
pub mod queries;
#[cfg(feature = "ssr")]
pub mod triage;
#[cfg(feature = "ssr")]
pub mod views;

use crate::domain::time::{compact_duration, iso_utc};
use crate::error::AppError;
use crate::shell::ErrorNotice;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;
use serde::{Deserialize, Serialize};

pub use keyboard::KeyboardHelp;
pub use listing::{Cursor, GroupBy, InboxFilter, ListQuery, SortBy};
pub use live_counter::LiveCounter;

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
    /// The version of the request the reviewer sees, carried by a bulk approval.
    pub state_version: i64,
    /// Who holds the soft lock on it, if anyone (`claimed_by_me` when that is the viewer).
    pub claimed_by: Option<String>,
    pub claimed_by_me: bool,
    /// Overdue or escalated: it floats to the top of its group.
    pub urgent: bool,
    /// The value of the view's grouping for this row (empty when not grouped).
    pub group_value: String,
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

/// A group of the current view and how many open requests it holds (on every page, not only
/// this one).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupCount {
    pub value: String,
    pub count: i64,
}

/// A reviewer's named inbox view.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedView {
    pub id: String,
    pub name: String,
    /// The view's query string, without `?`.
    pub query: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InboxPage {
    pub rows: Vec<InboxRow>,
    pub open_total: i64,
    /// Counts per group of the view (one entry, the empty value, when not grouped).
    pub groups: Vec<GroupCount>,
    /// Keyset cursor for the next page, if there is one.
    pub next_after: Option<String>,
    /// Server time of the query, so every "time left" on the page is computed from one instant.
    pub now: i64,
    /// What the filters can choose from: (gate key, gate name), agent names, action types.
    pub gates: Vec<(String, String)>,
    pub agents: Vec<String>,
    pub action_types: Vec<String>,
    /// The signed-in reviewer's saved views.
    pub views: Vec<SavedView>,
}

#[server]
pub async fn load_inbox(#[server(default)] filter: InboxFilter) -> Result<InboxPage, AppError> {
    let user = crate::accounts::session::require_user()?;
    let state = crate::server::state()?;
    let query = ListQuery::parse(&filter)?;
    let counts = list_queries::CountSource::Cached(&state.inbox_counts, state.change_generation());
    list_queries::open_requests(&state.db, counts, &query, &user.id, PAGE_SIZE).await
}

fn filter_from_url() -> impl Fn() -> InboxFilter + Copy {
    let query = use_query_map();
    move || {
        let q = query.read();
        InboxFilter::from_pairs(q.clone())
    }
}

#[component]
pub fn InboxPage() -> impl IntoView {
    let filter = filter_from_url();
    let page = Resource::new(filter, load_inbox);
    let flash = Resource::new(|| (), |_| crate::accounts::pages::take_flash());
    view! {
        <Title text="Inbox"/>
        <div class="page-head">
            <h1>"Inbox"</h1>
            <LiveCounter/>
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
                    Ok(p) => view! {
                        <SavedViews views=p.views.clone() f=f.clone()/>
                        <Filters page=p.clone() f=f.clone()/>
                        <InboxList page=p f/>
                    }.into_any(),
                    Err(e) => view! { <ErrorNotice error=e/><p><a href="/inbox">"Clear the filters"</a></p> }.into_any(),
                }
            })}
        </Suspense>
    }
}

/// The reviewer's saved views as links, and a form to save the one on screen.
#[component]
fn SavedViews(views: Vec<SavedView>, f: InboxFilter) -> impl IntoView {
    let current = f.query();
    view! {
        <section class="views" aria-label="Saved views">
            <ul class="view-links">
                {views.into_iter().map(|v| {
                    let href = if v.query.is_empty() { "/inbox".to_owned() } else { format!("/inbox?{}", v.query) };
                    let here = v.query == current;
                    view! {
                        <li class:here=here>
                            <a href=href aria-current=here.then_some("page")>{v.name.clone()}</a>
                            <form method="post" action=format!("/inbox/views/{}/delete", v.id) class="inline">
                                <button type="submit" class="link" aria-label=format!("Delete the view {}", v.name) title="Delete this view">"×"</button>
                            </form>
                        </li>
                    }
                }).collect_view()}
            </ul>
            <form method="post" action="/inbox/views" class="save-view">
                <input type="hidden" name="query" value=current/>
                <label>"Save this view as "<input type="text" name="name" required maxlength="80" placeholder="My refunds over 1,000"/></label>
                <button type="submit">"Save view"</button>
            </form>
        </section>
    }
}

/// The filter bar: a GET form, so every filtered view is a link and works without JavaScript.
#[component]
fn Filters(page: InboxPage, f: InboxFilter) -> impl IntoView {
    let chosen = |v: &Option<String>, x: &str| v.as_deref() == Some(x);
    let choice = move |v: &Option<String>, value: &'static str, label: &'static str| {
        view! { <option value=value selected=chosen(v, value)>{label}</option> }
    };
    let group = f.group.clone();
    let sort = f.sort.clone();
    view! {
        <form class="filters" method="get" action="/inbox" role="search">
            <span class="field"><label for="f-tier">"Tier"</label>
                <select id="f-tier" name="tier">
                    <option value="" selected=f.tier.is_none()>"All"</option>
                    {choice(&f.tier, "review", "Review")}
                    {choice(&f.tier, "dual", "Dual")}
                </select></span>
            <span class="field"><label for="f-status">"Status"</label>
                <select id="f-status" name="status">
                    <option value="" selected=f.status.is_none()>"Open"</option>
                    {choice(&f.status, "pending", "Pending")}
                    {choice(&f.status, "in_review", "In review")}
                    {choice(&f.status, "escalated", "Escalated")}
                </select></span>
            <span class="field"><label for="f-gate">"Gate"</label>
                <select id="f-gate" name="gate">
                    <option value="" selected=f.gate.is_none()>"All"</option>
                    {page.gates.iter().map(|(key, name)| view! { <option value=key.clone() selected=chosen(&f.gate, key)>{name.clone()}</option> }).collect_view()}
                </select></span>
            <span class="field"><label for="f-agent">"Agent"</label>
                <select id="f-agent" name="agent">
                    <option value="" selected=f.agent.is_none()>"All"</option>
                    {page.agents.iter().map(|a| view! { <option value=a.clone() selected=chosen(&f.agent, a)>{a.clone()}</option> }).collect_view()}
                </select></span>
            <span class="field"><label for="f-action_type">"Action"</label>
                <select id="f-action_type" name="action_type">
                    <option value="" selected=f.action_type.is_none()>"All"</option>
                    {page.action_types.iter().map(|t| view! { <option value=t.clone() selected=chosen(&f.action_type, t)>{t.clone()}</option> }).collect_view()}
                </select></span>
            <span class="field"><span aria-hidden="true">"Amount"</span>
                <input type="text" inputmode="decimal" name="min_amount" class="amount" placeholder="min" aria-label="Minimum amount" value=f.min_amount.clone().unwrap_or_default()/>
                "–"
                <input type="text" inputmode="decimal" name="max_amount" class="amount" placeholder="max" aria-label="Maximum amount" value=f.max_amount.clone().unwrap_or_default()/>
            </span>
            <span class="field"><label for="f-age">"Waiting"</label>
                <select id="f-age" name="age">
                    <option value="" selected=f.age.is_none()>"Any"</option>
                    {choice(&f.age, "1h", "1 hour or more")}
                    {choice(&f.age, "4h", "4 hours or more")}
                    {choice(&f.age, "24h", "1 day or more")}
                    {choice(&f.age, "7d", "7 days or more")}
                </select></span>
            <span class="field"><label for="f-due">"Due"</label>
                <select id="f-due" name="due">
                    <option value="" selected=f.due.is_none()>"Any time"</option>
                    {choice(&f.due, "overdue", "Overdue")}
                    {choice(&f.due, "1h", "Within 1 hour")}
                    {choice(&f.due, "4h", "Within 4 hours")}
                    {choice(&f.due, "24h", "Within 24 hours")}
                </select></span>
            <span class="field"><label for="f-assigned">"Assigned"</label>
                <select id="f-assigned" name="assigned">
                    <option value="" selected=f.assigned.is_none()>"Anyone"</option>
                    {choice(&f.assigned, "me", "To me")}
                    {choice(&f.assigned, "unassigned", "Unassigned")}
                </select></span>
            <span class="field"><label for="f-q">"Search"</label><input id="f-q" type="search" name="q" placeholder="payload, reasoning, counterparty" value=f.q.clone().unwrap_or_default()/></span>
            <span class="field"><label for="f-group">"Group by"</label>
                <select id="f-group" name="group">
                    {GroupBy::ALL.into_iter().map(|g| view! { <option value=g.param() selected=group.as_deref().unwrap_or("") == g.param()>{g.label()}</option> }).collect_view()}
                </select></span>
            <span class="field"><label for="f-sort">"Sort"</label>
                <select id="f-sort" name="sort">
                    {SortBy::ALL.into_iter().map(|s| view! { <option value=s.param() selected=sort.as_deref().unwrap_or("age") == s.param()>{s.label()}</option> }).collect_view()}
                </select></span>
            <button type="submit">"Apply"</button>
            {(!f.query().is_empty()).then(|| view! { <a href="/inbox">"Clear"</a> })}
        </form>
    }
}

/// Rows of one page, cut into their groups (a group may continue from the previous page).
fn split_into_groups(rows: Vec<InboxRow>) -> Vec<(String, Vec<InboxRow>)> {
    let mut groups: Vec<(String, Vec<InboxRow>)> = Vec::new();
    for row in rows {
        match groups.last_mut() {
            Some((value, members)) if *value == row.group_value => members.push(row),
            _ => groups.push((row.group_value.clone(), vec![row])),
        }
    }
    groups
}

#[component]
fn InboxList(page: InboxPage, f: InboxFilter) -> impl IntoView {
    if page.rows.is_empty() {
        return view! {
            <section class="empty-state">
                <h2>"Nothing waiting for you"</h2>
                <p>"No open action requests match. New requests appear here as agents submit them."</p>
            </section>
        }
        .into_any();
    }
    let grouping = ListQuery::parse(&f).map(|q| q.group).unwrap_or_default();
    let now = page.now;
    let next = page.next_after.map(|after| f.with("after", &after));
    let counts = page.groups.clone();
    let count_of = move |value: &str| {
        counts
            .iter()
            .find(|g| g.value == value)
            .map(|g| g.count)
            .unwrap_or(0)
    };
    let groups = split_into_groups(page.rows);
    view! {
        <div class="list-head">
            <p class="count" data-testid="open-count">{format!("{} open", group_digits(page.open_total))}</p>
            {(grouping != GroupBy::None).then(|| view! {
                <ul class="group-counts" aria-label=format!("Open requests by {}", grouping.label().to_lowercase())>
                    {page.groups.iter().map(|g| view! {
                        <li><span>{if g.value.is_empty() { grouping.empty_label().to_owned() } else { g.value.clone() }}</span>" "<b>{group_digits(g.count)}</b></li>
                    }).collect_view()}
                </ul>
            })}
            <form id="bulk" method="post" action="/inbox/bulk" class="bulk">
                <input type="hidden" name="action" value="approve"/>
                <button type="submit" data-kbd="bulk-approve" title="Approve every selected request, each as its own decision">"Approve selected"</button>
            </form>
        </div>
        {groups.into_iter().map(|(value, rows)| {
            let table = view! { <InboxTable rows now/> };
            if grouping == GroupBy::None {
                table.into_any()
            } else {
                let label = if value.is_empty() { grouping.empty_label().to_owned() } else { value.clone() };
                let n = count_of(&value);
                view! {
                    <details class="group" open data-group=value>
                        <summary><span class="group-name">{label}</span>" "<span class="group-count" data-testid="group-count">{group_digits(n)}</span></summary>
                        {table}
                    </details>
                }.into_any()
            }
        }).collect_view()}
        {next.map(|href| view! { <nav class="pager" aria-label="Pages"><a href=href rel="next">"Next page →"</a></nav> })}
    }
    .into_any()
}

#[component]
fn InboxTable(rows: Vec<InboxRow>, now: i64) -> impl IntoView {
    view! {
        <table class="inbox" data-testid="inbox-table">
            <thead>
                <tr>
                    <th scope="col" class="pick"><span class="visually-hidden">"Select"</span></th>
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
                {rows.into_iter().map(|row| view! { <InboxRowView row now/> }).collect_view()}
            </tbody>
        </table>
    }
}

/// The deadline as time left, and how urgent it looks.
pub fn time_left(deadline_at: Option<i64>, now: i64) -> (String, &'static str) {
    match deadline_at {
        Some(d) if d <= now => (
            format!("overdue {}", compact_duration(now - d)),
            "sla overdue",
        ),
        Some(d) if d - now < 2 * 3_600_000 => (compact_duration(d - now), "sla soon"),
        Some(d) => (compact_duration(d - now), "sla ok"),
        None => ("–".to_owned(), "sla"),
    }
}

#[component]
fn InboxRowView(row: InboxRow, now: i64) -> impl IntoView {
    let facts = row.facts();
    let (left_text, sla_class) = time_left(row.deadline_at, now);
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
    let title = if row.title.is_empty() {
        row.action_type.clone()
    } else {
        row.title.clone()
    };
    let claim = row.claimed_by.clone().map(|name| {
        let text = if row.claimed_by_me {
            "You are reviewing".to_owned()
        } else {
            format!("{name} is reviewing")
        };
        view! { <span class="claim-tag" data-testid="claim">{text}</span> }
    });
    view! {
        <tr data-id=row.id.clone() class:urgent=row.urgent class="inbox-row">
            <td class="pick">
                <input type="checkbox" name="pick" form="bulk" value=format!("{}@{}", row.id, row.state_version) aria-label=format!("Select {title}")/>
            </td>
            <td class="age"><time datetime=created_iso.clone() title=created_iso>{compact_duration(now - row.created_at)}</time></td>
            <td class="action"><code>{row.action_type.clone()}</code></td>
            <td class="summary" title=row.explanation.clone()>
                <a class="title" href=format!("/inbox/{}", row.id)>{title.clone()}</a>
                <span class="facts muted">{facts}</span>
                {claim}
            </td>
            <td class="agent">{row.agent_name}</td>
            <td class="tier-cell"><span class=format!("tier tier-{}", row.tier)>{row.tier.clone()}</span>
                {row.dual_reviews_in.map(|n| if n >= 2 {
                    view! { <span class="dual-badge conflict" title="The two reviews disagree; a senior reviewer settles it">"conflict"</span> }.into_any()
                } else {
                    view! { <span class="dual-badge" title="Reviews in, of two">{format!("{n}/2")}</span> }.into_any()
                })}
            </td>
            <td class="gate">{gate}</td>
            <td class="status">{status_label}</td>
            <td class=sla_class title=deadline_iso>{left_text}</td>
        </tr>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            state_version: 1,
            claimed_by: None,
            claimed_by_me: false,
            urgent: false,
            group_value: String::new(),
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
