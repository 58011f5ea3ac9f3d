//! Report table functions: used in FROM, they return ready tables.

pub mod activity;
pub mod attribute;
pub mod cohorts;
pub mod correlation;
pub mod funnel;
pub mod identity_graph;
pub mod journey_paths;
pub mod retention;

use crate::common::options::Options;
use crate::physical::report::ReportStages;
use datafusion::arrow::datatypes::Schema;
use datafusion::error::{DataFusionError, Result};
use std::sync::Arc;

/// The report names, as [`Options::function`] gives them.
pub const REPORTS: [&str; 7] = [
    attribute::NAME,
    funnel::NAME,
    correlation::NAME,
    journey_paths::NAME,
    retention::NAME,
    activity::LIFECYCLE,
    activity::STICKINESS,
];

/// A report's stages made again from its call (see [`crate::physical::report`]), over an input
/// of columns `input`: how a cluster node rebuilds the partial stage it was sent.
pub fn report_stages(call: Options, input: &Schema) -> Result<Arc<dyn ReportStages>> {
    match call.function() {
        attribute::NAME => attribute::stages(call, input),
        funnel::NAME => funnel::stages(call, input),
        correlation::NAME => correlation::stages(call, input),
        journey_paths::NAME => journey_paths::stages(call, input),
        retention::NAME => retention::stages(call, input),
        activity::LIFECYCLE | activity::STICKINESS => activity::stages(call, input),
        other => Err(DataFusionError::Internal(format!("{other} is not a report"))),
    }
}
