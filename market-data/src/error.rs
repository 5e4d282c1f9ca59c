//! Errors of the market-data crate: file-level load errors that name the file and the
//! 1-based data row, and request-level errors that callers map to protocol codes.
//!
//! Both are `Clone` because one failed load is reported to every session that waited
//! for it (see the actor's in-flight de-duplication).

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::candle::{CandleError, Timestamp};
use crate::datetime::{format_ts, TimestampError};
use crate::fixed::FixedError;
use crate::timeframe::Timeframe;

/// What went wrong in one data file.
#[derive(Clone, Debug, thiserror::Error)]
pub enum LoadErrorKind {
    /// The file does not exist.
    #[error("file not found")]
    NotFound,
    /// The file exists but cannot be read.
    #[error("cannot read file: {0}")]
    Io(#[source] Arc<io::Error>),
    /// The file is not valid Parquet (truncated, garbage, unsupported encoding).
    #[error("not a readable Parquet file: {0}")]
    Parquet(String),
    /// The file is not valid CSV (no header, ragged rows, bad UTF-8).
    #[error("malformed CSV: {0}")]
    Csv(String),
    /// A required column is absent.
    #[error("missing column `{0}`")]
    MissingColumn(&'static str),
    /// A column has a type the loader does not understand.
    #[error("column `{column}` has unsupported type {found}")]
    WrongType {
        /// Column name as found in the file.
        column: String,
        /// Physical and logical type description.
        found: String,
    },
    /// A value is null or empty.
    #[error("column `{0}` is null")]
    Null(String),
    /// A number cannot be represented exactly as a price or amount.
    #[error("column `{column}`: {source}")]
    BadNumber {
        /// Column name.
        column: String,
        /// Why the number was rejected.
        source: FixedError,
    },
    /// A date cell cannot be parsed.
    #[error("cannot parse date `{0}` (expected YYYY-MM-DD, YYYY-MM-DD HH:MM:SS or RFC 3339)")]
    BadDate(String),
    /// A timestamp is not a whole number of seconds.
    #[error("timestamp `{0}` is not a whole second")]
    SubSecond(String),
    /// A timestamp is outside the supported range.
    #[error("timestamp `{0}` is out of range")]
    TimestampOutOfRange(String),
    /// A bar breaks the OHLC invariants.
    #[error(transparent)]
    InvalidBar(#[from] CandleError),
    /// Bars are not strictly increasing in time (duplicate or unsorted).
    #[error("timestamp {} is not after the previous bar's {}", format_ts(*.ts), format_ts(*.previous))]
    NotIncreasing {
        /// Previous bar's time.
        previous: Timestamp,
        /// This bar's time.
        ts: Timestamp,
    },
    /// The Parquet decoder panicked on malformed input.
    #[error("decoder failed on malformed data: {0}")]
    DecoderPanic(String),
}

impl From<TimestampError> for LoadErrorKind {
    fn from(e: TimestampError) -> Self {
        match e {
            TimestampError::BadDate(text) => LoadErrorKind::BadDate(text),
            TimestampError::SubSecond(text) => LoadErrorKind::SubSecond(text),
        }
    }
}

/// A load error located in a file and, when known, a 1-based data row.
#[derive(Clone, Debug)]
pub struct LoadError {
    /// The file (relative to the data root when loaded through a catalog).
    pub file: PathBuf,
    /// 1-based data row (header excluded), when the error is about one row.
    pub row: Option<u64>,
    /// What went wrong.
    pub kind: LoadErrorKind,
}

impl LoadError {
    /// An error about a whole file.
    pub fn file(file: &Path, kind: LoadErrorKind) -> Self {
        LoadError {
            file: file.to_path_buf(),
            row: None,
            kind,
        }
    }

    /// An error about one data row of a file.
    pub fn row(file: &Path, row: u64, kind: LoadErrorKind) -> Self {
        LoadError {
            file: file.to_path_buf(),
            row: Some(row),
            kind,
        }
    }

    /// An I/O error, with "not found" kept distinct.
    pub fn io(file: &Path, err: io::Error) -> Self {
        let kind = if err.kind() == io::ErrorKind::NotFound {
            LoadErrorKind::NotFound
        } else {
            LoadErrorKind::Io(Arc::new(err))
        };
        LoadError::file(file, kind)
    }

    /// Rewrites the file name relative to `root`, so messages name the file as the data
    /// layout does (`candles/daily/GOOG.parquet`) without leaking server paths.
    pub fn relative_to(mut self, root: &Path) -> Self {
        if let Ok(rel) = self.file.strip_prefix(root) {
            self.file = rel.to_path_buf();
        }
        self
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.row {
            Some(row) => write!(f, "{} row {}: {}", self.file.display(), row, self.kind),
            None => write!(f, "{}: {}", self.file.display(), self.kind),
        }
    }
}

impl std::error::Error for LoadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.kind)
    }
}

/// Error writing a Parquet file.
#[derive(Clone, Debug, thiserror::Error)]
#[error("cannot write {}: {message}", .file.display())]
pub struct WriteError {
    /// The file being written.
    pub file: PathBuf,
    /// What went wrong.
    pub message: String,
}

/// Error serving market data: catalogs, series and slices.
#[derive(Clone, Debug, thiserror::Error)]
pub enum MarketDataError {
    /// A data file failed to load.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The data root itself cannot be read.
    #[error("data root {} cannot be read: {source}", .path.display())]
    Root {
        /// The root directory.
        path: PathBuf,
        /// The underlying error.
        source: Arc<io::Error>,
    },
    /// No provider (data root) with that name.
    #[error("unknown data provider `{0}`")]
    UnknownProvider(String),
    /// The symbol is not in the provider's catalog.
    #[error("unknown symbol `{0}`")]
    UnknownSymbol(String),
    /// The symbol's only data cannot be served (e.g. a CSV whose bar spacing matches no
    /// timeframe).
    #[error("symbol `{symbol}` cannot be served: {reason}")]
    NotServable {
        /// The symbol.
        symbol: String,
        /// Why.
        reason: String,
    },
    /// The requested timeframe is finer than anything stored for the symbol.
    #[error("`{symbol}` is stored no finer than {finest}; {requested} cannot be built from it")]
    TimeframeTooFine {
        /// The symbol.
        symbol: String,
        /// The requested timeframe.
        requested: Timeframe,
        /// The finest stored timeframe.
        finest: Timeframe,
    },
    /// The symbol has no bars in the requested range.
    #[error("no {timeframe} data for `{symbol}` between {} and {}", format_ts(*.start), format_ts(*.end))]
    NoData {
        /// The symbol.
        symbol: String,
        /// The requested timeframe.
        timeframe: Timeframe,
        /// Range start (inclusive).
        start: Timestamp,
        /// Range end (exclusive).
        end: Timestamp,
    },
    /// The request lists no symbols.
    #[error("no symbols requested")]
    EmptySymbols,
    /// The request lists a symbol twice.
    #[error("symbol `{0}` is requested twice")]
    DuplicateSymbol(String),
    /// start >= end.
    #[error("start {} is not before end {}", format_ts(*.start), format_ts(*.end))]
    InvalidRange {
        /// Range start.
        start: Timestamp,
        /// Range end.
        end: Timestamp,
    },
    /// The slice would not fit the `u32` offsets of [`crate::Step`].
    #[error("slice too large: {0} bars")]
    SliceTooLarge(usize),
    /// A background load or build task failed (panicked or was cancelled).
    #[error("background task failed: {0}")]
    Worker(String),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixed::Price;

    #[test]
    fn load_errors_name_file_and_row() {
        let e = LoadError::row(
            Path::new("/data/candles/daily/BADHL.parquet"),
            4,
            CandleError::HighBelowLow {
                high: Price::from_int(1),
                low: "103.57".parse().unwrap(),
            }
            .into(),
        )
        .relative_to(Path::new("/data"));
        assert_eq!(
            e.to_string(),
            "candles/daily/BADHL.parquet row 4: high 1.00 is below low 103.57"
        );
        let e = LoadError::io(Path::new("x.csv"), io::Error::from(io::ErrorKind::NotFound));
        assert_eq!(e.to_string(), "x.csv: file not found");
    }

    #[test]
    fn timestamps_are_shown_as_rfc3339() {
        let e = LoadErrorKind::NotIncreasing {
            previous: 86_400,
            ts: 86_400,
        };
        assert_eq!(
            e.to_string(),
            "timestamp 1970-01-02T00:00:00Z is not after the previous bar's 1970-01-02T00:00:00Z"
        );
    }
}
