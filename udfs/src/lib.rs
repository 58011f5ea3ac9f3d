//! The journey SQL functions of journeydb, as DataFusion UDFs: no server code here.
//!
//! # Layout
//!
//! - `aggregate/`: aggregate functions (`window_funnel`, `retention`, `sequence_match`, ...).
//! - `window/`: window functions (`attribute`, `sessionize`, ...).
//! - `scalar/`: scalar functions (`channel_group`, ...).
//! - `table/`: report table functions (`funnel`, `attribute`, `journey_paths`, `retention`,
//!   `lifecycle`, `stickiness`) and `identity_graph`.
//! - `common/`: shared kernels (attribution rules, Markov, Shapley, funnel chains, options, rounding).
//! - [`physical`]: the operators and optimizer rules the functions bring (one-phase
//!   `window_funnel`, window functions per hash group with spilling, report execution).
//! - [`complexity`]: bounds on how deep a statement nests (54001 beyond them).
//! - [`dialect`]: the SQL dialect journeydb parses (PostgreSQL's, parsed in linear time).
//! - [`docs`]: every function's reference, kept beside its code (`\\df+`, `docs/functions.md`).
//! - [`error`]: the typed argument error every function raises for a bad argument.
//!
//! The function families land one issue at a time; [`register_all`] is the one entry point the
//! engine calls, so a new function is visible everywhere (server, `.slt` runner, benchmarks) as
//! soon as it is listed there.

pub mod aggregate;
pub mod common;
pub mod complexity;
pub mod dialect;
pub mod docs;
pub mod error;
pub mod physical;
pub mod scalar;
pub mod table;
pub mod window;

pub use error::ArgumentError;

use datafusion::catalog::TableFunctionImpl;
use datafusion::execution::FunctionRegistry;
use datafusion::logical_expr::{AggregateUDF, ScalarUDF, WindowUDF};
use std::sync::Arc;

/// The reference of every journey function ([`docs`]), in name order (then kind): what
/// `pg_proc` lists (psql's `\\df`), the reports' options and `docs/functions.md`.
pub fn catalog() -> Vec<docs::FunctionDoc> {
    vec![
        table::attribute::DOC,
        window::attribute::DOC,
        scalar::channel_group::DOC,
        table::funnel::DOC,
        table::correlation::DOC,
        scalar::ga4_param::DOC,
        table::identity_graph::DOC,
        table::journey_paths::DOC,
        table::activity::LIFECYCLE_DOC,
        aggregate::retention::DOC,
        table::retention::DOC,
        aggregate::sequence::COUNT_DOC,
        aggregate::sequence::MATCH_DOC,
        aggregate::next_node::DOC,
        window::sessionize::DOC,
        table::activity::STICKINESS_DOC,
        scalar::url_host::DOC,
        aggregate::window_funnel::DOC,
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
    vec![
        Arc::new(AggregateUDF::from(aggregate::window_funnel::WindowFunnel::new())),
        Arc::new(AggregateUDF::from(aggregate::retention::Retention::new())),
        Arc::new(AggregateUDF::from(aggregate::sequence::Sequence::matching())),
        Arc::new(AggregateUDF::from(aggregate::sequence::Sequence::counting())),
        Arc::new(AggregateUDF::from(aggregate::next_node::NextNode::new())),
    ]
}

/// The physical optimizer rules the journey functions want (added after DataFusion's own).
pub fn physical_optimizer_rules() -> Vec<Arc<dyn datafusion::physical_optimizer::PhysicalOptimizerRule + Send + Sync>> {
    vec![Arc::new(physical::single_phase::SinglePhaseFunnel), Arc::new(physical::hash_window::HashWindow)]
}

/// Every journey scalar function.
pub fn scalar_functions() -> Vec<Arc<ScalarUDF>> {
    vec![
        Arc::new(ScalarUDF::from(scalar::channel_group::ChannelGroup::new())),
        Arc::new(ScalarUDF::from(scalar::ga4_param::Ga4Param::new())),
        Arc::new(ScalarUDF::from(scalar::url_host::UrlHost::new())),
    ]
}

/// Every report table function, by name; `default_source` is the journey model's events relation
/// the reports read when no `source` is given. Table functions are not part of DataFusion's
/// function registry: the engine registers them with its `SessionContext`.
pub fn table_functions(default_source: &str) -> Vec<(&'static str, Arc<dyn TableFunctionImpl>)> {
    vec![
        (table::journey_paths::NAME, Arc::new(table::journey_paths::JourneyPaths::new(default_source))),
        (table::funnel::NAME, Arc::new(table::funnel::Funnel::new(default_source))),
        (table::correlation::NAME, Arc::new(table::correlation::FunnelCorrelation::new(default_source))),
        (table::identity_graph::NAME, Arc::new(table::identity_graph::IdentityGraph)),
        (table::attribute::NAME, Arc::new(table::attribute::AttributeReport::new(default_source))),
        (table::retention::NAME, Arc::new(table::retention::RetentionReport::new(default_source))),
        (table::activity::LIFECYCLE, Arc::new(table::activity::ActivityReport::lifecycle(default_source))),
        (table::activity::STICKINESS, Arc::new(table::activity::ActivityReport::stickiness(default_source))),
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
        // (name, pg_proc kind). Functions called in SELECT (scalar, aggregate, window) share
        // one namespace and FROM's (scalar, report) another; a report may share a name with an
        // aggregate or window function (`retention`, `attribute`), as PostgreSQL overloads do:
        // where it is called tells them apart.
        let mut names: Vec<(String, &str)> = window_functions().iter().map(|f| (f.name().to_string(), "w")).collect();
        names.extend(scalar_functions().iter().map(|f| (f.name().to_string(), "f")));
        names.extend(aggregate_functions().iter().map(|f| (f.name().to_string(), "a")));
        let in_select = names.clone();
        let mut in_from: Vec<String> = scalar_functions().iter().map(|f| f.name().to_string()).collect();
        for (name, _) in table_functions("t") {
            assert!(ctx.table_function(name).is_err(), "{name} shadows a DataFusion table function");
            names.push((name.to_string(), "f"));
            in_from.push(name.to_string());
        }
        for (name, _) in &names {
            assert!(state.window_functions().get(name).is_none(), "{name} shadows a DataFusion window function");
            assert!(state.scalar_functions().get(name).is_none(), "{name} shadows a scalar function");
            assert!(state.aggregate_functions().get(name).is_none(), "{name} shadows an aggregate function");
        }
        for (namespace, all) in
            [("SELECT", in_select.into_iter().map(|(n, _)| n).collect::<Vec<_>>()), ("FROM", in_from)]
        {
            let mut distinct = all.clone();
            distinct.sort();
            distinct.dedup();
            assert_eq!(distinct.len(), all.len(), "duplicate journey function names in {namespace}: {all:?}");
        }
        let before = names.len();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), before, "duplicate journey function names");
        // Every registered function has its catalog entry, and no entry is stale.
        let listed: Vec<(String, &str)> = catalog().iter().map(|e| (e.name.to_string(), e.kind.prokind())).collect();
        assert_eq!(listed, names, "catalog() must list exactly the registered functions, in name order");
    }
}
