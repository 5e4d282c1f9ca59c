//! Messages the [`crate::MarketDataActor`] answers.

use std::sync::Arc;

use actix::Message;

use crate::cache::CacheCounters;
use crate::catalog::Catalog;
use crate::error::MarketDataError;
use crate::series::Series;
use crate::slice::Slice;
use crate::slice_builder::SliceRequest;
use crate::timeframe::Timeframe;

/// Build the slice of a simulation.
#[derive(Clone, Debug, Message)]
#[rtype(result = "Result<Arc<Slice>, MarketDataError>")]
pub struct GetSlice(pub SliceRequest);

/// One symbol's full series at a timeframe (shared, not copied).
#[derive(Clone, Debug, Message)]
#[rtype(result = "Result<Arc<Series>, MarketDataError>")]
pub struct GetSeries {
    /// Provider name; `None` for the default provider.
    pub provider: Option<String>,
    /// The symbol.
    pub symbol: String,
    /// The timeframe (resampled if finer data is stored).
    pub timeframe: Timeframe,
}

/// The catalog of a provider: symbols, stored timeframes and date ranges.
#[derive(Clone, Debug, Message)]
#[rtype(result = "Result<Arc<Catalog>, MarketDataError>")]
pub struct GetCatalog {
    /// Provider name; `None` for the default provider.
    pub provider: Option<String>,
}

/// Names of the configured providers, default first.
#[derive(Clone, Copy, Debug, Message)]
#[rtype(result = "Vec<String>")]
pub struct ListProviders;

/// Load and cache counters.
#[derive(Clone, Copy, Debug, Message)]
#[rtype(result = "MarketDataStats")]
pub struct GetStats;

/// Load and cache counters of a [`crate::MarketDataActor`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MarketDataStats {
    /// Series loads started from files.
    pub loads: u64,
    /// Series resampled from a cached finer series instead of loaded from files.
    pub derived: u64,
    /// Requests answered from the cache.
    pub hits: u64,
    /// Requests that joined a load already in flight.
    pub joined: u64,
    /// Slices built.
    pub slices_built: u64,
    /// Slice requests answered with a slice another session holds or is building.
    pub slices_shared: u64,
    /// Cache occupancy and evictions.
    pub cache: CacheCounters,
}
