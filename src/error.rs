//! The one error type that crosses the server-function boundary.
//!
//! It carries only what a browser may see. Causes (database errors, I/O) are logged on the server
//! with a short reference the user can quote; their text never leaves the server.

use leptos::server_fn::codec::JsonEncoding;
use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum AppError {
    #[error("Please sign in.")]
    Unauthenticated,
    #[error("You are not allowed to do that.")]
    Forbidden,
    #[error("Not found.")]
    NotFound,
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error("{0}")]
    Conflict(String),
    #[error("Something went wrong on our side (reference {0}). Nothing was changed.")]
    Internal(String),
    #[error("Could not reach the server: {0}")]
    Transport(String),
}

impl AppError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> AppError {
        AppError::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl AppError {
    /// The HTTP status this error answers with.
    pub fn http_status(&self) -> u16 {
        match self {
            AppError::Unauthenticated => 401,
            AppError::Forbidden => 403,
            AppError::NotFound => 404,
            AppError::Invalid { .. } => 400,
            AppError::Conflict(_) => 409,
            AppError::Internal(_) => 500,
            AppError::Transport(_) => 502,
        }
    }
}

impl FromServerFnError for AppError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        match value {
            ServerFnErrorErr::Args(m) | ServerFnErrorErr::Deserialization(m) => {
                AppError::invalid("request", m)
            }
            other => AppError::Transport(other.to_string()),
        }
    }
}

#[cfg(feature = "ssr")]
mod ssr {
    use super::AppError;

    /// Logs `cause` with a fresh reference and returns the client-safe error naming it.
    pub fn internal(cause: impl std::fmt::Display) -> AppError {
        let reference = uuid::Uuid::now_v7().simple().to_string()[20..].to_owned();
        tracing::error!(reference = %reference, "{cause}");
        AppError::Internal(reference)
    }

    impl From<sqlx::Error> for AppError {
        fn from(e: sqlx::Error) -> Self {
            match e {
                sqlx::Error::RowNotFound => AppError::NotFound,
                other => internal(format_args!("database: {other}")),
            }
        }
    }

    impl From<crate::server::scan::ScanError> for AppError {
        fn from(e: crate::server::scan::ScanError) -> Self {
            internal(e)
        }
    }
}

#[cfg(feature = "ssr")]
pub use ssr::internal;

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(feature = "ssr")]
    #[test]
    fn database_errors_never_reach_the_browser() {
        let e: AppError = sqlx::Error::Protocol("secret table users_pw leaked".into()).into();
        let shown = e.to_string();
        assert!(!shown.contains("users_pw"), "{shown}");
        assert!(shown.starts_with("Something went wrong on our side (reference "));
        let wire = serde_json::to_string(&e).unwrap();
        assert!(!wire.contains("users_pw"), "{wire}");
    }

    #[test]
    fn invalid_names_the_field() {
        assert_eq!(
            AppError::invalid("amount", "must not be negative").to_string(),
            "amount: must not be negative"
        );
    }
}
