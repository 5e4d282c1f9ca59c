//! `/api/market-data` end to end: the catalog of the bundled sample data, bars of a
//! range, and bars merged on the server for a chart.

mod support;

use actix_web::http::Method;
use model::{Amount, Price};
use serde_json::Value;
use support::{spawn_app, Backend, TestApp};

async fn get(app: &TestApp, path: &str, token: Option<&str>) -> (u16, Value) {
    app.call(Method::GET, path, token, None).await
}

/// A gateway on the bundled sample data, and a token of a user on the free plan.
async fn app_with_user(email: &str) -> (TestApp, String) {
    let app = spawn_app(Backend::Sqlite).await;
    let key = app.user_with_key(email, protocol::Plan::Free).await;
    let token = app.token(&key).await;
    (app, token)
}

fn price(v: &Value) -> Price {
    v.as_str().unwrap().parse().unwrap()
}

fn amount(v: &Value) -> Amount {
    v.as_str().unwrap().parse().unwrap()
}

#[actix_web::test]
async fn the_catalog_lists_what_can_be_served() {
    let (app, token) = app_with_user("md@example.com").await;
    let (status, body) = get(&app, "/api/market-data", None).await;
    assert_eq!((status, body["error"].as_str()), (401, Some("AUTH_FAILED")));

    let (status, body) = get(&app, "/api/market-data", Some(&token)).await;
    assert_eq!(status, 200, "{body}");
    let providers = body["providers"].as_array().unwrap();
    assert_eq!(providers[0]["name"], "default");
    assert_eq!(providers[0]["default"], true);
    let symbols = providers[0]["symbols"].as_array().unwrap();
    let names: Vec<&str> = symbols
        .iter()
        .map(|s| s["symbol"].as_str().unwrap())
        .collect();
    assert!(names.windows(2).all(|w| w[0] < w[1]), "{names:?}");
    let goog = symbols.iter().find(|s| s["symbol"] == "GOOG").unwrap();
    let daily = goog["stored"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["timeframe"] == "daily")
        .unwrap();
    assert_eq!(daily["first"], "2004-08-19T00:00:00Z");
    assert_eq!(daily["last"], "2013-03-01T00:00:00Z");
    let servable: Vec<&str> = goog["servable"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert!(servable.contains(&"daily"), "{servable:?}");
    assert!(
        !servable.contains(&"1min"),
        "GOOG is stored daily: {servable:?}"
    );
    // EURUSD is stored hourly, so coarser bars can be built from it.
    let eurusd = symbols.iter().find(|s| s["symbol"] == "EURUSD").unwrap();
    let servable = eurusd["servable"].as_array().unwrap();
    assert!(servable.contains(&Value::from("1h")) && servable.contains(&Value::from("daily")));
    app.cleanup().await;
}

#[actix_web::test]
async fn bars_of_a_range_and_merged_for_a_chart() {
    let (app, token) = app_with_user("bars@example.com").await;
    let base = "/api/market-data/default/GOOG/bars?timeframe=daily";

    // The whole series, under the default cap: every bar, unmerged.
    let (status, all) = get(&app, base, Some(&token)).await;
    assert_eq!(status, 200, "{all}");
    assert_eq!(
        (all["bars_in_range"].as_u64(), all["bucket_bars"].as_u64()),
        (Some(2148), Some(1))
    );
    let bars = all["bars"].as_array().unwrap();
    assert_eq!(bars.len(), 2148);
    assert_eq!(bars[0]["date"], "2004-08-19T00:00:00Z");
    assert_eq!(
        (price(&bars[0]["open"]), price(&bars[0]["high"])),
        ("100".parse().unwrap(), "104.06".parse().unwrap())
    );
    assert_eq!(bars[2147]["date"], "2013-03-01T00:00:00Z");

    // A range: start inclusive, end exclusive.
    let (status, range) = get(
        &app,
        &format!("{base}&start=2004-08-20&end=2004-08-24"),
        Some(&token),
    )
    .await;
    assert_eq!(status, 200, "{range}");
    let dates: Vec<&str> = range["bars"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["date"].as_str().unwrap())
        .collect();
    assert_eq!(
        dates,
        ["2004-08-20T00:00:00Z", "2004-08-23T00:00:00Z"],
        "a weekend in between"
    );

    // At most 100 points: runs of 22 bars, each keeping its OHLC and volume.
    let (status, merged) = get(&app, &format!("{base}&max_points=100"), Some(&token)).await;
    assert_eq!(status, 200, "{merged}");
    assert_eq!(merged["bucket_bars"].as_u64(), Some(22));
    let runs = merged["bars"].as_array().unwrap();
    assert_eq!(runs.len(), 98);
    for (run, chunk) in runs.iter().zip(bars.chunks(22)) {
        assert_eq!(run["date"], chunk[0]["date"]);
        assert_eq!(run["open"], chunk[0]["open"]);
        assert_eq!(run["close"], chunk[chunk.len() - 1]["close"]);
        let high = chunk.iter().map(|b| price(&b["high"])).max().unwrap();
        let low = chunk.iter().map(|b| price(&b["low"])).min().unwrap();
        assert_eq!((price(&run["high"]), price(&run["low"])), (high, low));
        let volume = chunk
            .iter()
            .fold(Amount::ZERO, |sum, b| sum + amount(&b["volume"]));
        assert_eq!(amount(&run["volume"]), volume);
    }

    // Coarser bars are built from the stored ones.
    let (status, daily) = get(
        &app,
        "/api/market-data/default/EURUSD/bars?timeframe=daily&max_points=100000",
        Some(&token),
    )
    .await;
    assert_eq!(status, 200, "{daily}");
    assert_eq!(daily["timeframe"], "daily");
    let days = daily["bars"].as_array().unwrap();
    assert!(days.len() > 200, "{} days", days.len());
    assert_eq!(days.len() as u64, daily["bars_in_range"].as_u64().unwrap());
    assert!(
        days.iter()
            .all(|b| b["date"].as_str().unwrap().ends_with("T00:00:00Z")),
        "daily bars start at midnight UTC"
    );
    app.cleanup().await;
}

#[actix_web::test]
async fn bad_requests_say_what_is_wrong() {
    let (app, token) = app_with_user("bad@example.com").await;
    for (path, status, says) in [
        (
            "/api/market-data/nope/GOOG/bars?timeframe=daily",
            404,
            "no data provider `nope`",
        ),
        (
            "/api/market-data/default/NOPE/bars?timeframe=daily",
            404,
            "no symbol `NOPE`",
        ),
        (
            "/api/market-data/default/GOOG/bars",
            400,
            "timeframe is required",
        ),
        (
            "/api/market-data/default/GOOG/bars?timeframe=2d",
            400,
            "timeframe must be one of",
        ),
        (
            "/api/market-data/default/GOOG/bars?timeframe=1min",
            400,
            "cannot be built",
        ),
        (
            "/api/market-data/default/GOOG/bars?timeframe=daily&start=yesterday",
            400,
            "start must be",
        ),
        (
            "/api/market-data/default/GOOG/bars?timeframe=daily&start=2010-01-02&end=2010-01-01",
            400,
            "start must be before end",
        ),
        (
            "/api/market-data/default/GOOG/bars?timeframe=daily&max_points=0",
            400,
            "max_points must be",
        ),
        (
            "/api/market-data/default/GOOG/bars?timeframe=daily&max_points=100001",
            400,
            "max_points must be",
        ),
        (
            "/api/market-data/default/GOOG/bars?timeframe=daily&max_points=-5",
            400,
            "max_points must be",
        ),
    ] {
        let (got, body) = get(&app, path, Some(&token)).await;
        assert_eq!(got, status, "{path}: {body}");
        let message = body["message"].as_str().unwrap_or_default();
        assert!(message.contains(says), "{path}: {body}");
        let code = if status == 404 {
            "NOT_FOUND"
        } else {
            "INVALID_PARAMS"
        };
        assert_eq!(body["error"], code, "{path}: {body}");
    }
    // A range with no bars is an empty answer, not an error.
    let (got, body) = get(
        &app,
        "/api/market-data/default/GOOG/bars?timeframe=daily&start=2020-01-01",
        Some(&token),
    )
    .await;
    assert_eq!(
        (got, body["bars_in_range"].as_u64()),
        (200, Some(0)),
        "{body}"
    );
    app.cleanup().await;
}
