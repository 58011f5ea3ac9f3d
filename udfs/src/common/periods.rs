//! Calendar periods (days, weeks from Monday, months) of instants, read on the wall clock of a
//! time zone: what the cohort reports (`retention`, `lifecycle`, `stickiness`) count in.
//!
//! An instant is microseconds since the epoch (UTC). Its period is numbered by an ordinal, so
//! that consecutive periods have consecutive ordinals whatever daylight saving does: days since
//! 0001-01-01 (a Monday), weeks since then, months since year 0. A period starts at local
//! midnight of its first day (in the rare zones where that midnight does not exist, at the
//! first local time that does).
//!
//! Rolling periods count from an instant instead: whole 24-hour days or 7-day weeks after it,
//! or whole months by the local calendar (from 31 January, a month later is 28 or 29 February).

use crate::error::ArgumentError;
use chrono::{DateTime, Datelike, Months, NaiveDate, NaiveDateTime, Offset, TimeZone};
use chrono_tz::Tz;
use datafusion::error::Result;

/// How long a period is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interval {
    Day,
    Week,
    Month,
}

impl Interval {
    /// `'day'`, `'week'` or `'month'` (any letter case), as option `argument` of `function`.
    pub fn parse(function: &str, argument: &str, text: &str) -> Result<Interval> {
        match text.trim().to_ascii_lowercase().as_str() {
            "day" => Ok(Interval::Day),
            "week" => Ok(Interval::Week),
            "month" => Ok(Interval::Month),
            other => {
                Err(ArgumentError::new(function, argument, format!("must be 'day', 'week' or 'month', got '{other}'"))
                    .into_datafusion())
            }
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Interval::Day => "day",
            Interval::Week => "week",
            Interval::Month => "month",
        }
    }
}

/// The zone a `TimeZone` value names, as PostgreSQL reads it: an IANA name in any letter case,
/// or `UTC`/`Z`/`GMT` and their aliases. The server's `SET TimeZone` reads names with it too.
pub fn parse_zone(name: &str) -> Option<Tz> {
    let name = name.trim();
    if ["utc", "z", "gmt", "etc/utc", "zulu", "universal"].iter().any(|u| name.eq_ignore_ascii_case(u)) {
        return Some(Tz::UTC);
    }
    name.parse::<Tz>()
        .ok()
        .or_else(|| chrono_tz::TZ_VARIANTS.iter().copied().find(|tz| tz.name().eq_ignore_ascii_case(name)))
}

/// A time zone, from a session's `TimeZone` or an option ([`parse_zone`]); `None` (no zone
/// set) and DataFusion's `+00:00` are UTC.
pub fn zone(function: &str, name: Option<&str>) -> Result<Tz> {
    let Some(name) = name.map(str::trim).filter(|n| !n.is_empty()) else { return Ok(Tz::UTC) };
    if name == "+00:00" || name == "+00" {
        return Ok(Tz::UTC);
    }
    parse_zone(name).ok_or_else(|| {
        ArgumentError::new(function, "time_zone", format!("'{name}' is not a time zone name")).into_datafusion()
    })
}

/// Periods of one length in one zone.
#[derive(Debug, Clone, Copy)]
pub struct Periods {
    pub interval: Interval,
    pub zone: Tz,
}

const DAY_MICROS: i64 = 86_400_000_000;

impl Periods {
    fn local(&self, micros: i64) -> NaiveDateTime {
        let utc = DateTime::from_timestamp_micros(micros).unwrap_or_default();
        utc.with_timezone(&self.zone).naive_local()
    }

    /// The ordinal of the period holding `micros`.
    pub fn ordinal(&self, micros: i64) -> i64 {
        let date = self.local(micros).date();
        let days = i64::from(date.num_days_from_ce());
        match self.interval {
            Interval::Day => days,
            // Day 1 is a Monday.
            Interval::Week => (days - 1).div_euclid(7),
            Interval::Month => i64::from(date.year()) * 12 + i64::from(date.month0()),
        }
    }

    /// The first day of period `ordinal`.
    fn first_day(&self, ordinal: i64) -> Option<NaiveDate> {
        match self.interval {
            Interval::Day => NaiveDate::from_num_days_from_ce_opt(i32::try_from(ordinal).ok()?),
            Interval::Week => NaiveDate::from_num_days_from_ce_opt(i32::try_from(ordinal.checked_mul(7)? + 1).ok()?),
            Interval::Month => NaiveDate::from_ymd_opt(
                i32::try_from(ordinal.div_euclid(12)).ok()?,
                ordinal.rem_euclid(12) as u32 + 1,
                1,
            ),
        }
    }

    /// The instant period `ordinal` starts: local midnight of its first day.
    pub fn start(&self, ordinal: i64) -> i64 {
        let Some(day) = self.first_day(ordinal) else { return 0 };
        let midnight = day.and_hms_opt(0, 0, 0).unwrap_or_default();
        // Midnight skipped by a clock change: the first local minute after it that exists.
        (0..=24 * 60)
            .find_map(|minute| {
                let local = midnight + chrono::Duration::minutes(minute);
                self.zone.from_local_datetime(&local).earliest()
            })
            .map_or(0, |t| t.timestamp_micros())
    }

    /// Whole rolling periods from `from` to `to` (`to >= from`): 24-hour days, 7-day weeks, or
    /// local calendar months.
    pub fn rolling(&self, from: i64, to: i64) -> i64 {
        match self.interval {
            Interval::Day => (to - from).div_euclid(DAY_MICROS),
            Interval::Week => (to - from).div_euclid(7 * DAY_MICROS),
            Interval::Month => {
                let (a, b) = (self.local(from), self.local(to));
                let mut months = (i64::from(b.year()) * 12 + i64::from(b.month0()))
                    - (i64::from(a.year()) * 12 + i64::from(a.month0()));
                let after = |m: i64| u32::try_from(m).ok().and_then(|m| a.checked_add_months(Months::new(m)));
                while months > 0 && after(months).is_none_or(|t| t > b) {
                    months -= 1;
                }
                months
            }
        }
    }
}

/// Days from 0001-01-01 (day 1 in chrono's count) to 1970-01-01.
const EPOCH_DAYS_FROM_CE: i64 = 719_163;

/// [`Periods::ordinal`] for many instants, fast: the zone's offset is looked up once per UTC day
/// (in a small direct-mapped cache) and kept for the day when it is the same at both ends of
/// it; a day with a clock change takes the exact path.
#[derive(Debug, Clone)]
pub struct Clock {
    pub periods: Periods,
    /// Per slot: (UTC day, the offset in microseconds valid all day, if one is).
    cache: Vec<(i64, Option<i64>)>,
}

const SLOTS: usize = 1024;

impl Clock {
    pub fn new(periods: Periods) -> Clock {
        Clock { periods, cache: vec![(i64::MIN, None); SLOTS] }
    }

    fn offset_at(&self, micros: i64) -> i64 {
        let utc = DateTime::from_timestamp_micros(micros).unwrap_or_default().naive_utc();
        i64::from(self.periods.zone.offset_from_utc_datetime(&utc).fix().local_minus_utc()) * 1_000_000
    }

    /// The ordinal of the period holding `micros`: the same as [`Periods::ordinal`].
    pub fn ordinal(&mut self, micros: i64) -> i64 {
        let day = micros.div_euclid(DAY_MICROS);
        let slot = day.rem_euclid(SLOTS as i64) as usize;
        if self.cache[slot].0 != day {
            let (a, b) = (self.offset_at(day * DAY_MICROS), self.offset_at((day + 1) * DAY_MICROS - 1));
            self.cache[slot] = (day, (a == b).then_some(a));
        }
        let Some(offset) = self.cache[slot].1 else { return self.periods.ordinal(micros) };
        let days = (micros + offset).div_euclid(DAY_MICROS) + EPOCH_DAYS_FROM_CE;
        match self.periods.interval {
            Interval::Day => days,
            Interval::Week => (days - 1).div_euclid(7),
            Interval::Month => match i32::try_from(days).ok().and_then(NaiveDate::from_num_days_from_ce_opt) {
                Some(date) => i64::from(date.year()) * 12 + i64::from(date.month0()),
                None => self.periods.ordinal(micros),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn micros(zone: Tz, y: i32, m: u32, d: u32, h: u32) -> i64 {
        zone.with_ymd_and_hms(y, m, d, h, 0, 0).earliest().expect("valid").timestamp_micros()
    }

    #[test]
    fn calendar_periods_follow_the_zone() {
        let utc = Periods { interval: Interval::Day, zone: Tz::UTC };
        let ny = Periods { interval: Interval::Day, zone: chrono_tz::America::New_York };
        // 2025-01-02 03:00 UTC is still 1 January in New York.
        let t = micros(Tz::UTC, 2025, 1, 2, 3);
        assert_eq!(utc.ordinal(t), ny.ordinal(t) + 1);
        assert_eq!(ny.start(ny.ordinal(t)), micros(chrono_tz::America::New_York, 2025, 1, 1, 0));
        // Consecutive days across a clock change have consecutive ordinals; the short day starts
        // at local midnight.
        let before = micros(chrono_tz::America::New_York, 2025, 3, 8, 12);
        let after = micros(chrono_tz::America::New_York, 2025, 3, 9, 12);
        assert_eq!(ny.ordinal(after), ny.ordinal(before) + 1);
        assert_eq!(ny.start(ny.ordinal(after)), micros(chrono_tz::America::New_York, 2025, 3, 9, 0));
    }

    #[test]
    fn weeks_start_on_monday_and_months_on_the_first() {
        let week = Periods { interval: Interval::Week, zone: Tz::UTC };
        // 2025-01-06 is a Monday; the Sunday before is in the previous week.
        let monday = micros(Tz::UTC, 2025, 1, 6, 0);
        assert_eq!(week.start(week.ordinal(micros(Tz::UTC, 2025, 1, 12, 23))), monday);
        assert_eq!(week.ordinal(micros(Tz::UTC, 2025, 1, 5, 23)) + 1, week.ordinal(monday));
        let month = Periods { interval: Interval::Month, zone: Tz::UTC };
        assert_eq!(month.start(month.ordinal(micros(Tz::UTC, 2024, 2, 29, 5))), micros(Tz::UTC, 2024, 2, 1, 0));
        assert_eq!(month.ordinal(micros(Tz::UTC, 2025, 1, 1, 0)), month.ordinal(micros(Tz::UTC, 2024, 12, 31, 0)) + 1);
    }

    #[test]
    fn rolling_periods() {
        let day = Periods { interval: Interval::Day, zone: Tz::UTC };
        let t0 = micros(Tz::UTC, 2025, 1, 1, 20);
        assert_eq!(day.rolling(t0, micros(Tz::UTC, 2025, 1, 2, 19)), 0);
        assert_eq!(day.rolling(t0, micros(Tz::UTC, 2025, 1, 2, 20)), 1);
        let month = Periods { interval: Interval::Month, zone: Tz::UTC };
        let jan31 = micros(Tz::UTC, 2025, 1, 31, 12);
        assert_eq!(month.rolling(jan31, micros(Tz::UTC, 2025, 2, 28, 11)), 0);
        assert_eq!(month.rolling(jan31, micros(Tz::UTC, 2025, 3, 31, 12)), 2);
        assert_eq!(month.rolling(jan31, micros(Tz::UTC, 2025, 3, 30, 12)), 1);
    }

    /// The cached clock gives every instant the period the exact path gives, across clock
    /// changes, in zones east and west, before 1970 too.
    #[test]
    fn the_clock_agrees_with_the_exact_ordinal() {
        let mut rng = crate::common::test_rng::TestRng(0x1234_5678_9abc_def1);
        for zone in [Tz::UTC, chrono_tz::America::New_York, chrono_tz::Australia::Lord_Howe, chrono_tz::Asia::Kolkata] {
            for interval in [Interval::Day, Interval::Week, Interval::Month] {
                let periods = Periods { interval, zone };
                let mut clock = Clock::new(periods);
                for _ in 0..20_000 {
                    // 1960 to 2040, to the microsecond, clustered near clock changes too.
                    let micros = -315_619_200_000_000
                        + (rng.next(2_524_608_000) as i64) * 1_000_000
                        + rng.next(1_000_000) as i64;
                    assert_eq!(clock.ordinal(micros), periods.ordinal(micros), "{zone} {interval:?} {micros}");
                }
                for day in [micros(zone, 2025, 3, 9, 0), micros(zone, 2025, 11, 2, 0), micros(zone, 2025, 4, 6, 0)] {
                    for m in (0..48 * 60).map(|k| day - 86_400_000_000 + k * 60_000_000) {
                        assert_eq!(clock.ordinal(m), periods.ordinal(m), "{zone} {interval:?} {m}");
                    }
                }
            }
        }
    }

    #[test]
    fn zones_by_name() {
        assert_eq!(zone("f", None).expect("utc"), Tz::UTC);
        assert_eq!(zone("f", Some("europe/paris")).expect("paris"), chrono_tz::Europe::Paris);
        assert!(zone("f", Some("Mars/Olympus")).expect_err("bad").to_string().contains("not a time zone name"));
    }
}
