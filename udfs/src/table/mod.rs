//! Report table functions: used in FROM, they return ready tables.

pub mod attribute;
pub mod funnel;
pub mod journey_paths;
