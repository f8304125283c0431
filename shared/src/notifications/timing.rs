//! When an email or webhook leaves: at once, in the user's next email digest, or when their quiet
//! hours end. Pure rules over the preferences and an instant; the dispatcher applies them when it
//! fans a notification out, the flusher again when a held batch comes due (preferences change).
//!
//! - A type the user lets bypass (by default `error`) always goes at once.
//! - `info` and `success` email joins the digest when the user has one (hourly: the local hour;
//!   daily: 08:00 to 08:00 local). A digest is itself held by quiet hours.
//! - Anything else on email or webhooks that falls in quiet hours (local time in the user's
//!   zone; the window may cross midnight) waits until they end.
//! - The in-app inbox is not a channel here: it is always immediate.

use std::fmt;

use chrono::{DateTime, Duration, Timelike, Utc};

use crate::analytics::zone::Zone;
use crate::notifications::channels::Channel;
use crate::notifications::notification::NotificationType;
use crate::notifications::preferences::Preferences;
use crate::platform::names::wire_enum;

wire_enum! {
    /// How often a user's `info` and `success` emails are batched into one.
    #[derive(Default)]
    pub enum DigestFrequency {
        #[default]
        Off => "off",
        Hourly => "hourly",
        Daily => "daily",
    }
}

/// The types a digest may batch; the others are worth an email of their own.
pub const DIGESTIBLE: [NotificationType; 2] = [NotificationType::Info, NotificationType::Success];

/// The local hour a daily digest goes out (the day's window runs from it to the next).
pub const DAILY_DIGEST_HOUR: u32 = 8;

/// A time of day on the wall clock, `HH:MM` (24-hour, 00:00 to 23:59).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct LocalTime(u32);

impl LocalTime {
    /// Exactly `HH:MM`: two digits, a colon, two digits. `7pm`, `7:00`, `24:00` are refused.
    pub fn parse(raw: &str) -> Option<Self> {
        let b = raw.as_bytes();
        if b.len() != 5 || b[2] != b':' || ![0, 1, 3, 4].iter().all(|&i| b[i].is_ascii_digit()) {
            return None;
        }
        let digit = |i: usize| u32::from(b[i] - b'0');
        let (hour, minute) = (digit(0) * 10 + digit(1), digit(3) * 10 + digit(4));
        (hour < 24 && minute < 60).then_some(LocalTime(hour * 60 + minute))
    }

    pub fn hour(self) -> u32 {
        self.0 / 60
    }

    pub fn minute(self) -> u32 {
        self.0 % 60
    }
}

impl fmt::Display for LocalTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}", self.hour(), self.minute())
    }
}

/// Quiet hours: from `start` (inclusive) to `end` (exclusive) every day, in the user's zone. A
/// window whose end is earlier than its start crosses midnight (22:00 to 07:00).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuietHours {
    pub start: LocalTime,
    pub end: LocalTime,
}

impl QuietHours {
    /// `Err((field, message))` when the window is empty.
    pub fn new(start: LocalTime, end: LocalTime) -> Result<Self, (String, String)> {
        if start == end {
            return Err((
                "quiet_hours.end".into(),
                format!(
                    "quiet_hours.end must differ from quiet_hours.start ({start}): a window \
                     from a time to itself is empty; remove quiet hours with null"
                ),
            ));
        }
        Ok(QuietHours { start, end })
    }

    /// If `at` falls within the quiet hours in `zone`, the instant they end.
    pub fn end_if_quiet(&self, at: DateTime<Utc>, zone: &Zone) -> Option<DateTime<Utc>> {
        let local = zone.local(at);
        let now = LocalTime(local.hour() * 60 + local.minute());
        let today = local.date_naive();
        let end_day = if self.start < self.end {
            (self.start <= now && now < self.end).then_some(today)?
        } else if now >= self.start {
            today.succ_opt()?
        } else if now < self.end {
            today
        } else {
            return None;
        };
        let end = zone.at(end_day, self.end.hour(), self.end.minute());
        // A clock change can fold the end back onto or before `at`: then it has passed.
        (end > at).then_some(end)
    }
}

/// One digest window of a user: the notifications that arrive in it go out in one email.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub frequency: DigestFrequency,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl Window {
    /// The window of `frequency` that `at` falls in, in `zone`; `None` when digests are off.
    pub fn containing(
        frequency: DigestFrequency,
        at: DateTime<Utc>,
        zone: &Zone,
    ) -> Option<Window> {
        let local = zone.local(at);
        let (start, end) = match frequency {
            DigestFrequency::Off => return None,
            DigestFrequency::Hourly => {
                let into = Duration::seconds(i64::from(local.minute() * 60 + local.second()))
                    + Duration::nanoseconds(i64::from(local.nanosecond() % 1_000_000_000));
                let start = at - into;
                (start, start + Duration::hours(1))
            }
            DigestFrequency::Daily => {
                let today = local.date_naive();
                let send = |d| zone.at(d, DAILY_DIGEST_HOUR, 0);
                let this = send(today);
                if this <= at {
                    (this, send(today.succ_opt()?))
                } else {
                    (send(today.pred_opt()?), this)
                }
            }
        };
        Some(Window {
            frequency,
            start,
            end,
        })
    }

    /// The window after this one.
    pub fn next(&self, zone: &Zone) -> Option<Window> {
        Window::containing(self.frequency, self.end, zone)
    }

    /// Where a delivery goes when this window's digest already went out, as of `now`: the
    /// next window, or the one open now when the delivery waited longer than a window (a queue
    /// backlog, a redrive from the dead-letter queue).
    pub fn after_flushed(&self, now: DateTime<Utc>, zone: &Zone) -> Option<Window> {
        if self.end <= now {
            Window::containing(self.frequency, now, zone)
        } else {
            self.next(zone)
        }
    }

    /// `H2026-11-24T14:00Z` / `D2026-11-24T13:00Z`: the frequency and the start, in UTC.
    pub fn key(&self) -> String {
        let f = match self.frequency {
            DigestFrequency::Daily => 'D',
            _ => 'H',
        };
        format!("{f}{}", self.start.format("%Y-%m-%dT%H:%MZ"))
    }

    /// The window a key names (its end follows from the frequency and the zone).
    pub fn from_key(key: &str, zone: &Zone) -> Option<Window> {
        let frequency = match key.get(..1)? {
            "H" => DigestFrequency::Hourly,
            "D" => DigestFrequency::Daily,
            _ => return None,
        };
        let start = chrono::NaiveDateTime::parse_from_str(key.get(1..)?, "%Y-%m-%dT%H:%MZ")
            .ok()?
            .and_utc();
        Window::containing(frequency, start, zone)
    }
}

/// What to do with one delivery now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Timing {
    Now,
    /// Into the digest of this window.
    Digest(Window),
    /// Held until quiet hours end at this instant.
    Hold(DateTime<Utc>),
}

impl Preferences {
    /// The user's zone (UTC when none is set or it is no longer known).
    pub fn zone(&self) -> Zone {
        self.tz
            .as_deref()
            .and_then(Zone::parse)
            .unwrap_or_else(Zone::utc)
    }

    /// When the delivery of a `kind` notification on `channel`, made at `at`, goes out.
    pub fn timing(&self, channel: Channel, kind: NotificationType, at: DateTime<Utc>) -> Timing {
        if self.bypass.allows(kind) {
            return Timing::Now;
        }
        let zone = self.zone();
        if channel == Channel::Email && DIGESTIBLE.contains(&kind) {
            if let Some(w) = Window::containing(self.digest_email, at, &zone) {
                return Timing::Digest(w);
            }
        }
        match self.quiet_end(at) {
            Some(end) => Timing::Hold(end),
            None => Timing::Now,
        }
    }

    /// When quiet hours around `at` end, if `at` falls in them.
    pub fn quiet_end(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.quiet_hours?.end_if_quiet(at, &self.zone())
    }

    /// When the digest of `window` goes out: its end, or later when quiet hours hold it.
    pub fn digest_release(&self, window: &Window) -> DateTime<Utc> {
        self.quiet_end(window.end).unwrap_or(window.end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(raw: &str) -> DateTime<Utc> {
        raw.parse().unwrap()
    }

    fn quiet(start: &str, end: &str) -> QuietHours {
        QuietHours::new(
            LocalTime::parse(start).unwrap(),
            LocalTime::parse(end).unwrap(),
        )
        .unwrap()
    }

    fn prefs(tz: &str) -> Preferences {
        let mut p = Preferences::default();
        p.tz = Some(tz.into());
        p
    }

    #[test]
    fn times_of_day_are_exactly_hh_mm_on_a_24_hour_clock() {
        assert_eq!(LocalTime::parse("00:00").unwrap().to_string(), "00:00");
        assert_eq!(LocalTime::parse("23:59").unwrap().to_string(), "23:59");
        for bad in [
            "24:00",
            "25:00",
            "7pm",
            "7:00",
            "07:60",
            "0700",
            " 07:00",
            "07:00 ",
            "",
            "ab:cd",
            "-1:00",
            "07:0",
            "１２:00",
        ] {
            assert_eq!(LocalTime::parse(bad), None, "{bad:?}");
        }
        let same = LocalTime::parse("07:00").unwrap();
        assert_eq!(
            QuietHours::new(same, same).unwrap_err().0,
            "quiet_hours.end"
        );
    }

    #[test]
    fn quiet_hours_across_midnight_in_new_york_hold_a_3am_utc_webhook_until_7am_local() {
        // 22:00-07:00 in New York (UTC-5 in November). 03:00Z is 22:00 local: quiet until
        // 07:00 local, 12:00Z (read as UTC, the same hours would end at 07:00Z).
        let mut p = prefs("America/New_York");
        p.quiet_hours = Some(quiet("22:00", "07:00"));
        assert_eq!(
            p.timing(
                Channel::Webhook,
                NotificationType::Info,
                t("2026-11-24T03:00:00Z")
            ),
            Timing::Hold(t("2026-11-24T12:00:00Z"))
        );
        // 11:59Z is 06:59 local, still quiet; 12:00Z is 07:00 local, over.
        assert_eq!(
            p.quiet_end(t("2026-11-24T11:59:00Z")),
            Some(t("2026-11-24T12:00:00Z"))
        );
        assert_eq!(p.quiet_end(t("2026-11-24T12:00:00Z")), None);
        // 02:00Z is 21:00 local the day before: not quiet, although 02:00 would be in UTC.
        assert_eq!(
            p.timing(
                Channel::Email,
                NotificationType::Warning,
                t("2026-11-24T02:00:00Z")
            ),
            Timing::Now
        );
        // Errors bypass quiet hours.
        assert_eq!(
            p.timing(
                Channel::Webhook,
                NotificationType::Error,
                t("2026-11-24T03:00:00Z")
            ),
            Timing::Now
        );
    }

    #[test]
    fn quiet_hours_ending_after_a_clock_change_end_at_the_local_time_not_after_a_fixed_span() {
        // New York leaves summer time on 2026-11-01 at 02:00 local. Quiet 22:00-07:00 from
        // Saturday 22:00 EDT (02:00Z) ends Sunday 07:00 EST = 12:00Z: ten hours, not nine.
        let mut p = prefs("America/New_York");
        p.quiet_hours = Some(quiet("22:00", "07:00"));
        assert_eq!(
            p.quiet_end(t("2026-11-01T02:00:00Z")),
            Some(t("2026-11-01T12:00:00Z"))
        );
        // And on the spring change (2026-03-08), 22:00 EST (03:00Z) to 07:00 EDT = 11:00Z.
        assert_eq!(
            p.quiet_end(t("2026-03-08T03:00:00Z")),
            Some(t("2026-03-08T11:00:00Z"))
        );
    }

    #[test]
    fn quiet_hours_within_one_day_hold_only_inside_the_window() {
        let mut p = prefs("Europe/Paris");
        p.quiet_hours = Some(quiet("12:00", "14:00"));
        // 11:30Z is 12:30 in Paris (UTC+1 in November).
        assert_eq!(
            p.quiet_end(t("2026-11-24T11:30:00Z")),
            Some(t("2026-11-24T13:00:00Z"))
        );
        assert_eq!(p.quiet_end(t("2026-11-24T13:00:00Z")), None);
        assert_eq!(p.quiet_end(t("2026-11-24T10:59:00Z")), None);
    }

    #[test]
    fn info_and_success_email_join_the_digest_other_types_and_webhooks_do_not() {
        let mut p = prefs("Asia/Tokyo");
        p.digest_email = DigestFrequency::Hourly;
        let at = t("2026-11-24T14:25:10Z");
        let w = Window::containing(DigestFrequency::Hourly, at, &p.zone()).unwrap();
        assert_eq!(
            (w.start, w.end),
            (t("2026-11-24T14:00:00Z"), t("2026-11-24T15:00:00Z"))
        );
        assert_eq!(
            p.timing(Channel::Email, NotificationType::Info, at),
            Timing::Digest(w)
        );
        assert_eq!(
            p.timing(Channel::Email, NotificationType::Success, at),
            Timing::Digest(w)
        );
        assert_eq!(
            p.timing(Channel::Email, NotificationType::Warning, at),
            Timing::Now
        );
        assert_eq!(
            p.timing(Channel::Email, NotificationType::Error, at),
            Timing::Now
        );
        assert_eq!(
            p.timing(Channel::Webhook, NotificationType::Info, at),
            Timing::Now
        );
        // A user who lets info bypass gets it at once; one who holds errors back gets them held.
        p.bypass.set(NotificationType::Info, true);
        assert_eq!(
            p.timing(Channel::Email, NotificationType::Info, at),
            Timing::Now
        );
        p.bypass.set(NotificationType::Error, false);
        p.quiet_hours = Some(quiet("23:00", "08:00"));
        // 14:25Z is 23:25 in Tokyo.
        assert_eq!(
            p.timing(Channel::Webhook, NotificationType::Error, at),
            Timing::Hold(t("2026-11-24T23:00:00Z"))
        );
    }

    #[test]
    fn a_daily_digest_runs_from_eight_to_eight_local_and_quiet_hours_hold_it() {
        let mut p = prefs("America/New_York");
        p.digest_email = DigestFrequency::Daily;
        let zone = p.zone();
        // 2026-11-24 10:00Z is 05:00 local: the window that began at 08:00 local the day before.
        let w =
            Window::containing(DigestFrequency::Daily, t("2026-11-24T10:00:00Z"), &zone).unwrap();
        assert_eq!(
            (w.start, w.end),
            (t("2026-11-23T13:00:00Z"), t("2026-11-24T13:00:00Z"))
        );
        assert_eq!(p.digest_release(&w), w.end);
        p.quiet_hours = Some(quiet("22:00", "09:30"));
        assert_eq!(p.digest_release(&w), t("2026-11-24T14:30:00Z"));
        // Across the autumn change the day is 25 hours long.
        let w =
            Window::containing(DigestFrequency::Daily, t("2026-11-01T03:00:00Z"), &zone).unwrap();
        assert_eq!(w.end - w.start, Duration::hours(25));
        assert_eq!(w.next(&zone).unwrap().start, w.end);
    }

    #[test]
    fn a_window_key_names_the_same_window_back() {
        let zone = Zone::parse("Europe/Paris").unwrap();
        for f in [DigestFrequency::Hourly, DigestFrequency::Daily] {
            let w = Window::containing(f, t("2026-11-24T14:25:10Z"), &zone).unwrap();
            assert_eq!(Window::from_key(&w.key(), &zone), Some(w), "{}", w.key());
        }
        assert_eq!(Window::from_key("X2026", &zone), None);
        assert_eq!(Window::from_key("H2026-13-01T00:00Z", &zone), None);
    }

    #[test]
    fn a_delivery_late_by_hours_joins_the_window_open_now_not_the_next_closed_one() {
        let zone = Zone::utc();
        let made =
            Window::containing(DigestFrequency::Hourly, t("2026-11-24T10:20:00Z"), &zone).unwrap();

        let soon = made
            .after_flushed(t("2026-11-24T10:59:00Z"), &zone)
            .unwrap();
        let late = made
            .after_flushed(t("2026-11-24T14:05:00Z"), &zone)
            .unwrap();

        assert_eq!(soon.start, t("2026-11-24T11:00:00Z"));
        assert_eq!(late.start, t("2026-11-24T14:00:00Z"));
        assert_eq!(late.end, t("2026-11-24T15:00:00Z"));
    }
}
