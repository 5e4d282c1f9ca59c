//! `/api/sessions` end to end: run a simulation over the WebSocket, then read, list and
//! delete it over REST, as its owner and as somebody else, on SQLite and Postgres.

mod support;

use std::time::Duration;

use auth::{
    NewApiKey, NewUser, Page, Plan, ResultStore, SimulationRecord, SimulationSummary, UserStore,
};
use chrono::{TimeZone, Utc};
use serde_json::{json, Value};
use support::{spawn_app, Backend, TestApp, WsClient};
use uuid::Uuid;

/// A user with a key and a token.
struct Caller {
    id: Uuid,
    token: String,
}

async fn caller(app: &TestApp, email: &str, plan: Plan) -> Caller {
    let user = app
        .db
        .create_user(NewUser::new(email).plan(plan))
        .await
        .unwrap();
    let key = app
        .db
        .create_api_key(user.id, NewApiKey::new("test"))
        .await
        .unwrap();
    Caller {
        id: user.id,
        token: app.token(key.secret.expose()).await,
    }
}

/// Sends a request; the status and the JSON body (`Null` when there is none).
async fn call(app: &TestApp, method: &str, path: &str, token: Option<&str>) -> (u16, Value) {
    let client = awc::Client::new();
    let url = app.url(path);
    let mut req = match method {
        "GET" => client.get(url),
        "DELETE" => client.delete(url),
        other => panic!("unsupported method {other}"),
    };
    if let Some(t) = token {
        req = req.insert_header(("Authorization", format!("Bearer {t}")));
    }
    let mut res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let body = res.body().limit(16 << 20).await.unwrap();
    let json = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&body).unwrap()
    };
    (status, json)
}

fn ids(list: &Value) -> Vec<&str> {
    list["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["session_id"].as_str().unwrap())
        .collect()
}

fn assert_not_found((status, body): (u16, Value)) {
    assert_eq!(status, 404, "{body}");
    assert_eq!(
        body,
        json!({"error": "SESSION_NOT_FOUND", "message": "session not found"})
    );
}

/// What the client saw of a run: the session id, the fills in order and the end.
struct Run {
    session_id: String,
    fills: Vec<Value>,
    end: Value,
}

/// Runs GOOG daily, January and February 2010, lock-step, buying and selling twice.
async fn short_run(app: &TestApp, token: &str) -> Run {
    let mut ws = WsClient::connect(app, token).await;
    ws.until("connection_ready").await;
    let start = json!({
        "symbols": ["GOOG"], "start_date": "2010-01-01", "end_date": "2010-03-01",
        "initial_capital": "100000", "timeframe": "daily", "flow_control": true,
        "max_pending_ticks": 1, "commission_per_share": "0.01",
        "metadata": {"strategy": "twice", "quote": "it's \"fine\""}
    });
    ws.send("start_simulation", start, Some("start")).await;
    let created = ws.until("session_created").await;
    let session_id = created["data"]["session_id"].as_str().unwrap().to_string();
    let plan = [
        (2, "buy", 10),
        (5, "sell", 10),
        (10, "buy", 5),
        (20, "sell", 5),
    ];
    let mut fills = Vec::new();
    let end = loop {
        let m = ws.recv().await.expect("connection open until the end");
        match m["type"].as_str().unwrap() {
            "execution_report" => fills.push(m["data"].clone()),
            "tick" => {
                let seq = m["data"]["sequence_id"].as_u64().unwrap();
                if let Some((_, side, qty)) = plan.iter().find(|(at, _, _)| *at == seq) {
                    let order = json!({"order_id": format!("o{seq}"), "symbol": "GOOG",
                                       "side": side, "type": "market", "quantity": qty});
                    ws.send(
                        "order_batch",
                        json!({"session_id": session_id, "batch_id": format!("b{seq}"),
                               "orders": [order]}),
                        Some("batch"),
                    )
                    .await;
                    let ack = ws.until("batch_ack").await;
                    assert_eq!(ack["data"]["accepted_orders"], json!([format!("o{seq}")]));
                }
                ws.send(
                    "tick_ack",
                    json!({"session_id": session_id, "sequence_id": seq}),
                    None,
                )
                .await;
            }
            "simulation_end" => break m["data"].clone(),
            _ => {}
        }
    };
    Run {
        session_id,
        fills,
        end,
    }
}

/// Waits until the registry's background write has reached the database.
async fn stored(app: &TestApp, user: Uuid, session_id: &str) -> SimulationRecord {
    for _ in 0..200 {
        if let Ok(r) = app.db.result_for_user(user, session_id).await {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("results of {session_id} were never stored");
}

fn without_duration(mut metrics: Value) -> Value {
    metrics
        .as_object_mut()
        .unwrap()
        .remove("simulation_duration_sec");
    metrics
}

async fn finished_results(backend: Backend) {
    let app = spawn_app(backend).await;
    let owner = caller(&app, "owner@example.com", Plan::Professional).await;
    let other = caller(&app, "other@example.com", Plan::Professional).await;
    let run = short_run(&app, &owner.token).await;
    let path = format!("/api/sessions/{}", run.session_id);

    // Straight after `simulation_end`: served even if the write has not committed yet.
    let (status, detail) = call(&app, "GET", &path, Some(&owner.token)).await;
    assert_eq!(status, 200, "{detail}");
    let end = &run.end;
    assert_eq!(end["total_trades"], 2);
    assert_eq!(end["reason"], "completed");
    assert_eq!(
        without_duration(detail["metrics"].clone()),
        without_duration(end.clone())
    );
    assert_eq!(detail["session_id"], run.session_id.as_str());
    assert_eq!(detail["state"], "completed");
    assert_eq!(detail["reason"], "completed");
    assert_eq!(detail["symbols"], json!(["GOOG"]));
    assert_eq!(detail["timeframe"], "daily");
    assert_eq!(detail["start_date"], "2010-01-01T00:00:00Z");
    assert_eq!(detail["end_date"], "2010-03-01T00:00:00Z");
    assert_eq!(detail["initial_capital"], "100000.00");
    assert_eq!(detail["final_equity"], end["final_equity"]);
    assert_eq!(detail["total_return_pct"], end["total_return_pct"]);
    assert_eq!(detail["total_trades"], 2);
    assert_eq!(
        detail["params"]["metadata"],
        json!({"strategy": "twice", "quote": "it's \"fine\""})
    );
    assert_eq!(detail["params"]["symbols"], json!(["GOOG"]));
    for time in ["created_at", "finished_at"] {
        let text = detail[time].as_str().unwrap();
        assert!(
            chrono::DateTime::parse_from_rfc3339(text).is_ok(),
            "{time}: {text}"
        );
    }

    // Trades are the round trips of the fills: buy/sell, buy/sell.
    assert_eq!(run.fills.len(), 4);
    let trades = detail["trades"].as_array().unwrap();
    assert_eq!(trades.len(), 2);
    for (trade, fills) in trades.iter().zip(run.fills.chunks(2)) {
        let (entry, exit) = (&fills[0], &fills[1]);
        assert_eq!(
            (entry["side"].as_str(), exit["side"].as_str()),
            (Some("buy"), Some("sell"))
        );
        assert_eq!(trade["symbol"], "GOOG");
        assert_eq!(trade["side"], "long");
        assert_eq!(trade["quantity"], entry["executed_quantity"]);
        assert_eq!(trade["entry_price"], entry["executed_price"]);
        assert_eq!(trade["exit_price"], exit["executed_price"]);
        assert_eq!(trade["entry_time"], entry["timestamp"]);
        assert_eq!(trade["exit_time"], exit["timestamp"]);
        // PnL net of both commissions, exactly, in decimal.
        let price = |v: &Value| v.as_str().unwrap().parse::<market_data::Price>().unwrap();
        let amount = |v: &Value| v.as_str().unwrap().parse::<market_data::Amount>().unwrap();
        let qty = entry["executed_quantity"].as_i64().unwrap();
        let gross =
            price(&exit["executed_price"]).times(qty) - price(&entry["executed_price"]).times(qty);
        let commission = amount(&entry["commission"]) + amount(&exit["commission"]);
        assert_eq!(amount(&trade["commission"]), commission);
        assert_eq!(amount(&trade["pnl"]), gross - commission);
    }
    let curve = detail["equity_curve"].as_array().unwrap();
    assert!(curve.len() >= 2 && curve.len() <= 2048);
    assert_eq!(curve.last().unwrap()["equity"], end["final_equity"]);
    assert!(curve[0]["time"].as_str().unwrap().starts_with("2010-01-04"));
    assert_analytics(&detail, end);

    // Once written, the database answers the same thing.
    let record = stored(&app, owner.id, &run.session_id).await;
    assert_eq!(record.summary.total_trades, 2);
    assert_eq!(record.summary.user_id, owner.id);
    let stored_analytics: Value =
        serde_json::from_str(record.analytics.as_deref().unwrap()).unwrap();
    assert_eq!(stored_analytics, detail["analytics"]);
    let (status, again) = call(&app, "GET", &path, Some(&owner.token)).await;
    assert_eq!(status, 200);
    assert_eq!(again, detail);
    assert_trades_csv(&app, &path, &owner.token, trades).await;

    let (status, list) = call(&app, "GET", "/api/sessions", Some(&owner.token)).await;
    assert_eq!(status, 200);
    assert_eq!(ids(&list), [run.session_id.as_str()]);
    assert_eq!(
        (list["offset"].as_u64(), list["limit"].as_u64()),
        (Some(0), Some(50))
    );
    let entry = &list["sessions"][0];
    assert_eq!(entry["state"], "completed");
    assert_eq!(entry["final_equity"], end["final_equity"]);
    assert!(entry.get("trades").is_none(), "lists carry summaries only");

    // Somebody else: the same 404 as for an id that does not exist, and an empty list.
    assert_not_found(call(&app, "GET", &path, Some(&other.token)).await);
    assert_not_found(call(&app, "GET", "/api/sessions/sess_nope", Some(&other.token)).await);
    let csv_path = format!("{path}/trades.csv");
    assert_not_found(call(&app, "GET", &csv_path, Some(&other.token)).await);
    assert_not_found(
        call(
            &app,
            "GET",
            "/api/sessions/sess_nope/trades.csv",
            Some(&owner.token),
        )
        .await,
    );
    let (status, body) = call(&app, "GET", &csv_path, None).await;
    assert_eq!((status, &body["error"]), (401, &json!("AUTH_FAILED")));
    assert_not_found(call(&app, "DELETE", &path, Some(&other.token)).await);
    let (status, list) = call(&app, "GET", "/api/sessions", Some(&other.token)).await;
    assert_eq!((status, ids(&list).len()), (200, 0));

    // No or bad credentials.
    for token in [None, Some("not-a-jwt")] {
        for (method, p) in [
            ("GET", "/api/sessions"),
            ("GET", path.as_str()),
            ("DELETE", path.as_str()),
        ] {
            let (status, body) = call(&app, method, p, token).await;
            assert_eq!(status, 401, "{method} {p}");
            assert_eq!(body["error"], "AUTH_FAILED");
        }
    }
    let (status, _) = call(&app, "GET", &path, Some(&owner.token)).await;
    assert_eq!(status, 200, "still there after the refused deletes");

    // The owner deletes it: gone from REST and from the database.
    let (status, body) = call(&app, "DELETE", &path, Some(&owner.token)).await;
    assert_eq!((status, body), (204, Value::Null));
    assert_not_found(call(&app, "GET", &path, Some(&owner.token)).await);
    assert_not_found(call(&app, "DELETE", &path, Some(&owner.token)).await);
    let (_, list) = call(&app, "GET", "/api/sessions", Some(&owner.token)).await;
    assert!(ids(&list).is_empty());
    assert!(matches!(
        app.db.result_for_user(owner.id, &run.session_id).await,
        Err(auth::AuthError::NotFound)
    ));
    app.cleanup().await;
}
both_backends!(finished_results_reach_their_owner_only, finished_results);

/// `GET {path}/trades.csv` is an attachment holding `trades` (the JSON's) row for
/// row, every field with the JSON's text.
async fn assert_trades_csv(app: &TestApp, path: &str, token: &str, trades: &[Value]) {
    let mut res = awc::Client::new()
        .get(app.url(&format!("{path}/trades.csv")))
        .insert_header(("Authorization", format!("Bearer {token}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let header = |name: &str| {
        res.headers()
            .get(name)
            .unwrap()
            .to_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(header("content-type"), "text/csv; charset=utf-8");
    let session_id = path.rsplit('/').next().unwrap();
    assert_eq!(
        header("content-disposition"),
        format!("attachment; filename=\"trades-{session_id}.csv\"")
    );
    let body = res.body().await.unwrap();
    let mut reader = csv::Reader::from_reader(&body[..]);
    let columns: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(
        columns,
        [
            "symbol",
            "side",
            "quantity",
            "entry_time",
            "exit_time",
            "entry_price",
            "exit_price",
            "pnl",
            "commission",
            "return_pct"
        ]
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), trades.len());
    for (row, trade) in rows.iter().zip(trades) {
        assert_eq!(
            trade.as_object().unwrap().len(),
            columns.len(),
            "every field is a column"
        );
        for (column, cell) in columns.iter().zip(row.iter()) {
            let want = match &trade[column] {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                other => other.to_string(),
            };
            assert_eq!(cell, want, "{column}");
        }
    }
}

/// A percentage string of the analytics: exactly four decimals.
fn pct(v: &Value) -> f64 {
    let text = v.as_str().unwrap();
    let (_, decimals) = text.split_once('.').unwrap();
    assert_eq!(decimals.len(), 4, "{text}");
    text.parse().unwrap()
}

/// The analytics of the short run: the curve's points with buy and hold and drawdown,
/// January and February 2010, one exact return per trade, all agreeing with the
/// `simulation_end` numbers.
fn assert_analytics(detail: &Value, end: &Value) {
    let a = &detail["analytics"];
    let money = |v: &Value| v.as_str().unwrap().parse::<market_data::Amount>().unwrap();
    let close = |x: f64, y: f64| (x - y).abs() <= 0.000_05 + 1e-9;
    let curve = a["curve"].as_array().unwrap();
    let plain = detail["equity_curve"].as_array().unwrap();
    assert_eq!(curve.len(), plain.len());
    for (p, q) in curve.iter().zip(plain) {
        assert_eq!((&p["time"], &p["equity"]), (&q["time"], &q["equity"]));
    }
    let deepest = curve
        .iter()
        .map(|p| pct(&p["drawdown_pct"]))
        .fold(0.0, f64::max);
    let max_dd = end["max_drawdown_pct"].as_f64().unwrap();
    assert!(close(deepest, max_dd), "{deepest} vs {max_dd}");
    // GOOG alone: buy and hold is the whole capital bought at the first close.
    let last = curve.last().unwrap();
    let bh = (money(&last["buy_and_hold"]).to_f64() / 100_000.0 - 1.0) * 100.0;
    let bh_metric = end["buy_and_hold_return_pct"].as_f64().unwrap();
    assert!((bh - bh_metric).abs() < 1e-6, "{bh} vs {bh_metric}");
    assert_eq!(curve[0]["buy_and_hold"], "100000.00");

    let months = a["monthly_returns"].as_array().unwrap();
    let periods: Vec<&str> = months
        .iter()
        .map(|m| m["period"].as_str().unwrap())
        .collect();
    assert_eq!(periods, ["2010-01", "2010-02"]);
    let mut prev = 100_000.0;
    for m in months {
        let e = money(&m["end_equity"]).to_f64();
        assert!(
            close(pct(&m["return_pct"]), (e / prev - 1.0) * 100.0),
            "{m}"
        );
        prev = e;
    }
    assert_eq!(months[1]["end_equity"], end["final_equity"]);
    let years = a["yearly_returns"].as_array().unwrap();
    assert_eq!(years.len(), 1);
    assert_eq!(years[0]["period"], "2010");
    assert_eq!(years[0]["end_equity"], end["final_equity"]);
    let total = end["total_return_pct"].as_f64().unwrap();
    assert!(close(pct(&years[0]["return_pct"]), total), "{total}");

    let trades = detail["trades"].as_array().unwrap();
    let returns = a["trade_returns_pct"].as_array().unwrap();
    assert_eq!(returns.len(), trades.len());
    for (exact, t) in returns.iter().zip(trades) {
        let float = t["return_pct"].as_f64().unwrap();
        assert!(close(pct(exact), float), "{exact} vs {float}");
    }
}

fn stored_record(user: Uuid, session_id: &str, minute: u32) -> SimulationRecord {
    let created = Utc.with_ymd_and_hms(2024, 3, 1, 12, minute, 0).unwrap();
    SimulationRecord {
        summary: SimulationSummary {
            session_id: session_id.into(),
            user_id: user,
            symbols: vec!["AAPL".into()],
            timeframe: "1h".into(),
            start_date: Utc.with_ymd_and_hms(2020, 1, 1, 0, 0, 0).unwrap(),
            end_date: Utc.with_ymd_and_hms(2020, 2, 1, 0, 0, 0).unwrap(),
            initial_capital: "5000.00".into(),
            final_equity: "5100.50".into(),
            total_return_pct: Some(2.01),
            total_trades: 0,
            reason: protocol::EndReason::Stopped,
            created_at: created,
            finished_at: created + chrono::TimeDelta::seconds(1),
        },
        params: "{}".into(),
        metrics: json!({
            "session_id": session_id, "final_equity": "5100.50", "total_trades": 0,
            "sharpe_ratio": null, "total_return_pct": 2.01, "win_rate": 0.0,
            "max_drawdown_pct": 0.0, "simulation_duration_sec": 1, "reason": "stopped",
            "sortino_ratio": null, "calmar_ratio": null, "profit_factor": null,
            "cagr_pct": 0.0, "volatility_ann_pct": 0.0, "exposure_pct": 0.0,
            "buy_and_hold_return_pct": 0.0, "best_trade_pct": 0.0, "worst_trade_pct": 0.0,
            "avg_trade_pct": 0.0, "max_drawdown_duration_bars": 0,
            "total_commission": "0.00", "ticks_processed": 3
        })
        .to_string(),
        trades: "[]".into(),
        equity_curve: "[]".into(),
        analytics: None,
    }
}

async fn live_sessions_and_paging(backend: Backend) {
    let app = spawn_app(backend).await;
    let owner = caller(&app, "pager@example.com", Plan::Professional).await;
    for (i, id) in ["old-1", "old-2", "old-3", "old-4"].iter().enumerate() {
        app.db
            .save_result(stored_record(owner.id, id, i as u32))
            .await
            .unwrap();
    }

    // A session created but not started is live: listed first, with its progress.
    let mut ws = WsClient::connect(&app, &owner.token).await;
    ws.until("connection_ready").await;
    ws.send(
        "create_session",
        json!({"session_id": "live-1", "symbols": ["GOOG"], "start_date": "2010-01-01",
               "end_date": "2010-02-01", "initial_capital": 2500, "timeframe": "daily"}),
        Some("c"),
    )
    .await;
    ws.until("session_created").await;
    // Ids that could not be stored or addressed are refused up front.
    ws.send(
        "create_session",
        json!({"session_id": "nul\u{0}id", "symbols": ["GOOG"], "start_date": "2010-01-01",
               "end_date": "2010-02-01", "initial_capital": 2500, "timeframe": "daily"}),
        Some("bad"),
    )
    .await;
    let refused = ws.until("session_error").await;
    assert_eq!(refused["data"]["error_code"], "INVALID_PARAMS");
    assert!(refused["data"]["message"]
        .as_str()
        .unwrap()
        .contains("control characters"));
    let (status, live) = call(&app, "GET", "/api/sessions/live-1", Some(&owner.token)).await;
    assert_eq!(status, 200, "{live}");
    assert_eq!(live["state"], "ready");
    assert_eq!(live["sequence_id"], 0);
    assert_eq!(live["ticks_total"], 19);
    assert_eq!(live["initial_capital"], "2500.00");
    assert_eq!(live["params"]["initial_capital"], "2500.00");
    assert!(live.get("metrics").is_none() && live.get("finished_at").is_none());
    let (status, body) = call(
        &app,
        "GET",
        "/api/sessions/live-1/trades.csv",
        Some(&owner.token),
    )
    .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"], "CONFLICT");

    let page = |offset: u32, limit: u32| {
        let app = &app;
        let token = owner.token.clone();
        async move {
            let (status, list) = call(
                app,
                "GET",
                &format!("/api/sessions?offset={offset}&limit={limit}"),
                Some(&token),
            )
            .await;
            assert_eq!(status, 200, "{list}");
            ids(&list).iter().map(|s| s.to_string()).collect::<Vec<_>>()
        }
    };
    assert_eq!(page(0, 2).await, ["live-1", "old-4"]);
    assert_eq!(page(2, 2).await, ["old-3", "old-2"]);
    assert_eq!(page(4, 2).await, ["old-1"]);
    assert!(page(6, 2).await.is_empty());
    assert_eq!(page(1, 200).await, ["old-4", "old-3", "old-2", "old-1"]);
    let (_, first) = call(&app, "GET", "/api/sessions?limit=1", Some(&owner.token)).await;
    assert_eq!(first["sessions"][0]["state"], "ready");
    assert_eq!(first["sessions"][0]["ticks_total"], 19);
    for bad in [
        "limit=0",
        "limit=201",
        "limit=abc",
        "offset=-1",
        "offset=1.5",
    ] {
        let (status, body) = call(
            &app,
            "GET",
            &format!("/api/sessions?{bad}"),
            Some(&owner.token),
        )
        .await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("INVALID_PARAMS")),
            "{bad}"
        );
    }

    // Hostile ids in the path are ids like any other.
    for hostile in [
        "%27%20OR%20%271%27%3D%271",
        "old-1%27%3B%20DROP%20TABLE%20simulation_results%3B%20--",
        "%25",
        "..%2F..%2Fetc",
    ] {
        let path = format!("/api/sessions/{hostile}");
        assert_not_found(call(&app, "GET", &path, Some(&owner.token)).await);
        assert_not_found(call(&app, "DELETE", &path, Some(&owner.token)).await);
    }
    assert_eq!(
        app.db
            .list_results(owner.id, Page::default())
            .await
            .unwrap()
            .len(),
        4
    );

    // Deleting a live session closes it; a stored one is deleted.
    let (status, _) = call(&app, "DELETE", "/api/sessions/live-1", Some(&owner.token)).await;
    assert_eq!(status, 204);
    assert_not_found(call(&app, "GET", "/api/sessions/live-1", Some(&owner.token)).await);
    ws.send(
        "get_simulation_state",
        json!({"session_id": "live-1"}),
        Some("s"),
    )
    .await;
    let m = ws.until("session_error").await;
    assert_eq!(m["data"]["error_code"], "SESSION_NOT_FOUND");
    let (status, _) = call(&app, "DELETE", "/api/sessions/old-2", Some(&owner.token)).await;
    assert_eq!(status, 204);
    assert_eq!(page(0, 50).await, ["old-4", "old-3", "old-1"]);

    // A stored session reads back with its stored reason.
    let (status, old) = call(&app, "GET", "/api/sessions/old-4", Some(&owner.token)).await;
    assert_eq!(status, 200);
    assert_eq!(
        (old["state"].as_str(), old["reason"].as_str()),
        (Some("completed"), Some("stopped"))
    );
    assert_eq!(old["final_equity"], "5100.50");
    // Stored before analytics existed: read without them.
    assert!(old.get("analytics").is_none(), "{old}");
    assert_eq!(old["equity_curve"], json!([]));
    assert_eq!(old["created_at"], "2024-03-01T12:03:00Z");
    app.cleanup().await;
}
both_backends!(
    live_sessions_are_listed_before_stored_ones,
    live_sessions_and_paging
);

async fn stopped_runs_are_stored(backend: Backend) {
    let app = spawn_app(backend).await;
    let owner = caller(&app, "stopper@example.com", Plan::Professional).await;
    let mut ws = WsClient::connect(&app, &owner.token).await;
    ws.until("connection_ready").await;
    ws.send(
        "start_simulation",
        json!({"symbols": ["GOOG"], "start_date": "2004-01-01", "end_date": "2014-01-01",
               "initial_capital": "100000", "timeframe": "daily", "flow_control": true}),
        None,
    )
    .await;
    let created = ws.until("session_created").await;
    let sid = created["data"]["session_id"].as_str().unwrap().to_string();
    // Tick 1 arrives and is never acknowledged; the client stops the run.
    ws.until("tick").await;
    ws.send("stop_simulation", json!({"session_id": sid}), None)
        .await;
    let end = ws.until("simulation_end").await;
    assert_eq!(end["data"]["reason"], "stopped");
    let record = stored(&app, owner.id, &sid).await;
    assert_eq!(record.summary.reason, protocol::EndReason::Stopped);
    let (status, detail) = call(
        &app,
        "GET",
        &format!("/api/sessions/{sid}"),
        Some(&owner.token),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(detail["reason"], "stopped");
    assert_eq!(detail["metrics"]["ticks_processed"], 1);
    assert_eq!(detail["trades"], json!([]));
    // One bar, flat: one point at the capital, one month without a return.
    assert_eq!(
        detail["analytics"],
        json!({
            "curve": [{"time": "2004-08-19T00:00:00Z", "equity": "100000.00",
                       "buy_and_hold": "100000.00", "drawdown_pct": "0.0000"}],
            "monthly_returns": [{"period": "2004-08", "return_pct": "0.0000",
                                 "end_equity": "100000.00"}],
            "yearly_returns": [{"period": "2004", "return_pct": "0.0000",
                                "end_equity": "100000.00"}],
            "trade_returns_pct": []
        })
    );
    app.cleanup().await;
}
both_backends!(
    stopped_runs_are_stored_with_their_reason,
    stopped_runs_are_stored
);
