//! Reporting periods and buckets. A period is `days` local calendar days ending today, or an
//! explicit `start`..`end` (end exclusive), in a time zone that decides where days, ISO weeks
//! and months begin. Rollups are kept per UTC day, hour and quarter hour, so every boundary must
//! fall on a quarter hour: zones offset by half or three quarters of an hour (Asia/Kolkata,
//! Asia/Kathmandu, America/St_Johns, Australia/Adelaide, Australia/Eucla) cut exactly.

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

/// On :00, :15, :30 or :45 exactly: where a quarter-hour rollup begins.
pub fn on_quarter(t: &DateTime<Utc>) -> bool {
    t.minute().is_multiple_of(15) && t.second() == 0 && t.nanosecond() == 0
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
                    if !on_quarter(t) {
                        return Err(ApiError::invalid(
                            field,
                            format!(
                                "{field} must fall on a quarter hour (:00, :15, :30 or :45; \
                                 usage is rolled up per quarter hour)"
                            ),
                        ));
                    }
                }
                let minutes = (end - start).num_minutes();
                let days = minutes.div_euclid(24 * 60) + i64::from(minutes % (24 * 60) != 0);
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

    /// Every local day of the period starts and ends on a quarter hour (else a 400 naming
    /// `tz`): true of every zone today, not of some historical local mean times.
    pub(crate) fn check_alignment(&self) -> Result<(), ApiError> {
        for bucket in self.buckets(Granularity::Day) {
            if !on_quarter(&bucket.start) || !on_quarter(&bucket.end) {
                return Err(off_quarter(&self.tz));
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

/// The 400 for a zone whose offset is not a whole number of quarter hours.
pub fn off_quarter(tz: &Zone) -> ApiError {
    ApiError::invalid(
        "tz",
        format!(
            "{} is offset from UTC by a fraction of a quarter hour, which quarter-hour rollups \
             cannot split; use another zone or UTC",
            tz.name()
        ),
    )
}

/// Whether `tz`'s offset is a whole number of quarter hours now and in half a year (both sides
/// of a daylight-saving change): what a stored zone (a budget's, a subscriber's) must be.
pub fn check_zone_quarters(tz: &Zone, now: DateTime<Utc>) -> Result<(), ApiError> {
    if [now, now + Duration::days(182)]
        .iter()
        .any(|t| tz.offset(*t).local_minus_utc() % (15 * 60) != 0)
    {
        return Err(off_quarter(tz));
    }
    Ok(())
}

#[derive(Clone, Debug, PartialEq)]
pub struct Bucket {
    pub label: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

/// The rollup items that exactly cover [start, end): UTC days wholly inside, then whole UTC
/// hours, then quarter hours at edges off the hour. Quarter items hold a bucket's own counters
/// (totals, providers, latency, hours of day, payments) but not its model and endpoint items,
/// so an hour cut by an edge lends its model and endpoint items to the side holding its
/// midpoint (`edge_hours`): every UTC hour's breakdown lands in exactly one bucket.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Cover {
    pub days: Vec<NaiveDate>,
    pub hours: Vec<DateTime<Utc>>,
    pub quarters: Vec<DateTime<Utc>>,
    /// Hours cut by an edge whose midpoint lies inside: their model and endpoint items only.
    pub edge_hours: Vec<DateTime<Utc>>,
}

fn union_into<T: Ord + Copy>(into: &mut Vec<T>, from: &[T]) {
    for x in from {
        if !into.contains(x) {
            into.push(*x);
        }
    }
    into.sort();
}

impl Cover {
    /// Every item either cover needs, once.
    pub fn union(&mut self, other: &Cover) {
        union_into(&mut self.days, &other.days);
        union_into(&mut self.hours, &other.hours);
        union_into(&mut self.quarters, &other.quarters);
        union_into(&mut self.edge_hours, &other.edge_hours);
    }

    /// The keys, in what [`crate::analytics::store::UsageStore::rollups`] returns, of the
    /// items in this cover.
    pub fn keys(&self) -> impl Iterator<Item = String> + '_ {
        self.days
            .iter()
            .map(|d| day_key(*d))
            .chain(self.hours.iter().map(|h| hour_key(*h)))
            .chain(self.quarters.iter().map(|q| quarter_key(*q)))
            .chain(self.edge_hours.iter().map(|h| edge_hour_key(*h)))
    }
}

/// Flat in events: at most 2 days' worth of hours and 6 quarters beside the whole days.
pub fn cover(start: DateTime<Utc>, end: DateTime<Utc>) -> Cover {
    let mut c = Cover::default();
    let mut t = start;
    while t < end {
        if t.hour() == 0 && whole_hour(&t) && t + Duration::days(1) <= end {
            c.days.push(t.date_naive());
            t += Duration::days(1);
        } else if whole_hour(&t) && t + Duration::hours(1) <= end {
            c.hours.push(t);
            t += Duration::hours(1);
        } else {
            // A period's bounds are quarter hours (`Period::parse`, `check_alignment`).
            c.quarters.push(t);
            let hour = t
                - Duration::minutes(i64::from(t.minute()))
                - Duration::seconds(i64::from(t.second()));
            let mid = hour + Duration::minutes(30);
            if start <= mid && mid < end && !c.edge_hours.contains(&hour) {
                c.edge_hours.push(hour);
            }
            t += Duration::minutes(15);
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

/// `2026-11-22T10:15`: the sort key of a quarter-hour item.
pub fn quarter_key(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M").to_string()
}

/// Where the item of `key` (a day, hour or quarter key) begins; `None` for an edge hour's parts.
pub fn key_start(key: &str) -> Option<DateTime<Utc>> {
    let date = NaiveDate::parse_from_str(key.get(..10)?, "%Y-%m-%d").ok()?;
    let (hour, minute) = match key.get(10..) {
        Some("") => (0, 0),
        Some(rest) => {
            let rest = rest.strip_prefix('T')?;
            match rest.split_once(':') {
                None => (rest.parse().ok()?, 0),
                Some((h, m)) => (h.parse().ok()?, m.parse().ok()?),
            }
        }
        None => return None,
    };
    Some(date.and_hms_opt(hour, minute, 0)?.and_utc())
}

/// The key under which the rollups read returns an edge hour's model and endpoint items.
pub fn edge_hour_key(t: DateTime<Utc>) -> String {
    format!("{}#parts", hour_key(t))
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
                    Some("2026-11-01T00:10:00Z"),
                    Some("2026-11-02T00:00:00Z"),
                    None,
                    now()
                )
                .unwrap_err()
            ),
            "start"
        );
        assert_eq!(
            field(
                Period::parse(
                    None,
                    Some("2026-11-01T00:00:00Z"),
                    Some("2026-11-02T00:15:30Z"),
                    None,
                    now()
                )
                .unwrap_err()
            ),
            "end"
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

    #[test]
    fn zones_off_the_whole_hour_cut_days_on_quarter_hours() {
        for (zone, day_start) in [
            ("Asia/Kolkata", "2026-11-21T18:30:00Z"),
            ("Asia/Kathmandu", "2026-11-21T18:15:00Z"),
            ("America/St_Johns", "2026-11-22T03:30:00Z"),
            ("Australia/Adelaide", "2026-11-22T13:30:00Z"),
            ("Australia/Eucla", "2026-11-22T15:15:00Z"),
        ] {
            let p = Period::parse(Some("1"), None, None, Some(zone), now()).unwrap();
            assert_eq!(
                p.start,
                day_start.parse::<DateTime<Utc>>().unwrap(),
                "{zone}"
            );
            assert_eq!((p.end - p.start).num_hours(), 24, "{zone}");
        }
    }

    #[test]
    fn start_and_end_on_quarter_hours_are_accepted() {
        for (start, end) in [
            ("2026-11-01T00:15:00Z", "2026-11-02T00:30:00Z"),
            ("2026-11-01T00:45:00Z", "2026-11-01T01:00:00Z"),
        ] {
            let p = Period::parse(None, Some(start), Some(end), None, now()).unwrap();
            assert_eq!(p.start, start.parse::<DateTime<Utc>>().unwrap());
        }
        let p = Period::parse(
            None,
            Some("2026-11-01T00:15:00Z"),
            Some("2026-11-02T00:30:00Z"),
            None,
            now(),
        )
        .unwrap();
        assert_eq!(p.days, 2, "a day and a quarter hour rounds up");
    }

    #[test]
    fn a_cover_off_the_hour_uses_quarters_at_the_edges_then_hours_then_days() {
        let t = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        // Three Kolkata days: 2026-11-20T18:30Z .. 2026-11-23T18:30Z.
        let c = cover(t("2026-11-20T18:30:00Z"), t("2026-11-23T18:30:00Z"));
        assert_eq!(c.quarters.len(), 4, "18:30, 18:45 first; 18:00, 18:15 last");
        assert_eq!(c.hours.len(), 5 + 18);
        assert_eq!(c.days.len(), 2);
        // The first edge hour's midpoint (18:30) is inside, the last one's is the end.
        assert_eq!(c.edge_hours, [t("2026-11-20T18:00:00Z")]);
        let keys: Vec<String> = c.keys().collect();
        assert!(keys.contains(&"2026-11-20T18:45".to_owned()));
        assert!(keys.contains(&"2026-11-20T18#parts".to_owned()));
    }

    #[test]
    fn consecutive_local_days_share_out_every_utc_hour_breakdown_once() {
        let t = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        // Kathmandu (+05:45): days begin at 18:15Z.
        let a = cover(t("2026-11-20T18:15:00Z"), t("2026-11-21T18:15:00Z"));
        let b = cover(t("2026-11-21T18:15:00Z"), t("2026-11-22T18:15:00Z"));
        let hour = t("2026-11-21T18:00:00Z");
        assert!(b.edge_hours.contains(&hour), "45 of its 60 minutes");
        assert!(!a.edge_hours.contains(&hour));
        assert_eq!(a.quarters.len() + b.quarters.len(), 2 * 4);
    }

    #[test]
    fn item_keys_tell_where_they_begin() {
        let t = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        assert_eq!(key_start("2026-11-22"), Some(t("2026-11-22T00:00:00Z")));
        assert_eq!(key_start("2026-11-22T10"), Some(t("2026-11-22T10:00:00Z")));
        assert_eq!(
            key_start("2026-11-22T10:45"),
            Some(t("2026-11-22T10:45:00Z"))
        );
        assert_eq!(key_start("2026-11-22T10#parts"), None);
    }
}
