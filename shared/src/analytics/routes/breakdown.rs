//! `GET analytics/breakdown?group_by=…`: the period's usage split by one dimension — provider,
//! model, endpoint or an attributed tag — optionally within a `filter`, top values by cost and
//! the rest as `other`.

use super::*;

#[derive(Serialize)]
struct BreakdownOut {
    period: PeriodOut,
    group_by: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    filter: Option<String>,
    total: Usage3,
    groups: Vec<GroupOut>,
    total_groups: usize,
}

http_handler!(
    /// `GET /api/v1/analytics/breakdown?group_by=provider|model|endpoint|tag:<key>`
    breakdown => get_breakdown
);

async fn get_breakdown(app: &App, req: &Request) -> Result<HttpResponse, ApiError> {
    let read = open_read(app, req, &GROUPING).await?;
    let Some(dim) = read.dims.group_by.clone() else {
        return Err(ApiError::invalid(
            "group_by",
            "group_by is required: provider, model, endpoint or tag:<key>",
        ));
    };
    let limit = read.group_limit()?;
    let total = read
        .load(&Scope::User(read.user()?), &read.whole())
        .await?
        .total;
    let groups = Groups::rank(&total, &dim, limit);
    let body = BreakdownOut {
        period: period_json(&read.period),
        group_by: dim.label(),
        filter: read.params.get("filter").map(str::to_owned),
        total: usage3(&total.total),
        total_groups: dim.values(&total).len(),
        groups: groups_out(&groups, total.total.cost_micros),
    };
    read.log("breakdown");
    json(app, StatusCode::OK, &body)
}
