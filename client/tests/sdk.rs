//! The SDK against a real gateway over real sockets.

mod support;

use std::path::Path;

use market_data::{Amount, Catalog, SliceRequest, Timeframe};
use session_actor::engine::strategy::{run, SmaCrossover};
use session_actor::{Engine, EngineConfig};
use simutrador_client::protocol::{EndReason, SimulationState};
use simutrador_client::{
    parse_time, Client, Connection, Error, ErrorCode, OrderRequest, SessionEvent, SessionParams,
    Side, SmaCross,
};
use support::spawn_app;

fn goog(start: &str, end: &str) -> SessionParams {
    SessionParams::new(
        vec!["GOOG".into()],
        parse_time(start).unwrap(),
        parse_time(end).unwrap(),
        Amount::from_int(100_000),
        Timeframe::Daily,
    )
}

fn in_process() -> session_actor::engine::SimulationResults {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sample-data");
    let request = SliceRequest {
        provider: None,
        symbols: vec!["GOOG".into()],
        timeframe: Timeframe::Daily,
        start: parse_time("2004-01-01").unwrap(),
        end: parse_time("2014-01-01").unwrap(),
        warmup_bars: 0,
    };
    let slice = Catalog::open(root).unwrap().slice(&request).unwrap();
    let mut engine = Engine::new(EngineConfig::new(
        vec!["GOOG".into()],
        Amount::from_int(100_000),
    ))
    .unwrap();
    run(&mut engine, &slice, &mut SmaCrossover::new(10, 20, 100))
}

async fn connect(app: &support::TestApp) -> Connection {
    let client = Client::new(app.url());
    let token = client.authenticate(&app.api_key).await.unwrap();
    client.connect(&token).await.unwrap()
}

#[actix_rt::test]
async fn lock_step_sma_run_matches_the_in_process_engine_trade_for_trade() {
    let app = spawn_app().await;
    let mut conn = connect(&app).await;
    assert_eq!(conn.ready().plan, protocol::Plan::Enterprise);
    let mut seen = Vec::new();
    let results = conn
        .run_with_progress(
            goog("2004-01-01", "2014-01-01"),
            &mut SmaCross::new(10, 20, 100),
            |p| seen.push(p),
        )
        .await
        .unwrap();

    assert_eq!(results.end.final_equity.to_string(), "194777.00");
    assert_eq!(results.end.reason, EndReason::Completed);
    assert_eq!(results.end.ticks_processed, 2148);
    assert_eq!(results.trades.len(), 46);
    assert_eq!(results.end.total_trades, 46);
    assert!(results.rejected_orders.is_empty());
    assert_eq!(seen.len(), 2148);
    assert!(seen.iter().all(|p| p.total == 2148));
    assert_eq!(seen.last().unwrap().done, 2148);

    let want = in_process();
    assert_eq!(results.end.final_equity, want.metrics.final_equity);
    assert_eq!(want.trades.len(), results.trades.len());
    for (got, want) in results.trades.iter().zip(&want.trades) {
        assert_eq!(got.symbol, want.symbol);
        assert_eq!(got.side.as_str(), want.side);
        assert_eq!(got.quantity, want.quantity);
        assert_eq!(
            (got.entry_time, got.exit_time),
            (want.entry_time, want.exit_time)
        );
        assert_eq!(
            (got.entry_price, got.exit_price),
            (want.entry_price, want.exit_price)
        );
        assert_eq!((got.pnl, got.commission), (want.pnl, want.commission));
        assert!((got.return_pct - want.return_pct).abs() < 1e-9);
    }
    // The trades account for every cent between the start and the end (the run ends
    // flat or with an open position marked to market).
    let realized: Amount = results.trades.iter().map(|t| t.pnl).sum();
    assert!(results.last_account.is_some());
    let account = conn.account(&results.end.session_id).await.unwrap();
    let unrealized: Amount = account.positions.iter().map(|p| p.unrealized_pnl).sum();
    assert_eq!(
        Amount::from_int(100_000) + realized + unrealized,
        results.end.final_equity
    );
    conn.close().await.unwrap();
}

#[actix_rt::test]
async fn streaming_without_flow_control_delivers_every_tick_in_order() {
    let app = spawn_app().await;
    let mut conn = connect(&app).await;
    let mut params = goog("2004-01-01", "2014-01-01");
    params.flow_control = false;
    let mut stream = conn.start_simulation(params).await.unwrap();
    assert_eq!(stream.session_created().unwrap().estimated_ticks, 2148);
    let mut seq = 0;
    let mut history = false;
    let end = loop {
        match stream.next().await.unwrap().expect("stream ends with End") {
            SessionEvent::History(h) => {
                assert_eq!(seq, 0);
                assert_eq!(h.count, 0);
                history = true;
            }
            SessionEvent::Tick(t) => {
                seq += 1;
                assert_eq!(t.sequence_id, seq);
                assert!(t.candles.contains_key("GOOG"));
            }
            SessionEvent::End(end) => break end,
            _ => {}
        }
    };
    assert!(history);
    assert_eq!(seq, 2148);
    assert_eq!(stream.last_sequence_id(), 2148);
    assert_eq!(end.ticks_processed, 2148);
    assert!(stream.next().await.unwrap().is_none());
}

#[actix_rt::test]
async fn two_step_start_orders_control_and_resume() {
    let app = spawn_app().await;
    let mut conn = connect(&app).await;
    let created = conn
        .create_session(goog("2010-01-01", "2011-01-01"), Some("my-session".into()))
        .await
        .unwrap();
    assert_eq!(created.session_id, "my-session");
    assert_eq!(created.state, SimulationState::Ready);
    let sessions = conn.list_sessions().await.unwrap();
    assert!(sessions.iter().any(|s| s.session_id == "my-session"));

    let mut stream = conn.simulation_start("my-session", true, 1).await.unwrap();
    let first = loop {
        if let SessionEvent::Tick(t) = stream.next().await.unwrap().unwrap() {
            break t;
        }
    };
    assert_eq!(first.sequence_id, 1);
    let ack = stream
        .submit_orders(vec![
            OrderRequest::market("buy-1", "GOOG", Side::Buy, 10),
            OrderRequest::market("bad", "MSFT", Side::Buy, 1),
            OrderRequest::limit("low", "GOOG", Side::Buy, 1, "1".parse().unwrap())
                .with_tif(protocol::TimeInForce::Gtc),
        ])
        .await
        .unwrap();
    assert_eq!(ack.accepted_orders, vec!["buy-1", "low"]);
    assert_eq!(ack.rejected_orders["bad"], "UNKNOWN_SYMBOL");
    let cancelled = stream
        .cancel_orders(vec!["low".into(), "nope".into()])
        .await
        .unwrap();
    assert_eq!(
        (cancelled.cancelled, cancelled.not_found),
        (vec!["low".to_string()], vec!["nope".to_string()])
    );
    stream.ack(1).await.unwrap();
    // The market order fills at the next bar's open, before that bar's tick.
    let mut filled = false;
    loop {
        match stream.next().await.unwrap().unwrap() {
            SessionEvent::Fill(f) => {
                assert_eq!((f.order_id.as_str(), f.executed_quantity), ("buy-1", 10));
                filled = true;
            }
            SessionEvent::Tick(t) => {
                assert_eq!(t.sequence_id, 2);
                break;
            }
            _ => {}
        }
    }
    assert!(filled);
    let account = stream.account().await.unwrap();
    assert_eq!(account.positions[0].quantity, 10);
    stream.pause().await.unwrap();
    assert_eq!(stream.state().await.unwrap().state, SimulationState::Paused);
    stream.resume().await.unwrap();
    let state = stream.state().await.unwrap();
    assert_eq!(
        (state.state, state.sequence_id),
        (SimulationState::Running, 2)
    );

    // The socket goes away; a new connection resumes after tick 2.
    drop(stream);
    drop(conn);
    let mut conn = connect(&app).await;
    let mut stream = conn.resume_session("my-session", 2).await.unwrap();
    assert_eq!(stream.session_resumed().unwrap().resumed_from_sequence, 2);
    match stream.next().await.unwrap().unwrap() {
        SessionEvent::Account(a) => assert_eq!(a.positions[0].quantity, 10),
        other => panic!("expected the account first, got {other:?}"),
    }
    stream.ack(2).await.unwrap();
    loop {
        if let SessionEvent::Tick(t) = stream.next().await.unwrap().unwrap() {
            assert_eq!(t.sequence_id, 3);
            break;
        }
    }
    let end = stream.stop().await.unwrap();
    assert_eq!(end.reason, EndReason::Stopped);
    assert_eq!(end.ticks_processed, 3);
    assert!(stream.next().await.unwrap().is_none());
    conn.close_session("my-session").await.unwrap();
    match conn.state("my-session").await {
        Err(Error::Server {
            code: ErrorCode::SessionNotFound,
            session_id,
            ..
        }) => assert_eq!(session_id.as_deref(), Some("my-session")),
        other => panic!("{other:?}"),
    }
}

#[actix_rt::test]
async fn refusals_come_back_as_typed_errors() {
    let app = spawn_app().await;
    let client = Client::new(app.url());
    match client.authenticate("stk_not_a_real_key").await {
        Err(e @ Error::AuthFailed(_)) => assert_eq!(e.code(), Some(ErrorCode::AuthFailed)),
        other => panic!("{other:?}"),
    }
    let forged = simutrador_client::Token::new("not.a.jwt", i64::MAX, "u", protocol::Plan::Free);
    assert!(matches!(
        client.connect(&forged).await,
        Err(Error::AuthFailed(_))
    ));
    assert!(matches!(
        Client::new("http://127.0.0.1:1").authenticate("k").await,
        Err(Error::Transport(_))
    ));

    let mut conn = connect(&app).await;
    let mut params = goog("2004-01-01", "2014-01-01");
    params.symbols = vec!["NOPE".into()];
    match conn.start_simulation(params).await {
        Err(Error::Server { code, .. }) => assert_eq!(code, ErrorCode::DataFetchFailed),
        other => panic!("{other:?}"),
    }
    let bad_dates = goog("2014-01-01", "2004-01-01");
    let err = conn.create_session(bad_dates, None).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::ValidationError));
    let err = conn.submit_orders("nope", vec![]).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::SessionNotFound));
    // Still usable.
    conn.ping().await.unwrap();
}

#[actix_rt::test]
async fn orders_sent_without_waiting_come_back_on_the_stream_in_order() {
    let app = spawn_app().await;
    let mut conn = connect(&app).await;
    let mut params = goog("2004-01-01", "2014-01-01");
    params.flow_control = true;
    params.max_pending_ticks = 1;
    let mut stream = conn.start_simulation(params).await.unwrap();
    let (mut acks, mut fills, mut failed, mut position) = (Vec::new(), 0, 0, 0i64);
    let mut ticks = 0;
    while ticks < 20 {
        match stream.next().await.unwrap().unwrap() {
            SessionEvent::Tick(t) => {
                ticks += 1;
                // A buy and then an unknown symbol: one ack each, and one failed order.
                let (id, symbol) = match ticks % 2 {
                    1 => (format!("o{ticks}"), "GOOG"),
                    _ => (format!("bad{ticks}"), "NOPE"),
                };
                let side = if position > 0 { Side::Sell } else { Side::Buy };
                let batch = stream
                    .send_orders(vec![OrderRequest::market(id, symbol, side, 1)])
                    .await
                    .unwrap();
                assert_eq!(batch, format!("batch-{ticks}"));
                stream.ack(t.sequence_id).await.unwrap();
            }
            SessionEvent::BatchAck(a) => {
                if !a.rejected_orders.is_empty() {
                    assert!(a.rejected_orders.keys().all(|k| k.starts_with("bad")));
                    failed += 1;
                }
                acks.push(a.batch_id);
            }
            SessionEvent::Fill(f) => {
                fills += 1;
                position += if f.side == Side::Buy { 1 } else { -1 };
            }
            SessionEvent::BatchFailed { batch_id, error } => panic!("{batch_id}: {error:?}"),
            _ => {}
        }
    }
    // Each batch was answered before the next tick: 19 of the 20 by now, 9 of them
    // refusing the unknown symbol; each good order filled at the next bar's open.
    let expected: Vec<_> = (1..20).map(|n| format!("batch-{n}")).collect();
    assert_eq!(acks, expected);
    assert_eq!((failed, fills), (9, 10));
    assert!((0..=1).contains(&position));
    // Other requests on the connection still get their own replies.
    stream.state().await.unwrap();
    let end = stream.stop().await.unwrap();
    assert_eq!(end.reason, EndReason::Stopped);
}
