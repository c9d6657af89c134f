//! RFC 9457 problem details: every API error is JSON naming what went wrong and, for bad
//! input, the offending field.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: &'static str,
    pub status: u16,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl Problem {
    fn new(
        status: StatusCode,
        slug: &str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> Problem {
        Problem {
            kind: format!("urn:countersign:problem:{slug}"),
            title,
            status: status.as_u16(),
            detail: detail.into(),
            field: None,
        }
    }

    pub fn invalid(field: &str, detail: impl Into<String>) -> Problem {
        let detail = detail.into();
        let mut p = Problem::new(
            StatusCode::BAD_REQUEST,
            "invalid-request",
            "Invalid request",
            format!("{field}: {detail}"),
        );
        p.field = Some(field.to_owned());
        p
    }

    pub fn too_large(detail: impl Into<String>) -> Problem {
        let mut p = Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-large",
            "Request too large",
            detail,
        );
        p.field = Some("body".into());
        p
    }

    pub fn unauthenticated() -> Problem {
        Problem::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "Missing or invalid agent token",
            "send `Authorization: Bearer <agent token>`; tokens are created with `countersign agent token NAME`",
        )
    }

    pub fn not_found() -> Problem {
        Problem::new(
            StatusCode::NOT_FOUND,
            "not-found",
            "Not found",
            "no such action request for this agent",
        )
    }

    pub fn idempotency_mismatch() -> Problem {
        let mut p = Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency-key-reused",
            "Idempotency key reused with a different body",
            "this Idempotency-Key was first used with a different request body; use a new key for a new request",
        );
        p.field = Some("Idempotency-Key".into());
        p
    }

    pub fn idempotency_in_flight() -> Problem {
        let mut p = Problem::new(
            StatusCode::CONFLICT,
            "idempotency-key-in-flight",
            "A request with this idempotency key is still being processed",
            "retry after a moment to receive its result",
        );
        p.field = Some("Idempotency-Key".into());
        p
    }

    pub fn conflict(slug: &str, title: &'static str, detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::CONFLICT, slug, title, detail)
    }

    pub fn internal(reference: &str) -> Problem {
        Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal error",
            format!("something went wrong on our side (reference {reference}); nothing was stored"),
        )
    }
}

impl From<sqlx::Error> for Problem {
    fn from(e: sqlx::Error) -> Self {
        match crate::error::AppError::from(e) {
            crate::error::AppError::Internal(r) => Problem::internal(&r),
            _ => Problem::not_found(),
        }
    }
}

impl From<crate::error::AppError> for Problem {
    fn from(e: crate::error::AppError) -> Self {
        use crate::error::AppError as E;
        match e {
            E::Invalid { field, message } => Problem::invalid(&field, message),
            E::NotFound => Problem::not_found(),
            E::Conflict(m) => Problem::conflict("conflict", "Conflict", m),
            E::Unauthenticated | E::Forbidden => Problem::unauthenticated(),
            E::Internal(r) => Problem::internal(&r),
            E::Transport(m) => Problem::internal(&m),
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut res = (status, serde_json::to_string(&self).unwrap_or_default()).into_response();
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if status == StatusCode::UNAUTHORIZED {
            res.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        res
    }
}
