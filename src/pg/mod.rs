//! PostgreSQL compatibility: the `pg_catalog` schema generated from the store, the functions
//! clients call (`version()`, `format_type`, `pg_table_is_visible`, ...), the statement
//! rewrites that let DataFusion plan PostgreSQL client SQL, session settings and type OIDs.

pub mod catalog;
pub mod checked_arithmetic;
pub mod copy;
pub mod datetime;
pub mod encode;
pub mod format;
pub mod functions;
pub mod in_array;
pub mod information_schema;
pub mod minute_literals;
pub mod plan_exprs;
pub mod rewrite;
pub mod search_path;
pub mod settings;
pub mod substring_regex;
pub mod text_cast;
pub mod time_zone;
pub mod to_char;
pub mod types;
pub mod value_limits;
pub mod viewdef;

/// The PostgreSQL version journeydb presents itself as, to clients that key behaviour off it.
pub const SERVER_VERSION: &str = "16.6";
pub const SERVER_VERSION_NUM: &str = "160006";

/// `SELECT version()`: PostgreSQL's shape (clients parse it), our name after it.
pub fn version_string() -> String {
    format!(
        "PostgreSQL {SERVER_VERSION} (journeydb {}) on {}-linux, compiled by rustc, 64-bit",
        env!("CARGO_PKG_VERSION"),
        std::env::consts::ARCH
    )
}
