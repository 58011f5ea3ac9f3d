//! The journey SQL functions of journeydb, as DataFusion UDFs: no server code here.
//!
//! # Layout
//!
//! - `aggregate/`: aggregate functions (`window_funnel`, ...).
//! - `window/`: window functions (`attribute`, `sessionize`, ...).
//! - `scalar/`: scalar functions (`channel_group`, ...).
//! - `table/`: report table functions (`funnel`, `attribute`, `journey_paths`).
//! - `common/`: shared kernels.
//! - [`error`]: the typed argument error every function raises for a bad argument.
//!
//! The function families land one issue at a time; [`register_all`] is the one entry point the
//! engine calls, so a new function is visible everywhere (server, `.slt` runner, benchmarks) as
//! soon as it is listed there.

pub mod error;

pub use error::ArgumentError;

use datafusion::execution::FunctionRegistry;

/// Registers every journey function with a DataFusion function registry.
///
/// Returns the number of functions registered.
pub fn register_all(_registry: &mut dyn FunctionRegistry) -> datafusion::error::Result<usize> {
    Ok(0)
}
