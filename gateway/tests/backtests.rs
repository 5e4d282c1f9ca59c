//! Server-side backtests end to end: `GET /api/strategies`, `POST /api/backtests`, its
//! progress, cancel and refusals, and its results stored and served like a WebSocket
//! session's, on SQLite and Postgres.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use actix_web::http::Method;
use auth::Plan;
use serde_json::{json, Value};
use support::{spawn_app, spawn_app_with, Backend, TestApp, WsClient};

/// SMA(10,20) with 100 shares on GOOG daily over the whole sample.
fn goog_sma() -> Value {
    json!({
        "strategy": "sma_crossover", "params": {"fast": 10, "slow": 20},
        "symbols": ["GOOG"], "start_date": "2004-01-01", "end_date": "2014-01-01",
        "initial_capital": "100000", "timeframe": "daily"
    })
}

/// Polls `GET /api/backtests/{id}` until it is no longer queued or running.
async fn finished(app: &TestApp, token: &str, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, body) = app
            .call(
                Method::GET,
                &format!("/api/backtests/{id}"),
                Some(token),
                None,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        if !matches!(body["state"].as_str(), Some("queued" | "running")) {
            return body;
        }
        assert!(Instant::now() < deadline, "backtest did not finish: {body}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[actix_web::test]
async fn strategies_describe_every_parameter() {
    let app = spawn_app(Backend::Sqlite).await;
    let token = app.token(&app.admin_key).await;
    let (status, body) = app
        .call(Method::GET, "/api/strategies", Some(&token), None)
        .await;
    assert_eq!(status, 200, "{body}");
    let ids: Vec<&str> = body["strategies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    for id in [
        "sma_crossover",
        "buy_and_hold",
        "breakout",
        "rsi_mean_reversion",
    ] {
        assert!(ids.contains(&id), "{id} missing from {ids:?}");
    }
    let sma = &body["strategies"][ids.iter().position(|i| *i == "sma_crossover").unwrap()];
    let fast = sma["params"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "fast")
        .unwrap();
    assert_eq!(fast["type"], "integer");
    assert_eq!(fast["default"], 10);
    assert!(fast["min"].is_number() && fast["max"].is_number(), "{fast}");
    assert!(!fast["description"].as_str().unwrap().is_empty());

    let (status, _) = app.call(Method::GET, "/api/strategies", None, None).await;
    assert_eq!(status, 401);
    app.cleanup().await;
}

async fn sma_on_goog(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = app.token(&app.admin_key).await;
    let mut res = awc::Client::new()
        .post(app.url("/api/backtests"))
        .insert_header(("Authorization", format!("Bearer {token}")))
        .send_json(&goog_sma())
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let accepted: Value = res.json().await.unwrap();
    let id = accepted["session_id"].as_str().unwrap().to_string();
    assert_eq!(
        res.headers().get("location").unwrap().to_str().unwrap(),
        format!("/api/backtests/{id}")
    );
    assert_eq!(accepted["strategy"], "sma_crossover");
    assert_eq!(
        accepted["params"],
        json!({"fast": 10, "slow": 20, "quantity": 100})
    );
    assert_eq!(accepted["ticks_total"], 2148);
    assert_eq!(accepted["results_url"], format!("/api/sessions/{id}"));

    let end = finished(&app, &token, &id).await;
    assert_eq!(end["state"], "completed", "{end}");
    assert_eq!(end["ticks_processed"], 2148);
    assert_eq!(end["progress_pct"], 100.0);
    assert!(end["finished_at"].is_string());

    // Stored like a WebSocket session's: the same numbers, and the request with every
    // strategy parameter, defaults filled in.
    let (status, detail) = app
        .call(
            Method::GET,
            &format!("/api/sessions/{id}"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, 200, "{detail}");
    let want = support::sma::in_process();
    assert_eq!(detail["metrics"]["final_equity"], "194777.00");
    assert_eq!(detail["metrics"]["total_trades"], want.metrics.total_trades);
    assert_eq!(detail["trades"].as_array().unwrap().len(), 46);
    assert_eq!(detail["metrics"]["reason"], "completed");
    assert_eq!(detail["params"]["strategy"], "sma_crossover");
    // The results panels' data, as for a WebSocket session.
    assert_eq!(
        detail["analytics"]["monthly_returns"]
            .as_array()
            .unwrap()
            .len(),
        104
    );
    assert_eq!(
        detail["analytics"]["yearly_returns"]
            .as_array()
            .unwrap()
            .len(),
        10
    );
    assert_eq!(
        detail["analytics"]["trade_returns_pct"]
            .as_array()
            .unwrap()
            .len(),
        46
    );
    assert_eq!(detail["params"]["params"]["quantity"], 100);
    let sharpe = detail["metrics"]["sharpe_ratio"].as_f64().unwrap();
    assert!(
        (sharpe - want.metrics.sharpe_ratio).abs() < 1e-12,
        "{sharpe}"
    );

    let (_, list) = app
        .call(Method::GET, "/api/sessions", Some(&token), None)
        .await;
    assert!(list["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s["session_id"] == id.as_str() && s["final_equity"] == "194777.00"));

    // Finished: a cancel is a conflict; a WebSocket session is not a backtest.
    let (status, body) = app
        .call(
            Method::POST,
            &format!("/api/backtests/{id}/cancel"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!((status, body["error"].as_str()), (409, Some("CONFLICT")));

    let metrics = awc::Client::new()
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .body()
        .await
        .unwrap();
    let metrics = String::from_utf8_lossy(&metrics);
    for line in [
        "simutrador_backtests_total{result=\"completed\"} 1",
        "simutrador_backtest_bars_total 2148",
    ] {
        assert!(metrics.contains(line), "missing `{line}`");
    }
    app.cleanup().await;
}
both_backends!(sma_backtest_equals_the_in_process_engine, sma_on_goog);

#[actix_web::test]
async fn bad_backtests_are_refused_naming_what_is_wrong() {
    let app = spawn_app(Backend::Sqlite).await;
    let token = app.token(&app.admin_key).await;
    let with = |patch: Value| {
        let mut body = goog_sma();
        for (k, v) in patch.as_object().unwrap() {
            body[k] = v.clone();
        }
        body
    };
    let cases = [
        (
            with(json!({"strategy": "martingale"})),
            400,
            "INVALID_PARAMS",
            "martingale",
        ),
        (
            with(json!({"params": {"fast": 30, "slow": 20}})),
            400,
            "INVALID_PARAMS",
            "fast",
        ),
        (
            with(json!({"params": {"fast": "ten"}})),
            400,
            "INVALID_PARAMS",
            "fast",
        ),
        (
            with(json!({"params": {"speed": 3}})),
            400,
            "INVALID_PARAMS",
            "speed",
        ),
        (
            with(json!({"flow_control": true})),
            400,
            "INVALID_PARAMS",
            "flow_control",
        ),
        (
            with(json!({"end_date": "2003-01-01"})),
            400,
            "INVALID_PARAMS",
            "end_date",
        ),
        (
            with(json!({"initial_capital": "0"})),
            400,
            "INVALID_PARAMS",
            "initial_capital",
        ),
        (
            with(json!({"symbols": ["NOPE"]})),
            400,
            "DATA_FETCH_FAILED",
            "NOPE",
        ),
        (
            with(json!({"data_provider": "elsewhere"})),
            400,
            "INVALID_PARAMS",
            "elsewhere",
        ),
    ];
    for (body, want_status, want_code, named) in cases {
        let (status, answer) = app
            .call(
                Method::POST,
                "/api/backtests",
                Some(&token),
                Some(body.clone()),
            )
            .await;
        assert_eq!(
            (status, answer["error"].as_str()),
            (want_status, Some(want_code)),
            "{body} -> {answer}"
        );
        assert!(
            answer["message"].as_str().unwrap().contains(named),
            "{body} -> {answer}"
        );
    }
    let (status, _) = app
        .call(Method::POST, "/api/backtests", None, Some(goog_sma()))
        .await;
    assert_eq!(status, 401);
    let (status, body) = app
        .call(Method::GET, "/api/backtests/nope", Some(&token), None)
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (404, Some("SESSION_NOT_FOUND"))
    );
    // Nothing was stored by the refusals.
    let (_, list) = app
        .call(Method::GET, "/api/sessions", Some(&token), None)
        .await;
    assert_eq!(list["sessions"], json!([]));
    app.cleanup().await;
}

#[actix_web::test]
async fn a_backtest_counts_against_the_plan_sessions() {
    let app = spawn_app(Backend::Sqlite).await;
    let key = app.user_with_key("free@example.com", Plan::Free).await;
    let token = app.token(&key).await;
    // The free plan has one live session: a WebSocket session holds it.
    let mut ws = WsClient::connect(&app, &token).await;
    ws.send(
        "create_session",
        json!({"symbols": ["GOOG"], "start_date": "2004-01-01", "end_date": "2014-01-01",
               "initial_capital": "100000", "timeframe": "daily"}),
        None,
    )
    .await;
    ws.until("session_created").await;
    let mut res = awc::Client::new()
        .post(app.url("/api/backtests"))
        .insert_header(("Authorization", format!("Bearer {token}")))
        .send_json(&goog_sma())
        .await
        .unwrap();
    assert_eq!(res.status(), 429);
    let h = |name: &str| {
        res.headers()
            .get(name)
            .unwrap()
            .to_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(h("x-ratelimit-type"), "sessions");
    assert_eq!(h("x-ratelimit-limit"), "1");
    assert_eq!(h("x-ratelimit-period"), "concurrent");
    assert!(h("retry-after").parse::<u64>().unwrap() > 0);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "RATE_LIMITED");
    app.cleanup().await;
}

/// Writes `days` of synthetic 1-minute bars of `SYNTH` under `dir`.
fn synthetic_root(dir: &Path, days: usize) {
    use market_data::{generate, parse_timestamp, write_layout, PriceEncoding, SyntheticSpec};
    let spec = SyntheticSpec::new(
        "SYNTH",
        market_data::Timeframe::Min1,
        parse_timestamp("2020-01-01").unwrap(),
        days * 1440,
    );
    let series = generate(&spec);
    write_layout(
        dir,
        "SYNTH",
        market_data::Timeframe::Min1,
        &series.candles,
        PriceEncoding::Float64,
    )
    .unwrap();
}

fn long_run() -> Value {
    json!({
        "strategy": "sma_crossover", "params": {"fast": 5, "slow": 50},
        "symbols": ["SYNTH"], "start_date": "2020-01-01", "end_date": "2022-01-01",
        "initial_capital": "100000", "timeframe": "1min", "data_provider": "synth"
    })
}

#[actix_web::test]
async fn cancel_stops_a_running_backtest_and_keeps_its_results() {
    let synth = tempfile::tempdir().unwrap();
    synthetic_root(synth.path(), 400);
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.market_data
            .roots
            .insert("synth".into(), synth.path().to_path_buf());
        s.simulation.backtest_workers = 1;
        s.simulation.backtest_queue = 1;
    })
    .await;
    let token = app.token(&app.admin_key).await;
    let post = |body: Value| app.call(Method::POST, "/api/backtests", Some(&token), Some(body));

    let (status, first) = post(long_run()).await;
    assert_eq!(status, 202, "{first}");
    let first = first["session_id"].as_str().unwrap().to_string();
    // One worker and one place in the queue: a second waits, a third is refused.
    let (status, second) = post(long_run()).await;
    assert_eq!(
        (status, second["state"].as_str()),
        (202, Some("queued")),
        "{second}"
    );
    let second = second["session_id"].as_str().unwrap().to_string();
    let (status, third) = post(long_run()).await;
    assert_eq!(
        (status, third["error"].as_str()),
        (503, Some("SERVICE_UNAVAILABLE")),
        "{third}"
    );

    // Progress moves while it runs, and the running backtest is a live session.
    let deadline = Instant::now() + Duration::from_secs(30);
    let running = loop {
        let (_, s) = app
            .call(
                Method::GET,
                &format!("/api/backtests/{first}"),
                Some(&token),
                None,
            )
            .await;
        if s["state"] == "running" && s["ticks_processed"].as_u64().unwrap() > 0 {
            break s;
        }
        assert!(Instant::now() < deadline, "never ran: {s}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    assert!(running["ticks_processed"].as_u64() < running["ticks_total"].as_u64());
    let (_, live) = app
        .call(
            Method::GET,
            &format!("/api/sessions/{first}"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(live["state"], "running", "{live}");
    assert!(live["progress_pct"].as_f64().unwrap() > 0.0, "{live}");

    // Cancelling the queued one ends it before its first bar; the running one stops
    // within a second with the bars it ran.
    let (a, t) = (&app, &token);
    let cancel = |id: String| async move {
        let path = format!("/api/backtests/{id}/cancel");
        a.call(Method::POST, &path, Some(t), None).await
    };
    let (status, body) = cancel(second.clone()).await;
    assert_eq!(
        (status, body["cancel_requested"].as_bool()),
        (202, Some(true))
    );
    let asked = Instant::now();
    let (status, body) = cancel(first.clone()).await;
    assert_eq!(
        (status, body["cancel_requested"].as_bool()),
        (202, Some(true)),
        "{body}"
    );
    let end = finished(&app, &token, &first).await;
    assert!(
        asked.elapsed() < Duration::from_secs(1),
        "{:?}",
        asked.elapsed()
    );
    assert_eq!(end["state"], "stopped", "{end}");
    let (_, detail) = app
        .call(
            Method::GET,
            &format!("/api/sessions/{first}"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(detail["metrics"]["reason"], "stopped");
    let ran = detail["metrics"]["ticks_processed"].as_u64().unwrap();
    assert!(
        ran > 0 && ran < running["ticks_total"].as_u64().unwrap(),
        "{ran}"
    );
    let queued_end = finished(&app, &token, &second).await;
    assert_eq!(
        (
            queued_end["state"].as_str(),
            queued_end["ticks_processed"].as_u64()
        ),
        (Some("stopped"), Some(0))
    );

    // Deleting a running backtest stops it and keeps nothing.
    let (status, third) = post(long_run()).await;
    assert_eq!(status, 202, "{third}");
    let third = third["session_id"].as_str().unwrap().to_string();
    let (status, _) = app
        .call(
            Method::DELETE,
            &format!("/api/sessions/{third}"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, 204);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, _) = app
        .call(
            Method::GET,
            &format!("/api/sessions/{third}"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, 404);
    app.cleanup().await;
}
