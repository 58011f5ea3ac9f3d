//! The demo's journeys in the shapes trackers write (`journeydb demo --shape`), so that every
//! `[journey] preset` runs on the first start and gives the canonical demo's answers.
//!
//! - `segment` (also RudderStack's): `tracks` (every event but page views: `event`,
//!   `event_text`, the ids, `timestamp`, the `context_campaign_*` and `context_page_*` columns,
//!   `revenue` as a double, as Segment writes it), `pages` (the page views, with `url`
//!   absolute on the demo's site, `path`, `referrer`), `identifies` (each cookie and user first
//!   seen together, at that time) and `aliases`: the users whose id ends in 3 are renamed
//!   (`<id>.renamed`) after their first purchase, their later events carry the new id, and an
//!   alias call joins the two. The identity graph makes them one person again, so the reports
//!   answer as over the canonical demo.
//! - `snowplow`: Snowplow's atomic `events` (`event_id`, `event_name`, `domain_userid` and
//!   `network_userid` the cookie, `user_id`, `collector_tstamp` and `derived_tstamp`, the
//!   `mkt_*` campaign columns, `page_urlpath`, `page_url` absolute, `page_referrer`, `tr_total`
//!   as a double, `domain_sessionid`: per cookie, a new session after 30 minutes without an
//!   event, as Snowplow's tracker makes them).

use crate::error::Result;
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Decimal128Array, Float64Builder, RecordBatch, StringArray, StringBuilder,
    TimestampMicrosecondArray, TimestampMicrosecondBuilder,
};
use datafusion::arrow::datatypes::{
    DataType, Decimal128Type, Field, Schema, SchemaRef, TimeUnit, TimestampMicrosecondType,
};
use std::collections::HashMap;
use std::sync::Arc;

/// The shape the demo is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Shape {
    /// The canonical journey columns in `events`.
    #[default]
    Canonical,
    /// Segment's (and RudderStack's) warehouse tables.
    Segment,
    /// Snowplow's atomic events.
    Snowplow,
    /// GA4's BigQuery export: a table per day ([`super::ga4`]).
    Ga4,
}

impl Shape {
    /// `canonical`, or a preset's name (`segment`, `rudderstack`).
    pub fn parse(name: &str) -> Option<Shape> {
        match name.trim().to_ascii_lowercase().as_str() {
            "canonical" | "events" => Some(Shape::Canonical),
            "segment" | "rudderstack" => Some(Shape::Segment),
            "snowplow" => Some(Shape::Snowplow),
            "ga4" => Some(Shape::Ga4),
            _ => None,
        }
    }

    /// Whether `name` is one of this shape's tables of events.
    pub fn is_table(self, name: &str) -> bool {
        match self {
            Shape::Ga4 => {
                let day = name.strip_prefix("events_intraday_").or_else(|| name.strip_prefix("events_"));
                day.is_some_and(|d| d.len() == 8 && d.bytes().all(|b| b.is_ascii_digit()))
            }
            _ => self.tables().contains(&name),
        }
    }

    /// The CRM's deals and the accounts table: `accounts`, or Segment's `groups`.
    pub fn crm_tables(self) -> [&'static str; 2] {
        match self {
            Shape::Segment => ["deals", "groups"],
            _ => ["deals", "accounts"],
        }
    }

    /// The tables of events this shape writes (GA4's are named by day: see [`Shape::is_table`]).
    pub fn tables(self) -> &'static [&'static str] {
        match self {
            Shape::Canonical | Shape::Snowplow => &["events"],
            Shape::Ga4 => &[],
            Shape::Segment => &["tracks", "pages", "identifies", "aliases"],
        }
    }
}

/// The demo's site, for absolute page URLs.
pub(super) const SITE: &str = "https://journeydb.example";

/// The inactivity, in microseconds, after which the trackers start a new session (the journey
/// model's default gap too).
pub(super) const SESSION_GAP: i64 = 30 * 60 * 1_000_000;

fn timestamp() -> Field {
    Field::new("timestamp", DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), false)
}

fn texts(names: &[&str]) -> Vec<Field> {
    names.iter().map(|n| Field::new(*n, DataType::Utf8, true)).collect()
}

const CONTEXT: [&str; 8] = [
    "context_campaign_source",
    "context_campaign_medium",
    "context_campaign_name",
    "context_campaign_term",
    "context_campaign_content",
    "context_page_path",
    "context_page_url",
    "context_page_referrer",
];

pub fn tracks_schema() -> SchemaRef {
    let mut fields = texts(&["anonymous_id", "user_id"]);
    fields.push(timestamp());
    fields.extend(texts(&["event", "event_text"]));
    fields.extend(texts(&CONTEXT));
    fields.push(Field::new("revenue", DataType::Float64, true));
    Arc::new(Schema::new(fields))
}

pub fn pages_schema() -> SchemaRef {
    let mut fields = texts(&["anonymous_id", "user_id"]);
    fields.push(timestamp());
    fields.extend(texts(&["path", "url", "referrer", "title"]));
    fields.extend(texts(&CONTEXT));
    Arc::new(Schema::new(fields))
}

pub fn identifies_schema() -> SchemaRef {
    let mut fields = texts(&["anonymous_id", "user_id"]);
    fields.push(timestamp());
    Arc::new(Schema::new(fields))
}

pub fn aliases_schema() -> SchemaRef {
    let mut fields = texts(&["previous_id", "user_id"]);
    fields.push(timestamp());
    Arc::new(Schema::new(fields))
}

pub fn snowplow_schema() -> SchemaRef {
    let mut fields = texts(&["event_id", "event_name", "domain_userid", "network_userid", "user_id"]);
    for t in ["collector_tstamp", "derived_tstamp"] {
        fields.push(Field::new(t, DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), false));
    }
    fields.extend(texts(&[
        "domain_sessionid",
        "mkt_source",
        "mkt_medium",
        "mkt_campaign",
        "mkt_term",
        "mkt_content",
        "page_urlpath",
        "page_url",
        "page_referrer",
        "refr_source",
        "refr_medium",
    ]));
    fields.push(Field::new("tr_total", DataType::Float64, true));
    Arc::new(Schema::new(fields))
}

/// The columns of a chunk of canonical events (`super::events_schema`) the shapes are made of.
pub(super) struct Canonical {
    pub(super) user: StringArray,
    pub(super) anon: StringArray,
    pub(super) name: StringArray,
    pub(super) time: TimestampMicrosecondArray,
    /// source, medium, campaign, term, content.
    pub(super) context: [StringArray; 5],
    pub(super) page: StringArray,
    pub(super) referrer: StringArray,
    pub(super) revenue: Decimal128Array,
}

impl Canonical {
    pub(super) fn read(events: &RecordBatch) -> Result<Canonical> {
        let column = |name: &str| {
            events
                .column_by_name(name)
                .ok_or_else(|| crate::error::Error::Config(format!("the demo's events lack column {name}")))
        };
        let text = |name: &str| column(name).map(|c| c.as_string::<i32>().clone());
        Ok(Canonical {
            user: text("user_id")?,
            anon: text("anonymous_id")?,
            name: text("event_name")?,
            time: column("event_time")?.as_primitive::<TimestampMicrosecondType>().clone(),
            context: [text("source")?, text("medium")?, text("campaign")?, text("term")?, text("content")?],
            page: text("page_url")?,
            referrer: text("referrer")?,
            revenue: column("revenue")?.as_primitive::<Decimal128Type>().clone(),
        })
    }

    /// Row `i` of a text column, owned.
    pub(super) fn text(column: &StringArray, i: usize) -> Option<String> {
        column.is_valid(i).then(|| column.value(i).to_string())
    }

    /// Each row's session as a tracker starts them: per cookie, anew after more than
    /// [`SESSION_GAP`] without an event (ties in time share one); the session's start time, or
    /// none for a row without a cookie.
    pub(super) fn session_starts(&self) -> Vec<Option<i64>> {
        let mut by_cookie: HashMap<&str, Vec<usize>> = HashMap::new();
        for i in 0..self.anon.len() {
            if self.anon.is_valid(i) {
                by_cookie.entry(self.anon.value(i)).or_default().push(i);
            }
        }
        let mut starts = vec![None; self.anon.len()];
        for rows in by_cookie.values_mut() {
            rows.sort_by_key(|&i| self.time.value(i));
            let (mut start, mut last) = (i64::MIN, i64::MIN);
            for &i in rows.iter() {
                let t = self.time.value(i);
                if start == i64::MIN || t - last > SESSION_GAP {
                    start = t;
                }
                last = t;
                starts[i] = Some(start);
            }
        }
        starts
    }

    /// Row `i`'s revenue in dollars, as trackers write it.
    pub(super) fn dollars(&self, i: usize) -> Option<f64> {
        self.revenue.is_valid(i).then(|| self.revenue.value(i) as f64 / 100.0)
    }
}

/// One chunk (`k`) of canonical events as Snowplow's atomic events.
pub fn snowplow(events: &RecordBatch, k: u64) -> Result<RecordBatch> {
    let e = Canonical::read(events)?;
    let value = Canonical::text;
    let mut b = Builder::new(snowplow_schema());
    for (i, session) in e.session_starts().into_iter().enumerate() {
        b.text(Some(format!("{k:05}-{i:08}")));
        b.text(Some(e.name.value(i).to_string()));
        b.text(value(&e.anon, i));
        b.text(value(&e.anon, i));
        b.text(value(&e.user, i));
        b.time(e.time.value(i));
        b.time(e.time.value(i));
        b.text(session.map(|start| format!("{}-{start:x}", e.anon.value(i))));
        for c in &e.context {
            b.text(value(c, i));
        }
        let path = value(&e.page, i);
        b.text(path.clone());
        b.text(path.map(|p| format!("{SITE}{p}")));
        b.text(value(&e.referrer, i));
        b.text(None);
        b.text(None);
        b.float(e.dollars(i));
    }
    b.finish()
}

/// One chunk of canonical events (`super::events_schema`, whole people) as Segment's tables:
/// tracks, pages, identifies, aliases.
pub fn segment(events: &RecordBatch) -> Result<[RecordBatch; 4]> {
    let e = Canonical::read(events)?;
    let (user, anon, name, time) = (&e.user, &e.anon, &e.name, &e.time);
    let n = events.num_rows();
    let value = Canonical::text;

    // Renamed users: those whose id ends in 3, after their first purchase.
    let mut renamed_after: HashMap<String, i64> = HashMap::new();
    for i in 0..n {
        if let Some(u) = value(user, i)
            && u.ends_with('3')
            && name.value(i) == "purchase"
        {
            let t = renamed_after.entry(u).or_insert(i64::MAX);
            *t = (*t).min(time.value(i));
        }
    }
    let user_at = |i: usize| -> Option<String> {
        let u = value(user, i)?;
        Some(match renamed_after.get(&u) {
            Some(&t) if time.value(i) > t => format!("{u}.renamed"),
            _ => u,
        })
    };

    let (mut tracks, mut pages) = (Builder::new(tracks_schema()), Builder::new(pages_schema()));
    let mut pairs: HashMap<(String, String), i64> = HashMap::new();
    let mut aliases: HashMap<String, i64> = HashMap::new();
    for i in 0..n {
        let (u, a, t) = (user_at(i), value(anon, i), time.value(i));
        if let (Some(u), Some(a)) = (&u, &a) {
            let first = pairs.entry((a.clone(), u.clone())).or_insert(t);
            *first = (*first).min(t);
        }
        if let Some(u) = &u
            && let Some(old) = u.strip_suffix(".renamed")
        {
            let first = aliases.entry(old.to_string()).or_insert(t);
            *first = (*first).min(t);
        }
        let path = value(&e.page, i);
        let url = path.as_ref().map(|p| format!("{SITE}{p}"));
        let refer = value(&e.referrer, i);
        let campaign: Vec<Option<String>> = e.context.iter().map(|c| value(c, i)).collect();
        let is_page = name.value(i) == "page_view";
        let b = if is_page { &mut pages } else { &mut tracks };
        b.text(a);
        b.text(u);
        b.time(t);
        if is_page {
            b.text(path.clone());
            b.text(url.clone());
            b.text(refer.clone());
            b.text(path.as_ref().map(|p| format!("journeydb {p}")));
        } else {
            b.text(Some(name.value(i).to_string()));
            b.text(Some(name.value(i).replace('_', " ")));
        }
        for c in campaign {
            b.text(c);
        }
        b.text(path);
        b.text(url);
        b.text(refer);
        if !is_page {
            b.float(e.dollars(i));
        }
    }
    let mut identifies = Builder::new(identifies_schema());
    let mut pairs: Vec<((String, String), i64)> = pairs.into_iter().collect();
    pairs.sort_by(|x, y| x.1.cmp(&y.1).then_with(|| x.0.cmp(&y.0)));
    for ((a, u), t) in pairs {
        identifies.text(Some(a));
        identifies.text(Some(u));
        identifies.time(t);
    }
    let mut alias = Builder::new(aliases_schema());
    let mut renames: Vec<(String, i64)> = aliases.into_iter().collect();
    renames.sort_by(|x, y| x.1.cmp(&y.1).then_with(|| x.0.cmp(&y.0)));
    for (old, t) in renames {
        alias.text(Some(old.clone()));
        alias.text(Some(format!("{old}.renamed")));
        alias.time(t);
    }
    Ok([tracks.finish()?, pages.finish()?, identifies.finish()?, alias.finish()?])
}

/// Column builders filled in the schema's order.
struct Builder {
    schema: SchemaRef,
    columns: Vec<Column>,
    next: usize,
}

enum Column {
    Text(StringBuilder),
    Time(TimestampMicrosecondBuilder),
    Float(Float64Builder),
}

impl Builder {
    fn new(schema: SchemaRef) -> Self {
        let columns = schema
            .fields()
            .iter()
            .map(|f| match f.data_type() {
                DataType::Timestamp(..) => Column::Time(TimestampMicrosecondBuilder::new()),
                DataType::Float64 => Column::Float(Float64Builder::new()),
                _ => Column::Text(StringBuilder::new()),
            })
            .collect();
        Builder { schema, columns, next: 0 }
    }

    fn column(&mut self) -> &mut Column {
        let i = self.next;
        self.next = (self.next + 1) % self.columns.len();
        &mut self.columns[i]
    }

    fn text(&mut self, v: Option<String>) {
        if let Column::Text(b) = self.column() {
            b.append_option(v);
        }
    }

    fn time(&mut self, v: i64) {
        if let Column::Time(b) = self.column() {
            b.append_value(v);
        }
    }

    fn float(&mut self, v: Option<f64>) {
        if let Column::Float(b) = self.column() {
            b.append_option(v);
        }
    }

    fn finish(self) -> Result<RecordBatch> {
        let tz: Arc<str> = "UTC".into();
        let columns: Vec<ArrayRef> = self
            .columns
            .into_iter()
            .map(|c| -> ArrayRef {
                match c {
                    Column::Text(mut b) => Arc::new(b.finish()),
                    Column::Time(mut b) => Arc::new(b.finish().with_timezone(tz.clone())),
                    Column::Float(mut b) => Arc::new(b.finish()),
                }
            })
            .collect();
        Ok(RecordBatch::try_new(self.schema, columns)?)
    }
}
