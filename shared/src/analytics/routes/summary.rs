//! `GET analytics/summary`: the period's usage, payments and credit balance.

use super::*;

#[derive(Serialize)]
struct UsageOut {
    total_requests: i64,
    successful_requests: i64,
    failed_requests: i64,
    error_rate: Fixed,
    total_credits: i64,
    total_cost_usd: Usd2,
    avg_credits_per_request: Fixed,
    avg_cost_per_request_usd: Usd4,
    input_tokens: i64,
    output_tokens: i64,
}

#[derive(Serialize)]
struct PaymentsOut {
    total_paid_usd: Usd2,
    total_credits_purchased: i64,
    payment_count: i64,
    failed_payments: i64,
    refunds: i64,
    refunded_usd: Usd2,
}

#[derive(Serialize)]
struct SummaryOut {
    period: PeriodOut,
    usage: UsageOut,
    payments: PaymentsOut,
    credit_balance: i64,
    /// Left out when a `filter` cannot split usage by provider (an endpoint filter).
    #[serde(skip_serializing_if = "Option::is_none")]
    by_provider: Option<BTreeMap<String, Usage3>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    by_model: Option<BTreeMap<String, Usage3>>,
    by_day: BTreeMap<String, Usage3>,
    #[serde(skip_serializing_if = "Option::is_none")]
    filter: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    group_by: Option<String>,
    /// With `group_by`: the top values, then `other` and `untagged`.
    #[serde(skip_serializing_if = "Option::is_none")]
    groups: Option<Vec<GroupOut>>,
}

http_handler!(
    /// `GET /api/v1/analytics/summary`
    summary => get_summary
);

async fn get_summary(app: &App, req: &Request) -> Result<HttpResponse, ApiError> {
    let read = open_read(app, req, &GROUPING).await?;
    let limit = read.group_limit()?;
    let user = read.user()?;
    let days = read.period.buckets(Granularity::Day);
    let loaded = read.load(&Scope::User(user.clone()), &days).await?;
    let (total, per_day) = (loaded.total, loaded.per_bucket);
    let credits = read.store.credit_totals(&user).await?;
    let t = &total.total;
    let body = SummaryOut {
        period: period_json(&read.period),
        usage: UsageOut {
            total_requests: t.requests,
            successful_requests: t.requests - t.errors,
            failed_requests: t.errors,
            error_rate: Fixed(per_request(t.errors, t.requests), 4),
            total_credits: t.credits,
            total_cost_usd: Usd2(t.cost_micros),
            avg_credits_per_request: Fixed(per_request(t.credits, t.requests), 2),
            avg_cost_per_request_usd: Usd4(avg_micros(t.cost_micros, t.requests)),
            input_tokens: t.input_tokens,
            output_tokens: t.output_tokens,
        },
        payments: PaymentsOut {
            total_paid_usd: Usd2(total.payments.paid_micros),
            total_credits_purchased: total.payments.credits_purchased,
            payment_count: total.payments.succeeded,
            failed_payments: total.payments.failed,
            refunds: total.payments.refunds,
            refunded_usd: Usd2(total.payments.refunded_micros),
        },
        credit_balance: credits.balance(),
        by_provider: read
            .dims
            .keeps(Facet::Providers)
            .then(|| by_provider(&total)),
        by_model: read.dims.keeps(Facet::Models).then(|| by_model(&total)),
        by_day: days
            .iter()
            .zip(&per_day)
            .filter(|(_, r)| r.total.requests > 0)
            .map(|(b, r)| (b.label.clone(), usage3(&r.total)))
            .collect(),
        filter: read.params.get("filter").map(str::to_owned),
        group_by: read.dims.group_by.as_ref().map(Dimension::label),
        groups: read
            .dims
            .group_by
            .as_ref()
            .map(|dim| groups_out(&Groups::rank(&total, dim, limit), total.total.cost_micros)),
    };
    read.log("summary");
    json(app, StatusCode::OK, &body)
}

// ---------------------------------------------------------------- time series
