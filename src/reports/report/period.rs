//! The reporting period: `--from` / `--to` as calendar days (local time) or
//! RFC 3339 instants, turned into the half-open `[from_ns, to_ns)` range the
//! store queries take.

use chrono::{DateTime, FixedOffset, Local, NaiveDate, NaiveTime, TimeZone};

/// A `--from` / `--to` value as given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DateArg {
    /// `YYYY-MM-DD`: a whole local day.
    Day(NaiveDate),
    /// RFC 3339: an exact instant.
    Instant(DateTime<FixedOffset>),
}

impl DateArg {
    /// Parser for clap, so a bad value is reported with the argument's name.
    pub fn parse(s: &str) -> Result<DateArg, String> {
        let s = s.trim();
        if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
            return Ok(DateArg::Day(d));
        }
        DateTime::parse_from_rfc3339(s)
            .map(DateArg::Instant)
            .map_err(|_| {
                format!(
                    "{s:?} is not a date; use YYYY-MM-DD (e.g. 2026-10-01) \
                     or RFC 3339 (e.g. 2026-10-01T08:00:00+07:00)"
                )
            })
    }
}

/// A checked reporting period.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Period {
    /// First nanosecond in the period.
    pub from_ns: i64,
    /// First nanosecond after the period.
    pub to_ns: i64,
    /// Local calendar day of the first instant.
    pub from_day: NaiveDate,
    /// Local calendar day of the last instant.
    pub to_day: NaiveDate,
}

impl Period {
    /// `--to` is inclusive: a day runs to the next local midnight, an
    /// instant includes itself. Errors name the argument at fault.
    pub fn new(from: DateArg, to: DateArg) -> Result<Period, String> {
        let from_ns = match from {
            DateArg::Day(d) => local_midnight(d, "--from")?,
            DateArg::Instant(t) => nanos(t, "--from")?,
        };
        let last_ns = match to {
            DateArg::Day(d) => {
                let next = d
                    .succ_opt()
                    .ok_or_else(|| format!("--to {d}: outside the supported dates"))?;
                local_midnight(next, "--to")? - 1
            }
            DateArg::Instant(t) => nanos(t, "--to")?,
        };
        if from_ns > last_ns {
            return Err(format!(
                "--from ({}) is after --to ({}); swap them",
                show(from),
                show(to)
            ));
        }
        Ok(Period {
            from_ns,
            to_ns: last_ns + 1,
            from_day: local_day(from_ns),
            to_day: local_day(last_ns),
        })
    }

    /// "dd/mm/yyyy" of the first day.
    pub fn from_label(&self) -> String {
        day_label(self.from_day)
    }

    /// "dd/mm/yyyy" of the last day.
    pub fn to_label(&self) -> String {
        day_label(self.to_day)
    }
}

/// Vietnamese date order, as the form prints it.
pub fn day_label(d: NaiveDate) -> String {
    d.format("%d/%m/%Y").to_string()
}

/// The generation time line: local time with its offset.
pub fn now_label() -> String {
    Local::now()
        .format("%d/%m/%Y %H:%M:%S (UTC%:z)")
        .to_string()
}

fn show(a: DateArg) -> String {
    match a {
        DateArg::Day(d) => d.to_string(),
        DateArg::Instant(t) => t.to_rfc3339(),
    }
}

/// The first instant of a local day. Where a time-zone change skips
/// midnight, the day starts at the first local time that exists.
fn local_midnight(d: NaiveDate, arg: &str) -> Result<i64, String> {
    let start = (0..=3)
        .filter_map(|h| NaiveTime::from_hms_opt(h, 0, 0))
        .find_map(|t| Local.from_local_datetime(&d.and_time(t)).earliest())
        .ok_or_else(|| format!("{arg} {d}: no local midnight on that day"))?;
    nanos(start.fixed_offset(), arg)
}

fn nanos(t: DateTime<FixedOffset>, arg: &str) -> Result<i64, String> {
    t.timestamp_nanos_opt().ok_or_else(|| {
        format!(
            "{arg} {}: outside the supported dates (1678-2261)",
            t.to_rfc3339()
        )
    })
}

fn local_day(ns: i64) -> NaiveDate {
    Local.timestamp_nanos(ns).date_naive()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_and_instants_parse_and_bad_values_are_refused() {
        let d = NaiveDate::from_ymd_opt(2026, 10, 1).unwrap();
        assert_eq!(DateArg::parse("2026-10-01"), Ok(DateArg::Day(d)));
        assert!(matches!(
            DateArg::parse("2026-10-01T08:00:00+07:00"),
            Ok(DateArg::Instant(_))
        ));
        for bad in ["2026-13-01", "01/10/2026", "", "2026-02-30", "yesterday"] {
            assert!(DateArg::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn instants_include_the_end_and_order_is_checked() {
        let a = DateArg::parse("2022-10-01T00:00:00Z").unwrap();
        let b = DateArg::parse("2022-10-01T00:00:01Z").unwrap();
        let p = Period::new(a, b).unwrap();
        assert_eq!(p.to_ns - p.from_ns, 1_000_000_001);
        assert_eq!(Period::new(a, a).unwrap().to_ns - p.from_ns, 1);
        let e = Period::new(b, a).unwrap_err();
        assert!(e.contains("--from") && e.contains("--to"), "{e}");
    }

    #[test]
    fn a_day_runs_from_local_midnight_to_the_next() {
        let d = DateArg::parse("2024-02-28").unwrap();
        let e = DateArg::parse("2024-02-29").unwrap();
        let p = Period::new(d, e).unwrap();
        assert_eq!(p.from_label(), "28/02/2024");
        assert_eq!(p.to_label(), "29/02/2024");
        assert_eq!(local_day(p.to_ns).to_string(), "2024-03-01");
        assert_eq!(local_day(p.to_ns - 1).to_string(), "2024-02-29");
    }
}
