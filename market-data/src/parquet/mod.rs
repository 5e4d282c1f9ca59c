//! Parquet OHLCV files, read and written with the parquet crate's low-level column API
//! (no Arrow: it would double compile times for no benefit here).
//!
//! Columns: `date` (INT64 timestamp in any unit, INT96, or INT32 DATE; UTC) and
//! `open high low close volume` as float64/float32, decimals backed by INT32, INT64,
//! FIXED_LEN_BYTE_ARRAY or BYTE_ARRAY, or plain integers.

mod columns;
mod decode;
mod flba;
mod read;
mod stats;
mod write;

pub(crate) use read::append_parquet;
pub use read::load_parquet;
pub(crate) use stats::parquet_summary;
pub use write::{write_layout, write_parquet, PriceEncoding};
