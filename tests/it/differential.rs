//! A generated SQL corpus run on journeydb and on PostgreSQL 15 (issue 24), in the spirit of
//! SQLite's sqllogictest `random/` and `select` files: small random tables with NULLs, and
//! seeded random queries over them (expressions with every operator, CASE, COALESCE, NULLIF,
//! casts, LIKE, IN lists, aggregates with GROUP BY and HAVING, inner and outer joins, IN, EXISTS
//! and scalar subqueries, correlated and not, ORDER BY with LIMIT). Wherever PostgreSQL answers,
//! journeydb must give the same rows (as text; in order where the query orders every column).
//!
//! `JOURNEYDB_DIFFERENTIAL_QUERIES=N` runs N queries instead of the default, and
//! `JOURNEYDB_DIFFERENTIAL_SEED=S` another seed; the run stops generating after
//! [`TIME_BUDGET`] either way. The share that agrees is printed per kind of query.

use crate::fixture;
use crate::oracle::{Postgres, answer, connect};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Queries in the default run.
const DEFAULT_QUERIES: usize = 1000;
/// The default run's seed.
const DEFAULT_SEED: u64 = 0x5eed_2024;
/// How long the queries may take in all, whatever their number.
const TIME_BUDGET: Duration = Duration::from_secs(240);

/// A small xorshift: reproducible without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.next(items.len() as u64) as usize]
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next(100) < percent
    }
}

/// The tables both servers hold: `r1(a, b, c, s)` and `r2(a, b, s)`, small integers and short
/// texts, about one value in six NULL.
fn tables(rng: &mut Rng) -> Vec<String> {
    let int = |rng: &mut Rng| if rng.chance(16) { "NULL".to_string() } else { (rng.next(12) as i64 - 3).to_string() };
    let text = |rng: &mut Rng| {
        if rng.chance(16) { "NULL".to_string() } else { format!("'{}'", rng.pick(&["a", "b", "ab", "B", "ba", "a_b"])) }
    };
    let mut statements = vec![
        "CREATE TABLE r1 (a INT, b INT, c INT, s TEXT)".to_string(),
        "CREATE TABLE r2 (a INT, b INT, s TEXT)".to_string(),
    ];
    let rows: Vec<String> =
        (0..24).map(|_| format!("({}, {}, {}, {})", int(rng), int(rng), int(rng), text(rng))).collect();
    statements.push(format!("INSERT INTO r1 VALUES {}", rows.join(", ")));
    let rows: Vec<String> = (0..16).map(|_| format!("({}, {}, {})", int(rng), int(rng), text(rng))).collect();
    statements.push(format!("INSERT INTO r2 VALUES {}", rows.join(", ")));
    statements
}

/// Makes expressions over one table's alias (`outer` names the enclosing query's, for
/// correlated subqueries).
struct Gen<'a> {
    rng: &'a mut Rng,
    alias: &'static str,
    columns: &'static [&'static str],
    outer: Option<&'static str>,
}

impl Gen<'_> {
    fn column(&mut self) -> String {
        format!("{}.{}", self.alias, self.rng.pick(self.columns))
    }

    fn int(&mut self, depth: u32) -> String {
        if depth == 0 || self.rng.chance(30) {
            return match self.rng.next(10) {
                0..=5 => self.column(),
                6 if self.outer.is_some() => {
                    format!("{}.{}", self.outer.unwrap_or_default(), self.rng.pick(&["a", "b"]))
                }
                7 => "NULL::int".into(),
                _ => (self.rng.next(9) as i64 - 2).to_string(),
            };
        }
        let d = depth - 1;
        match self.rng.next(12) {
            0 => format!("({} + {})", self.int(d), self.int(d)),
            1 => format!("({} - {})", self.int(d), self.int(d)),
            2 => format!("({} * {})", self.int(d), self.int(d)),
            // Divisors kept away from zero: the point is the arithmetic, not 22012.
            3 => format!("({} / (abs({}) + 1))", self.int(d), self.int(d)),
            4 => format!("({} % (abs({}) + 1))", self.int(d), self.int(d)),
            5 => format!("(CASE WHEN {} THEN {} ELSE {} END)", self.boolean(d), self.int(d), self.int(d)),
            6 => format!("coalesce({}, {})", self.int(d), self.int(d)),
            7 => format!("nullif({}, {})", self.int(d), self.int(d)),
            8 => format!("abs({})", self.int(d)),
            9 => format!("(- {})", self.int(d)),
            10 => format!("length({})", self.text(d)),
            _ => format!("(CASE {} WHEN 1 THEN {} WHEN 2 THEN {} END)", self.int(d), self.int(d), self.int(d)),
        }
    }

    fn text(&mut self, depth: u32) -> String {
        if depth == 0 || self.rng.chance(40) {
            return match self.rng.next(4) {
                0 | 1 => format!("{}.s", self.alias),
                2 => format!("'{}'", self.rng.pick(&["a", "b", "ab"])),
                _ => "NULL::text".into(),
            };
        }
        let d = depth - 1;
        match self.rng.next(6) {
            0 => format!("upper({})", self.text(d)),
            1 => format!("({} || {})", self.text(d), self.text(d)),
            2 => format!("coalesce({}, {})", self.text(d), self.text(d)),
            3 => format!("CAST({} AS TEXT)", self.int(d)),
            4 => format!("lower({})", self.text(d)),
            _ => format!("(CASE WHEN {} THEN {} END)", self.boolean(d), self.text(d)),
        }
    }

    fn boolean(&mut self, depth: u32) -> String {
        let d = depth.saturating_sub(1);
        let op = *self.rng.pick(&["=", "<>", "<", "<=", ">", ">="]);
        match self.rng.next(if depth == 0 { 5 } else { 14 }) {
            0 | 1 => format!("{} {op} {}", self.int(d), self.int(d)),
            2 => format!("{} IS {}NULL", self.int(d), if self.rng.chance(50) { "NOT " } else { "" }),
            3 => format!("{} LIKE '{}'", self.text(d), self.rng.pick(&["a%", "%b", "_", "a\\_b", "%"])),
            4 => {
                let list: Vec<String> =
                    (0..1 + self.rng.next(3)).map(|_| (self.rng.next(8) as i64 - 2).to_string()).collect();
                format!("{} {}IN ({})", self.int(d), if self.rng.chance(30) { "NOT " } else { "" }, list.join(", "))
            }
            5 => format!("({} AND {})", self.boolean(d), self.boolean(d)),
            6 => format!("({} OR {})", self.boolean(d), self.boolean(d)),
            7 => format!("NOT ({})", self.boolean(d)),
            8 => format!(
                "{} IS {}DISTINCT FROM {}",
                self.int(d),
                if self.rng.chance(50) { "NOT " } else { "" },
                self.int(d)
            ),
            9 => format!("{} BETWEEN {} AND {}", self.int(d), self.int(d), self.int(d)),
            10 => format!("{} {op} {}", self.text(d), self.text(d)),
            11 => format!("({}) IS {}", self.boolean(d), self.rng.pick(&["TRUE", "NOT TRUE", "FALSE", "UNKNOWN"])),
            12 => format!("coalesce({}, {})", self.boolean(d), self.rng.pick(&["true", "false"])),
            _ => format!("CAST({} AS BIGINT) {op} {}", self.int(d), self.int(d)),
        }
    }
}

/// One generated query, the kind it is counted under, and whether its rows come in an order
/// both servers must keep (every output column ordered).
struct Query {
    kind: &'static str,
    sql: String,
    ordered: bool,
}

fn outputs(items: Vec<String>) -> String {
    items.iter().enumerate().map(|(i, e)| format!("{e} AS c{i}")).collect::<Vec<_>>().join(", ")
}

fn query(rng: &mut Rng) -> Query {
    let kind = *rng.pick(&[
        "expressions",
        "expressions",
        "aggregates",
        "joins",
        "subqueries",
        "correlated subqueries",
        "order by, limit",
        "set operations",
    ]);
    let mut g1 = Gen { rng, alias: "x", columns: &["a", "b", "c"], outer: None };
    match kind {
        "expressions" => {
            let n = 1 + g1.rng.next(3);
            let items: Vec<String> = (0..n)
                .map(|_| match g1.rng.next(3) {
                    0 => g1.text(2),
                    1 => g1.boolean(2),
                    _ => g1.int(3),
                })
                .collect();
            let filter = if g1.rng.chance(60) { format!(" WHERE {}", g1.boolean(3)) } else { String::new() };
            Query { kind, sql: format!("SELECT {} FROM r1 AS x{filter}", outputs(items)), ordered: false }
        }
        "aggregates" => {
            let key = g1.int(1);
            let argument = g1.int(2);
            let aggregate = match g1.rng.next(6) {
                0 => "count(*)".to_string(),
                1 => format!("count({argument})"),
                2 => format!("sum({argument})"),
                3 => format!("min({argument})"),
                4 => format!("max({argument})"),
                _ => format!("count(DISTINCT {argument})"),
            };
            let filter = if g1.rng.chance(50) { format!(" WHERE {}", g1.boolean(2)) } else { String::new() };
            let having =
                if g1.rng.chance(40) { format!(" HAVING count(*) > {}", g1.rng.next(3)) } else { String::new() };
            Query {
                kind,
                sql: format!(
                    "SELECT {} FROM r1 AS x{filter} GROUP BY {key}{having}",
                    outputs(vec![key.clone(), aggregate])
                ),
                ordered: false,
            }
        }
        "joins" => {
            let join = *g1.rng.pick(&["JOIN", "LEFT JOIN", "RIGHT JOIN", "FULL JOIN"]);
            let on = format!(
                "x.{} {} y.{}",
                g1.rng.pick(&["a", "b"]),
                g1.rng.pick(&["=", "<", "<>"]),
                g1.rng.pick(&["a", "b"])
            );
            let left = g1.int(2);
            let filter = if g1.rng.chance(40) { format!(" WHERE {}", g1.boolean(1)) } else { String::new() };
            let mut g2 = Gen { rng: g1.rng, alias: "y", columns: &["a", "b"], outer: None };
            let right = g2.int(2);
            Query {
                kind,
                sql: format!("SELECT {} FROM r1 AS x {join} r2 AS y ON {on}{filter}", outputs(vec![left, right])),
                ordered: false,
            }
        }
        "subqueries" => {
            let probe = g1.int(1);
            let outer = g1.int(2);
            let mut g2 = Gen { rng: g1.rng, alias: "y", columns: &["a", "b"], outer: None };
            let inner_filter = g2.boolean(1);
            let inner = g2.int(1);
            let condition = match g2.rng.next(4) {
                0 => format!("{probe} IN (SELECT {inner} FROM r2 AS y WHERE {inner_filter})"),
                1 => format!("{probe} NOT IN (SELECT {inner} FROM r2 AS y WHERE {inner_filter})"),
                2 => format!("EXISTS (SELECT 1 FROM r2 AS y WHERE {inner_filter})"),
                _ => format!("{probe} > (SELECT max({inner}) FROM r2 AS y WHERE {inner_filter})"),
            };
            let scalar = format!("(SELECT count(*) FROM r2 AS y WHERE {inner_filter})");
            Query {
                kind,
                sql: format!("SELECT {} FROM r1 AS x WHERE {condition}", outputs(vec![outer, scalar])),
                ordered: false,
            }
        }
        "correlated subqueries" => {
            let outer = g1.int(1);
            let mut g2 = Gen { rng: g1.rng, alias: "y", columns: &["a", "b"], outer: Some("x") };
            let op = *g2.rng.pick(&["=", "<", ">="]);
            // `c` is r1's only: unqualified, it names the outer row's column.
            let link = format!("y.{} {op} {}", g2.rng.pick(&["a", "b"]), g2.rng.pick(&["x.a", "x.b", "x.c", "c"]));
            let inner = g2.int(1);
            let (item, condition) = match g2.rng.next(9) {
                // Not aggregated: PostgreSQL answers where each outer row meets at most one row.
                8 => (
                    format!("(SELECT {inner} FROM r2 AS y WHERE {link} AND y.b = x.b AND y.s = x.s)"),
                    "true".to_string(),
                ),
                0 => (format!("(SELECT count(*) FROM r2 AS y WHERE {link})"), "true".to_string()),
                1 => (format!("(SELECT max({inner}) FROM r2 AS y WHERE {link})"), "true".to_string()),
                2 => (outer.clone(), format!("EXISTS (SELECT 1 FROM r2 AS y WHERE {link})")),
                3 => (outer.clone(), format!("NOT EXISTS (SELECT 1 FROM r2 AS y WHERE {link})")),
                4 => (outer.clone(), format!("x.a < (SELECT count(*) FROM r2 AS y WHERE {link})")),
                5 => (
                    format!("(SELECT sum({inner}) FROM r2 AS y WHERE {link} AND y.s IS NOT NULL)"),
                    format!("x.b IS NOT NULL AND {outer} > -5"),
                ),
                6 => (outer.clone(), format!("x.c NOT IN (SELECT {inner} FROM r2 AS y WHERE {link})")),
                _ => (outer.clone(), format!("x.c IN (SELECT {inner} FROM r2 AS y WHERE {link})")),
            };
            Query {
                kind,
                sql: format!("SELECT {} FROM r1 AS x WHERE {condition}", outputs(vec![outer, item])),
                ordered: false,
            }
        }
        "order by, limit" => {
            let items = vec![g1.int(2), g1.text(1)];
            let direction = |rng: &mut Rng| {
                format!("{}{}", rng.pick(&["", " ASC", " DESC"]), rng.pick(&["", " NULLS FIRST", " NULLS LAST"]))
            };
            let order = format!("c0{}, c1{}", direction(g1.rng), direction(g1.rng));
            let filter = if g1.rng.chance(40) { format!(" WHERE {}", g1.boolean(2)) } else { String::new() };
            let limit = 1 + g1.rng.next(10);
            // Ties beyond the ordered columns: every row of the answer is ordered by both.
            Query {
                kind,
                sql: format!("SELECT DISTINCT {} FROM r1 AS x{filter} ORDER BY {order} LIMIT {limit}", outputs(items)),
                ordered: true,
            }
        }
        _ => {
            let left = g1.int(1);
            let filter = g1.boolean(1);
            let mut g2 = Gen { rng: g1.rng, alias: "y", columns: &["a", "b"], outer: None };
            let right = g2.int(1);
            let op = *g2.rng.pick(&["UNION", "UNION ALL", "INTERSECT", "EXCEPT", "INTERSECT ALL", "EXCEPT ALL"]);
            Query {
                kind,
                sql: format!("SELECT {left} AS c0 FROM r1 AS x WHERE {filter} {op} SELECT {right} FROM r2 AS y"),
                ordered: false,
            }
        }
    }
}

/// Rows as both servers sent them, without the header; sorted unless their order counts.
fn rows(answer: Vec<Vec<Option<String>>>, ordered: bool) -> Vec<Vec<Option<String>>> {
    let mut rows: Vec<_> = answer.into_iter().skip(1).collect();
    if !ordered {
        rows.sort();
    }
    rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_generated_corpus_answers_as_postgresql_15_does() {
    let count =
        std::env::var("JOURNEYDB_DIFFERENTIAL_QUERIES").ok().and_then(|v| v.parse().ok()).unwrap_or(DEFAULT_QUERIES);
    let seed = std::env::var("JOURNEYDB_DIFFERENTIAL_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(DEFAULT_SEED);
    let postgres = tokio::task::spawn_blocking(Postgres::start).await.expect("start");
    let oracle = connect(postgres.port(), "postgres").await;
    let dir = fixture::data_dir();
    let server = fixture::server(dir.path()).await;
    let ours = fixture::connect(&server).await;
    let mut rng = Rng(seed.max(1));
    for statement in tables(&mut rng) {
        oracle.batch_execute(&statement).await.expect("postgresql tables");
        ours.batch_execute(&statement).await.expect("journeydb tables");
    }
    // kind -> (PostgreSQL answered, journeydb agreed)
    let mut tally: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    let mut differences: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let started = Instant::now();
    let mut generated = 0;
    while generated < count && started.elapsed() < TIME_BUDGET {
        let q = query(&mut rng);
        generated += 1;
        let Ok(expected) = answer(&oracle, &q.sql).await else { continue };
        let got = answer(&ours, &q.sql).await;
        let entry = tally.entry(q.kind).or_default();
        entry.0 += 1;
        let expected = rows(expected, q.ordered);
        match got {
            Ok(got) if rows(got.clone(), q.ordered) == expected => entry.1 += 1,
            got => differences.entry(q.kind).or_default().push(format!(
                "{}\n  postgresql: {expected:?}\n  journeydb:  {:?}",
                q.sql,
                got.map(|g| rows(g, q.ordered))
            )),
        }
    }
    let (answered, agreed) = tally.values().fold((0, 0), |(a, b), (x, y)| (a + x, b + y));
    println!(
        "seed {seed}: {generated} queries generated, PostgreSQL answered {answered}, journeydb agreed on {agreed}"
    );
    for (kind, (a, b)) in &tally {
        println!("  {kind}: {b} of {a} ({:.1}%)", 100.0 * *b as f64 / (*a).max(1) as f64);
    }
    for (kind, list) in &differences {
        println!("{kind}: {} differ, for example:", list.len());
        for d in list.iter().take(5) {
            println!("  {d}");
        }
    }
    assert!(answered >= generated / 2, "PostgreSQL answered only {answered} of {generated}: the generator is off");
    let all: Vec<&str> = differences.values().flatten().map(String::as_str).collect();
    assert!(all.is_empty(), "{} differ:\n{}", all.len(), all.join("\n"));
}

/// One generated statement that changes `m` (a copy of `r1`): UPDATE, UPDATE ... FROM, DELETE
/// or MERGE. The source of FROM and MERGE has one row per key, so that PostgreSQL's answer
/// does not depend on which of several rows it pairs.
fn change(rng: &mut Rng) -> String {
    let mut g = Gen { rng, alias: "x", columns: &["a", "b", "c"], outer: None };
    let keyed = "(SELECT a, max(b) AS b, min(s) AS s FROM r2 GROUP BY a) AS y";
    match g.rng.next(5) {
        0 => format!("UPDATE m AS x SET b = {}, s = {} WHERE {}", g.int(2), g.text(1), g.boolean(2)),
        1 => format!(
            "UPDATE m AS x SET c = y.b, s = coalesce(y.s, x.s) FROM {keyed} WHERE x.a = y.a AND {}",
            g.boolean(1)
        ),
        2 => format!("DELETE FROM m AS x WHERE {}", g.boolean(2)),
        3 => format!(
            "MERGE INTO m AS x USING {keyed} ON x.a = y.a WHEN MATCHED AND {} THEN UPDATE SET c = y.b, b = {} \
             WHEN NOT MATCHED THEN INSERT VALUES (y.a, y.b, NULL, y.s)",
            g.boolean(1),
            g.int(1)
        ),
        _ => format!("MERGE INTO m AS x USING {keyed} ON x.a = y.a AND {} WHEN MATCHED THEN DELETE", g.boolean(1)),
    }
}

/// The same generated UPDATE, DELETE and MERGE statements change a copy of `r1` on journeydb
/// and on PostgreSQL 15 (issue 24): after each, the two tables hold the same rows, and where
/// PostgreSQL refuses a statement journeydb refuses it too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_changes_leave_the_same_rows_as_in_postgresql_15() {
    let seed = std::env::var("JOURNEYDB_DIFFERENTIAL_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(DEFAULT_SEED);
    let count: usize = std::env::var("JOURNEYDB_DIFFERENTIAL_CHANGES").ok().and_then(|v| v.parse().ok()).unwrap_or(120);
    let postgres = tokio::task::spawn_blocking(Postgres::start).await.expect("start");
    let oracle = connect(postgres.port(), "postgres").await;
    let dir = fixture::data_dir();
    let server = fixture::server(dir.path()).await;
    let ours = fixture::connect(&server).await;
    let mut rng = Rng(seed.max(1));
    let mut setup = tables(&mut rng);
    setup.push("CREATE TABLE m AS SELECT * FROM r1".into());
    for statement in setup {
        oracle.batch_execute(&statement).await.expect("postgresql tables");
        ours.batch_execute(&statement).await.expect("journeydb tables");
    }
    let contents = "SELECT a, b, c, s FROM m";
    let (mut applied, mut refused) = (0, 0);
    let started = Instant::now();
    for i in 0..count {
        if started.elapsed() > TIME_BUDGET {
            break;
        }
        let sql = change(&mut rng);
        let expected = oracle.simple_query(&sql).await;
        let got = ours.simple_query(&sql).await;
        match (&expected, &got) {
            (Ok(_), Ok(_)) => applied += 1,
            (Err(_), Err(_)) => refused += 1,
            _ => panic!(
                "statement {i}: {sql}\n  postgresql: {:?}\n  journeydb:  {:?}",
                expected.map(|_| ()).map_err(|e| e.code().cloned()),
                got.map(|_| ()).map_err(|e| e.code().cloned())
            ),
        }
        let want = rows(answer(&oracle, contents).await.expect("postgresql rows"), false);
        let have = rows(answer(&ours, contents).await.expect("journeydb rows"), false);
        assert_eq!(have, want, "after statement {i}: {sql}");
    }
    println!("seed {seed}: {applied} changes applied alike, {refused} refused by both");
    assert!(applied >= count / 2, "only {applied} of {count} applied");
}
