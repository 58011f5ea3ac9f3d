//! The journey model as SQL the user can see and query: the views of schema `journey`.
//!
//! The views are generated from the `[journey]` configuration over the store's events table and
//! planned again at every lookup, so they follow the table's files and columns as they change:
//!
//! - `journey.identities`: one row per anonymous id ever seen together with a known user:
//!   `anonymous_id`, `person_id` (the smallest such user id, so the answer does not depend on
//!   which event came first) and `known_users` (how many user ids the cookie was seen with; more
//!   than one means a shared device).
//! - `journey.events`: every event that has a person, stitched: `person_id` is the event's
//!   `user_id`, else the user its `anonymous_id` was ever seen with (see `identities`), else the
//!   `anonymous_id`. So a cookie's visits before sign-up belong to the user's journey from the
//!   first anonymous visit on. Events with neither id are left out. Adds `session` (numbered per
//!   person with `sessionize`, gap from the configuration), `is_touch` (a non-null channel: a
//!   marketing touch, offline ones included), `is_conversion`, `milestone` (`lead`,
//!   `opportunity`, `closed_won` or NULL), `stage` (from the configured mapping, NULL for
//!   unmapped events) and `stage_reached` (the furthest stage, in the configured order, the
//!   person has reached by this event's time: stage-to-stage flow without going back). When the table has no `channel` column but has `source` and `medium`,
//!   `channel` is their GA4 default channel group.
//! - `journey.touchpoints`: the events with `is_touch`.
//! - `journey.conversions`: the events with `is_conversion`, with `conversion_number` (1 for a
//!   person's first conversion; ties in time are ordered by event name) and `value` (revenue,
//!   0 when missing, exact decimal).
//!
//! Canonical column names are used throughout; `[journey.columns]` maps a table's own names to
//! them. Optional columns (`term`, `content`, `referrer`, `revenue`, ...) are carried when the
//! table has them.

use crate::config::{CANONICAL_COLUMNS, JourneyConfig};
use crate::session::Engine;
use datafusion::catalog::{SchemaProvider, TableProvider, view::ViewTable};
use datafusion::error::{DataFusionError, Result};
use std::sync::Arc;

/// The schema that holds the journey model's views.
pub const JOURNEY_SCHEMA: &str = "journey";

/// The views, in name order.
pub const VIEWS: [&str; 4] = ["conversions", "events", "identities", "touchpoints"];

/// The columns every events table must have (canonical names).
const REQUIRED: [&str; 4] = ["user_id", "anonymous_id", "event_time", "event_name"];

/// The SQL of view `name` over an events table with columns `present` (the table's own names),
/// or `None` for an unknown view. Fails when a required column is missing.
pub fn view_sql(cfg: &JourneyConfig, name: &str, present: &[String]) -> Result<Option<String>> {
    let has = |canonical: &str| present.iter().any(|c| c == cfg.column(canonical));
    if let Some(missing) = REQUIRED.iter().find(|c| !has(c)) {
        return Err(DataFusionError::Plan(format!(
            "journey model: table \"{}\" has no column \"{}\" (canonical \"{missing}\"); map it in [journey.columns]",
            cfg.events,
            cfg.column(missing)
        )));
    }
    let table = format!("public.{}", ident(&cfg.events));
    let col = |canonical: &str| format!("e.{} AS {canonical}", ident(cfg.column(canonical)));
    let (anon, user) = (ident(cfg.column("anonymous_id")), ident(cfg.column("user_id")));
    // The view adds the distinct count; the stitching join needs only the smallest user.
    let identities = |extra: &str| {
        format!(
            "SELECT {anon} AS anonymous_id, min({user}) AS person_id{extra} \
             FROM {table} WHERE {anon} IS NOT NULL AND {user} IS NOT NULL GROUP BY {anon}"
        )
    };
    if name == "identities" {
        return Ok(Some(identities(&format!(", count(DISTINCT {user}) AS known_users"))));
    }
    let identities = identities("");
    let mut columns = vec![
        format!("coalesce(e.{user}, i.person_id, e.{anon}) AS person_id"),
        col("user_id"),
        col("anonymous_id"),
        col("event_time"),
        col("event_name"),
    ];
    let mut carried = vec![];
    if has("channel") {
        columns.push(col("channel"));
    } else if has("source") && has("medium") {
        let opt = |c: &str| if has(c) { format!("e.{}", ident(cfg.column(c))) } else { "NULL".into() };
        columns.push(format!(
            "channel_group({}, {}, {}, {}) AS channel",
            opt("source"),
            opt("medium"),
            opt("campaign"),
            opt("referrer")
        ));
    } else {
        columns.push("CAST(NULL AS VARCHAR) AS channel".into());
    }
    for c in CANONICAL_COLUMNS.iter().skip(5) {
        if has(c) {
            columns.push(col(c));
            carried.push(*c);
        }
    }
    let stitched =
        format!("SELECT {} FROM {table} e LEFT JOIN ({identities}) i ON e.{anon} = i.anonymous_id", columns.join(", "));
    let in_list = |events: &[String]| {
        if events.is_empty() { "FALSE".to_string() } else { format!("event_name IN ({})", literals(events)) }
    };
    let m = &cfg.milestones;
    let milestone = format!(
        "CASE WHEN {} THEN 'lead' WHEN {} THEN 'opportunity' WHEN {} THEN 'closed_won' END",
        in_list(&m.lead),
        in_list(&m.opportunity),
        in_list(&m.closed_won)
    );
    let stage = if cfg.stages.is_empty() {
        "CAST(NULL AS VARCHAR)".to_string()
    } else {
        let arms: Vec<String> =
            cfg.stages.iter().map(|s| format!("WHEN {} THEN {}", in_list(&s.events), literal(&s.name))).collect();
        format!("CASE {} END", arms.join(" "))
    };
    // The furthest stage reached so far, in the configured order: peers in time see each other
    // (the default RANGE frame), so ties cannot make it depend on row order.
    let stage_reached = if cfg.stages.is_empty() {
        "CAST(NULL AS VARCHAR)".to_string()
    } else {
        let rank: Vec<String> =
            cfg.stages.iter().enumerate().map(|(i, s)| format!("WHEN {} THEN {}", in_list(&s.events), i + 1)).collect();
        let names: Vec<String> =
            cfg.stages.iter().enumerate().map(|(i, s)| format!("WHEN {} THEN {}", i + 1, literal(&s.name))).collect();
        format!(
            "CASE max(CASE {} END) OVER (PARTITION BY person_id ORDER BY event_time) {} END",
            rank.join(" "),
            names.join(" ")
        )
    };
    let extra: String = carried.iter().map(|c| format!(", {c}")).collect();
    let events = format!(
        "SELECT person_id, user_id, anonymous_id, event_time, event_name, channel{extra}, \
         sessionize(event_time, INTERVAL '{gap} seconds') OVER (PARTITION BY person_id ORDER BY event_time) AS session, \
         channel IS NOT NULL AS is_touch, {conv} AS is_conversion, {milestone} AS milestone, {stage} AS stage, {stage_reached} AS stage_reached \
         FROM ({stitched}) s WHERE person_id IS NOT NULL",
        gap = cfg.session_gap_seconds,
        conv = in_list(&cfg.conversions),
    );
    Ok(match name {
        "events" => Some(events),
        "touchpoints" => Some(format!("SELECT * FROM ({events}) t WHERE is_touch")),
        "conversions" => {
            let value = if has("revenue") { "coalesce(revenue, 0)" } else { "CAST(0 AS DECIMAL(12, 2))" };
            Some(format!(
                "SELECT *, row_number() OVER (PARTITION BY person_id ORDER BY event_time, event_name) \
                 AS conversion_number, {value} AS value FROM ({events}) c WHERE is_conversion"
            ))
        }
        _ => None,
    })
}

/// A double-quoted SQL identifier.
fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn literals(v: &[String]) -> String {
    v.iter().map(|s| literal(s)).collect::<Vec<_>>().join(", ")
}

/// Schema `journey`: the views, present when the store has the configured events table.
#[derive(Debug)]
pub struct JourneySchema {
    engine: Arc<Engine>,
}

impl JourneySchema {
    pub fn new(engine: Arc<Engine>) -> Self {
        JourneySchema { engine }
    }

    fn config(&self) -> &JourneyConfig {
        &self.engine.config().journey
    }
}

#[async_trait::async_trait]
impl SchemaProvider for JourneySchema {
    fn table_names(&self) -> Vec<String> {
        if self.engine.store().has_table(&self.config().events) {
            VIEWS.iter().map(|v| v.to_string()).collect()
        } else {
            vec![]
        }
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        if !VIEWS.contains(&name) {
            return Ok(None);
        }
        let ctx = self.engine.view_context()?;
        let Ok(events) = ctx.table_provider(format!("public.{}", ident(&self.config().events))).await else {
            return Ok(None);
        };
        let present: Vec<String> = events.schema().fields().iter().map(|f| f.name().clone()).collect();
        let Some(sql) = view_sql(self.config(), name, &present)? else {
            return Ok(None);
        };
        let plan = ctx.state().create_logical_plan(&sql).await?;
        Ok(Some(Arc::new(ViewTable::new(plan, Some(sql)))))
    }

    fn table_exist(&self, name: &str) -> bool {
        VIEWS.contains(&name) && self.engine.store().has_table(&self.config().events)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn demo_columns() -> Vec<String> {
        CANONICAL_COLUMNS.iter().map(|c| c.to_string()).collect()
    }

    #[test]
    fn every_view_has_sql_and_unknown_views_none() {
        let cfg = JourneyConfig::default();
        for v in VIEWS {
            assert!(view_sql(&cfg, v, &demo_columns()).expect("sql").is_some(), "{v}");
        }
        assert!(view_sql(&cfg, "nope", &demo_columns()).expect("sql").is_none());
    }

    #[test]
    fn mapped_and_missing_columns() {
        let mut cfg = JourneyConfig::default();
        cfg.columns.insert("event_time".into(), "ts".into());
        let mut cols = demo_columns();
        let err = view_sql(&cfg, "events", &cols).expect_err("ts missing");
        assert!(err.to_string().contains("no column \"ts\" (canonical \"event_time\")"), "{err}");
        cols[2] = "ts".into();
        let sql = view_sql(&cfg, "events", &cols).expect("ok").expect("view");
        assert!(sql.contains("e.\"ts\" AS event_time"), "{sql}");
    }

    #[test]
    fn channel_is_derived_only_without_a_channel_column() {
        let cfg = JourneyConfig::default();
        let with = view_sql(&cfg, "events", &demo_columns()).expect("ok").expect("view");
        assert!(!with.contains("channel_group("));
        let cols: Vec<String> = demo_columns().into_iter().filter(|c| c != "channel").collect();
        let derived = view_sql(&cfg, "events", &cols).expect("ok").expect("view");
        assert!(derived.contains("channel_group(e.\"source\", e.\"medium\", e.\"campaign\", e.\"referrer\")"));
    }

    #[test]
    fn quoting() {
        assert_eq!(ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(literal("it's"), "'it''s'");
    }
}
