//! Decodes one batch of one column into seconds, prices or amounts.

use ::parquet::column::reader::{ColumnReader, ColumnReaderImpl};
use ::parquet::data_type::{ByteArray, DataType, FixedLenByteArray, Int96};
use ::parquet::errors::ParquetError;

use super::columns::{Located, TimeKind, ValueKind};
use super::flba::{be_int, FlbaPages};
use crate::candle::Timestamp;
use crate::datetime::format_ts;
use crate::error::LoadErrorKind;
use crate::fixed::{round_half_away, Amount, FixedError, Price, FAST_LIMIT, SCALE};

/// An error at a 0-based offset within the current batch, or about the whole column.
pub(crate) type Fault = (Option<usize>, LoadErrorKind);

pub(crate) fn parquet_fault(e: ParquetError) -> Fault {
    (None, LoadErrorKind::Parquet(e.to_string()))
}

/// Raw decode buffers, one per physical type, reused across columns and batches.
#[derive(Default)]
pub(crate) struct Scratch {
    defs: Vec<i16>,
    i32s: Vec<i32>,
    i64s: Vec<i64>,
    i96s: Vec<Int96>,
    f32s: Vec<f32>,
    f64s: Vec<f64>,
    fixed: Vec<FixedLenByteArray>,
    bytes: Vec<ByteArray>,
    unscaled: Vec<i128>,
}

/// Reads the next `rows` values of a column; nulls are errors.
fn read_batch<T: DataType>(
    reader: &mut ColumnReaderImpl<T>,
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
            let msg = format!("column `{name}` has fewer values than rows");
            return Err((None, LoadErrorKind::Parquet(msg)));
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
    let found = "a different physical type".to_string();
    (
        None,
        LoadErrorKind::WrongType {
            column: name.to_string(),
            found,
        },
    )
}

/// Decodes the next `rows` bar times into `out` (whole seconds).
pub(crate) fn decode_dates(
    reader: &mut ColumnReader,
    at: &Located<TimeKind>,
    rows: usize,
    out: &mut Vec<Timestamp>,
    s: &mut Scratch,
) -> Result<(), Fault> {
    let name = at.name.as_str();
    out.clear();
    match (at.kind, reader) {
        (TimeKind::Int64 { per_second }, ColumnReader::Int64ColumnReader(r)) => {
            read_batch(r, rows, at.max_def, name, &mut s.i64s, &mut s.defs)?;
            // Literal divisors let the compiler turn the per-row division into a multiply.
            match per_second {
                1_000_000_000 => int64_seconds(&s.i64s, 1_000_000_000, out),
                1_000_000 => int64_seconds(&s.i64s, 1_000_000, out),
                1_000 => int64_seconds(&s.i64s, 1_000, out),
                other => int64_seconds(&s.i64s, other, out),
            }
        }
        (TimeKind::Int96, ColumnReader::Int96ColumnReader(r)) => {
            read_batch(r, rows, at.max_def, name, &mut s.i96s, &mut s.defs)?;
            for (i, v) in s.i96s.iter().enumerate() {
                out.push(int96_seconds(v).map_err(|kind| (Some(i), kind))?);
            }
            Ok(())
        }
        (TimeKind::Date32, ColumnReader::Int32ColumnReader(r)) => {
            read_batch(r, rows, at.max_def, name, &mut s.i32s, &mut s.defs)?;
            out.extend(s.i32s.iter().map(|&days| i64::from(days) * 86_400));
            Ok(())
        }
        _ => Err(mismatch(name)),
    }
}

/// Converts INT64 timestamps counting `per_second` units per second.
#[inline(always)]
fn int64_seconds(raw: &[i64], per_second: i64, out: &mut Vec<Timestamp>) -> Result<(), Fault> {
    for (i, &v) in raw.iter().enumerate() {
        if v % per_second != 0 {
            let (secs, rest) = (v.div_euclid(per_second), v.rem_euclid(per_second));
            let text = format!("{} + {rest}/{per_second} s", format_ts(secs));
            return Err((Some(i), LoadErrorKind::SubSecond(text)));
        }
        out.push(v / per_second);
    }
    Ok(())
}

/// INT96: nanoseconds of day in the first 8 bytes, Julian day number in the last 4.
pub(crate) fn int96_seconds(v: &Int96) -> Result<Timestamp, LoadErrorKind> {
    const JULIAN_DAY_OF_EPOCH: i64 = 2_440_588;
    let d = v.data();
    let nanos = (i64::from(d[1]) << 32) | i64::from(d[0]);
    let days = i64::from(d[2]) - JULIAN_DAY_OF_EPOCH;
    let secs = days * 86_400 + nanos.div_euclid(1_000_000_000);
    if nanos % 1_000_000_000 != 0 {
        let rest = nanos.rem_euclid(1_000_000_000);
        return Err(LoadErrorKind::SubSecond(format!(
            "{} + {rest} ns",
            format_ts(secs)
        )));
    }
    Ok(secs)
}

/// A fixed-point target: [`Price`] for open/high/low/close, [`Amount`] for volume.
pub(crate) trait Scaled: Sized {
    fn from_raw_i64(raw: i64) -> Self;
    fn from_float(x: f64) -> Result<Self, FixedError>;
    fn from_amount(a: Amount) -> Result<Self, FixedError>;
}

impl Scaled for Price {
    #[inline]
    fn from_raw_i64(raw: i64) -> Self {
        Price::from_raw(raw)
    }
    #[inline]
    fn from_float(x: f64) -> Result<Self, FixedError> {
        Price::from_f64(x)
    }
    #[inline]
    fn from_amount(a: Amount) -> Result<Self, FixedError> {
        i64::try_from(a.raw())
            .map(Price::from_raw)
            .map_err(|_| FixedError::OutOfRange(a.to_string()))
    }
}

impl Scaled for Amount {
    #[inline]
    fn from_raw_i64(raw: i64) -> Self {
        Amount::from_raw(i128::from(raw))
    }
    #[inline]
    fn from_float(x: f64) -> Result<Self, FixedError> {
        Amount::from_f64(x)
    }
    #[inline]
    fn from_amount(a: Amount) -> Result<Self, FixedError> {
        Ok(a)
    }
}

/// Where a price or volume column's values come from.
pub(crate) enum Source {
    /// The parquet crate's column reader: every type and encoding.
    Generic(Box<ColumnReader>),
    /// Straight from FIXED_LEN_BYTE_ARRAY decimal pages (see [`FlbaPages`]).
    FlbaPages(FlbaPages),
}

/// Decodes the next `rows` values of a price or volume column into `out`. When the fast
/// path meets a page it cannot read, the column continues with the generic reader from
/// `reopen`, skipped past the `consumed` rows of earlier batches.
pub(crate) fn decode_values<T: Scaled>(
    source: &mut Source,
    at: &Located<ValueKind>,
    rows: usize,
    out: &mut Vec<T>,
    s: &mut Scratch,
    consumed: usize,
    reopen: &dyn Fn() -> Result<ColumnReader, Fault>,
) -> Result<(), Fault> {
    loop {
        match source {
            Source::Generic(reader) => return decode_generic(reader, at, rows, out, s),
            Source::FlbaPages(flba) => {
                if flba.read(rows, &mut s.unscaled)? {
                    let (ValueKind::Fixed { scale, .. } | ValueKind::Variable { scale }) = at.kind
                    else {
                        return Err(mismatch(&at.name));
                    };
                    let rescale = Rescale::new(scale);
                    out.clear();
                    let value = |&v: &i128| rescale.apply(v).and_then(T::from_amount);
                    return convert(out, &at.name, s.unscaled.iter().map(value));
                }
                let mut reader = reopen()?;
                let ColumnReader::FixedLenByteArrayColumnReader(r) = &mut reader else {
                    return Err(mismatch(&at.name));
                };
                if r.skip_records(consumed).map_err(parquet_fault)? != consumed {
                    let msg = format!("column `{}` has fewer values than rows", at.name);
                    return Err((None, LoadErrorKind::Parquet(msg)));
                }
                *source = Source::Generic(Box::new(reader));
            }
        }
    }
}

fn decode_generic<T: Scaled>(
    reader: &mut ColumnReader,
    at: &Located<ValueKind>,
    rows: usize,
    out: &mut Vec<T>,
    s: &mut Scratch,
) -> Result<(), Fault> {
    let (name, def) = (at.name.as_str(), at.max_def);
    out.clear();
    let unscaled = |v: i128, rescale: Rescale| rescale.apply(v).and_then(T::from_amount);
    match (at.kind, reader) {
        (ValueKind::Double, ColumnReader::DoubleColumnReader(r)) => {
            read_batch(r, rows, def, name, &mut s.f64s, &mut s.defs)?;
            // Hot path of float files: convert everything without per-value error
            // plumbing, then redo the batch the careful way only if something was out
            // of range or not finite (NaN fails the comparison too).
            let mut all_fit = true;
            out.extend(s.f64s.iter().map(|&x| {
                let y = x * SCALE as f64;
                let fits = y.abs() < FAST_LIMIT;
                all_fit &= fits;
                T::from_raw_i64(round_half_away(if fits { y } else { 0.0 }))
            }));
            if all_fit {
                return Ok(());
            }
            out.clear();
            convert(out, name, s.f64s.iter().map(|&x| T::from_float(x)))
        }
        (ValueKind::Float, ColumnReader::FloatColumnReader(r)) => {
            read_batch(r, rows, def, name, &mut s.f32s, &mut s.defs)?;
            // Via the shortest decimal text: the f32 nearest 1.1 is not the f64 nearest.
            // Allocates per value, but float32 OHLCV files are rare.
            let text = |x: &f32| x.to_string().parse::<Amount>().and_then(T::from_amount);
            convert(out, name, s.f32s.iter().map(text))
        }
        (ValueKind::Int32 { scale }, ColumnReader::Int32ColumnReader(r)) => {
            let scale = Rescale::new(scale);
            read_batch(r, rows, def, name, &mut s.i32s, &mut s.defs)?;
            convert(
                out,
                name,
                s.i32s.iter().map(|&v| unscaled(i128::from(v), scale)),
            )
        }
        (ValueKind::Int64 { scale }, ColumnReader::Int64ColumnReader(r)) => {
            let scale = Rescale::new(scale);
            read_batch(r, rows, def, name, &mut s.i64s, &mut s.defs)?;
            convert(
                out,
                name,
                s.i64s.iter().map(|&v| unscaled(i128::from(v), scale)),
            )
        }
        (ValueKind::Fixed { scale, .. }, ColumnReader::FixedLenByteArrayColumnReader(r)) => {
            let scale = Rescale::new(scale);
            read_batch(r, rows, def, name, &mut s.fixed, &mut s.defs)?;
            let value = |b: &FixedLenByteArray| unscaled(be_int(b.data()), scale);
            convert(out, name, s.fixed.iter().map(value))
        }
        (ValueKind::Variable { scale }, ColumnReader::ByteArrayColumnReader(r)) => {
            let scale = Rescale::new(scale);
            read_batch(r, rows, def, name, &mut s.bytes, &mut s.defs)?;
            let value = |b: &ByteArray| be_decimal(b.data()).and_then(|v| unscaled(v, scale));
            convert(out, name, s.bytes.iter().map(value))
        }
        _ => Err(mismatch(name)),
    }
}

/// [`Amount::from_unscaled`] with the power of ten computed once per column, not per value.
#[derive(Clone, Copy, Debug)]
struct Rescale {
    scale: u32,
    /// 10^|8 - scale|, or `None` when that overflows (every non-zero value then fails).
    factor: Option<i128>,
}

impl Rescale {
    fn new(scale: u32) -> Self {
        let factor = 10i128.checked_pow(scale.abs_diff(crate::fixed::FRACTION_DIGITS));
        Rescale { scale, factor }
    }

    #[inline]
    fn apply(self, unscaled: i128) -> Result<Amount, FixedError> {
        let Some(factor) = self.factor else {
            return Amount::from_unscaled(unscaled, self.scale);
        };
        if self.scale <= crate::fixed::FRACTION_DIGITS {
            return unscaled
                .checked_mul(factor)
                .map(Amount::from_raw)
                .ok_or_else(|| FixedError::OutOfRange(unscaled.to_string()));
        }
        if unscaled % factor != 0 {
            return Err(FixedError::TooPrecise(unscaled.to_string()));
        }
        Ok(Amount::from_raw(unscaled / factor))
    }
}

fn convert<T>(
    out: &mut Vec<T>,
    name: &str,
    values: impl Iterator<Item = Result<T, FixedError>>,
) -> Result<(), Fault> {
    for (i, value) in values.enumerate() {
        let value = value.map_err(|source| {
            (
                Some(i),
                LoadErrorKind::BadNumber {
                    column: name.to_string(),
                    source,
                },
            )
        })?;
        out.push(value);
    }
    Ok(())
}

/// A BYTE_ARRAY decimal's unscaled value: big-endian two's complement, 1 to 16 bytes.
fn be_decimal(bytes: &[u8]) -> Result<i128, FixedError> {
    if bytes.is_empty() || bytes.len() > 16 {
        return Err(FixedError::OutOfRange(format!(
            "{}-byte decimal",
            bytes.len()
        )));
    }
    Ok(be_int(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variable_length_decimals() {
        assert_eq!(be_decimal(&[0x00, 0x27, 0x2e]).unwrap(), 10030);
        assert!(be_decimal(&[]).is_err());
        assert!(be_decimal(&[0; 17]).is_err());
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

    #[test]
    fn fast_float_path_matches_from_f64() {
        use ::parquet::data_type::DoubleType;
        use ::parquet::file::reader::{FileReader, SerializedFileReader};
        use std::sync::Arc;

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.parquet");
        let schema = "message m { REQUIRED DOUBLE open; }";
        let schema = Arc::new(::parquet::schema::parser::parse_message_type(schema).unwrap());
        let file = std::fs::File::create(&path).unwrap();
        let mut w =
            ::parquet::file::writer::SerializedFileWriter::new(file, schema, Default::default())
                .unwrap();
        let values = [
            1.07219,
            0.1,
            0.3,
            100.34,
            2.5e-8,
            1.5e-8,
            -3.25e-8,
            92_233_720_368.5,
            1e11,
            f64::NAN,
        ];
        let mut g = w.next_row_group().unwrap();
        let mut c = g.next_column().unwrap().unwrap();
        c.typed::<DoubleType>()
            .write_batch(&values, None, None)
            .unwrap();
        c.close().unwrap();
        g.close().unwrap();
        w.close().unwrap();

        let reader = SerializedFileReader::new(std::fs::File::open(&path).unwrap()).unwrap();
        let at = Located {
            index: 0,
            name: "open".into(),
            kind: ValueKind::Double,
            max_def: 0,
        };
        let decode = |n: usize| {
            let mut col = reader
                .get_row_group(0)
                .unwrap()
                .get_column_reader(0)
                .unwrap();
            let mut out: Vec<Amount> = Vec::new();
            decode_generic(&mut col, &at, n, &mut out, &mut Scratch::default()).map(|()| out)
        };
        let expected = |n: usize| -> Vec<Amount> {
            values[..n]
                .iter()
                .map(|&x| Amount::from_f64(x).unwrap())
                .collect()
        };
        let fast = decode(7).unwrap();
        assert_eq!(fast, expected(7));
        assert_eq!(fast[0], "1.07219".parse().unwrap());
        // The last two do not fit the fast path but are valid amounts; NaN is reported.
        assert_eq!(decode(9).unwrap(), expected(9));
        let err = decode(10).unwrap_err();
        assert_eq!(err.0, Some(9));
        assert!(matches!(err.1, LoadErrorKind::BadNumber { .. }));
    }

    #[test]
    fn rescale_matches_from_unscaled() {
        for scale in [0, 2, 8, 10, 20, 38, 45] {
            let r = Rescale::new(scale);
            for v in [
                0i128,
                1,
                -1,
                10034,
                12_000_000_000,
                12_345_678_901,
                i128::MAX / 7,
                i128::MIN / 3,
            ] {
                assert_eq!(
                    r.apply(v),
                    Amount::from_unscaled(v, scale),
                    "{v} scale {scale}"
                );
            }
        }
    }

    #[test]
    fn prices_narrow_from_amounts() {
        assert_eq!(
            Price::from_amount(Amount::from_int(5)).unwrap(),
            Price::from_int(5)
        );
        assert!(Price::from_amount(Amount::from_raw(i128::from(i64::MAX) + 1)).is_err());
    }
}
