//! Prepared statements keep their plan: the extended protocol's Describe plans a statement
//! once, and each Execute runs that plan with its bound parameters, for as long as nothing the
//! plan was made from has changed (issue 17).
//!
//! A plan is made from the session's settings (time zone, search path), its temporary tables,
//! the store's layout (schemas, tables, views) and each table's files. A [`Stamp`] records the
//! first three; each table the plan scans is checked against the store's current files before
//! the plan is reused ([`Store::is_current`]). A plan reading something that cannot be checked
//! so (the catalog's tables, a report's source) is reused only once, by the Execute that
//! follows its Describe: the Bind, Describe, Execute of one exchange plan once.

use crate::pg::settings::Settings;
use crate::store::{Store, StoreTable, TempTables};
use datafusion::catalog::TableProvider;
use datafusion::catalog::view::ViewTable;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::datasource::{DefaultTableSource, MemTable};
use datafusion::logical_expr::{LogicalPlan, TableSource};
use datafusion::sql::sqlparser::ast::Statement;
use std::sync::{Arc, Mutex};

/// A statement of the extended protocol, with the plan its last Describe or Execute made.
#[derive(Debug)]
pub struct Prepared {
    pub statement: Statement,
    plan: Mutex<Option<Cached>>,
}

#[derive(Debug)]
struct Cached {
    stamp: Stamp,
    plan: LogicalPlan,
    /// Whether every relation the plan reads can be checked for changes (else: used once).
    checkable: bool,
}

/// What a plan was made from, besides its tables' files.
#[derive(Debug, Clone, PartialEq)]
pub struct Stamp {
    pub settings: Settings,
    pub store: u64,
    /// The session's temporary tables, by name and identity.
    pub temporary: Vec<(String, usize)>,
}

impl Stamp {
    pub fn new(settings: Settings, store: &Store, temporary: &TempTables) -> Stamp {
        let tables = temporary.lock().unwrap_or_else(|p| p.into_inner());
        let mut temporary: Vec<(String, usize)> =
            tables.iter().map(|(name, t)| (name.clone(), Arc::as_ptr(t) as *const () as usize)).collect();
        temporary.sort();
        Stamp { settings, store: store.generation(), temporary }
    }
}

impl Prepared {
    pub fn new(statement: Statement) -> Prepared {
        Prepared { statement, plan: Mutex::new(None) }
    }

    /// The kept plan, if it was made under `stamp` from tables whose files are unchanged.
    /// A plan that can be used once only is taken out.
    pub fn plan(&self, stamp: &Stamp, store: &Store) -> Option<LogicalPlan> {
        let mut kept = self.plan.lock().unwrap_or_else(|p| p.into_inner());
        let cached = kept.take()?;
        if cached.stamp != *stamp || (cached.checkable && !tables_are_current(&cached.plan, store)) {
            return None;
        }
        let plan = cached.plan.clone();
        if cached.checkable {
            *kept = Some(cached);
        }
        Some(plan)
    }

    /// Keeps `plan`, made under `stamp` by a Describe (`described`) or an Execute. A plan that
    /// cannot be checked for changes is kept only from a Describe, for the Execute after it.
    pub fn keep(&self, stamp: Stamp, plan: &LogicalPlan, described: bool) {
        let checkable = is_checkable(plan);
        let cached = (checkable || described).then(|| Cached { stamp, plan: plan.clone(), checkable });
        *self.plan.lock().unwrap_or_else(|p| p.into_inner()) = cached;
    }
}

/// Every relation `plan` reads, views expanded: tables of the store, temporary tables (their
/// identity is in the [`Stamp`]) and views over them.
fn is_checkable(plan: &LogicalPlan) -> bool {
    let mut checkable = true;
    visit_sources(plan, &mut |source| {
        let known = provider(source).is_some_and(|p| p.is::<StoreTable>() || p.is::<MemTable>() || p.is::<ViewTable>());
        checkable &= known;
        checkable
    });
    checkable
}

fn tables_are_current(plan: &LogicalPlan, store: &Store) -> bool {
    let mut current = true;
    visit_sources(plan, &mut |source| {
        if let Some(table) = provider(source).and_then(|p| p.downcast_ref::<StoreTable>()) {
            current &= store.is_current(table);
        }
        current
    });
    current
}

fn provider(source: &Arc<dyn TableSource>) -> Option<&Arc<dyn TableProvider>> {
    source.downcast_ref::<DefaultTableSource>().map(|s| &s.table_provider)
}

/// Calls `f` with every table source `plan` reads (subqueries and views' plans included, and
/// the target of a write) until it returns false.
fn visit_sources(plan: &LogicalPlan, f: &mut dyn FnMut(&Arc<dyn TableSource>) -> bool) {
    let _ = plan.apply_with_subqueries(|node| {
        let source = match node {
            LogicalPlan::TableScan(scan) => Some(&scan.source),
            LogicalPlan::Dml(dml) => Some(&dml.target),
            _ => None,
        };
        let Some(source) = source else { return Ok(TreeNodeRecursion::Continue) };
        if !f(source) {
            return Ok(TreeNodeRecursion::Stop);
        }
        if let Some(view) = provider(source).and_then(|p| p.downcast_ref::<ViewTable>()) {
            let mut more = true;
            visit_sources(view.logical_plan(), &mut |s| {
                more = f(s);
                more
            });
            if !more {
                return Ok(TreeNodeRecursion::Stop);
            }
        }
        Ok(TreeNodeRecursion::Continue)
    });
}
