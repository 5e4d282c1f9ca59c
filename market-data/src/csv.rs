//! CSV OHLCV files (`<root>/ohlcv/<SYMBOL>.csv`).
//!
//! Header `Date,Open,High,Low,Close,Volume` in any case and order, extra columns ignored;
//! the date column may also be the unnamed first column pandas writes for its index.
//! Dates are `YYYY-MM-DD`, `YYYY-MM-DD HH:MM:SS` or RFC 3339, UTC. Prices and volumes are
//! parsed exactly from their text, never through `f64`; prices with more than 8 decimals
//! are rejected, while volumes are rounded to 8 decimals because files written from
//! floats carry tails like `397787.41249925003` (as the BTCUSD sample does).

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

use ::csv::{ByteRecord, ReaderBuilder, Trim};

use crate::candle::{Candle, Timestamp};
use crate::datetime::parse_timestamp;
use crate::error::{LoadError, LoadErrorKind};
use crate::fixed::{Amount, Price};
use crate::validate::check_bars;

/// Loads and validates every bar of a CSV file.
pub fn load_csv(path: &Path) -> Result<Vec<Candle>, LoadError> {
    let file = File::open(path).map_err(|e| LoadError::io(path, e))?;
    read_csv(file, path)
}

/// Reads and validates CSV bars from any reader; `file` names the source in errors.
pub fn read_csv<R: Read>(input: R, file: &Path) -> Result<Vec<Candle>, LoadError> {
    let mut reader = ReaderBuilder::new().trim(Trim::All).from_reader(input);
    let columns = read_header(&mut reader, file)?;
    let mut out = Vec::new();
    let mut prev = None;
    let mut record = ByteRecord::new();
    let mut row = 0u64;
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(true) => row += 1,
            Ok(false) => break,
            Err(e) => {
                return Err(LoadError::row(
                    file,
                    row + 1,
                    LoadErrorKind::Csv(e.to_string()),
                ))
            }
        }
        let bar = columns
            .bar(&record)
            .map_err(|k| LoadError::row(file, row, k))?;
        check_bars(std::slice::from_ref(&bar), row, &mut prev)
            .map_err(|(r, k)| LoadError::row(file, r, k))?;
        out.push(bar);
    }
    Ok(out)
}

/// What the catalog learns from a CSV without reading it all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct CsvPeek {
    /// Time of the first bar.
    pub first: Timestamp,
    /// Time of the last bar.
    pub last: Timestamp,
    /// Smallest spacing between consecutive bars among the first lines, if there are two.
    pub min_gap: Option<i64>,
}

/// Reads the header, the first `head_rows` data rows and the last line of a CSV.
/// Returns `None` for a file with a header but no data rows.
pub(crate) fn peek_csv(path: &Path, head_rows: usize) -> Result<Option<CsvPeek>, LoadError> {
    let mut file = File::open(path).map_err(|e| LoadError::io(path, e))?;
    let mut reader = ReaderBuilder::new().trim(Trim::All).from_reader(&mut file);
    let columns = read_header(&mut reader, path)?;
    let mut record = ByteRecord::new();
    let mut first = None;
    let mut prev: Option<Timestamp> = None;
    let mut min_gap: Option<i64> = None;
    for row in 1..=head_rows as u64 {
        match reader.read_byte_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => return Err(LoadError::row(path, row, LoadErrorKind::Csv(e.to_string()))),
        }
        let ts = columns
            .date(&record)
            .map_err(|k| LoadError::row(path, row, k))?;
        if let Some(previous) = prev {
            if ts <= previous {
                return Err(LoadError::row(
                    path,
                    row,
                    LoadErrorKind::NotIncreasing { previous, ts },
                ));
            }
            let gap = ts - previous;
            min_gap = Some(min_gap.map_or(gap, |g| g.min(gap)));
        }
        first.get_or_insert(ts);
        prev = Some(ts);
    }
    let Some(first) = first else {
        return Ok(None);
    };
    drop(reader);
    let line = last_line(&mut file).map_err(|e| LoadError::io(path, e))?;
    let mut tail = ReaderBuilder::new()
        .has_headers(false)
        .trim(Trim::All)
        .from_reader(line.as_slice());
    let last = match tail.read_byte_record(&mut record) {
        Ok(true) => columns
            .date(&record)
            .map_err(|k| LoadError::file(path, k))?,
        Ok(false) => first,
        Err(e) => return Err(LoadError::file(path, LoadErrorKind::Csv(e.to_string()))),
    };
    Ok(Some(CsvPeek {
        first,
        last,
        min_gap,
    }))
}

/// The last non-empty line of a file, read backwards from the end in growing chunks.
fn last_line(file: &mut File) -> io::Result<Vec<u8>> {
    let len = file.metadata()?.len();
    let mut chunk = 4096u64;
    loop {
        let start = len.saturating_sub(chunk);
        file.seek(SeekFrom::Start(start))?;
        let mut buf = Vec::new();
        file.by_ref().take(len - start).read_to_end(&mut buf)?;
        let end = buf
            .iter()
            .rposition(|b| !b.is_ascii_whitespace())
            .map_or(0, |i| i + 1);
        let text = &buf[..end];
        if let Some(nl) = text.iter().rposition(|&b| b == b'\n') {
            return Ok(text[nl + 1..].to_vec());
        }
        if start == 0 {
            return Ok(text.to_vec());
        }
        chunk = chunk.saturating_mul(4);
    }
}

/// Positions of the six columns in a record.
struct Columns {
    date: usize,
    /// open, high, low, close, volume.
    values: [usize; 5],
}

const VALUE_NAMES: [&str; 5] = ["open", "high", "low", "close", "volume"];

fn read_header<R: Read>(reader: &mut ::csv::Reader<R>, file: &Path) -> Result<Columns, LoadError> {
    let header = reader
        .byte_headers()
        .map_err(|e| LoadError::file(file, LoadErrorKind::Csv(e.to_string())))?;
    if header.iter().all(|h| h.is_empty()) {
        return Err(LoadError::file(
            file,
            LoadErrorKind::Csv("no header row".into()),
        ));
    }
    Columns::from_header(header).map_err(|k| LoadError::file(file, k))
}

impl Columns {
    fn from_header(header: &ByteRecord) -> Result<Self, LoadErrorKind> {
        let names: Vec<String> = header
            .iter()
            .map(|h| String::from_utf8_lossy(h).trim().to_ascii_lowercase())
            .collect();
        let find = |wanted: &[&str]| names.iter().position(|n| wanted.contains(&n.as_str()));
        // pandas writes its DatetimeIndex as an unnamed first column.
        let date = find(&["date", "datetime", "timestamp", "time"])
            .or_else(|| names.first().filter(|n| n.is_empty()).map(|_| 0))
            .ok_or(LoadErrorKind::MissingColumn("date"))?;
        let mut values = [0; 5];
        for (slot, name) in values.iter_mut().zip(VALUE_NAMES) {
            *slot = find(&[name]).ok_or(LoadErrorKind::MissingColumn(name))?;
        }
        Ok(Columns { date, values })
    }

    fn date(&self, record: &ByteRecord) -> Result<Timestamp, LoadErrorKind> {
        Ok(parse_timestamp(cell(record, self.date, "date")?)?)
    }

    fn bar(&self, record: &ByteRecord) -> Result<Candle, LoadErrorKind> {
        let ts = self.date(record)?;
        let price = |i: usize| -> Result<Price, LoadErrorKind> {
            let name = VALUE_NAMES[i];
            cell(record, self.values[i], name)?
                .parse()
                .map_err(|source| LoadErrorKind::BadNumber {
                    column: name.into(),
                    source,
                })
        };
        let volume =
            Amount::parse_rounded(cell(record, self.values[4], "volume")?).map_err(|source| {
                LoadErrorKind::BadNumber {
                    column: "volume".into(),
                    source,
                }
            })?;
        Ok(Candle {
            ts,
            open: price(0)?,
            high: price(1)?,
            low: price(2)?,
            close: price(3)?,
            volume,
        })
    }
}

/// One non-empty UTF-8 cell.
fn cell<'r>(record: &'r ByteRecord, index: usize, name: &str) -> Result<&'r str, LoadErrorKind> {
    let bytes = record
        .get(index)
        .filter(|b| !b.is_empty())
        .ok_or_else(|| LoadErrorKind::Null(name.into()))?;
    std::str::from_utf8(bytes)
        .map_err(|_| LoadErrorKind::Csv(format!("column `{name}` is not UTF-8")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<Vec<Candle>, LoadError> {
        read_csv(text.as_bytes(), Path::new("t.csv"))
    }

    #[test]
    fn header_in_any_case_and_order() {
        let bars =
            read("volume,CLOSE,Low,high,Open,Date,extra\n10,1.5,1.0,2.0,1.25,2020-01-02,x\n")
                .unwrap();
        assert_eq!(bars.len(), 1);
        assert_eq!(bars[0].open, "1.25".parse().unwrap());
        assert_eq!(bars[0].close, "1.5".parse().unwrap());
        assert_eq!(bars[0].volume, Amount::from_int(10));
        assert_eq!(bars[0].ts, 1_577_923_200);
    }

    #[test]
    fn unnamed_first_column_is_the_date() {
        let bars = read(
            ",Open,High,Low,Close,Volume\n2017-04-19 09:00:00,1.0716,1.0722,1.07083,1.07219,1413\n",
        )
        .unwrap();
        assert_eq!(bars[0].ts, 1_492_592_400);
        assert_eq!(bars[0].close.raw(), 107_219_000);
    }

    #[test]
    fn prices_are_exact() {
        let bars = read("date,open,high,low,close,volume\n2020-01-02,0.1,0.3,0.1,0.2,0.00000001\n")
            .unwrap();
        assert_eq!(bars[0].high.raw(), 30_000_000);
        assert_eq!(bars[0].volume.raw(), 1);
    }

    #[test]
    fn errors_name_the_row() {
        let head = "date,open,high,low,close,volume\n2020-01-02,1,2,1,1,1\n";
        let err = read(&format!("{head}2020-01-03,1,2,1,abc,1\n")).unwrap_err();
        assert_eq!(err.row, Some(2));
        assert!(
            err.to_string().contains("t.csv row 2: column `close`"),
            "{err}"
        );
        let err = read(&format!("{head}2020-01-02,1,2,1,1,1\n")).unwrap_err();
        assert!(matches!(err.kind, LoadErrorKind::NotIncreasing { .. }));
        let err = read(&format!("{head}2020-01-03,1,2,1,1\n")).unwrap_err();
        assert!(
            matches!((err.row, &err.kind), (Some(2), LoadErrorKind::Csv(_))),
            "{err}"
        );
        let err = read(&format!("{head}2020-01-03,1,2,1,,1\n")).unwrap_err();
        assert!(matches!(err.kind, LoadErrorKind::Null(_)));
        let err = read(&format!("{head}2020-01-03,1,0.5,1,1,1\n")).unwrap_err();
        assert!(matches!(err.kind, LoadErrorKind::InvalidBar(_)));
    }

    #[test]
    fn missing_columns_and_empty_files() {
        let err = read("date,open,high,low,close\n").unwrap_err();
        assert!(matches!(err.kind, LoadErrorKind::MissingColumn("volume")));
        let err = read("open,high,low,close,volume\n").unwrap_err();
        assert!(matches!(err.kind, LoadErrorKind::MissingColumn("date")));
        assert!(read("").is_err());
        assert!(read("date,open,high,low,close,volume\n")
            .unwrap()
            .is_empty());
    }

    #[test]
    fn peek_reads_head_and_tail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("X.csv");
        let mut text = String::from(",Open,High,Low,Close,Volume\n");
        for day in 1..=28 {
            text.push_str(&format!("2020-02-{day:02},1,2,1,1,1\n"));
        }
        text.push_str("\n\n");
        std::fs::write(&path, text).unwrap();
        let peek = peek_csv(&path, 5).unwrap().unwrap();
        assert_eq!(peek.first, 1_580_515_200);
        assert_eq!(peek.last, 1_580_515_200 + 27 * 86_400);
        assert_eq!(peek.min_gap, Some(86_400));
        std::fs::write(&path, "date,open,high,low,close,volume\n").unwrap();
        assert_eq!(peek_csv(&path, 5).unwrap(), None);
    }
}
