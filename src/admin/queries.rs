//! Admin reads (both engines).

use super::{AdminData, AgentLine, UserLine};
use crate::accounts::Role;
use crate::error::AppError;
use crate::on_db;
use crate::server::db::Db;

/// (id, display name, email, disabled)
type UserRow = (String, String, String, bool);
/// (user id, role or team name)
type Membership = (String, String);
/// (name, description, request count)
type AgentRow = (String, String, i64);

pub async fn overview(db: &Db) -> Result<AdminData, AppError> {
    let (users, roles, teams, agents): (
        Vec<UserRow>,
        Vec<Membership>,
        Vec<Membership>,
        Vec<AgentRow>,
    ) = on_db!(db, |p| {
        let users = sqlx::query_as(
            "SELECT id, display_name, email, disabled FROM users ORDER BY display_name",
        )
        .fetch_all(p)
        .await?;
        let roles = sqlx::query_as("SELECT user_id, role FROM user_roles ORDER BY role")
            .fetch_all(p)
            .await?;
        let teams = sqlx::query_as(
            "SELECT m.user_id, t.name FROM team_members m JOIN teams t ON t.id = m.team_id ORDER BY t.name",
        )
        .fetch_all(p)
        .await?;
        let agents = sqlx::query_as(
            "SELECT a.name, a.description, (SELECT COUNT(*) FROM action_requests r WHERE r.agent_id = a.id) \
             FROM agents a ORDER BY a.name",
        )
        .fetch_all(p)
        .await?;
        (users, roles, teams, agents)
    });
    Ok(AdminData {
        users: users
            .into_iter()
            .map(|(id, display_name, email, disabled)| UserLine {
                roles: roles
                    .iter()
                    .filter(|(u, _)| *u == id)
                    .filter_map(|(_, r)| Role::parse(r))
                    .collect(),
                teams: teams
                    .iter()
                    .filter(|(u, _)| *u == id)
                    .map(|(_, t)| t.clone())
                    .collect(),
                display_name,
                email,
                disabled,
            })
            .collect(),
        agents: agents
            .into_iter()
            .map(|(name, description, requests)| AgentLine {
                name,
                description,
                requests,
            })
            .collect(),
    })
}
