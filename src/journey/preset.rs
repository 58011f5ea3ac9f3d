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

use super::{Base, Identity, REQUIRED, ident, missing_column};
use crate::config::JourneyConfig;
use datafusion::error::Result;

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

/// Segment's and RudderStack's columns: canonical name, its column in `tracks`, in `pages`
/// (None: not in that table; `pages`' event is `page_view`).
const SEGMENT: [(&str, Option<&str>, Option<&str>); 12] = [
    ("user_id", Some("user_id"), Some("user_id")),
    ("anonymous_id", Some("anonymous_id"), Some("anonymous_id")),
    ("event_time", Some("timestamp"), Some("timestamp")),
    ("event_name", Some("event"), None),
    ("source", Some("context_campaign_source"), Some("context_campaign_source")),
    ("medium", Some("context_campaign_medium"), Some("context_campaign_medium")),
    ("campaign", Some("context_campaign_name"), Some("context_campaign_name")),
    ("term", Some("context_campaign_term"), Some("context_campaign_term")),
    ("content", Some("context_campaign_content"), Some("context_campaign_content")),
    ("page_url", Some("context_page_url"), Some("url")),
    ("referrer", Some("context_page_referrer"), Some("referrer")),
    ("revenue", Some("revenue"), None),
];

/// The column a preset reads for `canonical`: `[journey.columns]`' name for it, else `default`.
fn mapped(cfg: &JourneyConfig, canonical: &str, default: &str) -> String {
    cfg.columns.get(canonical).cloned().unwrap_or_else(|| default.into())
}

/// The select item giving `canonical` from `column`: revenue as numeric to the cent (Segment and
/// Snowplow write a double), the rest as it is.
fn item(canonical: &str, column: &str) -> String {
    match canonical {
        "revenue" => format!("CAST({} AS DECIMAL(38, 2)) AS revenue", ident(column)),
        _ => format!("{} AS {canonical}", ident(column)),
    }
}

/// The Segment and RudderStack warehouse schema.
fn segment(cfg: &JourneyConfig, columns: Columns) -> Result<Option<(JourneyConfig, Vec<String>, Base)>> {
    let (tracks, pages) = (columns("tracks"), columns("pages"));
    if tracks.is_none() && pages.is_none() {
        return Ok(None);
    }
    let preset = cfg.preset.as_deref();
    let mut selects = vec![];
    let mut present: Vec<&str> = vec![];
    for (table, cols, is_pages) in [("tracks", &tracks, false), ("pages", &pages, true)] {
        let Some(cols) = cols else { continue };
        let mut items = vec![];
        for &(canonical, in_tracks, in_pages) in &SEGMENT {
            let Some(default) = (if is_pages { in_pages } else { in_tracks }) else {
                items.push(match canonical {
                    "event_name" => "'page_view' AS event_name".to_string(),
                    _ => format!("NULL AS {canonical}"),
                });
                present.extend((canonical == "event_name").then_some(canonical));
                continue;
            };
            let column = mapped(cfg, canonical, default);
            if cols.contains(&column) {
                items.push(match canonical {
                    // As text, as `pages`' literal is.
                    "event_name" => format!("CAST({} AS VARCHAR) AS event_name", ident(&column)),
                    _ => item(canonical, &column),
                });
                present.push(canonical);
            } else if REQUIRED.contains(&canonical) {
                return Err(missing_column(preset, table, &column, canonical));
            } else {
                items.push(match canonical {
                    "revenue" => "NULL AS revenue".to_string(),
                    _ => format!("CAST(NULL AS VARCHAR) AS {canonical}"),
                });
            }
        }
        selects.push(format!("SELECT {} FROM public.{}", items.join(", "), ident(table)));
    }
    // In the canonical order, what some table has.
    let present: Vec<String> =
        SEGMENT.iter().map(|m| m.0).filter(|c| present.contains(c)).map(str::to_string).collect();
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

/// Snowplow's atomic events: canonical name and its column (the time apart).
const SNOWPLOW: [(&str, &str); 11] = [
    ("user_id", "user_id"),
    ("anonymous_id", "domain_userid"),
    ("event_name", "event_name"),
    ("source", "mkt_source"),
    ("medium", "mkt_medium"),
    ("campaign", "mkt_campaign"),
    ("term", "mkt_term"),
    ("content", "mkt_content"),
    ("page_url", "page_url"),
    ("referrer", "page_referrer"),
    ("revenue", "tr_total"),
];

/// Snowplow's atomic events.
fn snowplow(cfg: &JourneyConfig, columns: Columns) -> Result<Option<(JourneyConfig, Vec<String>, Base)>> {
    let Some(cols) = columns(&cfg.events) else { return Ok(None) };
    let has = |c: &str| cols.iter().any(|x| x == c);
    // The time: `derived_tstamp`, else (where it is NULL, or the table lacks it) `collector_tstamp`.
    let time = match cfg.columns.get("event_time") {
        Some(c) => c.clone(),
        None if has("derived_tstamp") => "derived_tstamp".into(),
        None => "collector_tstamp".into(),
    };
    if !has(&time) {
        return Err(missing_column(Some("snowplow"), &cfg.events, &time, "event_time"));
    }
    let mut items = vec![match cfg.columns.get("event_time") {
        None if time == "derived_tstamp" && has("collector_tstamp") => {
            "coalesce(derived_tstamp, collector_tstamp) AS event_time".to_string()
        }
        _ => item("event_time", &time),
    }];
    let mut present = vec!["event_time".to_string()];
    for (canonical, default) in SNOWPLOW {
        let column = mapped(cfg, canonical, default);
        if has(&column) {
            items.push(item(canonical, &column));
            present.push(canonical.to_string());
        } else if REQUIRED.contains(&canonical) {
            return Err(missing_column(Some("snowplow"), &cfg.events, &column, canonical));
        }
    }
    let from = format!("(SELECT {} FROM public.{})", items.join(", "), ident(&cfg.events));
    let canonical = JourneyConfig { columns: Default::default(), ..cfg.clone() };
    Ok(Some((canonical, present, Base { from, identity: Identity::Events })))
}
