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

/// A decided request like this one (same action type; same counterparty or same agent).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimilarLine {
    pub id: String,
    pub title: String,
    pub amount: Option<String>,
    pub status: String,
    pub decided_at: Option<i64>,
    pub by: Option<String>,
    pub reason: Option<String>,
    /// "same counterparty" or "same agent".
    pub why: String,
}

/// One state version of the request: what changed it and when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VersionLine {
    pub version: i64,
    pub cause: String,
    pub at: i64,
}

/// What changed between two state versions (the agent revised it, or a dual round was sent back).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RevisionDiff {
    pub from: i64,
    pub to: i64,
    pub changes: Vec<crate::domain::diff::FieldChange>,
}

/// Everything the request page shows beyond the checkpoint itself.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DetailExtras {
    pub claim: Option<super::claims::ClaimView>,
    pub notice: Option<String>,
    pub similar: Vec<SimilarLine>,
    pub versions: Vec<VersionLine>,
    pub revision: Option<RevisionDiff>,
    /// The reviewer came back from a decision refused because the request changed.
    pub stale: bool,
    /// The reviewer's edit waiting for confirmation (pretty JSON text, maybe invalid).
    pub draft: Option<String>,
    /// Proposed -> edited, on the preview step.
    pub preview: Option<Vec<crate::domain::diff::FieldChange>>,
    /// The edit form generated from the gate's payload schema (empty: the JSON editor).
    pub schema_fields: Vec<super::edit_form::FormField>,
    /// The approved edit of a decided request: proposed -> edited.
    pub edit_diff: Option<Vec<crate::domain::diff::FieldChange>>,
    pub unified: bool,
    pub step: String,
    pub rules: Vec<String>,
    pub gate_key: Option<String>,
    pub escalation_group: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DetailPage {
    pub d: RequestDetail,
    pub x: DetailExtras,
}

/// The proposal as it stands, its state version and its gate's settings.
#[cfg(feature = "ssr")]
pub async fn proposal(
    db: &crate::server::Db,
    id: &str,
) -> Result<
    (
        serde_json::Value,
        i64,
        crate::domain::gate_settings::GateSettings,
    ),
    AppError,
> {
    let row: Option<(String, i64)> = crate::on_db!(db, |p| sqlx::query_as(
        "SELECT payload, state_version FROM action_requests WHERE id = $1"
    )
    .bind(id)
    .fetch_optional(p)
    .await)?;
    let (payload, version) = row.ok_or(AppError::NotFound)?;
    let settings = crate::gates::eligibility::settings_of(db, id).await?;
    Ok((
        serde_json::from_str(&payload).map_err(crate::error::internal)?,
        version,
        settings,
    ))
}

/// Rule names from the stored `matched_rules` (strings, or objects naming gate and rule).
#[cfg(feature = "ssr")]
fn rule_names(matched: &str) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_str(matched).unwrap_or_default();
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|m| match m {
                    serde_json::Value::String(s) => s.clone(),
                    serde_json::Value::Object(o) => {
                        let get = |k: &str| o.get(k).and_then(|v| v.as_str()).map(str::to_owned);
                        let rule = get("rule").or(get("rule_key")).or(get("key"));
                        let gate = get("gate").or(get("gate_key"));
                        let tier = get("tier");
                        let mut s = match (gate, rule) {
                            (Some(g), Some(r)) => format!("{g} / {r}"),
                            (None, Some(r)) => r,
                            (Some(g), None) => g,
                            (None, None) => m.to_string(),
                        };
                        if let Some(t) = tier {
                            s.push_str(&format!(" → {t}"));
                        }
                        s
                    }
                    other => other.to_string(),
                })
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(feature = "ssr")]
async fn similar(
    db: &crate::server::Db,
    id: &str,
) -> Result<(Vec<SimilarLine>, Vec<String>, Option<String>), AppError> {
    #[derive(sqlx::FromRow)]
    struct Me {
        action_type: String,
        agent_id: String,
        counterparty: Option<String>,
        matched_rules: String,
        gate_key: Option<String>,
    }
    #[derive(sqlx::FromRow)]
    struct Row {
        id: String,
        title: String,
        amount_minor: Option<i64>,
        currency: Option<String>,
        status: String,
        decided_at: Option<i64>,
        by: Option<String>,
        reason: Option<String>,
    }
    let me: Option<Me> = crate::on_db!(db, |p| sqlx::query_as(
        "SELECT r.action_type, r.agent_id, r.counterparty, r.matched_rules, g.key AS gate_key \
         FROM action_requests r LEFT JOIN gates g ON g.id = r.gate_id WHERE r.id = $1"
    )
    .bind(id)
    .fetch_optional(p)
    .await)?;
    let me = me.ok_or(AppError::NotFound)?;
    // Requests a human decided: the tiers that wait for one, no longer open.
    let base = "SELECT r.id, r.title, r.amount_minor, r.currency, r.status, r.decided_at, \
         (SELECT u.display_name FROM decisions d JOIN users u ON u.id = d.reviewer_id \
            WHERE d.request_id = r.id AND d.kind <> 'escalate' ORDER BY d.created_at DESC LIMIT 1) AS by, \
         (SELECT d.reason_text FROM decisions d WHERE d.request_id = r.id \
            AND d.kind IN ('reject', 'expire') ORDER BY d.created_at DESC LIMIT 1) AS reason \
         FROM action_requests r WHERE r.action_type = $2 AND r.id <> $3 \
         AND r.tier IN ('review', 'dual') AND r.decided_at IS NOT NULL AND COL = $1 \
         ORDER BY r.created_at DESC LIMIT 5";
    let mut out: Vec<SimilarLine> = Vec::new();
    let mut lookups: Vec<(&str, String, &str)> = Vec::new();
    if let Some(c) = &me.counterparty {
        lookups.push(("r.counterparty", c.clone(), "same counterparty"));
    }
    lookups.push(("r.agent_id", me.agent_id.clone(), "same agent"));
    for (col, value, why) in lookups {
        if out.len() >= 5 {
            break;
        }
        let sql = base.replace("COL", col);
        let rows: Vec<Row> = crate::on_db!(db, |p| sqlx::query_as(&sql)
            .bind(&value)
            .bind(&me.action_type)
            .bind(id)
            .fetch_all(p)
            .await)?;
        for r in rows {
            if out.len() < 5 && !out.iter().any(|o| o.id == r.id) {
                out.push(SimilarLine {
                    amount: crate::domain::policy::money_fact(
                        r.amount_minor,
                        r.currency.as_deref(),
                    )
                    .map(|m| m.to_string()),
                    id: r.id,
                    title: r.title,
                    status: r.status,
                    decided_at: r.decided_at,
                    by: r.by,
                    reason: r.reason,
                    why: why.to_owned(),
                });
            }
        }
    }
    Ok((out, rule_names(&me.matched_rules), me.gate_key))
}

#[cfg(feature = "ssr")]
async fn snapshot(
    db: &crate::server::Db,
    id: &str,
    version: i64,
) -> Result<serde_json::Value, AppError> {
    let s: Option<String> = crate::on_db!(db, |p| sqlx::query_scalar(
        "SELECT snapshot FROM request_states WHERE request_id = $1 AND version = $2"
    )
    .bind(id)
    .bind(version)
    .fetch_optional(p)
    .await)?;
    let s = s.ok_or_else(|| AppError::invalid("since", "this request has no such version"))?;
    serde_json::from_str(&s).map_err(crate::error::internal)
}

/// The request page's data: the checkpoint (recorded as seen, invariant 6), the claim (taken
/// when the reader may decide it), similar past requests, versions and the diffs asked for.
#[server(endpoint = "load_request_page")]
pub async fn load_request_page(
    id: String,
    diff: Option<String>,
    since: Option<String>,
    step: Option<String>,
) -> Result<DetailPage, AppError> {
    use crate::domain::diff::field_diff;
    let user = crate::accounts::session::require_user()?;
    let state = crate::server::state()?;
    let unified = match diff.as_deref().filter(|s| !s.is_empty()) {
        None | Some("split") => false,
        Some("unified") => true,
        Some(_) => return Err(AppError::invalid("diff", "choose split or unified")),
    };
    let since = since
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<i64>()
                .ok()
                .filter(|v| *v >= 1)
                .ok_or_else(|| AppError::invalid("since", "must be a version number from 1"))
        })
        .transpose()?;
    let step = match step.as_deref().filter(|s| !s.is_empty()) {
        None => String::new(),
        Some(s @ ("edit" | "preview")) => s.to_owned(),
        Some(_) => return Err(AppError::invalid("step", "choose edit or preview")),
    };
    let session = leptos_axum::extract::<tower_sessions::Session>().await.ok();
    let mut flash = crate::accounts::session::Flash::default();
    let mut draft: Option<super::handlers::EditDraft> = None;
    if let Some(s) = &session {
        flash = s
            .remove(crate::accounts::session::KEY_FLASH)
            .await
            .ok()
            .flatten()
            .unwrap_or_default();
        draft = s.get(super::handlers::KEY_EDIT_DRAFT).await.ok().flatten();
    }
    let mut d = super::queries::request_detail(&state.db, &id, &user).await?;
    d.flash_error = flash.error.clone();
    let parts = leptos::prelude::use_context::<axum::http::request::Parts>();
    let (ip, agent) = parts
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
    super::queries::record_view(&state.db, &user, &d, ip.as_deref(), &agent).await?;
    let now = crate::server::now_ms();
    let open = d
        .status
        .parse::<crate::domain::status::Status>()
        .is_ok_and(|s| s.is_open());
    let claim = if open && d.cannot_decide.is_none() {
        super::claims::take(&state.db, &id, &user.id, now).await?
    } else {
        super::claims::current(&state.db, &id, &user.id, now).await?
    };
    let (similar, rules, gate_key) = similar(&state.db, &id).await?;
    let versions: Vec<(i64, String, i64)> = crate::on_db!(&state.db, |p| {
        sqlx::query_as(
        "SELECT version, cause, created_at FROM request_states WHERE request_id = $1 ORDER BY version"
    )
    .bind(&id)
    .fetch_all(p)
    .await
    })?;
    let revision = match since {
        Some(from) if from > d.state_version => {
            return Err(AppError::invalid(
                "since",
                "this request has no such version",
            ))
        }
        Some(from) if from < d.state_version => Some(RevisionDiff {
            from,
            to: d.state_version,
            changes: field_diff(
                &snapshot(&state.db, &id, from).await?,
                &snapshot(&state.db, &id, d.state_version).await?,
            ),
        }),
        Some(_) => None,
        None if d.state_version > 1 => Some(RevisionDiff {
            from: d.state_version - 1,
            to: d.state_version,
            changes: field_diff(
                &snapshot(&state.db, &id, d.state_version - 1).await?,
                &snapshot(&state.db, &id, d.state_version).await?,
            ),
        }),
        None => None,
    };
    let stale = since.is_some_and(|v| v < d.state_version)
        && flash
            .error
            .as_deref()
            .is_some_and(|e| e.contains("changed since you opened it"));
    let proposed: serde_json::Value =
        serde_json::from_str(&d.payload).map_err(crate::error::internal)?;
    // A draft only counts for the version it was written against.
    let draft = draft
        .filter(|dr| dr.request_id == id && dr.state_version == d.state_version)
        .map(|dr| dr.payload);
    let preview = match (&draft, step.as_str()) {
        (Some(text), "preview") => serde_json::from_str::<serde_json::Value>(text)
            .ok()
            .map(|edited| field_diff(&proposed, &edited)),
        _ => None,
    };
    let settings = crate::gates::eligibility::settings_of(&state.db, &id).await?;
    let edited: Option<Option<String>> = crate::on_db!(&state.db, |p| {
        sqlx::query_scalar(
        "SELECT edited_payload FROM decisions WHERE request_id = $1 AND kind = 'approve_with_edit' \
         ORDER BY created_at DESC LIMIT 1"
    )
    .bind(&id)
    .fetch_optional(p)
    .await
    })?;
    let edit_diff = edited
        .flatten()
        .filter(|_| !open)
        .and_then(|e| serde_json::from_str::<serde_json::Value>(&e).ok())
        .map(|e| field_diff(&proposed, &e));
    Ok(DetailPage {
        x: DetailExtras {
            claim,
            notice: flash.notice,
            similar,
            versions: versions
                .into_iter()
                .map(|(version, cause, at)| VersionLine { version, cause, at })
                .collect(),
            revision,
            stale,
            draft,
            preview,
            schema_fields: super::edit_form::fields_of(settings.payload_schema.as_ref(), &proposed),
            edit_diff,
            unified,
            step,
            rules,
            gate_key,
            escalation_group: settings
                .escalation_group
                .clone()
                .unwrap_or_else(|| "the senior reviewers".to_owned()),
        },
        d,
    })
}

#[component]
pub fn RequestPage() -> impl IntoView {
    let params = use_params_map();
    let query = leptos_router::hooks::use_query_map();
    let id = move || params.read().get("id").unwrap_or_default();
    let data = Resource::new(
        move || {
            let q = query.read();
            (id(), q.get("diff"), q.get("since"), q.get("step"))
        },
        |(id, diff, since, step)| load_request_page(id, diff, since, step),
    );
    view! {
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                match data.await {
                    Err(e) => view! { <Title text="Request"/><ErrorNotice error=e/> }.into_any(),
                    Ok(p) => view! { <Detail d=p.d x=p.x/> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn Fact(label: &'static str, value: Option<String>) -> impl IntoView {
    value.map(|v| view! { <dt>{label}</dt><dd>{v}</dd> })
}

/// Links that switch the diffs between side by side and unified, keeping the rest of the URL.
#[component]
fn DiffToggle(id: String, unified: bool, keep: String) -> impl IntoView {
    let href = |mode: &str| format!("/inbox/{id}?diff={mode}{keep}");
    view! {
        <nav class="diff-toggle" aria-label="Diff layout">
            <a href=href("split") aria-current=(!unified).then_some("true")>"Side by side"</a>
            <a href=href("unified") aria-current=unified.then_some("true")>"Unified"</a>
        </nav>
    }
}

/// Ends the claim when the reviewer leaves the page (closes the tab, follows a link elsewhere),
/// with a beacon to the same address the Release button posts to. Moving within this request
/// (its forms, the diff toggles) keeps the claim. Without JavaScript the claim simply expires.
fn beacon_script(id: &str) -> String {
    format!(
        "(function(){{var stay=false,id={id:?};\
document.addEventListener('submit',function(){{stay=true;}});\
document.addEventListener('click',function(e){{var a=e.target.closest?e.target.closest('a'):null;\
if(a){{var h=a.getAttribute('href')||'';if(h.indexOf('/inbox/'+id)===0){{stay=true;}}}}}});\
window.addEventListener('pagehide',function(){{if(!stay){{navigator.sendBeacon('/inbox/'+id+'/release?beacon=1');}}stay=false;}});}})();"
    )
}

#[component]
fn Detail(d: RequestDetail, x: DetailExtras) -> impl IntoView {
    use super::card::{ActionCard, DiffView};
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
    let unified = x.unified;
    // Query parameters other than the layout, for the toggle links.
    let keep = {
        let mut k = String::new();
        if x.stale {
            if let Some(r) = &x.revision {
                k.push_str(&format!("&since={}", r.from));
            }
        }
        if !x.step.is_empty() {
            k.push_str(&format!("&step={}", x.step));
        }
        k
    };
    let sv = d.state_version.to_string();
    let may_decide = open && d.cannot_decide.is_none();
    let id = d.id.clone();
    let claim = x.claim.clone();
    let beacon = claim
        .as_ref()
        .filter(|c| c.mine)
        .map(|_| beacon_script(&d.id));
    let nonce = leptos::nonce::use_nonce();
    let step = x.step.clone();
    let draft_text = x.draft.clone().unwrap_or_else(|| pretty(&d.payload));
    let preview_panel = x.preview.clone().filter(|_| may_decide).map(|changes| {
        let draft = x.draft.clone().unwrap_or_default();
        view! {
            <section class="card preview" id="preview" data-testid="edit-preview">
                <h2>"Check your edit before approving"</h2>
                <p>"Proposed by the agent → your edit. The agent will execute exactly the edited version."</p>
                <DiffView changes unified before="Proposed" after="Your edit" testid="edit-diff"/>
                <form method="post" action=action.clone() class="stack decide">
                    <input type="hidden" name="state_version" value=sv.clone()/>
                    <input type="hidden" name="then" value="next"/>
                    <input type="hidden" name="payload" value=draft/>
                    <button type="submit" name="verdict" value="approve_with_edit" data-kbd="approve">"Approve with these changes"</button>
                </form>
                <p><a href=format!("/inbox/{}?step=edit#edit", d.id)>"Back to editing"</a>" · "<a href=format!("/inbox/{}", d.id)>"Discard the edit"</a></p>
            </section>
        }
    });
    let schema_fields = x.schema_fields.clone();
    let edit_open = step == "edit";
    let edit_form = view! {
        <details class="edit" id="edit" open=edit_open>
            <summary data-kbd="edit">"Edit, then approve"</summary>
            <form method="post" action=format!("/inbox/{}/edit", d.id) class="stack decide">
                <input type="hidden" name="state_version" value=sv.clone()/>
                {if schema_fields.is_empty() {
                    view! {
                        <label>"Payload to approve (the agent executes exactly this)"
                            <textarea name="payload" rows="12" class="json" spellcheck="false">{draft_text.clone()}</textarea>
                        </label>
                        <p class="muted">"JSON. It must change something and fit the gate's payload schema; you see the difference before approving."</p>
                    }.into_any()
                } else {
                    view! {
                        <p class="muted">"Fields from the gate's payload schema; you see the difference before approving."</p>
                        {schema_fields.into_iter().map(|f| view! { <SchemaField f/> }).collect_view()}
                    }.into_any()
                }}
                <button type="submit">"Preview the changes"</button>
            </form>
        </details>
    };
    view! {
        <Title text=title.clone()/>
        {beacon.map(|js| view! { <script nonce=nonce inner_html=js></script> })}
        <p class="crumbs"><a href="/inbox">"← Inbox"</a></p>
        <div class="page-head">
            <h1>{title}</h1>
            <span class=format!("tier tier-{}", d.tier)>{d.tier.clone()}</span>
            <super::KeyboardHelp/>
        </div>
        {x.notice.clone().map(|n| view! { <p class="notice" role="status">{n}</p> })}
        {d.flash_error.clone().map(|e| view! { <p class="error" role="alert">{e}</p> })}
        {claim.clone().filter(|_| open).map(|c| {
            let mine = c.mine;
            view! {
                <div class={if mine { "claim mine" } else { "claim other" }} data-testid="claim">
                    <span>{c.sentence()}</span>
                    {(!mine).then(|| view! { <span class="muted">" You can still decide; they will see it is done."</span> })}
                    {mine.then(|| view! {
                        <form method="post" action=format!("/inbox/{}/release", id) class="inline">
                            <button type="submit" class="secondary">"Release"</button>
                        </form>
                    })}
                </div>
            }
        })}
        {x.revision.clone().filter(|_| x.stale).map(|r| view! {
            <section class="card changed" id="changed" data-testid="revision-changed">
                <h2>{format!("Changed since you opened it: version {} → {}", r.from, r.to)}</h2>
                <p>"Your decision was not recorded. Here is what changed; decide again on the new version."</p>
                <DiffToggle id=id.clone() unified keep=keep.clone()/>
                <DiffView changes=r.changes unified before="You saw" after="Now" testid="revision-diff"/>
            </section>
        })}
        {preview_panel}
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
                    <dt>"Version"</dt><dd data-testid="state-version">{d.state_version}</dd>
                </dl>
                <h3>"What the agent would do"</h3>
                <ActionCard payload=d.payload.clone()/>
                {d.current_state.clone().map(|before| view! {
                    <div class="diff-head">
                        <h3>"What would change"</h3>
                        <DiffToggle id=id.clone() unified keep=keep.clone()/>
                    </div>
                    <Changes before payload=d.payload.clone() unified/>
                })}
                {x.edit_diff.clone().map(|changes| view! {
                    <h3>"The reviewer's edit (proposed → approved)"</h3>
                    <DiffView changes unified before="Proposed" after="Approved" testid="approved-edit-diff"/>
                })}
                <details class="raw">
                    <summary>"Payload as JSON"</summary>
                    <pre class="json" data-testid="payload">{pretty(&d.payload)}</pre>
                </details>
                {d.current_state.clone().map(|s| view! {
                    <details class="raw"><summary>"Current record as JSON"</summary><pre class="json">{pretty(&s)}</pre></details>
                })}
            </section>
            <section class="card">
                <h2>"Why it is here"</h2>
                <p data-testid="explanation">{d.explanation.clone()}</p>
                <p class="muted">
                    {match (&x.gate_key, d.gate.clone()) {
                        (Some(key), Some(g)) => view! { <a href=format!("/gates/{key}")>{g}</a> }.into_any(),
                        (_, g) => view! { <span>{g.unwrap_or_else(|| "No gate matched: every unmatched action waits for a person.".into())}</span> }.into_any(),
                    }}
                </p>
                {(!x.rules.is_empty()).then(|| view! {
                    <p class="muted">"Rules that caught it: "{x.rules.join(", ")}</p>
                })}
                <h3>"Agent's reasoning"</h3>
                <p class="reasoning prose">{if d.reasoning.is_empty() { "(none given)".to_owned() } else { d.reasoning.clone() }}</p>
                <p class="muted">{match d.confidence {
                    Some(c) => format!("Confidence {:.0}%{}", c * 100.0, if c < 0.7 { " (low)" } else { "" }),
                    None => "No confidence given".to_owned(),
                }}{d.acting_for.clone().map(|a| format!(" · Acting for {a}"))}</p>
                {d.inputs.clone().map(|s| view! { <h3>"Inputs"</h3><ActionCard payload=s/> })}
                {d.alternatives.clone().map(|s| view! { <h3>"Alternatives considered"</h3><ActionCard payload=s/> })}
                {d.dual.clone().filter(|_| open).map(|dual| view! { <DualStatus dual/> })}
                {match (open, d.cannot_decide.clone()) {
                    (false, _) => view! { <p class="notice">"This request is decided; nothing to do."</p> }.into_any(),
                    (true, Some(why)) => view! { <p class="notice" data-testid="cannot-decide">{why}</p> }.into_any(),
                    (true, None) => view! {
                        <h2>{if d.dual.is_some() { "Your review (one of two)" } else { "Decide" }}</h2>
                        <form method="post" action=action.clone() class="stack decide">
                            <input type="hidden" name="state_version" value=sv.clone()/>
                            <input type="hidden" name="then" value="next"/>
                            <button type="submit" name="verdict" value="approve" data-kbd="approve">"Approve"</button>
                        </form>
                        {edit_form}
                        <form method="post" action=action.clone() class="stack decide">
                            <input type="hidden" name="state_version" value=sv.clone()/>
                            <input type="hidden" name="then" value="next"/>
                            {(!d.rejection_reasons.is_empty()).then(|| view! {
                                <label>"Reason "
                                    <select name="reason_code">
                                        <option value="">"(choose, or write one below)"</option>
                                        {d.rejection_reasons.iter().map(|(code, label)| view! { <option value=code.clone()>{label.clone()}</option> }).collect_view()}
                                    </select>
                                </label>
                            })}
                            <label>"Reason for rejecting (sent to the agent)"
                                <textarea name="reason" rows="3" maxlength="2000" data-kbd="reject"></textarea>
                            </label>
                            <button type="submit" name="verdict" value="reject" class="danger">"Reject"</button>
                        </form>
                        {(d.status != "escalated").then(|| view! {
                            <details class="escalate">
                                <summary data-kbd="escalate">"Escalate"</summary>
                                <form method="post" action=action.clone() class="stack decide">
                                    <input type="hidden" name="state_version" value=sv.clone()/>
                                    <input type="hidden" name="then" value="next"/>
                                    <label>{format!("Note for {} (required)", x.escalation_group)}
                                        <textarea name="note" rows="3" maxlength="2000"></textarea>
                                    </label>
                                    <button type="submit" name="verdict" value="escalate" class="secondary">"Escalate with this note"</button>
                                </form>
                            </details>
                        })}
                    }.into_any(),
                }}
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
                {(x.versions.len() > 1).then(|| view! {
                    <h3>"Versions"</h3>
                    <ul class="history" data-testid="versions">
                        {x.versions.iter().map(|v| {
                            let compare = (v.version < d.state_version).then(|| view! {
                                " · "<a href=format!("/inbox/{}?since={}#revision", d.id, v.version)>"compare with now"</a>
                            });
                            view! {
                                <li>{format!("Version {}: {}", v.version, v.cause.replace('_', " "))}" · "
                                    <time datetime=iso_utc(v.at)>{iso_utc(v.at)}</time>{compare}</li>
                            }
                        }).collect_view()}
                    </ul>
                })}
                {x.revision.clone().filter(|_| !x.stale).map(|r| view! {
                    <section id="revision">
                        <h3>{format!("What changed from version {} to {}", r.from, r.to)}</h3>
                        <DiffView changes=r.changes unified before="Before" after="Now" testid="revision-diff"/>
                    </section>
                })}
            </section>
        </div>
        <section class="card similar">
            <h2>"Similar past requests"</h2>
            {if x.similar.is_empty() {
                view! { <p class="muted" data-testid="similar">"No decided request of this kind with the same counterparty or agent yet."</p> }.into_any()
            } else {
                view! {
                    <table class="similar-table" data-testid="similar">
                        <thead><tr><th scope="col">"Request"</th><th scope="col">"Amount"</th><th scope="col">"Outcome"</th><th scope="col">"By"</th><th scope="col">"Decided"</th><th scope="col">"Alike by"</th></tr></thead>
                        <tbody>
                            {x.similar.iter().map(|s| {
                                let outcome = s.status.parse::<crate::domain::status::Status>().map(|st| st.label()).unwrap_or("Unknown");
                                view! {
                                    <tr>
                                        <td><a href=format!("/inbox/{}", s.id)>{if s.title.is_empty() { s.id.clone() } else { s.title.clone() }}</a></td>
                                        <td>{s.amount.clone().unwrap_or_default()}</td>
                                        <td><span class=format!("outcome outcome-{}", s.status)>{outcome}</span>{s.reason.clone().map(|r| view! { <span class="muted">{format!(": {r}")}</span> })}</td>
                                        <td>{s.by.clone().unwrap_or_else(|| "Countersign".into())}</td>
                                        <td>{s.decided_at.map(|t| view! { <time datetime=iso_utc(t) title=iso_utc(t)>{format!("{} ago", compact_duration(d.now - t))}</time> })}</td>
                                        <td class="muted">{s.why.clone()}</td>
                                    </tr>
                                }
                            }).collect_view()}
                        </tbody>
                    </table>
                }.into_any()
            }}
        </section>
        {d.dual.clone().filter(|_| open).map(|dual| view! { <ConflictPanel request_id=d.id.clone() dual/> })}
    }
}

/// One input of the schema-generated edit form.
#[component]
fn SchemaField(f: super::edit_form::FormField) -> impl IntoView {
    use super::edit_form::FieldKind;
    let name = format!("f{}", f.pointer);
    let input = match f.kind.clone() {
        FieldKind::LongText => view! { <textarea name=name rows="6" required=f.required>{f.value.clone()}</textarea> }.into_any(),
        FieldKind::Json => view! { <textarea name=name rows="3" class="json" spellcheck="false">{f.value.clone()}</textarea> }.into_any(),
        FieldKind::Number => view! { <input type="number" step="any" name=name value=f.value.clone() required=f.required/> }.into_any(),
        FieldKind::Integer => view! { <input type="number" step="1" name=name value=f.value.clone() required=f.required/> }.into_any(),
        FieldKind::Boolean => view! {
            <input type="hidden" name=name.clone() value="false"/>
            <input type="checkbox" name=name value="true" checked={f.value == "true"}/>
        }.into_any(),
        FieldKind::Choice(options) => view! {
            <select name=name>
                {(!f.required).then(|| view! { <option value="">"(none)"</option> })}
                {options.into_iter().map(|o| {
                    let selected = o == f.value;
                    let shown = serde_json::from_str::<serde_json::Value>(&o).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_else(|| o.clone());
                    view! { <option value=o selected=selected>{shown}</option> }
                }).collect_view()}
            </select>
        }.into_any(),
        FieldKind::Text => view! { <input type="text" name=name value=f.value.clone() required=f.required/> }.into_any(),
    };
    view! {
        <label class="schema-field">
            <span>{f.label.clone()}{f.required.then_some(" *")}</span>
            {input}
            {f.description.clone().map(|t| view! { <small class="muted">{t}</small> })}
        </label>
    }
}
/// Before (the record as it is) against proposed (the payload), field by field, with long text
/// compared word by word.
#[component]
pub fn Changes(before: String, payload: String, #[prop(optional)] unified: bool) -> impl IntoView {
    use crate::domain::diff::field_diff;
    let parse =
        |s: &str| serde_json::from_str::<serde_json::Value>(s).unwrap_or(serde_json::Value::Null);
    let changes = field_diff(&parse(&before), &parse(&payload));
    view! {
        <super::card::DiffView changes unified before="Now" after="Proposed" testid="field-diff"/>
    }
}
