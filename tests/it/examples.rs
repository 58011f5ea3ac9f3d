//! The cookbook: every `sql/examples/*.sql` runs on the demo fixture, and its answer must equal
//! the `.out` file beside it (tab-separated, header first). `EXAMPLES_BLESS=1` rewrites the
//! `.out` files; read the diff before committing it.

use crate::fixture;
use crate::slt::InProcess;
use sqllogictest::{AsyncDB, DBOutput};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_example_answers_as_recorded() {
    let dir = fixture::data_dir();
    let engine = fixture::engine(dir.path(), 8192, 0);
    answer_as_recorded(&engine).await;
}

/// The closed-loop examples (`sql/examples/closed_loop/`) with the configuration beside them
/// (`journeydb.toml`: the CRM's deals and the accounts joined in), on the server's runtime.
#[test]
fn every_closed_loop_example_answers_as_recorded() {
    fixture::on_server_runtime(async {
        let dir = fixture::data_dir();
        let examples = crate::fixture::root().join("sql/examples/closed_loop");
        let mut config = journeydb::config::Config::load(Some(&examples.join("journeydb.toml"))).expect("config");
        config.data_dir = dir.path().to_path_buf();
        config.batch_size = 8192;
        config.target_partitions = 0;
        config.validate().expect("valid config");
        let engine = journeydb::session::Engine::new(config).expect("engine");
        answer_in(&engine, &examples).await;
    });
}

/// Runs every example on `engine` (over the fixture's data) and checks its answer.
pub async fn answer_as_recorded(engine: &std::sync::Arc<journeydb::session::Engine>) {
    answer_in(engine, &crate::fixture::root().join("sql/examples")).await;
}

/// Runs every example on `engine`, over the same demo journeys in a tracker's shape (`shape`),
/// and checks that it answers as recorded (never re-recording).
pub async fn answer_as_recorded_in_shape(engine: &std::sync::Arc<journeydb::session::Engine>, shape: &str) {
    answer(engine, &crate::fixture::root().join("sql/examples"), Some(shape)).await;
}

/// The closed-loop examples with their `journeydb.toml`, over the demo in a tracker's shape
/// (`preset`, in `dir`; Segment's accounts are its `groups`), answering as recorded.
pub async fn closed_loop_as_recorded_in_shape(preset: &str, dir: &std::path::Path) {
    let examples = crate::fixture::root().join("sql/examples/closed_loop");
    let mut config = journeydb::config::Config::load(Some(&examples.join("journeydb.toml"))).expect("config");
    config.data_dir = dir.to_path_buf();
    config.target_partitions = 2;
    config.journey.preset = Some(preset.into());
    if let Some(accounts) = config.journey.accounts.as_mut().filter(|_| preset == "segment") {
        accounts.table = Some("groups".into());
    }
    config.validate().expect("valid config");
    let engine = journeydb::session::Engine::new(config).expect("engine");
    answer(&engine, &examples, Some(preset)).await;
}

/// Runs every example of folder `examples` on `engine` and checks its answer.
async fn answer_in(engine: &std::sync::Arc<journeydb::session::Engine>, examples: &std::path::Path) {
    answer(engine, examples, None).await;
}

/// [`answer_in`]; `shape` names the tracker's shape the data is in (then `EXAMPLES_BLESS` does
/// not record its answers).
async fn answer(engine: &std::sync::Arc<journeydb::session::Engine>, examples: &std::path::Path, shape: Option<&str>) {
    let mut files: Vec<_> = std::fs::read_dir(examples)
        .expect("sql/examples")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "sql"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no examples");
    let bless = std::env::var("EXAMPLES_BLESS").is_ok() && shape.is_none();
    let on = shape.map(|s| format!(" on the {s} demo")).unwrap_or_default();
    let mut failures = vec![];
    for file in files {
        let sql = std::fs::read_to_string(&file).expect("example");
        let mut db = InProcess::new(engine.session("journey", "journeydb").expect("session"));
        let answer = match db.run(&sql).await {
            Ok(DBOutput::Rows { rows, .. }) => {
                let mut lines = vec![column_names(engine, &sql).await.join("\t")];
                lines.extend(rows.iter().map(|r| r.join("\t")));
                lines.join("\n") + "\n"
            }
            Ok(_) => panic!("{}: an example must return rows", file.display()),
            Err(e) => panic!("{}{on}: {e}", file.display()),
        };
        let out = file.with_extension("out");
        if bless {
            std::fs::write(&out, &answer).expect("write .out");
        } else if std::fs::read_to_string(&out).ok().as_deref() != Some(answer.as_str()) {
            failures.push(format!("{}{on} differs from {}:\n{answer}", file.display(), out.display()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

async fn column_names(engine: &std::sync::Arc<journeydb::session::Engine>, sql: &str) -> Vec<String> {
    let mut session = engine.session("journey", "journeydb").expect("session");
    let stmt = session.parse(sql).expect("parse").pop().expect("one statement");
    let d = session.describe(&stmt).await.expect("describe");
    d.schema.fields().iter().map(|f| f.name().clone()).collect()
}
