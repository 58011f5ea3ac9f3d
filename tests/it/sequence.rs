//! `sequence_match`, `sequence_count`, `sequence_next_node` and `retention` against ClickHouse:
//! chDB (PyPI, installed into `.venv-test` by scripts/install-test-deps.sh) runs ClickHouse's
//! `sequenceMatch`, `sequenceCount`, `sequenceNextNode` and `retention` in process over the same
//! Parquet file of random events, and every group's answer must be the same.
//!
//! Where ClickHouse's behaviour is a known defect the generated cases stay clear of it, and our
//! definition is tested against a brute force instead (`udfs/src/aggregate/sequence.rs`,
//! `next_node.rs`): ties in time (ClickHouse keeps arrival order; each person's timestamps
//! here are distinct), `.*` next to a time condition (ClickHouse measures the time from where
//! `.*` stands), several time conditions in a row (ClickHouse rejects them), a pattern ending in
//! `.*` (ClickHouse reads past its pattern there: `sequenceMatch('.(?t<=2)(?3).*')` gave 0 where
//! `sequenceCount` of the same pattern gave 1, for the same person, in some runs and not in
//! others), and NULL events (ClickHouse skips rows with a NULL argument).
//!
//! Our answers are also the same with three-row batches over four partitions as with the
//! defaults, and the rows are written in random order.

use crate::fixture::{self, write_parquet};
use crate::journey::query;
use datafusion::arrow::array::{ArrayRef, Int64Array, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use journeydb::config::Config;
use journeydb::session::Engine;
use std::io::Write;
use std::sync::Arc;

/// A small xorshift: reproducible without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Random events: 300 people with 1 to 10 events each at distinct seconds in 0..30, named
/// `a`, `b`, `c` or `d` (`d` meets none of the conditions), all rows shuffled.
fn events(rng: &mut Rng) -> RecordBatch {
    let mut rows: Vec<(String, i64, &str)> = vec![];
    for p in 0..300 {
        let mut seconds: Vec<i64> = (0..30).collect();
        let n = 1 + rng.next(10) as usize;
        for i in 0..n {
            let j = i + rng.next((seconds.len() - i) as u64) as usize;
            seconds.swap(i, j);
            rows.push((format!("p{p:03}"), seconds[i], ["a", "b", "c", "d"][rng.next(4) as usize]));
        }
    }
    for i in (1..rows.len()).rev() {
        rows.swap(i, rng.next(i as u64 + 1) as usize);
    }
    let schema = Arc::new(Schema::new(vec![
        Field::new("person", DataType::Utf8, false),
        Field::new("t", DataType::Int64, false),
        Field::new("e", DataType::Utf8, false),
    ]));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(rows.iter().map(|r| r.0.as_str()).collect::<Vec<_>>())),
        Arc::new(Int64Array::from(rows.iter().map(|r| r.1).collect::<Vec<_>>())),
        Arc::new(StringArray::from(rows.iter().map(|r| r.2).collect::<Vec<_>>())),
    ];
    RecordBatch::try_new(schema, columns).expect("batch")
}

/// Random patterns over three conditions that ClickHouse reads as we do (see the module's
/// comment): 1 to 5 tokens, time conditions only between two event steps and never beside `.*`,
/// no `.*` at the end.
fn patterns(rng: &mut Rng, n: usize) -> Vec<String> {
    let mut out = vec![];
    while out.len() < n {
        let tokens: Vec<String> = (0..1 + rng.next(5))
            .map(|_| match rng.next(10) {
                0..=2 => format!("(?{})", 1 + rng.next(3)),
                3 => ".".into(),
                4 => ".*".into(),
                _ => format!("(?t{}{})", ["<", "<=", ">", ">=", "=="][rng.next(5) as usize], rng.next(9)),
            })
            .collect();
        let timed = |i: usize| tokens[i].starts_with("(?t");
        let event = |i: usize| !timed(i) && tokens[i] != ".*";
        let ok = (0..tokens.len()).any(event)
            && tokens.last().is_some_and(|t| t != ".*")
            && (0..tokens.len()).all(|i| !timed(i) || (i > 0 && i + 1 < tokens.len() && event(i - 1) && event(i + 1)));
        if ok {
            out.push(tokens.concat());
        }
    }
    out
}

/// ClickHouse's answers to `queries` over `file`, one list of rows per query.
fn clickhouse(file: &std::path::Path, queries: &[String]) -> Vec<Vec<String>> {
    let mut child = std::process::Command::new(fixture::python())
        .arg(fixture::root().join("tests/python/clickhouse.py"))
        .arg(file)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python with chdb runs");
    {
        let mut stdin = child.stdin.take().expect("stdin");
        for q in queries {
            writeln!(stdin, "{q}").expect("write a query");
        }
    }
    let out = child.wait_with_output().expect("chdb answers");
    assert!(out.status.success(), "chdb failed: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    let mut answers = vec![vec![]];
    for line in text.lines() {
        if line == "--" {
            answers.push(vec![]);
        } else {
            let cells: Vec<String> = line
                .split('\t')
                .map(|c| if c == "\\N" { "NULL".to_string() } else { c.replace('[', "{").replace(']', "}") })
                .collect();
            answers.last_mut().expect("an answer").push(cells.join(" "));
        }
    }
    answers.pop();
    assert_eq!(answers.len(), queries.len(), "one answer per query");
    answers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequence_functions_and_retention_answer_as_clickhouse_does() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut rng = Rng(0x0dd_ba11_cafe_f00d);
    let file = dir.path().join("ev").join("part-0.parquet");
    write_parquet(&file, &events(&mut rng));
    let conds = "e = 'a', e = 'b', e = 'c'";
    // (kind, ours, ClickHouse's) per case.
    let mut cases: Vec<(&str, String, String)> = vec![];
    for p in patterns(&mut rng, 80) {
        cases.push((
            "pattern",
            format!(
                "SELECT person, CAST(sequence_match('{p}', t, {conds}) AS INT), sequence_count('{p}', t, {conds}) \
                 FROM ev GROUP BY person ORDER BY person"
            ),
            format!(
                "SELECT person, sequenceMatch('{p}')(toDateTime(t), {conds}), sequenceCount('{p}')(toDateTime(t), {conds}) \
                 FROM {{file}} GROUP BY person ORDER BY person"
            ),
        ));
    }
    cases.push((
        "retention",
        format!("SELECT person, retention({conds}) FROM ev GROUP BY person ORDER BY person"),
        format!("SELECT person, retention({conds}) FROM {{file}} GROUP BY person ORDER BY person"),
    ));
    let kinds = [
        ("forward", "head"),
        ("forward", "first_match"),
        ("forward", "last_match"),
        ("backward", "tail"),
        ("backward", "first_match"),
        ("backward", "last_match"),
    ];
    for (i, (direction, base)) in kinds.iter().cycle().take(36).enumerate() {
        let base_condition = ["e <> 'zz'", "e = 'a'", "e <> 'b'"][i % 3];
        let chain: Vec<String> =
            (0..1 + rng.next(3)).map(|_| format!("e = '{}'", ["a", "b", "c", "d"][rng.next(4) as usize])).collect();
        let args = format!("{base_condition}, {}", chain.join(", "));
        cases.push((
            "next",
            format!(
                "SELECT person, sequence_next_node('{direction}', '{base}', t, e, {args}) FROM ev \
                 GROUP BY person ORDER BY person"
            ),
            format!(
                "SELECT person, sequenceNextNode('{direction}', '{base}')(toDateTime(t), e, {args}) FROM {{file}} \
                 GROUP BY person ORDER BY person SETTINGS allow_experimental_funnel_functions = 1"
            ),
        ));
    }
    let theirs = clickhouse(&file, &cases.iter().map(|c| c.2.clone()).collect::<Vec<_>>());
    let engine = Engine::new(Config { data_dir: dir.path().to_path_buf(), ..Config::default() }).expect("engine");
    let small = Engine::new(Config {
        data_dir: dir.path().to_path_buf(),
        batch_size: 3,
        target_partitions: 4,
        ..Config::default()
    })
    .expect("engine");
    let (mut differences, mut matched, mut found) = (vec![], 0usize, 0usize);
    for ((kind, ours_sql, _), theirs) in cases.iter().zip(&theirs) {
        let ours = query(&engine, ours_sql).await;
        assert_eq!(query(&small, ours_sql).await, ours, "{ours_sql}: batch size 3 over 4 partitions");
        assert_eq!(ours.len(), 300, "{ours_sql}: one row per person");
        for (o, t) in ours.iter().zip(theirs) {
            if o != t {
                differences.push(format!("{ours_sql}\n  ours {o}\n  ClickHouse {t}"));
            }
        }
        match *kind {
            "pattern" => matched += ours.iter().filter(|r| r.split(' ').nth(1) == Some("1")).count(),
            "next" => found += ours.iter().filter(|r| !r.ends_with(" NULL")).count(),
            _ => {}
        }
    }
    eprintln!("{} cases, 300 people each: {matched} pattern matches, {found} next nodes found", cases.len());
    assert!(
        differences.is_empty(),
        "{} differences, the first:\n{}",
        differences.len(),
        differences[..differences.len().min(8)].join("\n")
    );
    // Not a degenerate case: many groups matched and many next nodes were found.
    assert!(matched > 2000 && found > 500, "matched {matched}, next nodes found {found}");
}
