//! The catalog tables journeydb has no objects for (defaults, constraints, indexes,
//! inheritance, policies, publications, rules, triggers, extensions, ...): each exists with the
//! columns clients read of it and no rows. Clients' queries that join one are pruned by the
//! rewriter ([`is_always_empty`]).
//!
//! `pg_collation` is among them: every text column uses the default collation, which is what
//! a column with no collation of its own shows in PostgreSQL, so nothing ever refers to a row.
//! asyncpg's type introspection joins `pg_range`; journeydb has no range types. SQLAlchemy's
//! inspector reads `pg_sequence` (identity columns) and `pg_opclass` (index operator classes).

use super::columns::{C, mem_table};
use datafusion::catalog::TableProvider;
use datafusion::error::Result;
use std::sync::Arc;

/// Each always-empty table and its columns.
const EMPTY: [(&str, &[(&str, C)]); 22] = {
    use C::*;
    [
        ("pg_attrdef", &[("oid", Oid), ("adrelid", Oid), ("adnum", I16), ("adbin", Text)]),
        (
            "pg_auth_members",
            &[("oid", Oid), ("roleid", Oid), ("member", Oid), ("grantor", Oid), ("admin_option", Bool)],
        ),
        (
            "pg_collation",
            &[
                ("oid", Oid),
                ("collname", Text),
                ("collnamespace", Oid),
                ("collowner", Oid),
                ("collprovider", Text),
                ("collencoding", I32),
            ],
        ),
        (
            "pg_constraint",
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
        ),
        (
            "pg_depend",
            &[
                ("classid", Oid),
                ("objid", Oid),
                ("objsubid", I32),
                ("refclassid", Oid),
                ("refobjid", Oid),
                ("refobjsubid", I32),
                ("deptype", Text),
            ],
        ),
        ("pg_enum", &[("oid", Oid), ("enumtypid", Oid), ("enumsortorder", F32), ("enumlabel", Text)]),
        ("pg_event_trigger", &[("oid", Oid), ("evtname", Text), ("evtevent", Text), ("evtenabled", Text)]),
        (
            "pg_extension",
            &[("oid", Oid), ("extname", Text), ("extowner", Oid), ("extnamespace", Oid), ("extversion", Text)],
        ),
        (
            "pg_index",
            &[
                ("indexrelid", Oid),
                ("indrelid", Oid),
                ("indnatts", I16),
                ("indisunique", Bool),
                ("indisprimary", Bool),
                ("indkey", TextArr),
            ],
        ),
        ("pg_inherits", &[("inhrelid", Oid), ("inhparent", Oid), ("inhseqno", I32), ("inhdetachpending", Bool)]),
        ("pg_matviews", &[("schemaname", Text), ("viewname", Text), ("viewowner", Text), ("definition", Text)]),
        (
            "pg_opclass",
            &[
                ("oid", Oid),
                ("opcmethod", Oid),
                ("opcname", Text),
                ("opcnamespace", Oid),
                ("opcowner", Oid),
                ("opcfamily", Oid),
                ("opcintype", Oid),
                ("opcdefault", Bool),
                ("opckeytype", Oid),
            ],
        ),
        ("pg_partitioned_table", &[("partrelid", Oid), ("partstrat", Text), ("partnatts", I16)]),
        (
            "pg_policy",
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
        ),
        (
            "pg_publication",
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
        ),
        ("pg_publication_namespace", &[("oid", Oid), ("pnpubid", Oid), ("pnnspid", Oid)]),
        (
            "pg_publication_rel",
            &[("oid", Oid), ("prpubid", Oid), ("prrelid", Oid), ("prqual", Text), ("prattrs", TextArr)],
        ),
        (
            "pg_range",
            &[
                ("rngtypid", Oid),
                ("rngsubtype", Oid),
                ("rngmultitypid", Oid),
                ("rngcollation", Oid),
                ("rngsubopc", Oid),
                ("rngcanonical", Oid),
                ("rngsubdiff", Oid),
            ],
        ),
        ("pg_rewrite", &[("oid", Oid), ("rulename", Text), ("ev_class", Oid), ("ev_type", Text), ("is_instead", Bool)]),
        (
            "pg_sequence",
            &[
                ("seqrelid", Oid),
                ("seqtypid", Oid),
                ("seqstart", I64),
                ("seqincrement", I64),
                ("seqmax", I64),
                ("seqmin", I64),
                ("seqcache", I64),
                ("seqcycle", Bool),
            ],
        ),
        (
            "pg_statistic_ext",
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
        ),
        (
            "pg_trigger",
            &[
                ("oid", Oid),
                ("tgrelid", Oid),
                ("tgname", Text),
                ("tgfoid", Oid),
                ("tgenabled", Text),
                ("tgisinternal", Bool),
            ],
        ),
    ]
};

/// Whether catalog table `name` never has rows.
pub fn is_always_empty(name: &str) -> bool {
    EMPTY.iter().any(|(n, _)| *n == name)
}

/// Always-empty table `name`, if it is one.
pub(super) fn table(name: &str) -> Option<Result<Arc<dyn TableProvider>>> {
    let (_, columns) = EMPTY.iter().find(|(n, _)| *n == name)?;
    Some(mem_table(columns, vec![]))
}

/// The names of the always-empty tables.
#[cfg(test)]
pub(super) fn names() -> impl Iterator<Item = &'static str> {
    EMPTY.iter().map(|(n, _)| *n)
}
