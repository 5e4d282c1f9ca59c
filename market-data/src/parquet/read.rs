//! Bulk Parquet reader. All six column readers of a row group advance together in
//! batches of [`BATCH_ROWS`]: each column's batch is decoded in one call into a reused
//! buffer, then the candles are assembled row by row while those buffers are still in
//! cache. No allocation per row; the output is written exactly once.

use std::any::Any;
use std::fs::File;
use std::panic::{self, AssertUnwindSafe};
use std::path::Path;

use ::parquet::file::reader::FileReader;
use ::parquet::file::serialized_reader::SerializedFileReader;

use super::columns::{layout, Layout, ValueKind};
use super::decode::{decode_dates, decode_values, parquet_fault, Fault, Scratch, Source};
use super::flba::FlbaPages;
use crate::candle::{Candle, Timestamp};
use crate::error::{LoadError, LoadErrorKind};
use crate::fixed::{Amount, Price};
use crate::validate::check_bars;

/// Rows decoded per batch: the six columns' buffers (about 400 KB) stay in L2 cache.
const BATCH_ROWS: usize = 8192;

/// Loads and validates every bar of one Parquet file.
pub fn load_parquet(path: &Path) -> Result<Vec<Candle>, LoadError> {
    let mut out = Vec::new();
    append_parquet(path, &mut out, &mut None)?;
    Ok(out)
}

/// Appends the bars of one file to `out`, checking that they continue strictly after
/// `prev` (the last bar of a previous day file). On error `out` is left unchanged.
pub(crate) fn append_parquet(
    path: &Path,
    out: &mut Vec<Candle>,
    prev: &mut Option<Timestamp>,
) -> Result<(), LoadError> {
    let len = out.len();
    let saved_prev = *prev;
    // The parquet decoder still has a few `expect`s on malformed pages; a corrupt file
    // must fail its load, not the worker thread.
    let result = panic::catch_unwind(AssertUnwindSafe(|| read_file(path, out, prev)))
        .unwrap_or_else(|payload| {
            Err(LoadError::file(
                path,
                LoadErrorKind::DecoderPanic(panic_text(payload)),
            ))
        });
    if result.is_err() {
        out.truncate(len);
        *prev = saved_prev;
    }
    result
}

fn panic_text(payload: Box<dyn Any + Send>) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

fn read_file(
    path: &Path,
    out: &mut Vec<Candle>,
    prev: &mut Option<Timestamp>,
) -> Result<(), LoadError> {
    let file = File::open(path).map_err(|e| LoadError::io(path, e))?;
    let whole = |kind| LoadError::file(path, kind);
    let reader = SerializedFileReader::new(file)
        .map_err(|e| whole(LoadErrorKind::Parquet(e.to_string())))?;
    let meta = reader.metadata();
    let layout = layout(meta.file_metadata().schema_descr()).map_err(whole)?;
    let bad_count = || whole(LoadErrorKind::Parquet("negative row count".into()));
    out.reserve(usize::try_from(meta.file_metadata().num_rows()).map_err(|_| bad_count())?);
    let mut batch = Batch::default();
    let mut first_row = 1u64;
    for group in 0..meta.num_row_groups() {
        let rows = usize::try_from(meta.row_group(group).num_rows()).map_err(|_| bad_count())?;
        read_group(
            &reader, group, rows, &layout, out, &mut batch, first_row, prev,
        )
        .map_err(|(row, kind)| match row {
            Some(row) => LoadError::row(path, row, kind),
            None => whole(kind),
        })?;
        first_row += rows as u64;
    }
    Ok(())
}

/// One batch of decoded columns, reused across batches and row groups.
#[derive(Default)]
struct Batch {
    ts: Vec<Timestamp>,
    /// open, high, low, close.
    prices: [Vec<Price>; 4],
    volume: Vec<Amount>,
    scratch: Scratch,
}

/// Reads one row group; errors carry the 1-based file row.
#[allow(clippy::too_many_arguments)]
fn read_group(
    reader: &SerializedFileReader<File>,
    group: usize,
    rows: usize,
    layout: &Layout,
    out: &mut Vec<Candle>,
    batch: &mut Batch,
    first_row: u64,
    prev: &mut Option<Timestamp>,
) -> Result<(), (Option<u64>, LoadErrorKind)> {
    let whole = |(_, kind): Fault| (None, kind);
    let group = reader
        .get_row_group(group)
        .map_err(|e| whole(parquet_fault(e)))?;
    let column = |i: usize| {
        group
            .get_column_reader(i)
            .map_err(|e| whole(parquet_fault(e)))
    };
    let mut date = column(layout.date.index)?;
    let mut values: Vec<Source> = layout
        .values
        .iter()
        .map(|v| match v.kind {
            ValueKind::Fixed { width, .. } => {
                let pages = group
                    .get_column_page_reader(v.index)
                    .map_err(|e| whole(parquet_fault(e)))?;
                Ok(Source::FlbaPages(FlbaPages::new(pages, width, v.max_def)))
            }
            _ => column(v.index).map(|c| Source::Generic(Box::new(c))),
        })
        .collect::<Result<_, _>>()?;
    let mut done = 0;
    while done < rows {
        let n = BATCH_ROWS.min(rows - done);
        let batch_first = first_row + done as u64;
        let at = |(offset, kind): Fault| (offset.map(|i| batch_first + i as u64), kind);
        let Batch {
            ts,
            prices,
            volume,
            scratch,
        } = &mut *batch;
        decode_dates(&mut date, &layout.date, n, ts, scratch).map_err(at)?;
        for (field, source) in values.iter_mut().enumerate() {
            let located = &layout.values[field];
            let reopen = || {
                group
                    .get_column_reader(located.index)
                    .map_err(parquet_fault)
            };
            match prices.get_mut(field) {
                Some(out) => decode_values(source, located, n, out, scratch, done, &reopen),
                None => decode_values(source, located, n, volume, scratch, done, &reopen),
            }
            .map_err(at)?;
        }
        let base = out.len();
        let [open, high, low, close] = &*prices;
        out.extend(
            ts.iter()
                .zip(open)
                .zip(high)
                .zip(low)
                .zip(close)
                .zip(volume.iter())
                .map(
                    |(((((&ts, &open), &high), &low), &close), &volume)| Candle {
                        ts,
                        open,
                        high,
                        low,
                        close,
                        volume,
                    },
                ),
        );
        check_bars(&out[base..], batch_first, prev).map_err(|(row, kind)| (Some(row), kind))?;
        done += n;
    }
    Ok(())
}
