//! The journey SQL functions of journeydb, as DataFusion UDFs: no server code here.
//!
//! # Layout
//!
//! - `aggregate/`: aggregate functions (`window_funnel`, ...).
//! - `window/`: window functions (`attribute`, `sessionize`, ...).
//! - `scalar/`: scalar functions (`channel_group`, ...).
//! - `table/`: report table functions (`funnel`, `attribute`, `journey_paths`).
//! - `common/`: shared kernels.
//! - [`complexity`]: bounds on how deep a statement nests (54001 beyond them).
//! - [`dialect`]: the SQL dialect journeydb parses (PostgreSQL's, parsed in linear time).
//! - [`error`]: the typed argument error every function raises for a bad argument.
//!
//! The function families land one issue at a time; [`register_all`] is the one entry point the
//! engine calls, so a new function is visible everywhere (server, `.slt` runner, benchmarks) as
//! soon as it is listed there.

pub mod aggregate;
pub mod common;
pub mod complexity;
pub mod dialect;
pub mod error;
pub mod scalar;
pub mod table;
pub mod window;

pub use error::ArgumentError;

use datafusion::catalog::TableFunctionImpl;
use datafusion::execution::FunctionRegistry;
use datafusion::logical_expr::{AggregateUDF, ScalarUDF, WindowUDF};
use std::sync::Arc;

/// How a journey function appears in `pg_catalog.pg_proc` (and so in psql's `\\df`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CatalogEntry {
    pub name: &'static str,
    /// `f` function, `a` aggregate, `w` window, as `pg_proc.prokind`.
    pub kind: &'static str,
    /// `pg_get_function_result`.
    pub result: &'static str,
    /// `pg_get_function_arguments`.
    pub arguments: &'static str,
}

/// The catalog entries of every journey function, in name order (then kind).
pub fn catalog() -> Vec<CatalogEntry> {
    vec![
        CatalogEntry {
            name: table::attribute::NAME,
            kind: "f",
            result: "TABLE(model text, channel text, conversions numeric, revenue numeric, share double precision, removal_effect double precision)",
            arguments: "VARIADIC models text[], source text DEFAULT 'journey.events', person text DEFAULT 'person_id', time text DEFAULT 'event_time', event text DEFAULT 'event_name', by text DEFAULT 'channel', touch text DEFAULT 'is_touch', conversion text[] DEFAULT NULL, value text DEFAULT 'revenue', lookback interval DEFAULT '90 days'::interval, lookback_steps integer DEFAULT 0, since_previous_conversion boolean DEFAULT true, transforms text[] DEFAULT NULL, half_life interval DEFAULT '7 days'::interval, weights double precision[] DEFAULT NULL, \"order\" integer DEFAULT 1, direct text DEFAULT 'channel = ''Direct''', milestone text DEFAULT 'milestone'",
        },
        CatalogEntry {
            name: window::attribute::NAME,
            kind: "w",
            result: "double precision",
            arguments: "model text, VARIADIC arguments \"any\"",
        },
        CatalogEntry {
            name: scalar::channel_group::NAME,
            kind: "f",
            result: "text",
            arguments: "source text, medium text, campaign text DEFAULT NULL, referrer text DEFAULT NULL",
        },
        CatalogEntry {
            name: table::funnel::NAME,
            kind: "f",
            result: "TABLE(step integer, step_name text, users bigint, conversion_from_previous double precision, conversion_from_start double precision, drop_off bigint, drop_off_rate double precision, avg_seconds double precision, median_seconds double precision, p90_seconds double precision)",
            arguments: "VARIADIC steps text[], source text DEFAULT 'journey.events', person text DEFAULT 'person_id', time text DEFAULT 'event_time', event text DEFAULT 'event_name', \"window\" interval DEFAULT '14 days'::interval, \"order\" text DEFAULT 'ordered', optional integer[] DEFAULT NULL, exclude text[] DEFAULT NULL, by text DEFAULT NULL, attribution text DEFAULT 'first_touch', top integer DEFAULT 25, count text DEFAULT 'users', session text DEFAULT 'session'",
        },
        CatalogEntry {
            name: table::journey_paths::NAME,
            kind: "f",
            result: "TABLE(depth integer, source text, target text, users bigint, paths bigint, avg_seconds double precision, source_node text, target_node text)",
            arguments: "source text DEFAULT 'journey.events', person text DEFAULT 'person_id', time text DEFAULT 'event_time', node text DEFAULT 'event_name', start text DEFAULT NULL, \"end\" text DEFAULT NULL, max_steps integer DEFAULT 5, top integer DEFAULT 10, collapse_repeats boolean DEFAULT true, session_gap interval DEFAULT NULL, exclude text[] DEFAULT NULL, clean text[] DEFAULT NULL, output text DEFAULT 'edges'",
        },
        CatalogEntry {
            name: window::sessionize::NAME,
            kind: "w",
            result: "bigint",
            arguments: "ts timestamp with time zone, gap interval DEFAULT '00:30:00'::interval, split_key anyelement DEFAULT NULL",
        },
        CatalogEntry {
            name: aggregate::window_funnel::NAME,
            kind: "a",
            result: "integer",
            arguments: "\"window\" interval, ts timestamp with time zone, VARIADIC conditions_and_modes \"any\"",
        },
    ]
}

/// Every journey window function.
pub fn window_functions() -> Vec<Arc<WindowUDF>> {
    vec![
        Arc::new(WindowUDF::from(window::attribute::Attribute::new())),
        Arc::new(WindowUDF::from(window::sessionize::Sessionize::new())),
    ]
}

/// Every journey aggregate function.
pub fn aggregate_functions() -> Vec<Arc<AggregateUDF>> {
    vec![Arc::new(AggregateUDF::from(aggregate::window_funnel::WindowFunnel::new()))]
}

/// The physical optimizer rules the journey functions want (added after DataFusion's own).
pub fn physical_optimizer_rules() -> Vec<Arc<dyn datafusion::physical_optimizer::PhysicalOptimizerRule + Send + Sync>> {
    vec![Arc::new(aggregate::single_phase::SinglePhaseFunnel), Arc::new(window::hash_window::HashWindow)]
}

/// Every journey scalar function.
pub fn scalar_functions() -> Vec<Arc<ScalarUDF>> {
    vec![Arc::new(ScalarUDF::from(scalar::channel_group::ChannelGroup::new()))]
}

/// Every report table function, by name; `default_source` is the journey model's events relation
/// the reports read when no `source` is given. Table functions are not part of DataFusion's
/// function registry: the engine registers them with its `SessionContext`.
pub fn table_functions(default_source: &str) -> Vec<(&'static str, Arc<dyn TableFunctionImpl>)> {
    vec![
        (table::journey_paths::NAME, Arc::new(table::journey_paths::JourneyPaths::new(default_source))),
        (table::funnel::NAME, Arc::new(table::funnel::Funnel::new(default_source))),
        (table::attribute::NAME, Arc::new(table::attribute::AttributeReport::new(default_source))),
    ]
}

/// Registers every journey function with a DataFusion function registry.
///
/// Returns the number of functions registered.
pub fn register_all(registry: &mut dyn FunctionRegistry) -> datafusion::error::Result<usize> {
    let (scalar, window, aggregate) = (scalar_functions(), window_functions(), aggregate_functions());
    let n = scalar.len() + window.len() + aggregate.len();
    for f in aggregate {
        registry.register_udaf(f)?;
    }
    for f in scalar {
        registry.register_udf(f)?;
    }
    for f in window {
        registry.register_udwf(f)?;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::prelude::SessionContext;

    #[test]
    fn names_do_not_collide_with_each_other_or_builtins() {
        let ctx = SessionContext::new();
        let state = ctx.state();
        // (name, pg_proc kind): a report and a window function may share a name (`attribute`),
        // as PostgreSQL overloads do; they are told apart by where they are called.
        let mut names: Vec<(String, &str)> = window_functions().iter().map(|f| (f.name().to_string(), "w")).collect();
        names.extend(scalar_functions().iter().map(|f| (f.name().to_string(), "f")));
        names.extend(aggregate_functions().iter().map(|f| (f.name().to_string(), "a")));
        for (name, _) in table_functions("t") {
            assert!(ctx.table_function(name).is_err(), "{name} shadows a DataFusion table function");
            names.push((name.to_string(), "f"));
        }
        for (name, _) in &names {
            assert!(state.window_functions().get(name).is_none(), "{name} shadows a DataFusion window function");
            assert!(state.scalar_functions().get(name).is_none(), "{name} shadows a scalar function");
            assert!(state.aggregate_functions().get(name).is_none(), "{name} shadows an aggregate function");
        }
        let scalar_or_table: Vec<&String> = names.iter().filter(|(_, k)| *k != "w").map(|(n, _)| n).collect();
        let mut distinct = scalar_or_table.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), scalar_or_table.len(), "duplicate journey function names");
        let before = names.len();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), before, "duplicate journey function names");
        // Every registered function has its catalog entry, and no entry is stale.
        let listed: Vec<(String, &str)> = catalog().iter().map(|e| (e.name.to_string(), e.kind)).collect();
        assert_eq!(listed, names, "catalog() must list exactly the registered functions, in name order");
    }
}
