//! `pg_settings`: the session's settings, each with its default and where its value came from.
use super::PgCatalog;
use super::columns::{C, mem_table, null, text};
use datafusion::catalog::TableProvider;
use datafusion::error::Result;
use std::sync::Arc;

impl PgCatalog {
    /// `pg_settings`.
    pub(super) fn setting_table(&self, name: &str) -> Option<Result<Arc<dyn TableProvider>>> {
        use C::*;
        let table = match name {
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
                            text(match *name {
                                "statement_timeout" | "extra_float_digits" => "integer",
                                "journeydb.cluster" => "bool",
                                _ => "string",
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
            _ => return None,
        };
        Some(table)
    }
}
