//! Countersign: an approval inbox for actions proposed by AI agents.
//!
//! The crate compiles twice: with `ssr` it is the server (axum, sqlx, the CLI), with `hydrate`
//! it is the WebAssembly bundle that brings the page's interactive islands to life. Pure domain
//! logic lives in [`domain`] and compiles for both.

pub mod accounts;
pub mod admin;
#[cfg(feature = "ssr")]
pub mod api;
pub mod app;
pub mod audit;
pub mod domain;
pub mod error;
pub mod gates;
pub mod inbox;
#[cfg(feature = "ssr")]
pub mod notify;
pub mod requests;
pub mod shell;
pub mod stats;

#[cfg(feature = "ssr")]
pub mod server;

#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_islands();
}
