//! `attribute('markov')` against an independent implementation: ChannelAttribution (PyPI,
//! installed by `scripts/install-test-deps.sh` into `.venv-test`) on the same random paths.
//! ChannelAttribution estimates removal effects by a seeded simulation; our solution is exact, so
//! the two agree within the simulation's tolerance.

use crate::fixture::{self, write_parquet};
use crate::journey::query;
use datafusion::arrow::array::{ArrayRef, StringArray, TimestampMicrosecondArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;
use journeydb::config::Config;
use journeydb::session::Engine;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Random journeys over six channels: per person 1 to 6 touches a minute apart, then a purchase
/// or nothing; conversion is likelier with `email` and `search`, less with `display`.
fn paths() -> Vec<(Vec<&'static str>, bool)> {
    let channels = ["search", "email", "display", "social", "referral", "direct"];
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move |n: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % n
    };
    (0..3000)
        .map(|_| {
            let len = 1 + next(6) as usize;
            let path: Vec<&str> = (0..len).map(|_| channels[next(channels.len() as u64) as usize]).collect();
            let mut odds = 20;
            odds += 25 * u64::from(path.contains(&"email")) + 15 * u64::from(path.contains(&"search"));
            odds -= 10 * u64::from(path.contains(&"display"));
            (path, next(100) < odds)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn markov_removal_effects_agree_with_channel_attribution() {
    let dir = tempfile::tempdir().expect("tmp");
    let paths = paths();
    let (mut person, mut ts, mut channel, mut event) = (vec![], vec![], vec![], vec![]);
    let mut aggregated: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for (i, (path, converted)) in paths.iter().enumerate() {
        for (k, c) in path.iter().enumerate() {
            person.push(format!("p{i}"));
            ts.push(1_735_689_600_000_000 + k as i64 * 60_000_000);
            channel.push(Some(*c));
            event.push("visit");
        }
        if *converted {
            person.push(format!("p{i}"));
            ts.push(1_735_689_600_000_000 + path.len() as i64 * 60_000_000);
            channel.push(None);
            event.push("purchase");
        }
        let e = aggregated.entry(path.join(" > ")).or_default();
        if *converted { e.0 += 1 } else { e.1 += 1 }
    }
    let schema = Arc::new(Schema::new(vec![
        Field::new("person", DataType::Utf8, false),
        Field::new("ts", DataType::Timestamp(TimeUnit::Microsecond, None), false),
        Field::new("channel", DataType::Utf8, true),
        Field::new("event", DataType::Utf8, false),
    ]));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(person)),
        Arc::new(TimestampMicrosecondArray::from(ts)),
        Arc::new(StringArray::from(channel)),
        Arc::new(StringArray::from(event)),
    ];
    write_parquet(
        &dir.path().join("paths").join("part-0.parquet"),
        &RecordBatch::try_new(schema, columns).expect("batch"),
    );
    let csv = dir.path().join("paths.csv");
    let mut text = String::from("path,total_conversions,total_null\n");
    for (p, (c, n)) in &aggregated {
        text.push_str(&format!("{p},{c},{n}\n"));
    }
    std::fs::write(&csv, text).expect("csv");
    let engine = Engine::new(Config { data_dir: dir.path().to_path_buf(), ..Config::default() }).expect("engine");
    for order in [1, 2] {
        let ours: BTreeMap<String, f64> = query(
            &engine,
            &format!(
                "SELECT channel, removal_effect FROM attribute('markov', \"order\" => {order}, source => 'paths', \
                 person => 'person', time => 'ts', event => 'event', touch => 'channel IS NOT NULL', \
                 conversion => 'purchase', value => '0')"
            ),
        )
        .await
        .iter()
        .map(|r| {
            let (c, e) = r.rsplit_once(' ').expect("two columns");
            (c.to_string(), e.parse().expect("a removal effect"))
        })
        .collect();
        let out = std::process::Command::new(fixture::python())
            .arg(crate::fixture::root().join("scripts/channel_attribution.py"))
            .arg(&csv)
            .arg(order.to_string())
            .output()
            .expect("python runs");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let theirs: BTreeMap<String, f64> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| {
                let f: Vec<&str> = l.split('\t').collect();
                (f[0].to_string(), f[1].parse().expect("a removal effect"))
            })
            .collect();
        assert_eq!(ours.keys().collect::<Vec<_>>(), theirs.keys().collect::<Vec<_>>(), "order {order}");
        for (c, e) in &ours {
            let t = theirs[c];
            assert!((e - t).abs() < 0.01, "order {order}, {c}: ours {e}, ChannelAttribution {t}\n{ours:?}\n{theirs:?}");
        }
        // Not a degenerate case: the channels' effects differ.
        let (lo, hi) = ours.values().fold((1.0f64, 0.0f64), |(lo, hi), &e| (lo.min(e), hi.max(e)));
        assert!(hi - lo > 0.05, "{ours:?}");
    }
}
