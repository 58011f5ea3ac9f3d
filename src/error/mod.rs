//! The engine's error enum and the ONE function that turns any error into a PostgreSQL error
//! with a SQLSTATE ([`to_pg_error`]).

use datafusion::arrow::error::ArrowError;
use datafusion::common::SchemaError;
use datafusion::error::DataFusionError;
use datafusion::parquet::errors::ParquetError;
use journeydb_udfs::ArgumentError;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    DataFusion(#[from] DataFusionError),
    #[error(transparent)]
    Arrow(#[from] ArrowError),
    #[error(transparent)]
    Parquet(#[from] ParquetError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Config(String),
    /// A statement the SQL parser accepts that journeydb does not run (yet).
    #[error("{0}")]
    Unsupported(String),
    /// A bad value for a setting or an argument.
    #[error("{0}")]
    InvalidParameter(String),
    /// A store-level problem with a table's files.
    #[error("{0}")]
    Store(String),
    /// An error whose SQLSTATE is known where it is raised (DDL, writes, COPY data).
    #[error("{1}")]
    Sql(SqlState, String),
}

impl Error {
    /// An error with its SQLSTATE.
    pub fn sql(code: SqlState, message: impl Into<String>) -> Error {
        Error::Sql(code, message.into())
    }
}

/// A statement stopped by a cancel request or by `statement_timeout` (SQLSTATE 57014); it
/// travels through DataFusion as an external error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Canceled(pub String);

impl std::fmt::Display for Canceled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Canceled {}

/// A PostgreSQL error: SQLSTATE, message in PostgreSQL style, optional detail and hint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgError {
    pub code: SqlState,
    pub message: String,
    pub detail: Option<String>,
    pub hint: Option<String>,
}

impl PgError {
    fn new(code: SqlState, message: impl Into<String>) -> PgError {
        PgError { code, message: message.into(), detail: None, hint: None }
    }
    fn with_hint(mut self, hint: Option<String>) -> PgError {
        self.hint = hint.filter(|h| !h.is_empty());
        self
    }
}

pub mod sqlstate;

pub use sqlstate::{Severity, SqlState};

/// The one mapping from any journeydb error to a PostgreSQL error.
pub fn to_pg_error(err: &Error) -> PgError {
    let mut pg = pg_error_of(err);
    pg.message = without_server_paths(&pg.message);
    pg.detail = pg.detail.map(|d| without_server_paths(&d));
    pg
}

/// Data directories of this process's stores, as error messages may spell them (with and
/// without the leading `/`: object_store's paths have none).
static SERVER_PATHS: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

/// Registers a store's data directory: messages to clients name what is in it relative to it.
pub fn register_server_path(root: &std::path::Path) {
    let root = root.display().to_string();
    let mut paths = SERVER_PATHS.lock().unwrap_or_else(|p| p.into_inner());
    for p in [format!("{root}/"), format!("{}/", root.trim_start_matches('/'))] {
        if !paths.contains(&p) {
            paths.push(p);
        }
    }
    // Longest first, so that a store inside another's folder loses its whole prefix.
    paths.sort_by_key(|p| std::cmp::Reverse(p.len()));
}

/// `message` without the server's own paths: a file of the store is named from the data
/// directory down (`events/part-0.parquet`), as a client has no business with the rest.
pub fn without_server_paths(message: &str) -> String {
    let paths = SERVER_PATHS.lock().unwrap_or_else(|p| p.into_inner());
    let mut out = message.to_string();
    for p in paths.iter() {
        if out.contains(p.as_str()) {
            out = out.replace(p.as_str(), "");
        }
    }
    out
}

fn pg_error_of(err: &Error) -> PgError {
    use SqlState::*;
    match err {
        Error::DataFusion(e) => datafusion_to_pg(e),
        Error::Arrow(e) => arrow_to_pg(e),
        Error::Parquet(e) => PgError::new(DataCorrupted, format!("could not read parquet data: {e}")),
        Error::Io(e) => PgError::new(IoError, e.to_string()),
        Error::Config(m) => PgError::new(ConfigFileError, m.clone()),
        Error::Unsupported(m) => PgError::new(FeatureNotSupported, m.clone()),
        Error::InvalidParameter(m) => PgError::new(InvalidParameterValue, m.clone()),
        Error::Store(m) => PgError::new(DataCorrupted, m.clone()),
        Error::Sql(code, m) => PgError::new(*code, m.clone()),
    }
}

pub(crate) fn datafusion_to_pg(err: &DataFusionError) -> PgError {
    use SqlState::*;
    // Wrappers (context, diagnostics, shared, collections) keep the root error's meaning.
    let root = err.find_root();
    match root {
        DataFusionError::SQL(e, _)
            if matches!(**e, datafusion::sql::sqlparser::parser::ParserError::RecursionLimitExceeded) =>
        {
            PgError::new(
                StatementTooComplex,
                "statement is too complex: its operator chains, parentheses or subqueries nest too deep",
            )
            .with_hint(Some(
                "Break it into smaller statements, or use IN lists and views instead of long chains.".into(),
            ))
        }
        DataFusionError::SQL(e, _) => {
            PgError::new(SyntaxError, format!("syntax error: {}", sql_parser_message(&e.to_string())))
        }
        DataFusionError::SchemaError(e, _) => schema_error_to_pg(e),
        DataFusionError::Plan(m) => plan_message_to_pg(m),
        DataFusionError::NotImplemented(m) => {
            PgError::new(FeatureNotSupported, format!("not supported: {}", first_line(m)))
        }
        DataFusionError::Configuration(m) => PgError::new(InvalidParameterValue, first_line(m)),
        DataFusionError::ResourcesExhausted(m) => out_of_memory(m),
        DataFusionError::ArrowError(e, _) => arrow_to_pg(e),
        DataFusionError::ParquetError(e) => PgError::new(DataCorrupted, format!("could not read parquet data: {e}")),
        DataFusionError::IoError(e) => PgError::new(IoError, e.to_string()),
        DataFusionError::ObjectStore(e) => PgError::new(IoError, e.to_string()),
        DataFusionError::External(e) => {
            if let Some(a) = e.downcast_ref::<ArgumentError>() {
                PgError::new(InvalidParameterValue, a.to_string())
            } else if let Some(c) = e.downcast_ref::<Canceled>() {
                PgError::new(QueryCanceled, c.0.clone())
            } else if let Some(p) = e.downcast_ref::<ParquetError>() {
                PgError::new(DataCorrupted, format!("could not read parquet data: {p}"))
            } else if let Some(a) = e.downcast_ref::<ArrowError>() {
                arrow_to_pg(a)
            } else if let Some(io) = e.downcast_ref::<std::io::Error>() {
                PgError::new(IoError, io.to_string())
            } else if let Some(j) = e.downcast_ref::<Error>() {
                to_pg_error(j)
            } else if let Some(r) = e.downcast_ref::<regex::Error>() {
                invalid_regex(&r.to_string())
            } else if e.to_string().starts_with("regex parse error") {
                // The plan's simplifier checks patterns with regex-syntax, whose error type is
                // not ours to name; its message is stable.
                invalid_regex(&e.to_string())
            } else {
                PgError::new(InternalError, e.to_string())
            }
        }
        DataFusionError::Execution(m) => execution_message_to_pg(m),
        DataFusionError::ExecutionJoin(e) => PgError::new(InternalError, format!("query task failed: {e}")),
        // `find_root` never stops at a wrapper; treat any that remains as its message says.
        DataFusionError::Context(_, inner) | DataFusionError::Diagnostic(_, inner) => datafusion_to_pg(inner),
        DataFusionError::Shared(inner) => datafusion_to_pg(inner),
        DataFusionError::Collection(errs) => match errs.first() {
            Some(first) => datafusion_to_pg(first),
            None => PgError::new(InternalError, "empty error collection"),
        },
        DataFusionError::Internal(m) => PgError::new(InternalError, format!("internal error: {}", first_line(m))),
        DataFusionError::Substrait(m) | DataFusionError::Ffi(m) => PgError::new(InternalError, m.clone()),
    }
}

fn schema_error_to_pg(e: &SchemaError) -> PgError {
    use SqlState::*;
    match e {
        SchemaError::FieldNotFound { field, valid_fields } => {
            let hint = if valid_fields.is_empty() {
                None
            } else {
                let mut names: Vec<String> = valid_fields.iter().map(|c| c.name.clone()).collect();
                names.sort();
                names.dedup();
                Some(format!("Columns available: {}.", names.join(", ")))
            };
            PgError::new(UndefinedColumn, format!("column \"{}\" does not exist", field.name)).with_hint(hint)
        }
        SchemaError::AmbiguousReference { field } => {
            PgError::new(AmbiguousColumn, format!("column reference \"{}\" is ambiguous", field.name))
        }
        SchemaError::DuplicateQualifiedField { .. } | SchemaError::DuplicateUnqualifiedField { .. } => {
            PgError::new(DuplicateColumn, lower_first(&e.to_string()))
        }
    }
}

/// Plan errors carry no type; the messages DataFusion uses for the common cases are stable.
fn plan_message_to_pg(m: &str) -> PgError {
    use SqlState::*;
    let first = first_line(m);
    if let Some(name) = between(&first, "table '", "' not found") {
        let short = name.rsplit('.').next().unwrap_or(name);
        return PgError::new(UndefinedTable, format!("relation \"{short}\" does not exist"));
    }
    if let Some(name) = between(&first, "table function '", "' not found") {
        return PgError::new(UndefinedFunction, format!("function {name} does not exist"));
    }
    if let Some(name) = between(&first, "Invalid function '", "'") {
        let hint = m.lines().nth(1).map(|l| l.trim().to_string());
        return PgError::new(UndefinedFunction, format!("function {name} does not exist")).with_hint(hint);
    }
    // A function rejecting its argument types: PostgreSQL says the function (with these
    // argument types) does not exist; the function's own message says why.
    if first.contains("coercion failed with") {
        let inner = first.split_once("External error: ").map(|(_, r)| r).unwrap_or(&first);
        let inner = inner.split(". No function matches").next().unwrap_or(inner);
        return PgError::new(UndefinedFunction, inner.to_string());
    }
    if let Some(name) = between(&first, "column '", "' not found") {
        return PgError::new(UndefinedColumn, format!("column \"{name}\" does not exist"));
    }
    if first.contains("No function matches")
        || first.contains("does not support")
        || first.contains("Failed to coerce arguments")
        || first.contains("function signature")
    {
        return PgError::new(UndefinedFunction, lower_first(&first));
    }
    if first.contains("Cannot infer common") || first.contains("Cannot coerce") || first.contains("type mismatch") {
        return PgError::new(DatatypeMismatch, lower_first(&first));
    }
    PgError::new(SyntaxErrorOrAccessRuleViolation, lower_first(&first))
}

fn execution_message_to_pg(m: &str) -> PgError {
    use SqlState::*;
    let first = first_line(m);
    if first.contains("Divide by zero") || first.contains("division by zero") {
        return PgError::new(DivisionByZero, "division by zero");
    }
    if first.contains("Cannot cast") || first.contains("Cannot parse") || first.contains("invalid input syntax") {
        return PgError::new(InvalidTextRepresentation, lower_first(&first));
    }
    if first.contains("overflow") {
        return PgError::new(NumericValueOutOfRange, lower_first(&first));
    }
    PgError::new(DataException, lower_first(&first))
}

fn arrow_to_pg(e: &ArrowError) -> PgError {
    use SqlState::*;
    match e {
        ArrowError::DivideByZero => PgError::new(DivisionByZero, "division by zero"),
        ArrowError::CastError(m) if integer_out_of_range(m).is_some() => {
            PgError::new(NumericValueOutOfRange, integer_out_of_range(m).unwrap_or_default())
        }
        ArrowError::CastError(m) | ArrowError::ParseError(m) => PgError::new(InvalidTextRepresentation, lower_first(m)),
        ArrowError::ArithmeticOverflow(m) => PgError::new(NumericValueOutOfRange, lower_first(m)),
        ArrowError::MemoryError(m) => PgError::new(OutOfMemory, lower_first(m)),
        ArrowError::ExternalError(inner) => {
            if let Some(df) = inner.downcast_ref::<DataFusionError>() {
                datafusion_to_pg(df)
            } else if let Some(p) = inner.downcast_ref::<ParquetError>() {
                PgError::new(DataCorrupted, format!("could not read parquet data: {p}"))
            } else {
                PgError::new(DataException, inner.to_string())
            }
        }
        ArrowError::ComputeError(m) if m.contains("Regular expression did not compile") => invalid_regex(m),
        ArrowError::ComputeError(m) if integer_out_of_range(m).is_some() => {
            PgError::new(NumericValueOutOfRange, integer_out_of_range(m).unwrap_or_default())
        }
        ArrowError::IoError(m, _) => PgError::new(IoError, m.clone()),
        ArrowError::ParquetError(m) => PgError::new(DataCorrupted, format!("could not read parquet data: {m}")),
        other => PgError::new(DataException, lower_first(&other.to_string())),
    }
}

/// A user's regular expression that does not compile (2201B), with the regex crate's reason:
/// its last line (`error: unclosed group`).
fn invalid_regex(m: &str) -> PgError {
    let reason = m.lines().rev().find_map(|l| l.trim().strip_prefix("error: ")).unwrap_or("it does not compile");
    PgError::new(SqlState::InvalidRegularExpression, format!("invalid regular expression: {reason}"))
}

/// sqlparser messages look like `Expected: an expression, found: FROM at Line: 1, Column: 8`.
fn sql_parser_message(m: &str) -> String {
    let m = m.strip_prefix("sql parser error: ").unwrap_or(m);
    let m = m.strip_prefix("ParserError(\"").and_then(|s| s.strip_suffix("\")")).unwrap_or(m);
    let m = m.strip_prefix("TokenizerError(\"").and_then(|s| s.strip_suffix("\")")).unwrap_or(m);
    lower_first(m)
}

fn between<'a>(s: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = s.find(start)? + start.len();
    let len = s[from..].find(end)?;
    Some(&s[from..from + len])
}

/// DataFusion's memory pool refusing an allocation: the first line is the message; the pool's
/// largest holders and its own words, on the lines after, are the detail (as PostgreSQL's own
/// "out of memory" says which request failed in its detail).
fn out_of_memory(m: &str) -> PgError {
    let (first, rest) = m.split_once('\n').unwrap_or((m, ""));
    let first = first.trim_end_matches(" with top memory consumers (across reservations) as:");
    let mut pg = PgError::new(SqlState::OutOfMemory, format!("out of memory: {}", first.trim_end_matches('.')));
    let mut holders = vec![];
    let mut error = None;
    for line in rest.lines().map(str::trim).filter(|l| !l.is_empty()) {
        match line.strip_prefix("Error: ") {
            Some(e) => error = Some(e.trim_end_matches('.')),
            None => holders.push(line.trim_end_matches([',', '.'])),
        }
    }
    let mut detail = error.map(|e| format!("{e}.")).unwrap_or_default();
    if !holders.is_empty() {
        detail = format!("{detail} Largest holders: {}.", holders.join("; ")).trim().to_string();
    }
    pg.detail = Some(detail).filter(|d| !d.is_empty());
    pg.with_hint(Some("Raise the server's memory_limit, or make the query read fewer rows or columns.".into()))
}

fn first_line(m: &str) -> String {
    m.lines().next().unwrap_or("").trim_end_matches('.').to_string()
}

/// PostgreSQL's message for Arrow's overflow of an integer type: a cast (`Can't cast value
/// 32768 to type Int16`) or a kernel (`Int64Array overflow on abs(...)`).
fn integer_out_of_range(m: &str) -> Option<String> {
    let name = |t: &str| match t {
        "Int8" | "Int16" => Some("smallint"),
        "Int32" => Some("integer"),
        "Int64" => Some("bigint"),
        _ => None,
    };
    let t = if let Some(rest) = m.strip_prefix("Can't cast value ") {
        rest.rsplit_once(" to type ")?.1
    } else {
        m.split_once("Array overflow on ")?.0
    };
    Some(format!("{} out of range", name(t.trim())?))
}

/// PostgreSQL messages start in lower case and have no final period.
fn lower_first(m: &str) -> String {
    let m = m.trim_end_matches('.');
    let mut chars = m.chars();
    match (chars.next(), chars.clone().next()) {
        // Keep acronyms such as "SQL" or "UTF8" as they are.
        (Some(c), Some(n)) if c.is_uppercase() && !n.is_uppercase() => c.to_lowercase().chain(chars).collect(),
        _ => m.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::common::Column;
    use datafusion::prelude::SessionContext;

    fn code_of(sql: &str) -> PgError {
        let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
        rt.block_on(async {
            let ctx = SessionContext::new();
            ctx.sql("CREATE TABLE t(a INT, b VARCHAR)").await.expect("create");
            let err = match ctx.sql(sql).await {
                Ok(df) => df.collect().await.expect_err("query must fail"),
                Err(e) => e,
            };
            to_pg_error(&Error::DataFusion(err))
        })
    }

    #[test]
    fn messages_name_store_files_from_the_data_directory_down() {
        let dir = tempfile::tempdir().expect("tmp");
        let root = dir.path().canonicalize().expect("root");
        register_server_path(&root);
        let io = Error::Store(format!("could not read {}/.tables/v1/part-0.parquet: gone", root.display()));
        let store = format!(
            "Object at location {}/events/a.parquet not found",
            root.display().to_string().trim_start_matches('/')
        );
        let df = Error::DataFusion(DataFusionError::Execution(store));
        assert_eq!(to_pg_error(&io).message, "could not read .tables/v1/part-0.parquet: gone");
        let shown = to_pg_error(&df).message;
        assert!(
            shown.contains("events/a.parquet") && !shown.contains(root.display().to_string().trim_start_matches('/')),
            "{shown}"
        );
    }

    #[test]
    fn sqlstates_of_real_datafusion_errors() {
        let cases = [
            ("SELEC 1", SYNTAX, "syntax error"),
            ("SELECT * FROM nope", "42P01", "relation \"nope\" does not exist"),
            ("SELECT zzz FROM t", "42703", "column \"zzz\" does not exist"),
            ("SELECT no_such_fn(1)", "42883", "function no_such_fn does not exist"),
            ("SELECT abs('x', 'y')", "42883", ""),
            ("SELECT 1/0", "22012", "division by zero"),
            ("SELECT CAST('x' AS INT)", "22P02", ""),
        ];
        for (sql, code, msg) in cases {
            let e = code_of(sql);
            assert_eq!(e.code.code(), code, "{sql}: {e:?}");
            assert!(e.message.starts_with(msg), "{sql}: {e:?}");
        }
    }
    const SYNTAX: &str = "42601";

    #[test]
    fn typed_errors_map_to_their_codes() {
        let e = Error::DataFusion(DataFusionError::NotImplemented("LATERAL".into()));
        assert_eq!(to_pg_error(&e).code, SqlState::FeatureNotSupported);
        let e = Error::DataFusion(DataFusionError::ResourcesExhausted("pool".into()));
        assert_eq!(to_pg_error(&e).code, SqlState::OutOfMemory);
        // The pool's words (DataFusion's TrackConsumersPool) become message and detail.
        let pool = "Additional allocation failed for ExternalSorterMerge[1] with top memory consumers (across \
                    reservations) as:\n  ExternalSorter[0]#7(can spill: true) consumed 5.9 GB, peak 6.0 GB,\n  \
                    ExternalSorterMerge[1]#9(can spill: false) consumed 10.0 MB, peak 10.0 MB\nError: Failed to \
                    allocate additional 2.1 MB for ExternalSorterMerge[1] with 10.0 MB already allocated for this \
                    reservation - 1.2 MB remain available for the total pool";
        let pg = to_pg_error(&Error::DataFusion(DataFusionError::ResourcesExhausted(pool.into())));
        assert_eq!(pg.message, "out of memory: Additional allocation failed for ExternalSorterMerge[1]");
        assert_eq!(
            pg.detail.as_deref(),
            Some(
                "Failed to allocate additional 2.1 MB for ExternalSorterMerge[1] with 10.0 MB already allocated for \
                 this reservation - 1.2 MB remain available for the total pool. Largest holders: \
                 ExternalSorter[0]#7(can spill: true) consumed 5.9 GB, peak 6.0 GB; ExternalSorterMerge[1]#9(can \
                 spill: false) consumed 10.0 MB, peak 10.0 MB."
            )
        );
        let e = Error::DataFusion(DataFusionError::Internal("bug".into()));
        assert_eq!(to_pg_error(&e).code, SqlState::InternalError);
        let arg = ArgumentError::new("window_funnel", "window", "must be positive");
        let e = Error::DataFusion(DataFusionError::External(Box::new(arg)).context("planning"));
        let pg = to_pg_error(&e);
        assert_eq!(pg.code, SqlState::InvalidParameterValue);
        assert!(pg.message.contains("window_funnel") && pg.message.contains("\"window\""), "{pg:?}");
        let e = Error::DataFusion(DataFusionError::ParquetError(Box::new(ParquetError::General("bad footer".into()))));
        assert_eq!(to_pg_error(&e).code, SqlState::DataCorrupted);
        let e = Error::Unsupported("COPY".into());
        assert_eq!(to_pg_error(&e).code, SqlState::FeatureNotSupported);
        let e = Error::InvalidParameter("bad".into());
        assert_eq!(to_pg_error(&e).code, SqlState::InvalidParameterValue);
        let field = Box::new(Column::from_name("x"));
        let e = Error::DataFusion(DataFusionError::SchemaError(
            Box::new(SchemaError::FieldNotFound {
                field,
                valid_fields: vec![Column::from_name("b"), Column::from_name("a")],
            }),
            Box::new(None),
        ));
        let pg = to_pg_error(&e);
        assert_eq!((pg.code, pg.hint.as_deref()), (SqlState::UndefinedColumn, Some("Columns available: a, b.")));
    }

    #[test]
    fn messages_follow_postgres_style() {
        assert_eq!(lower_first("Something failed."), "something failed");
        assert_eq!(lower_first("SQL is odd"), "SQL is odd");
        assert_eq!(sql_parser_message("sql parser error: Expected: x"), "expected: x");
    }
}
