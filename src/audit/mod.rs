//! The audit trail: append-only, hash-chained events (invariant 5).

pub mod chain;
#[cfg(feature = "ssr")]
pub mod repo;
#[cfg(feature = "ssr")]
pub mod verify;
