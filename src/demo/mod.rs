//! The demo dataset generator: realistic customer journeys as Parquet, deterministic by seed.
//!
//! The dataset is the `events` table with the canonical journey columns (see DESIGN.md):
//! `user_id, anonymous_id, event_time, event_name, channel, source, medium, campaign, term,
//! content, page_url, referrer, revenue`.
//!
//! What it models, so that journey questions have meaningful answers:
//! - people with one to three cookies (devices); some never identify themselves, the others
//!   identify at their first lead event (form fill, live chat, demo request), which carries
//!   both ids; events before it carry only the cookie, events after it both;
//! - sessions separated by days, each starting with a touch (an event with channel, source,
//!   medium, campaign, term, content, referrer) followed by page views without one;
//! - stages awareness -> consideration -> decision (lead) -> opportunity -> customer, where each
//!   channel moves people on with its own strength (display and social find people but rarely
//!   convert them, paid search and email close), so attribution models disagree for real;
//! - offline touches: live chats, phone calls recorded as Direct, CRM opportunities (no channel,
//!   no cookie), webinars, emails, demo requests;
//! - purchases with revenue (numeric(12,2)), repeat purchases, and tied timestamps (a purchase
//!   and its confirmation page view in the same second; events at whole seconds).
//!
//! Beside it, the `app_events` table (`user_id, event_time, event_name, platform`): what people
//! do in the product after their first lead event (a trial account): `account_created`, then,
//! each with its own drop-off, `email_verified`, `data_connected` (the hard step), `first_report`
//! and `teammate_invited`, with `login`s in between. Its user ids are the `events` table's, so the
//! two join. It is drawn from its own random stream, so `events` does not depend on it.
//!
//! And the `ad_spend` table (`day, channel, source, medium, campaign, spend`): what the paid
//! channels (Paid Search, Paid Social, Display) cost each day, per campaign, from two weeks
//! before the first journey to the end of the data: daily budgets in proportion to the
//! dataset's size, lower at weekends, with noise from their own random stream. Its channels and
//! campaigns are the events' own, so `attribute(..., spend => 'ad_spend')` gives each its ROAS.
//!
//! And the CRM's `deals` (HubSpot's deal stage history, one row per change) and the `accounts`
//! people belong to, drawn from the journeys ([`crm`]): read with `[journey.crm]` and
//! `[journey.accounts]`, the won deals are the purchases that followed an opportunity.
//!
//! The same journeys can be written in the shapes trackers write instead of `events`
//! ([`shape`]: `--shape segment` writes Segment's `tracks`, `pages`, `identifies` and `aliases`).
//!
//! Determinism: the dataset is cut into chunks of `events_per_file` events; chunk `k` is
//! generated from `seed` and `k` only, so the output is the same byte for byte whatever the
//! number of threads. Each chunk is one Parquet file, written under a temporary name and
//! renamed into place.

pub mod crm;
pub mod ga4;
pub mod shape;

use crate::error::{Error, Result};
use datafusion::arrow::array::{ArrayRef, Decimal128Builder, StringBuilder, TimestampMicrosecondBuilder};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::basic::Compression;
use datafusion::parquet::file::properties::WriterProperties;
pub use shape::Shape;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Rows per Arrow batch handed to the Parquet writer.
const BATCH_ROWS: usize = 65_536;
/// Rows per Parquet row group.
const ROW_GROUP_ROWS: usize = 131_072;
/// 2025-01-01T00:00:00Z in microseconds since the Unix epoch.
const START_MICROS: i64 = 1_735_689_600_000_000;
/// People start their journeys over this many days.
const START_SPREAD_DAYS: u64 = 150;
const SECOND: i64 = 1_000_000;
const DAY: i64 = 86_400 * SECOND;
/// Most sessions a person has.
const MAX_SESSIONS: u32 = 40;

#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub events: u64,
    pub seed: u64,
    pub events_per_file: u64,
    /// The tables the events are written as.
    pub shape: Shape,
}

impl Default for DemoOptions {
    fn default() -> Self {
        DemoOptions { events: 300_000, seed: 42, events_per_file: 1_000_000, shape: Shape::Canonical }
    }
}

#[derive(Debug, Clone)]
pub struct DemoStats {
    pub events: u64,
    pub people: u64,
    pub files: u64,
    pub seconds: f64,
    pub dir: PathBuf,
}

impl std::fmt::Display for DemoStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let rate = if self.seconds > 0.0 { self.events as f64 / self.seconds } else { 0.0 };
        write!(
            f,
            "wrote {} events of {} people in {} file(s) to {} in {:.2}s ({:.0} events/s)",
            self.events,
            self.people,
            self.files,
            self.dir.display(),
            self.seconds,
            rate
        )
    }
}

/// The schema of the demo `events` table.
pub fn events_schema() -> SchemaRef {
    let s = |name: &str| Field::new(name, DataType::Utf8, true);
    Arc::new(Schema::new(vec![
        s("user_id"),
        s("anonymous_id"),
        Field::new("event_time", DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), false),
        Field::new("event_name", DataType::Utf8, false),
        s("channel"),
        s("source"),
        s("medium"),
        s("campaign"),
        s("term"),
        s("content"),
        s("page_url"),
        s("referrer"),
        Field::new("revenue", DataType::Decimal128(12, 2), true),
    ]))
}

/// The schema of the demo `ad_spend` table.
pub fn ad_spend_schema() -> SchemaRef {
    let s = |name: &str| Field::new(name, DataType::Utf8, false);
    Arc::new(Schema::new(vec![
        Field::new("day", DataType::Date32, false),
        s("channel"),
        s("source"),
        s("medium"),
        s("campaign"),
        Field::new("spend", DataType::Decimal128(12, 2), false),
    ]))
}

/// The paid lines of the demo's ad spend: channel, source, medium, campaign, and the daily
/// budget in dollars per million events.
const SPEND_LINES: [(&str, &str, &str, &str, f64); 20] = [
    ("Paid Search", "google", "cpc", "brand_search", 50.0),
    ("Paid Search", "google", "cpc", "generic_analytics", 200.0),
    ("Paid Search", "google", "cpc", "attribution_keywords", 160.0),
    ("Paid Search", "google", "cpc", "competitor_search", 140.0),
    ("Paid Search", "bing", "cpc", "brand_search", 20.0),
    ("Paid Search", "bing", "cpc", "generic_analytics", 70.0),
    ("Paid Search", "bing", "cpc", "attribution_keywords", 50.0),
    ("Paid Search", "bing", "cpc", "competitor_search", 45.0),
    ("Paid Social", "linkedin", "paid_social", "q1_launch", 150.0),
    ("Paid Social", "linkedin", "paid_social", "ebook_attribution_guide", 130.0),
    ("Paid Social", "linkedin", "paid_social", "retargeting_social", 110.0),
    ("Paid Social", "linkedin", "paid_social", "webinar_promo", 100.0),
    ("Paid Social", "facebook", "paid_social", "q1_launch", 60.0),
    ("Paid Social", "facebook", "paid_social", "ebook_attribution_guide", 50.0),
    ("Paid Social", "facebook", "paid_social", "retargeting_social", 45.0),
    ("Paid Social", "facebook", "paid_social", "webinar_promo", 40.0),
    ("Display", "google_display", "display", "awareness_banners", 120.0),
    ("Display", "google_display", "display", "retargeting_display", 80.0),
    ("Display", "doubleclick", "cpm", "awareness_banners", 90.0),
    ("Display", "doubleclick", "cpm", "retargeting_display", 60.0),
];

/// The demo's ad spend for a dataset of `events` events ([`ad_spend_schema`]): one row per
/// day and paid line, from 14 days before the first journey to 400 days after.
pub fn ad_spend(events: u64, seed: u64) -> Result<RecordBatch> {
    let mut rng = Rng::new(seed ^ 0x5BE0_D5BE_0D5B_E0D5);
    let scale = events as f64 / 1e6;
    let first_day = START_MICROS / DAY - 14;
    let (mut day, mut channel, mut source, mut medium, mut campaign) = (
        datafusion::arrow::array::Date32Builder::new(),
        StringBuilder::new(),
        StringBuilder::new(),
        StringBuilder::new(),
        StringBuilder::new(),
    );
    let mut spend = Decimal128Builder::new();
    for d in first_day..START_MICROS / DAY + 400 {
        // 1970-01-01 was a Thursday: days 2 and 3 of the week are Saturday and Sunday.
        let weekend = matches!(d.rem_euclid(7), 2 | 3);
        for (ch, src, med, camp, budget) in SPEND_LINES {
            let factor = if weekend { 0.6 } else { 1.0 } * (0.8 + 0.4 * rng.unit());
            let cents = (budget * scale * factor * 100.0).round() as i128;
            day.append_value(d as i32);
            channel.append_value(ch);
            source.append_value(src);
            medium.append_value(med);
            campaign.append_value(camp);
            spend.append_value(cents);
        }
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(day.finish()),
        Arc::new(channel.finish()),
        Arc::new(source.finish()),
        Arc::new(medium.finish()),
        Arc::new(campaign.finish()),
        Arc::new(spend.finish().with_precision_and_scale(12, 2)?),
    ];
    Ok(RecordBatch::try_new(ad_spend_schema(), columns)?)
}

/// Writes the demo's ad spend to `dir/demo-spend.parquet`, atomically.
fn write_ad_spend(dir: &Path, opts: &DemoOptions) -> Result<()> {
    let path = dir.join("demo-spend.parquet");
    let tmp = path.with_extension("parquet.tmp");
    let props = WriterProperties::builder().set_compression(Compression::SNAPPY).build();
    let mut writer = ArrowWriter::try_new(std::fs::File::create(&tmp)?, ad_spend_schema(), Some(props))?;
    writer.write(&ad_spend(opts.events, opts.seed)?)?;
    writer.close()?;
    std::fs::rename(&tmp, &path)?;
    Ok(())
}

/// The schema of the demo `app_events` table.
pub fn app_events_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("user_id", DataType::Utf8, false),
        Field::new("event_time", DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), false),
        Field::new("event_name", DataType::Utf8, false),
        Field::new("platform", DataType::Utf8, false),
    ]))
}

/// `journeydb serve` over a data directory that does not exist: the demo dataset is written
/// there first (`demo_events` of the configuration; 0 turns this off).
pub fn create_if_missing(config: &crate::config::Config) -> Result<()> {
    if config.demo_events == 0 {
        return Ok(());
    }
    let location = config.location()?;
    let missing = match &location {
        crate::store::Location::Local(dir) => !dir.exists(),
        // A prefix of a bucket is missing when nothing is under it.
        remote => crate::store::Objects::open(remote, &config.store)?.list("")?.dirs.is_empty(),
    };
    if !missing {
        return Ok(());
    }
    tracing::info!(location = %location, events = config.demo_events, "creating the demo dataset");
    // A tracker's preset gets the demo in its tracker's shape.
    let shape = config.journey.preset.as_deref().and_then(Shape::parse).unwrap_or_default();
    let opts = DemoOptions { events: config.demo_events, seed: config.demo_seed, shape, ..DemoOptions::default() };
    let stats = generate_to(&location, &config.store, &opts)?;
    tracing::info!("{stats}");
    Ok(())
}

/// Generates the dataset into `location`: on a local disk in place ([`generate_to_dir`]), on
/// object storage into a local temporary folder first, then uploaded file by file (the demo
/// files of an earlier run there are replaced).
pub fn generate_to(
    location: &crate::store::Location,
    store: &crate::store::StoreOptions,
    opts: &DemoOptions,
) -> Result<DemoStats> {
    let objects = match location {
        crate::store::Location::Local(dir) => return generate_to_dir(dir, opts),
        crate::store::Location::S3 { .. } => crate::store::Objects::open(location, store)?,
    };
    let tmp = std::env::temp_dir().join(format!("journeydb-demo-{}", std::process::id()));
    let result = (|| {
        let stats = generate_to_dir(&tmp, opts)?;
        // Every table the run wrote (GA4's are named by day).
        let mut tables: Vec<String> = std::fs::read_dir(&tmp)?
            .filter_map(|e| e.ok())
            .filter(|e| e.path().is_dir())
            .map(|e| e.file_name().to_string_lossy().to_string())
            .collect();
        tables.sort();
        for table in &tables {
            for m in objects.list(table)?.files {
                if m.location.filename().is_some_and(|n| n.starts_with("demo-")) {
                    objects.delete(&format!("{table}/{}", m.location.filename().unwrap_or_default()))?;
                }
            }
            let mut files: Vec<_> = std::fs::read_dir(tmp.join(table))?.filter_map(|e| e.ok()).collect();
            files.sort_by_key(|e| e.file_name());
            for f in files {
                let name = f.file_name().to_string_lossy().to_string();
                objects.upload(&f.path(), &format!("{table}/{name}"))?;
            }
        }
        Ok(stats)
    })();
    let _ = std::fs::remove_dir_all(&tmp);
    result
}

/// Generates the dataset into `out/events/` (or the shape's tables), `out/deals/`,
/// `out/accounts/` (Segment's shape: `out/groups/`), `out/app_events/` and `out/ad_spend/`,
/// replacing any previous demo files there.
pub fn generate_to_dir(out: &Path, opts: &DemoOptions) -> Result<DemoStats> {
    if opts.events_per_file == 0 {
        return Err(Error::InvalidParameter("events per file must be at least 1".into()));
    }
    let started = Instant::now();
    let dir = out.join("events");
    let app_dir = out.join("app_events");
    let spend_dir = out.join("ad_spend");
    let mut shaped: Vec<PathBuf> = opts.shape.tables().iter().map(|t| out.join(t)).collect();
    if opts.shape == Shape::Ga4 && out.exists() {
        // A table per day: those of an earlier run.
        for entry in std::fs::read_dir(out)? {
            let entry = entry?;
            if entry.file_name().to_str().is_some_and(|n| opts.shape.is_table(n)) {
                shaped.push(entry.path());
            }
        }
    }
    let crm_dirs: Vec<PathBuf> = opts.shape.crm_tables().iter().map(|t| out.join(t)).collect();
    for d in shaped.iter().chain(&crm_dirs).chain([&app_dir, &spend_dir]) {
        std::fs::create_dir_all(d)?;
        for entry in std::fs::read_dir(d)? {
            let path = entry?.path();
            let is_demo = path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("demo-"));
            if is_demo {
                std::fs::remove_file(&path)?;
            }
        }
    }
    let chunks = opts.events.div_ceil(opts.events_per_file);
    let next = AtomicU64::new(0);
    let people = AtomicU64::new(0);
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).min(chunks.max(1) as usize);
    let results: Vec<Result<()>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| -> Result<()> {
                    loop {
                        let k = next.fetch_add(1, Ordering::Relaxed);
                        if k >= chunks {
                            return Ok(());
                        }
                        let quota = opts.events_per_file.min(opts.events - k * opts.events_per_file);
                        let name = format!("demo-{k:05}.parquet");
                        let n = write_chunk(out, &name, opts, k, quota)?;
                        people.fetch_add(n, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err(Error::Config("demo generator thread panicked".into()))))
            .collect()
    });
    for r in results {
        r?;
    }
    write_ad_spend(&spend_dir, opts)?;
    Ok(DemoStats {
        events: opts.events,
        people: people.load(Ordering::Relaxed),
        files: chunks,
        seconds: started.elapsed().as_secs_f64(),
        dir: shaped.into_iter().next().unwrap_or(dir),
    })
}

/// Writes chunk `k` (exactly `quota` events) as file `name` of the shape's tables under `out`,
/// and the product events of its people to `app_events`, each atomically. Returns the people
/// in it.
fn write_chunk(out: &Path, name: &str, opts: &DemoOptions, k: u64, quota: u64) -> Result<u64> {
    let props = || {
        WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
            .build()
    };
    let schema = events_schema();
    let mut generator = Generator::new(opts.seed, k);
    let mut crm = crm::Crm::default();
    let mut remaining = quota as usize;
    // Each file under its temporary name until every one of the chunk is written.
    let mut written: Vec<(PathBuf, PathBuf)> = vec![];
    match opts.shape {
        Shape::Canonical => {
            let path = out.join("events").join(name);
            let tmp = path.with_extension("parquet.tmp");
            let mut writer = ArrowWriter::try_new(std::fs::File::create(&tmp)?, schema.clone(), Some(props()))?;
            while remaining > 0 {
                let rows = remaining.min(BATCH_ROWS);
                let batch = generator.next_batch(&schema, rows)?;
                crm.record(&batch)?;
                writer.write(&batch)?;
                remaining -= rows;
            }
            writer.close()?;
            written.push((tmp, path));
        }
        shaped => {
            // A chunk holds whole people: its identity calls are its own.
            let mut batches = vec![];
            while remaining > 0 {
                let rows = remaining.min(BATCH_ROWS);
                batches.push(generator.next_batch(&schema, rows)?);
                remaining -= rows;
            }
            let events = datafusion::arrow::compute::concat_batches(&schema, &batches)?;
            crm.record(&events)?;
            let named = |tables: &[&str], batches: Vec<RecordBatch>| -> Vec<(String, RecordBatch)> {
                tables.iter().map(|t| t.to_string()).zip(batches).collect()
            };
            let tables: Vec<(String, RecordBatch)> = match shaped {
                Shape::Segment => named(shaped.tables(), shape::segment(&events)?.into()),
                Shape::Ga4 => ga4::ga4(&events, "events")?,
                _ => named(shaped.tables(), vec![shape::snowplow(&events, k)?]),
            };
            for (table, batch) in tables {
                let path = out.join(&table).join(name);
                std::fs::create_dir_all(out.join(&table))?;
                let tmp = path.with_extension("parquet.tmp");
                let mut writer = ArrowWriter::try_new(std::fs::File::create(&tmp)?, batch.schema(), Some(props()))?;
                writer.write(&batch)?;
                writer.close()?;
                written.push((tmp, path));
            }
        }
    }
    // The CRM's deals and the accounts (Segment's `groups` in its shape).
    let [deals_table, accounts_table] = opts.shape.crm_tables();
    let accounts = if opts.shape == Shape::Segment { crm.groups()? } else { crm.accounts()? };
    for (table, batch) in [(deals_table, crm.deals()?), (accounts_table, accounts)] {
        let path = out.join(table).join(name);
        let tmp = path.with_extension("parquet.tmp");
        let mut writer = ArrowWriter::try_new(std::fs::File::create(&tmp)?, batch.schema(), Some(props()))?;
        writer.write(&batch)?;
        writer.close()?;
        written.push((tmp, path));
    }
    let app_path = out.join("app_events").join(name);
    let app_tmp = app_path.with_extension("parquet.tmp");
    let app_schema = app_events_schema();
    let mut app_writer = ArrowWriter::try_new(std::fs::File::create(&app_tmp)?, app_schema.clone(), Some(props()))?;
    app_writer.write(&generator.take_app_events(&app_schema)?)?;
    app_writer.close()?;
    std::fs::rename(&app_tmp, &app_path)?;
    for (tmp, path) in written {
        std::fs::rename(&tmp, &path)?;
    }
    Ok(generator.people)
}

/// Generates batches of events for one chunk: whole journeys, person after person, sorted by
/// person and time; a batch boundary may fall inside a journey (the rest goes in the next).
pub struct Generator {
    rng: Rng,
    chunk: u64,
    people: u64,
    pending: Vec<Event>,
    pending_pos: usize,
    text: String,
    seed: u64,
    /// The product events of the people emitted so far: (user, time, name, platform).
    app: Vec<(u32, i64, &'static str, &'static str)>,
    /// The last person given a trial account.
    onboarded: Option<u64>,
}

#[derive(Debug, Clone)]
struct Event {
    user: Option<u32>,
    cookie: Option<u8>,
    person: u64,
    time: i64,
    name: &'static str,
    touch: Option<Touch>,
    page: Option<&'static str>,
    revenue_cents: Option<i64>,
}

impl Event {
    /// An event of `person` with nothing but its time and name; fields are filled by the caller.
    fn at(person: u64, time: i64, name: &'static str) -> Event {
        Event { user: None, cookie: None, person, time, name, touch: None, page: None, revenue_cents: None }
    }
}

#[derive(Debug, Clone, Copy)]
struct Touch {
    channel: &'static str,
    source: &'static str,
    medium: &'static str,
    campaign: Option<&'static str>,
    term: Option<&'static str>,
    content: Option<&'static str>,
    referrer: Option<&'static str>,
}

impl Generator {
    pub fn new(seed: u64, chunk: u64) -> Generator {
        Generator {
            rng: Rng::new(seed ^ chunk.wrapping_mul(0x9E37_79B9_7F4A_7C15)),
            chunk,
            people: 0,
            pending: Vec::with_capacity(256),
            pending_pos: 0,
            text: String::with_capacity(32),
            seed,
            app: vec![],
            onboarded: None,
        }
    }

    /// A trial account for `user` from `t` on: the onboarding steps, each with its own drop-off,
    /// from a random stream of its own (so `events` does not depend on it).
    fn onboard(&mut self, person: u64, user: u32, t: i64) {
        let mut r = Rng::new(self.seed ^ self.chunk.rotate_left(32) ^ person.wrapping_mul(0xD6E8_FEB8_6659_FD93));
        let platform = match r.below(10) {
            0..=6 => "web",
            7..=8 => "ios",
            _ => "android",
        };
        let second = |t: f64| (t as i64) - (t as i64) % SECOND;
        let mut t = second(t as f64 + (60 + r.below(1_200)) as f64 * SECOND as f64);
        self.app.push((user, t, "account_created", platform));
        let created = t;
        // (step, chance given the previous step, mean hours after it); harder on mobile.
        let mobile = platform != "web";
        let steps: [(&'static str, f64, f64); 4] = [
            ("email_verified", 0.85, 0.5),
            ("data_connected", if mobile { 0.35 } else { 0.6 }, 36.0),
            ("first_report", 0.8, 3.0),
            ("teammate_invited", 0.45, 48.0),
        ];
        for (name, chance, hours) in steps {
            if !r.chance(chance) {
                break;
            }
            t = second(t as f64 + r.exp(hours) * 3_600.0 * SECOND as f64) + SECOND;
            self.app.push((user, t, name, platform));
        }
        for _ in 0..r.below(6) {
            let at = second(created as f64 + r.unit() * 14.0 * DAY as f64);
            self.app.push((user, at, "login", platform));
        }
    }

    /// The product events of the people emitted so far, sorted by user and time.
    pub fn take_app_events(&mut self, schema: &SchemaRef) -> Result<RecordBatch> {
        let mut app = std::mem::take(&mut self.app);
        app.sort_unstable();
        let mut user = StringBuilder::with_capacity(app.len(), app.len() * 11);
        let mut time = TimestampMicrosecondBuilder::with_capacity(app.len());
        let mut name = StringBuilder::with_capacity(app.len(), app.len() * 12);
        let mut platform = StringBuilder::with_capacity(app.len(), app.len() * 4);
        for (u, t, n, p) in app {
            self.text.clear();
            let _ = write!(self.text, "u{:03}{:07}", self.chunk, u);
            user.append_value(&self.text);
            time.append_value(t);
            name.append_value(n);
            platform.append_value(p);
        }
        let columns: Vec<ArrayRef> = vec![
            Arc::new(user.finish()),
            Arc::new(time.finish().with_timezone("UTC")),
            Arc::new(name.finish()),
            Arc::new(platform.finish()),
        ];
        Ok(RecordBatch::try_new(schema.clone(), columns)?)
    }

    /// The next `rows` events as one batch.
    pub fn next_batch(&mut self, schema: &SchemaRef, rows: usize) -> Result<RecordBatch> {
        let mut b = Builders::new(rows);
        for _ in 0..rows {
            if self.pending_pos == self.pending.len() {
                self.pending.clear();
                self.pending_pos = 0;
                while self.pending.is_empty() {
                    self.journey();
                }
            }
            let e = &self.pending[self.pending_pos];
            self.pending_pos += 1;
            if let Some(u) = e.user.filter(|_| matches!(e.name, "form_submit" | "live_chat" | "demo_request"))
                && self.onboarded != Some(e.person)
            {
                let (person, t) = (e.person, e.time);
                self.onboarded = Some(person);
                self.onboard(person, u, t);
            }
            let e = &self.pending[self.pending_pos - 1];
            self.text.clear();
            match e.user {
                Some(u) => {
                    let _ = write!(self.text, "u{:03}{:07}", self.chunk, u);
                    b.user_id.append_value(&self.text);
                }
                None => b.user_id.append_null(),
            }
            match e.cookie {
                Some(c) => {
                    self.text.clear();
                    let id = e.person.wrapping_mul(0x2545_F491_4F6C_DD1D) ^ (c as u64).wrapping_mul(0x9E37_79B9);
                    let _ = write!(self.text, "a-{:016x}", id ^ self.chunk.rotate_left(40));
                    b.anonymous_id.append_value(&self.text);
                }
                None => b.anonymous_id.append_null(),
            }
            b.event_time.append_value(e.time);
            b.event_name.append_value(e.name);
            match &e.touch {
                Some(t) => {
                    b.channel.append_value(t.channel);
                    b.source.append_value(t.source);
                    b.medium.append_value(t.medium);
                    b.campaign.append_option(t.campaign);
                    b.term.append_option(t.term);
                    b.content.append_option(t.content);
                    b.referrer.append_option(t.referrer);
                }
                None => {
                    b.channel.append_null();
                    // CRM events keep their system of record as the source.
                    if e.name == "opportunity" {
                        b.source.append_value("crm");
                    } else {
                        b.source.append_null();
                    }
                    b.medium.append_null();
                    b.campaign.append_null();
                    b.term.append_null();
                    b.content.append_null();
                    b.referrer.append_null();
                }
            }
            b.page_url.append_option(e.page);
            b.revenue.append_option(e.revenue_cents.map(i128::from));
        }
        b.finish(schema)
    }

    /// Appends one person's whole journey to `pending`.
    fn journey(&mut self) {
        let person = self.people;
        self.people += 1;
        let r = &mut self.rng;
        let known = r.chance(0.55);
        let cookies: u8 = match r.below(10) {
            0..=5 => 1,
            6..=8 => 2,
            _ => 3,
        };
        let user = known.then_some(person as u32);
        let mut identified = false;
        let mut stage = Stage::Awareness;
        let mut t = START_MICROS + r.below(START_SPREAD_DAYS * 86_400) as i64 * SECOND;
        let mut purchases = 0u32;
        for session in 0..MAX_SESSIONS {
            if session > 0 {
                // Days between visits: people close to buying come back sooner.
                let mean_days = match stage {
                    Stage::Awareness => 6.0,
                    Stage::Consideration => 4.0,
                    Stage::Lead | Stage::Opportunity => 2.5,
                    Stage::Customer => 12.0,
                };
                t += (r.exp(mean_days) * DAY as f64) as i64 + r.below(3_600) as i64 * SECOND;
                // Events happen at whole seconds, as most trackers record them: ties are real.
                t -= t % SECOND;
            }
            let cookie = if cookies == 1 || r.chance(0.6) { 0 } else { r.below(cookies as u64) as u8 };
            let ch = pick_channel(r, stage, session == 0);
            let touch = make_touch(r, ch, stage);
            let landing = landing_page(r, ch, stage);
            let who = |identified: bool| if identified { user } else { None };
            self.pending.push(Event {
                user: who(identified),
                cookie: Some(cookie),
                touch: Some(touch),
                page: Some(landing),
                ..Event::at(person, t, if CHANNELS[ch].name == "Email" { "email_click" } else { "page_view" })
            });
            let views = r.below(5) as usize;
            for _ in 0..views {
                t += (5 + r.below(240)) as i64 * SECOND;
                self.pending.push(Event {
                    user: who(identified),
                    cookie: Some(cookie),
                    page: Some(PAGES[r.below(PAGES.len() as u64) as usize]),
                    ..Event::at(person, t, "page_view")
                });
            }
            let strength = CHANNELS[ch].strength[stage as usize];
            match stage {
                Stage::Awareness => {
                    if r.chance(0.35 * strength) {
                        stage = Stage::Consideration;
                        t += (20 + r.below(300)) as i64 * SECOND;
                        let (name, page) = if r.chance(0.4) {
                            ("webinar_signup", "/webinar/journey-analytics-101")
                        } else {
                            ("content_download", "/resources/attribution-ebook")
                        };
                        self.pending.push(Event {
                            user: who(identified),
                            cookie: Some(cookie),
                            page: Some(page),
                            ..Event::at(person, t, name)
                        });
                    }
                }
                Stage::Consideration => {
                    if known && r.chance(0.14 * strength) {
                        stage = Stage::Lead;
                        t += (30 + r.below(600)) as i64 * SECOND;
                        identified = true;
                        let (name, page) = match r.below(10) {
                            0..=4 => ("form_submit", "/contact"),
                            5..=7 => ("live_chat", "/pricing"),
                            _ => ("demo_request", "/demo"),
                        };
                        // The identify event carries both the cookie and the user id.
                        self.pending.push(Event {
                            user,
                            cookie: Some(cookie),
                            page: Some(page),
                            ..Event::at(person, t, name)
                        });
                    }
                }
                Stage::Lead => {
                    if r.chance(0.07 * strength) {
                        stage = Stage::Opportunity;
                        // Often a sales call, recorded as Direct, then the CRM opportunity.
                        if r.chance(0.6) {
                            t += (2 * 3_600 + r.below(2 * 86_400)) as i64 * SECOND;
                            self.pending.push(Event {
                                user,
                                touch: Some(DIRECT_TOUCH),
                                ..Event::at(person, t, "phone_call")
                            });
                        }
                        t += (600 + r.below(86_400)) as i64 * SECOND;
                        self.pending.push(Event { user, ..Event::at(person, t, "opportunity") });
                    }
                }
                Stage::Opportunity | Stage::Customer => {
                    let p = if stage == Stage::Customer { 0.06 } else { 0.10 };
                    if r.chance(p * strength) {
                        if stage == Stage::Opportunity && r.chance(0.5) {
                            // The closing call, recorded as Direct.
                            t += (3_600 + r.below(86_400)) as i64 * SECOND;
                            self.pending.push(Event {
                                user,
                                touch: Some(DIRECT_TOUCH),
                                ..Event::at(person, t, "phone_call")
                            });
                        }
                        stage = Stage::Customer;
                        purchases += 1;
                        t += (60 + r.below(1_800)) as i64 * SECOND;
                        let cents = PRICES_CENTS[r.below(PRICES_CENTS.len() as u64) as usize]
                            * if purchases > 1 { 1 } else { 1 + r.below(3) as i64 };
                        self.pending.push(Event {
                            user,
                            cookie: Some(cookie),
                            page: Some("/checkout"),
                            revenue_cents: Some(cents),
                            ..Event::at(person, t, "purchase")
                        });
                        // The confirmation page view lands in the same second: a tie.
                        self.pending.push(Event {
                            user,
                            cookie: Some(cookie),
                            page: Some("/checkout/complete"),
                            ..Event::at(person, t, "page_view")
                        });
                    }
                }
            }
            // Leaving: unconverted people drift away; customers sometimes come back.
            let leave = match stage {
                Stage::Awareness => 0.30,
                Stage::Consideration => 0.18,
                Stage::Lead => 0.16,
                Stage::Opportunity => 0.14,
                Stage::Customer => 0.35,
            };
            if r.chance(leave) || t > START_MICROS + 330 * DAY {
                break;
            }
        }
        // Newsletter opens close some journeys, after the last visit.
        if known && identified && r.chance(0.3) {
            let email = make_touch(&mut self.rng, EMAIL, Stage::Customer);
            t += (self.rng.exp(3.0) * DAY as f64) as i64;
            t -= t % SECOND;
            self.pending.push(Event { user, touch: Some(email), ..Event::at(person, t, "email_open") });
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Awareness = 0,
    Consideration = 1,
    Lead = 2,
    Opportunity = 3,
    Customer = 4,
}

struct Channel {
    name: &'static str,
    /// How likely a session from this channel is to start a journey, by stage of the person.
    reach: [f64; 5],
    /// How strongly a session from this channel moves a person to the next stage.
    strength: [f64; 5],
}

const EMAIL: usize = 4;
const CHANNELS: [Channel; 8] = [
    Channel { name: "Organic Search", reach: [30.0, 22.0, 10.0, 6.0, 6.0], strength: [1.0, 1.2, 0.7, 0.6, 0.6] },
    Channel { name: "Paid Search", reach: [14.0, 18.0, 18.0, 12.0, 6.0], strength: [0.9, 1.1, 1.6, 1.3, 1.0] },
    Channel { name: "Paid Social", reach: [16.0, 8.0, 5.0, 3.0, 3.0], strength: [0.7, 0.5, 0.4, 0.3, 0.3] },
    Channel { name: "Organic Social", reach: [10.0, 6.0, 3.0, 2.0, 4.0], strength: [0.6, 0.5, 0.3, 0.3, 0.4] },
    Channel { name: "Email", reach: [0.0, 14.0, 20.0, 22.0, 30.0], strength: [0.0, 1.0, 1.3, 1.6, 1.8] },
    Channel { name: "Display", reach: [16.0, 6.0, 4.0, 3.0, 3.0], strength: [0.8, 0.3, 0.2, 0.2, 0.2] },
    Channel { name: "Referral", reach: [8.0, 14.0, 8.0, 6.0, 4.0], strength: [1.0, 1.5, 1.0, 0.8, 0.6] },
    Channel { name: "Direct", reach: [6.0, 12.0, 22.0, 30.0, 34.0], strength: [0.5, 0.8, 1.2, 1.4, 1.5] },
];

const DIRECT_TOUCH: Touch = Touch {
    channel: "Direct",
    source: "(direct)",
    medium: "(none)",
    campaign: None,
    term: None,
    content: None,
    referrer: None,
};

const PAGES: [&str; 12] = [
    "/",
    "/pricing",
    "/product/attribution",
    "/product/funnels",
    "/product/paths",
    "/customers",
    "/blog/what-is-multi-touch-attribution",
    "/blog/funnel-analysis-guide",
    "/docs/getting-started",
    "/integrations",
    "/about",
    "/security",
];

const PRICES_CENTS: [i64; 5] = [49_900, 99_900, 199_900, 499_900, 1_200_000];

fn pick_channel(r: &mut Rng, stage: Stage, first: bool) -> usize {
    let s = stage as usize;
    let total: f64 =
        CHANNELS.iter().enumerate().filter(|(i, _)| !(first && *i == EMAIL)).map(|(_, c)| c.reach[s]).sum();
    let mut x = r.unit() * total;
    for (i, c) in CHANNELS.iter().enumerate() {
        if first && i == EMAIL {
            continue;
        }
        x -= c.reach[s];
        if x < 0.0 {
            return i;
        }
    }
    CHANNELS.len() - 1
}

fn one<T: Copy>(r: &mut Rng, items: &[T]) -> T {
    items[r.below(items.len() as u64) as usize]
}

fn make_touch(r: &mut Rng, ch: usize, stage: Stage) -> Touch {
    let channel = CHANNELS[ch].name;
    let none = Touch { channel, source: "", medium: "", campaign: None, term: None, content: None, referrer: None };
    match channel {
        "Organic Search" => {
            let (source, referrer) = one(
                r,
                &[
                    ("google", "https://www.google.com/"),
                    ("google", "https://www.google.com/"),
                    ("bing", "https://www.bing.com/"),
                    ("duckduckgo", "https://duckduckgo.com/"),
                ],
            );
            Touch { source, medium: "organic", referrer: Some(referrer), ..none }
        }
        "Paid Search" => {
            let source = one(r, &["google", "google", "bing"]);
            let (campaign, term) = if stage as usize >= 2 && r.chance(0.6) {
                ("brand_search", one(r, &["journeydb", "journeydb pricing", "journeydb demo"]))
            } else {
                one(
                    r,
                    &[
                        ("generic_analytics", "customer journey analytics"),
                        ("generic_analytics", "funnel analysis software"),
                        ("attribution_keywords", "marketing attribution tool"),
                        ("attribution_keywords", "multi touch attribution"),
                        ("competitor_search", "hubspot attribution alternative"),
                    ],
                )
            };
            Touch {
                source,
                medium: "cpc",
                campaign: Some(campaign),
                term: Some(term),
                content: Some(one(r, &["ad_variant_a", "ad_variant_b"])),
                referrer: Some("https://www.google.com/"),
                ..none
            }
        }
        "Paid Social" => {
            let source = one(r, &["linkedin", "linkedin", "facebook"]);
            let campaign = one(r, &["q1_launch", "ebook_attribution_guide", "retargeting_social", "webinar_promo"]);
            Touch {
                source,
                medium: "paid_social",
                campaign: Some(campaign),
                content: Some(one(r, &["carousel", "video", "single_image"])),
                ..none
            }
        }
        "Organic Social" => {
            let (source, referrer) = one(
                r,
                &[
                    ("linkedin", "https://www.linkedin.com/"),
                    ("twitter", "https://t.co/"),
                    ("reddit", "https://www.reddit.com/"),
                ],
            );
            Touch { source, medium: "social", referrer: Some(referrer), ..none }
        }
        "Email" => {
            let campaign = match stage {
                Stage::Awareness | Stage::Consideration => one(r, &["weekly_newsletter", "webinar_invite"]),
                Stage::Lead | Stage::Opportunity => {
                    one(r, &["nurture_sequence", "case_study_series", "webinar_invite"])
                }
                Stage::Customer => one(r, &["product_update", "weekly_newsletter", "upsell_offer"]),
            };
            let source = if campaign == "weekly_newsletter" { "newsletter" } else { "hubspot" };
            Touch {
                source,
                medium: "email",
                campaign: Some(campaign),
                content: Some(one(r, &["header_link", "cta_button", "footer_link"])),
                ..none
            }
        }
        "Display" => {
            let source = one(r, &["google_display", "doubleclick"]);
            Touch {
                source,
                medium: one(r, &["display", "cpm"]),
                campaign: Some(one(r, &["awareness_banners", "retargeting_display"])),
                content: Some(one(r, &["banner_300x250", "banner_728x90"])),
                ..none
            }
        }
        "Referral" => {
            let (source, referrer) = one(
                r,
                &[
                    ("g2.com", "https://www.g2.com/products/journeydb"),
                    ("capterra.com", "https://www.capterra.com/"),
                    ("partner-blog.com", "https://partner-blog.com/attribution-tools"),
                ],
            );
            Touch { source, medium: "referral", referrer: Some(referrer), ..none }
        }
        _ => DIRECT_TOUCH,
    }
}

fn landing_page(r: &mut Rng, ch: usize, stage: Stage) -> &'static str {
    match (CHANNELS[ch].name, stage) {
        ("Paid Search", _) => one(r, &["/lp/journey-analytics-trial", "/pricing", "/product/attribution"]),
        ("Paid Social", _) => one(r, &["/lp/attribution-ebook", "/webinar/journey-analytics-101"]),
        ("Email", Stage::Customer) => one(r, &["/blog/release-notes", "/product/paths"]),
        ("Email", _) => one(r, &["/webinar/journey-analytics-101", "/customers", "/pricing"]),
        ("Display", _) => one(r, &["/lp/attribution-ebook", "/"]),
        ("Direct", _) => one(r, &["/", "/pricing", "/login"]),
        (_, Stage::Awareness) => one(r, &["/blog/what-is-multi-touch-attribution", "/blog/funnel-analysis-guide", "/"]),
        _ => one(r, &PAGES),
    }
}

struct Builders {
    user_id: StringBuilder,
    anonymous_id: StringBuilder,
    event_time: TimestampMicrosecondBuilder,
    event_name: StringBuilder,
    channel: StringBuilder,
    source: StringBuilder,
    medium: StringBuilder,
    campaign: StringBuilder,
    term: StringBuilder,
    content: StringBuilder,
    page_url: StringBuilder,
    referrer: StringBuilder,
    revenue: Decimal128Builder,
}

impl Builders {
    fn new(rows: usize) -> Builders {
        let s = |bytes_per_row: usize| StringBuilder::with_capacity(rows, rows * bytes_per_row);
        Builders {
            user_id: s(11),
            anonymous_id: s(18),
            event_time: TimestampMicrosecondBuilder::with_capacity(rows),
            event_name: s(10),
            channel: s(8),
            source: s(6),
            medium: s(4),
            campaign: s(8),
            term: s(4),
            content: s(4),
            page_url: s(16),
            referrer: s(12),
            revenue: Decimal128Builder::with_capacity(rows),
        }
    }

    fn finish(mut self, schema: &SchemaRef) -> Result<RecordBatch> {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.user_id.finish()),
            Arc::new(self.anonymous_id.finish()),
            Arc::new(self.event_time.finish().with_timezone("UTC")),
            Arc::new(self.event_name.finish()),
            Arc::new(self.channel.finish()),
            Arc::new(self.source.finish()),
            Arc::new(self.medium.finish()),
            Arc::new(self.campaign.finish()),
            Arc::new(self.term.finish()),
            Arc::new(self.content.finish()),
            Arc::new(self.page_url.finish()),
            Arc::new(self.referrer.finish()),
            Arc::new(self.revenue.finish().with_precision_and_scale(12, 2)?),
        ];
        Ok(RecordBatch::try_new(schema.clone(), columns)?)
    }
}

/// xoshiro256** seeded through splitmix64: fast, and the same sequence on every platform.
struct Rng {
    s: [u64; 4],
}

impl Rng {
    fn new(seed: u64) -> Rng {
        let mut x = seed;
        let mut next = || {
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        Rng { s: [next(), next(), next(), next()] }
    }

    fn next_u64(&mut self) -> u64 {
        let result = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in [0, n); n > 0.
    fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }

    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// Exponential with the given mean.
    fn exp(&mut self, mean: f64) -> f64 {
        -mean * (1.0 - self.unit()).ln()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Array, AsArray};
    use datafusion::arrow::datatypes::TimestampMicrosecondType;
    use std::collections::{HashMap, HashSet};

    fn batch(seed: u64, rows: usize) -> RecordBatch {
        Generator::new(seed, 0).next_batch(&events_schema(), rows).expect("batch")
    }

    #[test]
    fn same_seed_same_data_other_seed_other_data() {
        assert_eq!(batch(7, 5_000), batch(7, 5_000));
        assert_ne!(batch(7, 5_000), batch(8, 5_000));
    }

    #[test]
    fn batches_continue_journeys_across_boundaries() {
        let schema = events_schema();
        let mut g = Generator::new(3, 0);
        let a = g.next_batch(&schema, 1_000).expect("a");
        let b = g.next_batch(&schema, 1_000).expect("b");
        let whole = batch(3, 2_000);
        let joined = datafusion::arrow::compute::concat_batches(&schema, [&a, &b]).expect("concat");
        assert_eq!(joined, whole);
    }

    #[test]
    fn journeys_are_realistic() {
        let b = batch(42, 200_000);
        let col = |name: &str| b.column_by_name(name).expect(name).as_string::<i32>().clone();
        let names = col("event_name");
        let channel = col("channel");
        let user = col("user_id");
        let anon = col("anonymous_id");
        let times = b.column_by_name("event_time").expect("t").as_primitive::<TimestampMicrosecondType>();
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for i in 0..b.num_rows() {
            *counts.entry(names.value(i)).or_default() += 1;
        }
        for name in [
            "page_view",
            "email_click",
            "email_open",
            "form_submit",
            "live_chat",
            "phone_call",
            "webinar_signup",
            "demo_request",
            "opportunity",
            "purchase",
            "content_download",
        ] {
            assert!(counts.get(name).copied().unwrap_or(0) > 10, "too few {name}: {counts:?}");
        }
        // Touches carry a channel; phone calls are Direct and have no cookie.
        let mut channels = HashSet::new();
        let mut ties = 0;
        let mut stitched_cookies = HashSet::new();
        let mut multi_cookie_users: HashMap<&str, HashSet<&str>> = HashMap::new();
        for i in 0..b.num_rows() {
            if !channel.is_null(i) {
                channels.insert(channel.value(i));
            }
            if names.value(i) == "phone_call" {
                assert_eq!(channel.value(i), "Direct");
                assert!(anon.is_null(i));
            }
            if i > 0 && times.value(i) == times.value(i - 1) {
                ties += 1;
            }
            if !user.is_null(i) && !anon.is_null(i) {
                stitched_cookies.insert(anon.value(i));
                multi_cookie_users.entry(user.value(i)).or_default().insert(anon.value(i));
            }
        }
        assert_eq!(channels.len(), 8, "{channels:?}");
        assert!(ties > 100, "tied timestamps: {ties}");
        assert!(multi_cookie_users.values().any(|c| c.len() > 1), "some people use several cookies");
        // Every identified cookie also has anonymous events before identification.
        let anonymous_only: HashSet<&str> =
            (0..b.num_rows()).filter(|&i| user.is_null(i) && !anon.is_null(i)).map(|i| anon.value(i)).collect();
        assert!(stitched_cookies.iter().filter(|c| anonymous_only.contains(*c)).count() > 10);
        // Revenue only on purchases.
        let revenue = b.column_by_name("revenue").expect("revenue");
        for i in 0..b.num_rows() {
            assert_eq!(revenue.is_valid(i), names.value(i) == "purchase", "row {i}");
        }
    }

    #[test]
    fn channels_differ_in_how_they_convert() {
        // Share of sessions followed (in the same journey) by a purchase differs across channels.
        let b = batch(42, 200_000);
        let channel = b.column_by_name("channel").expect("c").as_string::<i32>().clone();
        let names = b.column_by_name("event_name").expect("n").as_string::<i32>().clone();
        let revenue_rows = (0..b.num_rows()).filter(|&i| names.value(i) == "purchase").count();
        assert!(revenue_rows > 50);
        let mut last_touch: HashMap<&str, usize> = HashMap::new();
        let mut last = "";
        for i in 0..b.num_rows() {
            if !channel.is_null(i) {
                last = channel.value(i);
            }
            if names.value(i) == "purchase" {
                *last_touch.entry(last).or_default() += 1;
            }
        }
        let display = last_touch.get("Display").copied().unwrap_or(0);
        let direct = last_touch.get("Direct").copied().unwrap_or(0);
        assert!(direct > 3 * display.max(1), "{last_touch:?}");
    }

    #[test]
    fn writes_exact_event_count_atomically() {
        let dir = tempfile::tempdir().expect("tmp");
        let stats = generate_to_dir(
            dir.path(),
            &DemoOptions { events: 25_000, seed: 1, events_per_file: 10_000, ..Default::default() },
        )
        .expect("gen");
        assert_eq!(stats.files, 3);
        let mut total = 0;
        let mut names = vec![];
        for entry in std::fs::read_dir(dir.path().join("events")).expect("dir") {
            let path = entry.expect("entry").path();
            names.push(path.file_name().expect("name").to_string_lossy().to_string());
            let file = std::fs::File::open(&path).expect("open");
            let reader = datafusion::parquet::file::reader::SerializedFileReader::new(file).expect("parquet");
            use datafusion::parquet::file::reader::FileReader;
            total += reader.metadata().file_metadata().num_rows();
        }
        names.sort();
        assert_eq!(names, ["demo-00000.parquet", "demo-00001.parquet", "demo-00002.parquet"]);
        assert_eq!(total, 25_000);
    }
}
