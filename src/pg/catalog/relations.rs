//! The catalog tables that describe relations: namespaces, `pg_class` and `pg_attribute`
//! (every table and view of the store, the journey model's views and the catalog's own
//! tables), `pg_am`, `pg_tables`, `pg_views`, `pg_stat_user_tables` and `pg_description`
//! (comments on the store's relations and columns, each journey function's summary).
use super::columns::{C, boolean, i16v, i32v, mem_table, null, oid, text};
use super::types::pg_len;
use super::{
    DEFAULT_COLLATION_OID, HEAP_AM_OID, OWNER_OID, PG_CATALOG, PG_CATALOG_OID, PgCatalog, TABLES, catalog_table_oid,
    function_oid, journey_view_oid, relation_oid, schema_oid, store_relations,
};
use crate::journey::JOURNEY_SCHEMA;
use crate::pg::types;
use crate::store::RelationKind;
use datafusion::arrow::datatypes::Schema;
use datafusion::catalog::TableProvider;
use datafusion::common::ScalarValue;
use datafusion::error::Result;
use std::sync::Arc;

impl PgCatalog {
    /// `pg_namespace`, `pg_class`, `pg_attribute`, `pg_am`, `pg_tables`, `pg_views`, `pg_stat_user_tables`, `pg_description` and `pg_tablespace`.
    pub(super) fn relation_table(&self, name: &str) -> Option<Result<Arc<dyn TableProvider>>> {
        use C::*;
        let table = match name {
            "pg_namespace" => {
                let mut names = vec![PG_CATALOG.to_string(), "information_schema".into(), JOURNEY_SCHEMA.into()];
                names.extend(self.store.schema_names());
                mem_table(
                    &[("oid", Oid), ("nspname", Text), ("nspowner", Oid), ("nspacl", TextArr)],
                    names.iter().map(|n| vec![oid(schema_oid(n)), text(n), oid(OWNER_OID), null(TextArr)]).collect(),
                )
            }
            "pg_class" => {
                let rows = self.relations_shallow();
                mem_table(
                    &[
                        ("oid", Oid),
                        ("relname", Text),
                        ("relnamespace", Oid),
                        ("reltype", Oid),
                        ("reloftype", Oid),
                        ("relowner", Oid),
                        ("relam", Oid),
                        ("relfilenode", Oid),
                        ("reltablespace", Oid),
                        ("relpages", I32),
                        ("reltuples", F32),
                        ("relallvisible", I32),
                        ("reltoastrelid", Oid),
                        ("relhasindex", Bool),
                        ("relisshared", Bool),
                        ("relpersistence", Text),
                        ("relkind", Text),
                        ("relnatts", I16),
                        ("relchecks", I16),
                        ("relhasrules", Bool),
                        ("relhastriggers", Bool),
                        ("relhassubclass", Bool),
                        ("relrowsecurity", Bool),
                        ("relforcerowsecurity", Bool),
                        ("relispopulated", Bool),
                        ("relreplident", Text),
                        ("relispartition", Bool),
                        ("relrewrite", Oid),
                        ("relacl", TextArr),
                        ("reloptions", TextArr),
                        ("relpartbound", Text),
                    ],
                    rows.iter()
                        .map(|r| {
                            vec![
                                oid(r.oid),
                                text(&r.name),
                                oid(r.namespace),
                                oid(0),
                                oid(0),
                                oid(OWNER_OID),
                                oid(if r.kind == "r" { HEAP_AM_OID } else { 0 }),
                                oid(0),
                                oid(0),
                                i32v(0),
                                // Never analyzed (-1), except store tables, whose footers count their rows.
                                ScalarValue::Float32(Some(r.rows.map_or(-1.0, |n| n as f32))),
                                i32v(0),
                                oid(0),
                                boolean(false),
                                boolean(false),
                                text("p"),
                                text(r.kind),
                                i16v(r.schema.fields().len() as i16),
                                i16v(0),
                                boolean(false),
                                boolean(false),
                                boolean(false),
                                boolean(false),
                                boolean(false),
                                boolean(true),
                                text("d"),
                                boolean(false),
                                oid(0),
                                null(TextArr),
                                null(TextArr),
                                null(Text),
                            ]
                        })
                        .collect(),
                )
            }
            "pg_attribute" => {
                let rows = self.relations_shallow();
                let mut out = vec![];
                for r in &rows {
                    for (i, f) in r.schema.fields().iter().enumerate() {
                        let t = types::type_oid(f.data_type());
                        let collation = if matches!(t, 25 | 1043 | 19) { DEFAULT_COLLATION_OID } else { 0 };
                        out.push(vec![
                            oid(r.oid),
                            text(f.name()),
                            oid(t),
                            i16v(pg_len(t)),
                            i16v(i as i16 + 1),
                            i32v(i32::from(t >= 1000 && types::BUILTIN.iter().any(|b| b.array_oid == t))),
                            i32v(types::type_modifier(f.data_type())),
                            boolean(pg_len(t) > 0 && pg_len(t) <= 8),
                            boolean(!f.is_nullable()),
                            boolean(false),
                            text(""),
                            text(""),
                            boolean(false),
                            boolean(true),
                            i16v(0),
                            oid(collation),
                            null(TextArr),
                            null(TextArr),
                            text(""),
                            // PostgreSQL's storage: main for numeric, plain for fixed-width types, else extended.
                            text(if t == types::NUMERIC.oid {
                                "m"
                            } else if pg_len(t) > 0 {
                                "p"
                            } else {
                                "x"
                            }),
                            i16v(-1),
                        ]);
                    }
                }
                mem_table(
                    &[
                        ("attrelid", Oid),
                        ("attname", Text),
                        ("atttypid", Oid),
                        ("attlen", I16),
                        ("attnum", I16),
                        ("attndims", I32),
                        ("atttypmod", I32),
                        ("attbyval", Bool),
                        ("attnotnull", Bool),
                        ("atthasdef", Bool),
                        ("attidentity", Text),
                        ("attgenerated", Text),
                        ("attisdropped", Bool),
                        ("attislocal", Bool),
                        ("attinhcount", I16),
                        ("attcollation", Oid),
                        ("attacl", TextArr),
                        ("attoptions", TextArr),
                        ("attcompression", Text),
                        ("attstorage", Text),
                        ("attstattarget", I16),
                    ],
                    out,
                )
            }
            "pg_am" => mem_table(
                &[("oid", Oid), ("amname", Text), ("amtype", Text)],
                vec![vec![oid(HEAP_AM_OID), text("heap"), text("t")]],
            ),
            "pg_tables" => mem_table(
                &[
                    ("schemaname", Text),
                    ("tablename", Text),
                    ("tableowner", Text),
                    ("tablespace", Text),
                    ("hasindexes", Bool),
                    ("hasrules", Bool),
                    ("hastriggers", Bool),
                    ("rowsecurity", Bool),
                ],
                store_relations(&self.store)
                    .iter()
                    .filter(|(_, _, k)| *k == RelationKind::Table)
                    .map(|(s, t, _)| {
                        vec![
                            text(s),
                            text(t),
                            text(&self.info.user),
                            null(Text),
                            boolean(false),
                            boolean(false),
                            boolean(false),
                            boolean(false),
                        ]
                    })
                    .collect(),
            ),
            "pg_views" => mem_table(
                &[("schemaname", Text), ("viewname", Text), ("viewowner", Text), ("definition", Text)],
                self.views
                    .iter()
                    .map(|v| vec![text(&v.namespace), text(&v.name), text(&self.info.user), text(&v.definition)])
                    .collect(),
            ),
            "pg_stat_user_tables" => {
                let counters = [
                    "seq_scan",
                    "seq_tup_read",
                    "idx_scan",
                    "idx_tup_fetch",
                    "n_tup_ins",
                    "n_tup_upd",
                    "n_tup_del",
                    "n_tup_hot_upd",
                    "n_live_tup",
                    "n_dead_tup",
                    "n_mod_since_analyze",
                    "n_ins_since_vacuum",
                ];
                let times = ["last_vacuum", "last_autovacuum", "last_analyze", "last_autoanalyze"];
                let totals = ["vacuum_count", "autovacuum_count", "analyze_count", "autoanalyze_count"];
                let mut columns = vec![("relid", Oid), ("schemaname", Text), ("relname", Text)];
                columns.extend(counters.iter().map(|c| (*c, I64)));
                columns.extend(times.iter().map(|c| (*c, Timestamptz)));
                columns.extend(totals.iter().map(|c| (*c, I64)));
                let rows = self
                    .store_relations_only()
                    .into_iter()
                    .filter_map(|r| {
                        let schema = r.store_schema.clone()?;
                        let live = r.rows?;
                        let mut row = vec![oid(r.oid), text(&schema), text(&r.name)];
                        // No scans or writes are counted: only the live rows, as the files hold them.
                        row.extend(
                            counters
                                .iter()
                                .map(|c| ScalarValue::Int64(Some(if *c == "n_live_tup" { live as i64 } else { 0 }))),
                        );
                        row.extend(times.iter().map(|_| null(Timestamptz)));
                        row.extend(totals.iter().map(|_| ScalarValue::Int64(Some(0))));
                        Some(row)
                    })
                    .collect();
                mem_table(&columns, rows)
            }
            "pg_description" => {
                let mut rows = vec![];
                // Not from `relations_shallow`, which builds every catalog table (this one too).
                for r in self.store_relations_only() {
                    let Some(schema) = &r.store_schema else { continue };
                    let c = self.store.comments(schema, &r.name);
                    let class = catalog_table_oid("pg_class");
                    if let Some(t) = &c.relation {
                        rows.push(vec![oid(r.oid), oid(class), i32v(0), text(t)]);
                    }
                    for (i, f) in r.schema.fields().iter().enumerate() {
                        if let Some(t) = c.columns.get(f.name()) {
                            rows.push(vec![oid(r.oid), oid(class), i32v(i as i32 + 1), text(t)]);
                        }
                    }
                }
                // Each journey function's summary, from its reference (psql's `\df+`).
                let proc = catalog_table_oid("pg_proc");
                for f in journeydb_udfs::catalog() {
                    rows.push(vec![oid(function_oid(f.name, f.kind.prokind())), oid(proc), i32v(0), text(f.summary)]);
                }
                mem_table(&[("objoid", Oid), ("classoid", Oid), ("objsubid", I32), ("description", Text)], rows)
            }
            // The tablespaces every PostgreSQL cluster has; relations are in the default one
            // (`reltablespace` 0), as PostgreSQL shows it.
            "pg_tablespace" => mem_table(
                &[("oid", Oid), ("spcname", Text), ("spcowner", Oid), ("spcacl", TextArr), ("spcoptions", TextArr)],
                [(1663, "pg_default"), (1664, "pg_global")]
                    .into_iter()
                    .map(|(o, n)| vec![oid(o), text(n), oid(OWNER_OID), null(TextArr), null(TextArr)])
                    .collect(),
            ),
            _ => return None,
        };
        Some(table)
    }
}

struct Relation {
    oid: u32,
    name: String,
    namespace: u32,
    kind: &'static str,
    schema: Arc<Schema>,
    /// The store schema a user relation is in (None for catalog tables and journey views).
    store_schema: Option<String>,
    /// Rows of a store table, from its files' footers.
    rows: Option<u64>,
}

impl PgCatalog {
    /// Relations with their columns, without recursing into `pg_class`/`pg_attribute` themselves.
    fn relations_shallow(&self) -> Vec<Relation> {
        let mut out = self.store_relations_only();
        for name in TABLES {
            let schema = if name == "pg_class" || name == "pg_attribute" {
                Arc::new(Schema::empty())
            } else {
                match self.build(name) {
                    Ok(Some(t)) => t.schema(),
                    _ => continue,
                }
            };
            let kind = if matches!(
                name,
                "pg_tables"
                    | "pg_views"
                    | "pg_roles"
                    | "pg_user"
                    | "pg_matviews"
                    | "pg_settings"
                    | "pg_stat_user_tables"
            ) {
                "v"
            } else {
                "r"
            };
            out.push(Relation {
                oid: catalog_table_oid(name),
                name: name.to_string(),
                namespace: PG_CATALOG_OID,
                kind,
                schema,
                store_schema: None,
                rows: None,
            });
        }
        out
    }

    /// The store's tables and the views (the journey model's and the users').
    fn store_relations_only(&self) -> Vec<Relation> {
        let mut out = vec![];
        for (s, name, kind) in store_relations(&self.store) {
            if kind != RelationKind::Table {
                continue;
            }
            let (schema, rows) = match self.store.table_in(&s, &name) {
                Ok(Some(t)) => (t.schema(), Some(t.row_count())),
                _ => (Arc::new(Schema::empty()), None),
            };
            out.push(Relation {
                oid: relation_oid(&s, &name),
                name,
                namespace: schema_oid(&s),
                kind: "r",
                schema,
                store_schema: Some(s),
                rows,
            });
        }
        for v in &self.views {
            let journey = v.namespace == JOURNEY_SCHEMA;
            out.push(Relation {
                oid: if journey { journey_view_oid(&v.name) } else { relation_oid(&v.namespace, &v.name) },
                name: v.name.clone(),
                namespace: schema_oid(&v.namespace),
                kind: "v",
                schema: v.schema.clone(),
                store_schema: (!journey).then(|| v.namespace.clone()),
                rows: None,
            });
        }
        out
    }
}
