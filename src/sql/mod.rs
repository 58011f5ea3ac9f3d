//! The one front door for SQL text: every statement a session runs, every view a user stored,
//! the journey model's views and every report's `source => '...'` are parsed and planned
//! here, the same way, so that one SELECT answers the same wherever it is written (issue 17).
//!
//! Text becomes statements in [`Planner::parse`]: PostgreSQL's dialect, the fixes for what the
//! parser does not know (dollar quotes, `ALTER VIEW ... RENAME`), then the AST rewrites of
//! [`crate::pg::rewrite`]. A statement becomes a plan in [`Planner::plan`]: the rewrites that
//! need the session to plan parts of the statement (`multiset`: INTERSECT and EXCEPT ALL;
//! `where_in`: `[NOT] IN (subquery)` in WHERE), DataFusion's SQL planner, then the plan passes
//! (`correlated`: correlated scalar subqueries DataFusion cannot decorrelate; minute literals,
//! the session's time zone, PostgreSQL's text casts). The session's time zone is read from the
//! state the plan is made in.

use crate::error::{Error, Result, SqlState};
use crate::pg::rewrite;
use crate::store::Store;
use datafusion::arrow::array::{RecordBatch, RecordBatchOptions};
use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::execution::SendableRecordBatchStream;
use datafusion::execution::context::SessionState;
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::sql::parser::Statement as DFStatement;
use datafusion::sql::sqlparser::ast::{Query, Statement};
use futures::StreamExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

mod correlated;
mod multiset;
pub mod prepared;
mod where_in;

pub use prepared::Prepared;

/// Parses and plans SQL for one data directory (the rewrites ask the store which names are
/// its tables).
#[derive(Debug)]
pub struct Planner {
    store: Arc<Store>,
    /// Plans made so far ([`Planner::plans_made`]).
    plans: AtomicU64,
}

/// What a plan is for: the rows a client receives (their timestamps shown in the session's
/// time zone), or rows another plan reads (a view, a report's source).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Use {
    Result,
    Input,
}

impl Planner {
    pub fn new(store: Arc<Store>) -> Planner {
        Planner { store, plans: AtomicU64::new(0) }
    }

    /// Parses SQL text into statements (PostgreSQL dialect), rewritten for DataFusion (see
    /// [`rewrite`]). Needs no session: the extended protocol parses before it runs.
    pub fn parse(&self, sql: &str) -> Result<Vec<Statement>> {
        let mut statements = match journeydb_udfs::dialect::parse_sql(sql) {
            Ok(s) => s,
            // What the parser does not know in PostgreSQL's syntax, said another way: `ALTER
            // VIEW ... RENAME TO` as ALTER TABLE, dollar quotes (COMMENT ON) as plain literals.
            Err(e) => {
                let dollars = rewrite::dollar_quotes_to_literals(sql);
                let text = dollars.as_deref().unwrap_or(sql);
                let renamed = rewrite::alter_view_rename(text);
                let retry = renamed.or(dollars);
                retry
                    .and_then(|s| journeydb_udfs::dialect::parse_sql(&s).ok())
                    .ok_or_else(|| Error::DataFusion(datafusion::error::DataFusionError::SQL(Box::new(e), None)))?
            }
        };
        // Asked only for unqualified `pg_*` names, so parsing lists no table's files otherwise.
        let is_store_table = |name: &str| self.store.has_table(name);
        for s in &mut statements {
            rewrite::rewrite(s, &is_store_table);
        }
        Ok(statements)
    }

    /// Plans `stmt` in `state`, in the time zone the state's configuration holds.
    pub async fn plan(&self, state: &SessionState, stmt: &Statement, used: Use) -> Result<LogicalPlan> {
        self.plans.fetch_add(1, Ordering::Relaxed);
        let zone = state.config_options().execution.time_zone.clone().unwrap_or_else(|| "UTC".into());
        let mut stmt = stmt.clone();
        multiset::rewrite(state, &mut stmt).await;
        where_in::rewrite(state, &mut stmt).await;
        let plan = state.statement_to_plan(DFStatement::Statement(Box::new(stmt))).await?;
        let plan = correlated::decorrelate(plan)?;
        let plan = crate::pg::minute_literals::complete_timestamp_texts(plan, &zone)?;
        let timezone = state.scalar_functions().get("timezone").cloned();
        let plan = crate::pg::time_zone::in_session_zone(plan, &zone, used == Use::Result, timezone)?;
        Ok(match state.scalar_functions().get(crate::pg::text_cast::NAME) {
            Some(udf) => crate::pg::text_cast::postgres_text_casts(plan, udf)?,
            None => plan,
        })
    }

    /// How many statements, views and report sources this planner has planned: a prepared
    /// statement is planned once, however often it runs ([`prepared`]).
    pub fn plans_made(&self) -> u64 {
        self.plans.load(Ordering::Relaxed)
    }

    /// The one query `sql` (a view's body, a report's source) planned as an input.
    pub async fn plan_query(&self, state: &SessionState, sql: &str) -> Result<LogicalPlan> {
        let mut statements = self.parse(sql)?;
        match (statements.pop(), statements.is_empty()) {
            (Some(query @ Statement::Query(_)), true) => self.plan(state, &query, Use::Input).await,
            (None, _) => Err(Error::sql(SqlState::SyntaxError, "a query was expected, and the text is empty")),
            _ => Err(Error::sql(SqlState::SyntaxError, format!("one query was expected, not: {sql}"))),
        }
    }
}

/// `query` planned by DataFusion alone, without the rewrites or passes: how the statement
/// rewrites that need a plan learn a part's columns, or that it reads an enclosing query's.
async fn plan_on_its_own(state: &SessionState, query: Query) -> datafusion::error::Result<LogicalPlan> {
    state.statement_to_plan(DFStatement::Statement(Box::new(Statement::Query(Box::new(query))))).await
}

/// A result's columns as clients see them: where the rewrites made names distinct for
/// DataFusion (`SELECT count(a), count(b)`), they are shown as PostgreSQL names them (both
/// `count`). Results leave the session named so ([`shown_rows`]); nothing downstream strips.
pub fn shown_schema(schema: &Schema) -> SchemaRef {
    let fields: Vec<_> = schema
        .fields()
        .iter()
        .map(|f| match rewrite::shown_name(f.name()) {
            shown if shown == f.name() => f.clone(),
            shown => Arc::new(f.as_ref().clone().with_name(shown)),
        })
        .collect();
    Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}

/// `rows` with their columns named as clients see them ([`shown_schema`]).
pub fn shown_rows(rows: SendableRecordBatchStream) -> SendableRecordBatchStream {
    let schema = shown_schema(&rows.schema());
    if schema == rows.schema() {
        return rows;
    }
    let named = schema.clone();
    let batches = rows.map(move |batch| {
        let batch = batch?;
        let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
        Ok(RecordBatch::try_new_with_options(named.clone(), batch.columns().to_vec(), &options)?)
    });
    Box::pin(RecordBatchStreamAdapter::new(schema, batches))
}

/// Report sources are planned by the same planner ([`journeydb_udfs::common::source_planner`]).
#[async_trait::async_trait]
impl journeydb_udfs::common::source_planner::SourcePlanner for Planner {
    async fn plan(&self, state: &SessionState, sql: &str) -> datafusion::error::Result<LogicalPlan> {
        self.plan_query(state, sql).await.map_err(into_datafusion)
    }
}

/// An engine error carried through DataFusion (its SQLSTATE survives: see
/// [`crate::error::datafusion_to_pg`]).
pub fn into_datafusion(e: Error) -> datafusion::error::DataFusionError {
    match e {
        Error::DataFusion(e) => e,
        other => datafusion::error::DataFusionError::External(Box::new(other)),
    }
}
