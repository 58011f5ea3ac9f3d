//! Typed configuration. Every default lives in [`Config::default`]; [`Config::validate`]
//! rejects what the server must not run with.

use crate::cli::ServeArgs;
use crate::error::{Error, Result};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Default listen address: loopback only, one port above PostgreSQL's.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:5433";
/// Default data directory, relative to the working directory.
pub const DEFAULT_DATA_DIR: &str = "journeydb-data";
/// Events in the demo dataset created when the data directory is missing.
pub const DEFAULT_DEMO_EVENTS: u64 = 300_000;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address the server listens on.
    pub listen: SocketAddr,
    /// The data directory: one folder of Parquet files per table.
    pub data_dir: PathBuf,
    /// Events generated into a missing data directory (0: create it empty).
    pub demo_events: u64,
    /// Seed of that demo dataset.
    pub demo_seed: u64,
    /// Target rows per output batch of a query (DataFusion `batch_size`).
    pub batch_size: usize,
    /// Threads a query may use (DataFusion `target_partitions`); 0 = number of cores.
    pub target_partitions: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: DEFAULT_LISTEN.parse().expect("valid default address"),
            data_dir: PathBuf::from(DEFAULT_DATA_DIR),
            demo_events: DEFAULT_DEMO_EVENTS,
            demo_seed: 42,
            batch_size: 8192,
            target_partitions: 0,
        }
    }
}

impl Config {
    /// Reads a TOML configuration file, or the defaults when there is none.
    pub fn load(path: Option<&Path>) -> Result<Config> {
        let Some(path) = path else {
            return Ok(Config::default());
        };
        let text =
            std::fs::read_to_string(path).map_err(|e| Error::Config(format!("cannot read {}: {e}", path.display())))?;
        toml::from_str(&text).map_err(|e| Error::Config(format!("invalid configuration {}: {e}", path.display())))
    }

    /// Command-line flags override the file.
    pub fn with_serve_args(mut self, args: &ServeArgs) -> Config {
        if let Some(data) = &args.data {
            self.data_dir = data.clone();
        }
        if let Some(listen) = args.listen {
            self.listen = listen;
        }
        self
    }

    /// Rejects configurations the server must not run with.
    ///
    /// Until authentication exists, connections are trusted; so the server only listens on a
    /// loopback address, where every client is a local user.
    pub fn validate(&self) -> Result<()> {
        if !self.listen.ip().is_loopback() {
            return Err(Error::Config(format!(
                "refusing to listen on {}: connections are trusted without authentication, \
                 which is allowed on a loopback address only",
                self.listen
            )));
        }
        if self.batch_size == 0 {
            return Err(Error::Config("batch_size must be at least 1".into()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_loopback_and_valid() {
        let c = Config::default();
        assert_eq!(c.listen.to_string(), "127.0.0.1:5433");
        c.validate().expect("defaults are valid");
    }

    #[test]
    fn refuses_non_loopback_without_auth() {
        let c = Config { listen: "0.0.0.0:5433".parse().expect("addr"), ..Config::default() };
        let err = c.validate().expect_err("must refuse");
        assert!(err.to_string().contains("refusing to listen on 0.0.0.0:5433"), "{err}");
    }

    #[test]
    fn file_values_and_unknown_keys() {
        let c: Config = toml::from_str("listen = '127.0.0.1:6000'\ndemo_events = 10").expect("parse");
        assert_eq!(c.listen.port(), 6000);
        assert_eq!(c.demo_events, 10);
        assert!(toml::from_str::<Config>("nonsense = 1").is_err());
    }
}
