//! Pure domain logic: no I/O, no framework types, compiled for server and browser alike.

pub mod diff;
pub mod merge;
pub mod money;
pub mod policy;
pub mod status;
pub mod tier;
pub mod time;
