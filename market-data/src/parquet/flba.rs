//! Fast path for FIXED_LEN_BYTE_ARRAY decimals, which is how pyarrow writes decimal128:
//! values are read straight out of each decompressed page, PLAIN or dictionary-encoded
//! (pyarrow starts with a dictionary and falls back to PLAIN when it grows too large).
//!
//! The generic column reader wraps every value in a reference-counted `Bytes`; those
//! atomic increments and decrements cost more than decoding the numbers. Pages this path
//! does not handle (other encodings, nulls, anything malformed) make it return `false`,
//! and the caller hands the column over to the generic reader, which decodes them or
//! reports the precise error.

use ::parquet::basic::Encoding;
use ::parquet::column::page::{Page, PageReader};

use super::decode::{parquet_fault, Fault};
use crate::error::LoadErrorKind;

/// Reads unscaled decimal values page by page.
pub(crate) struct FlbaPages {
    pages: Box<dyn PageReader>,
    width: usize,
    max_def: i16,
    /// Decoded dictionary page, if the column has one.
    dictionary: Vec<i128>,
    /// Values of the current data page.
    values: Vec<i128>,
    /// Next value in `values`.
    next: usize,
    /// Scratch for decoded levels and dictionary indices.
    scratch: Vec<u32>,
}

impl FlbaPages {
    /// A reader of `width`-byte values; `max_def` is the column's definition level.
    pub(crate) fn new(pages: Box<dyn PageReader>, width: usize, max_def: i16) -> Self {
        FlbaPages {
            pages,
            width,
            max_def,
            dictionary: Vec::new(),
            values: Vec::new(),
            next: 0,
            scratch: Vec::new(),
        }
    }

    /// Replaces `out` with the next `rows` values. `Ok(false)` means a page needs the
    /// generic reader; `out` is then meaningless.
    pub(crate) fn read(&mut self, rows: usize, out: &mut Vec<i128>) -> Result<bool, Fault> {
        out.clear();
        while out.len() < rows {
            if self.next == self.values.len() {
                let Some(page) = self.pages.get_next_page().map_err(parquet_fault)? else {
                    let msg = "column has fewer values than rows".to_string();
                    return Err((None, LoadErrorKind::Parquet(msg)));
                };
                if !self.accept(&page) {
                    return Ok(false);
                }
                continue;
            }
            let n = (rows - out.len()).min(self.values.len() - self.next);
            out.extend_from_slice(&self.values[self.next..self.next + n]);
            self.next += n;
        }
        Ok(true)
    }

    /// Decodes `page` into `values` (or `dictionary`) if this path can read it.
    fn accept(&mut self, page: &Page) -> bool {
        self.values.clear();
        self.next = 0;
        let buf: &[u8] = page.buffer();
        let (values_at, count, encoding) = match page {
            Page::DictionaryPage {
                num_values,
                encoding,
                ..
            } => {
                let plain = matches!(encoding, Encoding::PLAIN | Encoding::PLAIN_DICTIONARY);
                let bytes = buf.get(..*num_values as usize * self.width);
                let Some(bytes) = bytes.filter(|_| plain) else {
                    return false;
                };
                self.dictionary.clear();
                self.dictionary
                    .extend(bytes.chunks_exact(self.width).map(be_int));
                return true;
            }
            Page::DataPage {
                num_values,
                encoding,
                def_level_encoding,
                ..
            } => {
                let count = *num_values as usize;
                if self.max_def == 0 {
                    (0, count, *encoding)
                } else {
                    // v1 levels: 4-byte little-endian length, then the RLE/bit-packed runs.
                    let Some(len) = buf.get(..4).and_then(|b| <[u8; 4]>::try_from(b).ok()) else {
                        return false;
                    };
                    let len = u32::from_le_bytes(len) as usize;
                    let levels = buf.get(4..4 + len).unwrap_or_default();
                    let width = bit_width(self.max_def as u32);
                    if *def_level_encoding != Encoding::RLE
                        || !decode_hybrid(levels, width, count, &mut self.scratch)
                        || self.scratch.iter().any(|&l| l != self.max_def as u32)
                    {
                        return false;
                    }
                    (4 + len, count, *encoding)
                }
            }
            Page::DataPageV2 {
                num_values,
                encoding,
                num_nulls,
                def_levels_byte_len,
                rep_levels_byte_len,
                ..
            } => {
                if *num_nulls != 0 {
                    return false;
                }
                let at = (*def_levels_byte_len + *rep_levels_byte_len) as usize;
                (at, *num_values as usize, *encoding)
            }
        };
        let data = buf.get(values_at..).unwrap_or_default();
        match encoding {
            Encoding::PLAIN => {
                let Some(bytes) = data.get(..count * self.width) else {
                    return false;
                };
                self.values
                    .extend(bytes.chunks_exact(self.width).map(be_int));
                true
            }
            Encoding::RLE_DICTIONARY | Encoding::PLAIN_DICTIONARY => {
                let Some((&width, runs)) = data.split_first() else {
                    return false;
                };
                if width > 32 || !decode_hybrid(runs, width as u32, count, &mut self.scratch) {
                    return false;
                }
                let dictionary = &self.dictionary;
                if self.scratch.iter().any(|&i| i as usize >= dictionary.len()) {
                    return false;
                }
                self.values
                    .extend(self.scratch.iter().map(|&i| dictionary[i as usize]));
                true
            }
            _ => false,
        }
    }
}

/// A big-endian two's complement integer of 1 to 16 bytes (longer input is truncated to
/// its low 16 bytes; the schema check rejects widths above 16).
#[inline]
pub(crate) fn be_int(bytes: &[u8]) -> i128 {
    let bytes = &bytes[bytes.len().saturating_sub(16)..];
    let negative = bytes.first().is_some_and(|b| b & 0x80 != 0);
    let mut wide = if negative { [0xff; 16] } else { [0; 16] };
    wide[16 - bytes.len()..].copy_from_slice(bytes);
    i128::from_be_bytes(wide)
}

/// Bits needed for values up to `max`.
fn bit_width(max: u32) -> u32 {
    32 - max.leading_zeros()
}

/// Decodes `count` values of Parquet's RLE/bit-packed hybrid encoding into `out`
/// (replacing its contents). False when the data is malformed or too short.
fn decode_hybrid(mut data: &[u8], bit_width: u32, count: usize, out: &mut Vec<u32>) -> bool {
    out.clear();
    let width = bit_width as usize;
    while out.len() < count {
        let Some((header, rest)) = uleb128(data) else {
            return false;
        };
        data = rest;
        if header & 1 == 0 {
            // RLE run: a repeat count and one value in ceil(bit_width / 8) bytes.
            let (run, value_bytes) = ((header >> 1) as usize, width.div_ceil(8));
            let Some(value) = data.get(..value_bytes) else {
                return false;
            };
            let value = value
                .iter()
                .rev()
                .fold(0u32, |v, &b| (v << 8) | u32::from(b));
            if run == 0 {
                return false;
            }
            out.extend(std::iter::repeat_n(value, run.min(count - out.len())));
            data = &data[value_bytes..];
        } else {
            // Bit-packed: groups of 8 values, least significant bits first.
            let groups = (header >> 1) as usize;
            let Some(packed) = data.get(..groups * width) else {
                return false;
            };
            if groups == 0 {
                return false;
            }
            let wanted = (groups * 8).min(count - out.len());
            if width == 0 {
                out.extend(std::iter::repeat_n(0, wanted));
            } else {
                let target = out.len() + wanted;
                let mask = (1u64 << width) - 1;
                let (mut acc, mut bits) = (0u64, 0usize);
                for &byte in packed {
                    acc |= u64::from(byte) << bits;
                    bits += 8;
                    while bits >= width && out.len() < target {
                        out.push((acc & mask) as u32);
                        acc >>= width;
                        bits -= width;
                    }
                }
            }
            data = &data[groups * width..];
        }
    }
    true
}

fn uleb128(data: &[u8]) -> Option<(u64, &[u8])> {
    let mut value = 0u64;
    for (i, &b) in data.iter().enumerate().take(10) {
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((value, &data[i + 1..]));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn big_endian_integers() {
        assert_eq!(be_int(&[0x00, 0x27, 0x2e]), 10030);
        assert_eq!(be_int(&[0xff]), -1);
        assert_eq!(be_int(&[0x80, 0x00]), -32768);
        assert_eq!(be_int(&[]), 0);
    }

    #[test]
    fn reads_pyarrow_decimal_pages_directly() {
        use ::parquet::file::reader::{FileReader, SerializedFileReader};
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../sample-data/candles/daily/GOOG.parquet"
        );
        let reader = SerializedFileReader::new(std::fs::File::open(path).unwrap()).unwrap();
        // `open`: nullable FIXED_LEN_BYTE_ARRAY(3) DECIMAL(5,2), as pyarrow writes it.
        let pages = reader
            .get_row_group(0)
            .unwrap()
            .get_column_page_reader(1)
            .unwrap();
        let mut flba = FlbaPages::new(pages, 3, 1);
        let mut out = Vec::new();
        // pyarrow dictionary-encodes by default: a dictionary page, then RLE_DICTIONARY.
        assert!(
            flba.read(2000, &mut out).unwrap(),
            "pyarrow pages take the fast path"
        );
        assert_eq!(out.len(), 2000);
        assert_eq!((out[0], out[1]), (10000, 10101)); // 100.00, 101.01
        assert!(flba.read(148, &mut out).unwrap());
        assert_eq!(out.last(), Some(&79780)); // 797.80, the last open
        assert!(flba.read(1, &mut out).is_err(), "past the end");
    }

    #[test]
    fn hybrid_runs() {
        let mut out = Vec::new();
        // RLE run of 300 ones: header 600 = 0xd8 0x04, value 0x01.
        assert!(decode_hybrid(&[0xd8, 0x04, 0x01], 1, 300, &mut out));
        assert!(out.len() == 300 && out.iter().all(|&v| v == 1));
        assert!(
            !decode_hybrid(&[0xd8, 0x04, 0x01], 1, 301, &mut out),
            "runs out of values"
        );
        // Bit-packed, one group of 8 one-bit values: 0x7f = seven ones then a zero.
        assert!(decode_hybrid(&[0x03, 0x7f], 1, 8, &mut out));
        assert_eq!(out, vec![1, 1, 1, 1, 1, 1, 1, 0]);
        // Width 3: values 0..8 packed LSB first = 0x88 0xc6 0xfa.
        assert!(decode_hybrid(&[0x03, 0x88, 0xc6, 0xfa], 3, 8, &mut out));
        assert_eq!(out, (0..8).collect::<Vec<u32>>());
        // Padding beyond the count is ignored; an RLE run then continues.
        assert!(decode_hybrid(
            &[0x03, 0x88, 0xc6, 0xfa, 0x04, 0x05],
            3,
            5,
            &mut out
        ));
        assert_eq!(out, vec![0, 1, 2, 3, 4]);
        assert!(decode_hybrid(
            &[0x03, 0x88, 0xc6, 0xfa, 0x04, 0x05],
            3,
            10,
            &mut out
        ));
        assert_eq!(out[8..], [5, 5]);
        assert!(!decode_hybrid(&[], 1, 1, &mut out));
        assert!(
            !decode_hybrid(&[0x00, 0x01], 1, 1, &mut out),
            "zero-length run"
        );
        assert_eq!(bit_width(1), 1);
        assert_eq!(bit_width(2), 2);
    }
}
