//! The argument error of the journey functions.
//!
//! Raised at plan time for a constant argument that is out of range or of the wrong kind. The
//! engine maps it to SQLSTATE 22023 (invalid_parameter_value); the message names the function
//! and the argument, in PostgreSQL style (lower case, identifiers in double quotes).

use datafusion::error::DataFusionError;
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgumentError {
    pub function: String,
    pub argument: String,
    pub message: String,
}

impl ArgumentError {
    pub fn new(function: impl Into<String>, argument: impl Into<String>, message: impl Into<String>) -> Self {
        ArgumentError { function: function.into(), argument: argument.into(), message: message.into() }
    }

    /// The error as DataFusion carries it through planning and execution.
    pub fn into_datafusion(self) -> DataFusionError {
        DataFusionError::External(Box::new(self))
    }
}

impl fmt::Display for ArgumentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: argument \"{}\" {}", self.function, self.argument, self.message)
    }
}

impl std::error::Error for ArgumentError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_names_function_and_argument() {
        let e = ArgumentError::new("window_funnel", "window", "must be a positive interval");
        assert_eq!(e.to_string(), "window_funnel: argument \"window\" must be a positive interval");
        match e.clone().into_datafusion() {
            DataFusionError::External(inner) => {
                assert_eq!(inner.downcast_ref::<ArgumentError>(), Some(&e));
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}
