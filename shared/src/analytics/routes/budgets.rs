//! `GET /api/v1/budgets`, `PUT /api/v1/budgets/{id}`, `DELETE /api/v1/budgets/{id}`: a user's
//! budgets (an admin's for any user with `user_id`). The id is the client's name for the budget:
//! a PUT creates it (201) or replaces its definition (200), keeping what already fired this
//! period unless the new definition puts a threshold back above the spend.

use chrono::Utc;
use http::StatusCode;
use lambda_http::Request;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::analytics::budget::{
    Amount, Budget, BudgetPeriod, Filter, Firing, PeriodUsage, DEFAULT_THRESHOLDS, MAX_BUDGETS,
    MAX_THRESHOLD, MAX_THRESHOLDS,
};
use crate::analytics::ingest::rollups_store;
use crate::analytics::money::{parse_usd, Usd4};
use crate::analytics::store::{Scope, UsageStore};
use crate::analytics::zone::Zone;
use crate::platform::app::App;
use crate::platform::auth::Identity;
use crate::platform::error::ApiError;
use crate::platform::handler::http_handler;
use crate::platform::http::{
    authenticate, json, no_content, object_body, path_param, HttpResponse, Params,
};
use crate::seam::budgets::{percent, still_fired};

const MAX_BODY_BYTES: usize = 4 * 1024;
const MAX_ID_CHARS: usize = 64;
const MAX_NAME_CHARS: usize = 200;
/// The largest amount in USD a budget may have.
const MAX_USD: i64 = 1_000_000_000;
/// Rounds of read-modify-write when alerts or other edits change the budgets meanwhile.
const MAX_ROUNDS: usize = 8;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PutBody {
    #[serde(default)]
    amount_usd: Option<serde_json::Number>,
    #[serde(default)]
    amount_credits: Option<i64>,
    #[serde(default)]
    period: Option<String>,
    #[serde(default)]
    tz: Option<String>,
    #[serde(default)]
    thresholds: Option<Vec<i64>>,
    #[serde(default)]
    provider: Option<String>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    endpoint: Option<String>,
}

/// A budget's definition from a PUT body; each problem a 400 naming its field.
struct Definition {
    amount: Amount,
    period: BudgetPeriod,
    tz: String,
    thresholds: Vec<u32>,
    filter: Filter,
}

fn name(field: &str, raw: Option<String>) -> Result<Option<String>, ApiError> {
    match raw {
        None => Ok(None),
        Some(v) if v.trim().is_empty() || v.chars().count() > MAX_NAME_CHARS => {
            Err(ApiError::invalid(
                field,
                format!("{field} must be 1 to {MAX_NAME_CHARS} characters"),
            ))
        }
        Some(v) if v.chars().any(char::is_control) => Err(ApiError::invalid(
            field,
            format!("{field} must not contain control characters"),
        )),
        Some(v) => Ok(Some(v)),
    }
}

/// The scope of a budget or rule: a provider, a model (optionally of one provider) or an
/// endpoint; each name checked, and endpoint alone (rollups count no model by endpoint).
pub(crate) fn filter_of(
    provider: Option<String>,
    model: Option<String>,
    endpoint: Option<String>,
) -> Result<Filter, ApiError> {
    let filter = Filter {
        provider: name("provider", provider)?,
        model: name("model", model)?,
        endpoint: name("endpoint", endpoint)?,
    };
    if filter.endpoint.is_some() && (filter.provider.is_some() || filter.model.is_some()) {
        return Err(ApiError::invalid(
            "endpoint",
            "endpoint does not combine with provider or model: usage is not counted per both",
        ));
    }
    Ok(filter)
}

/// Whose budgets a request is about: the caller's, a user's (`user_id=`, admins), or the
/// platform's system-wide budgets (`system=true`, admins), with the verified caller.
pub(crate) fn owner(app: &App, req: &Request) -> Result<(Scope, Identity), ApiError> {
    owner_with(app, req, &[]).map(|(owner, caller, _)| (owner, caller))
}

/// [`owner`] for a route that also takes the query parameters `extra`, returned parsed.
pub(crate) fn owner_with(
    app: &App,
    req: &Request,
    extra: &[&str],
) -> Result<(Scope, Identity, Params), ApiError> {
    let caller = authenticate(app, req)?;
    let mut allowed = vec!["user_id", "system"];
    allowed.extend_from_slice(extra);
    let params = Params::parse(req, &allowed)?;
    if params.boolean("system")? == Some(true) {
        if params.get("user_id").is_some() {
            return Err(ApiError::invalid(
                "system",
                "system=true is the platform as a whole; it does not combine with user_id",
            ));
        }
        if !caller.is_admin() {
            return Err(ApiError::Forbidden(
                "only an admin may read or manage the platform's figures and budgets".into(),
            ));
        }
        return Ok((Scope::System, caller, params));
    }
    let user = params.target_user(&caller)?;
    Ok((Scope::User(user), caller, params))
}

fn definition(body: PutBody, owner: &Scope) -> Result<Definition, ApiError> {
    let amount = match (body.amount_usd, body.amount_credits) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid(
                "amount_usd",
                "give amount_usd or amount_credits, not both",
            ))
        }
        (None, None) => {
            return Err(ApiError::invalid(
                "amount_usd",
                "amount_usd or amount_credits is required",
            ))
        }
        (Some(usd), None) => {
            let micros = parse_usd(&usd, MAX_USD)
                .map_err(|why| ApiError::invalid("amount_usd", format!("amount_usd {why}")))?;
            if micros <= 0 {
                return Err(ApiError::invalid(
                    "amount_usd",
                    "amount_usd must be greater than 0",
                ));
            }
            Amount::UsdMicros(micros)
        }
        (None, Some(credits)) => {
            if credits <= 0 {
                return Err(ApiError::invalid(
                    "amount_credits",
                    "amount_credits must be greater than 0",
                ));
            }
            Amount::Credits(credits)
        }
    };
    let period = match body.period.as_deref() {
        None => BudgetPeriod::Month,
        Some(raw) => BudgetPeriod::parse(raw)
            .ok_or_else(|| ApiError::invalid("period", "period must be month, week or day"))?,
    };
    let tz = match body.tz {
        None => Zone::utc(),
        Some(raw) => Zone::parse(&raw).ok_or_else(|| {
            ApiError::invalid(
                "tz",
                format!("tz must be an IANA time zone such as Europe/Paris, not {raw:?}"),
            )
        })?,
    };
    // Periods are cut on quarter-hour rollups: every zone in use today qualifies.
    crate::analytics::period::check_zone_quarters(&tz, Utc::now())?;
    let thresholds = match body.thresholds {
        None => DEFAULT_THRESHOLDS.to_vec(),
        Some(list) => {
            if list.is_empty() || list.len() > MAX_THRESHOLDS {
                return Err(ApiError::invalid(
                    "thresholds",
                    format!("thresholds must hold 1 to {MAX_THRESHOLDS} percentages"),
                ));
            }
            let mut out = vec![];
            for t in list {
                match u32::try_from(t) {
                    Ok(t) if (1..=MAX_THRESHOLD).contains(&t) => out.push(t),
                    _ => {
                        return Err(ApiError::invalid(
                            "thresholds",
                            format!("each threshold must be 1 to {MAX_THRESHOLD} percent, not {t}"),
                        ))
                    }
                }
            }
            out.sort_unstable();
            out.dedup();
            out
        }
    };
    let filter = filter_of(body.provider, body.model, body.endpoint)?;
    if matches!(owner, Scope::System) && filter.endpoint.is_some() {
        return Err(ApiError::invalid(
            "endpoint",
            "system-wide usage is counted per provider and model, not per endpoint",
        ));
    }
    Ok(Definition {
        amount,
        period,
        tz: tz.name().to_owned(),
        thresholds,
        filter,
    })
}

/// The `{id}` of a budget or rule: the client's own name for it.
pub(crate) fn item_id(req: &Request) -> Result<String, ApiError> {
    let id = path_param(req, "id")?;
    let ok = !id.is_empty()
        && id.len() <= MAX_ID_CHARS
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if id == "preview" {
        // `POST .../preview` owns that path segment.
        return Err(ApiError::invalid("id", "id must not be \"preview\""));
    }
    if ok {
        Ok(id)
    } else {
        Err(ApiError::invalid(
            "id",
            format!("id must be 1 to {MAX_ID_CHARS} letters, digits, - or _"),
        ))
    }
}

#[derive(Serialize)]
struct View {
    id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    amount_usd: Option<Usd4>,
    #[serde(skip_serializing_if = "Option::is_none")]
    amount_credits: Option<i64>,
    period: &'static str,
    tz: String,
    thresholds: Vec<u32>,
    #[serde(flatten)]
    filter: Filter,
    created_at: String,
    updated_at: String,
    current: Value,
}

async fn view(
    store: &UsageStore,
    owner: &Scope,
    usage: &mut PeriodUsage,
    b: &Budget,
) -> Result<View, ApiError> {
    let now = Utc::now();
    let (start, end) = b.window(now);
    let spent = b.spent(usage.of(store, owner, (start, end), false).await?);
    let stamp = |t: chrono::DateTime<Utc>| t.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let mut current = json!({
        "period_start": stamp(start),
        "period_end": stamp(end),
        "percent": percent(spent, b.amount.value()),
        "thresholds_fired": b.fired_in(start),
    });
    let (amount_usd, amount_credits) = match b.amount {
        Amount::UsdMicros(v) => {
            current["spent_usd"] = json!(Usd4(spent));
            (Some(Usd4(v)), None)
        }
        Amount::Credits(v) => {
            current["spent_credits"] = json!(spent);
            (None, Some(v))
        }
    };
    Ok(View {
        id: b.id.clone(),
        amount_usd,
        amount_credits,
        period: b.period.as_str(),
        tz: b.tz.clone(),
        thresholds: b.thresholds.clone(),
        filter: b.filter.clone(),
        created_at: stamp(b.created_at),
        updated_at: stamp(b.updated_at),
        current,
    })
}

http_handler!(
    /// `GET /api/v1/budgets` — the budgets with this period's spend.
    list => list_budgets
);

async fn list_budgets(app: &App, req: &Request) -> Result<HttpResponse, ApiError> {
    let (owner, _) = owner(app, req)?;
    let store = rollups_store(app).await?;
    let book = store.budgets(&owner, false).await?;
    let mut usage = PeriodUsage::default();
    let mut views = vec![];
    for b in &book.budgets {
        views.push(view(&store, &owner, &mut usage, b).await?);
    }
    json(
        app,
        StatusCode::OK,
        &json!({"total": views.len(), "budgets": views}),
    )
}

http_handler!(
    /// `PUT /api/v1/budgets/{id}` — 201 created or 200 replaced, with the budget.
    put => put_budget
);

async fn put_budget(app: &App, req: &Request) -> Result<HttpResponse, ApiError> {
    let (owner, caller) = owner(app, req)?;
    let id = item_id(req)?;
    let def = definition(object_body(req, MAX_BODY_BYTES)?, &owner)?;
    let notify = matches!(owner, Scope::System).then(|| caller.user_id.to_string());
    let store = rollups_store(app).await?;
    for _ in 0..MAX_ROUNDS {
        let book = store.budgets(&owner, true).await?;
        let mut budgets = book.budgets;
        let now = Utc::now();
        let existing = budgets.iter().position(|b| b.id == id);
        let created = existing.is_none();
        let budget = match existing {
            None => {
                if budgets.len() >= MAX_BUDGETS {
                    return Err(ApiError::Conflict(format!(
                        "a user may have at most {MAX_BUDGETS} budgets; delete one first"
                    )));
                }
                Budget {
                    id: id.clone(),
                    amount: def.amount,
                    period: def.period,
                    tz: def.tz.clone(),
                    thresholds: def.thresholds.clone(),
                    filter: def.filter.clone(),
                    created_at: now,
                    updated_at: now,
                    // A new budget's jobs must not share ids with a deleted one of the same name.
                    rev: now.timestamp_millis(),
                    fired_period: None,
                    fired: vec![],
                    pending: vec![],
                    notify: notify.clone(),
                }
            }
            Some(i) => {
                let old = &budgets[i];
                let mut b = Budget {
                    amount: def.amount,
                    period: def.period,
                    tz: def.tz.clone(),
                    thresholds: def.thresholds.clone(),
                    filter: def.filter.clone(),
                    updated_at: now,
                    rev: old.rev + 1,
                    notify: notify.clone(),
                    ..old.clone()
                };
                // What fired stays fired only while the new definition still has it reached.
                let (start, end) = b.window(now);
                let fired = b.fired_in(start).to_vec();
                b.fired = if fired.is_empty() {
                    vec![]
                } else {
                    let mut usage = PeriodUsage::default();
                    let spent = b.spent(usage.of(&store, &owner, (start, end), true).await?);
                    still_fired(&fired, spent, b.amount.value(), &b.thresholds)
                };
                b.fired_period = (!b.fired.is_empty()).then_some(start);
                b
            }
        };
        match existing {
            None => budgets.push(budget.clone()),
            Some(i) => budgets[i] = budget.clone(),
        }
        if store
            .save_budgets(&owner, book.version, &budgets, &[])
            .await?
        {
            let mut usage = PeriodUsage::default();
            let status = if created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            return json(
                app,
                status,
                &view(&store, &owner, &mut usage, &budget).await?,
            );
        }
    }
    Err(crate::platform::dynamodb::StoreError::Contention(format!("budgets of {owner:?}")).into())
}

http_handler!(
    /// `DELETE /api/v1/budgets/{id}` — 204; the budget stops alerting at once.
    delete => delete_budget
);

async fn delete_budget(app: &App, req: &Request) -> Result<HttpResponse, ApiError> {
    let (owner, _) = owner(app, req)?;
    let id = item_id(req)?;
    let store = rollups_store(app).await?;
    for _ in 0..MAX_ROUNDS {
        let book = store.budgets(&owner, true).await?;
        let mut budgets = book.budgets;
        let before = budgets.len();
        budgets.retain(|b| b.id != id);
        if budgets.len() == before {
            return Err(ApiError::NotFound("budget not found".into()));
        }
        if store
            .save_budgets(&owner, book.version, &budgets, &[])
            .await?
        {
            return Ok(no_content(app));
        }
    }
    Err(crate::platform::dynamodb::StoreError::Contention(format!("budgets of {owner:?}")).into())
}

/// How far back a preview looks.
pub const PREVIEW_DAYS: i64 = 90;

/// Replays `budget` hour by hour over the last [`PREVIEW_DAYS`] days (from the start of the
/// period that day falls in): the firings it would have sent, as ingest evaluates them, with the
/// thresholds one hour passed together in one firing. One read of the span's hour rollups.
pub async fn replay(
    store: &UsageStore,
    owner: &Scope,
    budget: &Budget,
    now: chrono::DateTime<Utc>,
) -> Result<(Vec<Firing>, usize), ApiError> {
    use chrono::{Duration, DurationRound};
    let end = now.duration_trunc(Duration::hours(1)).unwrap_or(now) + Duration::hours(1);
    let (first, _) = budget.window(now - Duration::days(PREVIEW_DAYS));
    // Whole UTC hours: in a zone off the hour, each hour counts in the period holding its
    // midpoint (the replay is a preview; the live evaluation reads exact quarter hours).
    let first = first.duration_trunc(Duration::hours(1)).unwrap_or(first);
    let mut hours = vec![];
    let mut t = first;
    while t < end {
        hours.push(t);
        t += Duration::hours(1);
    }
    let span = crate::analytics::period::Cover {
        hours: hours.clone(),
        ..Default::default()
    };
    let buckets = store.rollups(owner, &span).await?;
    let mut firings = vec![];
    let mut periods = 0;
    let mut window: Option<(chrono::DateTime<Utc>, chrono::DateTime<Utc>)> = None;
    let mut period = crate::analytics::rollup::Rollup::default();
    let mut fired: Vec<u32> = vec![];
    for h in hours {
        let mid = h + Duration::minutes(30);
        if window.is_none_or(|(_, e)| mid >= e) {
            window = Some(budget.window(mid));
            period = Default::default();
            fired.clear();
            periods += 1;
        }
        let Some((start, period_end)) = window else {
            continue;
        };
        let Some(r) = buckets.get(&crate::analytics::period::hour_key(h)) else {
            continue;
        };
        period.merge(r);
        let spent = budget.spent(&period);
        let crossed =
            crate::seam::budgets::crossed(spent, budget.amount.value(), &budget.thresholds, &fired);
        if crossed.is_empty() {
            continue;
        }
        fired.extend(&crossed);
        let (top_models, top_providers, top_endpoints) = budget.tops(&period);
        firings.push(Firing {
            rev: budget.rev,
            period_start: start,
            period_end,
            at: (h + Duration::hours(1)).min(now),
            thresholds: crossed,
            spent,
            amount: budget.amount,
            top_models,
            top_providers,
            top_endpoints,
        });
    }
    Ok((firings, periods))
}

http_handler!(
    /// `POST /api/v1/budgets/preview` — a budget's definition in the body (as for a PUT): the
    /// notifications it would have sent over the last 90 days; nothing is stored.
    preview => preview_budget
);

async fn preview_budget(app: &App, req: &Request) -> Result<HttpResponse, ApiError> {
    let (owner, caller) = owner(app, req)?;
    let def = definition(object_body(req, MAX_BODY_BYTES)?, &owner)?;
    let now = Utc::now();
    let budget = Budget {
        id: "preview".into(),
        amount: def.amount,
        period: def.period,
        tz: def.tz,
        thresholds: def.thresholds,
        filter: def.filter,
        created_at: now,
        updated_at: now,
        rev: 0,
        fired_period: None,
        fired: vec![],
        pending: vec![],
        notify: None,
    };
    let store = rollups_store(app).await?;
    let (firings, periods) = replay(&store, &owner, &budget, now).await?;
    let user = match &owner {
        Scope::User(u) => u.clone(),
        Scope::System => caller.user_id.clone(),
    };
    let stamp = |t: chrono::DateTime<Utc>| t.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let notifications: Vec<Value> = firings
        .iter()
        .map(|f| {
            let job = crate::seam::budgets::job(&user, &budget, f);
            json!({
                "at": stamp(f.at),
                "type": job.kind,
                "title": job.title,
                "message": job.message,
                "data": job.data,
            })
        })
        .collect();
    let mut usage = PeriodUsage::default();
    json(
        app,
        StatusCode::OK,
        &json!({
            "budget": view(&store, &owner, &mut usage, &budget).await?,
            "from": stamp(budget.window(now - chrono::Duration::days(PREVIEW_DAYS)).0),
            "to": stamp(now),
            "periods": periods,
            "notifications": notifications,
            "items_read": store.stats().items_read,
        }),
    )
}

http_handler!(
    /// `GET /api/v1/budgets/{id}` — one budget with this period's spend.
    get => get_budget
);

async fn get_budget(app: &App, req: &Request) -> Result<HttpResponse, ApiError> {
    let (owner, _) = owner(app, req)?;
    let id = item_id(req)?;
    let store = rollups_store(app).await?;
    let book = store.budgets(&owner, false).await?;
    let budget = book
        .budgets
        .iter()
        .find(|b| b.id == id)
        .ok_or_else(|| ApiError::NotFound("budget not found".into()))?;
    let mut usage = PeriodUsage::default();
    json(
        app,
        StatusCode::OK,
        &view(&store, &owner, &mut usage, budget).await?,
    )
}
