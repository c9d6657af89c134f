//! Action requests: the agent's checkpoint, its state versions and the decisions on it.

#[cfg(feature = "ssr")]
pub mod dual;
#[cfg(feature = "ssr")]
pub mod edits;
#[cfg(feature = "ssr")]
pub mod lifecycle;
#[cfg(feature = "ssr")]
pub mod repo;
#[cfg(feature = "ssr")]
pub mod revise;
