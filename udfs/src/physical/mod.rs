//! The physical operators and optimizer rules the journey functions bring, apart from the SQL
//! functions themselves: how they run, not what they answer.
//!
//! - [`single_phase`]: the optimizer rule that plans `window_funnel` (and any aggregate whose
//!   partial state is every event of its group) in one phase, as [`funnel_aggregate`]'s
//!   `FunnelAggregateExec`.
//! - [`hash_window`]: the rule and operator that evaluate the journey window functions per
//!   hash group instead of after a global sort, spilling through [`spill_buckets`].
//! - [`report`]: the report execution shared by `funnel`, `attribute` and `journey_paths`
//!   (one task per input partition, partial states merged), with [`keep_rows`], the filter
//!   pushed below it.

pub mod funnel_aggregate;
pub mod hash_window;
pub mod keep_rows;
pub mod report;
pub mod single_phase;
pub mod spill_buckets;
