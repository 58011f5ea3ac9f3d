//! The demo's journeys as GA4's BigQuery export (`journeydb demo --shape ga4`): one table per
//! UTC day, `events_YYYYMMDD`, with GA4's columns: `event_date`, `event_timestamp`
//! (microseconds since the epoch), `event_name`, `event_params` (the nested list of `key` and
//! `value` {`string_value`, `int_value`, `float_value`, `double_value`}: `ga_session_id` (the
//! session's start in seconds, sessions per cookie after 30 minutes without an event as GA4
//! makes them), `page_location` absolute on the demo's site, `page_referrer`, `term`, `content`, `engagement_time_msec`),
//! `user_id`, `user_pseudo_id` (the cookie), `collected_traffic_source` (`manual_source`,
//! `manual_medium`, `manual_campaign_name`, `manual_term`, `manual_content`: the touch's
//! campaign, NULL on other events) and `ecommerce` (`purchase_revenue` as a double).
//!
//! As in a live export, some days are still intraday tables: a day whose number (days since
//! the epoch) is 5 modulo 11 is only `events_intraday_YYYYMMDD`, and one that is 3 modulo 7
//! has both (the finished daily table and the stale intraday one, which must not count twice).

use super::shape::{Canonical, SITE};
use crate::error::Result;
use datafusion::arrow::array::{
    Array, ArrayRef, Float64Builder, Int64Builder, RecordBatch, StringBuilder, StructBuilder,
};
use datafusion::arrow::compute::take;
use datafusion::arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef};
use std::collections::BTreeMap;
use std::sync::Arc;

const DAY: i64 = 86_400_000_000;

fn traffic_fields() -> Fields {
    ["manual_source", "manual_medium", "manual_campaign_name", "manual_term", "manual_content"]
        .iter()
        .map(|n| Field::new(*n, DataType::Utf8, true))
        .collect()
}

fn ecommerce_fields() -> Fields {
    vec![
        Field::new("purchase_revenue", DataType::Float64, true),
        Field::new("total_item_quantity", DataType::Int64, true),
    ]
    .into()
}

/// The schema of a GA4 export's daily table.
pub fn ga4_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("event_date", DataType::Utf8, false),
        Field::new("event_timestamp", DataType::Int64, false),
        Field::new("event_name", DataType::Utf8, false),
        Field::new("event_params", journeydb_udfs::scalar::ga4_param::params_type(), true),
        Field::new("user_id", DataType::Utf8, true),
        Field::new("user_pseudo_id", DataType::Utf8, true),
        Field::new("collected_traffic_source", DataType::Struct(traffic_fields()), true),
        Field::new("ecommerce", DataType::Struct(ecommerce_fields()), true),
    ]))
}

/// The day (`YYYYMMDD`) of a time in microseconds since the epoch, UTC.
fn day_name(micros: i64) -> String {
    let date = chrono::DateTime::from_timestamp_micros(micros).map(|t| t.date_naive()).unwrap_or_default();
    date.format("%Y%m%d").to_string()
}

/// One chunk of canonical events as GA4's tables: (table name, its rows of the chunk), by day.
pub fn ga4(events: &RecordBatch, prefix: &str) -> Result<Vec<(String, RecordBatch)>> {
    let all = rows(events)?;
    let mut days: BTreeMap<i64, Vec<u32>> = BTreeMap::new();
    let time = Canonical::read(events)?.time;
    for i in 0..events.num_rows() {
        days.entry(time.value(i).div_euclid(DAY)).or_default().push(i as u32);
    }
    let mut tables = vec![];
    for (day, indices) in days {
        let indices = datafusion::arrow::array::UInt32Array::from(indices);
        let columns =
            all.columns().iter().map(|c| take(c, &indices, None)).collect::<std::result::Result<Vec<_>, _>>()?;
        let batch = RecordBatch::try_new(all.schema(), columns)?;
        let name = day_name(day * DAY);
        if day % 11 != 5 {
            tables.push((format!("{prefix}_{name}"), batch.clone()));
        }
        if day % 11 == 5 || day % 7 == 3 {
            tables.push((format!("{prefix}_intraday_{name}"), batch));
        }
    }
    Ok(tables)
}

/// Every row of the chunk in GA4's columns.
fn rows(events: &RecordBatch) -> Result<RecordBatch> {
    let e = Canonical::read(events)?;
    let text = Canonical::text;
    let n = events.num_rows();
    let mut date = StringBuilder::new();
    let mut timestamp = Int64Builder::with_capacity(n);
    let mut name = StringBuilder::new();
    let mut params = journeydb_udfs::scalar::ga4_param::ParamsBuilder::new();
    let (mut user, mut pseudo) = (StringBuilder::new(), StringBuilder::new());
    let mut traffic = StructBuilder::from_fields(traffic_fields(), n);
    let mut ecommerce = StructBuilder::from_fields(ecommerce_fields(), n);
    for (i, session) in e.session_starts().into_iter().enumerate() {
        let t = e.time.value(i);
        date.append_value(day_name(t));
        timestamp.append_value(t);
        name.append_value(e.name.value(i));
        let [source, medium, campaign, term, content] = &e.context;
        let page = text(&e.page, i).map(|p| format!("{SITE}{p}"));
        let touch = medium.is_valid(i);
        // A source without a touch (the CRM's rows) is an event parameter only.
        let entries: [(&str, Option<String>, Option<i64>); 7] = [
            ("ga_session_id", None, session.map(|start| start / 1_000_000)),
            ("source", text(source, i).filter(|_| !touch), None),
            ("page_location", page, None),
            ("page_referrer", text(&e.referrer, i), None),
            ("term", text(term, i), None),
            ("content", text(content, i), None),
            ("engagement_time_msec", None, Some(1_000 + (t / 1_000_000) % 5_000)),
        ];
        for (key, string, int) in entries {
            if string.is_none() && int.is_none() {
                continue;
            }
            params.param(key, string.as_deref(), int, None);
        }
        params.row(true);
        user.append_option(text(&e.user, i));
        pseudo.append_option(text(&e.anon, i));
        // The touch's campaign as GA4 collects it; other events have none.
        for (k, column) in [source, medium, campaign, term, content].into_iter().enumerate() {
            text_at(&mut traffic, k, text(column, i).filter(|_| touch).as_deref())?;
        }
        traffic.append(touch);
        let revenue = e.dollars(i);
        ecommerce.field_builder::<Float64Builder>(0).ok_or_else(|| internal("revenue"))?.append_option(revenue);
        ecommerce
            .field_builder::<Int64Builder>(1)
            .ok_or_else(|| internal("quantity"))?
            .append_option(revenue.map(|_| 1));
        ecommerce.append(revenue.is_some());
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(date.finish()),
        Arc::new(timestamp.finish()),
        Arc::new(name.finish()),
        params.finish()?,
        Arc::new(user.finish()),
        Arc::new(pseudo.finish()),
        Arc::new(traffic.finish()),
        Arc::new(ecommerce.finish()),
    ];
    Ok(RecordBatch::try_new(ga4_schema(), columns)?)
}

/// Appends `v` to text field `k` of `b`.
fn text_at(b: &mut StructBuilder, k: usize, v: Option<&str>) -> Result<()> {
    b.field_builder::<StringBuilder>(k).ok_or_else(|| internal("text"))?.append_option(v);
    Ok(())
}

fn internal(what: &str) -> crate::error::Error {
    crate::error::Error::Config(format!("GA4 demo: no {what} builder"))
}
