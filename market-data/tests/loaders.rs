//! CSV and Parquet loaders on the bundled samples and on broken files.

mod common;

use std::fs;
use std::path::Path;
use std::sync::Arc;

use common::{d, invalid_root, sample_root, t};
use market_data::{
    generate, load_csv, load_parquet, write_parquet, Amount, Catalog, LoadErrorKind,
    MarketDataError, PriceEncoding, SyntheticSpec, Timeframe,
};
use parquet::data_type::{
    ByteArray, ByteArrayType, DoubleType, FixedLenByteArrayType, Int32Type, Int64Type,
};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;

#[test]
fn goog_csv_and_parquet_load_identically() {
    let root = sample_root();
    let csv = load_csv(&root.join("ohlcv/GOOG.csv")).unwrap();
    let pq = load_parquet(&root.join("candles/daily/GOOG.parquet")).unwrap();
    assert_eq!(csv.len(), 2148);
    assert_eq!(csv, pq);
    let first = csv[0];
    assert_eq!(first.ts, t("2004-08-19"));
    assert_eq!(first.open, d("100.00"));
    assert_eq!(first.high, d("104.06"));
    assert_eq!(first.low, d("95.96"));
    assert_eq!(first.close, d("100.34"));
    assert_eq!(first.volume, Amount::from_int(22_351_900));
    assert_eq!(csv.last().unwrap().ts, t("2013-03-01"));
}

#[test]
fn eurusd_day_files_concatenate_to_the_csv() {
    let root = sample_root();
    let csv = load_csv(&root.join("ohlcv/EURUSD.csv")).unwrap();
    assert_eq!(csv.len(), 5000);
    let mut files: Vec<_> = fs::read_dir(root.join("candles/1h/EURUSD"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert_eq!(files.len(), 251);
    let concatenated: Vec<_> = files
        .iter()
        .flat_map(|f| load_parquet(f).unwrap())
        .collect();
    assert_eq!(concatenated, csv);
    // The catalog's day-file loader agrees.
    let catalog = Catalog::open(&root).unwrap();
    assert_eq!(catalog.load("EURUSD", Timeframe::H1).unwrap().candles, csv);
    assert_eq!(csv[0].close.raw(), 107_219_000); // 1.07219 exactly, from float64 parquet too
}

#[test]
fn btcusd_monthly_csv_loads_directly() {
    let bars = load_csv(&sample_root().join("ohlcv/BTCUSD.csv")).unwrap();
    assert_eq!(bars.len(), 156);
    assert_eq!(bars[0].ts, t("2012-01-31"));
    assert_eq!(bars[0].volume, d("2012.25343589"));
}

#[test]
fn badhl_names_file_and_row_4() {
    let root = invalid_root();
    let err = load_parquet(&root.join("candles/daily/BADHL.parquet")).unwrap_err();
    assert_eq!(err.row, Some(4));
    assert!(matches!(err.kind, LoadErrorKind::InvalidBar(_)));
    let catalog = Catalog::open(&root).unwrap();
    let err = catalog.load("BADHL", Timeframe::Daily).unwrap_err();
    assert_eq!(
        err.to_string(),
        "candles/daily/BADHL.parquet row 4: high 1.00 is below low 103.57"
    );
}

#[test]
fn truncated_and_garbage_parquet_fail_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let good = fs::read(sample_root().join("candles/daily/GOOG.parquet")).unwrap();

    let truncated = dir.path().join("truncated.parquet");
    fs::write(&truncated, &good[..good.len() / 2]).unwrap();
    let err = load_parquet(&truncated).unwrap_err();
    assert!(matches!(err.kind, LoadErrorKind::Parquet(_)), "{err}");

    let garbage = dir.path().join("garbage.parquet");
    fs::write(
        &garbage,
        b"PAR1 this is not parquet at all \x10\x00\x00\x00PAR1",
    )
    .unwrap();
    assert!(matches!(
        load_parquet(&garbage).unwrap_err().kind,
        LoadErrorKind::Parquet(_)
    ));

    let empty = dir.path().join("empty.parquet");
    fs::write(&empty, b"").unwrap();
    assert!(load_parquet(&empty).is_err());

    // Valid footer, scrambled data pages: an error, whatever the decoder makes of it.
    let mut scrambled = good.clone();
    for b in &mut scrambled[100..good.len() / 2] {
        *b = b.wrapping_mul(31).wrapping_add(7);
    }
    let path = dir.path().join("scrambled.parquet");
    fs::write(&path, &scrambled).unwrap();
    assert!(load_parquet(&path).is_err());

    let err = load_parquet(&dir.path().join("missing.parquet")).unwrap_err();
    assert!(matches!(err.kind, LoadErrorKind::NotFound));
}

#[test]
fn csv_with_a_bad_row_fails_with_its_row() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("BAD.csv");
    fs::write(&path, "Date,Open,High,Low,Close,Volume\n2020-01-02,1,2,1,1.5,10\n2020-01-03,1,2,1,1.5,10\n2020-01-06,1,2,x,1.5,10\n")
        .unwrap();
    let err = load_csv(&path).unwrap_err();
    assert_eq!(err.row, Some(3));
    assert!(
        err.to_string()
            .ends_with("BAD.csv row 3: column `low`: `x` is not a decimal number"),
        "{err}"
    );
    fs::write(
        &path,
        "Date,Open,High,Low,Close,Volume\n2020-01-03,1,2,1,1.5,10\n2020-01-02,1,2,1,1.5,10\n",
    )
    .unwrap();
    let err = load_csv(&path).unwrap_err();
    assert!(
        err.to_string()
            .contains("row 2: timestamp 2020-01-02T00:00:00Z is not after"),
        "{err}"
    );
    let err = load_csv(&dir.path().join("nope.csv")).unwrap_err();
    assert!(matches!(err.kind, LoadErrorKind::NotFound));
}

#[test]
fn written_parquet_round_trips_in_both_encodings() {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = SyntheticSpec::new("SYN", Timeframe::Min1, t("2021-01-04"), 50_000);
    spec.decimals = 5;
    spec.start_price = d("1.2");
    let series = generate(&spec);
    for (name, encoding) in [
        ("f.parquet", PriceEncoding::Float64),
        ("d.parquet", PriceEncoding::Decimal128),
    ] {
        let path = dir.path().join(name);
        write_parquet(&path, &series.candles, encoding).unwrap();
        assert_eq!(load_parquet(&path).unwrap(), series.candles, "{name}");
    }
}

/// One column of a hand-built Parquet file.
enum Col {
    I64(Vec<i64>),
    I32(Vec<i32>),
    F64(Vec<f64>, Option<Vec<i16>>),
    Text(Vec<&'static str>),
    /// Big-endian decimal bytes with optional definition levels.
    Fixed(Vec<Vec<u8>>, Option<Vec<i16>>),
}

fn write_custom(path: &Path, schema: &str, cols: Vec<Col>) {
    write_with(path, schema, cols, WriterProperties::default())
}

fn write_with(path: &Path, schema: &str, cols: Vec<Col>, props: WriterProperties) {
    let schema = Arc::new(parse_message_type(schema).unwrap());
    let file = fs::File::create(path).unwrap();
    let mut writer = SerializedFileWriter::new(file, schema, Arc::new(props)).unwrap();
    let mut group = writer.next_row_group().unwrap();
    let mut cols = cols.into_iter();
    while let Some(mut column) = group.next_column().unwrap() {
        match cols.next().unwrap() {
            Col::I64(v) => column
                .typed::<Int64Type>()
                .write_batch(&v, None, None)
                .unwrap(),
            Col::I32(v) => column
                .typed::<Int32Type>()
                .write_batch(&v, None, None)
                .unwrap(),
            Col::F64(v, defs) => column
                .typed::<DoubleType>()
                .write_batch(&v, defs.as_deref(), None)
                .unwrap(),
            Col::Text(v) => {
                let v: Vec<_> = v.into_iter().map(|s| s.into()).collect();
                column
                    .typed::<ByteArrayType>()
                    .write_batch(&v, None, None)
                    .unwrap()
            }
            Col::Fixed(v, defs) => {
                let v: Vec<_> = v.into_iter().map(|b| ByteArray::from(b).into()).collect();
                column
                    .typed::<FixedLenByteArrayType>()
                    .write_batch(&v, defs.as_deref(), None)
                    .unwrap()
            }
        };
        column.close().unwrap();
    }
    group.close().unwrap();
    writer.close().unwrap();
}

fn prices() -> Col {
    Col::F64(vec![1.5, 1.5, 1.5], None)
}

#[test]
fn other_encodings_and_units() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ms.parquet");
    let day = t("2020-01-02") * 1000;
    write_custom(
        &path,
        "message m { REQUIRED INT64 date (TIMESTAMP(MILLIS,true)); REQUIRED INT32 open (DECIMAL(9,2));
          REQUIRED INT64 high (DECIMAL(18,4)); REQUIRED DOUBLE low; REQUIRED DOUBLE close; REQUIRED INT64 volume; }",
        vec![
            Col::I64(vec![day, day + 86_400_000]),
            Col::I32(vec![150, 151]),
            Col::I64(vec![20_000, 20_100]),
            Col::F64(vec![1.0, 1.0], None),
            Col::F64(vec![1.25, 1.5], None),
            Col::I64(vec![7, 8]),
        ],
    );
    let bars = load_parquet(&path).unwrap();
    assert_eq!(bars.len(), 2);
    assert_eq!(bars[1].ts, t("2020-01-03"));
    assert_eq!(bars[1].open, d("1.51"));
    assert_eq!(bars[1].high, d("2.01"));
    assert_eq!(bars[1].volume, Amount::from_int(8));

    let path = dir.path().join("date32.parquet");
    write_custom(
        &path,
        "message m { REQUIRED INT32 date (DATE); REQUIRED DOUBLE open; REQUIRED DOUBLE high; REQUIRED DOUBLE low;
          REQUIRED DOUBLE close; REQUIRED DOUBLE volume; }",
        vec![Col::I32(vec![18_263]), Col::F64(vec![1.5], None), Col::F64(vec![2.0], None), Col::F64(vec![1.0], None),
             Col::F64(vec![1.5], None), Col::F64(vec![3.0], None)],
    );
    assert_eq!(load_parquet(&path).unwrap()[0].ts, t("2020-01-02"));
}

#[test]
fn schema_and_value_errors_are_clear() {
    let dir = tempfile::tempdir().unwrap();
    let day = t("2020-01-02") * 1_000_000_000;
    let dates = || {
        Col::I64(vec![
            day,
            day + 86_400 * 1_000_000_000,
            day + 2 * 86_400 * 1_000_000_000,
        ])
    };
    let ts_col = "REQUIRED INT64 date (TIMESTAMP(NANOS,true));";

    let path = dir.path().join("novolume.parquet");
    write_custom(
        &path,
        &format!("message m {{ {ts_col} REQUIRED DOUBLE open; REQUIRED DOUBLE high; REQUIRED DOUBLE low; REQUIRED DOUBLE close; }}"),
        vec![dates(), prices(), prices(), prices(), prices()],
    );
    let err = load_parquet(&path).unwrap_err();
    assert!(matches!(err.kind, LoadErrorKind::MissingColumn("volume")));
    assert!(
        err.to_string()
            .ends_with("novolume.parquet: missing column `volume`"),
        "{err}"
    );

    let path = dir.path().join("text.parquet");
    write_custom(
        &path,
        &format!(
            "message m {{ {ts_col} REQUIRED DOUBLE open; REQUIRED DOUBLE high; REQUIRED DOUBLE low;
            REQUIRED BYTE_ARRAY close (UTF8); REQUIRED DOUBLE volume; }}"
        ),
        vec![
            dates(),
            prices(),
            prices(),
            prices(),
            Col::Text(vec!["a", "b", "c"]),
            prices(),
        ],
    );
    let err = load_parquet(&path).unwrap_err();
    assert!(
        matches!(&err.kind, LoadErrorKind::WrongType { column, .. } if column == "close"),
        "{err}"
    );

    let path = dir.path().join("nulls.parquet");
    write_custom(
        &path,
        &format!(
            "message m {{ {ts_col} REQUIRED DOUBLE open; REQUIRED DOUBLE high; REQUIRED DOUBLE low;
            OPTIONAL DOUBLE close; REQUIRED DOUBLE volume; }}"
        ),
        vec![
            dates(),
            prices(),
            prices(),
            prices(),
            Col::F64(vec![1.5, 1.5], Some(vec![1, 1, 0])),
            prices(),
        ],
    );
    let err = load_parquet(&path).unwrap_err();
    assert_eq!(
        (err.row, err.kind.to_string()),
        (Some(3), "column `close` is null".to_string())
    );

    let path = dir.path().join("subsecond.parquet");
    write_custom(
        &path,
        &format!(
            "message m {{ {ts_col} REQUIRED DOUBLE open; REQUIRED DOUBLE high; REQUIRED DOUBLE low;
            REQUIRED DOUBLE close; REQUIRED DOUBLE volume; }}"
        ),
        vec![
            Col::I64(vec![day, day + 1_500_000_000, day + 3_000_000_000]),
            prices(),
            prices(),
            prices(),
            prices(),
            prices(),
        ],
    );
    let err = load_parquet(&path).unwrap_err();
    assert_eq!(err.row, Some(2));
    assert!(matches!(err.kind, LoadErrorKind::SubSecond(_)), "{err}");

    let path = dir.path().join("dup.parquet");
    write_custom(
        &path,
        &format!(
            "message m {{ {ts_col} REQUIRED DOUBLE open; REQUIRED DOUBLE high; REQUIRED DOUBLE low;
            REQUIRED DOUBLE close; REQUIRED DOUBLE volume; }}"
        ),
        vec![
            Col::I64(vec![day, day, day]),
            prices(),
            prices(),
            prices(),
            prices(),
            prices(),
        ],
    );
    let err = load_parquet(&path).unwrap_err();
    assert_eq!(err.row, Some(2));
    assert!(matches!(err.kind, LoadErrorKind::NotIncreasing { .. }));
}

#[test]
fn catalog_load_errors_are_market_data_errors() {
    let catalog = Catalog::open(invalid_root()).unwrap();
    assert!(matches!(
        catalog.load("BADHL", Timeframe::Daily),
        Err(MarketDataError::Load(_))
    ));
}

/// Decimal(9,2) as 4 big-endian bytes.
fn cents(v: i32) -> Vec<u8> {
    v.to_be_bytes().to_vec()
}

#[test]
fn decimal_pages_the_fast_path_skips_still_load() {
    let dir = tempfile::tempdir().unwrap();
    let rows = 30_000usize;
    let day = t("2020-01-02") * 1_000_000_000;
    let dates = || Col::I64((0..rows as i64).map(|i| day + i * 60_000_000_000).collect());
    let price = |cents_of: fn(usize) -> i32| {
        Col::Fixed((0..rows).map(|i| cents(cents_of(i))).collect(), None)
    };
    let schema = |close: &str| {
        format!(
            "message m {{ REQUIRED INT64 date (TIMESTAMP(NANOS,true));
              REQUIRED FIXED_LEN_BYTE_ARRAY(4) open (DECIMAL(9,2)); REQUIRED FIXED_LEN_BYTE_ARRAY(4) high (DECIMAL(9,2));
              REQUIRED FIXED_LEN_BYTE_ARRAY(4) low (DECIMAL(9,2)); {close} FIXED_LEN_BYTE_ARRAY(4) close (DECIMAL(9,2));
              REQUIRED INT64 volume; }}"
        )
    };
    let small_pages = || {
        WriterProperties::builder()
            .set_dictionary_enabled(false)
            .set_data_page_row_count_limit(1000)
            .build()
    };

    // Dictionary-encoded (the parquet crate's default): handled by the generic reader.
    let path = dir.path().join("dict.parquet");
    let cols = vec![
        dates(),
        price(|i| 1000 + (i % 7) as i32),
        price(|_| 2000),
        price(|_| 500),
        price(|i| 1000 + (i % 3) as i32),
        Col::I64(vec![5; rows]),
    ];
    write_custom(&path, &schema("REQUIRED"), cols);
    let bars = load_parquet(&path).unwrap();
    assert_eq!(bars.len(), rows);
    assert_eq!(bars[9].open, d("10.02"));
    assert_eq!(bars[9].close, d("10.00"));

    // Many plain pages, all present, nullable column: the fast path end to end.
    let path = dir.path().join("plain.parquet");
    let close = Col::Fixed(
        (0..rows).map(|i| cents(1000 + (i % 3) as i32)).collect(),
        Some(vec![1; rows]),
    );
    let cols = vec![
        dates(),
        price(|_| 1000),
        price(|_| 2000),
        price(|_| 500),
        close,
        Col::I64(vec![5; rows]),
    ];
    write_with(&path, &schema("OPTIONAL"), cols, small_pages());
    let bars = load_parquet(&path).unwrap();
    assert_eq!(bars.len(), rows);
    assert_eq!(bars[rows - 1].close, d("10.02")); // (30000 - 1) % 3 == 2

    // A null deep inside the column, after many clean pages and batches: the fast path
    // hands over mid-column and the error still names the exact row.
    let path = dir.path().join("null.parquet");
    let mut defs = vec![1i16; rows];
    defs[20_000] = 0;
    let close = Col::Fixed((0..rows - 1).map(|_| cents(1000)).collect(), Some(defs));
    let cols = vec![
        dates(),
        price(|_| 1000),
        price(|_| 2000),
        price(|_| 500),
        close,
        Col::I64(vec![5; rows]),
    ];
    write_with(&path, &schema("OPTIONAL"), cols, small_pages());
    let err = load_parquet(&path).unwrap_err();
    assert_eq!(
        (err.row, err.kind.to_string()),
        (Some(20_001), "column `close` is null".to_string())
    );
}
