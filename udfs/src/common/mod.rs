//! Kernels and plumbing shared by the journey functions.

pub mod attribution;
pub mod duration;
pub mod funnel_chain;
pub mod options;
pub mod paths;
pub mod report;
#[cfg(test)]
pub mod test_rng;
