//! Bulk Parquet reader: each column chunk is decoded in one call into a reused buffer
//! and then copied into the candles, so a million-row file costs a handful of
//! allocations, not one per row.

use std::any::Any;
use std::fs::File;
use std::panic::{self, AssertUnwindSafe};
use std::path::Path;

use ::parquet::column::reader::{ColumnReader, ColumnReaderImpl};
use ::parquet::data_type::{ByteArray, DataType, FixedLenByteArray, Int96};
use ::parquet::errors::ParquetError;
use ::parquet::file::reader::FileReader;
use ::parquet::file::serialized_reader::SerializedFileReader;

use super::columns::{layout, Located, TimeKind, ValueKind};
use crate::candle::{Candle, Timestamp};
use crate::datetime::format_ts;
use crate::error::{LoadError, LoadErrorKind};
use crate::fixed::{Amount, FixedError, Price};
use crate::validate::check_bars;

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

/// An error at a 0-based offset within the current row group, or about the whole file.
type Fault = (Option<usize>, LoadErrorKind);

fn parquet_fault(e: ParquetError) -> Fault {
    (None, LoadErrorKind::Parquet(e.to_string()))
}

const BLANK: Candle = Candle {
    ts: 0,
    open: Price::ZERO,
    high: Price::ZERO,
    low: Price::ZERO,
    close: Price::ZERO,
    volume: Amount::ZERO,
};

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
    let mut buffers = Buffers::default();
    let mut first_row = 1u64;
    for group in 0..meta.num_row_groups() {
        let rows = usize::try_from(meta.row_group(group).num_rows()).map_err(|_| bad_count())?;
        let base = out.len();
        out.resize(base + rows, BLANK);
        let bars = &mut out[base..];
        read_group(&reader, group, &layout, bars, &mut buffers).map_err(|(offset, kind)| {
            match offset {
                Some(i) => LoadError::row(path, first_row + i as u64, kind),
                None => whole(kind),
            }
        })?;
        check_bars(bars, first_row, prev).map_err(|(row, kind)| LoadError::row(path, row, kind))?;
        first_row += rows as u64;
    }
    Ok(())
}

fn read_group(
    reader: &SerializedFileReader<File>,
    group: usize,
    layout: &super::columns::Layout,
    bars: &mut [Candle],
    buffers: &mut Buffers,
) -> Result<(), Fault> {
    let group = reader.get_row_group(group).map_err(parquet_fault)?;
    let column = group
        .get_column_reader(layout.date.index)
        .map_err(parquet_fault)?;
    read_dates(column, &layout.date, bars, buffers)?;
    for (field, located) in layout.values.iter().enumerate() {
        let column = group
            .get_column_reader(located.index)
            .map_err(parquet_fault)?;
        read_values(column, located, field, bars, buffers)?;
    }
    Ok(())
}

/// Decode buffers reused across columns and row groups.
#[derive(Default)]
struct Buffers {
    defs: Vec<i16>,
    i32s: Vec<i32>,
    i64s: Vec<i64>,
    i96s: Vec<Int96>,
    f32s: Vec<f32>,
    f64s: Vec<f64>,
    fixed: Vec<FixedLenByteArray>,
    bytes: Vec<ByteArray>,
}

/// Decodes a whole column chunk of `rows` rows; nulls are errors.
fn read_column<T: DataType>(
    mut reader: ColumnReaderImpl<T>,
    rows: usize,
    max_def: i16,
    name: &str,
    values: &mut Vec<T::T>,
    defs: &mut Vec<i16>,
) -> Result<(), Fault> {
    values.clear();
    defs.clear();
    let mut records = 0;
    while records < rows {
        let (read, _, _) = reader
            .read_records(rows - records, Some(defs), None, values)
            .map_err(parquet_fault)?;
        if read == 0 {
            return Err((
                None,
                LoadErrorKind::Parquet(format!("column `{name}` has fewer values than rows")),
            ));
        }
        records += read;
    }
    if values.len() != rows {
        // Only present values are decoded; the first missing one is the first short level.
        let row = defs
            .iter()
            .position(|&d| d < max_def)
            .unwrap_or(values.len());
        return Err((Some(row), LoadErrorKind::Null(name.to_string())));
    }
    Ok(())
}

fn mismatch(name: &str) -> Fault {
    (
        None,
        LoadErrorKind::WrongType {
            column: name.to_string(),
            found: "a different physical type".into(),
        },
    )
}

fn read_dates(
    column: ColumnReader,
    at: &Located<TimeKind>,
    bars: &mut [Candle],
    buf: &mut Buffers,
) -> Result<(), Fault> {
    let (rows, name) = (bars.len(), at.name.as_str());
    match (at.kind, column) {
        (TimeKind::Int64 { per_second }, ColumnReader::Int64ColumnReader(r)) => {
            read_column(r, rows, at.max_def, name, &mut buf.i64s, &mut buf.defs)?;
            for (i, (bar, &v)) in bars.iter_mut().zip(&buf.i64s).enumerate() {
                bar.ts = at.kind.int64_to_seconds(v).ok_or_else(|| {
                    let text = format!(
                        "{} + {}/{per_second} s",
                        format_ts(v.div_euclid(per_second)),
                        v.rem_euclid(per_second)
                    );
                    (Some(i), LoadErrorKind::SubSecond(text))
                })?;
            }
        }
        (TimeKind::Int96, ColumnReader::Int96ColumnReader(r)) => {
            read_column(r, rows, at.max_def, name, &mut buf.i96s, &mut buf.defs)?;
            for (i, (bar, v)) in bars.iter_mut().zip(&buf.i96s).enumerate() {
                bar.ts = int96_seconds(v).map_err(|kind| (Some(i), kind))?;
            }
        }
        (TimeKind::Date32, ColumnReader::Int32ColumnReader(r)) => {
            read_column(r, rows, at.max_def, name, &mut buf.i32s, &mut buf.defs)?;
            for (bar, &days) in bars.iter_mut().zip(&buf.i32s) {
                bar.ts = i64::from(days) * 86_400;
            }
        }
        _ => return Err(mismatch(name)),
    }
    Ok(())
}

/// INT96: nanoseconds of day in the first 8 bytes, Julian day number in the last 4.
fn int96_seconds(v: &Int96) -> Result<Timestamp, LoadErrorKind> {
    const JULIAN_DAY_OF_EPOCH: i64 = 2_440_588;
    let d = v.data();
    let nanos = (i64::from(d[1]) << 32) | i64::from(d[0]);
    let days = i64::from(d[2]) - JULIAN_DAY_OF_EPOCH;
    let secs = days * 86_400 + nanos.div_euclid(1_000_000_000);
    if nanos % 1_000_000_000 != 0 {
        return Err(LoadErrorKind::SubSecond(format!(
            "{} + {} ns",
            format_ts(secs),
            nanos.rem_euclid(1_000_000_000)
        )));
    }
    Ok(secs)
}

fn read_values(
    column: ColumnReader,
    at: &Located<ValueKind>,
    field: usize,
    bars: &mut [Candle],
    buf: &mut Buffers,
) -> Result<(), Fault> {
    let (rows, name, def) = (bars.len(), at.name.as_str(), at.max_def);
    match (at.kind, column) {
        (ValueKind::Double, ColumnReader::DoubleColumnReader(r)) => {
            read_column(r, rows, def, name, &mut buf.f64s, &mut buf.defs)?;
            store(
                bars,
                field,
                name,
                buf.f64s.iter().map(|&x| Amount::from_f64(x)),
            )
        }
        (ValueKind::Float, ColumnReader::FloatColumnReader(r)) => {
            read_column(r, rows, def, name, &mut buf.f32s, &mut buf.defs)?;
            // Via the shortest decimal text: the f32 nearest to 1.1 is not the f64 nearest.
            store(
                bars,
                field,
                name,
                buf.f32s.iter().map(|x| x.to_string().parse::<Amount>()),
            )
        }
        (ValueKind::Int32 { scale }, ColumnReader::Int32ColumnReader(r)) => {
            read_column(r, rows, def, name, &mut buf.i32s, &mut buf.defs)?;
            store(
                bars,
                field,
                name,
                buf.i32s
                    .iter()
                    .map(|&v| Amount::from_unscaled(i128::from(v), scale)),
            )
        }
        (ValueKind::Int64 { scale }, ColumnReader::Int64ColumnReader(r)) => {
            read_column(r, rows, def, name, &mut buf.i64s, &mut buf.defs)?;
            store(
                bars,
                field,
                name,
                buf.i64s
                    .iter()
                    .map(|&v| Amount::from_unscaled(i128::from(v), scale)),
            )
        }
        (ValueKind::Bytes { scale }, ColumnReader::FixedLenByteArrayColumnReader(r)) => {
            read_column(r, rows, def, name, &mut buf.fixed, &mut buf.defs)?;
            store(
                bars,
                field,
                name,
                buf.fixed.iter().map(|b| be_decimal(b.data(), scale)),
            )
        }
        (ValueKind::Bytes { scale }, ColumnReader::ByteArrayColumnReader(r)) => {
            read_column(r, rows, def, name, &mut buf.bytes, &mut buf.defs)?;
            store(
                bars,
                field,
                name,
                buf.bytes.iter().map(|b| be_decimal(b.data(), scale)),
            )
        }
        _ => Err(mismatch(name)),
    }
}

/// A big-endian two's complement decimal of 1 to 16 bytes.
fn be_decimal(bytes: &[u8], scale: u32) -> Result<Amount, FixedError> {
    let Some(&first) = bytes.first().filter(|_| bytes.len() <= 16) else {
        return Err(FixedError::OutOfRange(format!(
            "{}-byte decimal",
            bytes.len()
        )));
    };
    let mut wide = if first & 0x80 != 0 {
        [0xff; 16]
    } else {
        [0; 16]
    };
    wide[16 - bytes.len()..].copy_from_slice(bytes);
    Amount::from_unscaled(i128::from_be_bytes(wide), scale)
}

/// Writes converted values into field `field` (open, high, low, close, volume).
fn store(
    bars: &mut [Candle],
    field: usize,
    name: &str,
    values: impl Iterator<Item = Result<Amount, FixedError>>,
) -> Result<(), Fault> {
    for (i, (bar, value)) in bars.iter_mut().zip(values).enumerate() {
        let fault = |source| {
            (
                Some(i),
                LoadErrorKind::BadNumber {
                    column: name.to_string(),
                    source,
                },
            )
        };
        let value = value.map_err(fault)?;
        if field == 4 {
            bar.volume = value;
            continue;
        }
        let price = i64::try_from(value.raw())
            .map(Price::from_raw)
            .map_err(|_| fault(FixedError::OutOfRange(value.to_string())))?;
        match field {
            0 => bar.open = price,
            1 => bar.high = price,
            2 => bar.low = price,
            _ => bar.close = price,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn big_endian_decimals() {
        assert_eq!(
            be_decimal(&[0x00, 0x27, 0x2e], 2).unwrap(),
            "100.30".parse().unwrap()
        );
        assert_eq!(be_decimal(&[0xff], 0).unwrap(), Amount::from_int(-1));
        assert_eq!(
            be_decimal(&[0x80, 0x00], 0).unwrap(),
            Amount::from_int(-32768)
        );
        assert!(be_decimal(&[], 0).is_err());
        assert!(be_decimal(&[0; 17], 0).is_err());
    }

    #[test]
    fn int96_timestamps() {
        let mut v = Int96::new();
        // 1970-01-02T00:00:01Z
        v.set_data(1_000_000_000, 0, 2_440_589);
        assert_eq!(int96_seconds(&v).unwrap(), 86_401);
        v.set_data(1, 0, 2_440_589);
        assert!(matches!(
            int96_seconds(&v),
            Err(LoadErrorKind::SubSecond(_))
        ));
    }
}
