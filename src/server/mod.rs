//! Server-only code: configuration, storage, HTTP, the command line and demo data.

pub mod cli;
pub mod config;
pub mod db;
pub mod demo;
pub mod http;
pub mod ids;
pub mod security;

pub use db::Db;

use leptos::config::LeptosOptions;
use std::sync::Arc;

/// What every request handler and server function can reach.
#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub leptos_options: LeptosOptions,
    pub config: Arc<config::Config>,
}

impl axum::extract::FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos_options.clone()
    }
}

/// The app state for the current server function or page render.
pub fn state() -> Result<AppState, crate::error::AppError> {
    leptos::prelude::use_context::<AppState>()
        .ok_or_else(|| crate::error::internal("AppState missing from the Leptos context"))
}

/// Milliseconds since the Unix epoch, the unit every stored time uses.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
