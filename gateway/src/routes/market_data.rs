//! The market data every session can run on, over REST: `GET /api/market-data` (the
//! providers, their symbols, what is stored and what can be served) and
//! `GET /api/market-data/{provider}/{symbol}/bars` (bars of a range, merged on the
//! server into at most `max_points` for a chart).

use actix_web::{web, HttpResponse};
use market_data::{downsample, GetCatalog, GetSeries, ListProviders, MarketDataError};
use model::Timeframe;
use protocol::{
    format_wire_time, parse_wire_time, BarsResponse, MarketDataResponse, ProviderEntry,
    StoredEntry, SymbolEntry, WireCandle,
};
use serde::Deserialize;

use crate::errors::{log_chain, HttpError};
use crate::extract::Authenticated;
use crate::state::AppState;

/// Bars a `bars` answer holds at most when the request gives no `max_points`.
pub const DEFAULT_MAX_POINTS: usize = 5_000;
/// Largest `max_points` accepted.
pub const MAX_POINTS: usize = 100_000;

/// `GET /api/market-data`.
pub async fn catalog(
    state: web::Data<AppState>,
    _: Authenticated,
) -> Result<HttpResponse, HttpError> {
    let names = state.market.send(ListProviders).await?;
    let mut providers = Vec::with_capacity(names.len());
    for (i, name) in names.into_iter().enumerate() {
        let catalog = state
            .market
            .send(GetCatalog {
                provider: Some(name.clone()),
            })
            .await?
            .map_err(market_error)?;
        let mut symbols: Vec<SymbolEntry> = catalog
            .symbols()
            .map(|symbol| {
                let mut stored: Vec<StoredEntry> = catalog
                    .series(symbol)
                    .unwrap_or_default()
                    .iter()
                    .map(|s| StoredEntry {
                        timeframe: s.timeframe,
                        first: format_wire_time(s.first),
                        last: format_wire_time(s.last),
                        bars: s.rows,
                    })
                    .collect();
                stored.sort_by_key(|s| s.timeframe.seconds());
                SymbolEntry {
                    symbol: symbol.to_string(),
                    stored,
                    servable: catalog.servable_timeframes(symbol),
                }
            })
            .collect();
        symbols.sort_by(|a, b| a.symbol.cmp(&b.symbol));
        providers.push(ProviderEntry {
            name,
            default: i == 0,
            symbols,
        });
    }
    Ok(HttpResponse::Ok().json(MarketDataResponse { providers }))
}

/// The query of `bars`, read as text so each bad value gets its own message.
#[derive(Debug, Deserialize)]
pub struct BarsQuery {
    timeframe: Option<String>,
    start: Option<String>,
    end: Option<String>,
    max_points: Option<String>,
}

/// `GET /api/market-data/{provider}/{symbol}/bars?timeframe=&start=&end=&max_points=`:
/// the bars with `start <= time < end` (either end open when left out), at most
/// `max_points` of them (default [`DEFAULT_MAX_POINTS`], 1 to [`MAX_POINTS`]).
pub async fn bars(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    query: web::Query<BarsQuery>,
    _: Authenticated,
) -> Result<HttpResponse, HttpError> {
    let (provider, symbol) = path.into_inner();
    let query = query.into_inner();
    let timeframe: Timeframe = query
        .timeframe
        .as_deref()
        .ok_or_else(|| HttpError::invalid_params("timeframe is required, e.g. timeframe=daily"))?
        .parse()
        .map_err(|_| {
            HttpError::invalid_params(format!(
                "timeframe must be one of {}",
                Timeframe::ALL.map(|t| t.to_string()).join(", ")
            ))
        })?;
    let time = |name: &str, value: &Option<String>| -> Result<Option<i64>, HttpError> {
        value
            .as_deref()
            .map(|text| {
                parse_wire_time(text).map_err(|_| {
                    HttpError::invalid_params(format!(
                        "{name} must be an RFC 3339 time or a YYYY-MM-DD date"
                    ))
                })
            })
            .transpose()
    };
    let start = time("start", &query.start)?;
    let end = time("end", &query.end)?;
    if let (Some(s), Some(e)) = (start, end) {
        if s >= e {
            return Err(HttpError::invalid_params("start must be before end"));
        }
    }
    let max_points = match query.max_points.as_deref() {
        None => DEFAULT_MAX_POINTS,
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_POINTS).contains(n))
            .ok_or_else(|| {
                HttpError::invalid_params(format!(
                    "max_points must be a whole number from 1 to {MAX_POINTS}"
                ))
            })?,
    };
    let series = state
        .market
        .send(GetSeries {
            provider: Some(provider.clone()),
            symbol: symbol.clone(),
            timeframe,
        })
        .await?
        .map_err(market_error)?;
    let candles = &series.candles;
    let from = start.map_or(0, |s| candles.partition_point(|c| c.ts < s));
    let to = end.map_or(candles.len(), |e| candles.partition_point(|c| c.ts < e));
    let range = &candles[from..to.max(from)];
    let (merged, per) = downsample(range, max_points);
    Ok(HttpResponse::Ok().json(BarsResponse {
        provider,
        symbol: series.symbol.clone(),
        timeframe,
        bars_in_range: range.len() as u64,
        bucket_bars: per as u64,
        bars: merged.iter().map(WireCandle::from).collect(),
    }))
}

/// The answer for a market-data refusal: an unknown provider or symbol is a 404, data
/// that cannot be served at that timeframe a 400, a file that fails to load a 500
/// (logged; its path is not sent).
fn market_error(e: MarketDataError) -> HttpError {
    match e {
        MarketDataError::UnknownProvider(name) => {
            HttpError::not_found(format!("no data provider `{name}`"))
        }
        MarketDataError::UnknownSymbol(symbol) => {
            HttpError::not_found(format!("no symbol `{symbol}` at this provider"))
        }
        e @ (MarketDataError::NotServable { .. }
        | MarketDataError::TimeframeTooFine { .. }
        | MarketDataError::NoData { .. }) => HttpError::invalid_params(e.to_string()),
        e => {
            log_chain(&e);
            HttpError::internal()
        }
    }
}
