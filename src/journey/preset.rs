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
//!   `page_referrer`, `tr_total` the revenue (numeric to the cent) and `domain_sessionid` the
//!   session id (used with `sessions = "tracker"`). Its `user_id` and `domain_userid` pairs
//!   stitch people as the canonical model does.
//! - `ga4`: see [`ga4`]; the session id is `user_pseudo_id` and the `ga_session_id` parameter
//!   (the session's start in seconds, unique per cookie only) together.
//!
//! A table a preset reads may be missing (a site without custom events has no `tracks`), and a
//! column too: it reads as NULL. The view is built each time it is looked up, from the tables'
//! columns then.

use super::{Accounts, Base, Identity, REQUIRED, ident, missing_column};
use crate::config::JourneyConfig;
use datafusion::catalog::TableProvider;
use datafusion::error::{DataFusionError, Result};
use std::sync::Arc;

/// Whether the store has a table of the model's events: the model exists when it does.
pub fn has_events(cfg: &JourneyConfig, store: &crate::store::Store) -> bool {
    match cfg.preset.as_deref() {
        Some("segment" | "rudderstack") => store.has_table("tracks") || store.has_table("pages"),
        Some("ga4") => !ga4_tables(&cfg.events, &store.table_names()).is_empty(),
        _ => store.has_table(&cfg.events),
    }
}

/// What the presets see of the store's `public` tables: their columns, and their names.
pub trait Catalog {
    /// The columns of table `name` (a struct column's fields also as `column.field`), or none
    /// when there is no such table.
    fn columns(&self, name: &str) -> Option<Vec<String>>;
    /// Every table's name (only GA4's preset asks: its tables are named by day).
    fn tables(&self) -> Vec<String> {
        vec![]
    }
    /// Tables `names` read as one scan (GA4's day tables), or none.
    fn union(&self, _names: &[String]) -> Result<Option<Arc<dyn TableProvider>>> {
        Ok(None)
    }
}

/// A schema's column names, a struct column's fields also as `column.field`.
fn column_names(schema: &datafusion::arrow::datatypes::Schema) -> Vec<String> {
    use datafusion::arrow::datatypes::DataType;
    let mut columns = vec![];
    for f in schema.fields() {
        columns.push(f.name().clone());
        if let DataType::Struct(inner) = f.data_type() {
            columns.extend(inner.iter().map(|i| format!("{}.{}", f.name(), i.name())));
        }
    }
    columns
}

impl<F: Fn(&str) -> Option<Vec<String>>> Catalog for F {
    fn columns(&self, name: &str) -> Option<Vec<String>> {
        self(name)
    }
}

impl Catalog for crate::store::Store {
    fn columns(&self, name: &str) -> Option<Vec<String>> {
        let table = self.table(name).ok()??;
        Some(column_names(&table.schema()))
    }

    fn tables(&self) -> Vec<String> {
        self.table_names()
    }

    fn union(&self, names: &[String]) -> Result<Option<Arc<dyn TableProvider>>> {
        self.union_of(names).map_err(|e| DataFusionError::External(Box::new(e)))
    }
}

/// The store's tables as the presets see them.
pub type Columns<'a> = &'a dyn Catalog;

/// What the journey model reads: the configuration its SQL is written with (a preset's
/// relation has canonical names), the relation's columns, and the relation. None when the
/// store has none of its tables.
pub fn base(cfg: &JourneyConfig, columns: Columns) -> Result<Option<(JourneyConfig, Vec<String>, Base)>> {
    let found = match cfg.preset.as_deref() {
        Some("segment" | "rudderstack") => segment(cfg, columns)?,
        Some("snowplow") => snowplow(cfg, columns)?,
        Some("ga4") => ga4(cfg, columns)?,
        _ => {
            let Some(present) = columns.columns(&cfg.events) else { return Ok(None) };
            let from = format!("public.{}", ident(&cfg.events));
            Some((cfg.clone(), present, Base::new(from, Identity::Events)))
        }
    };
    let Some((canonical, present, mut base)) = found else { return Ok(None) };
    base.crm = crm(cfg, columns)?;
    base.accounts = accounts(cfg, columns)?;
    Ok(Some((canonical, present, base)))
}

/// The CRM's deal stage changes as the model's events, in canonical columns: `user_id` (the
/// deal's person, or its email), `event_time` (`changed_at`), `event_name` (the stage),
/// `deal_id`, `revenue` (the amount, on the deal's first closed-won change only) and
/// `crm_milestone` (`opportunity` on the deal's first change into an opportunity stage,
/// `closed_won` on its first into a closed-won one; ties in time by stage name). Rows without a
/// person, time or stage are left out.
fn crm(cfg: &JourneyConfig, columns: Columns) -> Result<Option<String>> {
    let Some(crm) = &cfg.crm else { return Ok(None) };
    let Some(cols) = columns.columns(&crm.deals) else {
        return Err(DataFusionError::Plan(format!(
            "journey model: [journey.crm] deals table \"{}\" does not exist",
            crm.deals
        )));
    };
    let column = |canonical: &str| crm.columns.get(canonical).cloned().unwrap_or_else(|| canonical.into());
    let has = |c: &str| cols.iter().any(|x| *x == column(c));
    let need = |canonical: &str| {
        if has(canonical) {
            Ok(ident(&column(canonical)))
        } else {
            Err(missing_crm_column(&crm.deals, &column(canonical), canonical))
        }
    };
    let person = match (has("person_id"), has("email")) {
        (true, _) => ident(&column("person_id")),
        (false, true) => ident(&column("email")),
        _ => return Err(missing_crm_column(&crm.deals, &column("person_id"), "person_id (or email)")),
    };
    let (deal, stage, time) = (need("deal_id")?, need("stage")?, need("changed_at")?);
    let amount = if has("amount") { ident(&column("amount")) } else { "NULL".into() };
    let list = |stages: &[String]| {
        if stages.is_empty() { "FALSE".to_string() } else { format!("stage IN ({})", super::literals(stages)) }
    };
    let changes = format!(
        "SELECT CAST({person} AS VARCHAR) AS user_id, {time} AS event_time, CAST({stage} AS VARCHAR) AS stage, \
         CAST({deal} AS VARCHAR) AS deal_id, CAST({amount} AS DECIMAL(38, 2)) AS amount \
         FROM public.{} WHERE {person} IS NOT NULL AND {time} IS NOT NULL AND {stage} IS NOT NULL",
        ident(&crm.deals)
    );
    let classed = format!(
        "SELECT *, CASE WHEN {} THEN 'opportunity' WHEN {} THEN 'closed_won' END AS class FROM ({changes}) d",
        list(&crm.opportunity_stages),
        list(&crm.closed_won_stages)
    );
    let ranked = format!(
        "SELECT *, row_number() OVER (PARTITION BY deal_id, class ORDER BY event_time, stage) AS nth FROM ({classed}) c"
    );
    Ok(Some(format!(
        "SELECT user_id, event_time, stage AS event_name, deal_id, \
         CASE WHEN nth = 1 AND class = 'closed_won' THEN amount END AS revenue, \
         CASE WHEN nth = 1 THEN class END AS crm_milestone FROM ({ranked}) r"
    )))
}

fn missing_crm_column(table: &str, column: &str, canonical: &str) -> DataFusionError {
    DataFusionError::Plan(format!(
        "journey model: deals table \"{table}\" has no column \"{column}\" (canonical \"{canonical}\"); \
         map it in [journey.crm.columns]"
    ))
}

/// Free-mail domains: an address there names a person, not a company.
const FREE_MAIL: [&str; 16] = [
    "gmail.com",
    "googlemail.com",
    "yahoo.com",
    "hotmail.com",
    "outlook.com",
    "live.com",
    "msn.com",
    "icloud.com",
    "me.com",
    "aol.com",
    "proton.me",
    "protonmail.com",
    "gmx.de",
    "gmx.net",
    "web.de",
    "yandex.ru",
];

/// Where accounts come from: a table read as rows of `user_id`, `anonymous_id` and
/// `account_id` (Segment's `groups`: `group_id`, `user_id`, `anonymous_id`; a mapping:
/// `person_id` as the user id, `account_id`), or the email domain.
fn accounts(cfg: &JourneyConfig, columns: Columns) -> Result<Option<Accounts>> {
    let Some(a) = &cfg.accounts else { return Ok(None) };
    let Some(table) = &a.table else {
        let free = FREE_MAIL.iter().map(|d| format!("'{d}'")).collect::<Vec<_>>().join(", ");
        return Ok(Some(Accounts::EmailDomain { free }));
    };
    let Some(cols) = columns.columns(table) else {
        return Err(DataFusionError::Plan(format!(
            "journey model: [journey.accounts] table \"{table}\" does not exist"
        )));
    };
    let has = |c: &str| cols.iter().any(|x| x == c);
    let account = ["account_id", "group_id"].into_iter().find(|c| has(c));
    let user = ["person_id", "user_id"].into_iter().find(|c| has(c));
    let (Some(account), Some(user)) = (account, user) else {
        return Err(DataFusionError::Plan(format!(
            "journey model: accounts table \"{table}\" needs an account column (account_id or group_id) \
             and a person column (person_id or user_id)"
        )));
    };
    let anon = if has("anonymous_id") { "CAST(anonymous_id AS VARCHAR)" } else { "CAST(NULL AS VARCHAR)" };
    Ok(Some(Accounts::Table(format!(
        "SELECT CAST({} AS VARCHAR) AS user_id, {anon} AS anonymous_id, CAST({} AS VARCHAR) AS account_id \
         FROM public.{} WHERE {} IS NOT NULL",
        ident(user),
        ident(account),
        ident(table),
        ident(account)
    ))))
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
    let (tracks, pages) = (columns.columns("tracks"), columns.columns("pages"));
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
    let pairs = match columns.columns("identifies") {
        Some(cols) if cols.iter().any(|c| c == "anonymous_id") && cols.iter().any(|c| c == "user_id") => {
            "SELECT anonymous_id, user_id FROM public.identifies".to_string()
        }
        _ => format!(
            "SELECT anonymous_id, user_id FROM ({events}) x WHERE anonymous_id IS NOT NULL AND user_id IS NOT NULL"
        ),
    };
    let aliases = match columns.columns("aliases") {
        Some(cols) if cols.iter().any(|c| c == "previous_id") && cols.iter().any(|c| c == "user_id") => {
            Some("SELECT previous_id, user_id FROM public.aliases".to_string())
        }
        _ => None,
    };
    // The relation has canonical names: the model's SQL maps nothing more.
    let canonical = JourneyConfig { columns: Default::default(), ..cfg.clone() };
    let base = Base::new(format!("({events})"), Identity::Graph { pairs, aliases });
    Ok(Some((canonical, present, base)))
}

/// Snowplow's atomic events: canonical name and its column (the time apart).
const SNOWPLOW: [(&str, &str); 12] = [
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
    ("session_id", "domain_sessionid"),
];

/// Snowplow's atomic events.
fn snowplow(cfg: &JourneyConfig, columns: Columns) -> Result<Option<(JourneyConfig, Vec<String>, Base)>> {
    let Some(cols) = columns.columns(&cfg.events) else { return Ok(None) };
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
    Ok(Some((canonical, present, Base::new(from, Identity::Events))))
}

/// GA4's export tables among `names`: `<prefix>_YYYYMMDD` for each day, else that day's
/// `<prefix>_intraday_YYYYMMDD` (a finished day's daily table replaces its intraday one), in
/// date order.
pub fn ga4_tables(prefix: &str, names: &[String]) -> Vec<String> {
    let day = |rest: &str| rest.len() == 8 && rest.bytes().all(|b| b.is_ascii_digit());
    let mut days: std::collections::BTreeMap<&str, (bool, bool)> = Default::default();
    for name in names {
        let Some(rest) = name.strip_prefix(prefix) else { continue };
        if let Some(d) = rest.strip_prefix("_intraday_").filter(|d| day(d)) {
            days.entry(d).or_default().1 = true;
        } else if let Some(d) = rest.strip_prefix('_').filter(|d| day(d)) {
            days.entry(d).or_default().0 = true;
        }
    }
    days.into_iter()
        .map(|(d, (daily, _))| if daily { format!("{prefix}_{d}") } else { format!("{prefix}_intraday_{d}") })
        .collect()
}

/// GA4's campaign columns: canonical name, `collected_traffic_source`'s field, the event
/// parameter.
const GA4_CAMPAIGN: [(&str, &str, &str); 5] = [
    ("source", "manual_source", "source"),
    ("medium", "manual_medium", "medium"),
    ("campaign", "manual_campaign_name", "campaign"),
    ("term", "manual_term", "term"),
    ("content", "manual_content", "content"),
];

/// GA4's BigQuery export: every day's table (see [`ga4_tables`]; the prefix is the configured
/// `events`), each row an event: `user_pseudo_id` the cookie, `user_id`, `event_timestamp`
/// (microseconds) the time, `event_name`; the campaign from `collected_traffic_source`'s
/// `manual_*` fields, else the event parameters `source`, `medium`, `campaign`, `term`,
/// `content`; `page_location` and `page_referrer` parameters the page and referrer;
/// `ecommerce.purchase_revenue` the revenue; `user_pseudo_id` with the `ga_session_id`
/// parameter the session id. People are stitched as the canonical model does.
fn ga4(cfg: &JourneyConfig, columns: Columns) -> Result<Option<(JourneyConfig, Vec<String>, Base)>> {
    let tables = ga4_tables(&cfg.events, &columns.tables());
    if tables.is_empty() {
        return Ok(None);
    }
    // One scan over every day's table, with their columns together.
    let Some(scan) = columns.union(&tables)? else {
        return Err(DataFusionError::Plan(format!("journey model: cannot read {} as one table", tables.join(", "))));
    };
    let cols = column_names(&scan.schema());
    let has = |c: &str| cols.iter().any(|x| x == c);
    for (column, canonical) in
        [("event_timestamp", "event_time"), ("event_name", "event_name"), ("user_pseudo_id", "anonymous_id")]
    {
        if !has(column) {
            return Err(missing_column(Some("ga4"), &tables[0], column, canonical));
        }
    }
    let text = |c: &str| if has(c) { format!("CAST({} AS VARCHAR)", ident(c)) } else { "CAST(NULL AS VARCHAR)".into() };
    let param = |key: &str| has("event_params").then(|| format!("ga4_param(event_params, '{key}')"));
    let mut items = vec![
        format!("{} AS user_id", text("user_id")),
        format!("{} AS anonymous_id", text("user_pseudo_id")),
        "arrow_cast(event_timestamp, 'Timestamp(Microsecond, Some(\"UTC\"))') AS event_time".to_string(),
        format!("{} AS event_name", text("event_name")),
    ];
    for (canonical, field, key) in GA4_CAMPAIGN {
        let collected =
            has(&format!("collected_traffic_source.{field}")).then(|| format!("collected_traffic_source['{field}']"));
        let value = match (collected, param(key)) {
            (Some(c), Some(p)) => format!("CAST(coalesce({c}, {p}) AS VARCHAR)"),
            (Some(c), None) => format!("CAST({c} AS VARCHAR)"),
            (None, Some(p)) => p,
            (None, None) => "CAST(NULL AS VARCHAR)".into(),
        };
        items.push(format!("{value} AS {canonical}"));
    }
    for (canonical, key) in [("page_url", "page_location"), ("referrer", "page_referrer")] {
        items.push(format!("{} AS {canonical}", param(key).unwrap_or_else(|| "CAST(NULL AS VARCHAR)".into())));
    }
    // A session id is unique per cookie only: the cookie is part of the key.
    items.push(match param("ga_session_id") {
        Some(p) => format!("{} || '.' || {p} AS session_id", text("user_pseudo_id")),
        None => "CAST(NULL AS VARCHAR) AS session_id".into(),
    });
    items.push(if has("ecommerce.purchase_revenue") {
        "CAST(ecommerce['purchase_revenue'] AS DECIMAL(38, 2)) AS revenue".into()
    } else {
        "CAST(NULL AS DECIMAL(38, 2)) AS revenue".into()
    });
    let from = format!("(SELECT {} FROM {})", items.join(", "), super::UNION_TABLE);
    let present = ["user_id", "anonymous_id", "event_time", "event_name", "source", "medium", "campaign", "term"]
        .into_iter()
        .chain(["content", "page_url", "referrer", "session_id", "revenue"])
        .map(str::to_string)
        .collect();
    let canonical = JourneyConfig { columns: Default::default(), ..cfg.clone() };
    let mut base = Base::new(from, Identity::Events);
    base.union = Some(scan);
    Ok(Some((canonical, present, base)))
}
