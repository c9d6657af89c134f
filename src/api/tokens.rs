//! Agent tokens and webhook secrets: created, rotated and revoked (command line now, admin
//! screens later). Every change is audited.

use super::auth::new_token;
use crate::audit::repo::{append, Actor};
use crate::requests::repo::sha256_hex;
use crate::server::db::Db;
use crate::server::{ids, jobs, now_ms};
use crate::{on_db, on_tx};
use serde_json::json;

pub struct NewAgent {
    pub id: String,
    pub token: String,
    pub webhook_secret: String,
}

async fn agent_id(db: &Db, name: &str) -> anyhow::Result<String> {
    let id: Option<String> = on_db!(db, |p| sqlx::query_scalar(
        "SELECT id FROM agents WHERE name = $1"
    )
    .bind(name)
    .fetch_optional(p)
    .await)?;
    id.ok_or_else(|| anyhow::anyhow!("no agent named {name:?}"))
}

fn check_name(name: &str) -> anyhow::Result<()> {
    if name.is_empty()
        || name.len() > 64
        || !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
    {
        anyhow::bail!(
            "agent names use lower-case letters, digits, '-' and '_' (at most 64), e.g. refund-bot"
        );
    }
    Ok(())
}

/// Creates an agent with a webhook secret and its first token.
pub async fn create_agent(
    db: &Db,
    name: &str,
    description: &str,
    by: &Actor,
) -> anyhow::Result<NewAgent> {
    check_name(name)?;
    if agent_id(db, name).await.is_ok() {
        anyhow::bail!("an agent named {name:?} already exists");
    }
    let now = now_ms();
    let id = ids::new_id("agt");
    let secret = jobs::new_webhook_secret();
    let mut tx = db.begin_write().await?;
    crate::accounts::repo::insert_agent(&mut tx, &id, name, description, None, now).await?;
    on_tx!(&mut tx, |c| sqlx::query(
        "UPDATE agents SET webhook_secret = $2 WHERE id = $1"
    )
    .bind(&id)
    .bind(&secret)
    .execute(&mut *c)
    .await
    .map(|r| r.rows_affected()))?;
    append(
        &mut tx,
        by,
        "agent_created",
        None,
        json!({"agent_id": id, "name": name}),
        now,
    )
    .await?;
    tx.commit().await?;
    let token = issue_token(db, name, false, by).await?;
    Ok(NewAgent {
        id,
        token,
        webhook_secret: secret,
    })
}

/// Revokes the agent's active tokens in the caller's transaction; returns how many.
async fn revoke_all(
    tx: &mut crate::server::db::Tx,
    agent_id: &str,
    now: i64,
) -> Result<u64, sqlx::Error> {
    on_tx!(tx, |c| sqlx::query(
        "UPDATE agent_tokens SET revoked_at = $2 WHERE agent_id = $1 AND revoked_at IS NULL"
    )
    .bind(agent_id)
    .bind(now)
    .execute(&mut *c)
    .await
    .map(|r| r.rows_affected()))
}

/// A new token for the agent; with `revoke_others`, every earlier token stops working at once.
pub async fn issue_token(
    db: &Db,
    name: &str,
    revoke_others: bool,
    by: &Actor,
) -> anyhow::Result<String> {
    let id = agent_id(db, name).await?;
    let token = new_token();
    let now = now_ms();
    let mut tx = db.begin_write().await?;
    if revoke_others {
        revoke_all(&mut tx, &id, now).await?;
    }
    let token_id = ids::new_id("tok");
    on_tx!(&mut tx, |c| {
        sqlx::query(
        "INSERT INTO agent_tokens (id, agent_id, token_sha256, token_prefix, created_at) VALUES ($1, $2, $3, $4, $5)"
    )
    .bind(&token_id)
    .bind(&id)
    .bind(sha256_hex(token.as_bytes()))
    .bind(&token[..12])
    .bind(now)
    .execute(&mut *c)
    .await
    .map(|r| r.rows_affected())
    })?;
    append(
        &mut tx,
        by,
        if revoke_others {
            "agent_token_rotated"
        } else {
            "agent_token_created"
        },
        None,
        json!({"agent_id": id, "token_id": token_id, "prefix": &token[..12]}),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(token)
}

/// Revokes every token of the agent; returns how many were active.
pub async fn revoke_tokens(db: &Db, name: &str, by: &Actor) -> anyhow::Result<u64> {
    let id = agent_id(db, name).await?;
    let now = now_ms();
    let mut tx = db.begin_write().await?;
    let n = revoke_all(&mut tx, &id, now).await?;
    append(
        &mut tx,
        by,
        "agent_tokens_revoked",
        None,
        json!({"agent_id": id, "count": n}),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(n)
}

/// Replaces the agent's webhook signing secret and returns the new one.
pub async fn rotate_webhook_secret(db: &Db, name: &str, by: &Actor) -> anyhow::Result<String> {
    let id = agent_id(db, name).await?;
    let secret = jobs::new_webhook_secret();
    let now = now_ms();
    let mut tx = db.begin_write().await?;
    on_tx!(&mut tx, |c| sqlx::query(
        "UPDATE agents SET webhook_secret = $2 WHERE id = $1"
    )
    .bind(&id)
    .bind(&secret)
    .execute(&mut *c)
    .await
    .map(|r| r.rows_affected()))?;
    append(
        &mut tx,
        by,
        "agent_webhook_secret_rotated",
        None,
        json!({"agent_id": id}),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(secret)
}
