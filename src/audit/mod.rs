//! The audit trail: append-only, hash-chained events (invariant 5).

pub mod chain;
pub mod explorer;
#[cfg(feature = "ssr")]
pub mod handlers;
#[cfg(feature = "ssr")]
mod queries;
#[cfg(feature = "ssr")]
pub mod repo;
#[cfg(feature = "ssr")]
pub mod verify;
