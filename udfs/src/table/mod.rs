//! Report table functions: used in FROM, they return ready tables.

pub mod attribute;
pub mod funnel;
pub mod journey_paths;

use crate::common::options::Options;
use crate::physical::report::ReportStages;
use datafusion::arrow::datatypes::Schema;
use datafusion::error::{DataFusionError, Result};
use std::sync::Arc;

/// The report names, as [`Options::function`] gives them.
pub const REPORTS: [&str; 3] = [attribute::NAME, funnel::NAME, journey_paths::NAME];

/// A report's stages made again from its call (see [`crate::physical::report`]), over an input
/// of columns `input`: how a cluster node rebuilds the partial stage it was sent.
pub fn report_stages(call: Options, input: &Schema) -> Result<Arc<dyn ReportStages>> {
    match call.function() {
        attribute::NAME => attribute::stages(call, input),
        funnel::NAME => funnel::stages(call, input),
        journey_paths::NAME => journey_paths::stages(call, input),
        other => Err(DataFusionError::Internal(format!("{other} is not a report"))),
    }
}
