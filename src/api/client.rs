//! A small typed client for the agent API, for Rust agents and for our own tests.
//!
//! ```no_run
//! # async fn example() -> Result<(), countersign::api::client::ClientError> {
//! use countersign::api::client::Client;
//! use countersign::api::checkpoint::CheckpointBody;
//! let client = Client::new("http://127.0.0.1:3000", "csa_...");
//! let checkpoint: CheckpointBody = serde_json::from_value(serde_json::json!({
//!     "action_type": "payment.refund",
//!     "payload": {"order_id": "ORD-1", "amount": "42.00", "currency": "EUR"},
//!     "amount": {"value": "42.00", "currency": "EUR"}
//! })).unwrap();
//! let submitted = client.submit("refund-ORD-1", &checkpoint).await?;
//! let decided = client.wait_for_decision(&submitted.id, std::time::Duration::from_secs(3600)).await?;
//! if let (Some(token), Some(payload)) = (&decided.approval_token, &decided.approved_payload) {
//!     // ... execute `payload`, then:
//!     client.report_execution(&decided.id, token, payload, true, None).await?;
//! }
//! # Ok(()) }
//! ```

use super::checkpoint::CheckpointBody;
use super::view::ActionView;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// An RFC 9457 problem as the server sent it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProblemBody {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    #[serde(default)]
    pub field: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{} {}: {}", .0.status, .0.title, .0.detail)]
    Problem(ProblemBody),
    #[error("could not reach Countersign: {0}")]
    Transport(String),
    #[error("unexpected answer from Countersign: {0}")]
    Decode(String),
}

#[derive(Clone)]
pub struct Client {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl Client {
    /// `base` is the server's address (`https://countersign.example.com`); `token` the agent's.
    pub fn new(base: &str, token: &str) -> Client {
        Client {
            base: base.trim_end_matches('/').to_owned(),
            token: token.to_owned(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(90))
                .build()
                .expect("HTTP client builds"),
        }
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Result<ActionView, ClientError> {
        let res = req
            .bearer_auth(&self.token)
            .send()
            .await
            .map_err(|e| ClientError::Transport(e.to_string()))?;
        let status = res.status();
        let bytes = res
            .bytes()
            .await
            .map_err(|e| ClientError::Transport(e.to_string()))?;
        if status.is_success() {
            serde_json::from_slice(&bytes).map_err(|e| ClientError::Decode(e.to_string()))
        } else {
            Err(match serde_json::from_slice::<ProblemBody>(&bytes) {
                Ok(p) => ClientError::Problem(p),
                Err(_) => {
                    ClientError::Decode(format!("{status}: {}", String::from_utf8_lossy(&bytes)))
                }
            })
        }
    }

    /// Submits a checkpoint. Retrying with the same key and body is safe: it returns the original
    /// answer.
    pub async fn submit(
        &self,
        idempotency_key: &str,
        checkpoint: &CheckpointBody,
    ) -> Result<ActionView, ClientError> {
        self.send(
            self.http
                .post(format!("{}/api/v1/actions", self.base))
                .header("idempotency-key", idempotency_key)
                .json(checkpoint),
        )
        .await
    }

    /// The request's status now; with `wait`, as soon as it is decided or when `wait` ends.
    pub async fn get(&self, id: &str, wait: Option<Duration>) -> Result<ActionView, ClientError> {
        let mut url = format!("{}/api/v1/actions/{id}", self.base);
        if let Some(w) = wait {
            url.push_str(&format!("?wait={}ms", w.as_millis().min(60_000)));
        }
        self.send(self.http.get(url)).await
    }

    /// Long-polls until the request is no longer open or `max` has passed.
    pub async fn wait_for_decision(
        &self,
        id: &str,
        max: Duration,
    ) -> Result<ActionView, ClientError> {
        let start = Instant::now();
        loop {
            let left = max.saturating_sub(start.elapsed());
            let view = self
                .get(id, Some(left.min(Duration::from_secs(60))))
                .await?;
            if !matches!(view.status.as_str(), "pending" | "in_review" | "escalated")
                || left.is_zero()
            {
                return Ok(view);
            }
        }
    }

    pub async fn withdraw(&self, id: &str) -> Result<ActionView, ClientError> {
        self.send(
            self.http
                .post(format!("{}/api/v1/actions/{id}/withdraw", self.base))
                .json(&json!({})),
        )
        .await
    }

    /// Reports what was executed, with the approval token.
    pub async fn report_execution(
        &self,
        id: &str,
        approval_token: &str,
        payload: &Value,
        succeeded: bool,
        detail: Option<&str>,
    ) -> Result<ActionView, ClientError> {
        let body = json!({
            "approval_token": approval_token,
            "payload": payload,
            "outcome": if succeeded { "succeeded" } else { "failed" },
            "detail": detail,
        });
        self.send(
            self.http
                .post(format!("{}/api/v1/actions/{id}/execution", self.base))
                .json(&body),
        )
        .await
    }
}

/// Checks a webhook's Standard Webhooks signature and that its timestamp is within
/// `tolerance` of `now_unix` (replay protection).
pub fn verify_webhook(
    secret: &str,
    webhook_id: &str,
    webhook_timestamp: &str,
    webhook_signature: &str,
    body: &str,
    now_unix: i64,
    tolerance: Duration,
) -> bool {
    let Ok(ts) = webhook_timestamp.parse::<i64>() else {
        return false;
    };
    if (now_unix - ts).unsigned_abs() > tolerance.as_secs() {
        return false;
    }
    let Some(expected) = crate::server::jobs::sign(secret, webhook_id, ts, body) else {
        return false;
    };
    webhook_signature.split(' ').any(|s| s == expected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_verification_checks_signature_and_age() {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let (id, ts, body) = (
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            "1614265330",
            r#"{"test": 2432232314}"#,
        );
        let sig = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
        let tol = Duration::from_secs(300);
        assert!(verify_webhook(secret, id, ts, sig, body, 1614265330, tol));
        assert!(verify_webhook(
            secret,
            id,
            ts,
            &format!("v1,bogus {sig}"),
            body,
            1614265330,
            tol
        ));
        assert!(
            !verify_webhook(
                secret,
                id,
                ts,
                sig,
                r#"{"test": 2432232315}"#,
                1614265330,
                tol
            ),
            "changed body"
        );
        assert!(
            !verify_webhook(secret, id, ts, sig, body, 1614265330 + 3600, tol),
            "too old"
        );
        assert!(!verify_webhook(
            secret,
            id,
            "not a time",
            sig,
            body,
            1614265330,
            tol
        ));
    }
}
