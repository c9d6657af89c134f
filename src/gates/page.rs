//! The gates screens: every gate with its tier mix, and one gate's live version, history with
//! diffs, draft editor (plain form fields; JSON import and export), maker-checker publishing and
//! a "test this request" box that evaluates a pasted request against the live policy and the
//! draft. Admins edit; auditors and senior reviewers read.

use crate::accounts::pages::{take_flash, Messages};
use crate::accounts::Role;
use crate::domain::diff::FieldChange;
use crate::domain::policy::GateDefinition;
use crate::error::AppError;
use crate::shell::ErrorNotice;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_params_map, use_query_map};
use serde::{Deserialize, Serialize};

pub const READERS: [Role; 3] = [Role::Admin, Role::Auditor, Role::SeniorReviewer];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateLine {
    pub key: String,
    pub name: String,
    pub action_types: Vec<String>,
    pub live_version: Option<i64>,
    /// "draft", "awaiting approval" or none.
    pub draft: Option<String>,
    /// Requests gated in the last 30 days per tier: auto, log, review, dual, block.
    pub tier_mix: [i64; 5],
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VersionView {
    pub version: i64,
    pub definition: GateDefinition,
    pub edited_by: Option<String>,
    pub edited_by_id: Option<String>,
    pub created_at: i64,
    pub published_by: Option<String>,
    pub published_at: Option<i64>,
    pub submitted_by: Option<String>,
    pub submitted_at: Option<i64>,
    pub loosenings: Vec<String>,
    /// Against the previous published version (for a draft: against the live one).
    pub changes: Vec<FieldChange>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestOutcome {
    pub input: String,
    pub error: Option<String>,
    /// (tier, explanation) under the live policy and with the draft in place.
    pub live: Option<(String, String)>,
    pub draft: Option<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateDetail {
    pub key: String,
    pub name: String,
    pub live: Option<VersionView>,
    pub draft: Option<VersionView>,
    pub history: Vec<VersionView>,
    pub can_edit: bool,
    pub me: String,
    pub test: Option<TestOutcome>,
}

#[server]
pub async fn load_gates() -> Result<Vec<GateLine>, AppError> {
    crate::accounts::session::require_any_role(&READERS)?;
    let state = crate::server::state()?;
    super::queries::gate_lines(&state.db).await
}

#[server]
pub async fn load_gate(key: String, test: Option<String>) -> Result<GateDetail, AppError> {
    let user = crate::accounts::session::require_any_role(&READERS)?;
    let state = crate::server::state()?;
    super::queries::gate_detail(&state.db, &user, &key, test).await
}

#[component]
pub fn GatesPage() -> impl IntoView {
    let data = Resource::new(|| (), |_| load_gates());
    let flash = Resource::new(|| (), |_| take_flash());
    view! {
        <Title text="Gates"/>
        <div class="page-head"><h1>"Gates"</h1></div>
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                let messages = flash.await.unwrap_or_default();
                match data.await {
                    Err(e) => view! { <Messages view=messages/><ErrorNotice error=e/> }.into_any(),
                    Ok(lines) => view! { <Messages view=messages/><GateList lines/> }.into_any(),
                }
            })}
        </Suspense>
    }
}

fn tier_select(name: &'static str, selected: &str) -> impl IntoView {
    let selected = selected.to_owned();
    view! {
        <select name=name>
            {crate::domain::tier::Tier::ALL.iter().map(|t| {
                let t = t.as_str();
                view! { <option value=t selected=t == selected>{t}</option> }
            }).collect_view()}
        </select>
    }
}

#[component]
fn GateList(lines: Vec<GateLine>) -> impl IntoView {
    view! {
        <table class="inbox" data-testid="gates-table">
            <thead><tr><th scope="col">"Gate"</th><th scope="col">"Action types"</th><th scope="col">"Live"</th><th scope="col">"Draft"</th><th scope="col">"Last 30 days: auto · log · review · dual · block"</th></tr></thead>
            <tbody>
                {lines.into_iter().map(|g| {
                    let total: i64 = g.tier_mix.iter().sum();
                    view! {
                        <tr>
                            <td><a class="title" href=format!("/gates/{}", g.key)>{g.name.clone()}</a><br/><code class="muted">{g.key.clone()}</code></td>
                            <td><code>{g.action_types.join(", ")}</code></td>
                            <td>{g.live_version.map(|v| format!("v{v}")).unwrap_or_else(|| "not published".into())}</td>
                            <td>{g.draft.clone().unwrap_or_default()}</td>
                            <td class="tier-mix">
                                {g.tier_mix.iter().zip(crate::domain::tier::Tier::ALL).map(|(n, t)| view! {
                                    <span class=format!("tier tier-{}", t.as_str()) title=format!("{n} {}", t.as_str())>{*n}</span>
                                }).collect_view()}
                                <span class="muted">{format!(" of {total}")}</span>
                            </td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table>
        <details class="card">
            <summary>"New gate"</summary>
            <form method="post" action="/gates" class="stack">
                <label>"Key (lower case, e.g. refunds) "<input type="text" name="key" required/></label>
                <label>"Name "<input type="text" name="name" required/></label>
                <label>"Action types (comma separated; payment.refund or payment.*) "<input type="text" name="action_types" required/></label>
                <label>"Base tier "{tier_select("base_tier", "review")}</label>
                <button type="submit">"Create as a draft"</button>
            </form>
        </details>
    }
}

#[component]
pub fn GatePage() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let args = move || {
        (
            params.read().get("key").unwrap_or_default(),
            query.read().get("test"),
        )
    };
    let data = Resource::new(args, |(key, test)| load_gate(key, test));
    let flash = Resource::new(|| (), |_| take_flash());
    view! {
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                let messages = flash.await.unwrap_or_default();
                match data.await {
                    Err(e) => view! { <Title text="Gate"/><Messages view=messages/><ErrorNotice error=e/> }.into_any(),
                    Ok(g) => view! { <Messages view=messages/><Gate g/> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn Rules(d: GateDefinition) -> impl IntoView {
    view! {
        <dl class="facts-list">
            <dt>"Action types"</dt><dd><code>{d.action_types.join(", ")}</code></dd>
            <dt>"Base tier"</dt><dd><span class=format!("tier tier-{}", d.base_tier.as_str())>{d.base_tier.as_str()}</span></dd>
        </dl>
        <table class="rules">
            <thead><tr><th scope="col">"Rule"</th><th scope="col">"When all hold"</th><th scope="col">"Tier"</th></tr></thead>
            <tbody>
                {d.rules.iter().map(|r| view! {
                    <tr>
                        <td><code>{r.key.clone()}</code></td>
                        <td>{r.when.iter().map(|c| {
                            let (attr, text) = super::editor::condition_text(c);
                            let label = super::editor::ATTRIBUTES.iter().find(|(a, _)| *a == attr).map(|(_, l)| *l).unwrap_or(attr);
                            format!("{label} {text}")
                        }).collect::<Vec<_>>().join("; ")}</td>
                        <td><span class=format!("tier tier-{}", r.tier.as_str())>{r.tier.as_str()}</span></td>
                    </tr>
                }).collect_view()}
            </tbody>
        </table>
    }
}

#[component]
fn ChangeList(changes: Vec<FieldChange>) -> impl IntoView {
    if changes.is_empty() {
        return view! { <p class="muted">"No changes."</p> }.into_any();
    }
    view! {
        <ul class="changes">
            {changes.into_iter().map(|c| match c {
                FieldChange::Added { path, new } => view! { <li class="added"><code>{path}</code>" added: "<ins>{new}</ins></li> }.into_any(),
                FieldChange::Removed { path, old } => view! { <li class="removed"><code>{path}</code>" removed: "<del>{old}</del></li> }.into_any(),
                FieldChange::Changed { path, old, new, .. } => view! { <li class="changed"><code>{path}</code>": "<del>{old}</del>" → "<ins>{new}</ins></li> }.into_any(),
                FieldChange::Unchanged { .. } => ().into_any(),
            }).collect_view()}
        </ul>
    }
    .into_any()
}

#[component]
fn Gate(g: GateDetail) -> impl IntoView {
    use crate::domain::time::iso_utc;
    let key = g.key.clone();
    let base = format!("/gates/{key}");
    let editing = g.draft.clone().filter(|_| g.can_edit);
    view! {
        <Title text=format!("Gate: {}", g.name)/>
        <p class="crumbs"><a href="/gates">"← Gates"</a></p>
        <div class="page-head"><h1>{g.name.clone()}</h1><code class="muted">{key.clone()}</code>{g.live.is_some().then(|| view! { <a href=format!("/stats/gates/{}", crate::shell::query_escape(&key)) data-testid="tune-link">"Tune thresholds (statistics and backtest)"</a> })}</div>
        <div class="detail-grid">
            <section class="card" data-testid="live-version">
                {match g.live.clone() {
                    Some(v) => view! {
                        <h2>{format!("Live: version {}", v.version)}</h2>
                        <p class="muted">{format!("Published {} by {}", v.published_at.map(iso_utc).unwrap_or_default(), v.published_by.clone().unwrap_or_default())}</p>
                        <Rules d=v.definition.clone()/>
                    }.into_any(),
                    None => view! { <h2>"Not published yet"</h2><p class="muted">"Requests this gate would match still go to review (fail closed)."</p> }.into_any(),
                }}
                <h3>"Test a request"</h3>
                <form method="get" action=base.clone() class="stack">
                    <label>"Request (the JSON an agent submits)"
                        <textarea name="test" rows="5" placeholder=r#"{"action_type": "payment.refund", "amount": {"value": "4200.00", "currency": "EUR"}, "confidence": 0.9}"#>{g.test.as_ref().map(|t| t.input.clone()).unwrap_or_default()}</textarea>
                    </label>
                    <button type="submit">"Evaluate"</button>
                </form>
                {g.test.clone().map(|t| view! {
                    <div class="test-result" data-testid="test-result">
                        {t.error.clone().map(|e| view! { <p class="error" role="alert">{e}</p> })}
                        {t.live.clone().map(|(tier, why)| view! { <p><strong>"Live: "</strong><span class=format!("tier tier-{tier}")>{tier.clone()}</span>" "{why}</p> })}
                        {t.draft.clone().map(|(tier, why)| view! { <p data-testid="test-draft"><strong>"With the draft: "</strong><span class=format!("tier tier-{tier}")>{tier.clone()}</span>" "{why}</p> })}
                    </div>
                })}
            </section>
            <section class="card" data-testid="draft">
                {match g.draft.clone() {
                    None => view! {
                        <h2>"No draft"</h2>
                        {g.can_edit.then(|| view! {
                            <p class="muted">"Changes are made in a draft and published as a new version; requests in flight keep the version that gated them."</p>
                            <form method="post" action=format!("{base}/draft")><button type="submit">"Start a draft"</button></form>
                        })}
                    }.into_any(),
                    Some(d) => {
                        let awaiting = d.submitted_at.is_some();
                        let mine = d.edited_by_id.as_deref() == Some(g.me.as_str());
                        view! {
                            <h2>{format!("Draft: version {}", d.version)}</h2>
                            <p class="muted">{format!("Last edited {} by {}", iso_utc(d.created_at), d.edited_by.clone().unwrap_or_default())}</p>
                            <h3>"Changes against the live version"</h3>
                            <ChangeList changes=d.changes.clone()/>
                            {awaiting.then(|| view! {
                                <div class="notice" data-testid="awaiting-approval">
                                    <p><strong>{format!("Awaiting a second admin (submitted by {}):", d.submitted_by.clone().unwrap_or_default())}</strong></p>
                                    <ul>{d.loosenings.iter().map(|l| view! { <li>{l.clone()}</li> }).collect_view()}</ul>
                                </div>
                            })}
                            {g.can_edit.then(|| view! {
                                <div class="actions">
                                    {if awaiting && !mine && d.submitted_by.is_some() {
                                        view! { <form method="post" action=format!("{base}/draft/approve")><button type="submit">"Approve and publish"</button></form> }.into_any()
                                    } else if !awaiting {
                                        view! { <form method="post" action=format!("{base}/draft/publish")><button type="submit">"Publish"</button></form> }.into_any()
                                    } else {
                                        view! { <p class="muted">"Another admin must approve this change."</p> }.into_any()
                                    }}
                                    <form method="post" action=format!("{base}/draft/discard")><button type="submit" class="danger">"Discard draft"</button></form>
                                    <a href=format!("{base}/export.json") download>"Export JSON"</a>
                                </div>
                            })}
                        }.into_any()
                    }
                }}
            </section>
        </div>
        {editing.map(|d| view! { <Editor base=base.clone() d=d.definition/> }.into_any())}
        <section class="card" data-testid="history">
            <h2>"Version history"</h2>
            <ol class="history">
                {g.history.into_iter().map(|v| view! {
                    <li>
                        <p><strong>{format!("Version {}", v.version)}</strong>" · "{format!("published {} by {}", v.published_at.map(iso_utc).unwrap_or_default(), v.published_by.clone().unwrap_or_default())}</p>
                        <details><summary>"What changed"</summary><ChangeList changes=v.changes/></details>
                    </li>
                }).collect_view()}
            </ol>
        </section>
    }
}

/// The draft editor: basics, one form per rule (one row per condition plus an empty row to add
/// one), a form to add a rule, and JSON import.
#[component]
fn Editor(base: String, d: GateDefinition) -> impl IntoView {
    use super::editor::{condition_text, ATTRIBUTES};
    let attribute_select = |name: String, selected: &str| {
        let selected = selected.to_owned();
        view! {
            <select name=name>
                <option value="" selected=selected.is_empty()>"(none)"</option>
                {ATTRIBUTES.iter().map(|(a, label)| view! { <option value=*a selected=*a == selected>{*label}</option> }).collect_view()}
            </select>
        }
    };
    view! {
        <section class="card editor" data-testid="editor">
            <h2>"Edit the draft"</h2>
            <form method="post" action=format!("{base}/draft/basics") class="filters">
                <label>"Name "<input type="text" name="name" value=d.name.clone() required/></label>
                <label>"Action types "<input type="text" name="action_types" value=d.action_types.join(", ") required/></label>
                <label>"Base tier "{tier_select("base_tier", d.base_tier.as_str())}</label>
                <button type="submit">"Save basics"</button>
            </form>
            {d.rules.iter().map(|r| {
                let rows = r.when.len() + 1;
                view! {
                    <form method="post" action=format!("{base}/draft/rules/{}", r.key) class="rule" data-rule=r.key.clone()>
                        <h3><code>{r.key.clone()}</code></h3>
                        {(0..rows).map(|i| {
                            let (attr, text) = r.when.get(i).map(condition_text).unwrap_or(("", String::new()));
                            view! {
                                <div class="condition">
                                    <label>{if i < r.when.len() { "Condition " } else { "Add a condition " }}{attribute_select(format!("attr_{i}"), attr)}</label>
                                    <label>"Value "<input type="text" name=format!("value_{i}") value=text aria-label=format!("{} value {i}", r.key)/></label>
                                </div>
                            }
                        }).collect_view()}
                        <label>"Tier "{tier_select("tier", r.tier.as_str())}</label>
                        <button type="submit">"Save rule"</button>
                    </form>
                    <form method="post" action=format!("{base}/draft/rules/{}/delete", r.key)><button type="submit" class="danger">{format!("Delete rule {}", r.key)}</button></form>
                }
            }).collect_view()}
            <form method="post" action=format!("{base}/draft/rules") class="filters">
                <h3>"Add a rule"</h3>
                <label>"Key "<input type="text" name="key" required/></label>
                <label>"When "{attribute_select("attribute".into(), "amount_above")}</label>
                <label>"Value "<input type="text" name="value" placeholder="1000 EUR" required/></label>
                <label>"Tier "{tier_select("tier", "review")}</label>
                <button type="submit">"Add rule"</button>
            </form>
            {view! { <Settings base=base.clone() s=d.settings.clone()/> }.into_any()}
            <details>
                <summary>"Import JSON"</summary>
                <form method="post" action=format!("{base}/draft/json") class="stack">
                    <textarea name="json" rows="10">{serde_json::to_string_pretty(&d).unwrap_or_default()}</textarea>
                    <button type="submit">"Replace the draft"</button>
                </form>
            </details>
        </section>
    }
}

/// The gate's settings beyond rules: deadlines, escalation, reasons, schema, sampling, breaker.
#[component]
fn Settings(base: String, s: crate::domain::gate_settings::GateSettings) -> impl IntoView {
    use crate::domain::breaker::OnOpen;
    let num = |v: Option<u32>| v.map(|n| n.to_string()).unwrap_or_default();
    let reasons = s
        .rejection_reasons
        .iter()
        .map(|r| format!("{}: {}", r.code, r.label))
        .collect::<Vec<_>>()
        .join("\n");
    let schema = s
        .payload_schema
        .as_ref()
        .map(|v| serde_json::to_string_pretty(v).unwrap_or_default())
        .unwrap_or_default();
    let refuse = s.breaker.on_open == OnOpen::RefuseAll;
    let redactions = s.redact_fields_in_chat.join("\n");
    view! {
        <form method="post" action=format!("{base}/draft/settings") class="stack settings" data-testid="settings-form">
            <h3>"Settings"</h3>
            <div class="filters">
                <label>"Deadline (minutes; empty for none) "<input type="number" min="1" name="deadline_minutes" value=num(s.deadline_minutes)/></label>
                <label>"Remind before (minutes) "<input type="number" min="1" name="reminder_before_minutes" value=num(s.reminder_before_minutes)/></label>
                <label>"Escalation team "<input type="text" name="escalation_group" value=s.escalation_group.clone().unwrap_or_default()/></label>
                <label>"Sample of auto for review (0 to 1) "<input type="text" name="auto_sample_rate" value=s.auto_sample_rate.to_string()/></label>
            </div>
            <label>"Rejection reasons (one per line, code: label)"<textarea name="rejection_reasons" rows="4">{reasons}</textarea></label>
            <label>"Payload schema (JSON Schema subset; empty for none)"<textarea name="payload_schema" rows="5">{schema}</textarea></label>
            <div class="filters">
                <label>"Breaker: open above (%) "<input type="text" name="breaker_rate_percent" value=format!("{}", s.breaker.rate * 100.0)/></label>
                <label>"over (minutes) "<input type="number" min="1" name="breaker_window_minutes" value=(s.breaker.window_ms / 60_000).to_string()/></label>
                <label>"with at least (decisions) "<input type="number" min="1" name="breaker_min_decisions" value=s.breaker.min_decisions.to_string()/></label>
                <label>"then "
                    <select name="breaker_on_open">
                        <option value="force_review" selected=!refuse>"send auto and log to review"</option>
                        <option value="refuse_all" selected=refuse>"refuse every request"</option>
                    </select>
                </label>
            </div>
            <input type="hidden" name="bulk_fields" value="1"/>
            <label class="check"><input type="checkbox" name="bulk_approve" checked=s.bulk_approve/>"Reviewers may approve this gate's review-tier requests several at a time (never dual)"</label>
            <input type="hidden" name="chat_fields" value="1"/>
            <label class="check"><input type="checkbox" name="include_payload_in_chat" checked=s.include_payload_in_chat/>"Include the payload in chat and webhook notifications (email never carries it)"</label>
            <label>"Fields redacted in chat (one JSON pointer per line, e.g. /iban or /lines/*/card)"<textarea name="redact_fields_in_chat" rows="3">{redactions}</textarea></label>
            <button type="submit">"Save settings"</button>
        </form>
    }
    .into_any()
}
