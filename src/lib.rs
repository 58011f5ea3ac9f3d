//! journeydb: a customer-journey analytics engine on Apache DataFusion, served over the
//! PostgreSQL wire protocol.
//!
//! # Layout
//!
//! - [`cli`]: command-line arguments (clap derive, no logic).
//! - [`config`]: typed configuration, defaults in one place, `validate()`.
//! - [`error`]: the engine error enum and the ONE mapping to PostgreSQL SQLSTATEs.
//! - [`sql`]: the ONE place that parses and plans SQL text (statements, stored views, the
//!   journey model's views, report sources).
//! - [`session`]: the ONE place that builds a DataFusion `SessionContext` (store + journey
//!   functions + PostgreSQL compatibility); the server, the `.slt` runner and the benchmarks
//!   all go through it.
//! - [`store`]: the data directory: each folder of Parquet files is a table, found at start and
//!   again when files change; atomic writes.
//! - [`journey`]: the journey model as views of schema `journey` (stitched events,
//!   touchpoints, conversions, identities), generated from the configuration.
//! - [`pg`]: PostgreSQL compatibility: `pg_catalog`, compatibility functions, statement rewrites,
//!   session settings.
//! - [`server`]: the pgwire server: startup, simple and extended query, Arrow to PostgreSQL
//!   encoding.
//! - [`demo`]: the deterministic demo dataset generator.
//! - [`cluster`]: the Ballista scheduler and executors, and what of a plan the server sends them.
//!
//! Data flows one way: client -> pgwire handler -> per-connection session -> DataFusion
//! (catalog over the Parquet store + journey functions) -> Arrow batches -> PostgreSQL encoder
//! -> client.

pub mod cli;
pub mod cluster;
pub mod config;
pub mod demo;
pub mod error;
pub mod exec;
pub mod explorer;
pub mod journey;
pub mod pg;
pub mod server;
pub mod session;
pub mod sql;
pub mod store;

pub use error::{Error, Result};
