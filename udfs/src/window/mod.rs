//! Window functions: evaluated over a partition (a person) in `ORDER BY` order.

pub mod attribute;
pub mod sessionize;
