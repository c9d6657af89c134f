//! Sign-in throttling per account and per client address, stored in the database so every
//! server process sees the same counts.

use crate::server::db::{Db, Tx};
use crate::{on_db, on_tx};

/// Failures count for this long.
pub const WINDOW_MS: i64 = 15 * 60_000;
/// Failed attempts on one account within the window before it is locked.
pub const ACCOUNT_LIMIT: i64 = 5;
/// Failed attempts from one address within the window before it is locked.
pub const ADDRESS_LIMIT: i64 = 20;

pub fn account_key(email: &str) -> String {
    format!("account:{}", email.trim().to_lowercase())
}

pub fn address_key(ip: &std::net::IpAddr) -> String {
    format!("address:{ip}")
}

/// How long, in ms, until sign-in is allowed again for any of `keys`; `None` if not locked.
pub async fn locked_for(
    db: &Db,
    keys: &[(String, i64)],
    now: i64,
) -> Result<Option<i64>, sqlx::Error> {
    let mut wait: Option<i64> = None;
    for (key, limit) in keys {
        let (count, oldest): (i64, Option<i64>) = on_db!(db, |p| {
            sqlx::query_as(
            "SELECT COUNT(*), MIN(failed_at) FROM login_failures WHERE throttle_key = $1 AND failed_at > $2"
        )
        .bind(key)
        .bind(now - WINDOW_MS)
        .fetch_one(p)
        .await
        })?;
        if count >= *limit {
            let remaining = oldest.unwrap_or(now) + WINDOW_MS - now;
            wait = Some(wait.map_or(remaining, |w| w.max(remaining)));
        }
    }
    Ok(wait)
}

pub async fn record_failure(tx: &mut Tx, keys: &[&str], now: i64) -> Result<(), sqlx::Error> {
    on_tx!(tx, |c| {
        for key in keys {
            sqlx::query("INSERT INTO login_failures (throttle_key, failed_at) VALUES ($1, $2)")
                .bind(key)
                .bind(now)
                .execute(&mut *c)
                .await?;
        }
        sqlx::query("DELETE FROM login_failures WHERE failed_at < $1")
            .bind(now - WINDOW_MS)
            .execute(&mut *c)
            .await?;
        Ok(())
    })
}

pub async fn clear(tx: &mut Tx, key: &str) -> Result<(), sqlx::Error> {
    on_tx!(tx, |c| {
        sqlx::query("DELETE FROM login_failures WHERE throttle_key = $1")
            .bind(key)
            .execute(&mut *c)
            .await?;
        Ok(())
    })
}
