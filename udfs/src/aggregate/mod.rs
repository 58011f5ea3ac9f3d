//! Aggregate functions.

pub mod events;
pub mod next_node;
pub mod retention;
pub mod sequence;
pub mod window_funnel;
