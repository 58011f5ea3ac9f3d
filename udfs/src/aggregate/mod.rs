//! Aggregate functions.

pub mod single_phase;
pub mod window_funnel;
