//! The shapes trackers write, read as the journey model's events (`[journey] preset`).
//!
//! - `segment`, `rudderstack` (the same warehouse schema): `tracks` (one row per tracked event:
//!   `anonymous_id`, `user_id`, `timestamp`, `event`, the `context_campaign_*` and
//!   `context_page_*` columns, `revenue` where the events carry it) and `pages` (one row per page
//!   view, the event `page_view`: the same ids and context, its own `url` and `referrer`) are
//!   the events, in canonical columns: `source`, `medium`, `campaign`, `term`, `content` from
//!   `context_campaign_source`, `_medium`, `_name`, `_term`, `_content`; `page_url` and
//!   `referrer` from `context_page_url` and `context_page_referrer` (a page's own `url` and
//!   `referrer`), `revenue` (a double there) as numeric to the cent. People come from the identity graph ([`super::Identity::Graph`]) of
//!   `identifies` (`anonymous_id`, `user_id`: every link Segment records is an identify call;
//!   without that table, the events that carry both ids) and `aliases`
//!   (`previous_id`, `user_id`): renamed users and every cookie they used are one journey.
//!   `[journey.columns]` renames a canonical column's source column in both tables.
//! - `snowplow`: the atomic `events` table (the configured `events`): `domain_userid` is the
//!   anonymous id, `user_id` the user, `derived_tstamp` the time (else `collector_tstamp`),
//!   `event_name`, `mkt_source`, `_medium`, `_campaign`, `_term`, `_content`, `page_url`,
//!   `page_referrer`, and `tr_total` the revenue (numeric to the cent). Its `user_id` and
//!   `domain_userid` pairs stitch people as the canonical model does.
//!
//! A table a preset reads may be missing (a site without custom events has no `tracks`), and a
//! column too: it reads as NULL. The view is built each time it is looked up, from the tables'
//! columns then.

use super::{Base, Identity, ident};
use crate::config::JourneyConfig;
use datafusion::error::{DataFusionError, Result};

/// The tables a preset's events are in: the model exists when one of them does.
pub fn event_tables(cfg: &JourneyConfig) -> Vec<String> {
    match cfg.preset.as_deref() {
        Some("segment" | "rudderstack") => vec!["tracks".into(), "pages".into()],
        _ => vec![cfg.events.clone()],
    }
}

/// The columns of the store's `public` table of a name, or none when there is no such table.
pub type Columns<'a> = &'a dyn Fn(&str) -> Option<Vec<String>>;

/// The columns of `store`'s table `name`.
pub fn store_columns(store: &crate::store::Store, name: &str) -> Option<Vec<String>> {
    use datafusion::catalog::TableProvider;
    let table = store.table(name).ok()??;
    Some(table.schema().fields().iter().map(|f| f.name().clone()).collect())
}

/// What the journey model reads: the configuration its SQL is written with (a preset's
/// relation has canonical names), the relation's columns, and the relation. None when the
/// store has none of its tables.
pub fn base(cfg: &JourneyConfig, columns: Columns) -> Result<Option<(JourneyConfig, Vec<String>, Base)>> {
    match cfg.preset.as_deref() {
        Some("segment" | "rudderstack") => segment(cfg, columns),
        Some("snowplow") => snowplow(cfg, columns),
        _ => {
            let Some(present) = columns(&cfg.events) else { return Ok(None) };
            let from = format!("public.{}", ident(&cfg.events));
            Ok(Some((cfg.clone(), present, Base { from, identity: Identity::Events })))
        }
    }
}

/// The Segment and RudderStack warehouse schema.
fn segment(cfg: &JourneyConfig, columns: Columns) -> Result<Option<(JourneyConfig, Vec<String>, Base)>> {
    let (tracks, pages) = (columns("tracks"), columns("pages"));
    if tracks.is_none() && pages.is_none() {
        return Ok(None);
    }
    // Canonical column <- (its column in tracks, in pages); None: not in that table.
    let name = |canonical: &str, default: &str| cfg.columns.get(canonical).cloned().unwrap_or_else(|| default.into());
    let mapping: Vec<(&str, Option<String>, Option<String>)> = vec![
        ("user_id", Some(name("user_id", "user_id")), Some(name("user_id", "user_id"))),
        ("anonymous_id", Some(name("anonymous_id", "anonymous_id")), Some(name("anonymous_id", "anonymous_id"))),
        ("event_time", Some(name("event_time", "timestamp")), Some(name("event_time", "timestamp"))),
        ("event_name", Some(name("event_name", "event")), None),
        ("source", Some(name("source", "context_campaign_source")), Some(name("source", "context_campaign_source"))),
        ("medium", Some(name("medium", "context_campaign_medium")), Some(name("medium", "context_campaign_medium"))),
        ("campaign", Some(name("campaign", "context_campaign_name")), Some(name("campaign", "context_campaign_name"))),
        ("term", Some(name("term", "context_campaign_term")), Some(name("term", "context_campaign_term"))),
        (
            "content",
            Some(name("content", "context_campaign_content")),
            Some(name("content", "context_campaign_content")),
        ),
        ("page_url", Some(name("page_url", "context_page_url")), Some(name("page_url", "url"))),
        ("referrer", Some(name("referrer", "context_page_referrer")), Some(name("referrer", "referrer"))),
        ("revenue", Some(name("revenue", "revenue")), None),
    ];
    let required = ["user_id", "anonymous_id", "event_time"];
    let mut selects = vec![];
    let mut present: Vec<String> = vec![];
    for (table, cols, is_pages) in [("tracks", &tracks, false), ("pages", &pages, true)] {
        let Some(cols) = cols else { continue };
        let mut items = vec![];
        for (canonical, in_tracks, in_pages) in &mapping {
            let source = if is_pages { in_pages } else { in_tracks };
            let found = source.as_ref().filter(|c| cols.contains(c));
            if found.is_none() && (required.contains(canonical) || (*canonical == "event_name" && !is_pages)) {
                return Err(DataFusionError::Plan(format!(
                    "journey model (preset {}): table \"{table}\" has no column \"{}\" (canonical \"{canonical}\"); \
                     map it in [journey.columns]",
                    cfg.preset.as_deref().unwrap_or_default(),
                    source.as_deref().unwrap_or(canonical)
                )));
            }
            let item = match (found, *canonical) {
                (Some(c), "event_name") => format!("CAST({} AS VARCHAR) AS event_name", ident(c)),
                // Segment writes revenue as a double: exact cents from here on.
                (Some(c), "revenue") => format!("CAST({} AS DECIMAL(38, 2)) AS revenue", ident(c)),
                (Some(c), _) => format!("{} AS {canonical}", ident(c)),
                (None, "event_name") => "'page_view' AS event_name".to_string(),
                (None, "revenue") => "NULL AS revenue".to_string(),
                (None, _) => format!("CAST(NULL AS VARCHAR) AS {canonical}"),
            };
            if (found.is_some() || *canonical == "event_name") && !present.iter().any(|p| p == canonical) {
                present.push(canonical.to_string());
            }
            items.push(item);
        }
        selects.push(format!("SELECT {} FROM public.{}", items.join(", "), ident(table)));
    }
    // Keep the canonical order, and only what some table has.
    let present: Vec<String> = mapping.iter().map(|m| m.0.to_string()).filter(|c| present.contains(c)).collect();
    let events = selects.join(" UNION ALL ");
    // The links: Segment records each as an identify call; without `identifies`, the events
    // that carry both ids (a second pass over them).
    let pairs = match columns("identifies") {
        Some(cols) if cols.iter().any(|c| c == "anonymous_id") && cols.iter().any(|c| c == "user_id") => {
            "SELECT anonymous_id, user_id FROM public.identifies".to_string()
        }
        _ => format!(
            "SELECT anonymous_id, user_id FROM ({events}) x WHERE anonymous_id IS NOT NULL AND user_id IS NOT NULL"
        ),
    };
    let aliases = match columns("aliases") {
        Some(cols) if cols.iter().any(|c| c == "previous_id") && cols.iter().any(|c| c == "user_id") => {
            Some("SELECT previous_id, user_id FROM public.aliases".to_string())
        }
        _ => None,
    };
    // The relation has canonical names: the model's SQL maps nothing more.
    let canonical = JourneyConfig { columns: Default::default(), ..cfg.clone() };
    let base = Base { from: format!("({events})"), identity: Identity::Graph { pairs, aliases } };
    Ok(Some((canonical, present, base)))
}

/// Snowplow's atomic events.
fn snowplow(cfg: &JourneyConfig, columns: Columns) -> Result<Option<(JourneyConfig, Vec<String>, Base)>> {
    let Some(cols) = columns(&cfg.events) else { return Ok(None) };
    let has = |c: &str| cols.iter().any(|x| x == c);
    let name = |canonical: &str, default: &str| cfg.columns.get(canonical).cloned().unwrap_or_else(|| default.into());
    let time = match cfg.columns.get("event_time") {
        Some(c) => ident(c),
        None if has("derived_tstamp") && has("collector_tstamp") => "coalesce(derived_tstamp, collector_tstamp)".into(),
        None if has("derived_tstamp") => "derived_tstamp".into(),
        None => "collector_tstamp".into(),
    };
    let mapping = [
        ("user_id", name("user_id", "user_id")),
        ("anonymous_id", name("anonymous_id", "domain_userid")),
        ("event_name", name("event_name", "event_name")),
        ("source", name("source", "mkt_source")),
        ("medium", name("medium", "mkt_medium")),
        ("campaign", name("campaign", "mkt_campaign")),
        ("term", name("term", "mkt_term")),
        ("content", name("content", "mkt_content")),
        ("page_url", name("page_url", "page_url")),
        ("referrer", name("referrer", "page_referrer")),
        ("revenue", name("revenue", "tr_total")),
    ];
    let mut items = vec![format!("{time} AS event_time")];
    let mut present = vec!["event_time".to_string()];
    let time_column = cfg
        .columns
        .get("event_time")
        .cloned()
        .unwrap_or_else(|| if has("derived_tstamp") { "derived_tstamp".into() } else { "collector_tstamp".into() });
    for (canonical, column) in [("event_time", &time_column)].into_iter().chain(mapping.iter().map(|(c, n)| (*c, n))) {
        let required = ["user_id", "anonymous_id", "event_time", "event_name"].contains(&canonical);
        if required && !has(column) {
            return Err(DataFusionError::Plan(format!(
                "journey model (preset snowplow): table \"{}\" has no column \"{column}\" (canonical \"{canonical}\"); \
                 map it in [journey.columns]",
                cfg.events
            )));
        }
        if canonical == "event_time" || !has(column) {
            continue;
        }
        items.push(match canonical {
            "revenue" => format!("CAST({} AS DECIMAL(38, 2)) AS revenue", ident(column)),
            _ => format!("{} AS {canonical}", ident(column)),
        });
        present.push(canonical.to_string());
    }
    let from = format!("(SELECT {} FROM public.{})", items.join(", "), ident(&cfg.events));
    let canonical = JourneyConfig { columns: Default::default(), ..cfg.clone() };
    Ok(Some((canonical, present, Base { from, identity: Identity::Events })))
}
