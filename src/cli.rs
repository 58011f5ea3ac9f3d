//! Command-line arguments (clap derive). No logic lives here.

use crate::demo::DemoOptions;
use clap::{Args, Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;

/// journeydb: customer-journey analytics over Parquet, spoken as PostgreSQL.
#[derive(Debug, Parser)]
#[command(name = "journeydb", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the PostgreSQL-protocol server over a data directory.
    Serve(ServeArgs),
    /// Generate the demo journey dataset as Parquet.
    Demo(DemoArgs),
    /// Import CSV (with a header), JSON lines or Parquet files into a table, all or nothing.
    Import(ImportArgs),
    /// Run a cluster's scheduler (Apache DataFusion Ballista with journeydb's functions).
    Scheduler(SchedulerArgs),
    /// Run a cluster executor: it polls the scheduler for tasks and runs them.
    Executor(ExecutorArgs),
    /// Read a password on standard input and print its SCRAM-SHA-256 verifier, for
    /// `[[auth.users]]` in the configuration.
    HashPassword,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Data directory (default: the configuration's).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Configuration file (TOML).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// The table: `name` (schema public) or `schema.name`; created when missing.
    pub table: String,
    /// Files to import: .csv, .jsonl / .ndjson / .json, .parquet.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Data directory: each folder of Parquet files is a table. Created with a demo dataset
    /// when missing.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Address to listen on (default 127.0.0.1:5433).
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Address of the journey explorer, the web page (default 127.0.0.1:5480), or `off`.
    #[arg(long)]
    pub http_listen: Option<String>,
    /// Configuration file (TOML).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// The cluster's scheduler (`host:port`): what can run distributed runs there.
    #[arg(long)]
    pub cluster: Option<String>,
}

#[derive(Debug, Args)]
pub struct SchedulerArgs {
    /// Address to listen on.
    #[arg(long, default_value = crate::cluster::DEFAULT_SCHEDULER)]
    pub listen: SocketAddr,
    /// Configuration file (TOML): the data location and `[store]`, to read object storage.
    #[arg(long)]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ExecutorArgs {
    /// The scheduler (`host:port`).
    #[arg(long, default_value = crate::cluster::DEFAULT_SCHEDULER)]
    pub scheduler: String,
    /// Address Arrow Flight listens on (other executors and the server read results there);
    /// task polling listens on the next port.
    #[arg(long, default_value = "127.0.0.1:50051")]
    pub listen: SocketAddr,
    /// Where shuffle and spill files go (default: a folder in the system's temporary directory).
    #[arg(long)]
    pub work_dir: Option<PathBuf>,
    /// Memory this executor's tasks may hold together (`"2GB"`); the configuration's
    /// `memory_limit` when unset.
    #[arg(long)]
    pub memory_limit: Option<String>,
    /// Tasks run at once (default: the machine's cores).
    #[arg(long)]
    pub concurrent_tasks: Option<usize>,
    /// Configuration file (TOML): the data location and `[store]`, to read object storage.
    #[arg(long)]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Number of events to generate.
    #[arg(long, default_value_t = 300_000)]
    pub events: u64,
    /// Output data directory (the `events` table is written under it).
    #[arg(long)]
    pub out: PathBuf,
    /// Random seed: the same seed gives the same dataset, byte for byte.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Events per Parquet file.
    #[arg(long, default_value_t = 1_000_000)]
    pub events_per_file: u64,
    /// The tables to write: `canonical` (`events`), or a tracker's shape for its
    /// `[journey] preset`: `segment` or `rudderstack` (`tracks`, `pages`, `identifies`,
    /// `aliases`, `groups`), `snowplow` (atomic `events`), `ga4` (`events_YYYYMMDD` per day).
    #[arg(long, default_value = "canonical")]
    pub shape: String,
}

impl DemoArgs {
    pub fn options(&self) -> crate::error::Result<DemoOptions> {
        let shape = crate::demo::Shape::parse(&self.shape).ok_or_else(|| {
            crate::error::Error::InvalidParameter(format!(
                "--shape {}: one of canonical, segment, rudderstack, snowplow, ga4",
                self.shape
            ))
        })?;
        Ok(DemoOptions { events: self.events, seed: self.seed, events_per_file: self.events_per_file, shape })
    }
}
