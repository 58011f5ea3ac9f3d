//! Aggregate functions.

pub mod funnel_aggregate;
pub mod single_phase;
pub mod window_funnel;
