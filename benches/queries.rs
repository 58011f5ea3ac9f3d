//! End-to-end benchmarks over generated Parquet: the demo generator's speed, the kernels
//! (sessionize, path building), and query shapes (scan and group by channel, per-person
//! aggregate, sessionize, journey_paths over events and over the journey model) through the same
//! `Session` the server uses.
//!
//! `cargo bench --bench queries` (set `JOURNEYDB_BENCH_EVENTS` to change the 1M default).
//! `scripts/bench_compare.py` runs the same queries in DuckDB on the same files.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use futures::StreamExt;
use journeydb::config::Config;
use journeydb::demo::{DemoOptions, Generator, events_schema, generate_to_dir};
use journeydb::session::{Engine, Output};
use std::hint::black_box;
use std::sync::Arc;

pub const QUERIES: [(&str, &str); 9] = [
    (
        "revenue_by_channel",
        "SELECT channel, count(*) AS events, sum(revenue) AS revenue FROM events GROUP BY channel ORDER BY channel",
    ),
    (
        "per_user",
        "SELECT user_id, count(*) AS events, min(event_time) AS first_seen, max(event_time) AS last_seen, \
         sum(revenue) AS revenue FROM events WHERE user_id IS NOT NULL GROUP BY user_id \
         ORDER BY revenue DESC NULLS LAST, user_id LIMIT 10",
    ),
    (
        "sessionize",
        "SELECT sum(s) FROM (SELECT max(session) AS s FROM (SELECT anonymous_id, \
         sessionize(event_time) OVER (PARTITION BY anonymous_id ORDER BY event_time) AS session \
         FROM events WHERE anonymous_id IS NOT NULL) GROUP BY anonymous_id)",
    ),
    (
        "paths_edges",
        "SELECT * FROM journey_paths(source => 'events', person => 'anonymous_id', max_steps => 5, top => 10)",
    ),
    ("paths_journey", "SELECT * FROM journey_paths(max_steps => 5, top => 10)"),
    (
        "window_funnel",
        "SELECT level, count(*) FROM (SELECT anonymous_id, window_funnel(INTERVAL '7 days', event_time, \
         event_name = 'page_view', event_name = 'email_click', event_name = 'form_submit') AS level \
         FROM events WHERE anonymous_id IS NOT NULL GROUP BY anonymous_id) f GROUP BY level",
    ),
    (
        "funnel",
        "SELECT * FROM funnel('page_view', 'email_click', 'form_submit', window => INTERVAL '7 days', \
         source => 'events', person => 'anonymous_id')",
    ),
    (
        "attribute_window",
        "SELECT channel, sum(s) FROM (SELECT channel, attribute('position_based') OVER (PARTITION BY anonymous_id \
         ORDER BY event_time, channel) AS s FROM events WHERE channel IS NOT NULL AND anonymous_id IS NOT NULL) x \
         GROUP BY channel",
    ),
    (
        "attribute_report",
        "SELECT * FROM attribute('position_based', 'markov', source => 'events', \
         person => 'coalesce(user_id, anonymous_id)', touch => 'channel IS NOT NULL', conversion => 'purchase')",
    ),
];

fn events() -> u64 {
    std::env::var("JOURNEYDB_BENCH_EVENTS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000)
}

fn bench_generator(c: &mut Criterion) {
    let mut g = c.benchmark_group("demo");
    let rows = 65_536;
    g.throughput(Throughput::Elements(rows as u64));
    let schema = events_schema();
    g.bench_function("generate_batch_64k", |b| {
        let mut generator = Generator::new(42, 0);
        b.iter(|| black_box(generator.next_batch(&schema, rows).expect("batch")))
    });
    g.finish();
}

fn bench_queries(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let n = events();
    generate_to_dir(dir.path(), &DemoOptions { events: n, seed: 42, events_per_file: 1_000_000, ..Default::default() })
        .expect("demo");
    let engine: Arc<Engine> = Engine::new(Config { data_dir: dir.path().into(), ..Config::default() }).expect("engine");
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let mut g = c.benchmark_group(format!("queries_{n}"));
    g.sample_size(10);
    g.throughput(Throughput::Elements(n));
    for (name, sql) in QUERIES {
        g.bench_function(name, |b| {
            b.to_async(&rt).iter(|| async {
                let mut session = engine.session("bench", "journeydb").expect("session");
                let mut rows = 0;
                for out in session.execute_sql(sql).await.expect("query") {
                    if let Output::Rows(mut s) = out {
                        while let Some(batch) = s.next().await {
                            rows += batch.expect("batch").num_rows();
                        }
                    }
                }
                black_box(rows)
            })
        });
    }
    g.finish();
}

fn bench_kernels(c: &mut Criterion) {
    use journeydb_udfs::window::sessionize::session_numbers;
    let mut g = c.benchmark_group("kernels");
    let n = 1_000_000usize;
    // Events a few minutes apart with a long pause every 20: realistic session lengths.
    let ts: Vec<Option<i64>> = (0..n as i64).map(|i| Some(i * 120_000_000 + (i / 20) * 3_600_000_000)).collect();
    g.throughput(Throughput::Elements(n as u64));
    g.bench_function("sessionize_1m", |b| {
        b.iter(|| black_box(session_numbers(&ts, 1_800_000_000, |_, _| false, |_| false).expect("ordered")))
    });
    // window_funnel: 50,000 people of 20 events meeting one of 4 steps, 7-day window.
    use journeydb_udfs::aggregate::window_funnel::{Modes, funnel_level};
    let person: Vec<(i64, u32)> = (0..20).map(|i| (i * 3_600_000_000, 1 << (i * 5 % 4))).collect();
    g.throughput(Throughput::Elements(50_000 * 20));
    g.bench_function("window_funnel_1m", |b| {
        b.iter(|| {
            let mut reached = 0;
            for _ in 0..50_000 {
                let mut events = person.clone();
                reached += funnel_level(black_box(&mut events), 4, 7 * 86_400_000_000, Modes::default());
            }
            black_box(reached)
        })
    });
    // Path building: 50,000 people of 20 events over 8 nodes, with repeats and a session gap.
    use journeydb_udfs::common::paths::{PathRules, person_paths};
    let rules = PathRules {
        session_gap_micros: Some(1_800_000_000),
        collapse_repeats: true,
        start: None,
        end: None,
        max_steps: 5,
        ellipsis: 0,
    };
    let person: Vec<(i64, u32)> =
        (0..20).map(|i| (i * 600_000_000 + (i / 7) * 7_200_000_000, (i * 7 % 8) as u32)).collect();
    g.throughput(Throughput::Elements(50_000 * 20));
    g.bench_function("person_paths_1m", |b| {
        b.iter(|| {
            let mut out = Vec::with_capacity(150_000);
            for _ in 0..50_000 {
                person_paths(black_box(&person), &rules, &mut out);
            }
            black_box(out.len())
        })
    });
    // The funnel chain: the same people, with the step times the report needs.
    use journeydb_udfs::common::funnel_chain::{ChainSpec, Chains, Event, Order};
    let spec =
        ChainSpec { steps: 4, window: 7 * 86_400_000_000, order: Order::Ordered, optional: 0, exclusions: vec![] };
    let person: Vec<Event> =
        (0..20).map(|i| Event { t: i * 3_600_000_000, steps: 1 << (i * 5 % 4), excl: 0 }).collect();
    g.throughput(Throughput::Elements(50_000 * 20));
    g.bench_function("funnel_chain_1m", |b| {
        let mut chains = Chains::default();
        b.iter(|| {
            let mut reached = 0;
            for _ in 0..50_000 {
                reached += chains.run(&spec, black_box(&person)).level;
            }
            black_box(reached)
        })
    });
    // Attribution shares: 100,000 journeys of 10 touches, position-based and time decay.
    use journeydb_udfs::common::attribution::{Model, POSITION_BASED, Touch, shares};
    let journey: Vec<Touch> =
        (0..10).map(|i| Touch { t: i * 86_400_000_000, direct: i % 3 == 0, milestones: 0 }).collect();
    g.throughput(Throughput::Elements(100_000 * 10));
    for (name, model) in
        [("attribute_u_1m", POSITION_BASED), ("attribute_time_decay_1m", Model::TimeDecay(604_800_000_000))]
    {
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut total = 0.0;
                for _ in 0..100_000 {
                    total += shares(model, black_box(&journey), 10 * 86_400_000_000).shares[0];
                }
                black_box(total)
            })
        });
    }
    // Markov: the chain of 20,000 random paths over 8 channels, and every removal effect.
    use journeydb_udfs::common::markov::{Chain, MarkovPath, removal_effects};
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move |n: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % n
    };
    let paths: Vec<MarkovPath> = (0..20_000)
        .map(|_| MarkovPath {
            states: (0..1 + next(8)).map(|_| next(8)).collect(),
            conversions: next(2),
            nulls: next(3),
        })
        .collect();
    let channels: Vec<_> = (0..8u64).map(|c| move |s: u64| s == c).collect();
    for order in [1usize, 2] {
        g.bench_function(format!("markov_order{order}_20k_paths"), |b| {
            b.iter(|| {
                let chain = Chain::build(black_box(&paths), order);
                black_box(removal_effects(&chain, &channels))
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench_generator, bench_kernels, bench_queries);
criterion_main!(benches);
