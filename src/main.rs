//! The `journeydb` binary: parse the command line, load the configuration, run.

use clap::Parser;
use journeydb::cli::{Cli, Command};
use journeydb::config::Config;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,buoyant_kernel=warn,deltalake_core=warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("journeydb: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> journeydb::Result<()> {
    let runtime = journeydb::server::runtime("journeydb").map_err(journeydb::Error::Io)?;
    match cli.command {
        Command::Serve(args) => {
            let config = Config::load(args.config.as_deref())?.with_serve_args(&args);
            config.validate()?;
            journeydb::demo::create_if_missing(&config)?;
            runtime.block_on(journeydb::server::run(config))
        }
        Command::Import(args) => {
            let mut config = Config::load(args.config.as_deref())?;
            if let Some(d) = &args.data {
                config.data_dir = d.clone();
            }
            let store = journeydb::store::Store::open_location(&config.location()?, &config.store)?;
            let rows = journeydb::store::import::import_named(&store, &args.table, &args.files)?;
            println!("imported {rows} rows into {}", args.table);
            Ok(())
        }
        Command::Scheduler(args) => {
            let config = Config::load(args.config.as_deref())?;
            runtime.block_on(journeydb::cluster::run_scheduler(args.listen, &config))
        }
        Command::Executor(args) => {
            let config = Config::load(args.config.as_deref())?;
            let options = journeydb::cluster::ExecutorOptions {
                scheduler: args.scheduler,
                listen: args.listen,
                work_dir: args.work_dir,
                memory_limit: args.memory_limit,
                concurrent_tasks: args.concurrent_tasks,
            };
            runtime.block_on(journeydb::cluster::run_executor(options, &config))
        }
        Command::HashPassword => {
            let mut line = String::new();
            std::io::stdin().read_line(&mut line)?;
            let password = line.trim_end_matches(['\r', '\n']);
            if password.is_empty() {
                return Err(journeydb::Error::Config("an empty password cannot log in".into()));
            }
            println!("{}", journeydb::server::auth::hash_password(password)?);
            Ok(())
        }
        Command::Demo(args) => {
            let out = args.out.to_str().ok_or_else(|| journeydb::Error::Config("--out is not valid UTF-8".into()))?;
            let location = journeydb::store::Location::parse(out)?;
            let stats = journeydb::demo::generate_to(&location, &Default::default(), &args.options()?)?;
            println!("{stats}");
            Ok(())
        }
    }
}
