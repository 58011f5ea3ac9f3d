//! Kernels and plumbing shared by the journey functions.

pub mod attribution;
pub mod duration;
pub mod funnel_chain;
pub mod markov;
pub mod options;
pub mod path_transform;
pub mod paths;
pub mod periods;
pub mod plan_node;
pub mod rounding;
pub mod shapley;
pub mod source_planner;
#[cfg(test)]
pub mod test_rng;
