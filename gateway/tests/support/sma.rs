//! The SMA(10,20) crossover on GOOG daily 2004-2013 as a remote client runs it, and
//! the in-process engine's results it must reproduce.

use std::path::Path;

use engine::strategy::{run, SmaCrossover};
use engine::{Engine, EngineConfig, SimulationResults};
use market_data::{Amount, Catalog, SliceRequest, Timeframe};
use serde_json::{json, Value};

pub fn goog_start() -> Value {
    json!({
        "symbols": ["GOOG"], "start_date": "2004-01-01", "end_date": "2014-01-01",
        "initial_capital": "100000", "timeframe": "daily", "flow_control": true, "max_pending_ticks": 1
    })
}

/// SMA(10,20) from ticks and fills, as a remote client computes it.
#[derive(Default)]
pub struct Sma {
    closes: Vec<i128>,
    prev: Option<std::cmp::Ordering>,
    pub position: i64,
    n: u64,
    /// The last tick received.
    pub last_seen: u64,
    /// A tick received but not answered yet (across a reconnect).
    pub pending: Option<Value>,
}

impl Sma {
    pub fn on_tick(&mut self, tick: &Value) -> Option<Value> {
        let close: market_data::Price = tick["data"]["candles"]["GOOG"]["close"]
            .as_str()?
            .parse()
            .ok()?;
        self.closes.push(close.raw() as i128);
        let n = self.closes.len();
        if n < 20 {
            return None;
        }
        let fast: i128 = self.closes[n - 10..].iter().sum();
        let slow: i128 = self.closes[n - 20..].iter().sum();
        let now = (fast * 20).cmp(&(slow * 10));
        let prev = self.prev.replace(now);
        use std::cmp::Ordering::*;
        let (side, qty) = match (prev?, now) {
            (Less, Greater) if self.position == 0 => ("buy", 100),
            (Greater, Less) if self.position > 0 => ("sell", self.position),
            _ => return None,
        };
        self.n += 1;
        Some(
            json!({"order_id": format!("sma-{}", self.n), "symbol": "GOOG", "side": side, "type": "market", "quantity": qty}),
        )
    }
}

pub fn in_process() -> SimulationResults {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sample-data");
    let request = SliceRequest {
        provider: None,
        symbols: vec!["GOOG".into()],
        timeframe: Timeframe::Daily,
        start: market_data::parse_timestamp("2004-01-01").unwrap(),
        end: market_data::parse_timestamp("2014-01-01").unwrap(),
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

/// A lock-step client of the SMA strategy over the wire.
impl Sma {
    /// Plays the client until `stop(sequence_id)` is true for a tick, which is then kept
    /// unanswered in `pending` (returns None), or until the run ends (returns the
    /// `simulation_end` message). Ticks must come in order, without gaps or repeats.
    pub async fn drive(
        &mut self,
        ws: &mut super::WsClient,
        sid: &str,
        mut stop: impl FnMut(u64) -> bool,
    ) -> Option<Value> {
        loop {
            let m = ws.recv().await.expect("connection open");
            match m["type"].as_str().unwrap() {
                "execution_report" => {
                    let q = m["data"]["executed_quantity"].as_i64().unwrap();
                    self.position += if m["data"]["side"] == "buy" { q } else { -q };
                }
                "tick" => {
                    let seq = m["data"]["sequence_id"].as_u64().unwrap();
                    assert_eq!(seq, self.last_seen + 1, "ticks in order, no gap or repeat");
                    self.last_seen = seq;
                    if stop(seq) {
                        self.pending = Some(m);
                        return None;
                    }
                    self.answer(ws, sid, &m).await;
                }
                "session_error" => panic!("session error: {m}"),
                "simulation_end" => return Some(m),
                _ => {}
            }
        }
    }

    /// Answers the tick kept by [`Sma::drive`] (after a reconnect, say).
    pub async fn answer_pending(&mut self, ws: &mut super::WsClient, sid: &str) {
        if let Some(tick) = self.pending.take() {
            self.answer(ws, sid, &tick).await;
        }
    }

    /// The reaction to a tick: an order if the averages crossed (waiting for its
    /// `batch_ack`), then the `tick_ack`.
    async fn answer(&mut self, ws: &mut super::WsClient, sid: &str, tick: &Value) {
        if let Some(order) = self.on_tick(tick) {
            ws.send(
                "order_batch",
                json!({"session_id": sid, "batch_id": "b", "orders": [order]}),
                None,
            )
            .await;
            ws.until("batch_ack").await;
        }
        let seq = &tick["data"]["sequence_id"];
        ws.send(
            "tick_ack",
            json!({"session_id": sid, "sequence_id": seq}),
            None,
        )
        .await;
    }
}
