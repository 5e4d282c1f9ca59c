//! Writes candles as Parquet in the data-manager layout, for tests, benchmarks and
//! tooling that turns synthetic or downloaded bars into a data root.

use std::fmt::Display;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ::parquet::basic::{Compression, LogicalType, Repetition, TimeUnit, Type as PhysicalType};
use ::parquet::data_type::{
    ByteArray, DoubleType, FixedLenByteArray, FixedLenByteArrayType, Int64Type,
};
use ::parquet::errors::ParquetError;
use ::parquet::file::properties::WriterProperties;
use ::parquet::file::writer::SerializedFileWriter;
use ::parquet::schema::types::{Type, TypePtr};

use crate::candle::Candle;
use crate::datetime::utc_date;
use crate::error::WriteError;
use crate::fixed::FRACTION_DIGITS;
use crate::layout::{daily_file, day_file};
use crate::timeframe::Timeframe;

/// How prices and volumes are stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PriceEncoding {
    /// IEEE doubles (what pandas writes by default).
    Float64,
    /// Exact decimals (Arrow's decimal128) in FIXED_LEN_BYTE_ARRAY: per column, the
    /// smallest scale (at most 8) and precision holding every value, and the fewest
    /// bytes for that precision, as pyarrow writes a decimal column of that type
    /// (prices like 100.25 become DECIMAL(5,2) in 3 bytes).
    Decimal128,
}

/// Rows per row group: large groups keep per-group overhead out of bulk reads.
const ROW_GROUP_ROWS: usize = 1 << 20;

/// Writes `candles` to one Parquet file: `date` as INT64 UTC nanosecond timestamps and
/// the five value columns in `encoding`, all REQUIRED, Snappy-compressed.
pub fn write_parquet(
    path: &Path,
    candles: &[Candle],
    encoding: PriceEncoding,
) -> Result<(), WriteError> {
    let fail = |e: &dyn Display| WriteError {
        file: path.to_path_buf(),
        message: e.to_string(),
    };
    let file = File::create(path).map_err(|e| fail(&e))?;
    write_to(file, candles, encoding).map_err(|e| fail(&e))
}

/// Writes `candles` under `root` in the data-manager layout: daily bars to
/// `candles/daily/<SYMBOL>.parquet`, intraday bars to one file per UTC day at
/// `candles/<timeframe>/<SYMBOL>/<YYYY-MM-DD>.parquet`. Returns the files written.
pub fn write_layout(
    root: &Path,
    symbol: &str,
    timeframe: Timeframe,
    candles: &[Candle],
    encoding: PriceEncoding,
) -> Result<Vec<PathBuf>, WriteError> {
    let mut parts: Vec<(PathBuf, &[Candle])> = Vec::new();
    if timeframe == Timeframe::Daily {
        parts.push((daily_file(root, symbol), candles));
    } else {
        for day in candles.chunk_by(|a, b| utc_date(a.ts) == utc_date(b.ts)) {
            let date = utc_date(day[0].ts).ok_or_else(|| WriteError {
                file: root.to_path_buf(),
                message: format!("timestamp {} is out of range", day[0].ts),
            })?;
            parts.push((day_file(root, timeframe, symbol, date), day));
        }
    }
    for (path, bars) in &parts {
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(|e| WriteError {
                file: dir.to_path_buf(),
                message: e.to_string(),
            })?;
        }
        write_parquet(path, bars, encoding)?;
    }
    Ok(parts.into_iter().map(|(p, _)| p).collect())
}

fn write_to(file: File, candles: &[Candle], encoding: PriceEncoding) -> Result<(), ParquetError> {
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        // Prices rarely repeat; dictionary pages would only be built and thrown away.
        .set_dictionary_enabled(false)
        .build();
    let mut shapes = [DecimalShape::WIDEST; 5];
    if encoding == PriceEncoding::Decimal128 {
        for (field, shape) in shapes.iter_mut().enumerate() {
            *shape = DecimalShape::fit(candles.iter().map(|c| field_raw(c, field)))?;
        }
    }
    let mut writer = SerializedFileWriter::new(file, schema(encoding, &shapes)?, Arc::new(props))?;
    for chunk in candles.chunks(ROW_GROUP_ROWS) {
        let mut group = writer.next_row_group()?;
        let mut index = 0;
        while let Some(mut column) = group.next_column()? {
            if index == 0 {
                let nanos = chunk
                    .iter()
                    .map(|c| c.ts.checked_mul(1_000_000_000))
                    .collect::<Option<Vec<i64>>>()
                    .ok_or_else(|| {
                        ParquetError::General("timestamp out of nanosecond range".into())
                    })?;
                column
                    .typed::<Int64Type>()
                    .write_batch(&nanos, None, None)?;
            } else {
                let field = index - 1;
                match encoding {
                    PriceEncoding::Float64 => {
                        let values: Vec<f64> = chunk
                            .iter()
                            .map(|c| field_raw(c, field) as f64 / 1e8)
                            .collect();
                        column
                            .typed::<DoubleType>()
                            .write_batch(&values, None, None)?;
                    }
                    PriceEncoding::Decimal128 => {
                        let shape = shapes[field];
                        let values: Vec<FixedLenByteArray> = chunk
                            .iter()
                            .map(|c| ByteArray::from(shape.bytes(field_raw(c, field))).into())
                            .collect();
                        column
                            .typed::<FixedLenByteArrayType>()
                            .write_batch(&values, None, None)?;
                    }
                }
            }
            column.close()?;
            index += 1;
        }
        group.close()?;
    }
    writer.close()?;
    Ok(())
}

/// Raw scaled value (10^8) of open, high, low, close or volume.
fn field_raw(c: &Candle, field: usize) -> i128 {
    match field {
        0 => i128::from(c.open.raw()),
        1 => i128::from(c.high.raw()),
        2 => i128::from(c.low.raw()),
        3 => i128::from(c.close.raw()),
        _ => c.volume.raw(),
    }
}

/// DECIMAL(precision, scale) stored in `width` big-endian bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct DecimalShape {
    scale: u32,
    precision: u32,
    width: usize,
}

impl DecimalShape {
    /// DECIMAL(38, 8) in 16 bytes: holds anything an [`crate::Amount`] holds but 10^38+.
    const WIDEST: DecimalShape = DecimalShape {
        scale: 8,
        precision: 38,
        width: 16,
    };

    /// The smallest scale (at most 8) and precision that hold every raw 10^8-scaled value.
    fn fit(raws: impl Iterator<Item = i128>) -> Result<Self, ParquetError> {
        let mut dropped = FRACTION_DIGITS; // trailing fractional zeros common to all values
        let mut largest = 0u128;
        for raw in raws {
            while dropped > 0 && raw % 10i128.pow(dropped) != 0 {
                dropped -= 1;
            }
            largest = largest.max(raw.unsigned_abs());
        }
        let scale = FRACTION_DIGITS - dropped;
        let digits = (largest / 10u128.pow(dropped))
            .checked_ilog10()
            .map_or(1, |d| d + 1);
        let precision = digits.max(scale).max(1);
        if precision > 38 {
            return Err(ParquetError::General(
                "value too large for decimal128".into(),
            ));
        }
        // Fewest bytes whose signed range holds 10^precision - 1 (the Parquet rule).
        let width = (1..=16usize)
            .find(|&n| 10i128.pow(precision) - 1 <= i128::MAX >> (128 - 8 * n))
            .unwrap_or(16);
        Ok(DecimalShape {
            scale,
            precision,
            width,
        })
    }

    /// The value's unscaled integer, big-endian in `width` bytes.
    fn bytes(self, raw: i128) -> Vec<u8> {
        let unscaled = raw / 10i128.pow(FRACTION_DIGITS - self.scale);
        unscaled.to_be_bytes()[16 - self.width..].to_vec()
    }
}

fn schema(encoding: PriceEncoding, shapes: &[DecimalShape; 5]) -> Result<TypePtr, ParquetError> {
    let mut fields = vec![Arc::new(
        Type::primitive_type_builder("date", PhysicalType::INT64)
            .with_repetition(Repetition::REQUIRED)
            .with_logical_type(Some(LogicalType::timestamp(true, TimeUnit::NANOS)))
            .build()?,
    )];
    for (name, shape) in ["open", "high", "low", "close", "volume"]
        .into_iter()
        .zip(shapes)
    {
        let field = match encoding {
            PriceEncoding::Float64 => Type::primitive_type_builder(name, PhysicalType::DOUBLE),
            PriceEncoding::Decimal128 => {
                let (scale, precision) = (shape.scale as i32, shape.precision as i32);
                Type::primitive_type_builder(name, PhysicalType::FIXED_LEN_BYTE_ARRAY)
                    .with_length(shape.width as i32)
                    .with_logical_type(Some(LogicalType::decimal(scale, precision)))
                    .with_precision(precision)
                    .with_scale(scale)
            }
        };
        fields.push(Arc::new(
            field.with_repetition(Repetition::REQUIRED).build()?,
        ));
    }
    Ok(Arc::new(
        Type::group_type_builder("schema")
            .with_fields(fields)
            .build()?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fit(values: &[&str]) -> DecimalShape {
        DecimalShape::fit(
            values
                .iter()
                .map(|v| v.parse::<crate::Amount>().unwrap().raw()),
        )
        .unwrap()
    }

    #[test]
    fn decimal_shapes_are_minimal() {
        assert_eq!(
            fit(&["100.25", "99.5", "104.06"]),
            DecimalShape {
                scale: 2,
                precision: 5,
                width: 3
            }
        );
        assert_eq!(
            fit(&["22351900"]),
            DecimalShape {
                scale: 0,
                precision: 8,
                width: 4
            }
        );
        assert_eq!(
            fit(&["1.07219", "1.1"]),
            DecimalShape {
                scale: 5,
                precision: 6,
                width: 3
            }
        );
        assert_eq!(
            fit(&["0.05"]),
            DecimalShape {
                scale: 2,
                precision: 2,
                width: 1
            }
        );
        assert_eq!(
            fit(&["0", "-0.00000001"]),
            DecimalShape {
                scale: 8,
                precision: 8,
                width: 4
            }
        );
        assert_eq!(
            fit(&[]),
            DecimalShape {
                scale: 0,
                precision: 1,
                width: 1
            }
        );
        let widest = DecimalShape::fit([10i128.pow(38) - 1].into_iter()).unwrap();
        assert_eq!(widest, DecimalShape::WIDEST);
        let big = DecimalShape::fit([10i128.pow(37)].into_iter()).unwrap(); // 10^29 units
        assert_eq!(
            big,
            DecimalShape {
                scale: 0,
                precision: 30,
                width: 13
            }
        );
        let huge = DecimalShape::fit([i128::MAX].into_iter());
        assert!(huge.is_err());
        let shape = fit(&["-1.5"]);
        assert_eq!(
            shape.bytes("-1.5".parse::<crate::Amount>().unwrap().raw()),
            vec![0xf1]
        ); // -15
    }
}
