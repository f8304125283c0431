//! Reporting periods and buckets. A period is `days` local calendar days ending today, or an
//! explicit `start`..`end` (end exclusive), in a time zone that decides where days, ISO weeks
//! and months begin. Rollups are hourly, so every boundary must fall on a whole UTC hour.

use chrono::{DateTime, Datelike, Duration, NaiveDate, Timelike, Utc};

use super::zone::Zone;

use crate::platform::error::ApiError;

pub const MAX_DAYS: i64 = 366;
pub const DEFAULT_DAYS: i64 = 30;

#[derive(Clone, Debug, PartialEq)]
pub struct Period {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub tz: Zone,
    /// Whole days covered (rounded up): the contract's `period_days`.
    pub days: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Granularity {
    Hour,
    Day,
    Week,
    Month,
}

impl Granularity {
    pub fn parse(raw: Option<&str>) -> Result<Self, ApiError> {
        match raw.unwrap_or("day") {
            "hour" => Ok(Self::Hour),
            "day" => Ok(Self::Day),
            "week" => Ok(Self::Week),
            "month" => Ok(Self::Month),
            other => Err(ApiError::invalid(
                "granularity",
                format!("granularity must be hour, day, week or month, not {other:?}"),
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hour => "hour",
            Self::Day => "day",
            Self::Week => "week",
            Self::Month => "month",
        }
    }
}

/// UTC instant where local `date` begins in `tz` (the first existing local time that day).
pub fn local_midnight(tz: &Zone, date: NaiveDate) -> DateTime<Utc> {
    tz.midnight(date)
}

fn whole_hour(t: &DateTime<Utc>) -> bool {
    t.minute() == 0 && t.second() == 0 && t.nanosecond() == 0
}

impl Period {
    /// From the `days`, `start`, `end` and `tz` parameters; each problem is a 400 naming its field.
    pub fn parse(
        days: Option<&str>,
        start: Option<&str>,
        end: Option<&str>,
        tz: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Self, ApiError> {
        let tz: Zone = match tz {
            None => Zone::utc(),
            Some(name) => Zone::parse(name).ok_or_else(|| {
                ApiError::invalid(
                    "tz",
                    format!("tz must be an IANA time zone such as Europe/Paris, not {name:?}"),
                )
            })?,
        };
        let period = match (days, start, end) {
            (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
                return Err(ApiError::invalid(
                    "days",
                    "give days, or start and end, not both",
                ))
            }
            (_, Some(_), None) => {
                return Err(ApiError::invalid("end", "end is required with start"))
            }
            (_, None, Some(_)) => {
                return Err(ApiError::invalid("start", "start is required with end"))
            }
            (_, Some(s), Some(e)) => {
                let parse = |field: &str, raw: &str| {
                    DateTime::parse_from_rfc3339(raw)
                        .map(|t| t.with_timezone(&Utc))
                        .map_err(|_| {
                            ApiError::invalid(
                                field,
                                format!(
                                    "{field} must be an RFC 3339 time such as 2026-11-01T00:00:00Z"
                                ),
                            )
                        })
                };
                let (start, end) = (parse("start", s)?, parse("end", e)?);
                if start >= end {
                    return Err(ApiError::invalid("start", "start must be before end"));
                }
                if end - start > Duration::days(MAX_DAYS) {
                    return Err(ApiError::invalid(
                        "end",
                        format!("start and end must be at most {MAX_DAYS} days apart"),
                    ));
                }
                for (field, t) in [("start", &start), ("end", &end)] {
                    if !whole_hour(t) {
                        return Err(ApiError::invalid(
                            field,
                            format!(
                                "{field} must fall on a whole hour (usage is rolled up hourly)"
                            ),
                        ));
                    }
                }
                let days = (end - start).num_hours().div_euclid(24)
                    + i64::from((end - start).num_hours() % 24 != 0);
                Period {
                    start,
                    end,
                    tz,
                    days,
                }
            }
            (days, None, None) => {
                let n = match days {
                    None => DEFAULT_DAYS,
                    Some(raw) => {
                        let n: i64 = raw.trim().parse().map_err(|_| {
                            ApiError::invalid(
                                "days",
                                format!("days must be a whole number, not {raw:?}"),
                            )
                        })?;
                        if !(1..=MAX_DAYS).contains(&n) {
                            return Err(ApiError::invalid(
                                "days",
                                format!("days must be between 1 and {MAX_DAYS}"),
                            ));
                        }
                        n
                    }
                };
                let today = tz.local(now).date_naive();
                let first = today - Duration::days(n - 1);
                let start = local_midnight(&tz, first);
                let end = local_midnight(&tz, today + Duration::days(1));
                Period {
                    start,
                    end,
                    tz,
                    days: n,
                }
            }
        };
        period.check_alignment()?;
        Ok(period)
    }

    /// Every local day of the period starts and ends on a whole hour (else a 400 naming `tz`).
    pub(crate) fn check_alignment(&self) -> Result<(), ApiError> {
        for bucket in self.buckets(Granularity::Day) {
            if !whole_hour(&bucket.start) || !whole_hour(&bucket.end) {
                return Err(ApiError::invalid(
                    "tz",
                    format!("{} is offset from UTC by a fraction of an hour, which hourly rollups cannot split; use a whole-hour zone or UTC", self.tz.name()),
                ));
            }
        }
        Ok(())
    }

    /// The period cut into `granularity` buckets in the period's time zone; the first and last
    /// are clipped to the period. Labels: hour `2026-11-22T10:00:00-05:00`, day `2026-11-22`,
    /// week (ISO, Monday) `2026-11-16`, month `2026-11`.
    pub fn buckets(&self, granularity: Granularity) -> Vec<Bucket> {
        let mut out = vec![];
        let mut t = self.start;
        while t < self.end {
            let local = self.tz.local(t);
            let date = local.date_naive();
            let (label, next) = match granularity {
                Granularity::Hour => (local.to_rfc3339(), t + Duration::hours(1)),
                Granularity::Day => (
                    date.to_string(),
                    local_midnight(&self.tz, date + Duration::days(1)),
                ),
                Granularity::Week => {
                    let monday =
                        date - Duration::days(i64::from(date.weekday().num_days_from_monday()));
                    (
                        monday.to_string(),
                        local_midnight(&self.tz, monday + Duration::days(7)),
                    )
                }
                Granularity::Month => {
                    let first = date.with_day(1).unwrap_or(date);
                    let next_month = if first.month() == 12 {
                        NaiveDate::from_ymd_opt(first.year() + 1, 1, 1)
                    } else {
                        NaiveDate::from_ymd_opt(first.year(), first.month() + 1, 1)
                    }
                    .unwrap_or(first + Duration::days(31));
                    (
                        format!("{:04}-{:02}", first.year(), first.month()),
                        local_midnight(&self.tz, next_month),
                    )
                }
            };
            let end = next.min(self.end);
            out.push(Bucket {
                label,
                start: t,
                end,
            });
            t = end;
        }
        out
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Bucket {
    pub label: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

/// The rollup items that exactly cover [start, end): UTC days wholly inside, hours for the rest.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Cover {
    pub days: Vec<NaiveDate>,
    pub hours: Vec<DateTime<Utc>>,
}

impl Cover {
    /// Every item either cover needs, once.
    pub fn union(&mut self, other: &Cover) {
        for d in &other.days {
            if !self.days.contains(d) {
                self.days.push(*d);
            }
        }
        for h in &other.hours {
            if !self.hours.contains(h) {
                self.hours.push(*h);
            }
        }
        self.days.sort();
        self.hours.sort();
    }

    /// The sort keys of the items in this cover.
    pub fn keys(&self) -> impl Iterator<Item = String> + '_ {
        self.days
            .iter()
            .map(|d| day_key(*d))
            .chain(self.hours.iter().map(|h| hour_key(*h)))
    }
}

pub fn cover(start: DateTime<Utc>, end: DateTime<Utc>) -> Cover {
    let mut c = Cover::default();
    let mut t = start;
    while t < end {
        if t.hour() == 0 && whole_hour(&t) && t + Duration::days(1) <= end {
            c.days.push(t.date_naive());
            t += Duration::days(1);
        } else {
            c.hours.push(t);
            t += Duration::hours(1);
        }
    }
    c
}

pub fn day_key(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

pub fn hour_key(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        "2026-11-22T15:30:00Z".parse().unwrap()
    }

    fn field(err: ApiError) -> String {
        let body: serde_json::Value = serde_json::from_str(&err.body()).unwrap();
        body["error"]["field"].as_str().unwrap().to_owned()
    }

    #[test]
    fn days_counts_whole_local_days_ending_today() {
        let p = Period::parse(Some("7"), None, None, None, now()).unwrap();
        assert_eq!(
            p.start,
            "2026-11-16T00:00:00Z".parse::<DateTime<Utc>>().unwrap()
        );
        assert_eq!(
            p.end,
            "2026-11-23T00:00:00Z".parse::<DateTime<Utc>>().unwrap()
        );
        let ny = Period::parse(Some("1"), None, None, Some("America/New_York"), now()).unwrap();
        assert_eq!(
            ny.start,
            "2026-11-22T05:00:00Z".parse::<DateTime<Utc>>().unwrap()
        );
    }

    #[test]
    fn bad_parameters_name_their_field() {
        assert_eq!(
            field(Period::parse(Some("abc"), None, None, None, now()).unwrap_err()),
            "days"
        );
        assert_eq!(
            field(Period::parse(Some("0"), None, None, None, now()).unwrap_err()),
            "days"
        );
        assert_eq!(
            field(Period::parse(Some("100000"), None, None, None, now()).unwrap_err()),
            "days"
        );
        assert_eq!(
            field(Period::parse(None, None, None, Some("Mars/Olympus"), now()).unwrap_err()),
            "tz"
        );
        assert_eq!(
            field(
                Period::parse(
                    None,
                    Some("2026-11-02T00:00:00Z"),
                    Some("2026-11-01T00:00:00Z"),
                    None,
                    now()
                )
                .unwrap_err()
            ),
            "start"
        );
        assert_eq!(
            field(
                Period::parse(None, Some("2026-11-01T00:00:00Z"), None, None, now()).unwrap_err()
            ),
            "end"
        );
        assert_eq!(
            field(
                Period::parse(
                    None,
                    Some("2025-01-01T00:00:00Z"),
                    Some("2026-11-01T00:00:00Z"),
                    None,
                    now()
                )
                .unwrap_err()
            ),
            "end"
        );
        assert_eq!(
            field(
                Period::parse(
                    None,
                    Some("2026-11-01T00:30:00Z"),
                    Some("2026-11-02T00:00:00Z"),
                    None,
                    now()
                )
                .unwrap_err()
            ),
            "start"
        );
        assert_eq!(
            field(Period::parse(Some("3"), None, None, Some("Asia/Kolkata"), now()).unwrap_err()),
            "tz"
        );
        assert_eq!(
            field(Granularity::parse(Some("minute")).unwrap_err()),
            "granularity"
        );
    }

    #[test]
    fn iso_weeks_start_on_monday_and_months_on_the_first_in_the_zone() {
        let p = Period::parse(
            None,
            Some("2026-10-28T00:00:00Z"),
            Some("2026-11-10T00:00:00Z"),
            None,
            now(),
        )
        .unwrap();
        let weeks: Vec<String> = p
            .buckets(Granularity::Week)
            .into_iter()
            .map(|b| b.label)
            .collect();
        assert_eq!(weeks, ["2026-10-26", "2026-11-02", "2026-11-09"]);
        let months: Vec<String> = p
            .buckets(Granularity::Month)
            .into_iter()
            .map(|b| b.label)
            .collect();
        assert_eq!(months, ["2026-10", "2026-11"]);
    }

    #[test]
    fn a_local_day_across_a_dst_change_has_25_hours() {
        // Europe/Berlin leaves summer time on 2026-10-25.
        let p = Period::parse(
            None,
            Some("2026-10-24T22:00:00Z"),
            Some("2026-10-25T23:00:00Z"),
            Some("Europe/Berlin"),
            now(),
        )
        .unwrap();
        let days = p.buckets(Granularity::Day);
        assert_eq!(days[0].label, "2026-10-25");
        assert_eq!((days[0].end - days[0].start).num_hours(), 25);
    }

    #[test]
    fn a_cover_uses_days_where_whole_and_hours_at_the_edges() {
        let c = cover(
            "2026-11-20T22:00:00Z".parse().unwrap(),
            "2026-11-23T03:00:00Z".parse().unwrap(),
        );
        assert_eq!(c.days.len(), 2);
        assert_eq!(c.hours.len(), 2 + 3);
    }
}
