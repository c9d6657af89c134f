//! Gates: named, versioned rule sets that put each action request in a tier; their editor,
//! drafts and maker-checker publishing.

#[cfg(feature = "ssr")]
pub mod breakers;
#[cfg(feature = "ssr")]
pub mod drafts;
pub mod editor;
#[cfg(feature = "ssr")]
pub mod eligibility;
#[cfg(feature = "ssr")]
pub mod handlers;
pub mod page;
#[cfg(feature = "ssr")]
mod queries;
#[cfg(feature = "ssr")]
pub mod repo;
