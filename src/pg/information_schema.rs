//! `information_schema` as PostgreSQL shows it, generated at each lookup from the session's
//! catalog: `schemata`, `tables` (tables and views, `BASE TABLE` / `VIEW`), `views` (views only,
//! with their definitions) and `columns` (PostgreSQL type names: `text`, `bigint`,
//! `timestamp without time zone`, `numeric` with precision and scale, ...), the tables dbt,
//! Grafana and other clients read. DataFusion's own `information_schema` shows Arrow type names
//! and lists tables as views; it is switched off and this one takes its place.

use super::types::{self, pg_type_of};
use datafusion::arrow::array::{ArrayRef, Int32Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::catalog::{CatalogProviderList, MemTable, SchemaProvider, TableProvider};
use datafusion::datasource::TableType;
use datafusion::error::Result;
use std::sync::{Arc, OnceLock, Weak};

pub const INFORMATION_SCHEMA: &str = "information_schema";

pub(crate) const TABLES: [&str; 9] = [
    "columns",
    "key_column_usage",
    "referential_constraints",
    "role_table_grants",
    "routines",
    "schemata",
    "table_constraints",
    "tables",
    "views",
];

/// The privileges the owner holds on a table (and on a view: SELECT), as PostgreSQL lists them.
const TABLE_PRIVILEGES: [&str; 7] = ["INSERT", "SELECT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER"];

/// The schema; it reads the session's catalogs, set once the session's context exists (held
/// weakly: the catalogs hold this schema).
#[derive(Debug, Default)]
pub struct InformationSchema {
    catalogs: OnceLock<Weak<dyn CatalogProviderList>>,
    owner: String,
}

impl InformationSchema {
    pub fn new(owner: &str) -> InformationSchema {
        InformationSchema { catalogs: OnceLock::new(), owner: owner.to_string() }
    }

    /// Points the schema at the session's catalogs.
    pub fn attach(&self, catalogs: &Arc<dyn CatalogProviderList>) {
        let _ = self.catalogs.set(Arc::downgrade(catalogs));
    }

    /// Every relation: (catalog, schema, name, provider), by schema then name.
    async fn relations(&self) -> Result<Vec<(String, String, String, Arc<dyn TableProvider>)>> {
        let Some(list) = self.catalogs.get().and_then(Weak::upgrade) else { return Ok(vec![]) };
        let mut out = vec![];
        for c in list.catalog_names() {
            let Some(catalog) = list.catalog(&c) else { continue };
            let mut schemas = catalog.schema_names();
            schemas.sort();
            for s in schemas {
                if s == INFORMATION_SCHEMA {
                    continue;
                }
                let Some(schema) = catalog.schema(&s) else { continue };
                let mut names = schema.table_names();
                names.sort();
                for t in names {
                    // A relation that cannot be read (a corrupt file, a view too complex to
                    // plan) is left out of the listing: the other relations stay listed for the
                    // clients that sync through it (issue 25). Reading it says why.
                    match schema.table(&t).await {
                        Ok(Some(p)) => out.push((c.clone(), s.clone(), t, p)),
                        Ok(None) => {}
                        Err(e) => {
                            tracing::warn!(schema = %s, relation = %t, error = %e, "left out of information_schema")
                        }
                    }
                }
            }
        }
        Ok(out)
    }

    async fn schemata(&self) -> Vec<(String, String)> {
        let Some(list) = self.catalogs.get().and_then(Weak::upgrade) else { return vec![] };
        let mut out = vec![];
        for c in list.catalog_names() {
            if let Some(catalog) = list.catalog(&c) {
                let mut schemas = catalog.schema_names();
                schemas.push(INFORMATION_SCHEMA.to_string());
                schemas.sort();
                schemas.dedup();
                out.extend(schemas.into_iter().map(|s| (c.clone(), s)));
            }
        }
        out
    }
}

fn text_table(columns: &[&str], rows: Vec<Vec<Option<String>>>) -> Result<Arc<dyn TableProvider>> {
    let schema: SchemaRef =
        Arc::new(Schema::new(columns.iter().map(|c| Field::new(*c, DataType::Utf8, true)).collect::<Vec<_>>()));
    let arrays: Vec<ArrayRef> = (0..columns.len())
        .map(|i| Arc::new(rows.iter().map(|r| r[i].clone()).collect::<StringArray>()) as ArrayRef)
        .collect();
    let batch = RecordBatch::try_new(schema.clone(), arrays)?;
    Ok(Arc::new(MemTable::try_new(schema, vec![vec![batch]])?))
}

fn typed_empty_table(columns: &[(&str, DataType)]) -> Result<Arc<dyn TableProvider>> {
    let schema: SchemaRef =
        Arc::new(Schema::new(columns.iter().map(|(n, t)| Field::new(*n, t.clone(), true)).collect::<Vec<_>>()));
    Ok(Arc::new(MemTable::try_new(schema.clone(), vec![vec![RecordBatch::new_empty(schema)]])?))
}

/// `information_schema.columns.data_type`: the SQL standard name PostgreSQL shows (`ARRAY` for
/// arrays), and `udt_name` (the `pg_type` name).
fn data_type(dt: &DataType) -> (String, String) {
    let oid = types::type_oid(dt);
    let udt = types::BUILTIN
        .iter()
        .find(|t| t.oid == oid)
        .map(|t| t.name.to_string())
        .or_else(|| types::BUILTIN.iter().find(|t| t.array_oid == oid).map(|t| format!("_{}", t.name)))
        .unwrap_or_else(|| "text".into());
    if udt.starts_with('_') {
        return ("ARRAY".into(), udt);
    }
    (types::format_type(oid, -1).unwrap_or_else(|| "text".into()), udt)
}

/// Precision columns of `information_schema.columns`: numeric precision, radix, scale and
/// datetime precision, as PostgreSQL reports them for the type.
fn precision(dt: &DataType) -> (Option<i32>, Option<i32>, Option<i32>, Option<i32>) {
    match dt {
        DataType::Int8 | DataType::Int16 | DataType::UInt8 => (Some(16), Some(2), Some(0), None),
        DataType::Int32 | DataType::UInt16 => (Some(32), Some(2), Some(0), None),
        DataType::Int64 => (Some(64), Some(2), Some(0), None),
        DataType::Float16 | DataType::Float32 => (Some(24), Some(2), None, None),
        DataType::Float64 => (Some(53), Some(2), None, None),
        DataType::Decimal32(p, s)
        | DataType::Decimal64(p, s)
        | DataType::Decimal128(p, s)
        | DataType::Decimal256(p, s) => (Some(i32::from(*p)), Some(10), Some(i32::from(*s)), None),
        DataType::UInt64 => (None, Some(10), None, None),
        DataType::Timestamp(unit, _) | DataType::Time64(unit) | DataType::Time32(unit) => {
            let p = match unit {
                TimeUnit::Second => 0,
                TimeUnit::Millisecond => 3,
                _ => 6,
            };
            (None, None, None, Some(p))
        }
        DataType::Date32 | DataType::Date64 => (None, None, None, Some(0)),
        _ => (None, None, None, None),
    }
}

#[async_trait::async_trait]
impl SchemaProvider for InformationSchema {
    fn table_names(&self) -> Vec<String> {
        TABLES.iter().map(|t| t.to_string()).collect()
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        let owner = Some(self.owner.clone());
        let s = |v: &str| Some(v.to_string());
        let t = match name {
            "schemata" => text_table(
                &[
                    "catalog_name",
                    "schema_name",
                    "schema_owner",
                    "default_character_set_catalog",
                    "default_character_set_schema",
                    "default_character_set_name",
                    "sql_path",
                ],
                self.schemata()
                    .await
                    .into_iter()
                    .map(|(c, sc)| vec![Some(c), Some(sc), owner.clone(), None, None, None, None])
                    .collect(),
            )?,
            "tables" => text_table(
                &[
                    "table_catalog",
                    "table_schema",
                    "table_name",
                    "table_type",
                    "self_referencing_column_name",
                    "reference_generation",
                    "user_defined_type_catalog",
                    "user_defined_type_schema",
                    "user_defined_type_name",
                    "is_insertable_into",
                    "is_typed",
                    "commit_action",
                ],
                self.relations()
                    .await?
                    .into_iter()
                    .map(|(c, sc, t, p)| {
                        let view = p.table_type() == TableType::View;
                        vec![
                            Some(c),
                            Some(sc),
                            Some(t),
                            s(if view { "VIEW" } else { "BASE TABLE" }),
                            None,
                            None,
                            None,
                            None,
                            None,
                            s(if view { "NO" } else { "YES" }),
                            s("NO"),
                            None,
                        ]
                    })
                    .collect(),
            )?,
            "views" => text_table(
                &[
                    "table_catalog",
                    "table_schema",
                    "table_name",
                    "view_definition",
                    "check_option",
                    "is_updatable",
                    "is_insertable_into",
                    "is_trigger_updatable",
                    "is_trigger_deletable",
                    "is_trigger_insertable_into",
                ],
                self.relations()
                    .await?
                    .into_iter()
                    .filter(|(_, _, _, p)| p.table_type() == TableType::View)
                    .map(|(c, sc, t, p)| {
                        let def = p.get_table_definition().map(str::to_string);
                        vec![Some(c), Some(sc), Some(t), def, s("NONE"), s("NO"), s("NO"), s("NO"), s("NO"), s("NO")]
                    })
                    .collect(),
            )?,
            "columns" => {
                let text_cols = ["table_catalog", "table_schema", "table_name", "column_name"];
                let mut rows: Vec<(Vec<Option<String>>, i32, DataType)> = vec![];
                for (c, sc, t, p) in self.relations().await? {
                    for (i, f) in p.schema().fields().iter().enumerate() {
                        rows.push((
                            vec![Some(c.clone()), Some(sc.clone()), Some(t.clone()), Some(f.name().clone())],
                            i as i32 + 1,
                            f.data_type().clone(),
                        ));
                    }
                }
                let mut fields: Vec<Field> = text_cols.iter().map(|n| Field::new(*n, DataType::Utf8, true)).collect();
                fields.push(Field::new("ordinal_position", DataType::Int32, true));
                for n in ["column_default", "is_nullable", "data_type"] {
                    fields.push(Field::new(n, DataType::Utf8, true));
                }
                for n in [
                    "character_maximum_length",
                    "character_octet_length",
                    "numeric_precision",
                    "numeric_precision_radix",
                    "numeric_scale",
                    "datetime_precision",
                ] {
                    fields.push(Field::new(n, DataType::Int32, true));
                }
                for n in ["udt_catalog", "udt_schema", "udt_name", "is_identity", "is_generated", "is_updatable"] {
                    fields.push(Field::new(n, DataType::Utf8, true));
                }
                let schema = Arc::new(Schema::new(fields));
                let text =
                    |i: usize| Arc::new(rows.iter().map(|r| r.0[i].clone()).collect::<StringArray>()) as ArrayRef;
                let ints = |f: &dyn Fn(&DataType) -> Option<i32>| {
                    Arc::new(rows.iter().map(|r| f(&r.2)).collect::<Int32Array>()) as ArrayRef
                };
                let strs = |f: &dyn Fn(&DataType) -> Option<String>| {
                    Arc::new(rows.iter().map(|r| f(&r.2)).collect::<StringArray>()) as ArrayRef
                };
                let is_text = |dt: &DataType| pg_type_of(dt).category == "S";
                let columns: Vec<ArrayRef> = vec![
                    text(0),
                    text(1),
                    text(2),
                    text(3),
                    Arc::new(rows.iter().map(|r| Some(r.1)).collect::<Int32Array>()),
                    strs(&|_| None),
                    // Every column takes NULL (no NOT NULL constraints).
                    strs(&|_| Some("YES".into())),
                    strs(&|dt| Some(data_type(dt).0)),
                    ints(&|_| None),
                    ints(&|dt| is_text(dt).then_some(1_073_741_824)),
                    ints(&|dt| precision(dt).0),
                    ints(&|dt| precision(dt).1),
                    ints(&|dt| precision(dt).2),
                    ints(&|dt| precision(dt).3),
                    strs(&|_| Some("journeydb".into())),
                    strs(&|_| Some("pg_catalog".into())),
                    strs(&|dt| Some(data_type(dt).1)),
                    strs(&|_| Some("NO".into())),
                    strs(&|_| Some("NEVER".into())),
                    strs(&|_| Some("YES".into())),
                ];
                let batch = RecordBatch::try_new(schema.clone(), columns)?;
                Arc::new(MemTable::try_new(schema, vec![vec![batch]])?)
            }
            // Every user owns every relation (journeydb has no grants yet): the owner's own
            // privileges, grantor and grantee alike, as PostgreSQL lists an owner's.
            "role_table_grants" => text_table(
                &[
                    "grantor",
                    "grantee",
                    "table_catalog",
                    "table_schema",
                    "table_name",
                    "privilege_type",
                    "is_grantable",
                    "with_hierarchy",
                ],
                self.relations()
                    .await?
                    .into_iter()
                    .filter(|(_, sc, _, _)| sc != super::catalog::PG_CATALOG)
                    .flat_map(|(c, sc, t, p)| {
                        let view = p.table_type() == TableType::View;
                        let privileges: &[&str] = if view { &["SELECT"] } else { &TABLE_PRIVILEGES };
                        let owner = owner.clone();
                        privileges.iter().map(move |privilege| {
                            vec![
                                owner.clone(),
                                owner.clone(),
                                Some(c.clone()),
                                Some(sc.clone()),
                                Some(t.clone()),
                                s(privilege),
                                s("YES"),
                                s(if *privilege == "SELECT" { "YES" } else { "NO" }),
                            ]
                        })
                    })
                    .collect(),
            )?,
            // The journey functions, in `public` as pg_proc lists them (PostgreSQL's own functions
            // are left out, as clients that read this view want the user's).
            "routines" => {
                let catalog_name =
                    self.catalogs.get().and_then(Weak::upgrade).and_then(|l| l.catalog_names().into_iter().next());
                text_table(
                    &[
                        "specific_catalog",
                        "specific_schema",
                        "specific_name",
                        "routine_catalog",
                        "routine_schema",
                        "routine_name",
                        "routine_type",
                        "data_type",
                        "type_udt_name",
                        "routine_body",
                        "routine_definition",
                        "external_language",
                        "is_deterministic",
                        "security_type",
                    ],
                    journeydb_udfs::catalog()
                        .into_iter()
                        .map(|e| {
                            let table = e.result.starts_with("TABLE");
                            let oid = super::catalog::function_oid(e.name, e.kind.prokind());
                            let specific = format!("{}_{oid}", e.name);
                            let catalog = catalog_name.clone();
                            vec![
                                catalog.clone(),
                                s("public"),
                                Some(specific.clone()),
                                catalog,
                                s("public"),
                                s(e.name),
                                s("FUNCTION"),
                                s(if table { "record" } else { e.result }),
                                s(if table { "record" } else { e.result }),
                                s("EXTERNAL"),
                                None,
                                s("journeydb"),
                                s("YES"),
                                s("INVOKER"),
                            ]
                        })
                        .collect(),
                )?
            }
            // journeydb tables have no primary, unique, foreign key or check constraints: these
            // exist, with PostgreSQL's columns, for the clients that join them (Metabase's sync).
            "table_constraints" => text_table(
                &[
                    "constraint_catalog",
                    "constraint_schema",
                    "constraint_name",
                    "table_catalog",
                    "table_schema",
                    "table_name",
                    "constraint_type",
                    "is_deferrable",
                    "initially_deferred",
                    "enforced",
                    "nulls_distinct",
                ],
                vec![],
            )?,
            "key_column_usage" => typed_empty_table(&[
                ("constraint_catalog", DataType::Utf8),
                ("constraint_schema", DataType::Utf8),
                ("constraint_name", DataType::Utf8),
                ("table_catalog", DataType::Utf8),
                ("table_schema", DataType::Utf8),
                ("table_name", DataType::Utf8),
                ("column_name", DataType::Utf8),
                ("ordinal_position", DataType::Int32),
                ("position_in_unique_constraint", DataType::Int32),
            ])?,
            "referential_constraints" => text_table(
                &[
                    "constraint_catalog",
                    "constraint_schema",
                    "constraint_name",
                    "unique_constraint_catalog",
                    "unique_constraint_schema",
                    "unique_constraint_name",
                    "match_option",
                    "update_rule",
                    "delete_rule",
                ],
                vec![],
            )?,
            _ => return Ok(None),
        };
        Ok(Some(t))
    }

    fn table_exist(&self, name: &str) -> bool {
        TABLES.contains(&name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_type_names() {
        assert_eq!(data_type(&DataType::Utf8View), ("text".into(), "text".into()));
        assert_eq!(data_type(&DataType::Int64), ("bigint".into(), "int8".into()));
        assert_eq!(
            data_type(&DataType::Timestamp(TimeUnit::Microsecond, None)),
            ("timestamp without time zone".into(), "timestamp".into())
        );
        assert_eq!(data_type(&DataType::Decimal128(12, 2)), ("numeric".into(), "numeric".into()));
        let list = DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)));
        assert_eq!(data_type(&list), ("ARRAY".into(), "_text".into()));
        assert_eq!(precision(&DataType::Decimal128(12, 2)), (Some(12), Some(10), Some(2), None));
    }
}
