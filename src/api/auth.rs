//! Agent authentication: `Authorization: Bearer <token>`, looked up by SHA-256. Tokens are
//! random, shown once when created, stored only as a hash, revocable, and scoped to one agent.

use super::problem::Problem;
use crate::on_db;
use crate::requests::repo::sha256_hex;
use crate::server::AppState;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;

/// The agent making an API call.
#[derive(Debug, Clone)]
pub struct Agent {
    pub id: String,
    pub name: String,
}

/// Prefix of every agent token, so leaked tokens are recognisable (secret scanners).
pub const TOKEN_PREFIX: &str = "csa_";

/// A new random token (256 bits).
pub fn new_token() -> String {
    format!("{TOKEN_PREFIX}{}", crate::server::ids::random_token())
}

impl FromRequestParts<AppState> for Agent {
    type Rejection = Problem;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| t.starts_with(TOKEN_PREFIX) && t.len() < 200)
            .ok_or_else(Problem::unauthenticated)?;
        let hash = sha256_hex(token.as_bytes());
        let row: Option<(String, String)> = on_db!(&state.db, |p| sqlx::query_as(
            "SELECT a.id, a.name FROM agent_tokens t JOIN agents a ON a.id = t.agent_id \
             WHERE t.token_sha256 = $1 AND t.revoked_at IS NULL"
        )
        .bind(&hash)
        .fetch_optional(p)
        .await)?;
        let (id, name) = row.ok_or_else(Problem::unauthenticated)?;
        Ok(Agent { id, name })
    }
}
