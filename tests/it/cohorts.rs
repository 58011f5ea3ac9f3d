//! The cohort reports (`retention`, `lifecycle`, `stickiness`) against their definitions written
//! as plain SQL (`date_trunc` in the session's time zone, window functions, joins) over the same
//! random events, in a session in New York's zone so that days end at New York's midnight. The
//! reports must also give the same rows with three-row batches over four partitions.
//!
//! January has no clock change, so in the SQL a day later is 86 400 seconds later.

use crate::fixture::write_parquet;
use crate::journey::query;
use datafusion::arrow::array::{ArrayRef, StringArray, TimestampMicrosecondArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;
use journeydb::config::Config;
use journeydb::session::Engine;
use std::sync::Arc;

/// 400 people with 1 to 14 events each at random minutes of 1-20 January 2025 (UTC): signups,
/// visits, purchases, pricing and docs pages; rows in random order.
fn events() -> RecordBatch {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move |n: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % n
    };
    let mut rows: Vec<(String, i64, &str)> = vec![];
    for p in 0..400 {
        for _ in 0..1 + next(14) {
            let minute = next(20 * 24 * 60) as i64;
            let name = ["signup", "visit", "visit", "visit", "purchase", "pricing", "docs"][next(7) as usize];
            rows.push((format!("p{p}"), 1_735_689_600_000_000 + minute * 60_000_000, name));
        }
    }
    for i in (1..rows.len()).rev() {
        rows.swap(i, next(i as u64 + 1) as usize);
    }
    let schema = Arc::new(Schema::new(vec![
        Field::new("person_id", DataType::Utf8, false),
        Field::new("event_time", DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), false),
        Field::new("event_name", DataType::Utf8, false),
    ]));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(rows.iter().map(|r| r.0.as_str()).collect::<Vec<_>>())),
        Arc::new(TimestampMicrosecondArray::from(rows.iter().map(|r| r.1).collect::<Vec<_>>()).with_timezone("UTC")),
        Arc::new(StringArray::from(rows.iter().map(|r| r.2).collect::<Vec<_>>())),
    ];
    RecordBatch::try_new(schema, columns).expect("batch")
}

/// Seconds since the epoch of a timestamptz expression.
fn epoch(e: &str) -> String {
    format!("CAST(date_part('epoch', {e}) AS BIGINT)")
}

/// Each (report, definition) pair: the same rows, sorted.
fn cases() -> Vec<(&'static str, String, String)> {
    let day = |e: &str| format!("date_trunc('day', {e})");
    vec![
        (
            "retention: cohort sizes",
            "SELECT cohort, cohort_size FROM retention(start => 'signup', return => 'visit', periods => 30, source => 'ev') \
             WHERE period = 0"
                .into(),
            format!(
                "SELECT {}, count(*) FROM (SELECT person_id, min(event_time) AS t0 FROM ev WHERE event_name = 'signup' \
                 GROUP BY person_id) c GROUP BY 1",
                day("t0")
            ),
        ),
        (
            "retention: returns on day k",
            "SELECT cohort, period, retained FROM retention(start => 'signup', return => 'visit', periods => 30, \
             source => 'ev') WHERE period > 0 AND retained > 0"
                .into(),
            format!(
                "SELECT cohort, CAST(({} - {}) / 86400 AS INT) AS k, count(*) FROM (SELECT DISTINCT c.person_id, \
                 {} AS cohort, {} AS day FROM (SELECT person_id, min(event_time) AS t0 FROM ev \
                 WHERE event_name = 'signup' GROUP BY person_id) c JOIN ev e ON e.person_id = c.person_id \
                 WHERE e.event_name = 'visit' AND e.event_time >= c.t0) r WHERE day > cohort GROUP BY 1, 2",
                epoch("day"),
                epoch("cohort"),
                day("c.t0"),
                day("e.event_time")
            ),
        ),
        (
            "lifecycle",
            "SELECT period, status, persons FROM lifecycle(event => 'event_name IS NOT NULL', interval => 'day', \
             source => 'ev') WHERE persons > 0"
                .into(),
            format!(
                "WITH d AS (SELECT DISTINCT person_id, {day} AS day FROM ev), \
                 s AS (SELECT person_id, day, lag(day) OVER (PARTITION BY person_id ORDER BY day) AS prev, \
                 lead(day) OVER (PARTITION BY person_id ORDER BY day) AS next FROM d), \
                 st AS (SELECT day, CASE WHEN prev IS NULL THEN 'new' WHEN {ed} - {ep} = 86400 THEN 'returning' \
                 ELSE 'resurrecting' END AS status FROM s \
                 UNION ALL SELECT day + INTERVAL '1 day', 'dormant' FROM s WHERE next IS NULL OR {en} - {ed} > 86400) \
                 SELECT day, status, count(*) FROM st WHERE day <= (SELECT max(day) FROM d) GROUP BY 1, 2",
                day = day("event_time"),
                ed = epoch("day"),
                ep = epoch("prev"),
                en = epoch("next"),
            ),
        ),
        (
            "stickiness",
            "SELECT intervals, persons FROM stickiness(event => 'visit', source => 'ev') WHERE persons > 0".into(),
            format!(
                "SELECT CAST(n AS INT), count(*) FROM (SELECT person_id, count(DISTINCT {}) AS n FROM ev \
                 WHERE event_name = 'visit' GROUP BY person_id) a GROUP BY 1",
                day("event_time")
            ),
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cohort_reports_answer_as_their_definitions_in_sql() {
    let dir = tempfile::tempdir().expect("tmp");
    write_parquet(&dir.path().join("ev").join("part-0.parquet"), &events());
    let engine = Engine::new(Config { data_dir: dir.path().to_path_buf(), ..Config::default() }).expect("engine");
    let small = Engine::new(Config {
        data_dir: dir.path().to_path_buf(),
        batch_size: 3,
        target_partitions: 4,
        ..Config::default()
    })
    .expect("engine");
    let zone = "SET TimeZone = 'America/New_York'; ";
    for (name, report, definition) in cases() {
        let sorted = |mut rows: Vec<String>| {
            rows.sort();
            rows
        };
        let ours = sorted(query(&engine, &format!("{zone}{report}")).await);
        let theirs = sorted(query(&engine, &format!("{zone}{definition}")).await);
        assert!(ours.len() > 5, "{name}: too few rows to mean anything: {ours:?}");
        assert_eq!(ours, theirs, "{name}");
        assert_eq!(sorted(query(&small, &format!("{zone}{report}")).await), ours, "{name}: batch size 3, 4 partitions");
        // The days are New York's: cohorts start at 05:00 UTC, shown in the session's zone.
        if name != "stickiness" {
            assert!(ours.iter().all(|r| r.contains(" 00:00:00-05")), "{name}: {ours:?}");
        }
    }
}

/// The funnel's trend, time-to-convert histogram and people lists add up to its figures on the
/// same random events: per step, the periods' users sum to the users, the histogram holds the
/// last step's users, and the people listed as converted (dropped) at a step are its users
/// (drop-off). The same with three-row batches over four partitions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn funnel_trend_histogram_and_people_add_up_to_its_figures() {
    let dir = tempfile::tempdir().expect("tmp");
    write_parquet(&dir.path().join("ev").join("part-0.parquet"), &events());
    for (batch_size, partitions) in [(8192, 0), (3, 4)] {
        let config = Config {
            data_dir: dir.path().to_path_buf(),
            batch_size,
            target_partitions: partitions,
            ..Config::default()
        };
        let engine = Engine::new(config).expect("engine");
        let steps = "'signup', 'visit', 'purchase', source => 'ev', window => INTERVAL '3 days'";
        let number = |rows: Vec<String>| -> i64 { rows[0].parse().expect("a number") };
        let figures = query(&engine, &format!("SELECT step, users, drop_off FROM funnel({steps}) ORDER BY step")).await;
        assert_eq!(figures.len(), 3);
        for (k, row) in figures.iter().enumerate() {
            let f: Vec<i64> = row.split(' ').map(|x| x.parse().expect("numbers")).collect();
            let (step, users, drop_off) = (f[0], f[1], f[2]);
            assert!(users >= 10, "{figures:?}");
            let trend = query(
                &engine,
                &format!("SELECT sum(users) FROM funnel({steps}, trend => 'week', time_zone => 'Europe/Paris') WHERE step = {step}"),
            )
            .await;
            assert_eq!(number(trend), users, "step {step}: the weeks' users");
            let converted =
                query(&engine, &format!("SELECT count(*) FROM funnel({steps}, output => 'people', step => {step})"))
                    .await;
            assert_eq!(number(converted), users, "step {step}: people converted");
            if k > 0 {
                let dropped = query(
                    &engine,
                    &format!(
                        "SELECT count(*) FROM funnel({steps}, output => 'people', step => {step}, status => 'dropped')"
                    ),
                )
                .await;
                assert_eq!(number(dropped), drop_off, "step {step}: people dropped");
            }
            // compare: each range's figures are the funnel's over that range's events alone.
            for (range, from, to) in [("current", "2025-01-11", "2025-01-16"), ("previous", "2025-01-06", "2025-01-11")]
            {
                let compared = query(
                    &engine,
                    &format!(
                        "SELECT users FROM funnel({steps}, compare => INTERVAL '5 days', \
                         until => TIMESTAMPTZ '2025-01-16 00:00:00+00') WHERE range = '{range}' AND step = {step}"
                    ),
                )
                .await;
                let alone = query(
                    &engine,
                    &format!(
                        "SELECT users FROM funnel('signup', 'visit', 'purchase', window => INTERVAL '3 days', \
                         source => 'SELECT * FROM ev WHERE event_time >= TIMESTAMPTZ ''{from} 00:00:00+00'' \
                         AND event_time < TIMESTAMPTZ ''{to} 00:00:00+00''') WHERE step = {step}"
                    ),
                )
                .await;
                assert_eq!(compared, alone, "step {step}, {range} range");
                assert!(number(alone) > 0 || k == 2, "step {step}, {range}: nobody");
            }
            if k == 2 {
                let histogram = query(
                    &engine,
                    &format!(
                        "SELECT sum(users), count(*) FROM funnel({steps}, output => 'time_to_convert', bins => 7)"
                    ),
                )
                .await;
                assert_eq!(
                    histogram,
                    vec![format!("{users} 7")],
                    "the histogram holds the last step's users in 7 bins"
                );
            }
        }
    }
}

/// `funnel_correlation`'s counts against its definition in SQL (a two-step funnel: a converter's
/// span runs from the latest signup within the window before its first reachable purchase to
/// that purchase; a non-converter's from its first signup to the window's end), and each odds
/// ratio against the formula over those counts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn funnel_correlation_counts_as_its_definition_in_sql() {
    let dir = tempfile::tempdir().expect("tmp");
    write_parquet(&dir.path().join("ev").join("part-0.parquet"), &events());
    let engine = Engine::new(Config { data_dir: dir.path().to_path_buf(), ..Config::default() }).expect("engine");
    let small = Engine::new(Config {
        data_dir: dir.path().to_path_buf(),
        batch_size: 3,
        target_partitions: 4,
        ..Config::default()
    })
    .expect("engine");
    let report = "SELECT value, converters, non_converters, odds_ratio FROM funnel_correlation('signup', 'purchase', \
                  window => INTERVAL '2 days', source => 'ev')";
    let definition = "WITH s AS (SELECT person_id, event_time AS t FROM ev WHERE event_name = 'signup'), \
        pu AS (SELECT person_id, event_time AS t FROM ev WHERE event_name = 'purchase'), \
        conv AS (SELECT pu.person_id, min(pu.t) AS done FROM pu JOIN s ON s.person_id = pu.person_id \
          AND s.t <= pu.t AND pu.t <= s.t + INTERVAL '2 days' GROUP BY pu.person_id), \
        spans AS (SELECT c.person_id, max(s.t) AS entry, c.done AS fin, true AS converted FROM conv c \
          JOIN s ON s.person_id = c.person_id AND s.t <= c.done AND c.done <= s.t + INTERVAL '2 days' \
          GROUP BY c.person_id, c.done \
          UNION ALL SELECT person_id, min(t), min(t) + INTERVAL '2 days', false FROM s \
          WHERE person_id NOT IN (SELECT person_id FROM conv) GROUP BY person_id), \
        has AS (SELECT DISTINCT sp.person_id, sp.converted, e.event_name AS v FROM spans sp JOIN ev e \
          ON e.person_id = sp.person_id AND e.event_time >= sp.entry AND e.event_time <= sp.fin \
          WHERE e.event_name NOT IN ('signup', 'purchase')) \
        SELECT v, sum(CASE WHEN converted THEN 1 ELSE 0 END), sum(CASE WHEN converted THEN 0 ELSE 1 END), \
          (SELECT count(*) FROM spans WHERE converted), (SELECT count(*) FROM spans WHERE NOT converted) \
        FROM has GROUP BY v ORDER BY v";
    let mut ours = query(&engine, report).await;
    ours.sort();
    let mut again = query(&small, report).await;
    again.sort();
    assert_eq!(again, ours, "batch size 3, 4 partitions");
    let theirs = query(&engine, definition).await;
    assert_eq!(ours.len(), 3, "{ours:?}");
    assert_eq!(ours.len(), theirs.len(), "{ours:?} {theirs:?}");
    for (o, t) in ours.iter().zip(&theirs) {
        let o: Vec<&str> = o.split(' ').collect();
        let t: Vec<&str> = t.split(' ').collect();
        assert_eq!(o[..3], t[..3], "counts of {}: ours {o:?}, the definition {t:?}", t[0]);
        let n = |x: &str| -> f64 { x.parse().expect("a number") };
        let (a, c, conv, non) = (n(t[1]), n(t[2]), n(t[3]), n(t[4]));
        let want = ((a + 0.5) * (non - c + 0.5)) / ((conv - a + 0.5) * (c + 0.5));
        assert!((n(o[3]) - want).abs() < 1e-9 * want, "odds ratio of {}: {} vs {want}", t[0], o[3]);
        assert!(a + c > 20.0, "{t:?}");
    }
}
