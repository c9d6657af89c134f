//! The gate editor's form posts (admins only). Each redirects back to the gate's page with a
//! notice or the reason it was refused; a refused change changes nothing.

use super::drafts::{self, DraftError, PublishOutcome};
use super::editor::{parse_action_types, parse_condition};
use crate::accounts::session::{set_flash, Flash};
use crate::admin::handlers::Admin;
use crate::domain::policy::{GateDefinition, RuleDefinition};
use crate::domain::tier::Tier;
use crate::server::{now_ms, AppState};
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;
use std::collections::HashMap;
use tower_sessions::Session;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/gates", post(create))
        .route("/gates/{key}/export.json", get(export))
        .route("/gates/{key}/draft", post(start))
        .route("/gates/{key}/draft/basics", post(basics))
        .route("/gates/{key}/draft/rules", post(add_rule))
        .route("/gates/{key}/draft/rules/{rule}", post(update_rule))
        .route("/gates/{key}/draft/rules/{rule}/delete", post(delete_rule))
        .route("/gates/{key}/draft/json", post(import))
        .route("/gates/{key}/draft/settings", post(settings))
        .route("/gates/{key}/draft/publish", post(publish))
        .route("/gates/{key}/draft/approve", post(approve))
        .route("/gates/{key}/draft/discard", post(discard))
}

async fn back(session: &Session, key: &str, result: Result<String, DraftError>) -> Response {
    let flash = match result {
        Ok(notice) => Flash {
            notice: Some(notice),
            ..Flash::default()
        },
        Err(DraftError::Refused(why)) => Flash {
            error: Some(why),
            ..Flash::default()
        },
        Err(DraftError::Db(e)) => Flash {
            error: Some(crate::error::internal(e).to_string()),
            ..Flash::default()
        },
    };
    set_flash(session, flash).await;
    let to = if key.is_empty() {
        "/gates".to_owned()
    } else {
        format!("/gates/{}", crate::shell::query_escape(key))
    };
    Redirect::to(&to).into_response()
}

/// Applies `change` to the gate's draft (see [`drafts::edit_draft`]) and goes back to the gate's
/// page with `notice(version)`, or with the reason the change was refused.
async fn edit_and_back(
    state: &AppState,
    admin: &crate::accounts::CurrentUser,
    session: &Session,
    key: &str,
    change: impl FnOnce(&mut GateDefinition) -> Result<(), String>,
    notice: impl FnOnce(i64) -> String,
) -> Response {
    let result = drafts::edit_draft(&state.db, &admin.id, key, change, now_ms())
        .await
        .map(notice);
    back(session, key, result).await
}

fn tier(text: &str) -> Result<Tier, String> {
    text.parse::<Tier>()
        .map_err(|_| format!("{text:?} is not a tier (auto, log, review, dual, block)"))
}

#[derive(Deserialize)]
struct NewGate {
    key: String,
    name: String,
    action_types: String,
    base_tier: String,
}

async fn create(
    State(state): State<AppState>,
    Admin(admin): Admin,
    session: Session,
    Form(form): Form<NewGate>,
) -> Response {
    let key = form.key.trim().to_owned();
    let result = async {
        let definition = GateDefinition {
            settings: Default::default(),
            key: key.clone(),
            name: form.name.trim().to_owned(),
            action_types: parse_action_types(&form.action_types),
            base_tier: tier(&form.base_tier).map_err(DraftError::Refused)?,
            rules: Vec::new(),
        };
        if definition.name.is_empty() {
            return Err(DraftError::Refused("name: give the gate a name".into()));
        }
        drafts::create_gate(&state.db, &admin.id, &definition, now_ms()).await?;
        Ok(format!(
            "Gate {key} created as a draft. Add rules, then publish."
        ))
    }
    .await;
    let to = if result.is_ok() { key.as_str() } else { "" };
    back(&session, to, result).await
}

async fn start(
    State(state): State<AppState>,
    Admin(admin): Admin,
    session: Session,
    Path(key): Path<String>,
) -> Response {
    edit_and_back(
        &state,
        &admin,
        &session,
        &key,
        |_| Ok(()),
        |v| format!("Draft version {v} started from the live version."),
    )
    .await
}

#[derive(Deserialize)]
struct Basics {
    name: String,
    action_types: String,
    base_tier: String,
}

async fn basics(
    State(state): State<AppState>,
    Admin(admin): Admin,
    session: Session,
    Path(key): Path<String>,
    Form(form): Form<Basics>,
) -> Response {
    edit_and_back(
        &state,
        &admin,
        &session,
        &key,
        |d| {
            let name = form.name.trim();
            if name.is_empty() {
                return Err("name: give the gate a name".into());
            }
            d.name = name.to_owned();
            d.action_types = parse_action_types(&form.action_types);
            d.base_tier = tier(&form.base_tier)?;
            Ok(())
        },
        |_| "Draft saved.".to_owned(),
    )
    .await
}

#[derive(Deserialize)]
struct NewRule {
    key: String,
    attribute: String,
    value: String,
    tier: String,
}

async fn add_rule(
    State(state): State<AppState>,
    Admin(admin): Admin,
    session: Session,
    Path(key): Path<String>,
    Form(form): Form<NewRule>,
) -> Response {
    let rule_key = form.key.trim().to_owned();
    edit_and_back(
        &state,
        &admin,
        &session,
        &key,
        |d| {
            if d.rules.iter().any(|r| r.key == rule_key) {
                return Err(format!("a rule {rule_key} exists; edit it instead"));
            }
            d.rules.push(RuleDefinition {
                key: rule_key.clone(),
                when: vec![parse_condition(&form.attribute, &form.value)
                    .map_err(|e| format!("rule {rule_key}: {e}"))?],
                tier: tier(&form.tier)?,
            });
            Ok(())
        },
        |_| format!("Rule {rule_key} added to the draft."),
    )
    .await
}

/// A rule's form: `tier`, and `attr_N` / `value_N` per condition row; a row with no attribute
/// or an empty value is dropped.
async fn update_rule(
    State(state): State<AppState>,
    Admin(admin): Admin,
    session: Session,
    Path((key, rule)): Path<(String, String)>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    edit_and_back(
        &state,
        &admin,
        &session,
        &key,
        |d| {
            let r = d
                .rules
                .iter_mut()
                .find(|r| r.key == rule)
                .ok_or_else(|| format!("there is no rule {rule}"))?;
            let mut when = Vec::new();
            for i in 0..20 {
                let attr = form
                    .get(&format!("attr_{i}"))
                    .map(|s| s.trim())
                    .unwrap_or("");
                let value = form
                    .get(&format!("value_{i}"))
                    .map(|s| s.trim())
                    .unwrap_or("");
                if attr.is_empty() || value.is_empty() {
                    continue;
                }
                when.push(parse_condition(attr, value).map_err(|e| format!("rule {rule}: {e}"))?);
            }
            if when.is_empty() {
                return Err(format!(
                    "rule {rule}: keep at least one condition (or delete the rule)"
                ));
            }
            r.when = when;
            r.tier = tier(form.get("tier").map(String::as_str).unwrap_or(""))?;
            Ok(())
        },
        |_| format!("Rule {rule} saved in the draft."),
    )
    .await
}

async fn delete_rule(
    State(state): State<AppState>,
    Admin(admin): Admin,
    session: Session,
    Path((key, rule)): Path<(String, String)>,
) -> Response {
    edit_and_back(
        &state,
        &admin,
        &session,
        &key,
        |d| {
            let before = d.rules.len();
            d.rules.retain(|r| r.key != rule);
            if d.rules.len() == before {
                return Err(format!("there is no rule {rule}"));
            }
            Ok(())
        },
        |_| format!("Rule {rule} removed from the draft."),
    )
    .await
}

#[derive(Deserialize)]
struct Import {
    json: String,
}

async fn import(
    State(state): State<AppState>,
    Admin(admin): Admin,
    session: Session,
    Path(key): Path<String>,
    Form(form): Form<Import>,
) -> Response {
    edit_and_back(
        &state,
        &admin,
        &session,
        &key,
        |d| {
            let de = &mut serde_json::Deserializer::from_str(&form.json);
            let imported: GateDefinition = serde_path_to_error::deserialize(de)
                .map_err(|e| format!("JSON at {}: {}", e.path(), e.inner()))?;
            *d = imported;
            Ok(())
        },
        |_| "Draft replaced from JSON.".to_owned(),
    )
    .await
}

async fn publish(
    State(state): State<AppState>,
    Admin(admin): Admin,
    session: Session,
    Path(key): Path<String>,
) -> Response {
    let result = drafts::request_publish(&state.db, &admin.id, &key, now_ms())
        .await
        .map(|o| match o {
            PublishOutcome::Published { version } => {
                format!("Version {version} is live. New requests are gated by it.")
            }
            PublishOutcome::AwaitingApproval { version, reasons } => format!(
                "Version {version} may loosen the policy ({}); a second admin must approve it.",
                reasons.join("; ")
            ),
        });
    back(&session, &key, result).await
}

async fn approve(
    State(state): State<AppState>,
    Admin(admin): Admin,
    session: Session,
    Path(key): Path<String>,
) -> Response {
    let result = drafts::approve(&state.db, &admin.id, &key, now_ms())
        .await
        .map(|v| format!("Approved: version {v} is live."));
    back(&session, &key, result).await
}

async fn discard(
    State(state): State<AppState>,
    Admin(admin): Admin,
    session: Session,
    Path(key): Path<String>,
) -> Response {
    let result = drafts::discard(&state.db, &admin.id, &key, now_ms())
        .await
        .map(|_| "Draft discarded.".to_owned());
    back(&session, &key, result).await
}

/// The draft (or, without one, the live version) as JSON, for review or reuse elsewhere.
async fn export(
    State(state): State<AppState>,
    Admin(_admin): Admin,
    Path(key): Path<String>,
) -> Response {
    match drafts::versions(&state.db, &key).await {
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            crate::error::internal(e).to_string(),
        )
            .into_response(),
        Ok(rows) => match rows.first() {
            None => (StatusCode::NOT_FOUND, "There is no such gate.").into_response(),
            Some(r) => {
                let pretty = serde_json::from_str::<serde_json::Value>(&r.definition)
                    .and_then(|v| serde_json::to_string_pretty(&v))
                    .unwrap_or_else(|_| r.definition.clone());
                (
                    [
                        (header::CONTENT_TYPE, "application/json".to_owned()),
                        (
                            header::CONTENT_DISPOSITION,
                            format!("attachment; filename=\"gate-{key}-v{}.json\"", r.version),
                        ),
                    ],
                    pretty,
                )
                    .into_response()
            }
        },
    }
}

#[derive(Deserialize)]
struct SettingsForm {
    deadline_minutes: String,
    reminder_before_minutes: String,
    escalation_group: String,
    auto_sample_rate: String,
    rejection_reasons: String,
    payload_schema: String,
    breaker_rate_percent: String,
    breaker_window_minutes: String,
    breaker_min_decisions: String,
    breaker_on_open: String,
    /// Present when the form carries the chat fields below (an unticked box sends nothing).
    #[serde(default)]
    chat_fields: Option<String>,
    #[serde(default)]
    include_payload_in_chat: Option<String>,
    #[serde(default)]
    redact_fields_in_chat: Option<String>,
    /// Present when the form carries the bulk-approval box (an unticked box sends nothing).
    #[serde(default)]
    bulk_fields: Option<String>,
    #[serde(default)]
    bulk_approve: Option<String>,
}

/// Reads the settings form onto `s`; each bad field is named. The settings as a whole are
/// validated again when the draft is checked against the live policy.
fn read_settings(
    form: &SettingsForm,
    s: &mut crate::domain::gate_settings::GateSettings,
) -> Result<(), String> {
    use crate::domain::breaker::OnOpen;
    use crate::domain::gate_settings::RejectionReason;
    let minutes = |text: &str, field: &str| -> Result<Option<u32>, String> {
        let t = text.trim();
        if t.is_empty() {
            return Ok(None);
        }
        t.parse::<u32>()
            .map(Some)
            .map_err(|_| format!("settings.{field}: a whole number of minutes, not {t:?}"))
    };
    let number = |text: &str, field: &str| -> Result<f64, String> {
        text.trim()
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .ok_or_else(|| format!("settings.{field}: a number, not {:?}", text.trim()))
    };
    s.deadline_minutes = minutes(&form.deadline_minutes, "deadline_minutes")?;
    s.reminder_before_minutes = minutes(&form.reminder_before_minutes, "reminder_before_minutes")?;
    s.escalation_group = Some(form.escalation_group.trim().to_owned()).filter(|g| !g.is_empty());
    s.auto_sample_rate = number(&form.auto_sample_rate, "auto_sample_rate")?;
    s.rejection_reasons = form
        .rejection_reasons
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| match l.split_once(':') {
            Some((code, label)) => Ok(RejectionReason {
                code: code.trim().to_owned(),
                label: label.trim().to_owned(),
            }),
            None => Err(format!(
                "settings.rejection_reasons: write each reason as code: label, not {l:?}"
            )),
        })
        .collect::<Result<_, _>>()?;
    s.payload_schema = match form.payload_schema.trim() {
        "" => None,
        text => Some(
            serde_json::from_str(text)
                .map_err(|e| format!("settings.payload_schema: not JSON: {e}"))?,
        ),
    };
    s.breaker.rate = number(&form.breaker_rate_percent, "breaker.rate")? / 100.0;
    s.breaker.window_ms = i64::from(
        minutes(&form.breaker_window_minutes, "breaker.window_ms")?
            .ok_or("settings.breaker.window_ms: give the window in minutes")?,
    ) * 60_000;
    s.breaker.min_decisions = minutes(&form.breaker_min_decisions, "breaker.min_decisions")?
        .ok_or("settings.breaker.min_decisions: give a number of decisions")?;
    if form.chat_fields.is_some() {
        s.include_payload_in_chat = form.include_payload_in_chat.is_some();
        s.redact_fields_in_chat = form
            .redact_fields_in_chat
            .as_deref()
            .unwrap_or_default()
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect();
    }
    if form.bulk_fields.is_some() {
        s.bulk_approve = form.bulk_approve.is_some();
    }
    s.breaker.on_open = match form.breaker_on_open.as_str() {
        "refuse_all" => OnOpen::RefuseAll,
        _ => OnOpen::ForceReview,
    };
    Ok(())
}

async fn settings(
    State(state): State<AppState>,
    Admin(admin): Admin,
    session: Session,
    Path(key): Path<String>,
    Form(form): Form<SettingsForm>,
) -> Response {
    // The escalation team must exist (a typo would escalate to nobody).
    if let Some(team) = Some(form.escalation_group.trim()).filter(|t| !t.is_empty()) {
        let known: Result<Option<String>, _> = crate::on_db!(&state.db, |p| sqlx::query_scalar(
            "SELECT id FROM teams WHERE name = $1"
        )
        .bind(team)
        .fetch_optional(p)
        .await);
        match known {
            Ok(Some(_)) => {}
            Ok(None) => {
                let why = format!("settings.escalation_group: there is no team {team:?}");
                return back(&session, &key, Err(DraftError::Refused(why))).await;
            }
            Err(e) => return back(&session, &key, Err(DraftError::Db(e))).await,
        }
    }
    edit_and_back(
        &state,
        &admin,
        &session,
        &key,
        |d| read_settings(&form, &mut d.settings),
        |_| "Settings saved in the draft.".to_owned(),
    )
    .await
}
