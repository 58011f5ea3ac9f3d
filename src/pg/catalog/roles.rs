//! Who is connected: `pg_database` (the session's database), and `pg_roles`, `pg_user` and
//! `pg_authid` (the session's user, a superuser; no password is ever shown).
use super::columns::{C, boolean, i32v, mem_table, null, oid, text};
use super::{DATABASE_OID, OWNER_OID, PgCatalog};
use datafusion::catalog::TableProvider;
use datafusion::common::ScalarValue;
use datafusion::error::Result;
use std::sync::Arc;

impl PgCatalog {
    /// `pg_database`, `pg_roles`, `pg_user` and `pg_authid`.
    pub(super) fn role_table(&self, name: &str) -> Option<Result<Arc<dyn TableProvider>>> {
        use C::*;
        let table = match name {
            "pg_database" => mem_table(
                &[
                    ("oid", Oid),
                    ("datname", Text),
                    ("datdba", Oid),
                    ("encoding", I32),
                    ("datlocprovider", Text),
                    ("datistemplate", Bool),
                    ("datallowconn", Bool),
                    ("datconnlimit", I32),
                    ("datcollate", Text),
                    ("datctype", Text),
                    ("daticulocale", Text),
                    ("datacl", TextArr),
                ],
                vec![vec![
                    oid(DATABASE_OID),
                    text(&self.info.database),
                    oid(OWNER_OID),
                    i32v(6),
                    text("c"),
                    boolean(false),
                    boolean(true),
                    i32v(-1),
                    text("C.UTF-8"),
                    text("C.UTF-8"),
                    null(Text),
                    null(TextArr),
                ]],
            ),
            "pg_roles" | "pg_user" | "pg_authid" => {
                let mut cols: Vec<(&str, C)> = if name == "pg_user" {
                    vec![
                        ("usesysid", Oid),
                        ("usename", Text),
                        ("usesuper", Bool),
                        ("usecreatedb", Bool),
                        ("userepl", Bool),
                        ("usebypassrls", Bool),
                    ]
                } else {
                    vec![
                        ("oid", Oid),
                        ("rolname", Text),
                        ("rolsuper", Bool),
                        ("rolinherit", Bool),
                        ("rolcreaterole", Bool),
                        ("rolcreatedb", Bool),
                        ("rolcanlogin", Bool),
                        ("rolreplication", Bool),
                        ("rolconnlimit", I32),
                        ("rolvaliduntil", Text),
                        ("rolbypassrls", Bool),
                    ]
                };
                if name == "pg_authid" {
                    // Never shown: secrets stay in the configuration, hashed.
                    cols.push(("rolpassword", Text));
                }
                let row: Vec<ScalarValue> = cols
                    .iter()
                    .map(|(n, c)| match (n, c) {
                        (_, Oid) => oid(OWNER_OID),
                        (&"rolvaliduntil", _) | (&"rolpassword", _) => null(Text),
                        (_, Text) => text(&self.info.user),
                        (_, I32) => i32v(-1),
                        (n, _) => boolean(!n.contains("repl") && !n.contains("bypass")),
                    })
                    .collect();
                mem_table(&cols, vec![row])
            }
            _ => return None,
        };
        Some(table)
    }
}
