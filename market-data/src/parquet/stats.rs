//! What the catalog learns from a Parquet footer alone: row count and time range.

use std::fs::File;
use std::path::Path;

use ::parquet::file::reader::FileReader;
use ::parquet::file::serialized_reader::SerializedFileReader;
use ::parquet::file::statistics::Statistics;

use super::columns::{layout, TimeKind};
use super::read::load_parquet;
use crate::candle::Timestamp;
use crate::error::{LoadError, LoadErrorKind};

/// Row count and first/last bar time of one file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ParquetSummary {
    /// Number of rows.
    pub rows: u64,
    /// First and last bar time; `None` for an empty file.
    pub range: Option<(Timestamp, Timestamp)>,
}

/// Reads the footer: schema check, row count, and the `date` column's min/max from the
/// row-group statistics. Falls back to loading the file when statistics are absent
/// (INT96 files, or writers that skip them).
pub(crate) fn parquet_summary(path: &Path) -> Result<ParquetSummary, LoadError> {
    let file = File::open(path).map_err(|e| LoadError::io(path, e))?;
    let reader = SerializedFileReader::new(file)
        .map_err(|e| LoadError::file(path, LoadErrorKind::Parquet(e.to_string())))?;
    let meta = reader.metadata();
    let layout =
        layout(meta.file_metadata().schema_descr()).map_err(|k| LoadError::file(path, k))?;
    let rows = u64::try_from(meta.file_metadata().num_rows()).unwrap_or(0);
    if rows == 0 {
        return Ok(ParquetSummary { rows, range: None });
    }
    let mut range: Option<(Timestamp, Timestamp)> = None;
    for group in meta.row_groups() {
        if group.num_rows() == 0 {
            continue;
        }
        let bounds = group
            .column(layout.date.index)
            .statistics()
            .and_then(|s| bounds(s, layout.date.kind));
        let Some((lo, hi)) = bounds else {
            return summary_by_loading(path);
        };
        range = Some(range.map_or((lo, hi), |(a, b)| (a.min(lo), b.max(hi))));
    }
    Ok(ParquetSummary { rows, range })
}

fn bounds(stats: &Statistics, kind: TimeKind) -> Option<(Timestamp, Timestamp)> {
    match (stats, kind) {
        (Statistics::Int64(s), TimeKind::Int64 { per_second }) => {
            // Sub-second values are rejected when loading; here only the range matters.
            Some((
                s.min_opt()?.div_euclid(per_second),
                s.max_opt()?.div_euclid(per_second),
            ))
        }
        (Statistics::Int32(s), TimeKind::Date32) => Some((
            i64::from(*s.min_opt()?) * 86_400,
            i64::from(*s.max_opt()?) * 86_400,
        )),
        _ => None,
    }
}

fn summary_by_loading(path: &Path) -> Result<ParquetSummary, LoadError> {
    let bars = load_parquet(path)?;
    let range = bars.first().zip(bars.last()).map(|(a, b)| (a.ts, b.ts));
    Ok(ParquetSummary {
        rows: bars.len() as u64,
        range,
    })
}
