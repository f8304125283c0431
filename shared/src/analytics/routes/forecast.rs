//! `GET analytics/forecast`: cost, credits and requests projected to the end of the month (or
//! week, or N days) with an 80% band; for a user also each budget's projected end-of-period
//! figure with the days its thresholds will be passed, and the day the credit balance runs out.
//! The arithmetic is `analytics::forecast`; this reads the daily history it needs: the last
//! [`LOOKBACK_DAYS`] local days and today so far, one rollup read per zone.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Duration, DurationRound, Months, NaiveDate, Utc};
use http::StatusCode;
use lambda_http::Request;
use serde_json::{json, Value};

use crate::analytics::budget::{Amount, Budget};
use crate::analytics::forecast::{days_left, fit, Fit, Projection, LOOKBACK_DAYS};
use crate::analytics::money::Usd2;
use crate::analytics::period::cover;
use crate::analytics::rollup::{Counters, Rollup};
use crate::analytics::store::{Scope, Stats, UsageStore};
use crate::analytics::zone::Zone;
use crate::platform::app::App;
use crate::platform::config::require;
use crate::platform::error::ApiError;
use crate::platform::handler::http_handler;
use crate::platform::http::{json, HttpResponse, Params};

/// The longest `horizon` in days.
pub const MAX_HORIZON_DAYS: i64 = 90;
/// How far ahead the credit balance's run-out day is looked for.
const BALANCE_DAYS: i64 = 90;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Horizon {
    Week,
    Month,
    Days(i64),
}

impl Horizon {
    fn parse(raw: Option<&str>) -> Result<Self, ApiError> {
        match raw {
            None | Some("month") => Ok(Self::Month),
            Some("week") => Ok(Self::Week),
            Some(other) => match other.trim().parse::<i64>() {
                Ok(n) if (1..=MAX_HORIZON_DAYS).contains(&n) => Ok(Self::Days(n)),
                _ => Err(ApiError::invalid(
                    "horizon",
                    format!(
                        "horizon must be week, month or a number of days from 1 to \
                         {MAX_HORIZON_DAYS}, not {other:?}"
                    ),
                )),
            },
        }
    }

    fn label(self) -> String {
        match self {
            Self::Week => "week".into(),
            Self::Month => "month".into(),
            Self::Days(n) => n.to_string(),
        }
    }

    /// The local dates [first, end) of the period containing `today`.
    fn dates(self, today: NaiveDate) -> (NaiveDate, NaiveDate) {
        match self {
            Self::Week => {
                let monday =
                    today - Duration::days(i64::from(today.weekday().num_days_from_monday()));
                (monday, monday + Duration::days(7))
            }
            Self::Month => {
                let first = today.with_day(1).unwrap_or(today);
                (
                    first,
                    first.checked_add_months(Months::new(1)).unwrap_or(first),
                )
            }
            Self::Days(n) => (today, today + Duration::days(n)),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Metric {
    Cost,
    Credits,
    Requests,
}

impl Metric {
    const ALL: [Metric; 3] = [Metric::Cost, Metric::Credits, Metric::Requests];

    fn parse(raw: Option<&str>) -> Result<Vec<Self>, ApiError> {
        match raw {
            None => Ok(Self::ALL.to_vec()),
            Some("cost") => Ok(vec![Self::Cost]),
            Some("credits") => Ok(vec![Self::Credits]),
            Some("requests") => Ok(vec![Self::Requests]),
            Some(other) => Err(ApiError::invalid(
                "metric",
                format!("metric must be cost, credits or requests, not {other:?}"),
            )),
        }
    }

    fn of(self, c: &Counters) -> i64 {
        match self {
            Self::Cost => c.cost_micros,
            Self::Credits => c.credits,
            Self::Requests => c.requests,
        }
    }

    fn key(self) -> &'static str {
        match self {
            Self::Cost => "cost_usd",
            Self::Credits => "credits",
            Self::Requests => "requests",
        }
    }
}

/// A zone's local days: the lookback, then today so far, each day's rollups summed.
struct Daily {
    tz: Zone,
    today: NaiveDate,
    /// Share of today the rollups cover (hours up to and including the current one).
    elapsed: f64,
    /// Oldest first; the last entry is today so far.
    days: Vec<(NaiveDate, Rollup)>,
}

impl Daily {
    async fn read(
        store: &UsageStore,
        scope: &Scope,
        tz: &Zone,
        now: DateTime<Utc>,
    ) -> Result<Daily, ApiError> {
        let today = tz.local(now).date_naive();
        let hour_end = now
            .duration_trunc(Duration::hours(1))
            .map_err(|e| ApiError::Unexpected(e.into()))?
            + Duration::hours(1);
        let first = today - Duration::days(LOOKBACK_DAYS);
        let mut spans = vec![];
        let mut d = first;
        while d <= today {
            let start = tz.midnight(d);
            let end = tz.midnight(d + Duration::days(1)).min(hour_end);
            spans.push((d, cover(start, end)));
            d += Duration::days(1);
        }
        let mut all = crate::analytics::period::Cover::default();
        for (_, c) in &spans {
            all.union(c);
        }
        let items = store.rollups(scope, &all).await?;
        let days = spans
            .iter()
            .map(|(d, c)| {
                let mut sum = Rollup::default();
                for key in c.keys() {
                    if let Some(r) = items.get(&key) {
                        sum.merge(r);
                    }
                }
                (*d, sum)
            })
            .collect();
        let midnight = tz.midnight(today);
        let length = (tz.midnight(today + Duration::days(1)) - midnight).num_seconds() as f64;
        let elapsed =
            ((hour_end - midnight).num_seconds() as f64 / length.max(1.0)).clamp(0.0, 1.0);
        Ok(Daily {
            tz: tz.clone(),
            today,
            elapsed,
            days,
        })
    }

    /// The series of `measure`: the complete days, and today so far.
    fn series(&self, measure: impl Fn(&Rollup) -> i64) -> (Vec<(NaiveDate, f64)>, f64) {
        let n = self.days.len().saturating_sub(1);
        let history = self.days[..n]
            .iter()
            .map(|(d, r)| (*d, measure(r) as f64))
            .collect();
        let today = self.days.last().map_or(0, |(_, r)| measure(r)) as f64;
        (history, today)
    }

    /// What `measure` summed from local date `from` through today.
    fn since(&self, from: NaiveDate, measure: impl Fn(&Rollup) -> i64) -> i64 {
        self.days
            .iter()
            .filter(|(d, _)| *d >= from)
            .map(|(_, r)| measure(r))
            .sum()
    }

    fn fit(&self, measure: impl Fn(&Rollup) -> i64) -> Fit {
        let (history, today) = self.series(measure);
        fit(&history, (self.today, today, self.elapsed))
    }

    /// The days still to come until local date `end` (exclusive), today's rest first.
    fn left(&self, end: NaiveDate) -> Vec<(NaiveDate, f64)> {
        days_left(self.today, 1.0 - self.elapsed, end)
    }

    /// The first local day from `from` on which `measure`'s running sum reached `limit`.
    fn reached(
        &self,
        from: NaiveDate,
        limit: i64,
        measure: impl Fn(&Rollup) -> i64,
    ) -> Option<NaiveDate> {
        let mut total = 0;
        for (d, r) in self.days.iter().filter(|(d, _)| *d >= from) {
            total += measure(r);
            if total >= limit {
                return Some(*d);
            }
        }
        None
    }
}

fn micros(v: f64) -> i64 {
    v.round() as i64
}

fn figure(metric: Metric, to_date: i64, p: &Projection) -> Value {
    match metric {
        Metric::Cost => json!({
            "to_date": Usd2(to_date),
            "projected": Usd2(micros(p.expected)),
            "low": Usd2(micros(p.low)),
            "high": Usd2(micros(p.high)),
        }),
        _ => json!({
            "to_date": to_date,
            "projected": p.expected.round() as i64,
            "low": p.low.floor() as i64,
            "high": p.high.ceil() as i64,
        }),
    }
}

fn date_json(d: Option<NaiveDate>) -> Value {
    d.map_or(Value::Null, |d| json!(d.to_string()))
}

fn stamp(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// One budget's period: spent so far, projected at its end, and the days each threshold is (or
/// will be) reached — in the budget's own zone.
fn budget_forecast(b: &Budget, daily: &Daily, now: DateTime<Utc>) -> Value {
    let (start, end) = b.window(now);
    let first = daily.tz.local(start).date_naive();
    let last = daily.tz.local(end).date_naive();
    let measure = |r: &Rollup| b.spent(r);
    let spent = daily.since(first, measure);
    let f = daily.fit(measure);
    let left = daily.left(last);
    let p = f.sum(&left).after(spent as f64);
    let amount = b.amount.value();
    let on = |limit: i64| -> Value {
        if spent >= limit {
            date_json(daily.reached(first, limit, measure))
        } else {
            date_json(f.reaches(spent as f64, limit as f64, &left))
        }
    };
    let thresholds: Vec<Value> = b
        .thresholds
        .iter()
        .map(|t| {
            let limit = ((i128::from(amount) * i128::from(*t) + 99) / 100) as i64;
            json!({"percent": t, "reached": spent >= limit, "on": on(limit)})
        })
        .collect();
    let percent = if amount > 0 {
        (p.expected * 100.0 / amount as f64).floor() as i64
    } else {
        0
    };
    let mut out = json!({
        "id": b.id,
        "period": b.period.as_str(),
        "tz": b.tz,
        "period_start": stamp(start),
        "period_end": stamp(end),
        "projected_percent": percent,
        "runs_out_on": on(amount),
        "thresholds": thresholds,
    });
    match b.amount {
        Amount::UsdMicros(v) => {
            out["amount_usd"] = json!(Usd2(v));
            out["spent_usd"] = json!(Usd2(spent));
            out["projected_usd"] = json!({"expected": Usd2(micros(p.expected)), "low": Usd2(micros(p.low)), "high": Usd2(micros(p.high))});
        }
        Amount::Credits(v) => {
            out["amount_credits"] = json!(v);
            out["spent_credits"] = json!(spent);
            out["projected_credits"] = json!({"expected": p.expected.round() as i64, "low": p.low.floor() as i64, "high": p.high.ceil() as i64});
        }
    }
    out
}

http_handler!(
    /// `GET /api/v1/analytics/forecast?horizon=month|week|N&metric=&tz=&user_id=&system=true`
    forecast => get_forecast
);

/// Whose figures a request is about: the caller's, a user's (`user_id=`, admins) or the
/// platform's (`system=true`, admins), with the route's other parameters `extra` parsed.
pub(crate) fn subject(
    app: &App,
    req: &Request,
    extra: &[&str],
) -> Result<(Scope, Params), ApiError> {
    // The budgets' rule of whose data a request names, shared by every route with `system=true`.
    super::budgets::owner_with(app, req, extra).map(|(owner, _, params)| (owner, params))
}

async fn get_forecast(app: &App, req: &Request) -> Result<HttpResponse, ApiError> {
    let (scope, params) = subject(app, req, &["horizon", "metric", "tz"])?;
    let horizon = Horizon::parse(params.get("horizon"))?;
    let metrics = Metric::parse(params.get("metric"))?;
    let tz = match params.get("tz") {
        None => Zone::utc(),
        Some(name) => Zone::parse(name).ok_or_else(|| {
            ApiError::invalid(
                "tz",
                format!("tz must be an IANA time zone such as Europe/Paris, not {name:?}"),
            )
        })?,
    };
    let now = Utc::now();
    crate::analytics::period::check_zone_quarters(&tz, now)?;
    let r = &app.config().resources;
    let store = UsageStore::new(
        app.dynamodb().await.clone(),
        None,
        Some(require(&r.rollups_table, "ROLLUPS_TABLE")?),
        app.config().retention_days,
    );
    let daily = Daily::read(&store, &scope, &tz, now).await?;
    let (first, end) = horizon.dates(daily.today);
    let left = daily.left(end);
    let mut body = json!({
        "horizon": horizon.label(),
        "timezone": tz.name(),
        "as_of": stamp(now),
        "period": {
            "start": stamp(tz.midnight(first)),
            "end": stamp(tz.midnight(end)),
            "days": (end - first).num_days(),
            "days_left": left.len(),
        },
    });
    let requests_fit = daily.fit(|r| r.total.requests);
    body["confidence"] = json!(requests_fit.confidence.as_str());
    body["history_days"] = json!(requests_fit.history_days);
    for m in &metrics {
        let f = daily.fit(|r| m.of(&r.total));
        let to_date = daily.since(first, |r| m.of(&r.total));
        let p = f.sum(&left).after(to_date as f64);
        body[m.key()] = figure(*m, to_date, &p);
    }
    match &scope {
        Scope::System => body["scope"] = json!("system"),
        Scope::User(user) => {
            body["scope"] = json!("user");
            body["user_id"] = json!(user.as_str());
            // The balance, and the first day within BALANCE_DAYS the expected usage reaches it.
            let balance = store.credit_totals(user).await?.balance();
            let credits = daily.fit(|r| r.total.credits);
            let ahead = daily.left(daily.today + Duration::days(BALANCE_DAYS));
            let in_period = credits.sum(&left).expected;
            let runs_out = if balance <= 0 {
                (credits.level > 0.0).then_some(daily.today)
            } else {
                credits.reaches(0.0, balance as f64, &ahead)
            };
            body["credit_balance"] = json!({
                "now": balance,
                "projected_at_period_end": balance - in_period.round() as i64,
                "runs_out_on": date_json(runs_out),
            });
        }
    }
    // The user's budgets, or for the platform the system-wide ones, each in its own zone.
    let book = store.budgets(&scope, false).await?;
    let mut zones: BTreeMap<String, Daily> = BTreeMap::new();
    let mut budgets = vec![];
    for b in &book.budgets {
        let zone = b.zone();
        if zone.name() != tz.name() && !zones.contains_key(zone.name()) {
            let d = Daily::read(&store, &scope, &zone, now).await?;
            zones.insert(zone.name().to_owned(), d);
        }
        let d = zones.get(zone.name()).unwrap_or(&daily);
        budgets.push(budget_forecast(b, d, now));
    }
    body["budgets"] = json!(budgets);
    let Stats {
        items_read,
        read_units,
        ..
    } = store.stats();
    tracing::info!(route = "forecast", items_read, read_units, "analytics read");
    json(app, StatusCode::OK, &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(err: ApiError) -> String {
        let body: Value = serde_json::from_str(&err.body()).unwrap();
        body["error"]["field"].as_str().unwrap().to_owned()
    }

    #[test]
    fn horizons_are_week_month_or_a_bounded_number_of_days() {
        assert_eq!(Horizon::parse(None).unwrap(), Horizon::Month);
        assert_eq!(Horizon::parse(Some("week")).unwrap(), Horizon::Week);
        assert_eq!(Horizon::parse(Some("14")).unwrap(), Horizon::Days(14));
        for bad in ["0", "91", "-3", "year", "1.5", ""] {
            assert_eq!(
                field(Horizon::parse(Some(bad)).unwrap_err()),
                "horizon",
                "{bad}"
            );
        }
        assert_eq!(field(Metric::parse(Some("tokens")).unwrap_err()), "metric");
    }

    #[test]
    fn a_period_is_the_local_week_month_or_the_next_n_days() {
        let today: NaiveDate = "2026-11-24".parse().unwrap(); // a Tuesday
        let d = |s: &str| s.parse::<NaiveDate>().unwrap();
        assert_eq!(
            Horizon::Week.dates(today),
            (d("2026-11-23"), d("2026-11-30"))
        );
        assert_eq!(
            Horizon::Month.dates(today),
            (d("2026-11-01"), d("2026-12-01"))
        );
        assert_eq!(Horizon::Days(3).dates(today), (today, d("2026-11-27")));
    }
}
