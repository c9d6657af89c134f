//! Claims: the soft lock a reviewer takes by opening an open request they may decide, so others
//! see "Dana is reviewing (since 14:02 UTC)". Advisory only: a claim never stops anyone else from
//! deciding. It ends when the request is decided (in the deciding transaction), when its holder
//! leaves (the Release button, or the page's `pagehide` beacon), or when it expires.
//!
//! The inbox list shows holders by joining `request_claims` with `users` under
//! [`ACTIVE_CLAIM`]; [`holders`] does the same for any set of requests.

use serde::{Deserialize, Serialize};

/// How long a claim lasts without the holder coming back to the page.
pub const CLAIM_TTL_MS: i64 = 10 * 60 * 1000;

/// SQL condition (claims aliased `c`, requests `r`) under which a claim still counts: unexpired,
/// on a request that is still open. `$NOW` is replaced by the caller's placeholder.
pub const ACTIVE_CLAIM: &str =
    "c.expires_at > $NOW AND r.status IN ('pending', 'in_review', 'escalated')";

/// Who holds a request, as a page shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimView {
    pub user_id: String,
    pub holder: String,
    /// Whether the signed-in person is the holder.
    pub mine: bool,
    pub claimed_at: i64,
    pub expires_at: i64,
}

impl ClaimView {
    /// "Dana Whitfield is reviewing (since 14:02 UTC)" or "You are reviewing this (since ...)".
    pub fn sentence(&self) -> String {
        let since = hh_mm_utc(self.claimed_at);
        if self.mine {
            format!("You are reviewing this (since {since}); others see that you are.")
        } else {
            format!("{} is reviewing (since {since})", self.holder)
        }
    }
}

/// "14:02 UTC".
pub fn hh_mm_utc(ms: i64) -> String {
    let iso = crate::domain::time::iso_utc(ms);
    format!("{} UTC", &iso[11..16])
}

#[cfg(feature = "ssr")]
pub use server::*;

#[cfg(feature = "ssr")]
mod server {
    use super::{ClaimView, ACTIVE_CLAIM, CLAIM_TTL_MS};
    use crate::audit::repo::{append, Actor};
    use crate::error::AppError;
    use crate::server::db::{Db, Tx};
    use crate::{on_db, on_tx};
    use serde_json::json;
    use std::collections::HashMap;

    #[derive(sqlx::FromRow)]
    struct Row {
        request_id: String,
        user_id: String,
        holder: String,
        claimed_at: i64,
        expires_at: i64,
    }

    fn select(where_: &str) -> String {
        format!(
            "SELECT c.request_id, c.user_id, u.display_name AS holder, c.claimed_at, c.expires_at \
             FROM request_claims c JOIN users u ON u.id = c.user_id \
             JOIN action_requests r ON r.id = c.request_id WHERE {} AND {where_}",
            ACTIVE_CLAIM.replace("$NOW", "$1")
        )
    }

    fn view(r: Row, me: &str) -> ClaimView {
        ClaimView {
            mine: r.user_id == me,
            user_id: r.user_id,
            holder: r.holder,
            claimed_at: r.claimed_at,
            expires_at: r.expires_at,
        }
    }

    /// The claim on `request_id` that still counts, if any.
    pub async fn current(
        db: &Db,
        request_id: &str,
        me: &str,
        now: i64,
    ) -> Result<Option<ClaimView>, AppError> {
        let sql = select("c.request_id = $2");
        let row: Option<Row> = on_db!(db, |p| sqlx::query_as(&sql)
            .bind(now)
            .bind(request_id)
            .fetch_optional(p)
            .await)?;
        Ok(row.map(|r| view(r, me)))
    }

    /// The claims that still count on any of `request_ids`, by request id (for lists).
    pub async fn holders(
        db: &Db,
        request_ids: &[String],
        me: &str,
        now: i64,
    ) -> Result<HashMap<String, ClaimView>, AppError> {
        if request_ids.is_empty() {
            return Ok(HashMap::new());
        }
        let marks: Vec<String> = (0..request_ids.len())
            .map(|i| format!("${}", i + 2))
            .collect();
        let sql = select(&format!("c.request_id IN ({})", marks.join(", ")));
        let rows: Vec<Row> = on_db!(db, |p| {
            let mut q = sqlx::query_as::<_, Row>(&sql).bind(now);
            for id in request_ids {
                q = q.bind(id);
            }
            q.fetch_all(p).await
        })?;
        Ok(rows
            .into_iter()
            .map(|r| (r.request_id.clone(), view(r, me)))
            .collect())
    }

    /// Takes or renews the claim of `user_id` on `request_id` when it is free, expired or
    /// already theirs, and returns whoever holds it afterwards. A new claim is audited; renewing
    /// one is not (every page view is audited already).
    pub async fn take(
        db: &Db,
        request_id: &str,
        user_id: &str,
        now: i64,
    ) -> Result<Option<ClaimView>, AppError> {
        let mut tx = db.begin_write().await?;
        let before: Option<(String, i64)> = on_tx!(&mut tx, |c| sqlx::query_as(
            "SELECT user_id, expires_at FROM request_claims WHERE request_id = $1"
        )
        .bind(request_id)
        .fetch_optional(&mut *c)
        .await)?;
        let fresh = match &before {
            None => true,
            Some((holder, expires)) => holder != user_id || *expires <= now,
        };
        // Someone else's live claim stays; ours is renewed; a free or expired one becomes ours.
        let changed = on_tx!(&mut tx, |c| sqlx::query(
            "INSERT INTO request_claims (request_id, user_id, claimed_at, expires_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (request_id) DO UPDATE SET \
             user_id = excluded.user_id, expires_at = excluded.expires_at, \
             claimed_at = CASE WHEN request_claims.user_id = excluded.user_id \
               AND request_claims.expires_at > $3 THEN request_claims.claimed_at \
               ELSE excluded.claimed_at END \
             WHERE request_claims.user_id = excluded.user_id OR request_claims.expires_at <= $3"
        )
        .bind(request_id)
        .bind(user_id)
        .bind(now)
        .bind(now + CLAIM_TTL_MS)
        .execute(&mut *c)
        .await
        .map(|r| r.rows_affected()))?;
        if changed > 0 && fresh {
            append(
                &mut tx,
                &Actor::User(user_id.to_owned()),
                "request_claimed",
                Some(request_id),
                json!({"expires_at": now + CLAIM_TTL_MS, "took_over_expired": before.is_some()}),
                now,
            )
            .await?;
        }
        tx.commit().await?;
        current(db, request_id, user_id, now).await
    }

    /// Ends `user_id`'s own claim on `request_id`; says whether there was one.
    pub async fn release(db: &Db, request_id: &str, user_id: &str) -> Result<bool, AppError> {
        let now = crate::server::now_ms();
        let mut tx = db.begin_write().await?;
        let gone = on_tx!(&mut tx, |c| sqlx::query(
            "DELETE FROM request_claims WHERE request_id = $1 AND user_id = $2"
        )
        .bind(request_id)
        .bind(user_id)
        .execute(&mut *c)
        .await
        .map(|r| r.rows_affected()))?;
        if gone > 0 {
            append(
                &mut tx,
                &Actor::User(user_id.to_owned()),
                "request_released",
                Some(request_id),
                json!({}),
                now,
            )
            .await?;
        }
        tx.commit().await?;
        Ok(gone > 0)
    }

    /// Ends any claim on `request_id`, in the caller's (deciding) transaction.
    pub async fn release_all(tx: &mut Tx, request_id: &str) -> Result<(), sqlx::Error> {
        on_tx!(tx, |c| sqlx::query(
            "DELETE FROM request_claims WHERE request_id = $1"
        )
        .bind(request_id)
        .execute(&mut *c)
        .await
        .map(|_| ()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sentence_names_the_holder_and_the_time() {
        let c = ClaimView {
            user_id: "usr_dana".into(),
            holder: "Dana Whitfield".into(),
            mine: false,
            // 2026-12-01T14:02:30Z
            claimed_at: 1_796_133_750_000,
            expires_at: 0,
        };
        assert_eq!(
            c.sentence(),
            "Dana Whitfield is reviewing (since 14:02 UTC)"
        );
        let mine = ClaimView { mine: true, ..c };
        assert!(mine.sentence().starts_with("You are reviewing this"));
    }
}
