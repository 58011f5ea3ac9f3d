//! Window functions: evaluated over a partition (a person) in `ORDER BY` order.

pub mod sessionize;
