//! `pg_type`: every built-in type journeydb has, and its array type, from the one type table
//! ([`crate::pg::types`]).
use super::columns::{C, boolean, i16v, i32v, mem_table, null, oid, text};
use super::{DEFAULT_COLLATION_OID, OWNER_OID, PG_CATALOG_OID, PgCatalog};
use crate::pg::types::{BUILTIN, PgType};
use datafusion::catalog::TableProvider;
use datafusion::error::Result;
use std::sync::Arc;

impl PgCatalog {
    /// `pg_type`.
    pub(super) fn type_table(&self, name: &str) -> Option<Result<Arc<dyn TableProvider>>> {
        use C::*;
        let table = match name {
            "pg_type" => {
                let mut rows = vec![];
                let mut push =
                    |t: &PgType, oid_v: u32, name: String, elem: u32, array: u32, category: &str, len: i16| {
                        let collation =
                            if matches!(t.oid, 25 | 1043 | 19) && elem == 0 { DEFAULT_COLLATION_OID } else { 0 };
                        rows.push(vec![
                            oid(oid_v),
                            text(&name),
                            oid(PG_CATALOG_OID),
                            oid(OWNER_OID),
                            i16v(len),
                            boolean(len > 0 && len <= 8),
                            text("b"),
                            text(category),
                            boolean(false),
                            boolean(true),
                            text(","),
                            oid(0),
                            oid(elem),
                            oid(array),
                            oid(0),
                            i32v(-1),
                            i32v(0),
                            oid(collation),
                            boolean(false),
                            null(Text),
                        ]);
                    };
                for t in BUILTIN.iter() {
                    push(t, t.oid, t.name.to_string(), 0, t.array_oid, t.category, t.len);
                    push(t, t.array_oid, format!("_{}", t.name), t.oid, 0, "A", -1);
                }
                mem_table(
                    &[
                        ("oid", Oid),
                        ("typname", Text),
                        ("typnamespace", Oid),
                        ("typowner", Oid),
                        ("typlen", I16),
                        ("typbyval", Bool),
                        ("typtype", Text),
                        ("typcategory", Text),
                        ("typispreferred", Bool),
                        ("typisdefined", Bool),
                        ("typdelim", Text),
                        ("typrelid", Oid),
                        ("typelem", Oid),
                        ("typarray", Oid),
                        ("typbasetype", Oid),
                        ("typtypmod", I32),
                        ("typndims", I32),
                        ("typcollation", Oid),
                        ("typnotnull", Bool),
                        ("typdefault", Text),
                    ],
                    rows,
                )
            }
            _ => return None,
        };
        Some(table)
    }
}

pub(super) fn pg_len(type_oid: u32) -> i16 {
    BUILTIN.iter().find(|t| t.oid == type_oid).map(|t| t.len).unwrap_or(-1)
}
