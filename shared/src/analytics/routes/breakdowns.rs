//! The per-dimension reads: `providers`, `top-models` and `endpoints`.

use super::*;

#[derive(Serialize)]
struct ProviderOut {
    provider: String,
    requests: i64,
    credits: i64,
    cost_usd: Usd2,
    cost_percentage: Fixed,
    avg_cost_per_request: Usd4,
    models_used: Vec<String>,
}

#[derive(Serialize)]
struct ProvidersOut {
    period_days: i64,
    providers: Vec<ProviderOut>,
    total_providers: usize,
}

#[derive(Serialize)]
struct ModelOut {
    model: String,
    provider: String,
    model_name: String,
    requests: i64,
    credits: i64,
    cost_usd: Usd2,
    avg_cost_per_request: Usd4,
}

#[derive(Serialize)]
struct TopModelsOut {
    period_days: i64,
    limit: usize,
    models: Vec<ModelOut>,
    total: usize,
}

#[derive(Serialize)]
struct EndpointsOut {
    period_days: i64,
    endpoints: Vec<DimensionRow>,
    total_endpoints: usize,
}

http_handler!(
    /// `GET /api/v1/analytics/providers`
    providers => get_providers
);

async fn get_providers(app: &App, req: &Request) -> Result<HttpResponse, ApiError> {
    let read = open_read(app, req, &[FILTER]).await?;
    read.dims.require(Facet::Providers, "providers")?;
    let total = read
        .load(&Scope::User(read.user()?), &read.whole())
        .await?
        .total;
    let mut list: Vec<(&String, &Counters)> = total.providers.iter().collect();
    list.sort_by(|a, b| {
        b.1.cost_micros
            .cmp(&a.1.cost_micros)
            .then(b.1.requests.cmp(&a.1.requests))
            .then(a.0.cmp(b.0))
    });
    let all_cost = total.total.cost_micros;
    let providers: Vec<ProviderOut> = list
        .iter()
        .map(|(p, c)| ProviderOut {
            provider: (*p).clone(),
            requests: c.requests,
            credits: c.credits,
            cost_usd: Usd2(c.cost_micros),
            cost_percentage: cost_share(c.cost_micros, all_cost),
            avg_cost_per_request: Usd4(avg_micros(c.cost_micros, c.requests)),
            models_used: total
                .models
                .keys()
                .filter(|(mp, _)| mp == *p)
                .map(|(_, m)| m.clone())
                .collect(),
        })
        .collect();
    let body = ProvidersOut {
        period_days: read.period.days,
        total_providers: providers.len(),
        providers,
    };
    read.log("providers");
    json(app, StatusCode::OK, &body)
}

http_handler!(
    /// `GET /api/v1/analytics/top-models?limit=1..100`
    top_models => get_top_models
);

async fn get_top_models(app: &App, req: &Request) -> Result<HttpResponse, ApiError> {
    let read = open_read(app, req, &["limit", FILTER]).await?;
    read.dims.require(Facet::Models, "top-models")?;
    let limit = read.params.integer("limit", 1, 100)?.unwrap_or(10) as usize;
    let total = read
        .load(&Scope::User(read.user()?), &read.whole())
        .await?
        .total;
    let mut list: Vec<(&(String, String), &Counters)> = total.models.iter().collect();
    list.sort_by(|a, b| {
        b.1.cost_micros
            .cmp(&a.1.cost_micros)
            .then(b.1.requests.cmp(&a.1.requests))
            .then(a.0.cmp(b.0))
    });
    let models: Vec<ModelOut> = list
        .iter()
        .take(limit)
        .map(|((p, m), c)| ModelOut {
            model: model_key(p, m),
            provider: p.clone(),
            model_name: m.clone(),
            requests: c.requests,
            credits: c.credits,
            cost_usd: Usd2(c.cost_micros),
            avg_cost_per_request: Usd4(avg_micros(c.cost_micros, c.requests)),
        })
        .collect();
    let body = TopModelsOut {
        period_days: read.period.days,
        limit,
        models,
        total: list.len(),
    };
    read.log("top-models");
    json(app, StatusCode::OK, &body)
}

http_handler!(
    /// `GET /api/v1/analytics/endpoints`
    endpoints => get_endpoints
);

async fn get_endpoints(app: &App, req: &Request) -> Result<HttpResponse, ApiError> {
    let read = open_read(app, req, &[FILTER]).await?;
    read.dims.require(Facet::Endpoints, "endpoints")?;
    let total = read
        .load(&Scope::User(read.user()?), &read.whole())
        .await?
        .total;
    let mut list: Vec<(&String, &Counters)> = total.endpoints.iter().collect();
    list.sort_by(|a, b| b.1.requests.cmp(&a.1.requests).then(a.0.cmp(b.0)));
    let rows: Vec<DimensionRow> = list
        .iter()
        .map(|(e, c)| dimension_row(None, Some((*e).clone()), c, total.endpoint_latency.get(*e)))
        .collect();
    let body = EndpointsOut {
        period_days: read.period.days,
        endpoints: rows,
        total_endpoints: list.len(),
    };
    read.log("endpoints");
    json(app, StatusCode::OK, &body)
}
