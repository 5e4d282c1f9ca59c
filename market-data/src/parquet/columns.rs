//! Finds the OHLCV columns in a Parquet schema and decides how to decode each.

use ::parquet::basic::{ConvertedType, LogicalType, TimeUnit, Type as PhysicalType};
use ::parquet::schema::types::{ColumnDescriptor, SchemaDescriptor};

use crate::error::LoadErrorKind;

/// How the `date` column encodes time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TimeKind {
    /// INT64 counting `per_second` units since the epoch.
    Int64 {
        /// Units per second (1000 for millis, ...).
        per_second: i64,
    },
    /// Legacy INT96 (Julian day + nanoseconds of day).
    Int96,
    /// INT32 days since the epoch.
    Date32,
}

/// How a price or volume column encodes numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ValueKind {
    /// IEEE double.
    Double,
    /// IEEE single.
    Float,
    /// INT32 unscaled decimal (scale 0 for plain integers).
    Int32 { scale: u32 },
    /// INT64 unscaled decimal (scale 0 for plain integers).
    Int64 { scale: u32 },
    /// FIXED_LEN_BYTE_ARRAY decimal: big-endian two's complement, `width` bytes.
    Fixed { scale: u32, width: usize },
    /// BYTE_ARRAY decimal: big-endian two's complement of any length up to 16.
    Variable { scale: u32 },
}

/// A located column: index in the schema, name as written, decoding.
#[derive(Clone, Debug)]
pub(crate) struct Located<K> {
    pub index: usize,
    pub name: String,
    pub kind: K,
    /// Definition level of a present value (0 for REQUIRED columns).
    pub max_def: i16,
}

/// Where the six columns are and how to decode them.
#[derive(Clone, Debug)]
pub(crate) struct Layout {
    pub date: Located<TimeKind>,
    /// open, high, low, close, volume.
    pub values: [Located<ValueKind>; 5],
}

/// Locates the columns by name (case-insensitive) and checks their types.
pub(crate) fn layout(schema: &SchemaDescriptor) -> Result<Layout, LoadErrorKind> {
    let date = locate(
        schema,
        &["date", "datetime", "timestamp", "time"],
        "date",
        time_kind,
    )?;
    let value = |name: &'static str| locate(schema, &[name], name, value_kind);
    Ok(Layout {
        date,
        values: [
            value("open")?,
            value("high")?,
            value("low")?,
            value("close")?,
            value("volume")?,
        ],
    })
}

fn locate<K>(
    schema: &SchemaDescriptor,
    names: &[&str],
    required: &'static str,
    kind: fn(&ColumnDescriptor) -> Option<K>,
) -> Result<Located<K>, LoadErrorKind> {
    let (index, col) = names
        .iter()
        .find_map(|wanted| {
            schema.columns().iter().enumerate().find(|(_, c)| {
                // Only top-level columns: a nested `x.date` is not the date column.
                c.path().parts().len() == 1 && c.name().eq_ignore_ascii_case(wanted)
            })
        })
        .ok_or(LoadErrorKind::MissingColumn(required))?;
    let wrong = || LoadErrorKind::WrongType {
        column: col.name().to_string(),
        found: describe(col),
    };
    if col.max_rep_level() != 0 {
        return Err(wrong());
    }
    let kind = kind(col).ok_or_else(wrong)?;
    Ok(Located {
        index,
        name: col.name().to_string(),
        kind,
        max_def: col.max_def_level(),
    })
}

fn time_kind(col: &ColumnDescriptor) -> Option<TimeKind> {
    match col.physical_type() {
        PhysicalType::INT64 => {
            let per_second = match (col.logical_type_ref(), col.converted_type()) {
                // Timestamps not adjusted to UTC ("local" time, what pandas writes for
                // naive datetimes) are taken as UTC: the data layout is UTC throughout.
                (Some(LogicalType::Timestamp(t)), _) => match t.unit {
                    TimeUnit::MILLIS => 1_000,
                    TimeUnit::MICROS => 1_000_000,
                    TimeUnit::NANOS => 1_000_000_000,
                },
                (None, ConvertedType::TIMESTAMP_MILLIS) => 1_000,
                (None, ConvertedType::TIMESTAMP_MICROS) => 1_000_000,
                _ => return None,
            };
            Some(TimeKind::Int64 { per_second })
        }
        PhysicalType::INT96 => Some(TimeKind::Int96),
        PhysicalType::INT32 => match (col.logical_type_ref(), col.converted_type()) {
            (Some(LogicalType::Date), _) | (None, ConvertedType::DATE) => Some(TimeKind::Date32),
            _ => None,
        },
        _ => None,
    }
}

fn value_kind(col: &ColumnDescriptor) -> Option<ValueKind> {
    let decimal = matches!(col.logical_type_ref(), Some(LogicalType::Decimal(_)))
        || (col.logical_type_ref().is_none() && col.converted_type() == ConvertedType::DECIMAL);
    let plain_int = match col.logical_type_ref() {
        None => col.converted_type() == ConvertedType::NONE,
        Some(LogicalType::Integer(i)) => i.is_signed,
        _ => false,
    };
    let scale = if decimal {
        u32::try_from(col.type_scale()).ok()?
    } else {
        0
    };
    match col.physical_type() {
        PhysicalType::DOUBLE => Some(ValueKind::Double),
        PhysicalType::FLOAT => Some(ValueKind::Float),
        PhysicalType::INT32 if decimal || plain_int => Some(ValueKind::Int32 { scale }),
        PhysicalType::INT64 if decimal || plain_int => Some(ValueKind::Int64 { scale }),
        // More than 16 bytes cannot fit an i128.
        PhysicalType::FIXED_LEN_BYTE_ARRAY if decimal && (1..=16).contains(&col.type_length()) => {
            Some(ValueKind::Fixed {
                scale,
                width: col.type_length() as usize,
            })
        }
        PhysicalType::BYTE_ARRAY if decimal => Some(ValueKind::Variable { scale }),
        _ => None,
    }
}

/// Human-readable type, e.g. `BYTE_ARRAY (String)`.
fn describe(col: &ColumnDescriptor) -> String {
    let repeated = if col.max_rep_level() > 0 {
        "repeated "
    } else {
        ""
    };
    match col.logical_type_ref() {
        Some(l) => format!("{repeated}{} ({l:?})", col.physical_type()),
        None if col.converted_type() != ConvertedType::NONE => {
            format!(
                "{repeated}{} ({})",
                col.physical_type(),
                col.converted_type()
            )
        }
        None => format!("{repeated}{}", col.physical_type()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ::parquet::schema::parser::parse_message_type;
    use std::sync::Arc;

    fn schema(text: &str) -> SchemaDescriptor {
        SchemaDescriptor::new(Arc::new(parse_message_type(text).unwrap()))
    }

    #[test]
    fn recognises_supported_types() {
        let s = schema(
            "message m {
                OPTIONAL INT64 Date (TIMESTAMP(MICROS,true));
                REQUIRED DOUBLE open;
                REQUIRED INT64 high (DECIMAL(18,4));
                REQUIRED INT32 low (DECIMAL(9,2));
                REQUIRED FIXED_LEN_BYTE_ARRAY(16) close (DECIMAL(38,10));
                REQUIRED INT64 volume;
            }",
        );
        let l = layout(&s).unwrap();
        assert_eq!(
            l.date.kind,
            TimeKind::Int64 {
                per_second: 1_000_000
            }
        );
        assert_eq!(l.date.max_def, 1);
        assert_eq!(l.values[0].kind, ValueKind::Double);
        assert_eq!(l.values[1].kind, ValueKind::Int64 { scale: 4 });
        assert_eq!(l.values[2].kind, ValueKind::Int32 { scale: 2 });
        assert_eq!(
            l.values[3].kind,
            ValueKind::Fixed {
                scale: 10,
                width: 16
            }
        );
        assert_eq!(l.values[4].kind, ValueKind::Int64 { scale: 0 });
    }

    #[test]
    fn rejects_missing_and_mistyped_columns() {
        let base = "REQUIRED DOUBLE open; REQUIRED DOUBLE high; REQUIRED DOUBLE low; REQUIRED DOUBLE volume;";
        let s = schema(&format!(
            "message m {{ REQUIRED INT64 date (TIMESTAMP(NANOS,true)); {base} }}"
        ));
        assert!(matches!(
            layout(&s),
            Err(LoadErrorKind::MissingColumn("close"))
        ));
        let s = schema(&format!(
            "message m {{ REQUIRED INT64 date; REQUIRED DOUBLE close; {base} }}"
        ));
        assert!(matches!(layout(&s), Err(LoadErrorKind::WrongType { .. })));
        let s = schema(&format!(
            "message m {{ REQUIRED INT64 date (TIMESTAMP(NANOS,true)); REQUIRED BYTE_ARRAY close (UTF8); {base} }}"
        ));
        let err = layout(&s).unwrap_err();
        assert!(
            err.to_string()
                .contains("column `close` has unsupported type BYTE_ARRAY"),
            "{err}"
        );
    }
}
