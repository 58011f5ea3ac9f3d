//! `journey_paths`: Sankey edges (and top whole paths) of people's journeys.
//!
//! # Contract
//!
//! ```sql
//! SELECT * FROM journey_paths([name => value, ...])
//! ```
//!
//! Reads the journey model (`journey.events`), or any relation given as `source`, and returns
//! one row per edge of the flow: `(depth, source, target, users, paths, avg_seconds,
//! source_node, target_node)`.
//!
//! - A person's events are ordered by time, ties by node label (a total order, so the answer
//!   does not depend on row order, batch size, partitioning or thread count). Rows with a NULL
//!   person, time or node are skipped; so `node => 'channel'` follows touches only and
//!   `node => 'stage'` only the events mapped to a stage.
//! - Excluded nodes are dropped, cleaning rules rewrite the rest, then the path rules apply
//!   (sessions, repeats, anchors, length: see `common::paths`).
//! - `depth` is the 1-based step of `source`; `target` is the node at the next step, or
//!   `(drop-off)` when the path ends there (no more events), or `(end)` when it ends at the `end`
//!   anchor. A path that reaches `max_steps` has no edge out of its last step. So at every node
//!   of a depth below `max_steps`, the paths that enter it equal the paths that leave it.
//! - At each depth the `top` nodes with the most users stay (ties by label); the others become
//!   `(other)`, so no flow is lost.
//! - `users` counts distinct people on the edge; `paths` counts paths (they differ only when a
//!   session gap gives a person several paths); `avg_seconds` is the mean time from the source
//!   step to the target step (NULL for the terminal edges); `source_node` / `target_node` are
//!   the labels prefixed with their step (`'2. pricing'`), the unique node names a Sankey panel
//!   needs.
//! - `output => 'paths'` returns the most frequent whole paths instead: `(rank, path, steps,
//!   users, paths)`, `path` the labels joined by `' > '`, ranked by users, then paths, then path.
//!
//! Options (all named, all constant):
//!
//! Its options, their types and defaults are listed in [`DOC`] (`docs/functions.md`, `\df+`).
//!
//! Differences from PostHog paths: `users` are unique people (PostHog counts transitions), no
//! edge limit drops flow (top-N per depth plus `(other)` instead), drop-off is explicit, and
//! sessions split only when asked, at a strictly longer gap.

use crate::common::options::Options;
use crate::common::paths::{ELLIPSIS, Path, PathRules, Terminal, person_paths};
use crate::docs::{FunctionDoc, Kind, Parameter};
use crate::error::ArgumentError;
use crate::physical::report::{
    Labels, ReportKernel, ReportQuery, ReportStages, ReportTable, input_times, map_bytes, source_relation, state_item,
    vec_bytes,
};
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Float64Builder, Int32Builder, Int64Builder, ListBuilder, RecordBatch, StringBuilder,
    UInt8Builder, UInt32Builder, make_comparator,
};
use datafusion::arrow::compute::kernels::partition::partition;
use datafusion::arrow::compute::{SortOptions, cast};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::datatypes::{Int64Type, UInt8Type, UInt32Type};
use datafusion::catalog::{TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::{HashMap, HashSet};
use datafusion::error::Result;
use regex::Regex;
use std::sync::Arc;

pub const NAME: &str = "journey_paths";

/// This function's reference ([`crate::docs`]).
pub const DOC: FunctionDoc = FunctionDoc {
    name: NAME,
    kind: Kind::Report,
    usage: "journey_paths([name => value, ...])",
    result: "TABLE(depth integer, source text, target text, users bigint, paths bigint, avg_seconds double precision, source_node text, target_node text)",
    positional: "",
    options: &[
        Parameter::SOURCE,
        Parameter::column("person", "'person_id'"),
        Parameter::UNIT,
        Parameter::column("time", "'event_time'"),
        Parameter::column("node", "'event_name'"),
        Parameter {
            name: "start",
            sql_type: "text",
            default: None,
            meaning: "anchor node values (paths after a step, paths before a step)",
        },
        Parameter {
            name: "end",
            sql_type: "text",
            default: None,
            meaning: "anchor node values (paths after a step, paths before a step)",
        },
        Parameter {
            name: "max_steps",
            sql_type: "integer",
            default: Some("5"),
            meaning: "steps per path, 2 to [`MAX_STEPS`]",
        },
        Parameter {
            name: "top",
            sql_type: "integer",
            default: Some("10"),
            meaning: "nodes kept per depth (or paths listed), 1 to [`MAX_TOP`]",
        },
        Parameter {
            name: "collapse_repeats",
            sql_type: "boolean",
            default: Some("true"),
            meaning: "consecutive equal nodes count once",
        },
        Parameter {
            name: "session_gap",
            sql_type: "interval",
            default: None,
            meaning: "an interval: a pause strictly longer starts a new path",
        },
        Parameter {
            name: "exclude",
            sql_type: "text[]",
            default: None,
            meaning: "node values dropped before anything else",
        },
        Parameter {
            name: "clean",
            sql_type: "text[]",
            default: None,
            meaning: "`ARRAY[pattern, replacement, ...]`: regular expressions applied in order, each replacing all matches (`$1` refers to a group)",
        },
        Parameter { name: "output", sql_type: "text", default: Some("'edges'"), meaning: "`'edges'` or `'paths'`" },
    ],
    summary: "Sankey edges (or the top paths) of people's journeys, with start and end anchors, drop-off and the time between nodes.",
    description: "Sankey edges `(depth, source, target, users, paths, avg_seconds, source_node, target_node)` of people's paths over the journey model or any `source`: top `top` nodes per depth plus `(other)`, explicit `(drop-off)` (and `(end)` at an end anchor) so flow is conserved, `start`/`end` anchors, `max_steps`, `node` (event_name, page_url, channel, stage, stage_reached or any expression), repeats collapsed, `session_gap`, `exclude`, regex `clean` rules in order; `output => 'paths'` gives the top whole paths",
    contract: "`udfs/src/table/journey_paths.rs`",
};
/// The most steps a path may keep.
pub const MAX_STEPS: i64 = 50;
/// The most nodes per depth (or paths) a report may list.
pub const MAX_TOP: i64 = 1000;
pub const OTHER: &str = "(other)";
pub const DROP_OFF: &str = "(drop-off)";
pub const END: &str = "(end)";

/// The table function; `default_source` is the journey model's events view.
#[derive(Debug)]
pub struct JourneyPaths {
    default_source: String,
}

impl JourneyPaths {
    pub fn new(default_source: impl Into<String>) -> Self {
        JourneyPaths { default_source: default_source.into() }
    }
}

/// What the report shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    Edges,
    Paths,
}

/// A validated call.
#[derive(Debug, Clone)]
pub struct PathsQuery {
    pub source: String,
    pub person: String,
    pub time: String,
    pub node: String,
    pub start: Option<String>,
    pub end: Option<String>,
    pub max_steps: usize,
    pub top: usize,
    pub collapse_repeats: bool,
    pub session_gap_micros: Option<i64>,
    pub exclude: Vec<String>,
    pub clean: Vec<(Regex, String)>,
    pub output: Output,
    /// The call, as given.
    pub call: Options,
}

impl PathsQuery {
    fn parse(mut o: Options, default_source: &str) -> Result<PathsQuery> {
        let call = o.clone();
        if !o.positional().is_empty() {
            return Err(ArgumentError::new(NAME, "1", "options must be named: journey_paths(max_steps => 5, ...)")
                .into_datafusion());
        }
        let bad = |arg: &str, msg: String| ArgumentError::new(NAME, arg, msg).into_datafusion();
        let source = o.string("source")?.unwrap_or_else(|| default_source.to_string());
        let person = o.person()?;
        let time = o.string("time")?.unwrap_or_else(|| "event_time".into());
        let node = o.string("node")?.unwrap_or_else(|| "event_name".into());
        let start = o.string("start")?;
        let end = o.string("end")?;
        let max_steps = o.int("max_steps", 2, MAX_STEPS)?.unwrap_or(5) as usize;
        if start.is_some() && end.is_some() && max_steps < 3 {
            return Err(bad("max_steps", "must be at least 3 with both a start and an end anchor".into()));
        }
        let top = o.int("top", 1, MAX_TOP)?.unwrap_or(10) as usize;
        let collapse_repeats = o.bool("collapse_repeats")?.unwrap_or(true);
        let session_gap_micros = o.duration_micros("session_gap")?;
        let exclude = o.strings("exclude")?.unwrap_or_default();
        let rules = o.strings("clean")?.unwrap_or_default();
        if rules.len() % 2 != 0 {
            return Err(bad("clean", "must hold pairs: ARRAY[pattern, replacement, ...]".into()));
        }
        let mut clean = vec![];
        for pair in rules.chunks(2) {
            let re = Regex::new(&pair[0]).map_err(|e| bad("clean", format!("has an invalid pattern: {e}")))?;
            clean.push((re, pair[1].clone()));
        }
        let output = match o.string("output")?.as_deref() {
            None | Some("edges") => Output::Edges,
            Some("paths") => Output::Paths,
            Some(other) => return Err(bad("output", format!("must be 'edges' or 'paths', got '{other}'"))),
        };
        o.finish(&DOC.option_names())?;
        for (arg, v) in [("source", &source), ("person", &person), ("time", &time), ("node", &node)] {
            if v.trim().is_empty() {
                return Err(bad(arg, "must not be empty".into()));
            }
        }
        Ok(PathsQuery {
            source,
            person,
            time,
            node,
            start,
            end,
            max_steps,
            top,
            collapse_repeats,
            session_gap_micros,
            exclude,
            clean,
            output,
            call,
        })
    }
}

impl TableFunctionImpl for JourneyPaths {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let query = PathsQuery::parse(Options::parse(NAME, &args)?, &self.default_source)?;
        Ok(Arc::new(ReportTable::new(query)))
    }
}

/// The report's stages made again from its call, over an input of columns `input`.
pub(crate) fn stages(call: Options, input: &Schema) -> Result<Arc<dyn ReportStages>> {
    Arc::new(PathsQuery::parse(call, "")?).stages(input)
}

impl ReportQuery for PathsQuery {
    fn function(&self) -> &'static str {
        NAME
    }

    fn source(&self) -> &str {
        &self.source
    }

    fn person(&self) -> Option<&str> {
        Some(&self.person)
    }

    /// The input query: one row per usable event.
    fn input_sql(&self) -> String {
        let from = source_relation(&self.source);
        format!(
            "SELECT p, t, n FROM (SELECT ({person}) AS p, ({time}) AS t, ({node}) AS n FROM {from}) \
             AS journey_input WHERE p IS NOT NULL AND t IS NOT NULL AND n IS NOT NULL",
            person = self.person,
            time = self.time,
            node = self.node,
        )
    }

    fn schema(&self) -> SchemaRef {
        let text = |n: &str, nullable| Field::new(n, DataType::Utf8, nullable);
        let int8 = |n: &str| Field::new(n, DataType::Int64, false);
        Arc::new(Schema::new(match self.output {
            Output::Edges => vec![
                Field::new("depth", DataType::Int32, false),
                text("source", false),
                text("target", false),
                int8("users"),
                int8("paths"),
                Field::new("avg_seconds", DataType::Float64, true),
                text("source_node", false),
                text("target_node", false),
            ],
            Output::Paths => vec![
                int8("rank"),
                text("path", false),
                Field::new("steps", DataType::Int32, false),
                int8("users"),
                int8("paths"),
            ],
        }))
    }

    /// Ties in time are ordered by label in the kernel (rare; sorting on the node too would make
    /// every row's sort key carry a string).
    fn stages(self: Arc<Self>, _input: &Schema) -> Result<Arc<dyn ReportStages>> {
        Ok(Arc::new(PathsKernel { query: self }))
    }
}

#[derive(Debug)]
struct PathsKernel {
    query: Arc<PathsQuery>,
}

/// Labels interned per partition; raw values cleaned once each.
#[derive(Debug, Default)]
struct Interner {
    labels: Labels,
    /// Raw node value -> cleaned label id, or `None` when excluded.
    raw: HashMap<String, Option<u32>>,
    /// The raw values' text, in bytes.
    raw_text: usize,
}

impl Interner {
    fn id(&mut self, label: &str) -> u32 {
        self.labels.id(label)
    }

    fn node(&mut self, raw: &str, q: &PathsQuery) -> Option<u32> {
        if let Some(&id) = self.raw.get(raw) {
            return id;
        }
        let id = if q.exclude.iter().any(|e| e == raw) {
            None
        } else {
            let mut label = raw.to_string();
            for (re, replacement) in &q.clean {
                label = re.replace_all(&label, replacement.as_str()).into_owned();
            }
            Some(self.id(&label))
        };
        self.raw_text += raw.len();
        self.raw.insert(raw.to_string(), id);
        id
    }
}

/// One partition's state: its people's paths, and the person being read.
#[derive(Debug)]
struct Partial {
    interner: Interner,
    rules: PathRules,
    current: Option<ArrayRef>,
    events: Vec<(i64, u32)>,
    /// Every person's paths, a person's paths next to each other.
    paths: Vec<Path>,
    /// What the paths' nodes and times hold, in bytes.
    path_bytes: usize,
    /// Where each person's paths end in `paths`.
    person_ends: Vec<usize>,
}

impl Partial {
    fn flush(&mut self) {
        if self.current.take().is_some() {
            // Equal times: order by label, so the order never depends on how rows arrived.
            if self.events.windows(2).any(|w| w[0].0 == w[1].0) {
                let labels = &self.interner.labels.labels;
                self.events.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| labels[a.1 as usize].cmp(&labels[b.1 as usize])));
            }
            let before = self.paths.len();
            person_paths(&self.events, &self.rules, &mut self.paths);
            if self.paths.len() > before {
                self.person_ends.push(self.paths.len());
                self.path_bytes += self.paths[before..].iter().map(path_bytes).sum::<usize>();
            }
        }
        self.events.clear();
    }
}

/// The bytes a path's nodes and times hold.
fn path_bytes(path: &Path) -> usize {
    vec_bytes(&path.nodes) + vec_bytes(&path.times)
}

/// The partial state's columns: one row per person, their paths one after the other (`nodes`
/// and `times` of every path, `lengths` and `terminals` of each).
fn state_schema() -> SchemaRef {
    let list = |t: DataType| DataType::List(state_item(t));
    Arc::new(Schema::new(vec![
        Field::new("nodes", list(DataType::Utf8), false),
        Field::new("times", list(DataType::Int64), false),
        Field::new("lengths", list(DataType::UInt32), false),
        Field::new("terminals", list(DataType::UInt8), false),
    ]))
}

const TERMINALS: [Terminal; 3] = [Terminal::DropOff, Terminal::End, Terminal::Cut];

impl ReportKernel for PathsKernel {
    type Partial = Partial;

    fn memory(&self, p: &Partial) -> usize {
        p.interner.labels.memory()
            + map_bytes(&p.interner.raw)
            + p.interner.raw_text
            + vec_bytes(&p.events)
            + vec_bytes(&p.paths)
            + p.path_bytes
            + vec_bytes(&p.person_ends)
    }

    fn name(&self) -> &'static str {
        NAME
    }

    fn call(&self) -> &Options {
        &self.query.call
    }

    fn keys(&self) -> &'static [&'static str] {
        &["p", "t"]
    }

    fn schema(&self) -> SchemaRef {
        self.query.schema()
    }

    fn state_schema(&self) -> SchemaRef {
        state_schema()
    }

    fn end_partition(&self, partial: &mut Partial) -> Result<()> {
        partial.flush();
        Ok(())
    }

    fn encode(&self, partial: Partial) -> Result<RecordBatch> {
        let mut nodes = ListBuilder::new(StringBuilder::new()).with_field(state_item(DataType::Utf8));
        let mut times = ListBuilder::new(Int64Builder::new()).with_field(state_item(DataType::Int64));
        let mut lengths = ListBuilder::new(UInt32Builder::new()).with_field(state_item(DataType::UInt32));
        let mut terminals = ListBuilder::new(UInt8Builder::new()).with_field(state_item(DataType::UInt8));
        let labels = &partial.interner.labels;
        let mut begin = 0;
        for &end in &partial.person_ends {
            for path in &partial.paths[begin..end] {
                for &n in &path.nodes {
                    nodes.values().append_value(labels.get(n));
                }
                times.values().append_slice(&path.times);
                lengths.values().append_value(path.nodes.len() as u32);
                let t = TERMINALS.iter().position(|&t| t == path.terminal).unwrap_or_default();
                terminals.values().append_value(t as u8);
            }
            nodes.append(true);
            times.append(true);
            lengths.append(true);
            terminals.append(true);
            begin = end;
        }
        let columns: Vec<ArrayRef> = vec![
            Arc::new(nodes.finish()),
            Arc::new(times.finish()),
            Arc::new(lengths.finish()),
            Arc::new(terminals.finish()),
        ];
        Ok(RecordBatch::try_new(state_schema(), columns)?)
    }

    fn decode(&self, rows: &RecordBatch) -> Result<Partial> {
        let mut partial = self.new_partial()?;
        let broken = || datafusion::error::DataFusionError::Internal(format!("{NAME}: a malformed partial state"));
        let (nodes, times) = (rows.column(0).as_list::<i32>(), rows.column(1).as_list::<i32>());
        let (lengths, terminals) = (rows.column(2).as_list::<i32>(), rows.column(3).as_list::<i32>());
        for i in 0..rows.num_rows() {
            let (n, t) = (nodes.value(i), times.value(i));
            let (n, t) = (n.as_string::<i32>(), t.as_primitive::<Int64Type>());
            let (l, e) = (lengths.value(i), terminals.value(i));
            let (l, e) = (l.as_primitive::<UInt32Type>(), e.as_primitive::<UInt8Type>());
            if n.len() != t.len()
                || l.len() != e.len()
                || l.values().iter().map(|&x| x as usize).sum::<usize>() != n.len()
            {
                return Err(broken());
            }
            let mut at = 0;
            for (&len, &terminal) in l.values().iter().zip(e.values()) {
                let range = at..at + len as usize;
                at = range.end;
                let path = Path {
                    nodes: range.clone().map(|j| partial.interner.id(n.value(j))).collect(),
                    times: t.values()[range].to_vec(),
                    terminal: *TERMINALS.get(terminal as usize).ok_or_else(broken)?,
                };
                partial.path_bytes += path_bytes(&path);
                partial.paths.push(path);
            }
            partial.person_ends.push(partial.paths.len());
        }
        Ok(partial)
    }

    fn new_partial(&self) -> Result<Partial> {
        let q = &self.query;
        let mut interner = Interner::default();
        let ellipsis = interner.id(ELLIPSIS);
        let start = q.start.as_deref().map(|s| interner.id(s));
        let end = q.end.as_deref().map(|s| interner.id(s));
        let rules = PathRules {
            session_gap_micros: q.session_gap_micros,
            collapse_repeats: q.collapse_repeats,
            start,
            end,
            max_steps: q.max_steps,
            ellipsis,
        };
        Ok(Partial {
            interner,
            rules,
            current: None,
            events: vec![],
            paths: vec![],
            path_bytes: 0,
            person_ends: vec![],
        })
    }

    fn update(&self, partial: &mut Partial, batch: &RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let person = batch.column(0);
        let times = input_times(NAME, batch.column(1))?;
        let node = cast(batch.column(2), &DataType::Utf8View)?;
        let node = node.as_string_view();
        let same = SortOptions::default();
        for (k, range) in partition(std::slice::from_ref(person))?.ranges().into_iter().enumerate() {
            // Only a batch's first person may continue the previous batch's last one.
            let continues = match &partial.current {
                Some(prev) if k == 0 => make_comparator(prev.as_ref(), person.as_ref(), same)?(0, range.start).is_eq(),
                _ => false,
            };
            if !continues {
                partial.flush();
                partial.current = Some(person.slice(range.start, 1));
            }
            for i in range {
                if let Some(id) = partial.interner.node(node.value(i), &self.query) {
                    partial.events.push((times[i], id));
                }
            }
        }
        Ok(())
    }

    fn finish(&self, mut partials: Vec<Partial>) -> Result<RecordBatch> {
        // Partition-local label ids become global ones; each person's paths stay together.
        let mut labels = Interner::default();
        let mut people: Vec<&[Path]> = vec![];
        for p in &mut partials {
            let global: Vec<u32> = p.interner.labels.labels.iter().map(|l| labels.id(l)).collect();
            for path in &mut p.paths {
                for n in &mut path.nodes {
                    *n = global[*n as usize];
                }
            }
        }
        for p in &partials {
            let mut begin = 0;
            for &end in &p.person_ends {
                people.push(&p.paths[begin..end]);
                begin = end;
            }
        }
        match self.query.output {
            Output::Edges => edges(&people, &mut labels, &self.query),
            Output::Paths => top_paths(&people, &labels, &self.query),
        }
    }
}

#[derive(Debug, Default, Clone)]
struct EdgeAcc {
    users: i64,
    paths: i64,
    seconds: f64,
    timed: i64,
}

/// The Sankey edges, `(other)` standing for the nodes beyond the top N of their depth.
fn edges(people: &[&[Path]], labels: &mut Interner, q: &PathsQuery) -> Result<RecordBatch> {
    // Users per (depth, node), each person once.
    let mut at_depth: HashMap<(usize, u32), i64> = HashMap::new();
    let mut seen: Vec<(usize, u32)> = vec![];
    for paths in people {
        seen.clear();
        for p in paths.iter() {
            seen.extend(p.nodes.iter().enumerate().map(|(d, &n)| (d, n)));
        }
        seen.sort_unstable();
        seen.dedup();
        for k in &seen {
            *at_depth.entry(*k).or_default() += 1;
        }
    }
    let mut by_depth: HashMap<usize, Vec<(i64, u32)>> = HashMap::new();
    for (&(d, n), &users) in &at_depth {
        by_depth.entry(d).or_default().push((users, n));
    }
    let mut kept: HashSet<(usize, u32)> = HashSet::new();
    for (d, mut nodes) in by_depth {
        nodes.sort_by(|a, b| {
            b.0.cmp(&a.0).then_with(|| labels.labels.labels[a.1 as usize].cmp(&labels.labels.labels[b.1 as usize]))
        });
        kept.extend(nodes.iter().take(q.top).map(|&(_, n)| (d, n)));
    }
    let (other, drop_off, end) = (labels.id(OTHER), labels.id(DROP_OFF), labels.id(END));
    let shown = |d: usize, n: u32| if kept.contains(&(d, n)) { n } else { other };
    let mut acc: HashMap<(usize, u32, u32), EdgeAcc> = HashMap::new();
    let mut person_edges: Vec<(usize, u32, u32)> = vec![];
    for paths in people {
        person_edges.clear();
        for p in paths.iter() {
            for d in 0..p.nodes.len() {
                let source = shown(d, p.nodes[d]);
                let (target, seconds) = if d + 1 < p.nodes.len() {
                    (shown(d + 1, p.nodes[d + 1]), Some((p.times[d + 1] - p.times[d]) as f64 / 1e6))
                } else if p.nodes.len() < q.max_steps {
                    (if p.terminal == Terminal::End { end } else { drop_off }, None)
                } else {
                    continue;
                };
                let e = acc.entry((d + 1, source, target)).or_default();
                e.paths += 1;
                if let Some(s) = seconds {
                    e.seconds += s;
                    e.timed += 1;
                }
                person_edges.push((d + 1, source, target));
            }
        }
        person_edges.sort_unstable();
        person_edges.dedup();
        for k in &person_edges {
            if let Some(e) = acc.get_mut(k) {
                e.users += 1;
            }
        }
    }
    let label = |n: u32| labels.labels.labels[n as usize].as_str();
    let mut rows: Vec<((usize, u32, u32), EdgeAcc)> = acc.into_iter().collect();
    rows.sort_by(|(ka, a), (kb, b)| {
        ka.0.cmp(&kb.0)
            .then(b.users.cmp(&a.users))
            .then(b.paths.cmp(&a.paths))
            .then_with(|| label(ka.1).cmp(label(kb.1)))
            .then_with(|| label(ka.2).cmp(label(kb.2)))
    });
    let mut depth = Int32Builder::new();
    let (mut source, mut target) = (StringBuilder::new(), StringBuilder::new());
    let (mut users, mut paths) = (Int64Builder::new(), Int64Builder::new());
    let mut avg = Float64Builder::new();
    let (mut source_node, mut target_node) = (StringBuilder::new(), StringBuilder::new());
    for ((d, s, t), e) in &rows {
        depth.append_value(*d as i32);
        source.append_value(label(*s));
        target.append_value(label(*t));
        users.append_value(e.users);
        paths.append_value(e.paths);
        avg.append_option((e.timed > 0).then(|| e.seconds / e.timed as f64));
        source_node.append_value(format!("{d}. {}", label(*s)));
        target_node.append_value(format!("{}. {}", d + 1, label(*t)));
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(depth.finish()),
        Arc::new(source.finish()),
        Arc::new(target.finish()),
        Arc::new(users.finish()),
        Arc::new(paths.finish()),
        Arc::new(avg.finish()),
        Arc::new(source_node.finish()),
        Arc::new(target_node.finish()),
    ];
    Ok(RecordBatch::try_new(q.schema(), columns)?)
}

/// The most frequent whole paths.
fn top_paths(people: &[&[Path]], labels: &Interner, q: &PathsQuery) -> Result<RecordBatch> {
    let mut acc: HashMap<&[u32], (i64, i64)> = HashMap::new();
    let mut mine: Vec<&[u32]> = vec![];
    for paths in people {
        mine.clear();
        for p in paths.iter() {
            acc.entry(&p.nodes).or_default().1 += 1;
            mine.push(&p.nodes);
        }
        mine.sort_unstable();
        mine.dedup();
        for k in &mine {
            if let Some(e) = acc.get_mut(k) {
                e.0 += 1;
            }
        }
    }
    let text = |nodes: &[u32]| {
        nodes.iter().map(|&n| labels.labels.labels[n as usize].as_str()).collect::<Vec<_>>().join(" > ")
    };
    let mut rows: Vec<(String, usize, i64, i64)> =
        acc.into_iter().map(|(nodes, (u, p))| (text(nodes), nodes.len(), u, p)).collect();
    rows.sort_by(|a, b| b.2.cmp(&a.2).then(b.3.cmp(&a.3)).then_with(|| a.0.cmp(&b.0)));
    rows.truncate(q.top);
    let mut rank = Int64Builder::new();
    let mut path = StringBuilder::new();
    let mut steps = Int32Builder::new();
    let (mut users, mut paths) = (Int64Builder::new(), Int64Builder::new());
    for (i, (p, n, u, c)) in rows.iter().enumerate() {
        rank.append_value(i as i64 + 1);
        path.append_value(p);
        steps.append_value(*n as i32);
        users.append_value(*u);
        paths.append_value(*c);
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(rank.finish()),
        Arc::new(path.finish()),
        Arc::new(steps.finish()),
        Arc::new(users.finish()),
        Arc::new(paths.finish()),
    ];
    Ok(RecordBatch::try_new(q.schema(), columns)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::logical_expr::Expr;
    use datafusion::prelude::SessionContext;

    /// A call with no arguments.
    fn query() -> Result<PathsQuery> {
        let ctx = SessionContext::new();
        let state = ctx.state();
        let exprs: Vec<Expr> = vec![];
        PathsQuery::parse(Options::parse(NAME, &TableFunctionArgs::new(&exprs, &state))?, "journey.events")
    }

    #[test]
    fn defaults() {
        let q = query().expect("defaults");
        assert_eq!((q.max_steps, q.top, q.collapse_repeats, q.output), (5, 10, true, Output::Edges));
        assert_eq!(q.source, "journey.events");
        assert!(q.input_sql().contains("FROM journey.events"), "{}", q.input_sql());
    }

    #[test]
    fn source_may_be_a_query() {
        let mut q = query().expect("defaults");
        q.source = " select * from events where x".into();
        assert!(q.input_sql().contains("FROM (select * from events where x) AS journey_source"));
    }
}
