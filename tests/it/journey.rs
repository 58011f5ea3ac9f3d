//! The journey model's views on a hand-made events table whose time column is named `ts` and
//! mapped in `[journey.columns]`: identity stitching, sessions, conversions, touchpoints.

use crate::fixture::write_parquet;
use datafusion::arrow::array::{ArrayRef, Decimal128Array, StringArray, TimestampMicrosecondArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;
use futures::StreamExt;
use journeydb::config::Config;
use journeydb::session::{Engine, Output};
use std::sync::Arc;

const MIN: i64 = 60_000_000;
const DAY: i64 = 24 * 60 * MIN;

type Row = (Option<&'static str>, Option<&'static str>, i64, &'static str, Option<&'static str>, Option<i128>);

/// (user_id, anonymous_id, minutes or days, event_name, channel, revenue in cents)
fn rows() -> Vec<Row> {
    vec![
        (None, Some("a1"), 0, "page_view", Some("Organic Search"), None),
        (None, Some("a1"), 5 * MIN, "page_view", None, None),
        (Some("U1"), Some("a1"), 10 * MIN, "form_submit", None, None),
        (Some("U1"), None, 2 * DAY, "phone_call", Some("Direct"), None),
        (None, Some("a2"), 2 * DAY + 10 * MIN, "page_view", Some("Paid Search"), None),
        (Some("U1"), Some("a2"), 2 * DAY + 20 * MIN, "page_view", None, None),
        (Some("U1"), None, 2 * DAY + 25 * MIN, "purchase", None, Some(10050)),
        (None, Some("a3"), 0, "page_view", Some("Display"), None),
        (None, Some("a4"), 0, "page_view", None, None),
        (Some("U3"), Some("a4"), MIN, "page_view", None, None),
        (Some("U2"), Some("a4"), 2 * MIN, "page_view", None, None),
        (None, None, 0, "page_view", Some("Direct"), None),
    ]
}

fn write_hits(root: &std::path::Path) {
    let rows = rows();
    let schema = Arc::new(Schema::new(vec![
        Field::new("user_id", DataType::Utf8, true),
        Field::new("anonymous_id", DataType::Utf8, true),
        Field::new("ts", DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), false),
        Field::new("event_name", DataType::Utf8, false),
        Field::new("channel", DataType::Utf8, true),
        Field::new("revenue", DataType::Decimal128(12, 2), true),
    ]));
    let base = 1_735_689_600_000_000;
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(rows.iter().map(|r| r.0).collect::<Vec<_>>())),
        Arc::new(StringArray::from(rows.iter().map(|r| r.1).collect::<Vec<_>>())),
        Arc::new(
            TimestampMicrosecondArray::from(rows.iter().map(|r| base + r.2).collect::<Vec<_>>()).with_timezone("UTC"),
        ),
        Arc::new(StringArray::from(rows.iter().map(|r| r.3).collect::<Vec<_>>())),
        Arc::new(StringArray::from(rows.iter().map(|r| r.4).collect::<Vec<_>>())),
        Arc::new(
            Decimal128Array::from(rows.iter().map(|r| r.5).collect::<Vec<_>>())
                .with_precision_and_scale(12, 2)
                .expect("decimal"),
        ),
    ];
    let batch = RecordBatch::try_new(schema, columns).expect("batch");
    write_parquet(&root.join("hits").join("part-0.parquet"), &batch);
}

pub async fn query(engine: &Arc<Engine>, sql: &str) -> Vec<String> {
    let mut session = engine.session("journey", "journeydb").expect("session");
    let mut out = vec![];
    for o in session.execute_sql(sql).await.expect(sql) {
        if let Output::Rows(mut stream) = o {
            while let Some(batch) = stream.next().await {
                let batch = batch.expect("batch");
                for r in 0..batch.num_rows() {
                    let mut cells = vec![];
                    for c in batch.columns() {
                        let mut s = String::new();
                        if datafusion::arrow::array::Array::is_null(c.as_ref(), r) {
                            s.push_str("NULL");
                        } else {
                            journeydb::pg::encode::write_text(c, r, &mut s).expect("text");
                        }
                        cells.push(s);
                    }
                    out.push(cells.join(" "));
                }
            }
        }
    }
    out
}

fn engine(dir: &std::path::Path, partitions: usize) -> Arc<Engine> {
    let mut config = Config { data_dir: dir.to_path_buf(), target_partitions: partitions, ..Config::default() };
    config.journey.events = "hits".into();
    config.journey.columns.insert("event_time".into(), "ts".into());
    config.validate().expect("valid config");
    Engine::new(config).expect("engine")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stitching_sessions_and_conversions_on_a_mapped_table() {
    let dir = tempfile::tempdir().expect("tmp");
    write_hits(dir.path());
    for partitions in [1, 3] {
        let engine = engine(dir.path(), partitions);
        // a1's and a2's visits before sign-in belong to U1; a3 stays a cookie; a4 was seen with
        // U3 and U2 and its anonymous visit goes to the smaller id, U2, while its signed-in
        // visits keep their own user. The event with no id at all is left out.
        let events = query(
            &engine,
            "SELECT person_id, anonymous_id, event_name, session, is_touch, milestone, stage_reached \
             FROM journey.events ORDER BY event_time, person_id, event_name",
        )
        .await;
        assert_eq!(
            events,
            [
                "U1 a1 page_view 1 t NULL awareness",
                "U2 a4 page_view 1 f NULL awareness",
                "a3 a3 page_view 1 t NULL awareness",
                "U3 a4 page_view 1 f NULL awareness",
                "U2 a4 page_view 1 f NULL awareness",
                "U1 a1 page_view 1 f NULL awareness",
                "U1 a1 form_submit 1 f lead decision",
                "U1 NULL phone_call 2 t lead decision",
                "U1 a2 page_view 2 t NULL decision",
                "U1 a2 page_view 2 f NULL decision",
                "U1 NULL purchase 2 f closed_won customer",
            ]
        );
        assert_eq!(
            query(&engine, "SELECT * FROM journey.identities ORDER BY anonymous_id").await,
            ["a1 U1 1", "a2 U1 1", "a4 U2 2"]
        );
        assert_eq!(
            query(&engine, "SELECT person_id, conversion_number, value FROM journey.conversions").await,
            ["U1 1 100.50"]
        );
        assert_eq!(
            query(&engine, "SELECT person_id, channel FROM journey.touchpoints ORDER BY event_time, person_id").await,
            ["U1 Organic Search", "a3 Display", "U1 Direct", "U1 Paid Search"]
        );
        // The whole stitched journey of U1, as channel paths.
        assert_eq!(
            query(&engine, "SELECT path, users FROM journey_paths(node => 'channel', output => 'paths')").await,
            ["Display 1", "Organic Search > Direct > Paid Search 1"]
        );
    }
}

/// Random events (ties in time, repeats, several sessions), written twice in different row
/// orders and file splits: journey_paths and funnel (every order, optional steps, exclusions,
/// every breakdown attribution, whose ties in time are many here) give the same answer for both
/// copies, at 1 and 4 partitions and batch sizes 2 and 8192, and so does the attribute report
/// (every model, transforms, milestones); journey_paths conserves flow at
/// every node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn journey_paths_is_deterministic_and_conserves_flow_on_random_events() {
    reports_agree_on_random_events(|dir| {
        [(1, 8192), (4, 2)]
            .into_iter()
            .map(|(partitions, batch_size)| {
                let config = Config {
                    data_dir: dir.to_path_buf(),
                    target_partitions: partitions,
                    batch_size,
                    ..Config::default()
                };
                (format!("{partitions}/{batch_size}"), Engine::new(config).expect("engine"))
            })
            .collect()
    })
    .await;
}

/// The body of [`journey_paths_is_deterministic_and_conserves_flow_on_random_events`], over
/// the engines `engines` makes for a data directory (each with its label).
pub async fn reports_agree_on_random_events(engines: impl Fn(&std::path::Path) -> Vec<(String, Arc<Engine>)>) {
    let dir = tempfile::tempdir().expect("tmp");
    // A small xorshift: the test is reproducible without a dependency.
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move |n: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % n
    };
    let nodes = ["home", "pricing", "signup", "docs", "blog", "demo"];
    let mut rows: Vec<(String, i64, &str)> = (0..3000)
        .map(|_| {
            let person = format!("p{}", next(300));
            let minute = next(600) as i64; // many ties at this resolution
            (person, minute * MIN, nodes[next(nodes.len() as u64) as usize])
        })
        .collect();
    let schema = Arc::new(Schema::new(vec![
        Field::new("person", DataType::Utf8, false),
        Field::new("ts", DataType::Timestamp(TimeUnit::Microsecond, None), false),
        Field::new("node", DataType::Utf8, false),
    ]));
    let write = |table: &str, rows: &[(String, i64, &str)], files: usize| {
        for (i, chunk) in rows.chunks(rows.len().div_ceil(files)).enumerate() {
            let columns: Vec<ArrayRef> = vec![
                Arc::new(StringArray::from(chunk.iter().map(|r| r.0.as_str()).collect::<Vec<_>>())),
                Arc::new(TimestampMicrosecondArray::from(chunk.iter().map(|r| r.1).collect::<Vec<_>>())),
                Arc::new(StringArray::from(chunk.iter().map(|r| r.2).collect::<Vec<_>>())),
            ];
            let batch = RecordBatch::try_new(schema.clone(), columns).expect("batch");
            write_parquet(&dir.path().join(table).join(format!("part-{i}.parquet")), &batch);
        }
    };
    write("a", &rows, 1);
    rows.reverse();
    rows.rotate_left(1234);
    write("b", &rows, 5);
    let options = "person => 'person', time => 'ts', node => 'node', top => 3, max_steps => 6, \
                   session_gap => INTERVAL '90 minutes'";
    let mut answers = vec![];
    let engines = engines(dir.path());
    for (label, engine) in &engines {
        for table in ["a", "b"] {
            for output in ["edges", "paths"] {
                let sql = format!(
                    "SELECT * FROM journey_paths(source => '{table}', {options}, output => '{output}') ORDER BY 1, 2, 3"
                );
                answers.push((format!("{table} {output} {label}"), query(engine, &sql).await));
            }
            for (k, funnel) in FUNNELS.iter().enumerate() {
                let sql = format!(
                    "SELECT * FROM funnel({funnel}, source => '{table}', person => 'person', time => 'ts', \
                     event => 'node') ORDER BY 1, 2"
                );
                answers.push((format!("{table} funnel{k} {label}"), query(engine, &sql).await));
            }
            for (k, attribution) in ATTRIBUTIONS.iter().enumerate() {
                let sql = format!(
                    "SELECT * FROM attribute({attribution}, source => '{table}', person => 'person', time => 'ts', \
                     event => 'node', by => 'node', touch => 'node <> ''signup''', conversion => 'signup', \
                     value => 'length(node) * 1.25') ORDER BY 1, 2"
                );
                answers.push((format!("{table} attribute{k} {label}"), query(engine, &sql).await));
            }
        }
        // What enters a node below max_steps leaves it (or drops off), counted in paths.
        let unbalanced = query(
            engine,
            &format!(
                "SELECT count(*) FROM (SELECT depth, target, sum(paths) AS paths FROM journey_paths(source => 'a', \
                 {options}) GROUP BY depth, target) i LEFT JOIN (SELECT depth, source, sum(paths) AS paths \
                 FROM journey_paths(source => 'a', {options}) GROUP BY depth, source) o \
                 ON o.depth = i.depth + 1 AND o.source = i.target \
                 WHERE i.target NOT IN ('(drop-off)', '(end)') AND i.depth + 1 < 6 \
                 AND (o.paths IS NULL OR o.paths <> i.paths)"
            ),
        )
        .await;
        assert_eq!(unbalanced, ["0"]);
    }
    let edges: Vec<_> = answers.iter().filter(|(k, _)| k.contains("edges")).collect();
    let paths: Vec<_> = answers.iter().filter(|(k, _)| k.contains("paths")).collect();
    assert!(edges[0].1.len() > 20, "a real flow: {:?}", edges[0].1);
    assert!(edges[0].1.iter().any(|r| r.contains("(other)")), "top => 3 leaves an (other)");
    for (k, a) in &edges {
        assert_eq!(a, &edges[0].1, "{k} differs from {}", edges[0].0);
    }
    for (k, a) in &paths {
        assert_eq!(a, &paths[0].1, "{k} differs from {}", paths[0].0);
    }
    for a in 0..ATTRIBUTIONS.len() {
        let tag = format!("attribute{a} ");
        let runs: Vec<_> = answers.iter().filter(|(k, _)| k.contains(&tag)).collect();
        assert_eq!(runs.len(), 2 * engines.len());
        assert!(runs[0].1.len() >= 10, "{tag}{:?}", runs[0].1);
        for (k, r) in &runs {
            assert_eq!(r, &runs[0].1, "{k} differs from {}", runs[0].0);
        }
    }
    for f in 0..FUNNELS.len() {
        let tag = format!("funnel{f} ");
        let runs: Vec<_> = answers.iter().filter(|(k, _)| k.contains(&tag)).collect();
        assert_eq!(runs.len(), 2 * engines.len());
        // Real funnels: people get past the first step, with times.
        assert!(runs[0].1.iter().filter(|r| !r.contains("NULL")).count() >= 2, "{tag}{:?}", runs[0].1);
        for (k, a) in &runs {
            assert_eq!(a, &runs[0].1, "{k} differs from {}", runs[0].0);
        }
    }
}

/// The attribution reports of the determinism test (ties in time are many: the tie-breaks
/// decide first and last touches, milestones and paths).
const ATTRIBUTIONS: [&str; 2] = [
    "'all', lookback => INTERVAL '3 hours', direct => 'node = ''home''', \
     milestone => 'CASE node WHEN ''demo'' THEN ''lead'' WHEN ''docs'' THEN ''opportunity'' END'",
    "'markov', 'shapley_probability', 'linear', \"order\" => 2, lookback_steps => 4, \
     transforms => ARRAY['exposure', 'remove_if_last_and_not_all(home)'], since_previous_conversion => false",
];

/// The funnels of the determinism test.
const FUNNELS: [&str; 5] = [
    "'home', 'pricing', 'signup', 'demo', window => INTERVAL '3 hours', by => 'node'",
    "'home', 'pricing', '!blog', 'signup', 'demo', optional => ARRAY[2], window => INTERVAL '5 hours', \
     by => 'node', attribution => 'last_touch'",
    "'docs', 'signup', 'demo', \"order\" => 'strict', by => 'node', attribution => 'step_1'",
    "'docs', 'home', 'demo', \"order\" => 'any', window => INTERVAL '2 hours', by => 'node', attribution => 'step_2'",
    "'home', 'node IN (''docs'', ''blog'')', 'home', window => INTERVAL '1 hour'",
];

/// Issue 26: the demo's events with and without their `channel` column give the same journey
/// model and the same reports. The demo's touches carry a medium (Direct ones `(direct)` /
/// `(none)`), its other events none, and its CRM rows a `source` alone; so the touch rule must
/// find exactly the demo's touches, and `channel_group` their channels.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_without_its_channel_column_gives_the_same_journeys_and_reports() {
    let with = crate::fixture::data_dir();
    let without = without_channel(with.path());
    let queries = [
        "SELECT * FROM journey.events",
        "SELECT * FROM journey.touchpoints",
        "SELECT * FROM journey.conversions",
        "SELECT * FROM attribute('all')",
        "SELECT * FROM attribute('position_based', 'markov', 'shapley', by => 'session_channel')",
        "SELECT * FROM funnel('page_view', 'form_submit', 'opportunity', 'purchase', by => 'channel')",
        "SELECT * FROM journey_paths(node => 'channel')",
        "SELECT * FROM journey_paths(source => 'journey.touchpoints', node => 'channel', output => 'paths')",
    ];
    let (a, b) = (crate::fixture::engine(with.path(), 8192, 2), crate::fixture::engine(without.path(), 8192, 2));
    for sql in queries {
        let (mut x, mut y) = (query(&a, sql).await, query(&b, sql).await);
        x.sort();
        y.sort();
        assert!(x.len() >= 5, "{sql}: {x:?}");
        assert!(x == y, "{sql} differs without the channel column: {} vs {} rows", x.len(), y.len());
    }
    // Not every event became a touch, and no Unassigned channel appeared from CRM rows.
    let counts = query(
        &b,
        "SELECT (SELECT count(*) FROM journey.touchpoints) * 2 < (SELECT count(*) FROM journey.events), \
         (SELECT count(*) FROM journey.touchpoints WHERE channel = 'Unassigned' OR event_name = 'opportunity')",
    )
    .await;
    assert_eq!(counts, ["t 0"]);
}

/// A copy of data directory `with`'s `events` without their `channel` column (and the demo's
/// ad spend, deals and accounts beside them).
fn without_channel(with: &std::path::Path) -> tempfile::TempDir {
    use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let without = tempfile::tempdir().expect("tmp");
    let mut files = 0;
    for entry in std::fs::read_dir(with.join("events")).expect("events") {
        let path = entry.expect("entry").path();
        let reader = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&path).expect("open"))
            .expect("parquet")
            .build()
            .expect("reader");
        let batches: Vec<RecordBatch> = reader.map(|b| b.expect("batch")).collect();
        let batch = datafusion::arrow::compute::concat_batches(&batches[0].schema(), &batches).expect("concat");
        let keep: Vec<usize> =
            (0..batch.num_columns()).filter(|&i| batch.schema().field(i).name() != "channel").collect();
        let batch = batch.project(&keep).expect("project");
        write_parquet(&without.path().join("events").join(path.file_name().expect("name")), &batch);
        files += 1;
    }
    assert!(files >= 2, "the demo is several files");
    for table in ["ad_spend", "deals", "accounts"] {
        for entry in std::fs::read_dir(with.join(table)).expect(table) {
            let path = entry.expect("entry").path();
            let to = without.path().join(table);
            std::fs::create_dir_all(&to).expect("mkdir");
            std::fs::copy(&path, to.join(path.file_name().expect("name"))).expect("copy");
        }
    }
    without
}

/// Issue 20: the demo's journeys written as Segment's warehouse tables (`tracks`, `pages`,
/// `identifies`, `aliases`; some users renamed after their first purchase and joined back by an
/// alias) and read with `preset = "segment"` (and "rudderstack"), and as Snowplow's atomic
/// events read with `preset = "snowplow"`, answer every report as the canonical demo does
/// without its channel column (trackers have none: the channels come from the UTM context, as
/// there); so does GA4's export read with `preset = "ga4"` (a table per day, some days
/// intraday only, some both: the daily one counts). So do the CRM's deals and the accounts (Segment's `groups` there) read with
/// `[journey.crm]` and `[journey.accounts]`, with `unit => 'account'`.
#[test]
fn the_tracker_presets_answer_as_the_canonical_demo() {
    crate::fixture::on_server_runtime(tracker_presets_answer_as_the_canonical_demo());
}

async fn tracker_presets_answer_as_the_canonical_demo() {
    let canonical = crate::fixture::data_dir();
    let canonical = without_channel(canonical.path());
    let segment = tempfile::tempdir().expect("tmp");
    let opts = journeydb::demo::DemoOptions {
        events: crate::fixture::DEMO_EVENTS,
        seed: crate::fixture::DEMO_SEED,
        events_per_file: 8_000,
        shape: journeydb::demo::Shape::Segment,
    };
    journeydb::demo::generate_to_dir(segment.path(), &opts).expect("demo");
    let engine = |preset: Option<&str>, dir: &std::path::Path| {
        let mut config = Config { data_dir: dir.to_path_buf(), target_partitions: 2, ..Config::default() };
        config.journey.preset = preset.map(str::to_string);
        config.validate().expect("valid config");
        Engine::new(config).expect("engine")
    };
    let a = engine(None, canonical.path());
    let renamed = query(&engine(Some("segment"), segment.path()), "SELECT count(*) FROM aliases").await;
    assert!(renamed[0].parse::<u64>().expect("count") > 0, "some users are renamed: {renamed:?}");
    let queries = [
        "SELECT count(DISTINCT person_id), count(*) FROM journey.events",
        "SELECT count(*), sum(known_users) FROM journey.identities",
        "SELECT event_name, channel, count(*) FROM journey.touchpoints GROUP BY 1, 2",
        "SELECT count(*), sum(value) FROM journey.conversions",
        "SELECT * FROM attribute('all')",
        "SELECT * FROM attribute('position_based', 'markov', 'shapley', by => 'session_channel')",
        "SELECT * FROM attribute('linear', 'last_touch', by => 'campaign', spend => 'ad_spend')",
        "SELECT * FROM funnel('page_view', 'form_submit', 'opportunity', 'purchase', by => 'channel')",
        "SELECT * FROM journey_paths(node => 'channel')",
        "SELECT * FROM journey_paths(source => 'journey.touchpoints', node => 'channel', output => 'paths')",
    ];
    let snowplow = tempfile::tempdir().expect("tmp");
    let opts = journeydb::demo::DemoOptions { shape: journeydb::demo::Shape::Snowplow, ..opts };
    journeydb::demo::generate_to_dir(snowplow.path(), &opts).expect("demo");
    let closed_loop = |preset: Option<&str>, dir: &std::path::Path| {
        let mut config = Config { data_dir: dir.to_path_buf(), target_partitions: 2, ..Config::default() };
        config.journey.preset = preset.map(str::to_string);
        config.journey.crm = Some(Default::default());
        let accounts = if preset == Some("segment") { "groups" } else { "accounts" };
        config.journey.accounts =
            Some(journeydb::config::AccountsConfig { table: Some(accounts.into()), email_domain: false });
        config.validate().expect("valid config");
        Engine::new(config).expect("engine")
    };
    let crm_queries = [
        "SELECT count(*), sum(value), count(DISTINCT deal_id) FROM journey.conversions",
        "SELECT milestone, count(*) FROM journey.events GROUP BY 1",
        "SELECT count(*), count(DISTINCT account_id) FROM journey.accounts",
        "SELECT * FROM attribute('linear', 'markov', unit => 'account')",
        "SELECT * FROM attribute('first_touch', by => 'campaign', conversion => 'milestone = ''opportunity''', unit => 'account')",
        "SELECT * FROM funnel('form_submit', 'qualifiedtobuy', 'closedwon', unit => 'account', by => 'channel')",
    ];
    let a_crm = closed_loop(None, canonical.path());
    let ga4 = tempfile::tempdir().expect("tmp");
    let opts = journeydb::demo::DemoOptions { shape: journeydb::demo::Shape::Ga4, ..opts };
    journeydb::demo::generate_to_dir(ga4.path(), &opts).expect("demo");
    let tables = query(
        &engine(Some("ga4"), ga4.path()),
        "SELECT count(*) FROM information_schema.tables WHERE table_name LIKE 'events%intraday%'",
    )
    .await;
    assert!(tables[0].parse::<u64>().expect("count") > 3, "some days are intraday tables: {tables:?}");
    for (preset, dir) in [("segment", &segment), ("rudderstack", &segment), ("snowplow", &snowplow), ("ga4", &ga4)] {
        let b = engine(Some(preset), dir.path());
        for sql in queries {
            let (mut x, mut y) = (query(&a, sql).await, query(&b, sql).await);
            x.sort();
            y.sort();
            assert!(!x.is_empty(), "{sql}: {x:?}");
            assert!(x == y, "{preset}: {sql} differs from the canonical demo:\n{x:?}\n{y:?}");
        }
        if preset == "rudderstack" {
            continue;
        }
        // The cookbook, and its closed loop with the CRM and accounts, answer on each
        // tracker's demo as on the canonical one.
        crate::examples::answer_as_recorded_in_shape(&b, preset).await;
        crate::examples::closed_loop_as_recorded_in_shape(preset, dir.path()).await;
        let b = closed_loop(Some(preset), dir.path());
        for sql in crm_queries {
            let (mut x, mut y) = (query(&a_crm, sql).await, query(&b, sql).await);
            x.sort();
            y.sort();
            assert!(x.len() >= 2 || sql.contains("count("), "{sql}: {x:?}");
            assert!(x == y, "{preset} with the CRM and accounts: {sql} differs from the canonical demo:\n{x:?}\n{y:?}");
        }
    }
    // The trackers' own session ids: per cookie, after the same 30 minutes the model uses. A
    // session of the model's with one cookie's events is the tracker's session too; one with
    // several cookies (or events without one, as the CRM's and offline calls are) is split
    // where the cookie changes. Snowplow's and GA4's ids, written differently, agree.
    let sessions = "SELECT person_id, min(event_time), max(event_time), count(*) FROM journey.events \
                    GROUP BY person_id, session";
    let one_cookie = format!("{sessions} HAVING count(DISTINCT anonymous_id) = 1 AND count(anonymous_id) = count(*)");
    let by_gap = query(&a, sessions).await;
    let mut single = query(&a, &one_cookie).await;
    single.sort();
    assert!(single.len() * 10 > by_gap.len() * 9, "{} of {} sessions have one cookie", single.len(), by_gap.len());
    let session_queries = [
        sessions,
        "SELECT person_id, session, count(*), min(session_channel) FROM journey.events GROUP BY 1, 2",
        "SELECT * FROM funnel('page_view', 'form_submit', count => 'sessions', by => 'session_channel')",
    ];
    let mut answers = vec![];
    for (preset, dir) in [("snowplow", &snowplow), ("ga4", &ga4)] {
        let mut config = Config { data_dir: dir.path().to_path_buf(), target_partitions: 2, ..Config::default() };
        config.journey.preset = Some(preset.into());
        config.journey.sessions = journeydb::config::Sessions::Tracker;
        config.validate().expect("valid config");
        let b = Engine::new(config).expect("engine");
        let ids = query(&b, "SELECT count(*), count(session_id), count(DISTINCT session_id) FROM journey.events").await;
        let [n, with_id, distinct]: [u64; 3] =
            ids[0].split(' ').map(|v| v.parse().expect("n")).collect::<Vec<_>>().try_into().expect("3");
        assert!(with_id > n / 2 && distinct > 100, "{preset}: {ids:?}");
        let by_tracker = query(&b, sessions).await;
        assert!(by_tracker.len() > by_gap.len(), "{preset}: some sessions are split");
        let mut this = vec![];
        for sql in session_queries {
            let mut y = query(&b, sql).await;
            y.sort();
            this.push(y);
        }
        let missing: Vec<&String> = single.iter().filter(|s| this[0].binary_search(s).is_err()).take(5).collect();
        assert!(missing.is_empty(), "{preset}: one-cookie sessions not kept whole: {missing:?}");
        answers.push(this);
    }
    assert!(answers[0] == answers[1], "Snowplow's and GA4's session ids make the same sessions");
    // The won deals are the purchases that followed an opportunity: some, not all.
    let won = query(&a_crm, "SELECT count(*) FROM journey.conversions").await;
    let purchases = query(&a, "SELECT count(*) FROM journey.conversions").await;
    let (won, purchases): (u64, u64) = (won[0].parse().expect("n"), purchases[0].parse().expect("n"));
    assert!(won > 10 && won < purchases, "{won} won deals, {purchases} purchases");
}

/// Issue 26: each part of the touch rule on a hand-made events table without a `channel` column.
/// (event, source, medium, campaign, page_url, referrer, expected channel or NULL for no touch)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_touch_rule_without_a_channel_column() {
    type Case = (
        &'static str,
        Option<&'static str>,
        Option<&'static str>,
        Option<&'static str>,
        Option<&'static str>,
        Option<&'static str>,
        &'static str,
    );
    let cases: [Case; 13] = [
        // A UTM landing page, and a page view after it in the same session.
        (
            "page_view",
            Some("google"),
            Some("cpc"),
            Some("brand"),
            Some("https://example.com/lp?utm_source=google"),
            Some("https://www.google.com/"),
            "Paid Search",
        ),
        (
            "page_view",
            None,
            None,
            None,
            Some("https://example.com/pricing"),
            Some("https://example.com/lp?utm_source=google"),
            "NULL",
        ),
        // Internal referrers: the page's own host (www. or not), and a configured site host.
        (
            "page_view",
            None,
            None,
            None,
            Some("https://www.example.com/docs"),
            Some("https://example.com/pricing"),
            "NULL",
        ),
        ("form_submit", None, None, None, Some("/signup"), Some("https://app.example.com/trial"), "NULL"),
        // A relative referrer has no host: internal.
        ("page_view", None, None, None, Some("/blog"), Some("/"), "NULL"),
        // External referrers: a link and a search engine.
        (
            "page_view",
            None,
            None,
            None,
            Some("/blog/post"),
            Some("https://partner-blog.com/attribution-tools"),
            "Referral",
        ),
        ("page_view", None, None, None, Some("https://example.com/"), Some("https://www.bing.com/"), "Organic Search"),
        // An email click.
        (
            "email_click",
            Some("newsletter"),
            Some("email"),
            Some("weekly"),
            Some("https://example.com/blog"),
            None,
            "Email",
        ),
        // A CRM event with an original source and no medium is not a touch.
        ("opportunity", Some("crm"), None, None, None, None, "NULL"),
        ("opportunity", Some("Organic Search"), None, None, None, None, "NULL"),
        // A phone call recorded as Direct.
        ("phone_call", Some("(direct)"), Some("(none)"), None, None, None, "Direct"),
        // An auto-tagged ad click: a click id and nothing else.
        ("page_view", None, None, None, Some("https://example.com/?gclid=abc123"), None, "Paid Search"),
        // Nothing at all.
        ("page_view", None, None, None, Some("https://example.com/about"), None, "NULL"),
    ];
    let dir = tempfile::tempdir().expect("tmp");
    let schema = Arc::new(Schema::new(vec![
        Field::new("user_id", DataType::Utf8, true),
        Field::new("anonymous_id", DataType::Utf8, true),
        Field::new("event_time", DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), false),
        Field::new("event_name", DataType::Utf8, false),
        Field::new("source", DataType::Utf8, true),
        Field::new("medium", DataType::Utf8, true),
        Field::new("campaign", DataType::Utf8, true),
        Field::new("page_url", DataType::Utf8, true),
        Field::new("referrer", DataType::Utf8, true),
    ]));
    // One person per case, except the second case, which continues the first one's session.
    let people: Vec<String> = (0..cases.len()).map(|i| format!("p{:02}", if i == 1 { 0 } else { i })).collect();
    let times: Vec<i64> = (0..cases.len()).map(|i| 1_735_689_600_000_000 + i as i64 * MIN).collect();
    let text = |f: fn(&Case) -> Option<&'static str>| -> ArrayRef {
        Arc::new(StringArray::from(cases.iter().map(f).collect::<Vec<_>>()))
    };
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(people.iter().map(|p| Some(p.as_str())).collect::<Vec<_>>())),
        Arc::new(StringArray::from(vec![None::<&str>; cases.len()])),
        Arc::new(TimestampMicrosecondArray::from(times).with_timezone("UTC")),
        Arc::new(StringArray::from(cases.iter().map(|c| c.0).collect::<Vec<_>>())),
        text(|c| c.1),
        text(|c| c.2),
        text(|c| c.3),
        text(|c| c.4),
        text(|c| c.5),
    ];
    write_parquet(
        &dir.path().join("events").join("part-0.parquet"),
        &RecordBatch::try_new(schema, columns).expect("batch"),
    );
    let engine_with = |touch: Option<&str>| {
        let mut config = Config { data_dir: dir.path().to_path_buf(), ..Config::default() };
        config.journey.site_hosts = vec!["app.example.com".into()];
        config.journey.touch = touch.map(str::to_string);
        config.validate().expect("valid config");
        Engine::new(config).expect("engine")
    };
    let engine = engine_with(None);
    let got = query(
        &engine,
        "SELECT coalesce(channel, 'NULL'), is_touch, session_channel FROM journey.events ORDER BY event_time",
    )
    .await;
    let want: Vec<String> = cases
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let touch = if c.6 == "NULL" { "f" } else { "t" };
            // A session's later events inherit its first touch's channel; a session without one is Direct.
            let session = if i == 1 {
                cases[0].6
            } else if c.6 == "NULL" {
                "Direct"
            } else {
                c.6
            };
            format!("{} {touch} {session}", c.6)
        })
        .collect();
    assert_eq!(got, want);
    // `[journey] touch` replaces the rule; the channel of a touch is still its channel group.
    let engine = engine_with(Some("medium = 'email' OR event_name = 'opportunity'"));
    let got = query(&engine, "SELECT person_id, channel FROM journey.touchpoints ORDER BY event_time").await;
    // A source without a medium is no campaign data GA4 can group: Unassigned.
    assert_eq!(got, ["p07 Email", "p08 Unassigned", "p09 Unassigned"]);
}

/// `attribute(..., spend => 'ad_spend')` over the demo: each value's spend, ROAS and cost per
/// conversion are what DuckDB computes from the same Parquet files (the spend of the days of
/// the report's first and last touch, here those of a three-month window given as the source)
/// with the report's credited revenue and conversions; every value with spend has a row in
/// every model.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roas_is_what_duckdb_computes_from_the_same_files() {
    let dir = crate::fixture::data_dir();
    let engine = crate::fixture::engine(dir.path(), 8192, 2);
    let (since, until) = ("2025-03-01", "2025-06-01");
    let cents = |t: &str| -> i128 {
        let (whole, frac) = t.split_once('.').unwrap_or((t, "0"));
        let sign = if whole.starts_with('-') { -1 } else { 1 };
        let frac: i128 = format!("{frac:0<2}")[..2].parse().expect("cents");
        whole.parse::<i128>().expect("number") * 100 + sign * frac
    };
    for by in ["channel", "campaign"] {
        let args = vec![dir.path().display().to_string(), since.into(), until.into(), by.into()];
        let oracle = crate::fixture::run_script_lines(crate::fixture::python(), "spend_duckdb.py", args).await;
        let (range, spends) = oracle.split_first().expect("a range line");
        assert_eq!(range, "range 2025-03-01 2025-05-31", "the window's touches span it");
        let spends: std::collections::BTreeMap<String, i128> = spends
            .iter()
            .map(|l| l.split_once('\t').expect("value\tspend"))
            .map(|(v, s)| (v.to_string(), cents(s)))
            .collect();
        assert!(spends.len() >= 3, "{by}: {spends:?}");
        let sql = format!(
            "SELECT concat_ws('|', model, {by}, conversions, revenue, coalesce(CAST(spend AS TEXT), 'NULL'), \
             coalesce(CAST(roas AS TEXT), 'NULL'), coalesce(CAST(cost_per_conversion AS TEXT), 'NULL')) \
             FROM attribute('last_touch', 'linear', 'markov', by => '{by}', spend => 'ad_spend', \
             source => 'SELECT * FROM journey.events WHERE event_time >= ''{since}'' AND event_time < ''{until}''')"
        );
        let rows = query(&engine, &sql).await;
        let mut seen: std::collections::BTreeMap<String, Vec<String>> = Default::default();
        let mut earning = 0;
        for row in &rows {
            let cells: Vec<&str> = row.split('|').collect();
            let [model, value, conversions, revenue, spend, roas, cost] = cells[..] else { panic!("{row}") };
            seen.entry(model.to_string()).or_default().push(value.to_string());
            let expected = spends.get(value).copied();
            assert_eq!((spend != "NULL").then(|| cents(spend)), expected, "{by}: {row}");
            let (conversions, revenue): (f64, i128) = (conversions.parse().expect("conversions"), cents(revenue));
            match expected {
                Some(s) if s != 0 => {
                    let want = revenue as f64 / s as f64;
                    assert!((roas.parse::<f64>().expect("roas") - want).abs() < 1e-9, "{by}: {row}, ROAS {want}");
                    earning += usize::from(revenue > 0);
                }
                _ => assert_eq!(roas, "NULL", "{by}: {row}"),
            }
            match expected {
                Some(s) if conversions > 0.0 => {
                    let want = s as f64 / 100.0 / conversions;
                    let got: f64 = cost.parse().expect("cost");
                    assert!((got - want).abs() <= 0.005 + 1e-9, "{by}: {row}, cost per conversion {want}");
                }
                _ => assert_eq!(cost, "NULL", "{by}: {row}"),
            }
        }
        assert_eq!(seen.len(), 3, "{by}: three models");
        for (model, values) in &seen {
            for v in spends.keys() {
                assert!(values.contains(v), "{by}: {model} has no row for {v}, which has spend");
            }
        }
        assert!(earning >= 3, "{by}: too few values with spend earned anything to check ROAS");
    }
}

/// `identity_graph` against a brute-force closure on random identify and alias sets: every
/// user's person is the smallest user id reachable through aliases between users, every
/// anonymous id's the smallest of its users' persons (with how many persons it was seen
/// with); an alias from an id that is no user is a pair. The same at several partition counts,
/// batch sizes and row orders (the calls split over files, reversed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_identity_graph_is_the_brute_force_closure_on_random_calls() {
    use std::collections::{BTreeMap, BTreeSet};
    let dir = tempfile::tempdir().expect("tmp");
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move |n: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % n
    };
    // Few users and cookies, so sets merge, chains form and devices are shared.
    let pairs: Vec<(String, String)> =
        (0..400).map(|_| (format!("anon{}", next(300)), format!("u{}", next(250)))).collect();
    let aliases: Vec<(String, String)> = (0..120)
        .map(|_| {
            let previous = if next(4) == 0 { format!("anon{}", 300 + next(40)) } else { format!("u{}", next(250)) };
            (previous, format!("u{}", next(250)))
        })
        .collect();
    let write = |table: &str, columns: [&str; 2], rows: &[(String, String)], files: usize| {
        let schema = Arc::new(Schema::new(vec![
            Field::new(columns[0], DataType::Utf8, false),
            Field::new(columns[1], DataType::Utf8, false),
        ]));
        for (i, chunk) in rows.chunks(rows.len().div_ceil(files)).enumerate() {
            let arrays: Vec<ArrayRef> = vec![
                Arc::new(StringArray::from(chunk.iter().map(|r| r.0.as_str()).collect::<Vec<_>>())),
                Arc::new(StringArray::from(chunk.iter().map(|r| r.1.as_str()).collect::<Vec<_>>())),
            ];
            let batch = RecordBatch::try_new(schema.clone(), arrays).expect("batch");
            write_parquet(&dir.path().join(table).join(format!("part-{i}.parquet")), &batch);
        }
    };
    write("identifies", ["anonymous_id", "user_id"], &pairs, 1);
    write("aliases", ["previous_id", "user_id"], &aliases, 1);
    let (mut reversed, mut reversed_aliases) = (pairs.clone(), aliases.clone());
    reversed.reverse();
    reversed_aliases.reverse();
    write("identifies_b", ["anonymous_id", "user_id"], &reversed, 4);
    write("aliases_b", ["previous_id", "user_id"], &reversed_aliases, 3);

    // Brute force: the users reachable from each user through aliases between users.
    let users: BTreeSet<&str> =
        pairs.iter().map(|p| p.1.as_str()).chain(aliases.iter().map(|a| a.1.as_str())).collect();
    let mut links: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (previous, user) in &aliases {
        if users.contains(previous.as_str()) {
            links.entry(previous).or_default().push(user);
            links.entry(user).or_default().push(previous);
        }
    }
    let mut person: BTreeMap<&str, (&str, usize)> = BTreeMap::new();
    for &u in &users {
        let (mut reached, mut todo) = (BTreeSet::from([u]), vec![u]);
        while let Some(x) = todo.pop() {
            for &y in links.get(x).into_iter().flatten() {
                if reached.insert(y) {
                    todo.push(y);
                }
            }
        }
        person.insert(u, (reached.first().copied().expect("itself"), reached.len()));
    }
    let mut seen: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    let anon_pairs = pairs
        .iter()
        .map(|(a, u)| (a.as_str(), u.as_str()))
        .chain(aliases.iter().filter(|(p, _)| !users.contains(p.as_str())).map(|(p, u)| (p.as_str(), u.as_str())));
    for (a, u) in anon_pairs {
        seen.entry(a).or_default().insert(person[u].0);
    }
    let mut expected: Vec<String> =
        seen.iter().map(|(a, persons)| format!("{a} f {} {}", persons.first().expect("one"), persons.len())).collect();
    expected.extend(person.iter().map(|(u, (p, n))| format!("{u} t {p} {n}")));
    assert!(seen.values().any(|p| p.len() > 1), "some shared device");
    assert!(person.values().any(|p| p.1 > 2), "some chain of aliases");

    for (partitions, batch_size) in [(1, 8192), (3, 7)] {
        let engine = crate::fixture::engine(dir.path(), batch_size, partitions);
        for suffix in ["", "_b"] {
            let sql =
                format!("SELECT * FROM identity_graph(source => 'identifies{suffix}', aliases => 'aliases{suffix}')");
            let got = query(&engine, &sql).await;
            assert_eq!(got.len(), expected.len(), "{sql} at {partitions}/{batch_size}");
            assert_eq!(got, expected, "{sql} at {partitions}/{batch_size}");
        }
    }
}

/// Issue 20: the CRM closed loop and accounts on hand-made tables, every answer worked out by
/// hand. Events (with channels) of U1 (cookie a1 before sign-up), U2 (cookie a9) and U3; the
/// deals table in HubSpot's export names (`dealId`, `dealstage`, mapped), one row per stage
/// change; Segment-style `groups` rows by user or by cookie. On the server's runtime (its
/// threads' stacks: the model's SQL is deep to plan in a debug build).
#[test]
fn the_crm_closed_loop_and_accounts_on_a_hand_made_fixture() {
    crate::fixture::on_server_runtime(crm_closed_loop_and_accounts());
}

async fn crm_closed_loop_and_accounts() {
    use datafusion::arrow::array::Float64Array;
    let dir = tempfile::tempdir().expect("tmp");
    let base = 1_735_689_600_000_000;
    let utc = |v: Vec<i64>| Arc::new(TimestampMicrosecondArray::from(v).with_timezone("UTC")) as ArrayRef;
    let text = |v: Vec<Option<&str>>| Arc::new(StringArray::from(v)) as ArrayRef;
    // (user, cookie, time, event, channel, revenue in cents)
    let events: Vec<Row> = vec![
        (None, Some("a1"), 0, "page_view", Some("Paid Search"), None),
        (Some("U1"), Some("a1"), 10 * MIN, "form_submit", None, None),
        (None, Some("a9"), 0, "page_view", Some("Display"), None),
        (Some("U2"), Some("a9"), DAY, "form_submit", None, None),
        (Some("U1"), None, 2 * DAY, "email_click", Some("Email"), None),
        (Some("U2"), None, 5 * DAY, "page_view", Some("Paid Social"), None),
        (Some("U1"), None, 7 * DAY, "purchase", None, Some(9_900)),
        (Some("U1"), None, 7 * DAY + 12 * 60 * MIN, "page_view", Some("Organic Search"), None),
        (Some("U3"), None, DAY, "page_view", Some("Referral"), None),
    ];
    let schema = Arc::new(Schema::new(vec![
        Field::new("user_id", DataType::Utf8, true),
        Field::new("anonymous_id", DataType::Utf8, true),
        Field::new("event_time", DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), false),
        Field::new("event_name", DataType::Utf8, false),
        Field::new("channel", DataType::Utf8, true),
        Field::new("revenue", DataType::Decimal128(12, 2), true),
    ]));
    let columns: Vec<ArrayRef> = vec![
        text(events.iter().map(|r| r.0).collect()),
        text(events.iter().map(|r| r.1).collect()),
        utc(events.iter().map(|r| base + r.2).collect()),
        text(events.iter().map(|r| Some(r.3)).collect()),
        text(events.iter().map(|r| r.4).collect()),
        Arc::new(
            Decimal128Array::from(events.iter().map(|r| r.5).collect::<Vec<_>>())
                .with_precision_and_scale(12, 2)
                .expect("decimal"),
        ),
    ];
    let batch = RecordBatch::try_new(schema, columns).expect("events");
    write_parquet(&dir.path().join("events").join("part-0.parquet"), &batch);
    // (deal, person, stage, amount, day): D1 passes two opportunity stages and is won; D2 is
    // lost; D3 has no person; D4 is won without an opportunity stage, then won again (a
    // reopened deal: its second win is no conversion).
    type Deal = (&'static str, Option<&'static str>, &'static str, Option<f64>, i64);
    let deals: Vec<Deal> = vec![
        ("D1", Some("U1"), "appointmentscheduled", Some(5000.0), 3),
        ("D1", Some("U1"), "qualifiedtobuy", Some(5000.0), 4),
        ("D1", Some("U1"), "presentationscheduled", Some(5000.0), 5),
        ("D1", Some("U1"), "closedwon", Some(6000.0), 6),
        ("D2", Some("U2"), "qualifiedtobuy", Some(100.0), 2),
        ("D2", Some("U2"), "closedlost", Some(100.0), 3),
        ("D3", None, "qualifiedtobuy", Some(1.0), 2),
        ("D4", Some("U1"), "closedwon", Some(700.0), 8),
        ("D4", Some("U1"), "closedwon", Some(800.0), 9),
    ];
    let schema = Arc::new(Schema::new(vec![
        Field::new("dealId", DataType::Utf8, false),
        Field::new("person_id", DataType::Utf8, true),
        Field::new("dealstage", DataType::Utf8, false),
        Field::new("amount", DataType::Float64, true),
        Field::new("changed_at", DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), false),
    ]));
    let columns: Vec<ArrayRef> = vec![
        text(deals.iter().map(|d| Some(d.0)).collect()),
        text(deals.iter().map(|d| d.1).collect()),
        text(deals.iter().map(|d| Some(d.2)).collect()),
        Arc::new(Float64Array::from(deals.iter().map(|d| d.3).collect::<Vec<_>>())),
        utc(deals.iter().map(|d| base + d.4 * DAY).collect()),
    ];
    let batch = RecordBatch::try_new(schema, columns).expect("deals");
    write_parquet(&dir.path().join("crm_deals").join("part-0.parquet"), &batch);
    // U1 in acme; U2 in acme by its cookie and in zeta by its id (the smaller, acme, wins);
    // U3 in beta.
    let groups: [(&str, Option<&str>, Option<&str>); 4] = [
        ("acme", Some("U1"), None),
        ("acme", None, Some("a9")),
        ("zeta", Some("U2"), None),
        ("beta", Some("U3"), None),
    ];
    let schema = Arc::new(Schema::new(vec![
        Field::new("group_id", DataType::Utf8, false),
        Field::new("user_id", DataType::Utf8, true),
        Field::new("anonymous_id", DataType::Utf8, true),
    ]));
    let columns: Vec<ArrayRef> = vec![
        text(groups.iter().map(|g| Some(g.0)).collect()),
        text(groups.iter().map(|g| g.1).collect()),
        text(groups.iter().map(|g| g.2).collect()),
    ];
    let batch = RecordBatch::try_new(schema, columns).expect("groups");
    write_parquet(&dir.path().join("groups").join("part-0.parquet"), &batch);

    for partitions in [1, 3] {
        let mut config =
            Config { data_dir: dir.path().to_path_buf(), target_partitions: partitions, ..Config::default() };
        let mut crm = journeydb::config::CrmConfig { deals: "crm_deals".into(), ..Default::default() };
        crm.columns.insert("deal_id".into(), "dealId".into());
        crm.columns.insert("stage".into(), "dealstage".into());
        config.journey.crm = Some(crm);
        config.journey.accounts =
            Some(journeydb::config::AccountsConfig { table: Some("groups".into()), email_domain: false });
        config.validate().expect("valid config");
        let engine = Engine::new(config).expect("engine");
        // The deals' rows join the journeys: first opportunity stage and first win per deal are
        // the milestones; the web purchase is no conversion now (the CRM's wins are); D3 has
        // no person.
        assert_eq!(
            query(
                &engine,
                "SELECT person_id, account_id, event_name, deal_id, is_touch, is_conversion, milestone \
                 FROM journey.events WHERE deal_id IS NOT NULL OR event_name IN ('purchase', 'form_submit') \
                 ORDER BY event_time, person_id"
            )
            .await,
            [
                "U1 acme form_submit NULL f f lead",
                "U2 acme form_submit NULL f f lead",
                "U2 acme qualifiedtobuy D2 f f opportunity",
                "U1 acme appointmentscheduled D1 f f NULL",
                "U2 acme closedlost D2 f f NULL",
                "U1 acme qualifiedtobuy D1 f f opportunity",
                "U1 acme presentationscheduled D1 f f NULL",
                "U1 acme closedwon D1 f t closed_won",
                "U1 acme purchase NULL f f NULL",
                "U1 acme closedwon D4 f t closed_won",
                "U1 acme closedwon D4 f f NULL",
            ]
        );
        assert_eq!(
            query(&engine, "SELECT person_id, deal_id, conversion_number, value FROM journey.conversions ORDER BY 3")
                .await,
            ["U1 D1 1 6000.00", "U1 D4 2 700.00"]
        );
        assert_eq!(
            query(&engine, "SELECT * FROM journey.accounts ORDER BY person_id").await,
            ["U1 acme", "U2 acme", "U3 beta"]
        );
        // Won revenue to the touches before each win (since the previous one); opportunities
        // to the first touch of each person's journey.
        assert_eq!(
            query(&engine, "SELECT channel, conversions, revenue FROM attribute('last_touch') ORDER BY channel").await,
            ["Email 1.000000 6000.00", "Organic Search 1.000000 700.00"]
        );
        assert_eq!(
            query(&engine, "SELECT channel, conversions, revenue FROM attribute('linear') ORDER BY channel").await,
            ["Email 0.500000 3000.00", "Organic Search 1.000000 700.00", "Paid Search 0.500000 3000.00"]
        );
        assert_eq!(
            query(
                &engine,
                "SELECT channel, conversions FROM attribute('first_touch', conversion => 'milestone = ''opportunity''') \
                 ORDER BY channel"
            )
            .await,
            ["Display 1.000000", "Paid Search 1.000000"]
        );
        // As accounts: acme's journey merges U1's and U2's touches, so U2's Paid Social is
        // the last touch before D1's win.
        assert_eq!(
            query(
                &engine,
                "SELECT channel, conversions, revenue FROM attribute('last_touch', unit => 'account') ORDER BY 1"
            )
            .await,
            ["Organic Search 1.000000 700.00", "Paid Social 1.000000 6000.00"]
        );
        assert_eq!(
            query(
                &engine,
                "SELECT step, users FROM funnel('form_submit', 'qualifiedtobuy', 'closedwon') ORDER BY step"
            )
            .await,
            ["1 2", "2 2", "3 1"]
        );
        assert_eq!(
            query(
                &engine,
                "SELECT step, users FROM funnel('form_submit', 'qualifiedtobuy', 'closedwon', unit => 'account') \
                 ORDER BY step"
            )
            .await,
            ["1 1", "2 1", "3 1"]
        );
        assert_eq!(
            query(
                &engine,
                "SELECT path, users FROM journey_paths(source => 'journey.touchpoints', node => 'channel', \
                 output => 'paths', unit => 'account') ORDER BY path"
            )
            .await,
            ["Display > Paid Search > Email > Paid Social > Organic Search 1", "Referral 1"]
        );
        let mut session = engine.session("journey", "journeydb").expect("session");
        let err = match session.execute_sql("SELECT * FROM attribute('linear', unit => 'team')").await {
            Ok(_) => panic!("a bad unit is an error"),
            Err(e) => e.to_string(),
        };
        assert!(err.contains("must be 'person' or 'account'"), "{err}");
    }
}

/// Issue 20: GA4's export on hand-made tables: nested event parameters of each value kind, the
/// campaign from `collected_traffic_source` or else the parameters, the revenue from
/// `ecommerce`, and a day's stale intraday table left out once its daily table is there (the
/// next day's intraday one is read).
#[test]
fn the_ga4_preset_reads_hand_made_nested_tables() {
    crate::fixture::on_server_runtime(ga4_hand_made());
}

/// A GA4 event: (time in µs, event, user, cookie, params (key, string, int, double),
/// collected (source, medium), purchase revenue).
type Ga4Row = (
    i64,
    &'static str,
    Option<&'static str>,
    &'static str,
    Vec<(&'static str, Option<&'static str>, Option<i64>, Option<f64>)>,
    Option<(&'static str, &'static str)>,
    Option<f64>,
);

fn ga4_batch(rows: &[Ga4Row]) -> RecordBatch {
    use datafusion::arrow::array::{Float64Builder, Int64Array, StringBuilder, StructBuilder};
    let mut params = journeydb_udfs::scalar::ga4_param::ParamsBuilder::new();
    let traffic_fields: datafusion::arrow::datatypes::Fields =
        vec![Field::new("manual_source", DataType::Utf8, true), Field::new("manual_medium", DataType::Utf8, true)]
            .into();
    let mut traffic = StructBuilder::from_fields(traffic_fields.clone(), 0);
    let ecommerce_fields: datafusion::arrow::datatypes::Fields =
        vec![Field::new("purchase_revenue", DataType::Float64, true)].into();
    let mut ecommerce = StructBuilder::from_fields(ecommerce_fields.clone(), 0);
    for (_, _, _, _, entries, collected, revenue) in rows {
        for (key, s, n, d) in entries {
            params.param(key, *s, *n, *d);
        }
        params.row(true);
        traffic.field_builder::<StringBuilder>(0).expect("source").append_option(collected.map(|c| c.0));
        traffic.field_builder::<StringBuilder>(1).expect("medium").append_option(collected.map(|c| c.1));
        traffic.append(collected.is_some());
        ecommerce.field_builder::<Float64Builder>(0).expect("revenue").append_option(*revenue);
        ecommerce.append(revenue.is_some());
    }
    let schema = Arc::new(Schema::new(vec![
        Field::new("event_timestamp", DataType::Int64, false),
        Field::new("event_name", DataType::Utf8, false),
        Field::new("user_id", DataType::Utf8, true),
        Field::new("user_pseudo_id", DataType::Utf8, true),
        Field::new("event_params", journeydb_udfs::scalar::ga4_param::params_type(), true),
        Field::new("collected_traffic_source", DataType::Struct(traffic_fields), true),
        Field::new("ecommerce", DataType::Struct(ecommerce_fields), true),
    ]));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(rows.iter().map(|r| r.0).collect::<Vec<_>>())),
        Arc::new(StringArray::from(rows.iter().map(|r| Some(r.1)).collect::<Vec<_>>())),
        Arc::new(StringArray::from(rows.iter().map(|r| r.2).collect::<Vec<_>>())),
        Arc::new(StringArray::from(rows.iter().map(|r| Some(r.3)).collect::<Vec<_>>())),
        params.finish().expect("params"),
        Arc::new(traffic.finish()),
        Arc::new(ecommerce.finish()),
    ];
    RecordBatch::try_new(schema, columns).expect("ga4 batch")
}

async fn ga4_hand_made() {
    let dir = tempfile::tempdir().expect("tmp");
    let at = |h: i64, m: i64| 1_735_689_600_000_000 + h * 60 * MIN + m * MIN;
    let day1: Vec<Ga4Row> = vec![
        (
            at(10, 0),
            "page_view",
            None,
            "p1",
            vec![
                ("page_location", Some("https://shop.example/a?gclid=1"), None, None),
                ("ga_session_id", None, Some(1_735_725_600), None),
                ("source", Some("google"), None, None),
            ],
            None,
            None,
        ),
        (
            at(10, 5),
            "purchase",
            Some("U9"),
            "p1",
            vec![("page_location", Some("https://shop.example/done"), None, None), ("value", None, None, Some(12.5))],
            Some(("newsletter", "email")),
            Some(12.5),
        ),
    ];
    let day2: Vec<Ga4Row> = vec![(
        at(33, 0),
        "page_view",
        None,
        "p1",
        vec![("page_referrer", Some("https://news.example/story"), None, None)],
        None,
        None,
    )];
    for (table, rows) in
        [("events_20250101", &day1), ("events_intraday_20250101", &day1), ("events_intraday_20250102", &day2)]
    {
        write_parquet(&dir.path().join(table).join("part-0.parquet"), &ga4_batch(rows));
    }
    let mut config = Config { data_dir: dir.path().to_path_buf(), target_partitions: 2, ..Config::default() };
    config.journey.preset = Some("ga4".into());
    config.validate().expect("valid config");
    let engine = Engine::new(config).expect("engine");
    assert_eq!(
        query(
            &engine,
            "SELECT ga4_param(event_params, 'ga_session_id'), ga4_param(event_params, 'value'), \
             ga4_param(event_params, 'page_location') FROM events_20250101 ORDER BY event_timestamp"
        )
        .await,
        ["1735725600 NULL https://shop.example/a?gclid=1", "NULL 12.5 https://shop.example/done"]
    );
    assert_eq!(
        query(
            &engine,
            "SELECT person_id, event_name, event_time, source, medium, page_url, referrer, revenue, channel, is_touch, \
             is_conversion FROM journey.events ORDER BY event_time"
        )
        .await,
        [
            "U9 page_view 2025-01-01 10:00:00+00 google NULL https://shop.example/a?gclid=1 NULL NULL Organic Search t f",
            "U9 purchase 2025-01-01 10:05:00+00 newsletter email https://shop.example/done NULL 12.50 Email t t",
            "U9 page_view 2025-01-02 09:00:00+00 NULL NULL NULL https://news.example/story NULL Referral t f",
        ]
    );
}

/// Issue 20: `sessions = "tracker"` numbers a person's sessions by the tracker's own ids
/// (Snowplow's `domain_sessionid` here) in the order they start, not by inactivity; events
/// without an id keep the inactivity sessions. Written in two files in opposite orders.
#[test]
fn tracker_sessions_on_a_hand_made_snowplow_table() {
    crate::fixture::on_server_runtime(tracker_sessions());
}

async fn tracker_sessions() {
    // (minutes, event, cookie, user, domain_sessionid, mkt_source, mkt_medium)
    type Hit = (
        i64,
        &'static str,
        Option<&'static str>,
        Option<&'static str>,
        Option<&'static str>,
        Option<&'static str>,
        Option<&'static str>,
    );
    let hits: [Hit; 8] = [
        (0, "page_view", Some("c1"), None, Some("A"), Some("google"), Some("cpc")),
        // 40 minutes later, the same tracker session: a gap would split it.
        (40, "page_view", Some("c1"), None, Some("A"), None, None),
        // A minute later, a new tracker session: a gap would not.
        (41, "form_submit", Some("c1"), Some("U1"), Some("B"), None, None),
        // The person's other cookie.
        (42, "page_view", Some("c2"), Some("U1"), Some("C"), None, None),
        // Server-side events without a session id: sessions by inactivity.
        (50, "purchase", None, Some("U1"), None, None, None),
        (240, "phone_call", None, Some("U1"), None, None, None),
        // Two sessions starting together: in the order of their ids.
        (300, "page_view", Some("c2"), None, Some("E"), None, None),
        (300, "page_view", Some("c2"), None, Some("D"), None, None),
    ];
    let schema = Arc::new(Schema::new(vec![
        Field::new("event_id", DataType::Utf8, false),
        Field::new("event_name", DataType::Utf8, false),
        Field::new("domain_userid", DataType::Utf8, true),
        Field::new("user_id", DataType::Utf8, true),
        Field::new("derived_tstamp", DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), false),
        Field::new("domain_sessionid", DataType::Utf8, true),
        Field::new("mkt_source", DataType::Utf8, true),
        Field::new("mkt_medium", DataType::Utf8, true),
    ]));
    let batch = |hits: &[Hit]| {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(
                hits.iter().map(|h| format!("e{}-{}", h.0, h.4.unwrap_or("-"))).collect::<Vec<_>>(),
            )),
            Arc::new(StringArray::from(hits.iter().map(|h| h.1).collect::<Vec<_>>())),
            Arc::new(StringArray::from(hits.iter().map(|h| h.2).collect::<Vec<_>>())),
            Arc::new(StringArray::from(hits.iter().map(|h| h.3).collect::<Vec<_>>())),
            Arc::new(
                TimestampMicrosecondArray::from(
                    hits.iter().map(|h| 1_735_689_600_000_000 + h.0 * MIN).collect::<Vec<_>>(),
                )
                .with_timezone("UTC"),
            ),
            Arc::new(StringArray::from(hits.iter().map(|h| h.4).collect::<Vec<_>>())),
            Arc::new(StringArray::from(hits.iter().map(|h| h.5).collect::<Vec<_>>())),
            Arc::new(StringArray::from(hits.iter().map(|h| h.6).collect::<Vec<_>>())),
        ];
        RecordBatch::try_new(schema.clone(), columns).expect("batch")
    };
    let dir = tempfile::tempdir().expect("tmp");
    let mut reversed = hits.to_vec();
    reversed.reverse();
    write_parquet(&dir.path().join("events").join("part-0.parquet"), &batch(&reversed[..3]));
    write_parquet(&dir.path().join("events").join("part-1.parquet"), &batch(&reversed[3..]));
    let engine = |preset: &str, sessions: journeydb::config::Sessions| {
        let mut config = Config { data_dir: dir.path().to_path_buf(), target_partitions: 3, ..Config::default() };
        config.journey.preset = Some(preset.into());
        config.journey.sessions = sessions;
        config.validate().expect("valid config");
        Engine::new(config).expect("engine")
    };
    let sql = "SELECT event_name, session_id, session, session_channel FROM journey.events \
               ORDER BY event_time, session_id";
    let by_gap = query(&engine("snowplow", journeydb::config::Sessions::Gap), sql).await;
    let by_tracker = query(&engine("snowplow", journeydb::config::Sessions::Tracker), sql).await;
    assert_eq!(
        by_gap,
        [
            "page_view A 1 Paid Search",
            "page_view A 2 Direct",
            "form_submit B 2 Direct",
            "page_view C 2 Direct",
            "purchase NULL 2 Direct",
            "phone_call NULL 3 Direct",
            "page_view D 4 Direct",
            "page_view E 4 Direct",
        ]
    );
    assert_eq!(
        by_tracker,
        [
            "page_view A 1 Paid Search",
            "page_view A 1 Paid Search",
            "form_submit B 2 Direct",
            "page_view C 3 Direct",
            "purchase NULL 4 Direct",
            "phone_call NULL 5 Direct",
            "page_view D 6 Direct",
            "page_view E 7 Direct",
        ]
    );
    // Sessions count as the tracker's in the reports.
    let funnel = "SELECT step, sessions FROM funnel('page_view', 'form_submit', count => 'sessions') ORDER BY step";
    assert_eq!(query(&engine("snowplow", journeydb::config::Sessions::Gap), funnel).await, ["1 3", "2 1"]);
    assert_eq!(query(&engine("snowplow", journeydb::config::Sessions::Tracker), funnel).await, ["1 4", "2 0"]);
    // The same table read without the preset: the session id is a mapped canonical column, and
    // without one the option is an error that says what is missing.
    let canonical = |session_id: Option<&str>| {
        let mut config = Config { data_dir: dir.path().to_path_buf(), target_partitions: 2, ..Config::default() };
        config.journey.sessions = journeydb::config::Sessions::Tracker;
        for (canonical, column) in [
            ("anonymous_id", Some("domain_userid")),
            ("event_time", Some("derived_tstamp")),
            ("session_id", session_id),
        ] {
            if let Some(c) = column {
                config.journey.columns.insert(canonical.into(), c.into());
            }
        }
        for (canonical, column) in [("source", "mkt_source"), ("medium", "mkt_medium")] {
            config.journey.columns.insert(canonical.into(), column.into());
        }
        config.validate().expect("valid config");
        Engine::new(config).expect("engine")
    };
    assert_eq!(query(&canonical(Some("domain_sessionid")), sql).await, by_tracker);
    let mut session = canonical(None).session("journey", "journeydb").expect("session");
    let err = match session.execute_sql("SELECT count(*) FROM journey.events").await {
        Ok(_) => panic!("tracker sessions without session ids are an error"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("sessions = \"tracker\"") && err.contains("canonical \"session_id\""), "{err}");
    // Reports by account without [journey.accounts] say where accounts come from.
    let engine = engine("snowplow", journeydb::config::Sessions::Gap);
    for report in ["attribute('linear', unit => 'account')", "funnel('page_view', 'purchase', unit => 'account')"] {
        let mut session = engine.session("journey", "journeydb").expect("session");
        let err = match session.execute_sql(&format!("SELECT * FROM {report}")).await {
            Ok(_) => panic!("{report} without accounts is an error"),
            Err(e) => e,
        };
        let pg = journeydb::error::to_pg_error(&err);
        assert_eq!(pg.code.code(), "22023", "{report}: {err}");
        assert!(pg.message.contains("[journey.accounts]") && pg.message.contains("argument \"unit\""), "{pg:?}");
    }
}
