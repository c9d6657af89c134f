//! Gates: named, versioned rule sets that put each action request in a tier.

#[cfg(feature = "ssr")]
pub mod repo;
