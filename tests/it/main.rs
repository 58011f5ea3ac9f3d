//! The one integration-test binary (each file under `tests/` would relink DataFusion).
//!
//! - `abuse`: issue 25's probes against the `journeydb` binary under an address-space limit.
//! - `auth`: SCRAM-SHA-256 users and TLS (tokio-postgres, psql with sslmode=require).
//! - `cluster`: a scheduler and two executors (processes): the corpus and the cookbook answer
//!   the same there.
//! - `clients`: psycopg 2 and 3, asyncpg, SQLAlchemy with pandas reading journey reports.
//! - `cohorts`: `retention`, `lifecycle` and `stickiness` against their definitions in plain SQL
//!   on random events, in New York's time zone.
//! - `differential`: a seeded, generated SQL corpus run on journeydb and PostgreSQL 15.
//! - `dbt`: dbt-postgres builds the project of `tests/dbt/` twice against a real server.
//! - `examples`: the cookbook in `sql/examples/`, each answer checked against its `.out` file.
//! - `explorer`: the journey explorer's views over HTTP against their SQL over the wire.
//! - `grafana`: the query shapes Grafana's PostgreSQL data source sends.
//! - `jdbc`: pgjdbc as Metabase uses it (queries, typed parameters, DatabaseMetaData), and a
//!   replay of Metabase's sync and query SQL.
//! - `journey`: the journey model's views on a hand-made, column-mapped events table.
//! - `fixture`: data directories with known tables, and servers on 127.0.0.1:0.
//! - `superset`: Apache Superset's database, SQL Lab, dashboard import and chart data on journeydb.
//! - `slt`: the `.slt` files of `sql/slt/`, in process (batch sizes 1, 2, 3 and default,
//!   one and four partitions) and over the wire (simple and extended protocol).
//! - `wire`: tokio-postgres against a real server: types, parameters, errors, the store.
//! - `limits`: the connection limit (53300) and the memory limit (spilling, 53200).
//! - `load`: pgbench, 32 connections of mixed journey queries, both protocols.
//! - `markov`: the Markov report against ChannelAttribution (PyPI) on the same paths.
//! - `oracle`: PostgreSQL 15 as the oracle: `sql/oracle/*.sql` answered the same, errors with
//!   the same SQLSTATEs.
//! - `psql`: the psql client against a real server.
//! - `sequence`: `sequence_match`, `sequence_count`, `sequence_next_node` and `retention`
//!   against ClickHouse (chDB, PyPI) on the same random events.
//! - `s3`: the store on a real S3-compatible server (moto): the store's `.slt` corpus, Delta
//!   tables shared with delta-rs both ways, a cut connection, two servers writing one table.
//! - `writes`: COPY in every format, failed copies, readers during rewrites, the crash test.

mod abuse;
mod auth;
mod clients;
mod cluster;
mod cohorts;
mod dbt;
mod differential;
mod examples;
mod explorer;
mod fixture;
mod grafana;
mod jdbc;
mod journey;
mod limits;
mod load;
mod markov;
mod oracle;
mod psql;
mod s3;
mod sequence;
mod slt;
mod superset;
mod wire;
mod writes;
