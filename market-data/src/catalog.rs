//! A catalog of one data root (a "data provider"): which symbols exist, at which stored
//! timeframes, over which dates, and where their files are. Opening a catalog reads only
//! Parquet footers (of the first and last day file for day-file layouts) and the first
//! and last lines of CSVs; bars are loaded on demand.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::candle::{Candle, Timestamp};
use crate::csv::{load_csv, peek_csv};
use crate::error::{LoadError, MarketDataError};
use crate::layout::{parse_day_file, CANDLES_DIR, OHLCV_DIR};
use crate::parquet::{append_parquet, parquet_summary};
use crate::resample::resample;
use crate::series::Series;
use crate::slice::Slice;
use crate::slice_builder::{build_slice, SliceRequest};
use crate::timeframe::Timeframe;

/// CSV data rows read to infer the bar spacing.
const CSV_HEAD_ROWS: usize = 64;

/// Where a stored series lives, relative to the catalog root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SeriesSource {
    /// One Parquet file (`candles/daily/<SYMBOL>.parquet`).
    ParquetFile(PathBuf),
    /// Parquet day files in date order (`candles/<tf>/<SYMBOL>/<YYYY-MM-DD>.parquet`).
    ParquetDays(Vec<PathBuf>),
    /// A CSV file (`ohlcv/<SYMBOL>.csv`).
    Csv(PathBuf),
}

/// One symbol's bars stored at one timeframe.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredSeries {
    /// Stored bar duration.
    pub timeframe: Timeframe,
    /// Time of the first bar.
    pub first: Timestamp,
    /// Time of the last bar.
    pub last: Timestamp,
    /// Number of bars when known from metadata (single Parquet files).
    pub rows: Option<u64>,
    /// The files.
    pub source: SeriesSource,
}

/// A file the catalog found but cannot serve, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unservable {
    /// Symbol named by the file.
    pub symbol: String,
    /// File or directory, relative to the root.
    pub path: PathBuf,
    /// Why it cannot be served.
    pub reason: String,
}

/// The symbols and stored series of one data root.
#[derive(Clone, Debug)]
pub struct Catalog {
    root: PathBuf,
    symbols: BTreeMap<String, Vec<StoredSeries>>,
    unservable: Vec<Unservable>,
}

impl Catalog {
    /// Scans `root` for `candles/daily/<SYMBOL>.parquet`,
    /// `candles/<timeframe>/<SYMBOL>/<YYYY-MM-DD>.parquet` (or `<SYMBOL>.parquet`) and
    /// `ohlcv/<SYMBOL>.csv`. When Parquet and CSV store the same symbol and timeframe,
    /// Parquet is served. Files that cannot be served are listed in
    /// [`Catalog::unservable`] with a logged warning rather than failing the whole root.
    pub fn open(root: impl AsRef<Path>) -> Result<Catalog, MarketDataError> {
        let root = root.as_ref().to_path_buf();
        let path = root.clone();
        let root_error = |e: io::Error| MarketDataError::Root {
            path: path.clone(),
            source: Arc::new(e),
        };
        if !fs::metadata(&root).map_err(root_error)?.is_dir() {
            return Err(root_error(io::Error::new(
                io::ErrorKind::NotADirectory,
                "not a directory",
            )));
        }
        let mut catalog = Catalog {
            root,
            symbols: BTreeMap::new(),
            unservable: Vec::new(),
        };
        catalog.scan_parquet().map_err(root_error)?;
        catalog.scan_csv().map_err(root_error)?;
        for series in catalog.symbols.values_mut() {
            series.sort_by_key(|s| s.timeframe);
        }
        Ok(catalog)
    }

    /// The data root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Servable symbols, sorted.
    pub fn symbols(&self) -> impl Iterator<Item = &str> + '_ {
        self.symbols.keys().map(String::as_str)
    }

    /// A symbol's stored series, finest timeframe first.
    pub fn series(&self, symbol: &str) -> Option<&[StoredSeries]> {
        self.symbols.get(symbol).map(Vec::as_slice)
    }

    /// A symbol's stored timeframes, finest first (empty for unknown symbols).
    pub fn timeframes(&self, symbol: &str) -> Vec<Timeframe> {
        self.series(symbol)
            .unwrap_or_default()
            .iter()
            .map(|s| s.timeframe)
            .collect()
    }

    /// Timeframes a symbol can be served at: stored ones and everything coarser that a
    /// stored one divides.
    pub fn servable_timeframes(&self, symbol: &str) -> Vec<Timeframe> {
        let stored = self.timeframes(symbol);
        Timeframe::ALL
            .into_iter()
            .filter(|t| stored.iter().any(|s| t.can_resample_from(*s)))
            .collect()
    }

    /// Files found but not servable.
    pub fn unservable(&self) -> &[Unservable] {
        &self.unservable
    }

    /// The stored series to serve `symbol` at `timeframe` from: the coarsest stored
    /// timeframe that divides the requested one.
    pub fn resolve(
        &self,
        symbol: &str,
        timeframe: Timeframe,
    ) -> Result<&StoredSeries, MarketDataError> {
        let Some(stored) = self.symbols.get(symbol) else {
            return Err(match self.unservable.iter().find(|u| u.symbol == symbol) {
                Some(u) => MarketDataError::NotServable {
                    symbol: symbol.into(),
                    reason: u.reason.clone(),
                },
                None => MarketDataError::UnknownSymbol(symbol.into()),
            });
        };
        stored
            .iter()
            .filter(|s| timeframe.can_resample_from(s.timeframe))
            .max_by_key(|s| s.timeframe.seconds())
            .ok_or(MarketDataError::TimeframeTooFine {
                symbol: symbol.into(),
                requested: timeframe,
                finest: stored.first().map_or(Timeframe::Daily, |s| s.timeframe),
            })
    }

    /// Loads and validates all bars of a stored series. Errors name files relative to
    /// the root.
    pub fn load_stored(&self, stored: &StoredSeries) -> Result<Vec<Candle>, LoadError> {
        let rel = |e: LoadError| e.relative_to(&self.root);
        match &stored.source {
            SeriesSource::Csv(path) => load_csv(&self.root.join(path)).map_err(rel),
            SeriesSource::ParquetFile(path) => {
                let mut out = Vec::new();
                append_parquet(&self.root.join(path), &mut out, &mut None).map_err(rel)?;
                Ok(out)
            }
            SeriesSource::ParquetDays(files) => {
                let mut out = Vec::with_capacity(stored.rows.unwrap_or(0) as usize);
                let mut prev = None;
                for file in files {
                    append_parquet(&self.root.join(file), &mut out, &mut prev).map_err(rel)?;
                }
                Ok(out)
            }
        }
    }

    /// Loads `symbol` at `timeframe`, resampling from a finer stored timeframe if needed.
    pub fn load(&self, symbol: &str, timeframe: Timeframe) -> Result<Series, MarketDataError> {
        let stored = self.resolve(symbol, timeframe)?;
        let bars = self.load_stored(stored)?;
        let candles = if stored.timeframe == timeframe {
            bars
        } else {
            resample(&bars, stored.timeframe, timeframe).ok_or(
                MarketDataError::TimeframeTooFine {
                    symbol: symbol.into(),
                    requested: timeframe,
                    finest: stored.timeframe,
                },
            )?
        };
        Ok(Series {
            symbol: symbol.into(),
            timeframe,
            candles,
        })
    }

    /// Builds a slice directly from this catalog, loading every symbol (blocking; the
    /// request's provider name is ignored). The actor adds caching on top.
    pub fn slice(&self, request: &SliceRequest) -> Result<Slice, MarketDataError> {
        request.validate()?;
        for symbol in &request.symbols {
            self.resolve(symbol, request.timeframe)?;
        }
        let series = request
            .symbols
            .iter()
            .map(|s| self.load(s, request.timeframe))
            .collect::<Result<Vec<_>, _>>()?;
        build_slice(request, &series)
    }

    fn add(&mut self, symbol: &str, series: StoredSeries) {
        let entry = self.symbols.entry(symbol.to_string()).or_default();
        if let Some(existing) = entry.iter().find(|s| s.timeframe == series.timeframe) {
            tracing::debug!(symbol, timeframe = %series.timeframe, kept = ?existing.source, ignored = ?series.source,
                "same symbol and timeframe stored twice; serving the first");
            return;
        }
        entry.push(series);
    }

    fn reject(&mut self, symbol: &str, path: &Path, reason: String) {
        let path = path.strip_prefix(&self.root).unwrap_or(path).to_path_buf();
        tracing::warn!(symbol, path = %path.display(), %reason, "data file not servable");
        self.unservable.push(Unservable {
            symbol: symbol.to_string(),
            path,
            reason,
        });
    }

    fn scan_parquet(&mut self) -> io::Result<()> {
        let candles = self.root.join(CANDLES_DIR);
        for tf_dir in sorted_entries(&candles)? {
            if !tf_dir.is_dir() {
                continue;
            }
            let Some(timeframe) = tf_dir
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.parse().ok())
            else {
                tracing::warn!(path = %tf_dir.display(), "ignoring directory that is not a timeframe");
                continue;
            };
            for entry in sorted_entries(&tf_dir)? {
                let Some(name) = entry
                    .file_name()
                    .and_then(|n| n.to_str())
                    .map(str::to_string)
                else {
                    continue;
                };
                if entry.is_dir() {
                    self.add_day_files(&name, timeframe, &entry)?;
                } else if let Some(symbol) = name.strip_suffix(".parquet") {
                    self.add_parquet_file(symbol, timeframe, &entry);
                }
            }
        }
        Ok(())
    }

    fn add_parquet_file(&mut self, symbol: &str, timeframe: Timeframe, path: &Path) {
        let summary = match parquet_summary(path) {
            Ok(s) => s,
            Err(e) => return self.reject(symbol, path, e.relative_to(&self.root).to_string()),
        };
        let Some((first, last)) = summary.range else {
            return self.reject(symbol, path, "no bars".into());
        };
        let source = SeriesSource::ParquetFile(self.relative(path));
        self.add(
            symbol,
            StoredSeries {
                timeframe,
                first,
                last,
                rows: Some(summary.rows),
                source,
            },
        );
    }

    fn add_day_files(&mut self, symbol: &str, timeframe: Timeframe, dir: &Path) -> io::Result<()> {
        let files: Vec<PathBuf> = sorted_entries(dir)?
            .into_iter()
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .and_then(parse_day_file)
                    .is_some()
            })
            .collect();
        // Day files sort by name = by date; only the ends are opened.
        let first = files
            .iter()
            .find_map(|f| parquet_summary(f).ok().and_then(|s| s.range));
        let last = files
            .iter()
            .rev()
            .find_map(|f| parquet_summary(f).ok().and_then(|s| s.range));
        let (Some((first, _)), Some((_, last))) = (first, last) else {
            self.reject(symbol, dir, "no readable day files with bars".into());
            return Ok(());
        };
        let source = SeriesSource::ParquetDays(files.iter().map(|f| self.relative(f)).collect());
        self.add(
            symbol,
            StoredSeries {
                timeframe,
                first,
                last,
                rows: None,
                source,
            },
        );
        Ok(())
    }

    fn scan_csv(&mut self) -> io::Result<()> {
        for path in sorted_entries(&self.root.join(OHLCV_DIR))? {
            let Some(symbol) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".csv"))
            else {
                continue;
            };
            let symbol = symbol.to_string();
            let peek = match peek_csv(&path, CSV_HEAD_ROWS) {
                Ok(Some(peek)) => peek,
                Ok(None) => {
                    self.reject(&symbol, &path, "no bars".into());
                    continue;
                }
                Err(e) => {
                    self.reject(&symbol, &path, e.relative_to(&self.root).to_string());
                    continue;
                }
            };
            match infer_timeframe(peek.first, peek.min_gap) {
                Ok(timeframe) => {
                    let source = SeriesSource::Csv(self.relative(&path));
                    self.add(
                        &symbol,
                        StoredSeries {
                            timeframe,
                            first: peek.first,
                            last: peek.last,
                            rows: None,
                            source,
                        },
                    );
                }
                Err(reason) => self.reject(&symbol, &path, reason),
            }
        }
        Ok(())
    }

    fn relative(&self, path: &Path) -> PathBuf {
        path.strip_prefix(&self.root).unwrap_or(path).to_path_buf()
    }
}

/// The timeframe whose length equals the smallest spacing between the first bars, if the
/// first bar is aligned to it (weekends and holidays only ever widen gaps).
fn infer_timeframe(first: Timestamp, min_gap: Option<i64>) -> Result<Timeframe, String> {
    let gap = min_gap.ok_or_else(|| "a single bar: spacing unknown".to_string())?;
    let timeframe = Timeframe::ALL
        .into_iter()
        .find(|t| t.seconds() == gap)
        .ok_or_else(|| format!("bar spacing of {gap} s matches no timeframe"))?;
    if timeframe.bucket(first) != first {
        return Err(format!(
            "bars are not aligned to {timeframe} boundaries (UTC)"
        ));
    }
    Ok(timeframe)
}

/// Entries of a directory sorted by name; a missing directory is empty.
fn sorted_entries(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut paths = entries
        .map(|e| e.map(|e| e.path()))
        .collect::<io::Result<Vec<_>>>()?;
    paths.sort();
    Ok(paths)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn infers_timeframes_from_spacing() {
        assert_eq!(infer_timeframe(0, Some(3600)), Ok(Timeframe::H1));
        assert_eq!(infer_timeframe(86_400, Some(86_400)), Ok(Timeframe::Daily));
        assert!(infer_timeframe(0, Some(28 * 86_400))
            .unwrap_err()
            .contains("matches no timeframe"));
        assert!(infer_timeframe(1800, Some(3600))
            .unwrap_err()
            .contains("not aligned"));
        assert!(infer_timeframe(0, None).is_err());
    }

    #[test]
    fn missing_root_is_an_error() {
        assert!(matches!(
            Catalog::open("/nonexistent/root"),
            Err(MarketDataError::Root { .. })
        ));
    }
}
