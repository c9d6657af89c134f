//! The audit trail: append-only, hash-chained events (invariant 5).

#[cfg(feature = "ssr")]
pub mod bundle;
pub mod chain;
#[cfg(feature = "ssr")]
pub mod checkpoints;
pub mod explorer;
#[cfg(feature = "ssr")]
pub mod export;
#[cfg(feature = "ssr")]
pub mod handlers;
#[cfg(feature = "ssr")]
pub mod queries;
#[cfg(feature = "ssr")]
pub mod repo;
#[cfg(feature = "ssr")]
pub mod signing;
pub mod timeline;
#[cfg(feature = "ssr")]
pub mod verify;
