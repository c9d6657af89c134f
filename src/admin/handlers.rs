//! Admin form posts: people, roles, teams, agents and their tokens. Admins only; every change
//! is audited; secrets are shown once on the next page.

use crate::accounts::session::{set_flash, Flash, KEY_EPOCH};
use crate::accounts::{password, password_policy, repo, CurrentUser, Role};
use crate::api::tokens;
use crate::audit::repo::{append, Actor};
use crate::server::{ids, now_ms, AppState};
use axum::extract::FromRequestParts;
use axum::extract::{Path, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::post;
use axum::{Form, Router};
use serde::Deserialize;
use serde_json::json;
use tower_sessions::Session;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/users", post(add_user))
        .route("/admin/users/{id}", post(update_user))
        .route("/admin/teams", post(add_team))
        .route("/admin/teams/{id}/members", post(team_member))
        .route("/admin/agents", post(add_agent))
        .route("/admin/agents/{name}/token", post(agent_token))
        .route("/admin/agents/{name}/revoke", post(agent_revoke))
        .route("/admin/agents/{name}/secret", post(agent_secret))
        .route("/admin/webhooks/{id}/redeliver", post(redeliver))
        .route("/admin/breakers/rearm", post(rearm_breaker))
}

/// Why a request to an admin endpoint is turned away.
pub(crate) enum Refusal {
    NotSignedIn,
    NotAdmin,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::NotSignedIn => Redirect::to("/login?next=%2Fadmin").into_response(),
            Refusal::NotAdmin => {
                (StatusCode::FORBIDDEN, "You are not allowed to do that.").into_response()
            }
        }
    }
}

/// The signed-in admin: an extractor, so every admin handler is refused to everyone else
/// before it runs.
pub(crate) struct Admin(pub CurrentUser);

impl FromRequestParts<AppState> for Admin {
    type Rejection = Refusal;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, Self::Rejection> {
        match parts.extensions.get::<CurrentUser>() {
            Some(u) if u.has(Role::Admin) => Ok(Admin(u.clone())),
            Some(_) => Err(Refusal::NotAdmin),
            None => Err(Refusal::NotSignedIn),
        }
    }
}

async fn done(session: &Session, result: Result<Flash, String>) -> Response {
    let flash = match result {
        Ok(f) => f,
        Err(error) => Flash {
            error: Some(error),
            ..Flash::default()
        },
    };
    set_flash(session, flash).await;
    Redirect::to("/admin").into_response()
}

fn notice(text: impl Into<String>) -> Flash {
    Flash {
        notice: Some(text.into()),
        ..Flash::default()
    }
}

fn internal(e: impl std::fmt::Display) -> String {
    crate::error::internal(e).to_string()
}

#[derive(Deserialize)]
pub struct RoleBoxes {
    #[serde(default)]
    role_reviewer: Option<String>,
    #[serde(default)]
    role_senior_reviewer: Option<String>,
    #[serde(default)]
    role_admin: Option<String>,
    #[serde(default)]
    role_auditor: Option<String>,
}

impl RoleBoxes {
    fn roles(&self) -> Vec<Role> {
        [
            (&self.role_reviewer, Role::Reviewer),
            (&self.role_senior_reviewer, Role::SeniorReviewer),
            (&self.role_admin, Role::Admin),
            (&self.role_auditor, Role::Auditor),
        ]
        .into_iter()
        .filter(|(v, _)| v.is_some())
        .map(|(_, r)| r)
        .collect()
    }
}

#[derive(Deserialize)]
pub struct AddUserForm {
    email: String,
    display_name: String,
    password: String,
    #[serde(flatten)]
    roles: RoleBoxes,
}

async fn add_user(
    State(state): State<AppState>,
    Admin(me): Admin,
    session: Session,
    Form(form): Form<AddUserForm>,
) -> Response {
    let result = async {
        let email = form.email.trim().to_owned();
        let name = form.display_name.trim().to_owned();
        let roles = form.roles.roles();
        if !email.contains('@') || email.len() > 254 {
            return Err("email: enter an email address".to_owned());
        }
        if name.is_empty() || name.chars().count() > 100 {
            return Err("name: enter a name of at most 100 characters".to_owned());
        }
        if roles.is_empty() {
            return Err("roles: choose at least one role".to_owned());
        }
        password_policy::check_new_password(&form.password, &email)
            .map_err(|m| format!("password: {m}"))?;
        if repo::email_taken(&state.db, &email)
            .await
            .map_err(internal)?
        {
            return Err(format!("email: {email} already has an account"));
        }
        let hash = password::hash_blocking(form.password.clone()).await;
        let id = ids::new_id("usr");
        let now = now_ms();
        let mut tx = state.db.begin_write().await.map_err(internal)?;
        repo::insert_user(&mut tx, &id, &email, &name, &roles, now)
            .await
            .map_err(internal)?;
        repo::set_password_hash(&mut tx, &id, &hash)
            .await
            .map_err(internal)?;
        let names: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
        append(
            &mut tx,
            &Actor::User(me.id.clone()),
            "user_created",
            None,
            json!({"user_id": id, "email": email, "roles": names}),
            now,
        )
        .await
        .map_err(internal)?;
        tx.commit().await.map_err(internal)?;
        Ok(notice(format!("{name} ({email}) can sign in now.")))
    }
    .await;
    done(&session, result).await
}

#[derive(Deserialize)]
pub struct UpdateUserForm {
    #[serde(flatten)]
    roles: RoleBoxes,
    #[serde(default)]
    disabled: Option<String>,
}

/// Changes a person's roles or disables them. Their sessions end (privileges are re-read at
/// the next sign-in); an admin changing themselves keeps working under a new session id.
async fn update_user(
    State(state): State<AppState>,
    Admin(me): Admin,
    session: Session,
    Path(id): Path<String>,
    Form(form): Form<UpdateUserForm>,
) -> Response {
    let roles = form.roles.roles();
    let disabled = form.disabled.is_some();
    let result = async {
        if roles.is_empty() {
            return Err("roles: keep at least one role (disable the account instead)".to_owned());
        }
        let now = now_ms();
        let mut tx = state.db.begin_write().await.map_err(internal)?;
        let Some((email, _)) = repo::user_email(&mut tx, &id).await.map_err(internal)? else {
            return Err("That person does not exist.".to_owned());
        };
        if (!roles.contains(&Role::Admin) || disabled) && repo::other_active_admins(&mut tx, &id).await.map_err(internal)? == 0 {
            return Err("At least one active admin must remain.".to_owned());
        }
        let before = repo::roles_of(&state.db, &id).await.map_err(internal)?;
        repo::set_roles(&mut tx, &id, &roles).await.map_err(internal)?;
        repo::set_disabled(&mut tx, &id, disabled).await.map_err(internal)?;
        repo::bump_session_epoch(&mut tx, &id).await.map_err(internal)?;
        let names = |rs: &[Role]| rs.iter().map(|r| r.as_str()).collect::<Vec<_>>();
        append(
            &mut tx,
            &Actor::User(me.id.clone()),
            "user_changed",
            None,
            json!({"user_id": id, "email": email, "roles_before": names(&before), "roles_after": names(&roles), "disabled": disabled}),
            now,
        )
        .await
        .map_err(internal)?;
        tx.commit().await.map_err(internal)?;
        Ok(email)
    }
    .await;
    if let (Ok(_), true) = (&result, id == me.id) {
        // A privilege change on one's own account: a new session id, under the new epoch.
        let epoch = repo::login_record(&state.db, &me.email)
            .await
            .ok()
            .flatten()
            .map(|r| r.session_epoch);
        let _ = session.cycle_id().await;
        if let Some(epoch) = epoch {
            let _ = session.insert(KEY_EPOCH, epoch).await;
        }
    }
    done(
        &session,
        result.map(|email| notice(format!("Saved {email}; their sessions were ended."))),
    )
    .await
}

#[derive(Deserialize)]
pub struct TeamForm {
    name: String,
}

async fn add_team(
    State(state): State<AppState>,
    Admin(me): Admin,
    session: Session,
    Form(form): Form<TeamForm>,
) -> Response {
    let result = async {
        let name = form.name.trim().to_owned();
        if name.is_empty() || name.chars().count() > 80 {
            return Err("team: enter a name of at most 80 characters".to_owned());
        }
        if repo::team_name_taken(&state.db, &name)
            .await
            .map_err(internal)?
        {
            return Err(format!("team: {name} exists already"));
        }
        let id = ids::new_id("team");
        let now = now_ms();
        let mut tx = state.db.begin_write().await.map_err(internal)?;
        repo::insert_team(&mut tx, &id, &name, &[], now)
            .await
            .map_err(internal)?;
        append(
            &mut tx,
            &Actor::User(me.id.clone()),
            "team_created",
            None,
            json!({"team_id": id, "name": name}),
            now,
        )
        .await
        .map_err(internal)?;
        tx.commit().await.map_err(internal)?;
        Ok(notice(format!("Team {name} created.")))
    }
    .await;
    done(&session, result).await
}

#[derive(Deserialize)]
pub struct MemberForm {
    user_id: String,
    /// "add" or "remove".
    change: String,
}

async fn team_member(
    State(state): State<AppState>,
    Admin(me): Admin,
    session: Session,
    Path(team_id): Path<String>,
    Form(form): Form<MemberForm>,
) -> Response {
    let result = async {
        let member = match form.change.as_str() {
            "add" => true,
            "remove" => false,
            _ => return Err("change: add or remove".to_owned()),
        };
        let now = now_ms();
        let mut tx = state.db.begin_write().await.map_err(internal)?;
        if repo::user_email(&mut tx, &form.user_id)
            .await
            .map_err(internal)?
            .is_none()
        {
            return Err("That person does not exist.".to_owned());
        }
        repo::set_team_membership(&mut tx, &team_id, &form.user_id, member)
            .await
            .map_err(|_| "That team does not exist.".to_owned())?;
        append(
            &mut tx,
            &Actor::User(me.id.clone()),
            if member {
                "team_member_added"
            } else {
                "team_member_removed"
            },
            None,
            json!({"team_id": team_id, "user_id": form.user_id}),
            now,
        )
        .await
        .map_err(internal)?;
        tx.commit().await.map_err(internal)?;
        Ok(notice("Team updated."))
    }
    .await;
    done(&session, result).await
}

#[derive(Deserialize)]
pub struct AgentForm {
    name: String,
    #[serde(default)]
    description: String,
}

async fn add_agent(
    State(state): State<AppState>,
    Admin(me): Admin,
    session: Session,
    Form(form): Form<AgentForm>,
) -> Response {
    let name = form.name.trim().to_owned();
    let result = tokens::create_agent(
        &state.db,
        &name,
        form.description.trim(),
        &Actor::User(me.id),
    )
    .await
    .map(|a| Flash {
        notice: Some(format!("Agent {name} registered.")),
        reveal: vec![
            (format!("API token for {name}"), a.token),
            (format!("Webhook secret for {name}"), a.webhook_secret),
        ],
        ..Flash::default()
    })
    .map_err(|e| format!("agent: {e:#}"));
    done(&session, result).await
}

#[derive(Deserialize)]
pub struct TokenForm {
    #[serde(default)]
    revoke_others: Option<String>,
}

async fn agent_token(
    State(state): State<AppState>,
    Admin(me): Admin,
    session: Session,
    Path(name): Path<String>,
    Form(form): Form<TokenForm>,
) -> Response {
    let rotate = form.revoke_others.is_some();
    let result = tokens::issue_token(&state.db, &name, rotate, &Actor::User(me.id))
        .await
        .map(|token| Flash {
            notice: Some(if rotate {
                format!("New token for {name}; earlier tokens no longer work.")
            } else {
                format!("New token for {name}.")
            }),
            reveal: vec![(format!("API token for {name}"), token)],
            ..Flash::default()
        })
        .map_err(|e| format!("agent: {e:#}"));
    done(&session, result).await
}

async fn agent_revoke(
    State(state): State<AppState>,
    Admin(me): Admin,
    session: Session,
    Path(name): Path<String>,
) -> Response {
    let result = tokens::revoke_tokens(&state.db, &name, &Actor::User(me.id))
        .await
        .map(|n| {
            notice(format!(
                "Revoked {n} token(s) of {name}; they stop working now."
            ))
        })
        .map_err(|e| format!("agent: {e:#}"));
    done(&session, result).await
}

async fn agent_secret(
    State(state): State<AppState>,
    Admin(me): Admin,
    session: Session,
    Path(name): Path<String>,
) -> Response {
    let result = tokens::rotate_webhook_secret(&state.db, &name, &Actor::User(me.id))
        .await
        .map(|secret| Flash {
            notice: Some(format!(
                "New webhook secret for {name}; webhooks are signed with it from now on."
            )),
            reveal: vec![(format!("Webhook secret for {name}"), secret)],
            ..Flash::default()
        })
        .map_err(|e| format!("agent: {e:#}"));
    done(&session, result).await
}

/// Sends a webhook message again (same id and body) now, whatever happened to it before. After
/// the retry schedule is used up, a redelivery is one attempt; its result joins the delivery log.
async fn redeliver(
    State(state): State<AppState>,
    Admin(me): Admin,
    session: Session,
    Path(id): Path<String>,
) -> Response {
    let result = async {
        let now = now_ms();
        let mut tx = state.db.begin_write().await.map_err(internal)?;
        let request_id: Option<String> = crate::on_tx!(&mut tx, |c| sqlx::query_scalar(
            "UPDATE webhook_outbox SET delivered_at = NULL, gave_up_at = NULL, locked_until = NULL, \
             next_attempt_at = $2 WHERE id = $1 RETURNING request_id"
        )
        .bind(&id)
        .bind(now)
        .fetch_optional(&mut *c)
        .await)
        .map_err(internal)?;
        let Some(request_id) = request_id else {
            return Err("That webhook message does not exist.".to_owned());
        };
        append(&mut tx, &Actor::User(me.id.clone()), "webhook_redelivery_requested", Some(&request_id), json!({"message_id": id}), now)
            .await
            .map_err(internal)?;
        tx.commit().await.map_err(internal)?;
        state.notify_changed();
        Ok(notice(format!("Message {id} is being sent again.")))
    }
    .await;
    done(&session, result).await
}

#[derive(Deserialize)]
pub struct RearmForm {
    agent: String,
    #[serde(default)]
    gate: String,
}

/// Closes an open circuit breaker; decisions before now no longer count towards it.
async fn rearm_breaker(
    State(state): State<AppState>,
    Admin(admin): Admin,
    session: Session,
    Form(form): Form<RearmForm>,
) -> Response {
    let result = async {
        let ids: Option<(String, Option<String>)> = crate::on_db!(&state.db, |p| {
            sqlx::query_as(
            "SELECT a.id, (SELECT id FROM gates WHERE key = $2) FROM agents a WHERE a.name = $1"
        )
        .bind(&form.agent)
        .bind(&form.gate)
        .fetch_optional(p)
        .await
        })
        .map_err(internal)?;
        let Some((agent_id, gate_id)) = ids else {
            return Err(format!("There is no agent {}.", form.agent));
        };
        let gate_id = if form.gate.is_empty() {
            String::new()
        } else {
            gate_id.ok_or_else(|| format!("There is no gate {}.", form.gate))?
        };
        match crate::gates::breakers::rearm(&state.db, &admin.id, &agent_id, &gate_id, now_ms())
            .await
            .map_err(internal)?
        {
            true => Ok(notice(format!("Breaker for {} re-armed.", form.agent))),
            false => Err("That breaker is not open.".to_owned()),
        }
    }
    .await;
    done(&session, result).await
}
