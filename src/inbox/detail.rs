//! One action request, as a reviewer reads it before deciding, with the decision forms.
//!
//! Opening this page records who saw which state version and when (invariant 6). The forms
//! are plain posts (they work without JavaScript) and carry the state version the reviewer
//! saw, so a decision on a request that changed meanwhile is refused (invariant 4).

use super::dual_view::{ConflictPanel, DualStatus};
use crate::error::AppError;
use crate::shell::ErrorNotice;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecisionLine {
    pub kind: String,
    pub by: Option<String>,
    pub reason: Option<String>,
    pub at: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestDetail {
    pub id: String,
    pub title: String,
    pub action_type: String,
    pub agent_name: String,
    pub status: String,
    pub tier: String,
    pub gate: Option<String>,
    pub explanation: String,
    pub amount: Option<String>,
    pub counterparty: Option<String>,
    pub customer_tier: Option<String>,
    pub record_count: Option<i64>,
    pub recipient_count: Option<i64>,
    pub risk_class: Option<String>,
    pub acting_for: Option<String>,
    pub confidence: Option<f64>,
    pub reasoning: String,
    pub payload: String,
    pub current_state: Option<String>,
    pub inputs: Option<String>,
    pub alternatives: Option<String>,
    pub created_at: i64,
    pub deadline_at: Option<i64>,
    pub state_version: i64,
    /// For a `dual` request: what the signed-in person may see of its two blind reviews.
    pub dual: Option<super::dual_view::DualState>,
    pub decisions: Vec<DecisionLine>,
    /// Why the signed-in person may not decide, if they may not.
    pub cannot_decide: Option<String>,
    pub now: i64,
    pub flash_error: Option<String>,
    /// The gate's preset reasons for rejecting: (code, label).
    pub rejection_reasons: Vec<(String, String)>,
}

/// At a fixed address (`/api/load_request`) so tests can call it as a browser would and check
/// what it reveals (dual review is blind at the API, not just on the page).
#[server(endpoint = "load_request")]
pub async fn load_request(id: String) -> Result<RequestDetail, AppError> {
    let user = crate::accounts::session::require_user()?;
    let state = crate::server::state()?;
    let flash: Option<crate::accounts::session::Flash> =
        match leptos_axum::extract::<tower_sessions::Session>().await {
            Ok(s) => s
                .remove(crate::accounts::session::KEY_FLASH)
                .await
                .ok()
                .flatten(),
            Err(_) => None,
        };
    let mut detail = super::queries::request_detail(&state.db, &id, &user).await?;
    detail.flash_error = flash.and_then(|f| f.error);
    let (ip, agent) = leptos::prelude::use_context::<axum::http::request::Parts>()
        .map(|p| {
            let ua = p
                .headers
                .get("user-agent")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .chars()
                .take(200)
                .collect::<String>();
            let ip = p
                .extensions
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map(|c| {
                    crate::server::security::client_ip(
                        c.0,
                        &p.headers,
                        &state.config.trusted_proxies,
                    )
                    .to_string()
                });
            (ip, ua)
        })
        .unwrap_or_default();
    super::queries::record_view(&state.db, &user, &detail, ip.as_deref(), &agent).await?;
    Ok(detail)
}

fn pretty(json: &str) -> String {
    serde_json::from_str::<serde_json::Value>(json)
        .and_then(|v| serde_json::to_string_pretty(&v))
        .unwrap_or_else(|_| json.to_owned())
}

#[component]
pub fn RequestPage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.read().get("id").unwrap_or_default();
    let data = Resource::new(id, load_request);
    view! {
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                match data.await {
                    Err(e) => view! { <Title text="Request"/><ErrorNotice error=e/> }.into_any(),
                    Ok(d) => view! { <Detail d/> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn Fact(label: &'static str, value: Option<String>) -> impl IntoView {
    value.map(|v| view! { <dt>{label}</dt><dd>{v}</dd> })
}

#[component]
fn Detail(d: RequestDetail) -> impl IntoView {
    use crate::domain::time::{compact_duration, iso_utc};
    let open = matches!(d.status.as_str(), "pending" | "in_review" | "escalated");
    let status_label = d
        .status
        .parse::<crate::domain::status::Status>()
        .map(|s| s.label())
        .unwrap_or("Unknown");
    let deadline = d.deadline_at.map(|t| {
        if t <= d.now {
            format!("overdue {}", compact_duration(d.now - t))
        } else {
            format!("{} left", compact_duration(t - d.now))
        }
    });
    let action = format!("/inbox/{}/decide", d.id);
    let title = if d.title.is_empty() {
        d.action_type.clone()
    } else {
        d.title.clone()
    };
    view! {
        <Title text=title.clone()/>
        <p class="crumbs"><a href="/inbox">"← Inbox"</a></p>
        <div class="page-head">
            <h1>{title}</h1>
            <span class=format!("tier tier-{}", d.tier)>{d.tier.clone()}</span>
        </div>
        {d.flash_error.clone().map(|e| view! { <p class="error" role="alert">{e}</p> })}
        <div class="detail-grid">
            <section class="card">
                <h2>"Proposed action"</h2>
                <dl class="facts-list">
                    <dt>"Action"</dt><dd><code>{d.action_type.clone()}</code></dd>
                    <dt>"Agent"</dt><dd>{d.agent_name.clone()}</dd>
                    <Fact label="Amount" value=d.amount.clone()/>
                    <Fact label="Counterparty" value=d.counterparty.clone()/>
                    <Fact label="Customer tier" value=d.customer_tier.clone()/>
                    <Fact label="Records" value=d.record_count.map(crate::inbox::group_digits)/>
                    <Fact label="Recipients" value=d.recipient_count.map(crate::inbox::group_digits)/>
                    <Fact label="Risk class" value=d.risk_class.clone()/>
                    <Fact label="Acting for" value=d.acting_for.clone()/>
                    <Fact label="Confidence" value=d.confidence.map(|c| format!("{:.0}%", c * 100.0))/>
                    <dt>"Status"</dt><dd data-testid="request-status">{status_label}</dd>
                    <dt>"Submitted"</dt><dd><time datetime=iso_utc(d.created_at) title=iso_utc(d.created_at)>{format!("{} ago", compact_duration(d.now - d.created_at))}</time></dd>
                    <Fact label="Deadline" value=deadline/>
                </dl>
                {d.current_state.clone().map(|before| view! { <Changes before payload=d.payload.clone()/> })}
                <h3>"Payload"</h3>
                <pre class="json" data-testid="payload">{pretty(&d.payload)}</pre>
                {d.current_state.clone().map(|s| view! {
                    <details><summary>"Current record"</summary><pre class="json">{pretty(&s)}</pre></details>
                })}
            </section>
            <section class="card">
                <h2>"Why it is here"</h2>
                <p data-testid="explanation">{d.explanation.clone()}</p>
                <p class="muted">{d.gate.clone().unwrap_or_else(|| "No gate matched".into())}</p>
                <h3>"Agent's reasoning"</h3>
                <p class="reasoning">{if d.reasoning.is_empty() { "(none given)".to_owned() } else { d.reasoning.clone() }}</p>
                {d.inputs.clone().map(|s| view! { <h3>"Inputs"</h3><pre class="json">{pretty(&s)}</pre> })}
                {d.alternatives.clone().map(|s| view! { <h3>"Alternatives considered"</h3><pre class="json">{pretty(&s)}</pre> })}
                {(!d.decisions.is_empty()).then(|| view! {
                    <h3>"History"</h3>
                    <ul class="history">
                        {d.decisions.iter().map(|l| view! {
                            <li>{l.kind.replace('_', " ")}" by "{l.by.clone().unwrap_or_else(|| "Countersign".into())}
                                {l.reason.clone().map(|r| format!(": {r}"))}
                                " · "<time datetime=iso_utc(l.at)>{iso_utc(l.at)}</time></li>
                        }).collect_view()}
                    </ul>
                })}
                {d.dual.clone().filter(|_| open).map(|dual| view! { <DualStatus dual/> })}
                {match (open, d.cannot_decide.clone()) {
                    (false, _) => view! { <p class="notice">"This request is decided; nothing to do."</p> }.into_any(),
                    (true, Some(why)) => view! { <p class="notice" data-testid="cannot-decide">{why}</p> }.into_any(),
                    (true, None) => view! {
                        <h2>{if d.dual.is_some() { "Your review (one of two)" } else { "Decide" }}</h2>
                        <form method="post" action=action.clone() class="stack decide">
                            <input type="hidden" name="state_version" value=d.state_version.to_string()/>
                            <button type="submit" name="verdict" value="approve">"Approve"</button>
                        </form>
                        <details class="edit">
                            <summary>"Edit, then approve"</summary>
                            <form method="post" action=action.clone() class="stack decide">
                                <input type="hidden" name="state_version" value=d.state_version.to_string()/>
                                <label>"Payload to approve (the agent executes exactly this)"
                                    <textarea name="payload" rows="10" class="json">{pretty(&d.payload)}</textarea>
                                </label>
                                <button type="submit" name="verdict" value="approve_with_edit">"Approve with these changes"</button>
                            </form>
                        </details>
                        <form method="post" action=action class="stack decide">
                            <input type="hidden" name="state_version" value=d.state_version.to_string()/>
                            {(!d.rejection_reasons.is_empty()).then(|| view! {
                                <label>"Reason "
                                    <select name="reason_code">
                                        <option value="">"(choose, or write one below)"</option>
                                        {d.rejection_reasons.iter().map(|(code, label)| view! { <option value=code.clone()>{label.clone()}</option> }).collect_view()}
                                    </select>
                                </label>
                            })}
                            <label>"Reason for rejecting (sent to the agent)"
                                <textarea name="reason" rows="3" maxlength="2000"></textarea>
                            </label>
                            <button type="submit" name="verdict" value="reject" class="danger">"Reject"</button>
                        </form>
                    }.into_any(),
                }}
            </section>
        </div>
        {d.dual.clone().filter(|_| open).map(|dual| view! { <ConflictPanel request_id=d.id.clone() dual/> })}
    }
}

/// Before (the record as it is) against proposed (the payload), field by field, with long text
/// compared word by word.
#[component]
pub fn Changes(before: String, payload: String) -> impl IntoView {
    use crate::domain::diff::{field_diff, FieldChange, Segment};
    let parse =
        |s: &str| serde_json::from_str::<serde_json::Value>(s).unwrap_or(serde_json::Value::Null);
    let changes = field_diff(&parse(&before), &parse(&payload));
    let unchanged = changes
        .iter()
        .filter(|c| matches!(c, FieldChange::Unchanged { .. }))
        .count();
    let rows = changes
        .into_iter()
        .filter(|c| !matches!(c, FieldChange::Unchanged { .. }))
        .map(|c| match c {
            FieldChange::Added { path, new } => view! {
                <tr class="added"><th scope="row">{path}</th><td class="muted">"(none)"</td><td><ins>{new}</ins></td></tr>
            }.into_any(),
            FieldChange::Removed { path, old } => view! {
                <tr class="removed"><th scope="row">{path}</th><td><del>{old}</del></td><td class="muted">"(removed)"</td></tr>
            }.into_any(),
            FieldChange::Changed { path, old, new, words: None } => view! {
                <tr class="changed"><th scope="row">{path}</th><td><del>{old}</del></td><td><ins>{new}</ins></td></tr>
            }.into_any(),
            FieldChange::Changed { path, words: Some(words), .. } => view! {
                <tr class="changed"><th scope="row">{path}</th><td colspan="2" class="words">
                    {words.into_iter().map(|w| match w {
                        Segment::Same(t) => view! { <span>{t}</span> }.into_any(),
                        Segment::Deleted(t) => view! { <del>{t}</del> }.into_any(),
                        Segment::Inserted(t) => view! { <ins>{t}</ins> }.into_any(),
                    }).collect_view()}
                </td></tr>
            }.into_any(),
            FieldChange::Unchanged { .. } => ().into_any(),
        })
        .collect_view();
    view! {
        <h3>"What would change"</h3>
        <table class="diff" data-testid="field-diff">
            <thead><tr><th scope="col">"Field"</th><th scope="col">"Now"</th><th scope="col">"Proposed"</th></tr></thead>
            <tbody>{rows}</tbody>
        </table>
        {(unchanged > 0).then(|| view! { <p class="muted">{format!("{unchanged} field(s) unchanged")}</p> })}
    }
}
