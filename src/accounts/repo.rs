//! Storage of users, roles, teams and agents (both engines).

use super::Role;
use crate::on_tx;
use crate::server::db::Tx;

pub async fn insert_user(
    tx: &mut Tx,
    id: &str,
    email: &str,
    display_name: &str,
    roles: &[Role],
    at: i64,
) -> Result<(), sqlx::Error> {
    on_tx!(tx, |c| {
        sqlx::query(
            "INSERT INTO users (id, email, display_name, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(id)
        .bind(email)
        .bind(display_name)
        .bind(at)
        .execute(&mut *c)
        .await?;
        for role in roles {
            sqlx::query("INSERT INTO user_roles (user_id, role) VALUES ($1, $2)")
                .bind(id)
                .bind(role.as_str())
                .execute(&mut *c)
                .await?;
        }
        Ok(())
    })
}

pub async fn insert_team(
    tx: &mut Tx,
    id: &str,
    name: &str,
    members: &[&str],
    at: i64,
) -> Result<(), sqlx::Error> {
    on_tx!(tx, |c| {
        sqlx::query("INSERT INTO teams (id, name, created_at) VALUES ($1, $2, $3)")
            .bind(id)
            .bind(name)
            .bind(at)
            .execute(&mut *c)
            .await?;
        for user_id in members {
            sqlx::query("INSERT INTO team_members (team_id, user_id) VALUES ($1, $2)")
                .bind(id)
                .bind(user_id)
                .execute(&mut *c)
                .await?;
        }
        Ok(())
    })
}

pub async fn insert_agent(
    tx: &mut Tx,
    id: &str,
    name: &str,
    description: &str,
    owner_user_id: Option<&str>,
    at: i64,
) -> Result<(), sqlx::Error> {
    on_tx!(tx, |c| {
        sqlx::query(
            "INSERT INTO agents (id, name, description, owner_user_id, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id)
        .bind(name)
        .bind(description)
        .bind(owner_user_id)
        .bind(at)
        .execute(&mut *c)
        .await?;
        Ok(())
    })
}
