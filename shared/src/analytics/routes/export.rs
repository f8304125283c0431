//! `GET analytics/export/csv` and `export/json`: the raw events, page by page behind a sealed
//! cursor, never truncated.

use super::*;
use crate::analytics::dimension::Filter;
use crate::analytics::store::events::RequestRecord;

/// Rows per export page: well under Lambda's 6 MB response limit and its timeout.
pub const EXPORT_PAGE_ROWS: i64 = 5000;

#[derive(Serialize, serde::Deserialize)]
struct ExportPosition {
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    after: String,
}

struct ExportPage {
    period: Period,
    rows: Vec<RequestRecord>,
    next: Option<String>,
}

async fn export_page(app: &App, req: &Request) -> Result<ExportPage, ApiError> {
    let mut read = open_read(app, req, &["cursor", "limit", FILTER]).await?;
    let user = read.user()?;
    let limit = read
        .params
        .integer("limit", 1, EXPORT_PAGE_ROWS)?
        .unwrap_or(EXPORT_PAGE_ROWS) as usize;
    let after = match read.params.get("cursor") {
        None => None,
        Some(c) => {
            if ["days", "start", "end"]
                .iter()
                .any(|p| read.params.get(p).is_some())
            {
                return Err(ApiError::invalid(
                    "cursor",
                    "a cursor already fixes the period; send it without days, start or end",
                ));
            }
            let pos: ExportPosition =
                cursor::open(&app.config().cursor_secret, "export", &user, c)?;
            read.period.start = pos.start;
            read.period.end = pos.end;
            Some(pos.after)
        }
    };
    let page = read
        .store
        .events_page(
            &user,
            read.period.start,
            read.period.end,
            after.as_deref(),
            limit,
        )
        .await?;
    // Filtered after the page is read: a page may hold fewer rows than `limit` (even none)
    // and still have a next cursor; the cursor moves over what was read, so nothing is skipped.
    let rows = match &read.dims.filter {
        None => page.rows,
        Some(f) => page.rows.into_iter().filter(|r| matches(f, r)).collect(),
    };
    let next = match page.next {
        None => None,
        Some(after) => Some(cursor::seal(
            &app.config().cursor_secret,
            "export",
            &user,
            &ExportPosition {
                start: read.period.start,
                end: read.period.end,
                after,
            },
        )?),
    };
    read.log("export");
    Ok(ExportPage {
        rows,
        next,
        period: read.period,
    })
}

/// Whether the raw event `r` is in the usage `f` names (any tag may be filtered here, but the
/// filter accepts only attributed keys, so exports and rollups agree on what a filter means).
fn matches(f: &Filter, r: &RequestRecord) -> bool {
    match &f.dimension {
        Dimension::Provider => r.provider == f.value,
        Dimension::Model => model_key(&r.provider, &r.model) == f.value,
        Dimension::Endpoint => r.endpoint == f.value,
        Dimension::Tag(k) => r.tags.get(k) == Some(&f.value),
    }
}

/// A cell a spreadsheet would run as a formula gets a leading `'` (OWASP CSV injection).
pub fn neutralise(cell: &str) -> String {
    match cell.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{cell}"),
        _ => cell.to_owned(),
    }
}

fn with_next(mut response: HttpResponse, req: &Request, next: Option<&str>) -> HttpResponse {
    if let Some(c) = next {
        let path = req.uri().path().to_owned();
        if let Ok(v) = HeaderValue::from_str(c) {
            response.headers_mut().insert("x-next-cursor", v);
        }
        if let Ok(v) = HeaderValue::from_str(&format!("<{path}?cursor={c}>; rel=\"next\"")) {
            response.headers_mut().insert(header::LINK, v);
        }
    }
    response
}

http_handler!(
    /// `GET /api/v1/analytics/export/csv` — one page of up to 5,000 rows as a complete CSV file;
    /// `X-Next-Cursor` / `Link: rel="next"` give the next page until there is none.
    export_csv => get_export_csv
);

async fn get_export_csv(app: &App, req: &Request) -> Result<HttpResponse, ApiError> {
    let page = export_page(app, req).await?;
    let keys: Vec<&str> = app.config().tag_keys.iter().collect();
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(vec![]);
    let fail = |e: csv::Error| ApiError::Unexpected(e.into());
    // The contract's columns first, then one per attributed tag key and the other tags as one
    // JSON object, so a spreadsheet can pivot on the attributed ones.
    let mut header: Vec<String> = [
        "Date",
        "Time",
        "Provider",
        "Model",
        "Credits",
        "Cost (USD)",
        "Description",
    ]
    .map(String::from)
    .to_vec();
    header.extend(keys.iter().map(|k| format!("tag:{k}")));
    header.push("Other tags".into());
    w.write_record(&header).map_err(fail)?;
    for r in &page.rows {
        let local = page.period.tz.local(r.at);
        let mut row = vec![
            local.format("%Y-%m-%d").to_string(),
            local.format("%H:%M:%S").to_string(),
            neutralise(&r.provider),
            neutralise(&r.model),
            r.credits.to_string(),
            crate::analytics::money::format_usd(r.cost_micros, 4),
            neutralise(&r.description),
        ];
        for k in &keys {
            row.push(neutralise(r.tags.get(*k).map(String::as_str).unwrap_or("")));
        }
        let others: BTreeMap<&String, &String> = r
            .tags
            .iter()
            .filter(|(k, _)| !keys.contains(&k.as_str()))
            .collect();
        row.push(if others.is_empty() {
            String::new()
        } else {
            neutralise(&serde_json::to_string(&others).map_err(|e| ApiError::Unexpected(e.into()))?)
        });
        w.write_record(&row).map_err(fail)?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| ApiError::Unexpected(anyhow::anyhow!("csv: {e}")))?;
    let text = String::from_utf8(bytes).map_err(|e| ApiError::Unexpected(e.into()))?;
    let mut response = json(app, StatusCode::OK, &Value::Null)?;
    *response.body_mut() = Body::Text(text);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!(
        "attachment; filename=\"usage_{}days.csv\"",
        page.period.days
    )) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(with_next(response, req, page.next.as_deref()))
}

#[derive(Serialize)]
struct ExportRowOut<'a> {
    event_id: &'a str,
    timestamp: String,
    date: String,
    time: String,
    provider: &'a str,
    model: &'a str,
    endpoint: &'a str,
    status_code: i64,
    latency_ms: i64,
    input_tokens: i64,
    output_tokens: i64,
    credits: i64,
    cost_usd: Usd4,
    description: &'a str,
    tags: &'a BTreeMap<String, String>,
}

#[derive(Serialize)]
struct ExportJsonOut<'a> {
    period: PeriodOut,
    rows: Vec<ExportRowOut<'a>>,
    next_cursor: Option<String>,
}

http_handler!(
    /// `GET /api/v1/analytics/export/json` — the same rows and pages as the CSV, as JSON.
    export_json => get_export_json
);

async fn get_export_json(app: &App, req: &Request) -> Result<HttpResponse, ApiError> {
    let page = export_page(app, req).await?;
    let rows: Vec<ExportRowOut> = page
        .rows
        .iter()
        .map(|r| {
            let local = page.period.tz.local(r.at);
            ExportRowOut {
                event_id: &r.event_id,
                timestamp: local.to_rfc3339(),
                date: local.format("%Y-%m-%d").to_string(),
                time: local.format("%H:%M:%S").to_string(),
                provider: &r.provider,
                model: &r.model,
                endpoint: &r.endpoint,
                status_code: r.status_code,
                latency_ms: r.latency_ms,
                input_tokens: r.input_tokens,
                output_tokens: r.output_tokens,
                credits: r.credits,
                cost_usd: Usd4(r.cost_micros),
                description: &r.description,
                tags: &r.tags,
            }
        })
        .collect();
    let body = ExportJsonOut {
        period: period_json(&page.period),
        rows,
        next_cursor: page.next.clone(),
    };
    let response = json(app, StatusCode::OK, &body)?;
    Ok(with_next(response, req, page.next.as_deref()))
}

// ---------------------------------------------------------------- admin

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_cells_are_neutralised() {
        for bad in ["=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx"] {
            assert!(neutralise(bad).starts_with('\''), "{bad:?}");
        }
        assert_eq!(neutralise("gpt-4o"), "gpt-4o");
    }
}
