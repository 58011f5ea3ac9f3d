//! The journey functions as PostgreSQL lists functions: `pg_proc`, from each function's
//! reference ([`journeydb_udfs::catalog`]), and `pg_language`.
use super::columns::{C, boolean, i16v, mem_table, null, oid, text};
use super::{OWNER_OID, PUBLIC_OID, PgCatalog, function_oid};
use crate::pg::types::{self, BUILTIN};
use datafusion::catalog::TableProvider;
use datafusion::error::Result;
use std::sync::Arc;

impl PgCatalog {
    /// `pg_proc` and `pg_language`.
    pub(super) fn function_table(&self, name: &str) -> Option<Result<Arc<dyn TableProvider>>> {
        use C::*;
        let table = match name {
            "pg_proc" => mem_table(
                &[
                    ("oid", Oid),
                    ("proname", Text),
                    ("pronamespace", Oid),
                    ("proowner", Oid),
                    ("prokind", Text),
                    ("proretset", Bool),
                    ("pronargs", I16),
                    ("prosrc", Text),
                    ("prorettype", Oid),
                    ("prolang", Oid),
                    ("provolatile", Text),
                    ("proparallel", Text),
                    ("prosecdef", Bool),
                    ("proleakproof", Bool),
                    ("proacl", TextArr),
                ],
                journeydb_udfs::catalog()
                    .iter()
                    .map(|e| {
                        let nargs = e.argument_count() as i16;
                        vec![
                            oid(function_oid(e.name, e.kind.prokind())),
                            text(e.name),
                            oid(PUBLIC_OID),
                            oid(OWNER_OID),
                            text(e.kind.prokind()),
                            boolean(e.result.starts_with("TABLE")),
                            i16v(nargs),
                            text(e.name),
                            oid(return_type_oid(e.result)),
                            // "internal": the functions are built in.
                            oid(12),
                            // Immutable, but for the reports, which read tables.
                            text(if e.kind == journeydb_udfs::docs::Kind::Report { "s" } else { "i" }),
                            text("s"),
                            boolean(false),
                            boolean(false),
                            null(TextArr),
                        ]
                    })
                    .collect(),
            ),
            // The languages functions are written in: journeydb's are all built in (`internal`).
            "pg_language" => mem_table(
                &[("oid", Oid), ("lanname", Text), ("lanowner", Oid), ("lanispl", Bool), ("lanpltrusted", Bool)],
                [(12, "internal"), (13, "c"), (14, "sql")]
                    .into_iter()
                    .map(|(o, name)| vec![oid(o), text(name), oid(OWNER_OID), boolean(false), boolean(o == 14)])
                    .collect(),
            ),
            _ => return None,
        };
        Some(table)
    }
}

/// The OID of a function's result type, from its catalog entry's result text (`bigint`,
/// `numeric`, `TABLE(...)` = record).
fn return_type_oid(result: &str) -> u32 {
    if result.starts_with("TABLE") {
        return 2249;
    }
    BUILTIN
        .iter()
        .find_map(|t| {
            let sql = types::format_type(t.oid, -1).unwrap_or_default();
            if result == t.name || result == sql {
                Some(t.oid)
            } else if result == format!("{sql}[]") {
                Some(t.array_oid)
            } else {
                None
            }
        })
        .unwrap_or(types::TEXT.oid)
}
