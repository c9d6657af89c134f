//! Pure domain logic: no I/O, no framework types, compiled for server and browser alike.

pub mod after_fact;
pub mod backtest;
pub mod breaker;
pub mod diff;
pub mod gate_settings;
pub mod merge;
pub mod money;
pub mod payload_schema;
pub mod policy;
pub mod policy_change;
pub mod stats;
pub mod status;
pub mod tier;
pub mod time;
