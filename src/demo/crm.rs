//! The demo's CRM and accounts, drawn from the journeys themselves so that the closed loop
//! joins back: `deals` (HubSpot's deal stage history: `deal_id`, `person_id`, `stage`, `amount`,
//! `changed_at`) and the accounts people belong to (`accounts`: `person_id`, `account_id`; in
//! Segment's shape its `groups` calls: `group_id`, `user_id`, `anonymous_id`, `timestamp`).
//!
//! Each CRM `opportunity` event of a known person opens a deal: `appointmentscheduled` an hour
//! before it, `qualifiedtobuy` at it, `presentationscheduled` a day later unless the deal is
//! won first. The person's next purchase wins it (`closedwon` at the purchase, the purchase's
//! revenue its amount); a deal still open at the end of the journey is `closedlost` 30 days
//! after it opened. So with `[journey.crm]`, the won deals are the purchases that followed an
//! opportunity. People are grouped into accounts by their number (four consecutive people
//! share one; those whose id ends in 7 buy for themselves and have none).

use crate::error::Result;
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Decimal128Builder, RecordBatch, StringBuilder, TimestampMicrosecondBuilder,
};
use datafusion::arrow::datatypes::{
    DataType, Decimal128Type, Field, Schema, SchemaRef, TimeUnit, TimestampMicrosecondType,
};
use std::collections::BTreeMap;
use std::sync::Arc;

const HOUR: i64 = 3_600_000_000;
const DAY: i64 = 24 * HOUR;

fn time_field(name: &str) -> Field {
    Field::new(name, DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), false)
}

/// The schema of the demo `deals` table.
pub fn deals_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("deal_id", DataType::Utf8, false),
        Field::new("person_id", DataType::Utf8, false),
        Field::new("stage", DataType::Utf8, false),
        Field::new("amount", DataType::Decimal128(12, 2), true),
        time_field("changed_at"),
    ]))
}

/// The schema of the demo `accounts` table.
pub fn accounts_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("person_id", DataType::Utf8, false),
        Field::new("account_id", DataType::Utf8, false),
    ]))
}

/// The schema of Segment's `groups` table.
pub fn groups_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("group_id", DataType::Utf8, false),
        Field::new("user_id", DataType::Utf8, true),
        Field::new("anonymous_id", DataType::Utf8, true),
        time_field("timestamp"),
    ]))
}

/// What one chunk's canonical events tell the CRM: each known person's first event time and
/// their opportunities and purchases, in time order.
#[derive(Debug, Default)]
pub struct Crm {
    people: BTreeMap<String, Person>,
}

#[derive(Debug, Default)]
struct Person {
    first: i64,
    /// (time, is an opportunity (else a purchase), revenue in cents)
    moments: Vec<(i64, bool, Option<i128>)>,
}

impl Crm {
    /// Takes in a batch of canonical events (`super::events_schema`).
    pub fn record(&mut self, events: &RecordBatch) -> Result<()> {
        let column = |name: &str| {
            events
                .column_by_name(name)
                .ok_or_else(|| crate::error::Error::Config(format!("the demo's events lack column {name}")))
        };
        let user = column("user_id")?.as_string::<i32>();
        let name = column("event_name")?.as_string::<i32>();
        let time = column("event_time")?.as_primitive::<TimestampMicrosecondType>();
        let revenue = column("revenue")?.as_primitive::<Decimal128Type>();
        for i in 0..events.num_rows() {
            if user.is_null(i) {
                continue;
            }
            let t = time.value(i);
            let person = self.people.entry(user.value(i).to_string()).or_insert(Person { first: t, moments: vec![] });
            person.first = person.first.min(t);
            match name.value(i) {
                "opportunity" => person.moments.push((t, true, None)),
                "purchase" => person.moments.push((t, false, revenue.is_valid(i).then(|| revenue.value(i)))),
                _ => {}
            }
        }
        Ok(())
    }

    /// The deals' stage changes, by person and time.
    pub fn deals(&self) -> Result<RecordBatch> {
        let (mut deal, mut person, mut stage) = (StringBuilder::new(), StringBuilder::new(), StringBuilder::new());
        let mut amount = Decimal128Builder::new();
        let mut at = TimestampMicrosecondBuilder::new();
        for (user, p) in &self.people {
            let mut moments = p.moments.clone();
            moments.sort_unstable();
            // (deal number, stage, amount, time)
            let mut changes: Vec<(usize, &str, Option<i128>, i64)> = vec![];
            let mut open: Option<(usize, i64)> = None;
            let mut opened = 0;
            for (t, is_opportunity, cents) in moments {
                if is_opportunity {
                    if let Some((id, since)) = open.take() {
                        changes.push((id, "presentationscheduled", None, since + DAY));
                        changes.push((id, "closedlost", None, since + 30 * DAY));
                    }
                    opened += 1;
                    changes.push((opened, "appointmentscheduled", None, t - HOUR));
                    changes.push((opened, "qualifiedtobuy", None, t));
                    open = Some((opened, t));
                } else if let Some((id, since)) = open.take() {
                    if t > since + DAY {
                        changes.push((id, "presentationscheduled", None, since + DAY));
                    }
                    changes.push((id, "closedwon", cents, t));
                }
            }
            if let Some((id, since)) = open {
                changes.push((id, "presentationscheduled", None, since + DAY));
                changes.push((id, "closedlost", None, since + 30 * DAY));
            }
            for (id, name, cents, t) in changes {
                deal.append_value(format!("D-{user}-{id}"));
                person.append_value(user);
                stage.append_value(name);
                amount.append_option(cents);
                at.append_value(t);
            }
        }
        let columns: Vec<ArrayRef> = vec![
            Arc::new(deal.finish()),
            Arc::new(person.finish()),
            Arc::new(stage.finish()),
            Arc::new(amount.finish().with_precision_and_scale(12, 2)?),
            Arc::new(at.finish().with_timezone("UTC")),
        ];
        Ok(RecordBatch::try_new(deals_schema(), columns)?)
    }

    /// Each known person's account, if any: (user id, account id, first seen).
    fn memberships(&self) -> impl Iterator<Item = (&str, String, i64)> {
        self.people.iter().filter_map(|(user, p)| {
            let number: u64 = user.get(1..)?.parse().ok()?;
            (number % 10 != 7).then(|| (user.as_str(), format!("acct-{:09}", number / 4), p.first))
        })
    }

    /// The `accounts` table: each person's account.
    pub fn accounts(&self) -> Result<RecordBatch> {
        let (mut person, mut account) = (StringBuilder::new(), StringBuilder::new());
        for (user, a, _) in self.memberships() {
            person.append_value(user);
            account.append_value(a);
        }
        let columns: Vec<ArrayRef> = vec![Arc::new(person.finish()), Arc::new(account.finish())];
        Ok(RecordBatch::try_new(accounts_schema(), columns)?)
    }

    /// Segment's `groups` table: a group call per person, at their first event.
    pub fn groups(&self) -> Result<RecordBatch> {
        let (mut group, mut user, mut anon) = (StringBuilder::new(), StringBuilder::new(), StringBuilder::new());
        let mut at = TimestampMicrosecondBuilder::new();
        for (u, a, first) in self.memberships() {
            group.append_value(a);
            user.append_value(u);
            anon.append_null();
            at.append_value(first);
        }
        let columns: Vec<ArrayRef> = vec![
            Arc::new(group.finish()),
            Arc::new(user.finish()),
            Arc::new(anon.finish()),
            Arc::new(at.finish().with_timezone("UTC")),
        ];
        Ok(RecordBatch::try_new(groups_schema(), columns)?)
    }
}
