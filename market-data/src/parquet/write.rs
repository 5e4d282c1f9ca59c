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
use crate::layout::{daily_file, day_file};
use crate::timeframe::Timeframe;

/// How prices and volumes are stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PriceEncoding {
    /// IEEE doubles (what pandas writes by default).
    Float64,
    /// Exact decimal128: FIXED_LEN_BYTE_ARRAY(16), DECIMAL(38, 8).
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
    let mut writer = SerializedFileWriter::new(file, schema(encoding)?, Arc::new(props))?;
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
                let raw = |c: &Candle| match index {
                    1 => i128::from(c.open.raw()),
                    2 => i128::from(c.high.raw()),
                    3 => i128::from(c.low.raw()),
                    4 => i128::from(c.close.raw()),
                    _ => c.volume.raw(),
                };
                match encoding {
                    PriceEncoding::Float64 => {
                        let values: Vec<f64> = chunk.iter().map(|c| raw(c) as f64 / 1e8).collect();
                        column
                            .typed::<DoubleType>()
                            .write_batch(&values, None, None)?;
                    }
                    PriceEncoding::Decimal128 => {
                        let values: Vec<FixedLenByteArray> = chunk
                            .iter()
                            .map(|c| ByteArray::from(raw(c).to_be_bytes().to_vec()).into())
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

fn schema(encoding: PriceEncoding) -> Result<TypePtr, ParquetError> {
    let mut fields = vec![Arc::new(
        Type::primitive_type_builder("date", PhysicalType::INT64)
            .with_repetition(Repetition::REQUIRED)
            .with_logical_type(Some(LogicalType::timestamp(true, TimeUnit::NANOS)))
            .build()?,
    )];
    for name in ["open", "high", "low", "close", "volume"] {
        let field = match encoding {
            PriceEncoding::Float64 => Type::primitive_type_builder(name, PhysicalType::DOUBLE),
            PriceEncoding::Decimal128 => {
                Type::primitive_type_builder(name, PhysicalType::FIXED_LEN_BYTE_ARRAY)
                    .with_length(16)
                    .with_logical_type(Some(LogicalType::decimal(8, 38)))
                    .with_precision(38)
                    .with_scale(8)
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
