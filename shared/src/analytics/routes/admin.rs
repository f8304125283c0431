//! The admin reads: `admin/analytics/overview` and `admin/analytics/top-users`.

use super::*;

/// Active users and top users come from the day index of user rollups, i.e. whole UTC days;
/// the response names the days it used.
fn utc_days(p: &Period) -> Vec<NaiveDate> {
    let mut d = p.start.date_naive();
    let mut out = vec![];
    while d
        .and_hms_opt(0, 0, 0)
        .map(|t| t.and_utc() < p.end)
        .unwrap_or(false)
    {
        out.push(d);
        d += Duration::days(1);
    }
    out
}

#[derive(Serialize)]
struct AdminTotals {
    requests: i64,
    errors: i64,
    error_rate: Fixed,
    credits: i64,
    cost_usd: Usd2,
    input_tokens: i64,
    output_tokens: i64,
    payments: i64,
    paid_usd: Usd2,
    refunded_usd: Usd2,
}

#[derive(Serialize)]
struct AdminOverviewOut {
    period: PeriodOut,
    totals: AdminTotals,
    /// Counts only, so plain JSON is fine here.
    active_users: Value,
    by_provider: BTreeMap<String, Usage3>,
    by_model: BTreeMap<String, Usage3>,
}

#[derive(Serialize)]
struct TopUser<'a> {
    user_id: &'a str,
    requests: i64,
    cost_usd: Usd2,
}

#[derive(Serialize)]
struct TopUsersOut<'a> {
    period: PeriodOut,
    basis: &'static str,
    by: &'a str,
    limit: usize,
    users: Vec<TopUser<'a>>,
    total_users: usize,
}

http_handler!(
    /// `GET /api/v1/admin/analytics/overview` (admin)
    admin_overview => get_admin_overview
);

async fn get_admin_overview(app: &App, req: &Request) -> Result<HttpResponse, ApiError> {
    let read = open_read(app, req, &[]).await?;
    read.caller.require_any(&[Role::Admin])?;
    if read.params.get("user_id").is_some() {
        return Err(ApiError::invalid(
            "user_id",
            "the overview is system-wide; use the user routes with user_id",
        ));
    }
    let total = read.load(&Scope::System, &read.whole()).await?.total;
    let days = utc_days(&read.period);
    let active = read.store.active_users(&days).await?;
    let mut all_users = BTreeSet::new();
    let mut weekly: BTreeMap<NaiveDate, BTreeSet<&str>> = BTreeMap::new();
    let mut monthly: BTreeMap<String, BTreeSet<&str>> = BTreeMap::new();
    let mut daily = vec![];
    for (day, users) in &active {
        use chrono::Datelike;
        let monday = *day - Duration::days(i64::from(day.weekday().num_days_from_monday()));
        for active in users {
            let u = &active.user_id;
            all_users.insert(u.as_str());
            weekly.entry(monday).or_default().insert(u.as_str());
            monthly
                .entry(day.format("%Y-%m").to_string())
                .or_default()
                .insert(u.as_str());
        }
        daily.push(json!({"date": day.to_string(), "users": users.len()}));
    }
    let t = &total.total;
    let body = AdminOverviewOut {
        period: period_json(&read.period),
        totals: AdminTotals {
            requests: t.requests,
            errors: t.errors,
            error_rate: Fixed(per_request(t.errors, t.requests), 4),
            credits: t.credits,
            cost_usd: Usd2(t.cost_micros),
            input_tokens: t.input_tokens,
            output_tokens: t.output_tokens,
            payments: total.payments.succeeded,
            paid_usd: Usd2(total.payments.paid_micros),
            refunded_usd: Usd2(total.payments.refunded_micros),
        },
        active_users: json!({
            "basis": "utc_days",
            "from": days.first().map(|d| d.to_string()),
            "to": days.last().map(|d| d.to_string()),
            "distinct": all_users.len(),
            "daily": daily,
            "weekly": weekly.iter().map(|(w, u)| json!({"week": w.to_string(), "users": u.len()})).collect::<Vec<_>>(),
            "monthly": monthly.iter().map(|(m, u)| json!({"month": m, "users": u.len()})).collect::<Vec<_>>(),
        }),
        by_provider: by_provider(&total),
        by_model: by_model(&total),
    };
    read.log("admin-overview");
    json(app, StatusCode::OK, &body)
}

http_handler!(
    /// `GET /api/v1/admin/analytics/top-users?by=cost|requests&limit=1..100` (admin)
    admin_top_users => get_admin_top_users
);

async fn get_admin_top_users(app: &App, req: &Request) -> Result<HttpResponse, ApiError> {
    let read = open_read(app, req, &["by", "limit"]).await?;
    read.caller.require_any(&[Role::Admin])?;
    if read.params.get("user_id").is_some() {
        return Err(ApiError::invalid(
            "user_id",
            "top-users ranks every user; user_id does not apply",
        ));
    }
    let by = RankBy::parse(read.params.get("by"))?;
    let limit = read.params.count("limit", 1, 100, 10)?;
    let days = utc_days(&read.period);
    let active = read.store.active_users(&days).await?;
    let mut per_user: BTreeMap<&str, UserFigures> = BTreeMap::new();
    for users in active.values() {
        for u in users {
            let e = per_user.entry(u.user_id.as_str()).or_default();
            e.requests += u.requests;
            e.cost_micros += u.cost_micros;
        }
    }
    let mut ranked: Vec<_> = per_user.into_iter().collect();
    ranked.sort_by(|a, b| by.key(&b.1).cmp(&by.key(&a.1)).then(a.0.cmp(b.0)));
    let users: Vec<TopUser> = ranked
        .iter()
        .take(limit)
        .map(|(u, f)| TopUser {
            user_id: u,
            requests: f.requests,
            cost_usd: Usd2(f.cost_micros),
        })
        .collect();
    let body = TopUsersOut {
        period: period_json(&read.period),
        basis: "utc_days",
        by: by.as_str(),
        limit,
        users,
        total_users: ranked.len(),
    };
    read.log("admin-top-users");
    json(app, StatusCode::OK, &body)
}

/// What top-users ranks by (`by`): cost first, requests breaking ties, or the other way round.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RankBy {
    Cost,
    Requests,
}

impl RankBy {
    fn parse(raw: Option<&str>) -> Result<Self, ApiError> {
        match raw.unwrap_or("cost") {
            "cost" => Ok(RankBy::Cost),
            "requests" => Ok(RankBy::Requests),
            other => Err(ApiError::invalid(
                "by",
                format!("by must be cost or requests, not {other:?}"),
            )),
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            RankBy::Cost => "cost",
            RankBy::Requests => "requests",
        }
    }

    fn key(self, f: &UserFigures) -> (i64, i64) {
        match self {
            RankBy::Cost => (f.cost_micros, f.requests),
            RankBy::Requests => (f.requests, f.cost_micros),
        }
    }
}

/// One user's figures over the period.
#[derive(Clone, Copy, Debug, Default)]
struct UserFigures {
    requests: i64,
    cost_micros: i64,
}
