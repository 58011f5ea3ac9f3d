//! Aggregate functions.

pub mod window_funnel;
