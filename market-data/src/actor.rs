//! The market-data actor: serves slices, series and catalogs of one or more providers,
//! with loaded series shared between sessions through a byte-bounded LRU cache.
//!
//! Loads run on tokio's blocking pool so the actor's thread keeps answering (cache hits,
//! catalogs) while files are read. A series requested again while it is loading is not
//! loaded twice: later requesters wait on the first load's result.
//!
//! Slices are shared too: sessions asking for the same symbols, timeframe, range and
//! warm-up get the same `Arc<Slice>` for as long as any of them holds it (the actor
//! keeps only a weak reference), and identical requests arriving while it is being
//! built wait for that build.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Weak};
use std::time::Instant;

use actix::fut::wrap_future;
use actix::{Actor, ActorFutureExt, AsyncContext, Context, Handler, ResponseFuture};
use tokio::sync::oneshot;
use tokio::task::JoinError;

use crate::cache::ByteLru;
use crate::catalog::Catalog;
use crate::error::MarketDataError;
use crate::messages::{GetCatalog, GetSeries, GetSlice, GetStats, ListProviders, MarketDataStats};
use crate::resample::resample;
use crate::series::Series;
use crate::slice::Slice;
use crate::slice_builder::{build_slice, SliceRequest};
use crate::timeframe::Timeframe;

/// Settings of a [`MarketDataActor`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MarketDataConfig {
    /// Cache budget in bytes for loaded series.
    pub cache_bytes: usize,
}

impl Default for MarketDataConfig {
    fn default() -> Self {
        MarketDataConfig {
            cache_bytes: 512 << 20,
        }
    }
}

/// Cache key: one symbol of one provider at one (possibly resampled) timeframe.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct SeriesKey {
    provider: String,
    symbol: String,
    timeframe: Timeframe,
}

type SeriesResult = Result<Arc<Series>, MarketDataError>;
type SliceResult = Result<Arc<Slice>, MarketDataError>;

/// A request's outcome: known now, or delivered when a load or build finishes.
enum Pending<T> {
    Ready(Result<T, MarketDataError>),
    Wait(oneshot::Receiver<Result<T, MarketDataError>>),
}

impl<T> Pending<T> {
    async fn resolve(self) -> Result<T, MarketDataError> {
        match self {
            Pending::Ready(result) => result,
            Pending::Wait(rx) => rx
                .await
                .map_err(|_| MarketDataError::Worker("load abandoned".into()))?,
        }
    }
}

/// Live slices by request (with the provider resolved), and builds in flight.
#[derive(Default)]
struct SharedSlices {
    live: HashMap<SliceRequest, Weak<Slice>>,
    in_flight: HashMap<SliceRequest, Vec<oneshot::Sender<SliceResult>>>,
    /// `live` is swept of dead entries whenever it doubles past this size.
    sweep_at: usize,
}

/// Serves market data of named providers (data roots) to sessions.
pub struct MarketDataActor {
    providers: BTreeMap<String, Arc<Catalog>>,
    default_provider: String,
    cache: ByteLru<SeriesKey, Arc<Series>>,
    in_flight: HashMap<SeriesKey, Vec<oneshot::Sender<SeriesResult>>>,
    slices: SharedSlices,
    stats: MarketDataStats,
}

impl MarketDataActor {
    /// An actor whose default provider is `name`.
    pub fn new(
        name: impl Into<String>,
        catalog: impl Into<Arc<Catalog>>,
        config: MarketDataConfig,
    ) -> Self {
        let name = name.into();
        MarketDataActor {
            providers: BTreeMap::from([(name.clone(), catalog.into())]),
            default_provider: name,
            cache: ByteLru::new(config.cache_bytes),
            in_flight: HashMap::new(),
            slices: SharedSlices::default(),
            stats: MarketDataStats::default(),
        }
    }

    /// Adds (or replaces) a named provider.
    pub fn with_provider(
        mut self,
        name: impl Into<String>,
        catalog: impl Into<Arc<Catalog>>,
    ) -> Self {
        self.providers.insert(name.into(), catalog.into());
        self
    }

    fn provider(&self, name: Option<&str>) -> Result<(String, Arc<Catalog>), MarketDataError> {
        let name = name.unwrap_or(&self.default_provider);
        self.providers
            .get(name)
            .map(|c| (name.to_string(), Arc::clone(c)))
            .ok_or_else(|| MarketDataError::UnknownProvider(name.to_string()))
    }

    /// Answers from the cache, joins a load in flight, or starts one.
    fn request_series(
        &mut self,
        provider: &str,
        catalog: &Arc<Catalog>,
        symbol: &str,
        timeframe: Timeframe,
        ctx: &mut Context<Self>,
    ) -> Pending<Arc<Series>> {
        let stored = match catalog.resolve(symbol, timeframe) {
            Ok(stored) => stored.timeframe,
            Err(e) => return Pending::Ready(Err(e)),
        };
        let key = SeriesKey {
            provider: provider.to_string(),
            symbol: symbol.to_string(),
            timeframe,
        };
        if let Some(series) = self.cache.get(&key) {
            self.stats.hits += 1;
            return Pending::Ready(Ok(series));
        }
        let (tx, rx) = oneshot::channel();
        if let Some(waiters) = self.in_flight.get_mut(&key) {
            waiters.push(tx);
            self.stats.joined += 1;
            return Pending::Wait(rx);
        }
        self.in_flight.insert(key.clone(), vec![tx]);
        // A coarser timeframe is resampled from the cached stored series when there is
        // one, instead of reading the files again.
        let source_key = SeriesKey {
            timeframe: stored,
            ..key.clone()
        };
        let source = if stored == timeframe {
            None
        } else {
            self.cache.get(&source_key)
        };
        match source {
            Some(_) => self.stats.derived += 1,
            None => self.stats.loads += 1,
        }
        let catalog = Arc::clone(catalog);
        let symbol = symbol.to_string();
        let load = tokio::task::spawn_blocking(move || {
            let started = Instant::now();
            let result = match source {
                Some(source) => derive(&source, timeframe),
                None => catalog.load(&symbol, timeframe),
            };
            (result.map(Arc::new), started.elapsed())
        });
        ctx.spawn(
            wrap_future::<_, Self>(load)
                .map(move |joined, actor, _| actor.finish_load(key, joined)),
        );
        Pending::Wait(rx)
    }

    fn finish_load(
        &mut self,
        key: SeriesKey,
        joined: Result<(SeriesResult, std::time::Duration), JoinError>,
    ) {
        let result = match joined {
            Ok((result, elapsed)) => {
                match &result {
                    Ok(s) => {
                        tracing::info!(provider = %key.provider, symbol = %key.symbol, timeframe = %key.timeframe,
                        bars = s.candles.len(), elapsed_ms = elapsed.as_millis() as u64, "series loaded")
                    }
                    Err(e) => {
                        tracing::warn!(provider = %key.provider, symbol = %key.symbol, timeframe = %key.timeframe,
                        error = %e, "series load failed")
                    }
                }
                result
            }
            Err(e) => Err(MarketDataError::Worker(e.to_string())),
        };
        // Failures are not cached: a fixed file is picked up by the next request.
        if let Ok(series) = &result {
            if !self
                .cache
                .insert(key.clone(), Arc::clone(series), series.bytes())
            {
                tracing::warn!(symbol = %key.symbol, bytes = series.bytes(), "series larger than the cache budget; not cached");
            }
        }
        for waiter in self.in_flight.remove(&key).unwrap_or_default() {
            // A requester that went away no longer needs the answer.
            let _ = waiter.send(result.clone());
        }
    }
}

/// Resamples an already loaded series to a coarser timeframe.
fn derive(source: &Series, timeframe: Timeframe) -> Result<Series, MarketDataError> {
    let candles = resample(&source.candles, source.timeframe, timeframe).ok_or_else(|| {
        MarketDataError::TimeframeTooFine {
            symbol: source.symbol.clone(),
            requested: timeframe,
            finest: source.timeframe,
        }
    })?;
    Ok(Series {
        symbol: source.symbol.clone(),
        timeframe,
        candles,
    })
}

impl Actor for MarketDataActor {
    type Context = Context<Self>;
}

impl Handler<GetSeries> for MarketDataActor {
    type Result = ResponseFuture<SeriesResult>;

    fn handle(&mut self, msg: GetSeries, ctx: &mut Context<Self>) -> Self::Result {
        let pending = match self.provider(msg.provider.as_deref()) {
            Ok((name, catalog)) => {
                self.request_series(&name, &catalog, &msg.symbol, msg.timeframe, ctx)
            }
            Err(e) => Pending::Ready(Err(e)),
        };
        Box::pin(pending.resolve())
    }
}

impl Handler<GetSlice> for MarketDataActor {
    type Result = ResponseFuture<SliceResult>;

    fn handle(&mut self, GetSlice(mut request): GetSlice, ctx: &mut Context<Self>) -> Self::Result {
        let checked = request.validate().and_then(|()| {
            let (name, catalog) = self.provider(request.provider.as_deref())?;
            // Every symbol must be servable before any load starts.
            for symbol in &request.symbols {
                catalog.resolve(symbol, request.timeframe)?;
            }
            Ok((name, catalog))
        });
        let (name, catalog) = match checked {
            Ok(found) => found,
            Err(e) => return Box::pin(std::future::ready(Err(e))),
        };
        // The key names the provider, so the default and its explicit name share.
        request.provider = Some(name.clone());
        if let Some(slice) = self.slices.live.get(&request).and_then(Weak::upgrade) {
            self.stats.slices_shared += 1;
            return Box::pin(std::future::ready(Ok(slice)));
        }
        let (tx, rx) = oneshot::channel();
        if let Some(waiters) = self.slices.in_flight.get_mut(&request) {
            waiters.push(tx);
            self.stats.slices_shared += 1;
            return Box::pin(Pending::Wait(rx).resolve());
        }
        self.slices.in_flight.insert(request.clone(), vec![tx]);
        self.stats.slices_built += 1;
        let pending: Vec<Pending<Arc<Series>>> = request
            .symbols
            .iter()
            .map(|symbol| self.request_series(&name, &catalog, symbol, request.timeframe, ctx))
            .collect();
        let key = request.clone();
        let build = async move {
            let mut series = Vec::with_capacity(pending.len());
            for p in pending {
                series.push(p.resolve().await?);
            }
            // Merging millions of bars is CPU work; keep it off the actor's thread too.
            tokio::task::spawn_blocking(move || build_slice(&request, &series).map(Arc::new))
                .await
                .map_err(|e| MarketDataError::Worker(e.to_string()))?
        };
        ctx.spawn(
            wrap_future::<_, Self>(build)
                .map(move |result, actor, _| actor.finish_slice(key, result)),
        );
        Box::pin(Pending::Wait(rx).resolve())
    }
}

impl MarketDataActor {
    fn finish_slice(&mut self, key: SliceRequest, result: SliceResult) {
        let shared = &mut self.slices;
        if let Ok(slice) = &result {
            shared.live.insert(key.clone(), Arc::downgrade(slice));
            if shared.live.len() > shared.sweep_at {
                shared.live.retain(|_, slice| slice.strong_count() > 0);
                shared.sweep_at = (shared.live.len() * 2).max(64);
            }
        }
        for waiter in shared.in_flight.remove(&key).unwrap_or_default() {
            // A requester that went away no longer needs the answer.
            let _ = waiter.send(result.clone());
        }
    }
}

impl Handler<GetCatalog> for MarketDataActor {
    type Result = Result<Arc<Catalog>, MarketDataError>;

    fn handle(&mut self, msg: GetCatalog, _: &mut Context<Self>) -> Self::Result {
        self.provider(msg.provider.as_deref())
            .map(|(_, catalog)| catalog)
    }
}

impl Handler<ListProviders> for MarketDataActor {
    type Result = Vec<String>;

    fn handle(&mut self, _: ListProviders, _: &mut Context<Self>) -> Self::Result {
        let others = self
            .providers
            .keys()
            .filter(|n| **n != self.default_provider)
            .cloned();
        std::iter::once(self.default_provider.clone())
            .chain(others)
            .collect()
    }
}

impl Handler<GetStats> for MarketDataActor {
    type Result = actix::MessageResult<GetStats>;

    fn handle(&mut self, _: GetStats, _: &mut Context<Self>) -> Self::Result {
        actix::MessageResult(MarketDataStats {
            cache: self.cache.counters(),
            ..self.stats
        })
    }
}
