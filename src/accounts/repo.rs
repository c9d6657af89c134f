//! Storage of users, roles, teams and agents (both engines).

use super::{CurrentUser, Role};
use crate::server::db::{Db, Tx};
use crate::{on_db, on_tx};

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

/// What sign-in needs to know about an account. Not `Serialize`: it holds the password hash.
#[derive(sqlx::FromRow)]
pub struct LoginRecord {
    pub id: String,
    pub password_hash: Option<String>,
    pub disabled: bool,
    pub session_epoch: i64,
}

pub async fn login_record(db: &Db, email: &str) -> Result<Option<LoginRecord>, sqlx::Error> {
    on_db!(db, |p| {
        sqlx::query_as(
        "SELECT id, password_hash, disabled, session_epoch FROM users WHERE LOWER(email) = LOWER($1)"
    )
    .bind(email)
    .fetch_optional(p)
    .await
    })
}

#[derive(sqlx::FromRow)]
struct UserRow {
    id: String,
    email: String,
    display_name: String,
    disabled: bool,
    session_epoch: i64,
}

/// The user behind a session, with roles, if the account is still active and `epoch` current.
pub async fn session_user(
    db: &Db,
    id: &str,
    epoch: i64,
) -> Result<Option<CurrentUser>, sqlx::Error> {
    let row: Option<UserRow> = on_db!(db, |p| sqlx::query_as(
        "SELECT id, email, display_name, disabled, session_epoch FROM users WHERE id = $1"
    )
    .bind(id)
    .fetch_optional(p)
    .await)?;
    let Some(row) = row.filter(|r| !r.disabled && r.session_epoch == epoch) else {
        return Ok(None);
    };
    let roles = roles_of(db, &row.id).await?;
    Ok(Some(CurrentUser {
        id: row.id,
        email: row.email,
        display_name: row.display_name,
        roles,
    }))
}

pub async fn roles_of(db: &Db, user_id: &str) -> Result<Vec<Role>, sqlx::Error> {
    let names: Vec<String> = on_db!(db, |p| sqlx::query_scalar(
        "SELECT role FROM user_roles WHERE user_id = $1 ORDER BY role"
    )
    .bind(user_id)
    .fetch_all(p)
    .await)?;
    Ok(names.iter().filter_map(|n| Role::parse(n)).collect())
}

pub async fn set_password_hash(tx: &mut Tx, user_id: &str, hash: &str) -> Result<(), sqlx::Error> {
    on_tx!(tx, |c| {
        sqlx::query("UPDATE users SET password_hash = $2 WHERE id = $1")
            .bind(user_id)
            .bind(hash)
            .execute(&mut *c)
            .await?;
        Ok(())
    })
}

/// Ends every session of the user (sessions carry the epoch they were created under).
pub async fn bump_session_epoch(tx: &mut Tx, user_id: &str) -> Result<(), sqlx::Error> {
    on_tx!(tx, |c| {
        sqlx::query("UPDATE users SET session_epoch = session_epoch + 1 WHERE id = $1")
            .bind(user_id)
            .execute(&mut *c)
            .await?;
        Ok(())
    })
}

pub async fn admin_exists(db: &Db) -> Result<bool, sqlx::Error> {
    let n: i64 = on_db!(db, |p| sqlx::query_scalar(
        "SELECT COUNT(*) FROM user_roles r JOIN users u ON u.id = r.user_id \
         WHERE r.role = 'admin' AND NOT u.disabled"
    )
    .fetch_one(p)
    .await)?;
    Ok(n > 0)
}

pub async fn email_taken(db: &Db, email: &str) -> Result<bool, sqlx::Error> {
    Ok(login_record(db, email).await?.is_some())
}

pub async fn insert_setup_token(
    db: &Db,
    token_sha256: &str,
    at: i64,
    expires_at: i64,
) -> Result<(), sqlx::Error> {
    on_db!(db, |p| sqlx::query(
        "INSERT INTO setup_tokens (token_sha256, created_at, expires_at) VALUES ($1, $2, $3)"
    )
    .bind(token_sha256)
    .bind(at)
    .bind(expires_at)
    .execute(p)
    .await
    .map(|_| ()))
}

/// Marks a setup token used; false when it is unknown, expired or already used.
pub async fn consume_setup_token(
    tx: &mut Tx,
    token_sha256: &str,
    at: i64,
) -> Result<bool, sqlx::Error> {
    on_tx!(tx, |c| {
        let done = sqlx::query(
            "UPDATE setup_tokens SET used_at = $2 WHERE token_sha256 = $1 AND used_at IS NULL AND expires_at > $2",
        )
        .bind(token_sha256)
        .bind(at)
        .execute(&mut *c)
        .await?;
        Ok(done.rows_affected() == 1)
    })
}

pub async fn setup_token_valid(db: &Db, token_sha256: &str, at: i64) -> Result<bool, sqlx::Error> {
    let n: i64 = on_db!(db, |p| {
        sqlx::query_scalar(
        "SELECT COUNT(*) FROM setup_tokens WHERE token_sha256 = $1 AND used_at IS NULL AND expires_at > $2"
    )
    .bind(token_sha256)
    .bind(at)
    .fetch_one(p)
    .await
    })?;
    Ok(n == 1)
}

/// Replaces the user's roles.
pub async fn set_roles(tx: &mut Tx, user_id: &str, roles: &[Role]) -> Result<(), sqlx::Error> {
    on_tx!(tx, |c| {
        sqlx::query("DELETE FROM user_roles WHERE user_id = $1")
            .bind(user_id)
            .execute(&mut *c)
            .await?;
        for role in roles {
            sqlx::query("INSERT INTO user_roles (user_id, role) VALUES ($1, $2)")
                .bind(user_id)
                .bind(role.as_str())
                .execute(&mut *c)
                .await?;
        }
        Ok(())
    })
}

pub async fn set_disabled(tx: &mut Tx, user_id: &str, disabled: bool) -> Result<(), sqlx::Error> {
    on_tx!(tx, |c| sqlx::query(
        "UPDATE users SET disabled = $2 WHERE id = $1"
    )
    .bind(user_id)
    .bind(disabled)
    .execute(&mut *c)
    .await
    .map(|_| ()))
}

/// Active admins other than `user_id` (so the last admin cannot lock everyone out).
pub async fn other_active_admins(tx: &mut Tx, user_id: &str) -> Result<i64, sqlx::Error> {
    on_tx!(tx, |c| sqlx::query_scalar(
        "SELECT COUNT(*) FROM user_roles r JOIN users u ON u.id = r.user_id \
         WHERE r.role = 'admin' AND NOT u.disabled AND u.id <> $1"
    )
    .bind(user_id)
    .fetch_one(&mut *c)
    .await)
}

pub async fn user_email(tx: &mut Tx, user_id: &str) -> Result<Option<(String, i64)>, sqlx::Error> {
    on_tx!(tx, |c| sqlx::query_as(
        "SELECT email, session_epoch FROM users WHERE id = $1"
    )
    .bind(user_id)
    .fetch_optional(&mut *c)
    .await)
}

pub async fn set_team_membership(
    tx: &mut Tx,
    team_id: &str,
    user_id: &str,
    member: bool,
) -> Result<(), sqlx::Error> {
    on_tx!(tx, |c| {
        if member {
            sqlx::query("INSERT INTO team_members (team_id, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                .bind(team_id)
                .bind(user_id)
                .execute(&mut *c)
                .await?;
        } else {
            sqlx::query("DELETE FROM team_members WHERE team_id = $1 AND user_id = $2")
                .bind(team_id)
                .bind(user_id)
                .execute(&mut *c)
                .await?;
        }
        Ok(())
    })
}

pub async fn team_name_taken(db: &Db, name: &str) -> Result<bool, sqlx::Error> {
    let n: i64 = on_db!(db, |p| sqlx::query_scalar(
        "SELECT COUNT(*) FROM teams WHERE LOWER(name) = LOWER($1)"
    )
    .bind(name)
    .fetch_one(p)
    .await)?;
    Ok(n > 0)
}
