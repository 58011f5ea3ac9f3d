//! Every SQLSTATE journeydb answers with, as one enum: its code, its condition name as
//! PostgreSQL's errcodes table spells it (Appendix A), and the severity it is raised with.
//! No other module spells a SQLSTATE.

/// How bad an error is: an ERROR ends the statement, a FATAL the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Fatal,
}

impl Severity {
    pub const fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "ERROR",
            Severity::Fatal => "FATAL",
        }
    }
}

macro_rules! sqlstates {
    ($($(#[$doc:meta])* $variant:ident = $code:literal, $condition:literal, $severity:ident;)*) => {
        /// A PostgreSQL SQLSTATE (error code).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum SqlState {
            $($(#[$doc])* $variant,)*
        }

        impl SqlState {
            /// Every SQLSTATE of the enum.
            pub const ALL: &'static [SqlState] = &[$(SqlState::$variant,)*];

            /// The five-character code (`42P01`).
            pub const fn code(self) -> &'static str {
                match self {
                    $(SqlState::$variant => $code,)*
                }
            }

            /// The condition name (`undefined_table`).
            pub const fn condition(self) -> &'static str {
                match self {
                    $(SqlState::$variant => $condition,)*
                }
            }

            /// The severity the condition is raised with.
            pub const fn severity(self) -> Severity {
                match self {
                    $(SqlState::$variant => Severity::$severity,)*
                }
            }
        }
    };
}

sqlstates! {
    FeatureNotSupported = "0A000", "feature_not_supported", Error;
    ProtocolViolation = "08P01", "protocol_violation", Fatal;
    CardinalityViolation = "21000", "cardinality_violation", Error;
    DataException = "22000", "data_exception", Error;
    NumericValueOutOfRange = "22003", "numeric_value_out_of_range", Error;
    NullValueNotAllowed = "22004", "null_value_not_allowed", Error;
    DatetimeFieldOverflow = "22008", "datetime_field_overflow", Error;
    DivisionByZero = "22012", "division_by_zero", Error;
    InvalidEscapeCharacter = "22019", "invalid_escape_character", Error;
    InvalidRegularExpression = "2201B", "invalid_regular_expression", Error;
    CharacterNotInRepertoire = "22021", "character_not_in_repertoire", Error;
    InvalidParameterValue = "22023", "invalid_parameter_value", Error;
    InvalidEscapeSequence = "22025", "invalid_escape_sequence", Error;
    InvalidTextRepresentation = "22P02", "invalid_text_representation", Error;
    BadCopyFileFormat = "22P04", "bad_copy_file_format", Error;
    NotNullViolation = "23502", "not_null_violation", Error;
    InvalidAuthorizationSpecification = "28000", "invalid_authorization_specification", Fatal;
    InvalidPassword = "28P01", "invalid_password", Fatal;
    DependentObjectsStillExist = "2BP01", "dependent_objects_still_exist", Error;
    InvalidCursorName = "34000", "invalid_cursor_name", Error;
    InvalidSchemaName = "3F000", "invalid_schema_name", Error;
    SerializationFailure = "40001", "serialization_failure", Error;
    SyntaxErrorOrAccessRuleViolation = "42000", "syntax_error_or_access_rule_violation", Error;
    InsufficientPrivilege = "42501", "insufficient_privilege", Error;
    SyntaxError = "42601", "syntax_error", Error;
    InvalidName = "42602", "invalid_name", Error;
    DuplicateColumn = "42701", "duplicate_column", Error;
    AmbiguousColumn = "42702", "ambiguous_column", Error;
    UndefinedColumn = "42703", "undefined_column", Error;
    UndefinedObject = "42704", "undefined_object", Error;
    DatatypeMismatch = "42804", "datatype_mismatch", Error;
    WrongObjectType = "42809", "wrong_object_type", Error;
    UndefinedFunction = "42883", "undefined_function", Error;
    UndefinedTable = "42P01", "undefined_table", Error;
    DuplicateSchema = "42P06", "duplicate_schema", Error;
    DuplicateTable = "42P07", "duplicate_table", Error;
    InvalidObjectDefinition = "42P17", "invalid_object_definition", Error;
    ProgramLimitExceeded = "54000", "program_limit_exceeded", Error;
    StatementTooComplex = "54001", "statement_too_complex", Error;
    OutOfMemory = "53200", "out_of_memory", Error;
    TooManyConnections = "53300", "too_many_connections", Fatal;
    CantChangeRuntimeParam = "55P02", "cant_change_runtime_param", Error;
    QueryCanceled = "57014", "query_canceled", Error;
    AdminShutdown = "57P01", "admin_shutdown", Fatal;
    IoError = "58030", "io_error", Error;
    ConfigFileError = "F0000", "config_file_error", Error;
    InternalError = "XX000", "internal_error", Error;
    DataCorrupted = "XX001", "data_corrupted", Error;
}

impl SqlState {
    /// The wire protocol's error for this condition, with its own severity.
    pub fn error_info(self, message: impl Into<String>) -> pgwire::error::ErrorInfo {
        self.error_info_as(self.severity(), message)
    }

    /// The wire protocol's error for this condition, raised as `severity` (a protocol error
    /// that leaves the stream readable is an ERROR; an authentication failure is FATAL).
    pub fn error_info_as(self, severity: Severity, message: impl Into<String>) -> pgwire::error::ErrorInfo {
        pgwire::error::ErrorInfo::new(severity.as_str().into(), self.code().into(), message.into())
    }
}

impl std::fmt::Display for SqlState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_five_characters_and_distinct() {
        let mut codes: Vec<&str> = SqlState::ALL.iter().map(|s| s.code()).collect();
        assert!(
            codes.iter().all(|c| c.len() == 5 && c.chars().all(|ch| ch.is_ascii_digit() || ch.is_ascii_uppercase()))
        );
        codes.sort();
        let n = codes.len();
        codes.dedup();
        assert_eq!(codes.len(), n, "a code appears twice");
        assert_eq!(SqlState::UndefinedTable.code(), "42P01");
        assert_eq!(SqlState::AdminShutdown.severity(), Severity::Fatal);
    }
}
