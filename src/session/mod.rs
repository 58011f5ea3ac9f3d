//! The ONE place that builds a DataFusion `SessionContext` (store + journey functions +
//! PostgreSQL compatibility). SQL text is parsed and planned by [`crate::sql::Planner`], which
//! the engine holds and installs for report sources; statements, stored views and the journey
//! model's views all go through it. The server, the `.slt` runner and the benchmarks all go
//! through [`Engine`] and [`Session`].

use crate::config::Config;
use crate::error::{Error, Result, SqlState};
use crate::exec::{Executor, Local};
use crate::journey::{JOURNEY_SCHEMA, JourneySchema, ModelHost};
use crate::pg::catalog::{PG_CATALOG, PgCatalog, SessionInfo};
use crate::pg::functions;
use crate::pg::information_schema::{INFORMATION_SCHEMA, InformationSchema};
use crate::pg::settings::{self, SharedSettings};
use crate::sql::prepared::Stamp;
use crate::sql::{Planner, Prepared, Use};
use crate::store::catalog::SEARCH_PATH_SCHEMA;
use crate::store::{STORE_SCHEMA, Store, StoreCatalog, TempTables, ViewPlanner};
use datafusion::arrow::array::{ArrayRef, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::{SchemaProvider, TableProvider, view::ViewTable};
use datafusion::common::{ParamValues, ScalarValue};
use datafusion::execution::SendableRecordBatchStream;
use datafusion::execution::SessionStateBuilder;
use datafusion::execution::cache::cache_manager::CacheManagerConfig;
use datafusion::execution::memory_pool::{GreedyMemoryPool, TrackConsumersPool};
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::memory::MemoryStream;
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion::sql::sqlparser::ast::{CloseCursor, Expr, ObjectName, Reset, Set, Statement, Value};
use std::sync::Arc;

mod write;

pub use write::{CopyIn, CopyOut};

/// How deep views may read other views (a view reading itself after a rename stops here).
const MAX_VIEW_DEPTH: usize = 32;
/// How many plan nodes a stored view may stand for with every view it reads expanded (a view
/// read twice counts twice): views that read each other twice at every level grew as 2^depth
/// and every pass over the plan with them (issue 25).
const MAX_VIEW_PLAN_NODES: u64 = 100_000;

/// The catalog (database) name DataFusion sees; clients see their own database name.
pub const CATALOG: &str = "journeydb";

/// What every session shares: configuration, the store and the runtime (memory, disk, caches).
#[derive(Debug)]
pub struct Engine {
    config: Config,
    store: Arc<Store>,
    runtime: Arc<RuntimeEnv>,
    planner: Arc<Planner>,
    executor: Arc<dyn Executor>,
    /// The cluster plans' distributed parts go to (`[cluster] scheduler`).
    cluster: Option<Arc<crate::cluster::distribute::Target>>,
}

impl Engine {
    pub fn new(config: Config) -> Result<Arc<Engine>> {
        let store = Store::open_location(&config.location()?, &config.store)?;
        // One engine serves a data directory: what interrupted writes left is garbage now.
        store.collect_garbage();
        store.set_version_grace(std::time::Duration::from_secs(config.version_grace_seconds));
        // On a local disk files are listed on every scan: a table picks up added files at once.
        // On object storage a plain folder's listing is kept as long as the store trusts its
        // lookups ([store] refresh_seconds), so a scan does not list it again.
        let caches = match store.refresh() {
            Some(ttl) => {
                CacheManagerConfig::default().with_list_files_cache_limit(16 << 20).with_list_files_cache_ttl(Some(ttl))
            }
            None => CacheManagerConfig::default().with_list_files_cache_limit(0),
        };
        // One pool for every running query: operators that can spill (sorts, aggregations,
        // joins) spill to disk beyond their fair share; the others fail with 53200.
        let pool = TrackConsumersPool::new(
            GreedyMemoryPool::new(config.memory_limit_bytes()?),
            std::num::NonZeroUsize::new(3).unwrap_or(std::num::NonZeroUsize::MIN),
        );
        let mut runtime = RuntimeEnvBuilder::new().with_cache_manager(caches).with_memory_pool(Arc::new(pool));
        if let Some(dir) = &config.spill_dir {
            runtime = runtime.with_temp_file_path(dir);
        }
        let runtime = runtime.build_arc()?;
        // Scans of object storage find the store's client under its bucket's URL.
        if !store.location().is_local() {
            runtime.register_object_store(store.objects().base_url(), store.objects().store().clone());
        }
        let planner = Arc::new(Planner::new(store.clone()));
        let cluster = match &config.cluster.scheduler {
            Some(s) => Some(crate::cluster::distribute::Target::new(&config.cluster, s.clone())?),
            None => None,
        };
        Ok(Arc::new(Engine { config, store, runtime, planner, executor: Arc::new(Local), cluster }))
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// Parses SQL text into statements ([`Planner::parse`]).
    pub fn parse(&self, sql: &str) -> Result<Vec<Statement>> {
        self.planner.parse(sql)
    }

    /// The one planner of SQL text ([`crate::sql`]).
    pub fn planner(&self) -> &Arc<Planner> {
        &self.planner
    }

    /// What runs the plans of every session's statements ([`crate::exec`]).
    pub fn executor(&self) -> &Arc<dyn Executor> {
        &self.executor
    }

    /// A new session: its own DataFusion context, settings, catalog view and temporary tables.
    pub fn session(self: &Arc<Self>, user: &str, database: &str) -> Result<Session> {
        let info = SessionInfo { user: user.to_string(), database: database.to_string() };
        let journey: Arc<dyn SchemaProvider> = Arc::new(JourneySchema::new(self.clone()));
        let views: Arc<dyn ViewPlanner> = Arc::new(Views { engine: self.clone(), depth: 0 });
        let settings = SharedSettings::default();
        let pg: Arc<dyn SchemaProvider> = Arc::new(PgCatalog::new(
            self.store.clone(),
            info.clone(),
            journey.clone(),
            Some(views.clone()),
            settings.clone(),
        ));
        let temporary = TempTables::default();
        let information = Arc::new(InformationSchema::new(user));
        let path = crate::pg::search_path::of_session(self.store.clone(), settings.clone(), &info);
        let catalog = StoreCatalog::new(
            self.store.clone(),
            vec![
                (PG_CATALOG.to_string(), pg),
                (INFORMATION_SCHEMA.to_string(), information.clone() as Arc<dyn SchemaProvider>),
                (JOURNEY_SCHEMA.to_string(), journey),
            ],
            Some(views),
            Some(temporary.clone()),
        )
        .with_search_path(path.clone());
        let ctx = self.context(catalog, SEARCH_PATH_SCHEMA)?;
        information.attach(ctx.state().catalog_list());
        // The first session tells the cluster which functions are bound to a session.
        let learn = self.cluster.as_ref().filter(|t| !t.knows_session_functions());
        let before = learn.map(|_| ctx.state().scalar_functions().clone());
        functions::register(&ctx, self.store.clone(), &info, settings.clone());
        crate::pg::datetime::register(&ctx);
        crate::pg::in_array::register(&ctx);
        crate::pg::text_cast::register(&ctx);
        crate::pg::viewdef::register(&ctx, self.clone(), path.clone());
        if let (Some(target), Some(before)) = (learn, before) {
            // The functions bound to a session (its user, settings, catalog) never travel.
            let state = ctx.state();
            let bound =
                state.scalar_functions().iter().filter(|(n, f)| before.get(*n).is_none_or(|b| !Arc::ptr_eq(b, f)));
            target.session_functions(bound.map(|(n, _)| n.clone()));
        }
        crate::pg::substring_regex::register(&ctx);
        crate::pg::to_char::register(&ctx);
        Ok(Session {
            engine: self.clone(),
            ctx,
            settings,
            info,
            temporary,
            temporary_memory: Default::default(),
            params: vec![],
            insert_planned: None,
            path,
        })
    }

    /// A context over `catalog`, with the journey functions; unqualified names are looked up in
    /// `default_schema`.
    fn context(&self, catalog: StoreCatalog, default_schema: &str) -> Result<SessionContext> {
        let mut config = SessionConfig::new()
            .with_default_catalog_and_schema(CATALOG, default_schema)
            .with_create_default_catalog_and_schema(false)
            // Ours (PostgreSQL's type names, views apart from tables) is in the catalog instead.
            .with_information_schema(false)
            .with_batch_size(self.config.batch_size);
        if self.config.target_partitions > 0 {
            config = config.with_target_partitions(self.config.target_partitions);
        }
        if self.cluster.is_some() && self.config.cluster.partitions > 0 {
            // A stage has as many tasks as the plan has partitions.
            config = config.with_target_partitions(self.config.cluster.partitions);
        }
        let options = config.options_mut();
        options.sql_parser.dialect = datafusion::config::Dialect::PostgreSQL;
        options.execution.time_zone = Some("UTC".into());
        // Report sources are planned as statements are.
        let config =
            journeydb_udfs::common::source_planner::install(config, self.planner.clone()).with_option_extension(
                crate::cluster::distribute::ClusterOptions { configured: self.cluster.is_some(), ..Default::default() },
            );
        let ctx = SessionContext::new_with_config_rt(config, self.runtime.clone());
        ctx.register_catalog(CATALOG, Arc::new(catalog));
        let mut builder = SessionStateBuilder::new_from_existing(ctx.state());
        for rule in journeydb_udfs::physical_optimizer_rules() {
            builder = builder.with_physical_optimizer_rule(rule);
        }
        // Last, on a plan otherwise complete: what of it runs on the cluster.
        if let Some(target) = &self.cluster {
            builder = builder.with_physical_optimizer_rule(Arc::new(crate::cluster::distribute::Distribute {
                target: target.clone(),
            }));
        }
        let mut state = builder.build();
        journeydb_udfs::register_all(&mut state)?;
        let ctx = SessionContext::new_with_state(state);
        crate::pg::value_limits::register(&ctx);
        crate::pg::checked_arithmetic::register(&ctx);
        for (name, f) in journeydb_udfs::table_functions(&format!("{JOURNEY_SCHEMA}.events")) {
            ctx.register_udtf(name, f);
        }
        Ok(ctx)
    }
}

impl ModelHost for Engine {
    fn store(&self) -> &Arc<Store> {
        &self.store
    }

    fn journey(&self) -> &crate::config::JourneyConfig {
        &self.config.journey
    }

    /// The store's `public` tables and the journey functions, nothing per session.
    fn model_context(&self) -> datafusion::error::Result<SessionContext> {
        self.context(StoreCatalog::new(self.store.clone(), vec![], None, None), STORE_SCHEMA)
            .map_err(crate::sql::into_datafusion)
    }
}

/// Plans the views users create (stored as SQL) when a query reads them: in a context that
/// sees every schema of the store and the journey model, as the view's creator did.
#[derive(Debug)]
struct Views {
    engine: Arc<Engine>,
    depth: usize,
}

/// The nodes of `plan` and of its subqueries, every shared subtree counted as often as it is
/// read; each shared node is counted once (`seen`), so this takes time in the plan's size in
/// memory, not in its expanded size.
fn expanded_nodes(plan: &LogicalPlan, seen: &mut std::collections::HashMap<*const LogicalPlan, u64>) -> u64 {
    if let Some(n) = seen.get(&(plan as *const LogicalPlan)) {
        return *n;
    }
    let mut n: u64 = 1;
    for input in plan.inputs() {
        n = n.saturating_add(expanded_nodes(input, seen));
    }
    let _ = plan.apply_subqueries(|sub| {
        n = n.saturating_add(expanded_nodes(sub, seen));
        Ok(datafusion::common::tree_node::TreeNodeRecursion::Continue)
    });
    seen.insert(plan as *const LogicalPlan, n);
    n
}

/// 54001 when view `schema.name`, planned as `plan`, expands beyond [`MAX_VIEW_PLAN_NODES`].
fn check_view_size(schema: &str, name: &str, plan: &LogicalPlan) -> datafusion::error::Result<()> {
    if expanded_nodes(plan, &mut Default::default()) > MAX_VIEW_PLAN_NODES {
        return Err(datafusion::error::DataFusionError::External(Box::new(Error::sql(
            SqlState::StatementTooComplex,
            format!(
                "view \"{schema}.{name}\" expands to more than {MAX_VIEW_PLAN_NODES} plan nodes \
                 (the views it reads, each as often as it is read)"
            ),
        ))));
    }
    Ok(())
}

#[async_trait::async_trait]
impl ViewPlanner for Views {
    async fn plan_view(
        &self,
        schema: &str,
        name: &str,
        sql: &str,
    ) -> datafusion::error::Result<Arc<dyn TableProvider>> {
        if self.depth >= MAX_VIEW_DEPTH {
            return Err(datafusion::error::DataFusionError::Plan(format!(
                "view \"{schema}.{name}\" reads views more than {MAX_VIEW_DEPTH} deep (does it read itself?)"
            )));
        }
        let journey: Arc<dyn SchemaProvider> = Arc::new(JourneySchema::new(self.engine.clone()));
        let catalog = StoreCatalog::new(
            self.engine.store.clone(),
            vec![(JOURNEY_SCHEMA.to_string(), journey)],
            Some(Arc::new(Views { engine: self.engine.clone(), depth: self.depth + 1 })),
            None,
        );
        let ctx = self
            .engine
            .context(catalog, STORE_SCHEMA)
            .map_err(|e| datafusion::error::DataFusionError::External(Box::new(e)))?;
        match self.engine.planner.plan_query(&ctx.state(), sql).await.map_err(crate::sql::into_datafusion) {
            Ok(plan) => {
                check_view_size(schema, name, &plan)?;
                Ok(Arc::new(ViewTable::new(plan, Some(sql.to_string()))))
            }
            // A view that reads too much to expand: the statement fails, not only that view.
            Err(e) if crate::error::datafusion_to_pg(&e).code == SqlState::StatementTooComplex => Err(e),
            // Listed without columns (catalog queries keep working); reading it fails with why.
            Err(e) => Ok(Arc::new(BrokenView {
                error: format!("view \"{schema}.{name}\" cannot be read: {}", e.strip_backtrace()),
                definition: sql.to_string(),
            })),
        }
    }
}

/// A stored view whose SQL no longer plans (a relation it reads was dropped or renamed).
#[derive(Debug)]
struct BrokenView {
    error: String,
    definition: String,
}

#[async_trait::async_trait]
impl TableProvider for BrokenView {
    fn schema(&self) -> SchemaRef {
        Arc::new(Schema::empty())
    }

    fn table_type(&self) -> datafusion::datasource::TableType {
        datafusion::datasource::TableType::View
    }

    fn get_table_definition(&self) -> Option<&str> {
        Some(&self.definition)
    }

    async fn scan(
        &self,
        _state: &dyn datafusion::catalog::Session,
        _projection: Option<&Vec<usize>>,
        _filters: &[datafusion::prelude::Expr],
        _limit: Option<usize>,
    ) -> datafusion::error::Result<Arc<dyn datafusion::physical_plan::ExecutionPlan>> {
        Err(datafusion::error::DataFusionError::Plan(self.error.clone()))
    }
}

/// The result of one statement.
pub enum Output {
    /// Rows, streamed batch by batch.
    Rows(SendableRecordBatchStream),
    /// A command with its tag (`SET`, `BEGIN`, ...).
    Command(String),
    /// `BEGIN`: the session is now in a transaction block.
    TransactionStart(String),
    /// `COMMIT` / `ROLLBACK`: the transaction block ended.
    TransactionEnd(String),
    /// COPY ... FROM STDIN: the server reads the data into the table.
    CopyIn(Box<CopyIn>),
    /// COPY ... TO STDOUT: rows to send in a COPY format.
    CopyOut(CopyOut),
}

impl std::fmt::Debug for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Output::Rows(s) => write!(f, "Rows({:?})", s.schema()),
            Output::Command(t) => write!(f, "Command({t})"),
            Output::TransactionStart(t) => write!(f, "TransactionStart({t})"),
            Output::TransactionEnd(t) => write!(f, "TransactionEnd({t})"),
            Output::CopyIn(c) => write!(f, "CopyIn({}.{})", c.schema, c.table),
            Output::CopyOut(c) => write!(f, "{c:?}"),
        }
    }
}

/// One client's session.
pub struct Session {
    engine: Arc<Engine>,
    ctx: SessionContext,
    settings: SharedSettings,
    info: SessionInfo,
    temporary: TempTables,
    /// What each temporary table holds of the memory pool (given back when it is dropped, or
    /// with the session): temporary tables live in memory, and count against `memory_limit`.
    temporary_memory:
        std::sync::Mutex<std::collections::HashMap<String, datafusion::execution::memory_pool::MemoryReservation>>,
    /// The parameter values of the INSERT running now.
    params: Vec<ScalarValue>,
    /// The plan of the prepared INSERT running now, which it kept ([`crate::sql::prepared`]).
    insert_planned: Option<LogicalPlan>,
    /// The schemas of the search path, as they are now.
    path: crate::store::catalog::SearchPathFn,
}

/// What a statement needs from the extended protocol's Describe.
#[derive(Debug, Clone)]
pub struct Description {
    /// Parameter types, `$1` first; `None` where nothing tells the type.
    pub params: Vec<Option<DataType>>,
    /// Result columns, named as clients see them ([`crate::sql::shown_schema`]); empty for
    /// commands.
    pub schema: SchemaRef,
}

impl Session {
    pub fn context(&self) -> &SessionContext {
        &self.ctx
    }

    pub fn info(&self) -> &SessionInfo {
        &self.info
    }

    pub fn settings(&self) -> std::sync::MutexGuard<'_, settings::Settings> {
        settings::lock(&self.settings)
    }

    /// Parses SQL text into rewritten statements (PostgreSQL dialect).
    pub fn parse(&self, sql: &str) -> Result<Vec<Statement>> {
        self.engine.parse(sql)
    }

    /// Parses and runs every statement of `sql`, in order; stops at the first error.
    pub async fn execute_sql(&mut self, sql: &str) -> Result<Vec<Output>> {
        let mut out = vec![];
        for stmt in self.parse(sql)? {
            out.push(self.execute(&stmt, &[]).await?);
        }
        Ok(out)
    }

    /// Describes a statement without running it.
    pub async fn describe(&mut self, stmt: &Statement) -> Result<Description> {
        self.describe_kept(stmt, None).await
    }

    /// Describes a prepared statement, which keeps the plan for its executions.
    pub async fn describe_prepared(&mut self, prepared: &Prepared) -> Result<Description> {
        self.describe_kept(&prepared.statement, Some(prepared)).await
    }

    async fn describe_kept(&mut self, stmt: &Statement, prepared: Option<&Prepared>) -> Result<Description> {
        match self.classify(stmt)? {
            Kind::Plan => {
                let plan = self.plan_kept(stmt, prepared, true).await?;
                let params = parameter_types(stmt, &plan)?;
                Ok(Description { params, schema: crate::sql::shown_schema(plan.schema().as_arrow()) })
            }
            Kind::Show(name) => Ok(Description { params: vec![], schema: show_schema(&name) }),
            Kind::Write if matches!(stmt, Statement::Insert(_)) => {
                let plan = self.plan_kept(stmt, prepared, true).await?;
                Ok(Description { params: parameter_types(stmt, &plan)?, schema: Arc::new(Schema::empty()) })
            }
            Kind::Command | Kind::Write => Ok(Description { params: vec![], schema: Arc::new(Schema::empty()) }),
        }
    }

    /// Runs one statement with positional parameter values (`$1` first).
    pub async fn execute(&mut self, stmt: &Statement, params: &[ScalarValue]) -> Result<Output> {
        self.execute_kept(stmt, None, params).await
    }

    /// Runs a prepared statement with its plan, remade only if what it was made from changed.
    pub async fn execute_prepared(&mut self, prepared: &Prepared, params: &[ScalarValue]) -> Result<Output> {
        self.execute_kept(&prepared.statement, Some(prepared), params).await
    }

    async fn execute_kept(
        &mut self,
        stmt: &Statement,
        prepared: Option<&Prepared>,
        params: &[ScalarValue],
    ) -> Result<Output> {
        match self.classify(stmt)? {
            Kind::Plan => {
                let mut plan = self.plan_kept(stmt, prepared, false).await?;
                if !params.is_empty() {
                    let values = cast_params(&plan, params)?;
                    plan = plan.with_param_values(ParamValues::from(values))?;
                }
                Ok(Output::Rows(crate::sql::shown_rows(self.engine.executor.execute(&self.ctx, plan).await?)))
            }
            Kind::Show(name) => {
                let value = self.settings().get(&name).map_err(|e| Error::Sql(e.sqlstate(), e.to_string()))?;
                let schema = show_schema(&name);
                let batch =
                    RecordBatch::try_new(schema.clone(), vec![Arc::new(StringArray::from(vec![value])) as ArrayRef])?;
                Ok(Output::Rows(Box::pin(MemoryStream::try_new(vec![batch], schema, None)?)))
            }
            Kind::Command => self.command(stmt),
            Kind::Write => {
                if !params.is_empty() && !matches!(stmt, Statement::Insert(_)) {
                    return Err(Error::Unsupported("parameters are supported in INSERT and queries only".into()));
                }
                if prepared.is_some() && matches!(stmt, Statement::Insert(_)) {
                    self.insert_planned = Some(self.plan_kept(stmt, prepared, false).await?);
                }
                self.params = params.to_vec();
                let out = self.write(stmt).await;
                self.params.clear();
                self.insert_planned = None;
                out
            }
        }
    }

    /// The plan `prepared` kept, if what it was made from is unchanged; else a new plan, kept.
    async fn plan_kept(&self, stmt: &Statement, prepared: Option<&Prepared>, described: bool) -> Result<LogicalPlan> {
        let Some(prepared) = prepared else { return self.plan(stmt).await };
        let stamp = Stamp::new(self.settings().clone(), self.engine.store(), &self.temporary);
        if let Some(plan) = prepared.plan(&stamp, self.engine.store()) {
            return Ok(plan);
        }
        let plan = self.plan(stmt).await?;
        prepared.keep(stamp, &plan, described);
        Ok(plan)
    }

    fn classify(&self, stmt: &Statement) -> Result<Kind> {
        Ok(match stmt {
            Statement::Query(_) | Statement::Explain { .. } => Kind::Plan,
            Statement::ShowVariable { variable } => {
                let name = variable.iter().map(|i| i.value.as_str()).collect::<Vec<_>>().join(" ");
                Kind::Show(name)
            }
            Statement::Set(_)
            | Statement::Reset(_)
            | Statement::StartTransaction { .. }
            | Statement::Commit { .. }
            | Statement::Rollback { .. }
            | Statement::Savepoint { .. }
            | Statement::ReleaseSavepoint { .. }
            | Statement::Discard { .. }
            | Statement::Close { .. }
            | Statement::UNLISTEN { .. } => Kind::Command,
            Statement::CreateSchema { .. }
            | Statement::CreateTable(_)
            | Statement::CreateView(_)
            | Statement::CreateIndex(_)
            | Statement::Drop { .. }
            | Statement::AlterTable(_)
            | Statement::Comment { .. }
            | Statement::Truncate(_)
            | Statement::Insert(_)
            | Statement::Delete(_)
            | Statement::Update(_)
            | Statement::Merge(_)
            | Statement::Vacuum(_)
            | Statement::OptimizeTable { .. }
            | Statement::Copy { .. } => Kind::Write,
            other => {
                let keyword = other.to_string().split_whitespace().take(2).collect::<Vec<_>>().join(" ").to_uppercase();
                return Err(Error::Unsupported(format!(
                    "{keyword} is not supported: journeydb serves queries over the tables of its data directory"
                )));
            }
        })
    }

    /// Plans a statement in the session's time zone ([`crate::pg::time_zone`]).
    async fn plan(&self, stmt: &Statement) -> Result<LogicalPlan> {
        let zone = self.time_zone();
        let cluster = self.settings().get("journeydb.cluster").is_ok_and(|v| v == "on");
        {
            let state = self.ctx.state_ref();
            let mut state = state.write();
            let options = state.config_mut().options_mut();
            options.execution.time_zone = Some(zone);
            if let Some(o) = options.extensions.get_mut::<crate::cluster::distribute::ClusterOptions>() {
                o.cluster = cluster;
            }
            // A join's dynamic filter is shared in memory by its two sides, which a cluster runs
            // in different stages (and Ballista's scheduler may swap them after planning).
            options.optimizer.enable_join_dynamic_filter_pushdown = !(cluster && self.engine.cluster.is_some());
        }
        let used = if matches!(stmt, Statement::Query(_)) { Use::Result } else { Use::Input };
        self.engine.planner.plan(&self.ctx.state(), stmt, used).await
    }

    /// The Arrow label of the session's TimeZone (`UTC`, `Europe/Paris`).
    fn time_zone(&self) -> String {
        let setting = self.settings().get("timezone").unwrap_or_default();
        crate::pg::time_zone::parse(&setting).map(|tz| tz.name().to_string()).unwrap_or_else(|| "UTC".into())
    }

    fn command(&mut self, stmt: &Statement) -> Result<Output> {
        let invalid = |e: crate::pg::settings::SettingError| Error::Sql(e.sqlstate(), e.to_string());
        match stmt {
            Statement::Set(Set::SingleAssignment { variable, values, .. }) => {
                let value = values.iter().map(setting_value).collect::<Vec<_>>().join(", ");
                let name = object_name(variable);
                if value.eq_ignore_ascii_case("default") {
                    self.settings().reset(&name).map_err(invalid)?;
                } else {
                    self.settings().set(&name, &value).map_err(invalid)?;
                }
                Ok(Output::Command("SET".into()))
            }
            Statement::Set(Set::SetTimeZone { value, .. }) => {
                self.settings().set("timezone", &setting_value(value)).map_err(invalid)?;
                Ok(Output::Command("SET".into()))
            }
            // Every statement runs on its own and reads the store as it is when it starts (read
            // committed, as PostgreSQL's default); READ ONLY and the isolation levels clients ask
            // for (pgjdbc, Metabase) change nothing of that, so they are accepted.
            Statement::Set(Set::SetTransaction { .. }) => Ok(Output::Command("SET".into())),
            Statement::Set(other) => Err(Error::Unsupported(format!("{other} is not supported"))),
            Statement::Reset(r) => {
                match &r.reset {
                    Reset::ALL => self.settings().reset_all(),
                    Reset::ConfigurationParameter(name) => {
                        self.settings().reset(&object_name(name)).map_err(invalid)?
                    }
                }
                Ok(Output::Command("RESET".into()))
            }
            Statement::StartTransaction { .. } => Ok(Output::TransactionStart("BEGIN".into())),
            Statement::Commit { .. } => Ok(Output::TransactionEnd("COMMIT".into())),
            // Savepoints are accepted like transaction blocks: each statement has committed.
            Statement::Rollback { savepoint: Some(_), .. } => Ok(Output::Command("ROLLBACK".into())),
            Statement::Rollback { .. } => Ok(Output::TransactionEnd("ROLLBACK".into())),
            Statement::Savepoint { .. } => Ok(Output::Command("SAVEPOINT".into())),
            // Connection poolers reset a session with DISCARD ALL: settings back to their
            // defaults, temporary tables gone (there are no cached plans or sequences).
            Statement::Discard { object_type } => {
                use datafusion::sql::sqlparser::ast::DiscardObject;
                if matches!(object_type, DiscardObject::ALL) {
                    self.settings().reset_all();
                }
                if matches!(object_type, DiscardObject::ALL | DiscardObject::TEMP) {
                    self.temporary.lock().unwrap_or_else(|p| p.into_inner()).clear();
                }
                Ok(Output::Command(format!("DISCARD {object_type}")))
            }
            Statement::ReleaseSavepoint { .. } => Ok(Output::Command("RELEASE".into())),
            // There are no cursors (DECLARE is not supported) and no notification channels:
            // closing all of them, or stopping to listen (asyncpg's pool reset), does nothing.
            Statement::Close { cursor: CloseCursor::All } => Ok(Output::Command("CLOSE CURSOR ALL".into())),
            Statement::Close { cursor: CloseCursor::Specific { name } } => {
                Err(Error::sql(SqlState::InvalidCursorName, format!("cursor \"{name}\" does not exist")))
            }
            Statement::UNLISTEN { .. } => Ok(Output::Command("UNLISTEN".into())),
            other => Err(Error::Unsupported(format!("{other} is not supported"))),
        }
    }
}

enum Kind {
    Plan,
    Show(String),
    Command,
    /// Changes the store (see [`write`]).
    Write,
}

/// The types of a statement's parameters, `$1` first; `None` where nothing tells the type.
fn parameter_types(stmt: &Statement, plan: &LogicalPlan) -> Result<Vec<Option<DataType>>> {
    let types = plan.get_parameter_types()?;
    let mut params = vec![None; types.len()];
    for (name, dt) in types {
        if let Some(i) = placeholder_index(&name)
            && i <= params.len()
        {
            params[i - 1] = dt;
        }
    }
    // `$1::bigint` and `f($1)`: DataFusion leaves the placeholder untyped; PostgreSQL types it.
    for (i, dt) in placeholder_casts(stmt).into_iter().chain(function_arguments(plan)) {
        if i <= params.len() && params[i - 1].is_none() {
            params[i - 1] = Some(dt);
        }
    }
    Ok(params)
}

/// Placeholders passed straight to a function of one exact signature (`pg_cancel_backend($1)`),
/// with the type the function takes there.
fn function_arguments(plan: &LogicalPlan) -> Vec<(usize, DataType)> {
    use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
    use datafusion::logical_expr::TypeSignature;
    let mut out = vec![];
    let _ = plan.apply_with_subqueries(|node| {
        node.apply_expressions(|e| {
            e.apply(|e| {
                if let datafusion::logical_expr::Expr::ScalarFunction(f) = e
                    && let TypeSignature::Exact(types) = &f.func.signature().type_signature
                    && types.len() == f.args.len()
                {
                    for (arg, dt) in f.args.iter().zip(types) {
                        if let datafusion::logical_expr::Expr::Placeholder(p) = arg
                            && p.field.is_none()
                            && let Some(i) = placeholder_index(&p.id)
                        {
                            out.push((i, dt.clone()));
                        }
                    }
                }
                Ok(TreeNodeRecursion::Continue)
            })
        })
    });
    out
}

/// Parameter values cast to the types the plan expects (text parameters of unknown type
/// become numbers, timestamps, ... here).
fn cast_params(plan: &LogicalPlan, params: &[ScalarValue]) -> Result<Vec<ScalarValue>> {
    let mut types = plan.get_parameter_types()?;
    for (i, dt) in function_arguments(plan) {
        types.entry(format!("${i}")).and_modify(|t| *t = t.take().or(Some(dt.clone()))).or_insert(Some(dt));
    }
    params
        .iter()
        .enumerate()
        .map(|(i, v)| match types.get(&format!("${}", i + 1)) {
            Some(Some(dt)) if v.data_type() != *dt => v
                .cast_to(dt)
                .map_err(|e| Error::InvalidParameter(format!("invalid value for parameter ${}: {e}", i + 1))),
            _ => Ok(v.clone()),
        })
        .collect()
}

/// `$3` -> 3.
fn placeholder_index(name: &str) -> Option<usize> {
    name.strip_prefix('$').and_then(|n| n.parse::<usize>().ok()).filter(|i| *i >= 1)
}

/// Placeholders that appear cast to a type, with that type.
fn placeholder_casts(stmt: &Statement) -> Vec<(usize, DataType)> {
    use datafusion::sql::sqlparser::ast::visit_expressions;
    let mut out = vec![];
    let _ = visit_expressions(stmt, |e| {
        if let Expr::Cast { expr, data_type, .. } = e
            && let Expr::Value(v) = expr.as_ref()
            && let Value::Placeholder(p) = &v.value
            && let Some(i) = placeholder_index(p)
            && let Some(dt) = sql_type(data_type)
        {
            out.push((i, dt));
        }
        std::ops::ControlFlow::<()>::Continue(())
    });
    out
}

/// The Arrow type a placeholder cast to `data_type` takes (`$1::bigint`, `$1::oid[]`), for the
/// types a client may bind ([`crate::pg::types`]).
fn sql_type(data_type: &datafusion::sql::sqlparser::ast::DataType) -> Option<DataType> {
    crate::pg::types::named(&data_type.to_string()).and_then(crate::pg::types::bound_type)
}

/// SHOW's one column, named as PostgreSQL names the parameter (`TimeZone`, `DateStyle`).
fn show_schema(name: &str) -> SchemaRef {
    let canonical = settings::canonical(name);
    let shown = match canonical.as_str() {
        "timezone" => "TimeZone".to_string(),
        "datestyle" => "DateStyle".to_string(),
        "intervalstyle" => "IntervalStyle".to_string(),
        _ => canonical,
    };
    Arc::new(Schema::new(vec![Field::new(shown, DataType::Utf8, false)]))
}

fn object_name(name: &ObjectName) -> String {
    name.0.iter().map(|p| p.to_string().trim_matches('"').to_string()).collect::<Vec<_>>().join(".")
}

fn setting_value(e: &Expr) -> String {
    match e {
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => s.clone(),
            other => other.to_string(),
        },
        Expr::Identifier(id) => id.value.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    async fn rows(session: &mut Session, sql: &str) -> Vec<RecordBatch> {
        let mut out = vec![];
        for o in session.execute_sql(sql).await.expect(sql) {
            if let Output::Rows(mut s) = o {
                while let Some(b) = s.next().await {
                    out.push(b.expect("batch"));
                }
            }
        }
        out
    }

    #[tokio::test]
    async fn settings_and_transactions() {
        let dir = tempfile::tempdir().expect("tmp");
        let engine = Engine::new(Config { data_dir: dir.path().into(), ..Config::default() }).expect("engine");
        let mut s = engine.session("journey", "journeydb").expect("session");
        rows(&mut s, "SET application_name = 'x'; SET TIME ZONE 'UTC'").await;
        assert_eq!(s.settings().get("application_name").as_deref(), Ok("x"));
        let b = rows(&mut s, "SHOW application_name").await;
        assert_eq!(b[0].num_rows(), 1);
        let outs = s.execute_sql("BEGIN; COMMIT").await.expect("txn");
        assert!(matches!(outs[0], Output::TransactionStart(_)) && matches!(outs[1], Output::TransactionEnd(_)));
        let err = s.execute_sql("SET no_such_thing = 1").await.expect_err("unknown");
        assert_eq!(crate::error::to_pg_error(&err).code, crate::error::SqlState::UndefinedObject);
        let err = s.execute_sql("CREATE SEQUENCE q").await.expect_err("ddl");
        assert_eq!(crate::error::to_pg_error(&err).code, crate::error::SqlState::FeatureNotSupported);
        // An index is accepted and ignored, on a table that exists (issue 24).
        let err = s.execute_sql("CREATE INDEX i ON t (a)").await.expect_err("no table");
        assert_eq!(crate::error::to_pg_error(&err).code, crate::error::SqlState::UndefinedTable);
    }

    #[tokio::test]
    async fn set_config_applies_when_run_not_when_described() {
        let dir = tempfile::tempdir().expect("tmp");
        let engine = Engine::new(Config { data_dir: dir.path().into(), ..Config::default() }).expect("engine");
        let mut s = engine.session("journey", "journeydb").expect("session");
        let stmt = s.parse("SELECT set_config('application_name', 'dbt', false)").expect("parse").remove(0);
        s.describe(&stmt).await.expect("describe");
        assert_eq!(s.settings().get("application_name").as_deref(), Ok(""), "Describe must not change settings");
        rows(&mut s, "SELECT set_config('application_name', 'dbt', false)").await;
        assert_eq!(s.settings().get("application_name").as_deref(), Ok("dbt"));
    }

    #[tokio::test]
    async fn parameters_are_cast_to_the_planned_types() {
        let dir = tempfile::tempdir().expect("tmp");
        let engine = Engine::new(Config { data_dir: dir.path().into(), ..Config::default() }).expect("engine");
        let mut s = engine.session("journey", "journeydb").expect("session");
        let stmt = s.parse("SELECT $1 + CAST(1 AS BIGINT) AS n").expect("parse").remove(0);
        let d = s.describe(&stmt).await.expect("describe");
        assert_eq!(d.params, [Some(DataType::Int64)]);
        // Text of unknown type, as psycopg sends it, becomes the planned bigint.
        let out = s.execute(&stmt, &[ScalarValue::Utf8(Some("41".into()))]).await.expect("execute");
        let Output::Rows(mut stream) = out else { panic!("rows expected") };
        let batch = stream.next().await.expect("a batch").expect("ok");
        let n = batch.column(0).as_any().downcast_ref::<datafusion::arrow::array::Int64Array>().expect("int64");
        assert_eq!(n.value(0), 42);
        let err = s.execute(&stmt, &[ScalarValue::Utf8(Some("x".into()))]).await.expect_err("not a number");
        assert_eq!(crate::error::to_pg_error(&err).code, crate::error::SqlState::InvalidParameterValue);
        assert!(err.to_string().contains("parameter $1"), "{err}");
    }
}
