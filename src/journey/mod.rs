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
//!   person with `sessionize`, gap from the configuration; with `sessions = "tracker"` the
//!   tracker's own `session_id`s in the order they start, events without one by the gap),
//!   `session_channel` (the channel of the
//!   session's first touch, ties in time to the smallest channel, `Direct` for a session without
//!   a touch: GA4's session default channel group, which the session's later events inherit
//!   without being touches), `is_touch` (see below), `is_conversion`, `milestone` (`lead`,
//!   `opportunity`, `closed_won` or NULL), `stage` (from the configured mapping, NULL for
//!   unmapped events) and `stage_reached` (the furthest stage, in the configured order, the
//!   person has reached by this event's time: stage-to-stage flow without going back).
//! - Touches ([`touch_rule`]): with a `channel` column, the events with a non-null channel.
//!   Without one, the events that carry marketing context of their own: a medium or campaign,
//!   a click id, or a referrer from outside the site (`[journey] site_hosts`); their `channel` is
//!   the GA4 default channel group of their source, medium, campaign and referrer, and other
//!   events have none. `[journey] touch = '<predicate>'` replaces the rule.
//! - `journey.touchpoints`: the events with `is_touch`.
//! - `journey.conversions`: the events with `is_conversion`, with `conversion_number` (1 for a
//!   person's first conversion; ties in time are ordered by event name) and `value` (revenue,
//!   0 when missing, exact decimal).
//!
//! - With `[journey.crm]`, the CRM's deal stage changes join the events (`preset::crm`): each
//!   an event of the deal's person, `event_name` its stage, with `deal_id`, never a touch; the
//!   first change per deal into an opportunity stage is its `opportunity` milestone, the first
//!   into a closed-won stage its `closed_won` milestone and a conversion worth the amount. Those
//!   replace the events' own conversions and opportunity / closed-won milestones unless
//!   `event_conversions` keeps them.
//! - With `[journey.accounts]`, `journey.accounts` (`person_id`, `account_id`: the smallest
//!   account a person's ids were seen in, or their email domain) and `account_id` on the
//!   events, for the reports' `unit => 'account'`.
//!
//! Canonical column names are used throughout; `[journey.columns]` maps a table's own names to
//! them. Optional columns (`term`, `content`, `referrer`, `revenue`, ...) are carried when the
//! table has them.

pub mod preset;

use crate::config::{CANONICAL_COLUMNS, JourneyConfig, Sessions};
use crate::store::Store;
use datafusion::catalog::{SchemaProvider, TableProvider, view::ViewTable};
use datafusion::error::{DataFusionError, Result};
use datafusion::prelude::SessionContext;
use journeydb_udfs::common::source_planner::plan_source;
use std::sync::Arc;

/// The schema that holds the journey model's views.
pub const JOURNEY_SCHEMA: &str = "journey";

/// The views, in name order (`accounts` only with `[journey.accounts]`).
pub const VIEWS: [&str; 5] = ["accounts", "conversions", "events", "identities", "touchpoints"];

/// The columns every events table must have (canonical names).
const REQUIRED: [&str; 4] = ["user_id", "anonymous_id", "event_time", "event_name"];

/// Click-id query parameters of ad platforms: a landing page that carries one was reached from
/// an ad. Google's and Microsoft's mark an auto-tagged search ad, so they also stand for the
/// source and medium (`cpc`) when the event has none of its own.
const CLICK_IDS: [(&str, Option<&str>); 9] = [
    ("gclid", Some("google")),
    ("gbraid", Some("google")),
    ("wbraid", Some("google")),
    ("msclkid", Some("bing")),
    ("dclid", None),
    ("fbclid", None),
    ("ttclid", None),
    ("li_fat_id", None),
    ("twclid", None),
];

/// The SQL of view `name` over an events table with columns `present` (the table's own names),
/// or `None` for an unknown view. Fails when a required column is missing.
pub fn view_sql(cfg: &JourneyConfig, name: &str, present: &[String]) -> Result<Option<String>> {
    let table = format!("public.{}", ident(&cfg.events));
    view_sql_over(cfg, name, present, &Base::new(table, Identity::Events))
}

/// How errors name the model: `journey model`, with its preset if any.
fn model_name(preset: Option<&str>) -> String {
    match preset {
        Some(p) => format!("journey model (preset {p})"),
        None => "journey model".into(),
    }
}

/// The error for a table (of `preset`'s, if any) without the column a canonical one needs.
fn missing_column(preset: Option<&str>, table: &str, column: &str, canonical: &str) -> DataFusionError {
    DataFusionError::Plan(format!(
        "{}: table \"{table}\" has no column \"{column}\" (canonical \"{canonical}\"); \
         map it in [journey.columns]",
        model_name(preset)
    ))
}

/// Where the model's events come from: a relation (a table, or a query in parentheses), how
/// its people are stitched, and what joins them.
pub struct Base {
    pub from: String,
    pub identity: Identity,
    /// The CRM's deal stage changes as events (`preset::crm`): `user_id`, `event_time`,
    /// `event_name`, `deal_id`, `revenue`, `crm_milestone`.
    pub crm: Option<String>,
    /// Which account each person belongs to.
    pub accounts: Option<Accounts>,
    /// Store tables read as one scan ([`crate::store::Store::union_of`]), registered under the
    /// name [`UNION_TABLE`], which `from` reads (GA4's daily tables).
    pub union: Option<Arc<dyn TableProvider>>,
}

/// The name `Base::union`'s tables are read under while the model's SQL is planned.
pub const UNION_TABLE: &str = "journeydb_model.tables.union_scan";

impl Base {
    pub fn new(from: String, identity: Identity) -> Base {
        Base { from, identity, crm: None, accounts: None, union: None }
    }
}

/// How anonymous ids become people.
pub enum Identity {
    /// From the events alone: a cookie is the smallest user id it was seen with.
    Events,
    /// From a tracker's identity calls and the events' pairs, through `identity_graph`
    /// (`pairs` and `aliases` are its `source` and `aliases`).
    Graph { pairs: String, aliases: Option<String> },
}

/// Where a person's account comes from.
pub enum Accounts {
    /// Rows of `user_id`, `anonymous_id`, `account_id`, stitched to people as events are.
    Table(String),
    /// The domain of the person's id when it is an email address outside `free` (a SQL list).
    EmailDomain { free: String },
}

/// [`view_sql`] over any [`Base`] whose columns, `present`, `cfg` maps to canonical names.
pub fn view_sql_over(cfg: &JourneyConfig, name: &str, present: &[String], base: &Base) -> Result<Option<String>> {
    let has = |canonical: &str| present.iter().any(|c| c == cfg.column(canonical));
    if let Some(missing) = REQUIRED.iter().find(|c| !has(c)) {
        return Err(missing_column(cfg.preset.as_deref(), &cfg.events, cfg.column(missing), missing));
    }
    let table = &base.from;
    let col = |canonical: &str| format!("e.{} AS {canonical}", ident(cfg.column(canonical)));
    let (anon, user) = (ident(cfg.column("anonymous_id")), ident(cfg.column("user_id")));
    // The view adds the distinct count; the stitching join needs only the smallest user.
    let identities = |extra: &str| {
        format!(
            "SELECT {anon} AS anonymous_id, min({user}) AS person_id{extra} \
             FROM {table} ids WHERE {anon} IS NOT NULL AND {user} IS NOT NULL GROUP BY {anon}"
        )
    };
    let graph = match &base.identity {
        Identity::Events => None,
        Identity::Graph { pairs, aliases } => {
            let aliases = aliases.as_ref().map(|a| format!(", aliases => {}", literal(a))).unwrap_or_default();
            Some(format!("identity_graph(source => {}{aliases})", literal(pairs)))
        }
    };
    if name == "identities" {
        return Ok(Some(match &graph {
            None => identities(&format!(", count(DISTINCT {user}) AS known_users")),
            Some(g) => format!("SELECT id AS anonymous_id, person_id, known_users FROM {g} g WHERE NOT is_user"),
        }));
    }
    // The person of a row of relation `e` with user and anonymous ids `u` and `a`, and the join
    // that finds it: by its cookie, or through the graph by its user id, else its cookie.
    let stitch = |u: &str, a: &str| -> (String, String) {
        match &graph {
            None => (
                format!("coalesce(e.{u}, i.person_id, e.{a})"),
                format!("({}) i ON e.{a} = i.anonymous_id", identities("")),
            ),
            Some(g) => (
                format!("coalesce(i.person_id, e.{u}, e.{a})"),
                format!("{g} i ON i.id = coalesce(e.{u}, e.{a}) AND i.is_user = (e.{u} IS NOT NULL)"),
            ),
        }
    };
    let crm = base.crm.as_ref();
    // Revenue is carried when the events or the CRM's won deals have it.
    let carries = |c: &str| has(c) || (crm.is_some() && c == "revenue");
    let carried: Vec<&str> = CANONICAL_COLUMNS.iter().skip(5).copied().filter(|c| carries(c)).collect();
    let (person, join) = stitch(&user, &anon);
    let mut columns = vec![
        format!("{person} AS person_id"),
        col("user_id"),
        col("anonymous_id"),
        col("event_time"),
        col("event_name"),
    ];
    if has("channel") {
        columns.push(col("channel"));
    }
    columns.extend(carried.iter().map(|&c| match (c, has(c)) {
        (_, true) => col(c),
        ("revenue", false) => "CAST(NULL AS DECIMAL(38, 2)) AS revenue".into(),
        _ => format!("CAST(NULL AS VARCHAR) AS {c}"),
    }));
    let mut stitched = format!("SELECT {}", columns.join(", "));
    if crm.is_some() {
        stitched
            .push_str(", CAST(NULL AS VARCHAR) AS deal_id, CAST(NULL AS VARCHAR) AS crm_milestone, FALSE AS from_crm");
    }
    stitched.push_str(&format!(" FROM {table} e LEFT JOIN {join}"));
    if let Some(crm) = crm {
        // The deals' rows, their people found by their user ids.
        let (person, join) = match &graph {
            None => ("e.user_id".to_string(), String::new()),
            Some(g) => (
                "coalesce(i.person_id, e.user_id)".into(),
                format!(" LEFT JOIN {g} i ON i.id = e.user_id AND i.is_user"),
            ),
        };
        let mut columns = vec![
            format!("{person} AS person_id"),
            "e.user_id".into(),
            "CAST(NULL AS VARCHAR) AS anonymous_id".into(),
            "e.event_time".into(),
            "e.event_name".into(),
        ];
        if has("channel") {
            columns.push("CAST(NULL AS VARCHAR) AS channel".into());
        }
        columns.extend(carried.iter().map(|&c| match c {
            "revenue" => "e.revenue".to_string(),
            _ => format!("CAST(NULL AS VARCHAR) AS {c}"),
        }));
        stitched = format!(
            "{stitched} UNION ALL SELECT {}, e.deal_id, e.crm_milestone, TRUE AS from_crm FROM ({crm}) e{join}",
            columns.join(", ")
        );
    }
    // CRM rows have no channel: never touches, whatever the rule.
    let rule = format!("coalesce({}, FALSE)", touch_rule(cfg, &|c| has(c)));
    let rule = if crm.is_some() { format!("(NOT from_crm AND {rule})") } else { rule };
    let touched = format!("SELECT *, {rule} AS is_touch FROM ({stitched}) s WHERE person_id IS NOT NULL");
    let channel = if has("channel") { "channel".to_string() } else { derived_channel(&|c| has(c)) };
    let in_list = |events: &[String]| {
        if events.is_empty() { "FALSE".to_string() } else { format!("event_name IN ({})", literals(events)) }
    };
    let m = &cfg.milestones;
    // With a CRM, opportunities and won deals are its own (the events' too if asked).
    let events_too = crm.is_none() || cfg.crm.as_ref().is_some_and(|c| c.event_conversions);
    let none = vec![];
    let (opportunity, closed_won, conversions) =
        if events_too { (&m.opportunity, &m.closed_won, &cfg.conversions) } else { (&none, &none, &none) };
    let mut milestone = format!(
        "CASE WHEN {} THEN 'lead' WHEN {} THEN 'opportunity' WHEN {} THEN 'closed_won' END",
        in_list(&m.lead),
        in_list(opportunity),
        in_list(closed_won)
    );
    let mut conversion = in_list(conversions);
    if crm.is_some() {
        milestone = format!("CASE WHEN from_crm THEN crm_milestone ELSE {milestone} END");
        conversion =
            format!("CASE WHEN from_crm THEN crm_milestone IS NOT DISTINCT FROM 'closed_won' ELSE {conversion} END");
    }
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
    let mut extra: String = carried.iter().map(|c| format!(", {c}")).collect();
    if crm.is_some() {
        extra.push_str(", deal_id");
    }
    let mut sessions = format!(
        "SELECT person_id, user_id, anonymous_id, event_time, event_name, {channel} AS channel{extra}, \
         sessionize(event_time, INTERVAL '{gap} seconds') OVER (PARTITION BY person_id ORDER BY event_time) AS session, \
         is_touch, {conversion} AS is_conversion, {milestone} AS milestone, {stage} AS stage, {stage_reached} AS stage_reached \
         FROM ({touched}) t",
        gap = cfg.session_gap_seconds,
    );
    if cfg.sessions == Sessions::Tracker {
        if !has("session_id") {
            return Err(DataFusionError::Plan(format!(
                "{}: sessions = \"tracker\" needs the tracker's session ids, and table \"{}\" \
                 has no column \"{}\" (canonical \"session_id\"); map it in [journey.columns] or set sessions = \"gap\"",
                model_name(cfg.preset.as_deref()),
                cfg.events,
                cfg.column("session_id")
            )));
        }
        // The tracker's sessions, numbered per person in the order they start (ties by id);
        // events without one are grouped by inactivity as without the option (their
        // `gap_session`; such a group ranks before a tracker session starting at its time).
        sessions = format!(
            "SELECT person_id, user_id, anonymous_id, event_time, event_name, channel{extra}, \
             CAST(dense_rank() OVER (PARTITION BY person_id \
             ORDER BY session_start, session_id NULLS FIRST, gap_session) AS BIGINT) AS session, \
             is_touch, is_conversion, milestone, stage, stage_reached FROM (SELECT *, \
             min(event_time) OVER (PARTITION BY person_id, session_id, gap_session) AS session_start \
             FROM (SELECT *, CASE WHEN session_id IS NULL THEN session END AS gap_session FROM ({sessions}) k) k) s"
        );
    }
    // GA4's session default channel group: the session's first touch (ties in time: the
    // smallest channel), Direct for a session without one.
    let events = format!(
        "SELECT person_id, user_id, anonymous_id, event_time, event_name, channel{extra}, session, \
         coalesce(first_value(CASE WHEN is_touch THEN channel END) OVER (PARTITION BY person_id, session \
         ORDER BY is_touch DESC, event_time, channel ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING), 'Direct') \
         AS session_channel, is_touch, is_conversion, milestone, stage, stage_reached FROM ({sessions}) w"
    );
    // Each person's account: the smallest of those their ids were seen in.
    let memberships = base.accounts.as_ref().map(|a| match a {
        Accounts::Table(rows) => {
            let (person, join) = stitch("user_id", "anonymous_id");
            format!(
                "SELECT {person} AS person_id, min(e.account_id) AS account_id FROM ({rows}) e LEFT JOIN {join} \
                 GROUP BY {person}"
            )
        }
        Accounts::EmailDomain { free } => {
            let domain = "lower(substr(person_id, strpos(person_id, '@') + 1))";
            format!(
                "SELECT person_id, {domain} AS account_id FROM (SELECT DISTINCT person_id FROM ({stitched}) s \
                 WHERE person_id IS NOT NULL) p WHERE strpos(person_id, '@') > 1 AND {domain} LIKE '%_._%' \
                 AND {domain} NOT IN ({free})"
            )
        }
    });
    if name == "accounts" {
        return Ok(
            memberships.map(|m| format!("SELECT person_id, account_id FROM ({m}) a WHERE person_id IS NOT NULL"))
        );
    }
    let events = match &memberships {
        None => events,
        Some(m) => format!(
            "SELECT v.person_id, a.account_id, v.user_id, v.anonymous_id, v.event_time, v.event_name, v.channel{}, \
             v.session, v.session_channel, v.is_touch, v.is_conversion, v.milestone, v.stage, v.stage_reached \
             FROM ({events}) v LEFT JOIN ({m}) a ON v.person_id = a.person_id",
            extra.replace(", ", ", v.")
        ),
    };
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

/// Which events are touches, as SQL over the stitched events' canonical columns (`has` says
/// which the table has). The rule, unless `[journey] touch` replaces it:
///
/// - with a `channel` column, an event with a non-null channel;
/// - without one, an event that carries marketing context of its own: a medium or a campaign
///   (non-empty; `(direct)` / `(none)` counts, so a call recorded as Direct is a touch), a click
///   id (a non-null `click_id` column, or one of [`CLICK_IDS`] in `page_url`'s query), or a
///   referrer from outside the site (an absolute URL whose host, without `www.`, is neither the
///   page's own host nor one of `site_hosts` or their subdomains). A source alone is an origin
///   label, not a touch: a CRM row's `source = 'crm'`. So are internal page views, form fills
///   and CRM events without context.
fn touch_rule(cfg: &JourneyConfig, has: &dyn Fn(&str) -> bool) -> String {
    if let Some(touch) = &cfg.touch {
        return format!("({touch})");
    }
    if has("channel") {
        return "channel IS NOT NULL".into();
    }
    let mut any = vec![];
    for c in ["medium", "campaign"] {
        if has(c) {
            any.push(format!("nullif(trim({c}), '') IS NOT NULL"));
        }
    }
    if has("click_id") {
        any.push("click_id IS NOT NULL".into());
    }
    if has("page_url") {
        any.push(format!("page_url ~ '{}'", click_id_pattern(CLICK_IDS.iter().map(|c| c.0))));
    }
    if has("referrer") {
        let page_host = if has("page_url") { url_host("page_url") } else { "NULL".into() };
        let mut internal = format!("{} IS NOT DISTINCT FROM {page_host}", url_host("referrer"));
        if !cfg.site_hosts.is_empty() {
            let hosts: Vec<String> =
                cfg.site_hosts.iter().map(|h| h.to_ascii_lowercase().replace('.', "\\.")).collect();
            internal = format!(
                "({internal}) OR (referrer ~* '^[a-z][a-z0-9+.-]*://([^/?#@]*@)?([^/?#:]*\\.)?({})([:/?#]|$)')",
                hosts.join("|")
            );
        }
        // A referrer that is not an absolute URL has no host: internal.
        any.push(format!("CASE WHEN {} IS NULL THEN FALSE ELSE NOT ({internal}) END", url_host("referrer")));
    }
    // Each term in parentheses: the parser binds `~` looser than OR.
    if any.is_empty() { "FALSE".into() } else { any.iter().map(|t| format!("({t})")).collect::<Vec<_>>().join(" OR ") }
}

/// The channel of a touch on a table without a `channel` column: GA4's default channel group of
/// its source, medium, campaign and referrer, Google's and Microsoft's click ids read as their
/// search ads when the event has neither source nor medium. Events that are not touches have
/// none.
fn derived_channel(has: &dyn Fn(&str) -> bool) -> String {
    let opt = |c: &str| if has(c) { c.to_string() } else { "NULL".into() };
    let (mut source, mut medium) = (opt("source"), opt("medium"));
    if has("page_url") {
        let arms: Vec<String> = CLICK_IDS
            .iter()
            .filter_map(|(id, network)| {
                network.map(|n| format!("WHEN page_url ~ '{}' THEN '{n}'", click_id_pattern([*id].into_iter())))
            })
            .collect();
        let network = format!("CASE WHEN {source} IS NULL AND {medium} IS NULL THEN CASE {} END END", arms.join(" "));
        medium = format!("coalesce({medium}, CASE WHEN {network} IS NOT NULL THEN 'cpc' END)");
        source = format!("coalesce({source}, {network})");
    }
    format!("CASE WHEN is_touch THEN channel_group({source}, {medium}, {}, {}) END", opt("campaign"), opt("referrer"))
}

/// A regex that finds one of `ids` as a query parameter of a URL.
fn click_id_pattern<'a>(ids: impl Iterator<Item = &'a str>) -> String {
    format!("[?&]({})=", ids.collect::<Vec<_>>().join("|"))
}

/// The lower-cased host of an absolute URL, without a leading `www.`; NULL for anything else.
fn url_host(expr: &str) -> String {
    format!("url_host({expr})")
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

/// What the model needs of the engine that serves it. The engine implements it; the model
/// does not know the engine.
pub trait ModelHost: std::fmt::Debug + Send + Sync {
    /// The store whose events table the model reads.
    fn store(&self) -> &Arc<Store>;
    /// The `[journey]` configuration the views are generated from.
    fn journey(&self) -> &JourneyConfig;
    /// A context over the store's `public` tables with the journey functions, nothing per
    /// session. Its installed source planner ([`plan_source`]) plans the views' SQL as the
    /// engine plans statements.
    fn model_context(&self) -> Result<SessionContext>;
}

/// Schema `journey`: the views, present when the store has the configured events table.
#[derive(Debug)]
pub struct JourneySchema {
    host: Arc<dyn ModelHost>,
}

impl JourneySchema {
    pub fn new(host: Arc<dyn ModelHost>) -> Self {
        JourneySchema { host }
    }

    fn config(&self) -> &JourneyConfig {
        self.host.journey()
    }

    /// Whether the store has a table of the model's events.
    fn has_events(&self) -> bool {
        preset::has_events(self.config(), self.host.store())
    }

    /// Whether view `name` is one the configuration has.
    fn configured(&self, name: &str) -> bool {
        VIEWS.contains(&name) && (name != "accounts" || self.config().accounts.is_some())
    }
}

#[async_trait::async_trait]
impl SchemaProvider for JourneySchema {
    fn table_names(&self) -> Vec<String> {
        if !self.has_events() {
            return vec![];
        }
        VIEWS.iter().filter(|v| self.configured(v)).map(|v| v.to_string()).collect()
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        if !self.configured(name) {
            return Ok(None);
        }
        let ctx = self.host.model_context()?;
        let store = self.host.store();
        let Some((cfg, present, base)) = preset::base(self.config(), store.as_ref())? else {
            return Ok(None);
        };
        let Some(sql) = view_sql_over(&cfg, name, &present, &base)? else {
            return Ok(None);
        };
        if let Some(provider) = &base.union {
            use datafusion::catalog::CatalogProvider;
            let schema = Arc::new(datafusion::catalog::MemorySchemaProvider::new());
            schema.register_table("union_scan".into(), provider.clone())?;
            let catalog = Arc::new(datafusion::catalog::MemoryCatalogProvider::new());
            catalog.register_schema("tables", schema)?;
            ctx.register_catalog("journeydb_model", catalog);
        }
        let plan = plan_source(&ctx.state(), &sql).await?;
        Ok(Some(Arc::new(ViewTable::new(plan, Some(sql)))))
    }

    fn table_exist(&self, name: &str) -> bool {
        self.configured(name) && self.has_events()
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
        for v in VIEWS.iter().filter(|v| **v != "accounts") {
            assert!(view_sql(&cfg, v, &demo_columns()).expect("sql").is_some(), "{v}");
        }
        assert!(view_sql(&cfg, "nope", &demo_columns()).expect("sql").is_none());
        // Accounts only with [journey.accounts].
        assert!(view_sql(&cfg, "accounts", &demo_columns()).expect("sql").is_none());
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
        assert!(derived.contains("CASE WHEN is_touch THEN channel_group(coalesce(source, "), "{derived}");
        assert!(derived.contains("nullif(trim(medium), '') IS NOT NULL"), "{derived}");
    }

    #[test]
    fn the_segment_preset_reads_tracks_and_pages_with_the_identity_graph() {
        let cfg = JourneyConfig { preset: Some("segment".into()), ..JourneyConfig::default() };
        let tracks: Vec<String> =
            ["anonymous_id", "user_id", "timestamp", "event", "context_campaign_medium", "revenue"]
                .map(String::from)
                .into();
        let pages: Vec<String> = ["anonymous_id", "user_id", "timestamp", "url"].map(String::from).into();
        let columns = |t: &str| match t {
            "tracks" => Some(tracks.clone()),
            "pages" => Some(pages.clone()),
            "aliases" => Some(vec!["previous_id".into(), "user_id".into()]),
            _ => None,
        };
        let (canonical, present, base) = preset::base(&cfg, &columns).expect("ok").expect("present");
        assert_eq!(present, ["user_id", "anonymous_id", "event_time", "event_name", "medium", "page_url", "revenue"]);
        let sql = view_sql_over(&canonical, "events", &present, &base).expect("ok").expect("view");
        assert!(sql.contains("'page_view' AS event_name") && sql.contains("FROM public.\"pages\""), "{sql}");
        // Without `identifies`, the links are the events' own pairs.
        assert!(sql.contains("identity_graph(source => 'SELECT anonymous_id, user_id FROM (SELECT"), "{sql}");
        assert!(sql.contains("aliases => 'SELECT previous_id, user_id FROM public.aliases'"), "{sql}");
        // A table without a required column is named with the column to map.
        let broken = |t: &str| (t == "tracks").then(|| vec!["anonymous_id".to_string(), "user_id".into()]);
        let err = preset::base(&cfg, &broken).err().expect("no timestamp").to_string();
        assert!(err.contains("table \"tracks\" has no column \"timestamp\" (canonical \"event_time\")"), "{err}");
        // Neither table: no model.
        assert!(preset::base(&cfg, &|_: &str| None).expect("ok").is_none());
    }

    #[test]
    fn the_snowplow_preset_reads_atomic_events() {
        let cfg = JourneyConfig { preset: Some("snowplow".into()), ..JourneyConfig::default() };
        let atomic: Vec<String> =
            ["domain_userid", "user_id", "collector_tstamp", "derived_tstamp", "event_name", "mkt_medium", "tr_total"]
                .map(String::from)
                .into();
        let columns = |t: &str| (t == "events").then(|| atomic.clone());
        let (canonical, present, base) = preset::base(&cfg, &columns).expect("ok").expect("present");
        assert_eq!(present, ["event_time", "user_id", "anonymous_id", "event_name", "medium", "revenue"]);
        assert!(base.from.contains("coalesce(derived_tstamp, collector_tstamp) AS event_time"), "{}", base.from);
        assert!(base.from.contains("CAST(\"tr_total\" AS DECIMAL(38, 2)) AS revenue"), "{}", base.from);
        assert!(view_sql_over(&canonical, "events", &present, &base).expect("ok").is_some());
        let without = |t: &str| (t == "events").then(|| vec!["user_id".to_string(), "collector_tstamp".into()]);
        let err = preset::base(&cfg, &without).err().expect("no domain_userid").to_string();
        assert!(err.contains("no column \"domain_userid\" (canonical \"anonymous_id\")"), "{err}");
    }

    #[test]
    fn quoting() {
        assert_eq!(ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(literal("it's"), "'it''s'");
    }
}
