//! Who may decide a request: the gate's eligible roles and teams, read from the gate version that
//! gated it (a policy change never moves a request in flight).

use crate::accounts::CurrentUser;
use crate::domain::gate_settings::GateSettings;
use crate::domain::policy::GateDefinition;
use crate::server::db::{Db, Tx};
use crate::{on_db, on_tx};

const SETTINGS: &str = "SELECT v.definition FROM action_requests r \
     JOIN gate_versions v ON v.gate_id = r.gate_id AND v.version = r.gate_version WHERE r.id = $1";
const TEAMS: &str =
    "SELECT t.name FROM team_members m JOIN teams t ON t.id = m.team_id WHERE m.user_id = $1";

/// The settings in a stored gate definition (defaults when there is none or it is unreadable).
pub fn settings_from_definition(definition: Option<String>) -> GateSettings {
    definition
        .and_then(|d| serde_json::from_str::<GateDefinition>(&d).ok())
        .map(|d| d.settings)
        .unwrap_or_default()
}

/// The settings of the gate version that gated `request_id` (defaults when no gate did).
pub async fn settings_of(db: &Db, request_id: &str) -> Result<GateSettings, sqlx::Error> {
    let d: Option<String> = on_db!(db, |p| sqlx::query_scalar(SETTINGS)
        .bind(request_id)
        .fetch_optional(p)
        .await)?;
    Ok(settings_from_definition(d))
}

pub async fn settings_of_tx(tx: &mut Tx, request_id: &str) -> Result<GateSettings, sqlx::Error> {
    let d: Option<String> = on_tx!(tx, |c| sqlx::query_scalar(SETTINGS)
        .bind(request_id)
        .fetch_optional(&mut *c)
        .await)?;
    Ok(settings_from_definition(d))
}

pub async fn teams_of(db: &Db, user_id: &str) -> Result<Vec<String>, sqlx::Error> {
    on_db!(db, |p| sqlx::query_scalar(TEAMS)
        .bind(user_id)
        .fetch_all(p)
        .await)
}

pub async fn teams_of_tx(tx: &mut Tx, user_id: &str) -> Result<Vec<String>, sqlx::Error> {
    on_tx!(tx, |c| sqlx::query_scalar(TEAMS)
        .bind(user_id)
        .fetch_all(&mut *c)
        .await)
}

/// Why `user` may not decide under `settings`, in words; `None` when they may.
pub fn why_not(settings: &GateSettings, user: &CurrentUser, teams: &[String]) -> Option<String> {
    let roles: Vec<&str> = user.roles.iter().map(|r| r.as_str()).collect();
    let teams: Vec<&str> = teams.iter().map(String::as_str).collect();
    if settings.is_eligible(&roles, &teams) {
        return None;
    }
    let mut who = format!(
        "people with the role {}",
        settings.eligible_roles.join(" or ")
    );
    if !settings.eligible_teams.is_empty() {
        who.push_str(&format!(
            " in the team {}",
            settings.eligible_teams.join(" or ")
        ));
    }
    Some(format!("This gate is decided by {who}."))
}
