//! `identity_graph`: a tracker's identity calls merged into one person per connected set of ids.
//!
//! # Contract
//!
//! ```sql
//! SELECT * FROM identity_graph(source => 'identifies' [, aliases => 'aliases'] [, name => value ...])
//! ```
//!
//! Reads pairs of an anonymous id and a user id seen together (`source`: Segment's
//! `identifies`, events that carry both, Snowplow's `domain_userid` and `user_id`) and,
//! optionally, `aliases` (a previous id and the user id it became: Segment's `aliases`), and
//! returns `(id, is_user, person_id, known_users)`, ordered by `is_user`, then `id`:
//!
//! - **Users** (`is_user` true): every user id read. Users joined by aliases (a previous id
//!   that is itself a user id read somewhere: `source`'s user column or an alias's user) are one
//!   person, however long the chain; `person_id` is the smallest user id of the set (text
//!   order), so it does not depend on the order of the calls. `known_users` is how many user
//!   ids the person has.
//! - **Anonymous ids** (`is_user` false): every anonymous id seen with a user (an alias whose
//!   previous id is no user id counts as such a pair). `person_id` is the person of the users it
//!   was seen with; seen with several persons (a shared device) it goes to the smallest of them,
//!   as the journey model's stitching rule does, and `known_users` (how many persons) says so.
//! - Rows with a NULL in either id are skipped (a user id alone still makes a user).
//! - Deterministic: the answer depends only on the set of pairs read. Memory: every distinct id
//!   once, reserved from the session's memory pool (53200 beyond it).

use crate::common::options::Options;
use crate::common::plan_node::{one_partition, slices};
use crate::docs::{self, FunctionDoc, Parameter};
use crate::error::ArgumentError;
use crate::physical::report::{plan_input, source_relation, unreadable};
use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanBuilder, Int64Builder, RecordBatch, StringBuilder};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::{Session, TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::Statistics;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::datasource::TableType;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::memory_pool::MemoryConsumer;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::Expr;
use datafusion::physical_expr::{EquivalenceProperties, Partitioning};
use datafusion::physical_plan::execution_plan::{
    Boundedness, ChildrenPropertiesMode, EmissionType, ReplaceChildrenOptions,
};
use datafusion::physical_plan::statistics::{ChildStats, StatisticsArgs};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, PhysicalExpr, PlanProperties};
use futures::StreamExt;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

pub const NAME: &str = "identity_graph";

/// This function's reference ([`crate::docs`]).
pub const DOC: FunctionDoc = FunctionDoc {
    name: NAME,
    kind: docs::Kind::Report,
    usage: "identity_graph(source => 'identifies' [, aliases => 'aliases'] [, name => value, ...])",
    result: "TABLE(id text, is_user boolean, person_id text, known_users bigint)",
    positional: "",
    options: &[
        Parameter {
            name: "source",
            sql_type: "text",
            default: None,
            meaning: "pairs of an anonymous id and a user id seen together: a table or view name, or a query",
        },
        Parameter::column("anonymous", "'anonymous_id'"),
        Parameter::column("user", "'user_id'"),
        Parameter {
            name: "aliases",
            sql_type: "text",
            default: None,
            meaning: "a previous id and the user id it became: a table or view name, or a query",
        },
        Parameter {
            name: "previous",
            sql_type: "text",
            default: Some("'previous_id'"),
            meaning: "`aliases`' previous id column",
        },
    ],
    summary: "Identity graph: the persons of anonymous ids and user ids joined by identify and alias calls.",
    description: "one row per user id (`is_user`) and per anonymous id seen with a user: `person_id`, the smallest user id of the users joined by `aliases` however long the chain (connected components, deterministic), and `known_users` (a user's person's user ids; an anonymous id's persons: more than one is a shared device, which goes to the smallest); pairs from `source` (`anonymous`, `user` columns: Segment's identifies, Snowplow's domain_userid and user_id), aliases whose previous id is no user id read as such pairs (contract in `udfs/src/table/identity_graph.rs`)",
    contract: "`udfs/src/table/identity_graph.rs`",
};

fn bad(arg: &str, msg: impl Into<String>) -> DataFusionError {
    ArgumentError::new(NAME, arg, msg).into_datafusion()
}

/// The table function.
#[derive(Debug, Default)]
pub struct IdentityGraph;

impl TableFunctionImpl for IdentityGraph {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let mut o = Options::parse(NAME, &args)?;
        if !o.positional().is_empty() {
            return Err(bad("1", "takes named arguments only: identity_graph(source => 'identifies')"));
        }
        let source = o.string("source")?.ok_or_else(|| bad("source", "is needed: source => 'identifies'"))?;
        let anonymous = o.string("anonymous")?.unwrap_or_else(|| "anonymous_id".into());
        let user = o.string("user")?.unwrap_or_else(|| "user_id".into());
        let aliases = o.string("aliases")?;
        let previous = o.string("previous")?.unwrap_or_else(|| "previous_id".into());
        o.finish(&DOC.option_names())?;
        for (arg, v) in [("source", &source), ("anonymous", &anonymous), ("user", &user), ("previous", &previous)] {
            if v.trim().is_empty() {
                return Err(bad(arg, "must not be empty"));
            }
        }
        // One input: pairs (`l` false) and aliases (`l` true), ids as text.
        let mut sql = format!(
            "SELECT CAST(({anonymous}) AS VARCHAR) AS a, CAST(({user}) AS VARCHAR) AS u, false AS l FROM {}",
            source_relation(&source)
        );
        if let Some(aliases) = aliases.filter(|a| !a.trim().is_empty()) {
            sql.push_str(&format!(
                " UNION ALL SELECT CAST(({previous}) AS VARCHAR), CAST(({user}) AS VARCHAR), true FROM {}",
                source_relation(&aliases)
            ));
        }
        Ok(Arc::new(GraphTable { sql }))
    }
}

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Utf8, false),
        Field::new("is_user", DataType::Boolean, false),
        Field::new("person_id", DataType::Utf8, false),
        Field::new("known_users", DataType::Int64, false),
    ]))
}

#[derive(Debug)]
struct GraphTable {
    sql: String,
}

#[async_trait::async_trait]
impl TableProvider for GraphTable {
    fn schema(&self) -> SchemaRef {
        schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Temporary
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let input = plan_input(state, &self.sql, None).await.map_err(unreadable(NAME, "its source"))?;
        let graph = Arc::new(IdentityGraphExec::new(input, state.config().batch_size()));
        crate::physical::report::project(graph, projection)
    }
}

/// Reads every pair, then answers the graph in one partition.
#[derive(Debug)]
pub struct IdentityGraphExec {
    input: Arc<dyn ExecutionPlan>,
    batch_size: usize,
    properties: Arc<PlanProperties>,
}

impl IdentityGraphExec {
    fn new(input: Arc<dyn ExecutionPlan>, batch_size: usize) -> Self {
        let properties = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(schema()),
            Partitioning::UnknownPartitioning(1),
            EmissionType::Final,
            Boundedness::Bounded,
        ));
        IdentityGraphExec { input, batch_size: batch_size.max(1), properties }
    }
}

impl DisplayAs for IdentityGraphExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "IdentityGraphExec")
    }
}

impl ExecutionPlan for IdentityGraphExec {
    fn name(&self) -> &str {
        "IdentityGraphExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn replace_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
        _options: ReplaceChildrenOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let input = crate::common::plan_node::only_child(children, "IdentityGraphExec")?;
        Ok(Arc::new(IdentityGraphExec::new(input, self.batch_size)))
    }

    fn with_new_children(self: Arc<Self>, children: Vec<Arc<dyn ExecutionPlan>>) -> Result<Arc<dyn ExecutionPlan>> {
        self.replace_children(children, ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute))
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![false]
    }

    fn benefits_from_input_partitioning(&self) -> Vec<bool> {
        vec![false]
    }

    fn child_stats_requests(&self, _partition: Option<usize>) -> Vec<ChildStats> {
        vec![ChildStats::At(None)]
    }

    /// About one row per call read (each gives at most an anonymous id and a user), inexact: so
    /// a join with the events holds the graph's small side and streams the events past it.
    fn statistics_from_inputs(&self, input: &[Arc<Statistics>], _args: &StatisticsArgs) -> Result<Arc<Statistics>> {
        let mut stats = Statistics::new_unknown(&schema());
        if let Some(calls) = input.first() {
            stats.num_rows = calls.num_rows.to_inexact();
        }
        Ok(Arc::new(stats))
    }

    fn execute(&self, partition: usize, context: Arc<TaskContext>) -> Result<SendableRecordBatchStream> {
        if partition != 0 {
            return Err(DataFusionError::Internal(format!(
                "IdentityGraphExec has one partition, asked for {partition}"
            )));
        }
        let mut rows = one_partition(&self.input).execute(0, context.clone())?;
        let batch_size = self.batch_size;
        let reservation = MemoryConsumer::new(NAME).register(context.memory_pool());
        let answer = async move {
            let mut graph = Graph::default();
            while let Some(batch) = rows.next().await {
                graph.read(&batch?)?;
                reservation.try_resize(graph.memory())?;
            }
            // The answer's rows and batches hold about as much again as the graph.
            reservation.try_resize(2 * graph.memory())?;
            graph.answer(batch_size)
        };
        let stream = futures::stream::once(answer).flat_map(|r: Result<Vec<RecordBatch>>| {
            futures::stream::iter(match r {
                Ok(batches) => batches.into_iter().map(Ok).collect(),
                Err(e) => vec![Err(e)],
            })
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema(), stream)))
    }
}

/// Ids interned to dense numbers, and what was read of them.
#[derive(Default)]
struct Graph {
    users: HashMap<String, u32>,
    user_names: Vec<String>,
    anons: HashMap<String, u32>,
    anon_names: Vec<String>,
    /// (anonymous, user) seen together.
    pairs: Vec<(u32, u32)>,
    /// (previous id, user): the previous id as text, read as a user or an anonymous id once
    /// every id is known.
    aliases: Vec<(String, u32)>,
    text_bytes: usize,
}

fn intern(map: &mut HashMap<String, u32>, names: &mut Vec<String>, bytes: &mut usize, id: &str) -> u32 {
    if let Some(&n) = map.get(id) {
        return n;
    }
    let n = names.len() as u32;
    map.insert(id.to_string(), n);
    names.push(id.to_string());
    *bytes += 2 * id.len();
    n
}

impl Graph {
    fn read(&mut self, batch: &RecordBatch) -> Result<()> {
        let a = cast(batch.column(0), &DataType::Utf8)?;
        let u = cast(batch.column(1), &DataType::Utf8)?;
        let (a, u, alias) = (a.as_string::<i32>(), u.as_string::<i32>(), batch.column(2).as_boolean());
        for i in 0..batch.num_rows() {
            if u.is_null(i) {
                continue;
            }
            let user = intern(&mut self.users, &mut self.user_names, &mut self.text_bytes, u.value(i));
            if a.is_null(i) {
                continue;
            }
            if alias.value(i) {
                self.text_bytes += a.value(i).len();
                self.aliases.push((a.value(i).to_string(), user));
            } else {
                let anon = intern(&mut self.anons, &mut self.anon_names, &mut self.text_bytes, a.value(i));
                self.pairs.push((anon, user));
            }
        }
        Ok(())
    }

    /// What the graph holds, about.
    fn memory(&self) -> usize {
        let entry = std::mem::size_of::<(String, u32)>() + 8;
        self.text_bytes
            + (self.users.capacity() + self.anons.capacity()) * entry
            + (self.user_names.capacity() + self.anon_names.capacity()) * std::mem::size_of::<String>()
            + self.pairs.capacity() * 8
            + self.aliases.capacity() * std::mem::size_of::<(String, u32)>()
    }

    fn answer(mut self, batch_size: usize) -> Result<Vec<RecordBatch>> {
        // Aliases: between users, unions; from an id that is no user, a pair.
        let mut parent: Vec<u32> = (0..self.user_names.len() as u32).collect();
        for (previous, user) in std::mem::take(&mut self.aliases) {
            match self.users.get(&previous) {
                Some(&p) => union(&mut parent, p, user),
                None => {
                    let anon = intern(&mut self.anons, &mut self.anon_names, &mut self.text_bytes, &previous);
                    self.pairs.push((anon, user));
                }
            }
        }
        // Each set's person: its smallest user id.
        let users = self.user_names.len();
        let mut person: Vec<u32> = vec![u32::MAX; users];
        let mut size: Vec<i64> = vec![0; users];
        for u in 0..users as u32 {
            let root = find(&mut parent, u) as usize;
            size[root] += 1;
            if person[root] == u32::MAX || self.user_names[u as usize] < self.user_names[person[root] as usize] {
                person[root] = u;
            }
        }
        let person_of = |parent: &mut Vec<u32>, u: u32| person[find(parent, u) as usize];
        // Each anonymous id's persons.
        let mut seen: Vec<(u32, u32)> = self.pairs.iter().map(|&(a, u)| (a, person_of(&mut parent, u))).collect();
        seen.sort_unstable();
        seen.dedup();

        let mut rows: Vec<(bool, &str, &str, i64)> = Vec::with_capacity(users + self.anon_names.len());
        for u in 0..users as u32 {
            let root = find(&mut parent, u) as usize;
            rows.push((true, &self.user_names[u as usize], &self.user_names[person[root] as usize], size[root]));
        }
        for group in seen.chunk_by(|x, y| x.0 == y.0) {
            let smallest =
                group.iter().map(|&(_, p)| &self.user_names[p as usize]).min().expect("a group is not empty");
            rows.push((false, &self.anon_names[group[0].0 as usize], smallest, group.len() as i64));
        }
        rows.sort_unstable_by(|x, y| x.0.cmp(&y.0).then_with(|| x.1.cmp(y.1)));
        let (mut id, mut is_user) = (StringBuilder::new(), BooleanBuilder::new());
        let (mut person, mut known) = (StringBuilder::new(), Int64Builder::new());
        for (user, i, p, k) in rows {
            id.append_value(i);
            is_user.append_value(user);
            person.append_value(p);
            known.append_value(k);
        }
        let columns: Vec<ArrayRef> = vec![
            Arc::new(id.finish()),
            Arc::new(is_user.finish()),
            Arc::new(person.finish()),
            Arc::new(known.finish()),
        ];
        Ok(slices(&RecordBatch::try_new(schema(), columns)?, batch_size))
    }
}

fn find(parent: &mut [u32], mut x: u32) -> u32 {
    while parent[x as usize] != x {
        let up = parent[parent[x as usize] as usize];
        parent[x as usize] = up;
        x = up;
    }
    x
}

fn union(parent: &mut [u32], a: u32, b: u32) {
    let (ra, rb) = (find(parent, a), find(parent, b));
    if ra != rb {
        let (low, high) = if ra < rb { (ra, rb) } else { (rb, ra) };
        parent[high as usize] = low;
    }
}
