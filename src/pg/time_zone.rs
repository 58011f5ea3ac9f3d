//! The session's `TimeZone`, as PostgreSQL applies it to `timestamp with time zone` values:
//! they are shown with the zone's offset (`2024-07-01 14:00:00+02`), and `date_trunc`,
//! `extract`, `to_char` and `age` read their wall clock in that zone.
//!
//! A timestamptz column is an instant (microseconds since the epoch, UTC) with a zone attached
//! as metadata. Before a statement is planned, DataFusion's own time zone option is set to the
//! session's (literals such as `timestamptz '2024-07-01 12:00'` and `now()` take it); after,
//! [`in_session_zone`] re-labels the timestamptz columns every table, view and journey report
//! delivers with the session's zone (the same instants; DataFusion's `date_trunc` and
//! `date_part` then work in that zone), and the result's columns too. In a UTC session (the
//! default) nothing changes.

use datafusion::arrow::datatypes::DataType;
use datafusion::common::tree_node::{Transformed, TreeNodeRecursion};
use datafusion::common::{Column, DFSchema};
use datafusion::error::Result;
use datafusion::logical_expr::{Expr, LogicalPlan, Projection, ScalarUDF, Union, cast};
use std::sync::Arc;

/// The zone a `TimeZone` value names: an IANA name in any letter case, or `UTC`/`Z`/`GMT`.
pub fn parse(name: &str) -> Option<chrono_tz::Tz> {
    journeydb_udfs::common::periods::parse_zone(name)
}

/// Whether two zone labels of Arrow timestamps mean the same zone.
pub fn same(a: &str, b: &str) -> bool {
    a == b || (is_utc(a) && is_utc(b))
}

fn is_utc(tz: &str) -> bool {
    matches!(tz, "UTC" | "+00:00" | "+00" | "Z" | "Etc/UTC" | "+0000" | "GMT")
}

fn differs(dt: &DataType, zone: &str) -> bool {
    matches!(dt, DataType::Timestamp(_, Some(tz)) if !same(tz, zone))
}

fn needs_zone(schema: &DFSchema, zone: &str) -> bool {
    schema.fields().iter().any(|f| differs(f.data_type(), zone))
}

/// `plan` with the timestamptz columns of its scans (and, when `result`, of its result) in
/// `zone` (an Arrow zone label, such as `Europe/Paris`), and its casts of timestamptz to
/// timestamp giving the zone's wall clock (through `timezone`, PostgreSQL's `AT TIME ZONE`;
/// Arrow's cast would give UTC's).
pub fn in_session_zone(
    plan: LogicalPlan,
    zone: &str,
    result: bool,
    timezone: Option<Arc<ScalarUDF>>,
) -> Result<LogicalPlan> {
    let mut scans_differ = false;
    plan.apply_with_subqueries(|node| {
        if let LogicalPlan::TableScan(scan) = node {
            scans_differ |= needs_zone(&scan.projected_schema, zone);
        }
        Ok(if scans_differ { TreeNodeRecursion::Stop } else { TreeNodeRecursion::Continue })
    })?;
    let wall_clock = timezone.filter(|_| !is_utc(zone));
    let plan = if scans_differ || wall_clock.is_some() {
        plan.transform_up_with_subqueries(|node| {
            let node = match node {
                LogicalPlan::TableScan(ref scan) if needs_zone(&scan.projected_schema, zone) => {
                    return Ok(Transformed::yes(zoned(node, zone)?));
                }
                // A union keeps the schema it was built with unless rebuilt; its inputs' types
                // are reconciled by DataFusion's type coercion afterwards.
                LogicalPlan::Union(union) => LogicalPlan::Union(Union::try_new_with_loose_types(union.inputs)?),
                // Every other node's types follow its inputs'.
                other => other.recompute_schema()?,
            };
            match &wall_clock {
                Some(udf) => {
                    let node =
                        super::plan_exprs::map_typed_expressions(node, |e, schema| local_cast(e, schema, zone, udf))?;
                    Ok(Transformed::yes(node.data))
                }
                None => Ok(Transformed::yes(node)),
            }
        })?
        .data
    } else {
        plan
    };
    if result && needs_zone(plan.schema(), zone) { zoned(plan, zone) } else { Ok(plan) }
}

/// `CAST(instant AS timestamp)` as `CAST(timezone(zone, instant) AS timestamp)`.
fn local_cast(e: Expr, schema: &DFSchema, zone: &str, udf: &Arc<ScalarUDF>) -> Result<Transformed<Expr>> {
    use datafusion::logical_expr::{ExprSchemable, expr::ScalarFunction};
    match e {
        Expr::Cast(c)
            if matches!(c.field.data_type(), DataType::Timestamp(_, None))
                && matches!(c.expr.get_type(schema), Ok(DataType::Timestamp(_, Some(_)))) =>
        {
            let local = Expr::ScalarFunction(ScalarFunction::new_udf(
                udf.clone(),
                vec![datafusion::logical_expr::lit(zone), *c.expr],
            ));
            Ok(Transformed::yes(cast(local, c.field.data_type().clone())))
        }
        other => Ok(Transformed::no(other)),
    }
}

/// `plan`'s columns, its timestamptz ones re-labelled with `zone` under the same names.
fn zoned(plan: LogicalPlan, zone: &str) -> Result<LogicalPlan> {
    let exprs: Vec<Expr> = plan
        .schema()
        .iter()
        .map(|(qualifier, field)| {
            let column = Expr::Column(Column::new(qualifier.cloned(), field.name()));
            match field.data_type() {
                DataType::Timestamp(unit, Some(tz)) if !same(tz, zone) => {
                    cast(column, DataType::Timestamp(*unit, Some(zone.into())))
                        .alias_qualified(qualifier.cloned(), field.name())
                }
                _ => column,
            }
        })
        .collect();
    Ok(LogicalPlan::Projection(Projection::try_new(exprs, Arc::new(plan))?))
}

/// A zone's offset from UTC, in seconds, at the instant `utc` (an Arrow zone label: an IANA
/// name or `±HH:MM`); None for a label neither.
pub fn offset_at(zone: &str, utc: chrono::NaiveDateTime) -> Option<i32> {
    use chrono::{Offset, TimeZone};
    if is_utc(zone) {
        return Some(0);
    }
    // A fixed offset is read before any name lookup: this runs for every value shown.
    let (sign, rest) = match zone.as_bytes().first() {
        Some(b'+') => (1, &zone[1..]),
        Some(b'-') => (-1, &zone[1..]),
        _ => return parse(zone).map(|tz| tz.offset_from_utc_datetime(&utc).fix().local_minus_utc()),
    };
    let digits: String = rest.chars().filter(|c| c.is_ascii_digit()).collect();
    let (h, m) = match digits.len() {
        2 => (digits.parse::<i32>().ok()?, 0),
        4 => (digits[..2].parse::<i32>().ok()?, digits[2..].parse::<i32>().ok()?),
        _ => return None,
    };
    Some(sign * (h * 3600 + m * 60))
}

/// PostgreSQL's spelling of an offset: `+02`, `-03:30`, `+00:09:21`.
pub fn offset_text(seconds: i32, out: &mut String) {
    use std::fmt::Write;
    let sign = if seconds < 0 { '-' } else { '+' };
    let s = seconds.unsigned_abs();
    let _ = write!(out, "{sign}{:02}", s / 3600);
    if !s.is_multiple_of(3600) {
        let _ = write!(out, ":{:02}", s / 60 % 60);
        if !s.is_multiple_of(60) {
            let _ = write!(out, ":{:02}", s % 60);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_offsets_and_their_spelling() {
        assert_eq!(parse("europe/paris").map(|t| t.name()), Some("Europe/Paris"));
        assert_eq!(parse("UTC"), Some(chrono_tz::UTC));
        assert_eq!(parse("Mars/Olympus_Mons"), None);
        let summer = chrono::NaiveDate::from_ymd_opt(2024, 7, 1).and_then(|d| d.and_hms_opt(12, 0, 0)).expect("date");
        assert_eq!(offset_at("Europe/Paris", summer), Some(7200));
        assert_eq!(offset_at("Asia/Kathmandu", summer), Some(20_700));
        assert_eq!(offset_at("-03:30", summer), Some(-12_600));
        assert_eq!(offset_at("UTC", summer), Some(0));
        let text = |s| {
            let mut out = String::new();
            offset_text(s, &mut out);
            out
        };
        assert_eq!([text(7200), text(-12_600), text(0), text(561)], ["+02", "-03:30", "+00", "+00:09:21"]);
        assert!(same("UTC", "+00:00") && !same("UTC", "Europe/Paris"));
    }
}
