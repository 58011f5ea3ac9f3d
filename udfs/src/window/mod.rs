//! Window functions: evaluated over a partition (a person) in `ORDER BY` order.

pub mod attribute;
pub mod hash_window;
pub mod sessionize;
pub mod spill_buckets;
