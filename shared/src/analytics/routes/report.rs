//! `GET analytics/report?period=month&month=2026-10` (or `period=week&week=2026-W43`): one
//! period's usage against the one before — totals, success rate, cost per request, the change,
//! the daily pattern and peak hour, the top drivers, performance per endpoint, budget status,
//! anomalies, the next period projected at this pace and recommendations computed from the data — as JSON, CSV or a printable HTML page
//! (`format`). Reads the two periods' rollups: flat in events.

use chrono::{Datelike, NaiveDate, Weekday};

use super::*;
use crate::analytics::forecast::{days_left, fit};
use crate::analytics::period::local_midnight;
use crate::analytics::report::{recommendations, Recommendation};
use crate::analytics::zone::Zone;
use crate::platform::http::html;

/// Which period a report covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Day,
    Month,
    Week,
}

impl Kind {
    pub fn parse(raw: &str) -> Option<Kind> {
        match raw {
            "daily" | "day" => Some(Kind::Day),
            "weekly" | "week" => Some(Kind::Week),
            "monthly" | "month" => Some(Kind::Month),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::Day => "daily",
            Kind::Week => "weekly",
            Kind::Month => "monthly",
        }
    }
}

/// The period a report covers and the one before it.
pub struct Span {
    pub kind: Kind,
    pub label: String,
    period: Period,
    previous: Period,
}

impl Span {
    /// The complete period of `kind` just before the local date `today` in `tz`: yesterday, the
    /// last ISO week or the last month.
    pub fn before(kind: Kind, today: NaiveDate, tz: &Zone) -> Result<Span, ApiError> {
        match kind {
            Kind::Day => {
                let day = today - Duration::days(1);
                Ok(Span {
                    kind,
                    label: day.to_string(),
                    period: period_between(day, today, tz)?,
                    previous: period_between(day - Duration::days(1), day, tz)?,
                })
            }
            Kind::Week => {
                let this =
                    today - Duration::days(i64::from(today.weekday().num_days_from_monday()));
                week_span(this - Duration::days(7), tz)
            }
            Kind::Month => {
                let this = today.with_day(1).unwrap_or(today);
                month_span(
                    this.checked_sub_months(chrono::Months::new(1))
                        .unwrap_or(this),
                    tz,
                )
            }
        }
    }
}

fn month_span(first: NaiveDate, tz: &Zone) -> Result<Span, ApiError> {
    let next = first
        .checked_add_months(chrono::Months::new(1))
        .unwrap_or(first);
    let before = first
        .checked_sub_months(chrono::Months::new(1))
        .unwrap_or(first);
    Ok(Span {
        kind: Kind::Month,
        label: first.format("%Y-%m").to_string(),
        period: period_between(first, next, tz)?,
        previous: period_between(before, first, tz)?,
    })
}

fn week_span(monday: NaiveDate, tz: &Zone) -> Result<Span, ApiError> {
    let iso = monday.iso_week();
    Ok(Span {
        kind: Kind::Week,
        label: format!("{}-W{:02}", iso.year(), iso.week()),
        period: period_between(monday, monday + Duration::days(7), tz)?,
        previous: period_between(monday - Duration::days(7), monday, tz)?,
    })
}

fn period_between(start: NaiveDate, end: NaiveDate, tz: &Zone) -> Result<Period, ApiError> {
    let p = Period {
        start: local_midnight(tz, start),
        end: local_midnight(tz, end),
        tz: tz.clone(),
        days: (end - start).num_days(),
    };
    p.check_alignment()?;
    Ok(p)
}

fn span(params: &Params, now: DateTime<Utc>) -> Result<Span, ApiError> {
    let tz = match params.get("tz") {
        None => Zone::utc(),
        Some(name) => Zone::parse(name).ok_or_else(|| {
            ApiError::invalid(
                "tz",
                format!("tz must be an IANA time zone such as Europe/Paris, not {name:?}"),
            )
        })?,
    };
    let today = tz.local(now).date_naive();
    let kind = match params.get("period") {
        None | Some("month") => Kind::Month,
        Some("week") => Kind::Week,
        Some(other) => {
            return Err(ApiError::invalid(
                "period",
                format!("period must be month or week, not {other:?}"),
            ))
        }
    };
    match kind {
        Kind::Month => {
            if params.get("week").is_some() {
                return Err(ApiError::invalid("week", "week goes with period=week"));
            }
            match params.get("month") {
                None => Span::before(Kind::Month, today, &tz),
                Some(raw) => {
                    let first = NaiveDate::parse_from_str(&format!("{raw}-01"), "%Y-%m-%d")
                        .ok()
                        .filter(|_| raw.len() == 7)
                        .ok_or_else(|| {
                            ApiError::invalid(
                                "month",
                                format!("month must be YYYY-MM with a month 01 to 12, not {raw:?}"),
                            )
                        })?;
                    month_span(first, &tz)
                }
            }
        }
        Kind::Week => {
            if params.get("month").is_some() {
                return Err(ApiError::invalid(
                    "month",
                    "month goes with period=month; use week with period=week",
                ));
            }
            match params.get("week") {
                None => Span::before(Kind::Week, today, &tz),
                Some(raw) => {
                    let monday = raw
                        .split_once("-W")
                        .and_then(|(y, w)| {
                            NaiveDate::from_isoywd_opt(
                                y.parse().ok()?,
                                w.parse().ok()?,
                                Weekday::Mon,
                            )
                        })
                        .ok_or_else(|| {
                            ApiError::invalid(
                                "week",
                                format!("week must be an ISO week such as 2026-W43, not {raw:?}"),
                            )
                        })?;
                    week_span(monday, &tz)
                }
            }
        }
        Kind::Day => Span::before(Kind::Day, today, &tz),
    }
}

fn change(now: f64, before: f64) -> Value {
    if before == 0.0 {
        Value::Null
    } else {
        json!(((now - before) * 1000.0 / before).round() / 10.0)
    }
}

fn ratio(part: i64, whole: i64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// Requests per local hour of day, from the loaded rollup items (hour items by their hour, day
/// items by the zone's offset on that day).
fn hours_of_day(items: &BTreeMap<String, Rollup>, tz: &Zone) -> [i64; 24] {
    use crate::analytics::period::key_start;
    let mut out = [0i64; 24];
    for (key, r) in items {
        // An edge hour's model and endpoint items hold no totals.
        let Some(start) = key_start(key) else {
            continue;
        };
        if key.len() > 10 {
            // An hour or quarter item counts in the local hour it begins in.
            out[tz.local(start).hour() as usize] += r.total.requests;
        } else {
            for (h, n) in &r.hour_of_day {
                let t = start + chrono::Duration::hours(i64::from(*h));
                out[tz.local(t).hour() as usize] += n;
            }
        }
    }
    out
}

#[derive(Serialize)]
struct Driver {
    name: String,
    requests: i64,
    cost_usd: Usd2,
    share_percent: f64,
    /// On the `other` row: how many values it sums.
    #[serde(skip_serializing_if = "Option::is_none")]
    values: Option<usize>,
}

/// The drivers a report names; the rest come summed as `other`, so the rows add up.
const DRIVERS: usize = 5;

fn drivers<'a>(rows: impl Iterator<Item = (String, &'a Counters)>, total: i64) -> Vec<Driver> {
    let mut rows: Vec<(String, &Counters)> = rows.collect();
    rows.sort_by(|a, b| {
        b.1.cost_micros
            .cmp(&a.1.cost_micros)
            .then(b.1.requests.cmp(&a.1.requests))
            .then(a.0.cmp(&b.0))
    });
    let driver = |name: String, c: &Counters, values: Option<usize>| Driver {
        name,
        requests: c.requests,
        cost_usd: Usd2(c.cost_micros),
        share_percent: (ratio(c.cost_micros, total) * 1000.0).round() / 10.0,
        values,
    };
    let rest = rows.split_off(rows.len().min(DRIVERS));
    let mut out: Vec<Driver> = rows
        .into_iter()
        .map(|(name, c)| driver(name, c, None))
        .collect();
    if !rest.is_empty() {
        let mut sum = Counters::default();
        for (_, c) in &rest {
            sum.merge(c);
        }
        out.push(driver("other".into(), &sum, Some(rest.len())));
    }
    out
}

/// Per attributed tag key in the period, its top values (`tag:project` → drivers).
fn top_tags(r: &Rollup, total: i64) -> BTreeMap<String, Vec<Driver>> {
    let keys: BTreeSet<&String> = r
        .model_tags
        .values()
        .flat_map(|tags| tags.keys().map(|(k, _)| k))
        .collect();
    keys.into_iter()
        .map(|k| {
            let values = r.tag_values(k);
            (
                format!("tag:{k}"),
                drivers(values.iter().map(|(v, c)| (v.clone(), c)), total),
            )
        })
        .collect()
}

http_handler!(
    /// `GET /api/v1/analytics/report` — `period` (month, week), `month` / `week`, `tz`,
    /// `format` (json, csv, html); admins may add `user_id`.
    report => get_report
);

async fn get_report(app: &App, req: &Request) -> Result<HttpResponse, ApiError> {
    // Whose report: the caller's, a user's (`user_id`, admins) or the platform's (`system=true`,
    // admins), by the budgets' rule.
    let (scope, _, params) =
        super::budgets::owner_with(app, req, &["period", "month", "week", "tz", "format"])?;
    let format = match params.get("format") {
        None | Some("json") => "json",
        Some("csv") => "csv",
        Some("html") => "html",
        Some(other) => {
            return Err(ApiError::invalid(
                "format",
                format!("format must be json, csv or html, not {other:?}"),
            ))
        }
    };
    let span = span(&params, Utc::now())?;
    let r = &app.config().resources;
    let store = UsageStore::new(
        app.dynamodb().await.clone(),
        None,
        r.rollups_table.as_deref(),
        app.config().retention_days,
    );
    let body = build(&store, &scope, &span).await?;
    let stats = store.stats();
    tracing::info!(
        route = "report",
        items_read = stats.items_read,
        read_units = stats.read_units,
        "analytics read"
    );
    match format {
        "csv" => {
            let mut response = json(app, StatusCode::OK, &Value::Null)?;
            *response.body_mut() = Body::Text(csv_of(&body));
            let headers = response.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/csv; charset=utf-8"),
            );
            if let Ok(v) = HeaderValue::from_str(&format!(
                "attachment; filename=\"report_{}.csv\"",
                span.label
            )) {
                headers.insert(header::CONTENT_DISPOSITION, v);
            }
            Ok(response)
        }
        "html" => Ok(html(app, StatusCode::OK, html_of(&body))),
        _ => json(app, StatusCode::OK, &body),
    }
}

/// The report of a user or of the platform (`scope`) for `span`: every figure the JSON, CSV and
/// HTML forms show, from the two periods' rollups.
pub async fn build(store: &UsageStore, scope: &Scope, span: &Span) -> Result<Value, ApiError> {
    let scope = scope.clone();
    let days = span.period.buckets(Granularity::Day);
    let current = load(store, &scope, &days).await?;
    let previous = load(
        store,
        &scope,
        &[Bucket {
            label: String::new(),
            start: span.previous.start,
            end: span.previous.end,
        }],
    )
    .await?
    .total;
    report_json(store, span, &scope, &days, &current, &previous).await
}

/// The report as JSON: every figure the CSV and HTML forms show.
async fn report_json(
    store: &UsageStore,
    span: &Span,
    owner: &Scope,
    days: &[Bucket],
    current: &Loaded,
    previous: &Rollup,
) -> Result<Value, ApiError> {
    let t = &current.total.total;
    let p = &previous.total;
    let label = match span.kind {
        Kind::Month => "last month",
        Kind::Week => "last week",
        Kind::Day => "the day before",
    };
    let recs: Vec<Recommendation> = recommendations(&current.total, previous, label);
    let hours = hours_of_day(&current.items, &span.period.tz);
    let peak_hour = hours
        .iter()
        .enumerate()
        .filter(|(_, n)| **n > 0)
        .max_by_key(|(h, n)| (**n, std::cmp::Reverse(*h)))
        .map(|(h, _)| h);
    let daily: Vec<Value> = days
        .iter()
        .zip(&current.per_bucket)
        .map(|(b, r)| {
            json!({"date": b.label, "requests": r.total.requests, "errors": r.total.errors,
                "cost_usd": Usd2(r.total.cost_micros)})
        })
        .collect();
    let total_cost = current.total.total.cost_micros;
    let performance: Vec<DimensionRow> = current
        .total
        .endpoints
        .iter()
        .map(|(e, c)| {
            dimension_row(
                None,
                Some(e.clone()),
                c,
                current.total.endpoint_latency.get(e),
            )
        })
        .collect();
    // Budgets of the report's kind of period, against the report period's spend.
    let owner = owner.clone();
    let budgets: Vec<Value> = store
        .budgets(&owner, false)
        .await?
        .budgets
        .iter()
        .filter(|b| {
            matches!(
                (b.period, span.kind),
                (crate::analytics::budget::BudgetPeriod::Month, Kind::Month)
                    | (crate::analytics::budget::BudgetPeriod::Week, Kind::Week)
                    | (crate::analytics::budget::BudgetPeriod::Day, Kind::Day)
            )
        })
        .map(|b| {
            let spent = b.spent(&current.total);
            json!({"budget_id": b.id, "percent": crate::seam::budgets::percent(spent, b.amount.value()),
                "spent": spent, "amount": b.amount.value(),
                "unit": match b.amount { crate::analytics::budget::Amount::UsdMicros(_) => "usd_micros", crate::analytics::budget::Amount::Credits(_) => "credits" }})
        })
        .collect();
    let anomalies: Vec<Value> = store
        .anomalies(&owner, 1_000)
        .await?
        .into_iter()
        .filter(|a| a.window_start >= span.period.start && a.window_start < span.period.end)
        .map(|a| json!({"id": a.id, "at": a.window_start.to_rfc3339(), "message": a.message}))
        .collect();
    let forecast = next_period(span, days, &current.per_bucket);
    let mut body = json!({
        "report": span.label,
        "period": period_json(&span.period),
        "previous_period": period_json(&span.previous),
        "totals": {
            "requests": t.requests,
            "errors": t.errors,
            "success_rate": Fixed(1.0 - ratio(t.errors, t.requests), 4),
            "cost_usd": Usd2(t.cost_micros),
            "credits": t.credits,
            "cost_per_request_usd": Usd4(avg_micros(t.cost_micros, t.requests)),
            "input_tokens": t.input_tokens,
            "output_tokens": t.output_tokens,
        },
        "change_percent": {
            "requests": change(t.requests as f64, p.requests as f64),
            "cost": change(t.cost_micros as f64, p.cost_micros as f64),
            "cost_per_request": change(ratio(t.cost_micros, t.requests), ratio(p.cost_micros, p.requests)),
            "error_rate_points": ((ratio(t.errors, t.requests) - ratio(p.errors, p.requests)) * 1000.0).round() / 10.0,
        },
        "daily": daily,
        "peak_hour": peak_hour,
        "top_models": drivers(current.total.models.iter().map(|((p, m), c)| (model_key(p, m), c)), total_cost),
        "top_providers": drivers(current.total.providers.iter().map(|(p, c)| (p.clone(), c)), total_cost),
        "top_endpoints": drivers(current.total.endpoints.iter().map(|(e, c)| (e.clone(), c)), total_cost),
        "top_tags": top_tags(&current.total, total_cost),
        "performance": performance,
        "budgets": budgets,
        "anomalies": anomalies,
        "forecast": forecast,
        "recommendations": recs,
    });
    if let Scope::System = owner {
        body["scope"] = json!("system");
        body["top_users"] = json!(top_users(store, span, total_cost).await?);
        body["payments"] = json!({
            "paid_usd": Usd2(current.total.payments.paid_micros),
            "payments": current.total.payments.succeeded,
            "failed": current.total.payments.failed,
            "refunded_usd": Usd2(current.total.payments.refunded_micros),
        });
    }
    Ok(body)
}

/// The period after the report's, projected from the report's own days (no other read): what
/// the next month (week, day) costs at this pace, with the 80% band of `analytics/forecast`.
/// `null` when the period had no usage to project from.
fn next_period(span: &Span, days: &[Bucket], per_day: &[Rollup]) -> Value {
    let tz = &span.period.tz;
    let history = |metric: fn(&Counters) -> i64| -> Vec<(NaiveDate, f64)> {
        days.iter()
            .zip(per_day)
            .map(|(b, r)| (tz.local(b.start).date_naive(), metric(&r.total) as f64))
            .collect()
    };
    let first = tz.local(span.period.end).date_naive();
    let end = match span.kind {
        Kind::Day => first + Duration::days(1),
        Kind::Week => first + Duration::days(7),
        Kind::Month => first
            .checked_add_months(chrono::Months::new(1))
            .unwrap_or(first),
    };
    let ahead = days_left(first, 1.0, end);
    let cost = fit(&history(|c| c.cost_micros), (first, 0.0, 0.0));
    if cost.history_days == 0 {
        return Value::Null;
    }
    let requests = fit(&history(|c| c.requests), (first, 0.0, 0.0));
    let (c, r) = (cost.sum(&ahead), requests.sum(&ahead));
    let micros = |x: f64| Usd2(x.round() as i64);
    json!({
        "period": {"first_day": first.to_string(), "last_day": (end - Duration::days(1)).to_string()},
        "basis_days": cost.history_days,
        "confidence": cost.confidence.as_str(),
        "cost_usd": {"expected": micros(c.expected), "low": micros(c.low), "high": micros(c.high)},
        "requests": {"expected": r.expected.round() as i64, "low": r.low.round() as i64,
            "high": r.high.round() as i64},
    })
}

/// The platform's top users by cost over the period's UTC days (the active-users index is kept
/// per UTC day): one Query per day, each as long as that day's active users — never the idle.
async fn top_users(store: &UsageStore, span: &Span, total: i64) -> Result<Vec<Driver>, ApiError> {
    let first = span.period.start.date_naive();
    let last = (span.period.end - chrono::Duration::seconds(1)).date_naive();
    let days: Vec<NaiveDate> = first.iter_days().take_while(|d| *d <= last).collect();
    let mut sums: BTreeMap<String, Counters> = BTreeMap::new();
    for users in store.active_users(&days).await?.into_values() {
        for u in users {
            let c = sums.entry(u.user_id).or_default();
            c.requests += u.requests;
            c.cost_micros += u.cost_micros;
        }
    }
    Ok(drivers(sums.iter().map(|(u, c)| (u.clone(), c)), total))
}

/// The report as CSV: one row per figure — section, name, metric, value.
fn csv_of(body: &Value) -> String {
    let mut w = csv::Writer::from_writer(vec![]);
    let mut row = |section: &str, name: &str, metric: &str, value: &Value| {
        let v = match value {
            Value::String(s) => s.clone(),
            Value::Null => String::new(),
            other => other.to_string(),
        };
        let _ = w.write_record([section, name, metric, &neutralise(&v)]);
    };
    row("report", "", "period", &body["report"]);
    for section in ["totals", "change_percent"] {
        if let Some(map) = body[section].as_object() {
            for (k, v) in map {
                row(section, "", k, v);
            }
        }
    }
    for d in body["daily"].as_array().into_iter().flatten() {
        for metric in ["requests", "errors", "cost_usd"] {
            row(
                "daily",
                d["date"].as_str().unwrap_or(""),
                metric,
                &d[metric],
            );
        }
    }
    let mut sections: Vec<(String, Value)> = ["top_models", "top_providers", "top_endpoints"]
        .iter()
        .map(|s| (s.to_string(), body[*s].clone()))
        .collect();
    for (key, list) in body["top_tags"].as_object().into_iter().flatten() {
        sections.push((key.clone(), list.clone()));
    }
    if let Some(list) = body.get("top_users") {
        sections.push(("top_users".into(), list.clone()));
    }
    for (section, list) in &sections {
        for d in list.as_array().into_iter().flatten() {
            for metric in ["requests", "cost_usd", "share_percent"] {
                row(
                    section,
                    d["name"].as_str().unwrap_or(""),
                    metric,
                    &d[metric],
                );
            }
        }
    }
    for b in body["budgets"].as_array().into_iter().flatten() {
        for metric in ["percent", "spent", "amount", "unit"] {
            row(
                "budgets",
                b["budget_id"].as_str().unwrap_or(""),
                metric,
                &b[metric],
            );
        }
    }
    for a in body["anomalies"].as_array().into_iter().flatten() {
        row(
            "anomalies",
            a["at"].as_str().unwrap_or(""),
            "message",
            &a["message"],
        );
    }
    let f = &body["forecast"];
    if !f.is_null() {
        let name = f["period"]["first_day"].as_str().unwrap_or("");
        for metric in ["cost_usd", "requests"] {
            for bound in ["expected", "low", "high"] {
                row(
                    "forecast",
                    name,
                    &format!("{metric}_{bound}"),
                    &f[metric][bound],
                );
            }
        }
        row("forecast", name, "confidence", &f["confidence"]);
    }
    for r in body["recommendations"].as_array().into_iter().flatten() {
        row(
            "recommendations",
            r["kind"].as_str().unwrap_or(""),
            "text",
            &r["text"],
        );
    }
    let bytes = w.into_inner().unwrap_or_default();
    String::from_utf8(bytes).unwrap_or_default()
}

fn esc(v: &Value) -> String {
    let text = match v {
        Value::String(s) => s.clone(),
        Value::Null => "–".into(),
        other => other.to_string(),
    };
    crate::notifications::channels::email::escape_html(&text)
}

/// The report as a printable page, and as the body of the report email: tables and bars drawn
/// as cells with widths, every style inline (email clients drop style blocks), no script.
pub fn html_of(body: &Value) -> String {
    const TABLE: &str = "border-collapse:collapse;width:100%;margin:8px 0 16px";
    const CELL: &str = "border-bottom:1px solid #ddd;padding:4px 6px;text-align:left";
    let row = |k: &str, v: &Value| {
        format!(
            "<tr><th style=\"{CELL}\">{}</th><td style=\"{CELL}\">{}</td></tr>",
            esc(&json!(k)),
            esc(v)
        )
    };
    let mut page = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Usage report {r}</title></head>\n\
         <body style=\"font-family:sans-serif;max-width:48rem;margin:2rem auto;padding:0 1rem\">\n<h1>Usage report {r}</h1>\n",
        r = esc(&body["report"])
    );
    page.push_str(&format!("<h2>Totals</h2><table style=\"{TABLE}\">"));
    for (k, v) in body["totals"].as_object().into_iter().flatten() {
        page.push_str(&row(k, v));
    }
    page.push_str(&format!(
        "</table><h2>Against the period before (%)</h2><table style=\"{TABLE}\">"
    ));
    for (k, v) in body["change_percent"].as_object().into_iter().flatten() {
        page.push_str(&row(k, v));
    }
    page.push_str(&format!(
        "</table><h2>Daily requests</h2><table style=\"{TABLE}\">"
    ));
    let daily = body["daily"].as_array().cloned().unwrap_or_default();
    let max = daily
        .iter()
        .filter_map(|d| d["requests"].as_i64())
        .max()
        .unwrap_or(0)
        .max(1);
    for d in &daily {
        let n = d["requests"].as_i64().unwrap_or(0);
        let width = (n * 100 / max).max(1);
        page.push_str(&format!(
            "<tr><td style=\"{CELL};white-space:nowrap\">{}</td><td style=\"{CELL};width:70%\">\
             <table style=\"border-collapse:collapse;width:{width}%\"><tr><td style=\"background:#4a7bd0;height:10px;padding:0\"></td></tr></table>\
             </td><td style=\"{CELL}\">{n}</td></tr>",
            esc(&d["date"]),
        ));
    }
    page.push_str(&format!(
        "</table><p>Peak hour (local): {}</p>",
        esc(&body["peak_hour"])
    ));
    let mut sections: Vec<(Value, String)> = [
        ("top_models", "Top models"),
        ("top_providers", "Top providers"),
        ("top_endpoints", "Top endpoints"),
    ]
    .iter()
    .map(|(s, t)| (body[*s].clone(), t.to_string()))
    .collect();
    for (key, list) in body["top_tags"].as_object().into_iter().flatten() {
        sections.push((list.clone(), format!("Top {}", esc(&json!(key)))));
    }
    if let Some(list) = body.get("top_users") {
        sections.push((list.clone(), "Top users".into()));
    }
    for (list, title) in &sections {
        page.push_str(&format!(
            "<h2>{title}</h2><table style=\"{TABLE}\"><tr><th style=\"{CELL}\">name</th><th style=\"{CELL}\">requests</th>\
             <th style=\"{CELL}\">cost (USD)</th><th style=\"{CELL}\">share %</th></tr>"
        ));
        for d in list.as_array().into_iter().flatten() {
            page.push_str(&format!(
                "<tr><td style=\"{CELL}\">{}</td><td style=\"{CELL}\">{}</td><td style=\"{CELL}\">{}</td><td style=\"{CELL}\">{}</td></tr>",
                esc(&d["name"]),
                esc(&d["requests"]),
                esc(&d["cost_usd"]),
                esc(&d["share_percent"])
            ));
        }
        page.push_str("</table>");
    }
    let budgets = body["budgets"].as_array().cloned().unwrap_or_default();
    if !budgets.is_empty() {
        page.push_str(&format!("<h2>Budgets</h2><table style=\"{TABLE}\">"));
        for b in &budgets {
            let amount = match b["unit"].as_str() {
                Some("usd_micros") => format!(
                    "${:.2} of ${:.2}",
                    b["spent"].as_f64().unwrap_or(0.0) / 1e6,
                    b["amount"].as_f64().unwrap_or(0.0) / 1e6
                ),
                _ => format!("{} of {} credits", b["spent"], b["amount"]),
            };
            page.push_str(&row(
                b["budget_id"].as_str().unwrap_or(""),
                &json!(format!("{}% ({amount})", b["percent"])),
            ));
        }
        page.push_str("</table>");
    }
    let anomalies = body["anomalies"].as_array().cloned().unwrap_or_default();
    if !anomalies.is_empty() {
        page.push_str("<h2>Anomalies</h2><ul>");
        for a in &anomalies {
            page.push_str(&format!(
                "<li>{}: {}</li>",
                esc(&a["at"]),
                esc(&a["message"])
            ));
        }
        page.push_str("</ul>");
    }
    let f = &body["forecast"];
    if !f.is_null() {
        page.push_str(&format!(
            "<h2>Next period at this pace</h2><p>{} to {}: ${} (80% range ${} to ${}), {} requests; \
             {} confidence, from {} days.</p>",
            esc(&f["period"]["first_day"]),
            esc(&f["period"]["last_day"]),
            esc(&f["cost_usd"]["expected"]),
            esc(&f["cost_usd"]["low"]),
            esc(&f["cost_usd"]["high"]),
            esc(&f["requests"]["expected"]),
            esc(&f["confidence"]),
            esc(&f["basis_days"]),
        ));
    }
    page.push_str("<h2>Recommendations</h2><ul>");
    let recs = body["recommendations"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if recs.is_empty() {
        page.push_str("<li>Nothing stands out in this period.</li>");
    }
    for r in &recs {
        page.push_str(&format!("<li>{}</li>", esc(&r["text"])));
    }
    page.push_str("</ul></body></html>\n");
    page
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spend(micros: i64) -> Counters {
        Counters {
            requests: 1,
            cost_micros: micros,
            ..Counters::default()
        }
    }

    #[test]
    fn drivers_past_the_fifth_come_summed_as_other_so_the_rows_add_up() {
        let rows: Vec<(String, Counters)> = (1..=8)
            .map(|i| (format!("m{i}"), spend(i * 1_000_000)))
            .collect();

        let out = drivers(rows.iter().map(|(n, c)| (n.clone(), c)), 36_000_000);

        let names: Vec<&str> = out.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["m8", "m7", "m6", "m5", "m4", "other"]);
        assert_eq!(out[5].values, Some(3));
        assert_eq!(out[5].cost_usd.0, 6_000_000);
        assert_eq!(out.iter().map(|d| d.requests).sum::<i64>(), 8);
    }

    #[test]
    fn five_drivers_or_fewer_have_no_other_row() {
        let rows = [("a".to_owned(), spend(1)), ("b".to_owned(), spend(2))];

        let out = drivers(rows.iter().map(|(n, c)| (n.clone(), c)), 3);

        assert_eq!(out.len(), 2);
        assert!(out.iter().all(|d| d.values.is_none()));
    }
}
