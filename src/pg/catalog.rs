//! `pg_catalog`, generated from the store on every lookup, so it always describes the tables
//! that exist now. Tables journeydb has no objects for (policies, publications, inheritance,
//! triggers, ...) exist with their PostgreSQL columns and no rows; [`ALWAYS_EMPTY`] lists them,
//! and the rewriter uses that to prune client queries that join them.

use super::information_schema::INFORMATION_SCHEMA;
use super::types::{self, BUILTIN, PgType};
use crate::journey::JOURNEY_SCHEMA;
use crate::store::{RelationKind, STORE_SCHEMA, Store, ViewPlanner};
use datafusion::arrow::array::{ArrayRef, new_empty_array};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::{MemTable, SchemaProvider, TableProvider};
use datafusion::common::ScalarValue;
use datafusion::error::Result;
use std::sync::Arc;

pub const PG_CATALOG: &str = "pg_catalog";
pub const PG_CATALOG_OID: u32 = 11;
pub const PUBLIC_OID: u32 = 2200;
pub const INFORMATION_SCHEMA_OID: u32 = 13_000;
/// The journey model's schema (user namespaces start at 16384 in PostgreSQL).
pub const JOURNEY_OID: u32 = 16_383;
pub const OWNER_OID: u32 = 10;
pub const DATABASE_OID: u32 = 16_384;
pub const HEAP_AM_OID: u32 = 2;
pub const DEFAULT_COLLATION_OID: u32 = 100;

/// Catalog tables that never have rows in journeydb.
///
/// `pg_collation` is among them: every text column uses the default collation, which is what
/// a column with no collation of its own shows in PostgreSQL, so nothing ever refers to a row.
pub const ALWAYS_EMPTY: [&str; 20] = [
    "pg_attrdef",
    "pg_auth_members",
    "pg_collation",
    "pg_constraint",
    "pg_depend",
    "pg_enum",
    "pg_event_trigger",
    "pg_extension",
    "pg_index",
    "pg_inherits",
    "pg_matviews",
    "pg_partitioned_table",
    "pg_policy",
    "pg_publication",
    "pg_publication_namespace",
    "pg_publication_rel",
    "pg_range",
    "pg_rewrite",
    "pg_statistic_ext",
    "pg_trigger",
];

/// Who is asking: the catalog answers per session.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    pub user: String,
    pub database: String,
}

#[derive(Debug)]
pub struct PgCatalog {
    store: Arc<Store>,
    info: SessionInfo,
    /// The journey model's schema, whose views the catalog lists.
    journey: Arc<dyn SchemaProvider>,
    /// Plans the views users created, to list their columns.
    planner: Option<Arc<dyn ViewPlanner>>,
    /// The session's settings, which `pg_settings` shows.
    settings: crate::pg::settings::SharedSettings,
    /// Those views and the journey model's, looked up (planned) before a catalog table that
    /// lists them is built.
    views: Vec<View>,
}

/// A view as the catalog shows it.
#[derive(Debug, Clone)]
struct View {
    namespace: String,
    name: String,
    schema: Arc<Schema>,
    definition: String,
}

impl PgCatalog {
    pub fn new(
        store: Arc<Store>,
        info: SessionInfo,
        journey: Arc<dyn SchemaProvider>,
        planner: Option<Arc<dyn ViewPlanner>>,
        settings: crate::pg::settings::SharedSettings,
    ) -> PgCatalog {
        PgCatalog { store, info, journey, planner, settings, views: vec![] }
    }
}

/// OID of a namespace: fixed for the built-in ones, stable hashes for the store's schemas.
pub fn schema_oid(schema: &str) -> u32 {
    match schema {
        PG_CATALOG => PG_CATALOG_OID,
        STORE_SCHEMA => PUBLIC_OID,
        "information_schema" => INFORMATION_SCHEMA_OID,
        JOURNEY_SCHEMA => JOURNEY_OID,
        other => table_oid(&format!("schema {other}")),
    }
}

/// Stable OID of a relation of the store (tables and views of every schema).
pub fn relation_oid(schema: &str, name: &str) -> u32 {
    if schema == STORE_SCHEMA { table_oid(name) } else { table_oid(&format!("{schema}.{name}")) }
}

/// Every table and view of the store: (schema, name, kind), by schema then name.
pub fn store_relations(store: &Store) -> Vec<(String, String, RelationKind)> {
    let mut out = vec![];
    for s in store.schema_names() {
        for t in store.table_names_in(&s) {
            out.push((s.clone(), t, RelationKind::Table));
        }
        for v in store.view_names(&s) {
            out.push((s.clone(), v, RelationKind::View));
        }
    }
    out
}

/// Stable OID of a view of the journey model.
pub fn journey_view_oid(name: &str) -> u32 {
    table_oid(&format!("{JOURNEY_SCHEMA}.{name}"))
}

/// Stable OID of a store table (user objects start at 16384 in PostgreSQL).
pub fn table_oid(name: &str) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in name.bytes() {
        h = (h ^ b as u32).wrapping_mul(0x0100_0193);
    }
    16_385 + h % 1_000_000_000
}

/// Stable OID of a journey function.
pub fn function_oid(name: &str, kind: &str) -> u32 {
    table_oid(&format!("function {name} {kind}"))
}

/// The OID of the relation a `regclass` input names (`name`, `schema.name`, quoted or not, or
/// an OID), looked up as PostgreSQL does: a schema-qualified name in that schema; an
/// unqualified one in `pg_catalog`, then along the search path (`path`, its schemas in order).
pub fn regclass_oid(store: &Store, path: &[String], input: &str) -> Option<u32> {
    if let Ok(o) = input.trim().parse::<u32>() {
        return Some(o);
    }
    let parts = super::functions::parse_ident(input);
    let oid = |schema: &str, name: &str| -> Option<u32> {
        if !super::search_path::has_relation(store, schema, name) {
            return None;
        }
        match schema {
            PG_CATALOG => Some(catalog_table_oid(name)),
            JOURNEY_SCHEMA => Some(journey_view_oid(name)),
            INFORMATION_SCHEMA => None,
            s => Some(relation_oid(s, name)),
        }
    };
    match parts.as_slice() {
        [schema, name] => oid(schema, name),
        [name] => super::search_path::find(store, path, name).and_then(|s| oid(&s, name)),
        _ => None,
    }
}

/// How a `regclass` shows a relation's OID: its name, qualified when its schema is not `public`
/// or `pg_catalog`, each part quoted where SQL needs it.
pub fn regclass_name(store: &Store, oid: u32) -> Option<String> {
    use super::functions::quote_ident;
    if let Some(t) = TABLES.iter().find(|t| catalog_table_oid(t) == oid) {
        return Some(t.to_string());
    }
    if let Some(v) = crate::journey::VIEWS.iter().find(|v| journey_view_oid(v) == oid) {
        return Some(format!("{JOURNEY_SCHEMA}.{}", quote_ident(v)));
    }
    store_relations(store).into_iter().find(|(s, n, _)| relation_oid(s, n) == oid).map(|(s, n, _)| {
        if s == STORE_SCHEMA { quote_ident(&n) } else { format!("{}.{}", quote_ident(&s), quote_ident(&n)) }
    })
}

pub(crate) fn catalog_table_oid(name: &str) -> u32 {
    1_000 + TABLES.iter().position(|t| *t == name).unwrap_or(0) as u32
}

pub(crate) const TABLES: [&str; 36] = [
    "pg_am",
    "pg_attrdef",
    "pg_auth_members",
    "pg_attribute",
    "pg_class",
    "pg_collation",
    "pg_constraint",
    "pg_database",
    "pg_depend",
    "pg_description",
    "pg_event_trigger",
    "pg_extension",
    "pg_index",
    "pg_inherits",
    "pg_matviews",
    "pg_namespace",
    "pg_partitioned_table",
    "pg_policy",
    "pg_proc",
    "pg_publication",
    "pg_publication_namespace",
    "pg_publication_rel",
    "pg_rewrite",
    "pg_roles",
    "pg_statistic_ext",
    "pg_tables",
    "pg_trigger",
    "pg_type",
    "pg_user",
    "pg_views",
    // Appended, so that the other catalog tables keep their OIDs.
    "pg_settings",
    "pg_enum",
    "pg_stat_user_tables",
    "pg_authid",
    "pg_range",
    "pg_language",
];

/// Column types used by the catalog.
#[derive(Clone, Copy)]
enum C {
    Oid,
    Text,
    Bool,
    I16,
    I32,
    I64,
    F32,
    Timestamptz,
    TextArr,
}

impl C {
    fn data_type(self) -> DataType {
        match self {
            C::Oid => DataType::UInt32,
            C::Text => DataType::Utf8,
            C::Bool => DataType::Boolean,
            C::I16 => DataType::Int16,
            C::I32 => DataType::Int32,
            C::I64 => DataType::Int64,
            C::F32 => DataType::Float32,
            C::Timestamptz => {
                DataType::Timestamp(datafusion::arrow::datatypes::TimeUnit::Microsecond, Some("UTC".into()))
            }
            C::TextArr => DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
        }
    }
}

fn oid(v: u32) -> ScalarValue {
    ScalarValue::UInt32(Some(v))
}
fn text(v: &str) -> ScalarValue {
    ScalarValue::Utf8(Some(v.to_string()))
}
fn boolean(v: bool) -> ScalarValue {
    ScalarValue::Boolean(Some(v))
}
fn i16v(v: i16) -> ScalarValue {
    ScalarValue::Int16(Some(v))
}
fn i32v(v: i32) -> ScalarValue {
    ScalarValue::Int32(Some(v))
}
fn null(c: C) -> ScalarValue {
    ScalarValue::try_from(&c.data_type()).unwrap_or(ScalarValue::Null)
}

fn mem_table(columns: &[(&str, C)], rows: Vec<Vec<ScalarValue>>) -> Result<Arc<dyn TableProvider>> {
    let schema =
        Arc::new(Schema::new(columns.iter().map(|(n, c)| Field::new(*n, c.data_type(), true)).collect::<Vec<_>>()));
    let arrays: Vec<ArrayRef> = columns
        .iter()
        .enumerate()
        .map(|(i, (_, c))| {
            if rows.is_empty() {
                Ok(new_empty_array(&c.data_type()))
            } else {
                ScalarValue::iter_to_array(rows.iter().map(|r| r[i].clone()))
            }
        })
        .collect::<Result<_>>()?;
    let batch = RecordBatch::try_new(schema.clone(), arrays)?;
    Ok(Arc::new(MemTable::try_new(schema, vec![vec![batch]])?))
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
    fn build(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        use C::*;
        let t = match name {
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
            "pg_am" => mem_table(
                &[("oid", Oid), ("amname", Text), ("amtype", Text)],
                vec![vec![oid(HEAP_AM_OID), text("heap"), text("t")]],
            ),
            "pg_collation" => mem_table(
                &[
                    ("oid", Oid),
                    ("collname", Text),
                    ("collnamespace", Oid),
                    ("collowner", Oid),
                    ("collprovider", Text),
                    ("collencoding", I32),
                ],
                vec![],
            ),
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
            "pg_settings" => {
                let settings = crate::pg::settings::lock(&self.settings);
                let rows = crate::pg::settings::DEFAULTS
                    .iter()
                    .map(|(name, default)| {
                        let value = settings.get(name).unwrap_or_default();
                        let shown = match *name {
                            "timezone" => "TimeZone",
                            "datestyle" => "DateStyle",
                            "intervalstyle" => "IntervalStyle",
                            other => other,
                        };
                        let source = if value == *default { "default" } else { "session" };
                        let context = if ["server_encoding", "server_version", "server_version_num"].contains(name) {
                            "internal"
                        } else {
                            "user"
                        };
                        vec![
                            text(shown),
                            text(&value),
                            null(Text),
                            text("journeydb"),
                            null(Text),
                            text(context),
                            text(if *name == "statement_timeout" || *name == "extra_float_digits" {
                                "integer"
                            } else {
                                "string"
                            }),
                            text(source),
                            text(default),
                            text(default),
                        ]
                    })
                    .collect();
                mem_table(
                    &[
                        ("name", Text),
                        ("setting", Text),
                        ("unit", Text),
                        ("category", Text),
                        ("short_desc", Text),
                        ("context", Text),
                        ("vartype", Text),
                        ("source", Text),
                        ("boot_val", Text),
                        ("reset_val", Text),
                    ],
                    rows,
                )
            }
            // asyncpg's type introspection joins it; journeydb has no range types.
            // The languages functions are written in: journeydb's are all built in (`internal`).
            "pg_language" => mem_table(
                &[("oid", Oid), ("lanname", Text), ("lanowner", Oid), ("lanispl", Bool), ("lanpltrusted", Bool)],
                [(12, "internal"), (13, "c"), (14, "sql")]
                    .into_iter()
                    .map(|(o, name)| vec![oid(o), text(name), oid(OWNER_OID), boolean(false), boolean(o == 14)])
                    .collect(),
            ),
            "pg_range" => mem_table(
                &[
                    ("rngtypid", Oid),
                    ("rngsubtype", Oid),
                    ("rngmultitypid", Oid),
                    ("rngcollation", Oid),
                    ("rngsubopc", Oid),
                    ("rngcanonical", Oid),
                    ("rngsubdiff", Oid),
                ],
                vec![],
            ),
            "pg_enum" => {
                mem_table(&[("oid", Oid), ("enumtypid", Oid), ("enumsortorder", F32), ("enumlabel", Text)], vec![])
            }
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
            "pg_matviews" => mem_table(
                &[("schemaname", Text), ("viewname", Text), ("viewowner", Text), ("definition", Text)],
                vec![],
            ),
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
            "pg_auth_members" => mem_table(
                &[("oid", Oid), ("roleid", Oid), ("member", Oid), ("grantor", Oid), ("admin_option", Bool)],
                vec![],
            ),
            "pg_attrdef" => mem_table(&[("oid", Oid), ("adrelid", Oid), ("adnum", I16), ("adbin", Text)], vec![]),
            "pg_constraint" => mem_table(
                &[
                    ("oid", Oid),
                    ("conname", Text),
                    ("connamespace", Oid),
                    ("contype", Text),
                    ("conrelid", Oid),
                    ("confrelid", Oid),
                    ("conindid", Oid),
                    ("conkey", TextArr),
                    ("confkey", TextArr),
                    ("convalidated", Bool),
                ],
                vec![],
            ),
            "pg_depend" => mem_table(
                &[
                    ("classid", Oid),
                    ("objid", Oid),
                    ("objsubid", I32),
                    ("refclassid", Oid),
                    ("refobjid", Oid),
                    ("refobjsubid", I32),
                    ("deptype", Text),
                ],
                vec![],
            ),
            "pg_index" => mem_table(
                &[
                    ("indexrelid", Oid),
                    ("indrelid", Oid),
                    ("indnatts", I16),
                    ("indisunique", Bool),
                    ("indisprimary", Bool),
                    ("indkey", TextArr),
                ],
                vec![],
            ),
            "pg_inherits" => mem_table(
                &[("inhrelid", Oid), ("inhparent", Oid), ("inhseqno", I32), ("inhdetachpending", Bool)],
                vec![],
            ),
            "pg_policy" => mem_table(
                &[
                    ("oid", Oid),
                    ("polname", Text),
                    ("polrelid", Oid),
                    ("polcmd", Text),
                    ("polpermissive", Bool),
                    ("polroles", TextArr),
                    ("polqual", Text),
                    ("polwithcheck", Text),
                ],
                vec![],
            ),
            "pg_statistic_ext" => mem_table(
                &[
                    ("oid", Oid),
                    ("stxrelid", Oid),
                    ("stxname", Text),
                    ("stxnamespace", Oid),
                    ("stxowner", Oid),
                    ("stxstattarget", I32),
                    ("stxkeys", TextArr),
                    ("stxkind", TextArr),
                ],
                vec![],
            ),
            "pg_publication" => mem_table(
                &[
                    ("oid", Oid),
                    ("pubname", Text),
                    ("pubowner", Oid),
                    ("puballtables", Bool),
                    ("pubinsert", Bool),
                    ("pubupdate", Bool),
                    ("pubdelete", Bool),
                    ("pubtruncate", Bool),
                    ("pubviaroot", Bool),
                ],
                vec![],
            ),
            "pg_publication_namespace" => mem_table(&[("oid", Oid), ("pnpubid", Oid), ("pnnspid", Oid)], vec![]),
            "pg_publication_rel" => mem_table(
                &[("oid", Oid), ("prpubid", Oid), ("prrelid", Oid), ("prqual", Text), ("prattrs", TextArr)],
                vec![],
            ),
            "pg_rewrite" => mem_table(
                &[("oid", Oid), ("rulename", Text), ("ev_class", Oid), ("ev_type", Text), ("is_instead", Bool)],
                vec![],
            ),
            "pg_trigger" => mem_table(
                &[
                    ("oid", Oid),
                    ("tgrelid", Oid),
                    ("tgname", Text),
                    ("tgfoid", Oid),
                    ("tgenabled", Text),
                    ("tgisinternal", Bool),
                ],
                vec![],
            ),
            "pg_extension" => mem_table(
                &[("oid", Oid), ("extname", Text), ("extowner", Oid), ("extnamespace", Oid), ("extversion", Text)],
                vec![],
            ),
            "pg_event_trigger" => {
                mem_table(&[("oid", Oid), ("evtname", Text), ("evtevent", Text), ("evtenabled", Text)], vec![])
            }
            "pg_partitioned_table" => mem_table(&[("partrelid", Oid), ("partstrat", Text), ("partnatts", I16)], vec![]),
            _ => return Ok(None),
        }?;
        Ok(Some(t))
    }

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

fn pg_len(type_oid: u32) -> i16 {
    BUILTIN.iter().find(|t| t.oid == type_oid).map(|t| t.len).unwrap_or(-1)
}

#[async_trait::async_trait]
impl SchemaProvider for PgCatalog {
    fn table_names(&self) -> Vec<String> {
        TABLES.iter().map(|s| s.to_string()).collect()
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        let mut views = vec![];
        if matches!(name, "pg_class" | "pg_attribute" | "pg_views" | "pg_description") {
            for view in self.journey.table_names() {
                if let Some(t) = self.journey.table(&view).await? {
                    let definition = t.get_table_definition().unwrap_or_default().to_string();
                    views.push(View { namespace: JOURNEY_SCHEMA.into(), name: view, schema: t.schema(), definition });
                }
            }
            let store = self.store.clone();
            let user_views = tokio::task::spawn_blocking(move || {
                store_relations(&store)
                    .into_iter()
                    .filter(|(_, _, k)| *k == RelationKind::View)
                    .filter_map(|(s, v, _)| store.view_sql(&s, &v).map(|sql| (s, v, sql)))
                    .collect::<Vec<_>>()
            })
            .await
            .map_err(|e| datafusion::error::DataFusionError::Execution(format!("catalog lookup failed: {e}")))?;
            for (s, v, sql) in user_views {
                // A view that no longer plans (a table it reads was dropped) is listed without columns.
                let schema = match &self.planner {
                    Some(p) => p
                        .plan_view(&s, &v, &sql)
                        .await
                        .map(|t| t.schema())
                        .unwrap_or_else(|_| Arc::new(Schema::empty())),
                    None => Arc::new(Schema::empty()),
                };
                views.push(View { namespace: s, name: v, schema, definition: sql });
            }
        }
        let catalog = PgCatalog {
            store: self.store.clone(),
            info: self.info.clone(),
            journey: self.journey.clone(),
            planner: self.planner.clone(),
            settings: self.settings.clone(),
            views,
        };
        let name = name.to_string();
        // Listing the store is blocking I/O.
        tokio::task::spawn_blocking(move || catalog.build(&name))
            .await
            .map_err(|e| datafusion::error::DataFusionError::Execution(format!("catalog lookup failed: {e}")))?
    }

    fn table_exist(&self, name: &str) -> bool {
        TABLES.contains(&name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_always_empty_table_is_a_catalog_table() {
        for t in ALWAYS_EMPTY {
            assert!(TABLES.contains(&t), "{t}");
        }
    }

    #[test]
    fn table_oids_are_stable_user_oids() {
        assert_eq!(table_oid("events"), table_oid("events"));
        assert_ne!(table_oid("events"), table_oid("crm_deals"));
        assert!(table_oid("events") >= 16_385);
    }
}
