//! `bench`: a bounded load generator. N concurrent connections, one session each,
//! against the configured server only; reports total ticks per second, the lock-step
//! tick round trip (receiving tick N to receiving tick N+1, the ack in between) and
//! errors. Every session stops after `--bars` ticks or at the `--duration` deadline.
//!
//! With `--order-every N`, every Nth tick is answered with a one-share market order on
//! the first symbol (buy when flat, sell when long, so the position stays 0 or 1),
//! sent as `order_batch` right before the `tick_ack` without waiting for its
//! `batch_ack`, the way a strategy that trades each bar talks to the server.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::Serialize;
use simutrador_client::protocol::{OrderRequest, Side};
use simutrador_client::{Client, SessionEvent, SessionParams, Token};

use crate::args::Args;
use crate::error::CliError;
use crate::output::key_values;
use crate::params::{session_params, SESSION_OPTIONS};

/// Upper bounds that keep the generator a benchmark, not a flood.
const MAX_SESSIONS: u32 = 1000;
const MAX_DURATION_SECS: u64 = 3600;
/// Longest wait for any single event.
const EVENT_TIMEOUT: Duration = Duration::from_secs(30);

/// How ticks are paced.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Flow control with a window of 1: one tick per acknowledgement.
    Lockstep,
    /// No flow control: ticks as fast as the socket drains.
    Stream,
}

/// What `bench` was asked to do.
#[derive(Clone, Debug)]
pub struct Plan {
    pub sessions: u32,
    pub bars: Option<u64>,
    pub mode: Mode,
    pub duration: Duration,
    pub threads: usize,
    pub params: SessionParams,
    /// An order every this many ticks; 0: acknowledgements only.
    pub order_every: u64,
    /// Client threads poll their sockets instead of sleeping between frames, so the
    /// generator's own wake-up latency is left out of the round trips it measures.
    pub busy_poll: bool,
    pub json: bool,
}

impl Plan {
    pub fn from_args(args: &Args) -> Result<Plan, CliError> {
        let mut allowed = vec![
            "sessions",
            "bars",
            "mode",
            "duration",
            "threads",
            "busy-poll",
            "json",
            "order-every",
        ];
        allowed.extend_from_slice(SESSION_OPTIONS);
        args.allow("bench", &allowed)?;
        let sessions: u32 = args.parsed_or("sessions", 1)?;
        if sessions == 0 || sessions > MAX_SESSIONS {
            return Err(CliError::Usage(format!(
                "--sessions must be between 1 and {MAX_SESSIONS}"
            )));
        }
        let bars: Option<u64> = args.parsed("bars")?;
        if bars == Some(0) {
            return Err(CliError::Usage("--bars must be at least 1".into()));
        }
        let mode = match args.value("mode").unwrap_or("lockstep") {
            "lockstep" | "lock-step" => Mode::Lockstep,
            "stream" => Mode::Stream,
            other => {
                return Err(CliError::Usage(format!(
                    "unknown mode `{other}` (expected lockstep or stream)"
                )))
            }
        };
        let secs: u64 = args.parsed_or("duration", 120)?;
        if secs == 0 || secs > MAX_DURATION_SECS {
            return Err(CliError::Usage(format!(
                "--duration must be between 1 and {MAX_DURATION_SECS} seconds"
            )));
        }
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let threads: usize = args.parsed_or("threads", cores.min(sessions as usize))?;
        if threads == 0 || threads > sessions as usize {
            return Err(CliError::Usage(
                "--threads must be between 1 and --sessions".into(),
            ));
        }
        let order_every: u64 = args.parsed_or("order-every", 0)?;
        let mut params = session_params(args)?;
        params.flow_control = mode == Mode::Lockstep;
        params.max_pending_ticks = 1;
        Ok(Plan {
            sessions,
            bars,
            mode,
            duration: Duration::from_secs(secs),
            threads,
            params,
            order_every,
            busy_poll: args.flag("busy-poll"),
            json: args.flag("json"),
        })
    }
}

/// One session's outcome.
#[derive(Debug, Default)]
struct SessionReport {
    ticks: u64,
    /// When the first and the last tick arrived.
    first_tick: Option<Instant>,
    last_tick: Option<Instant>,
    /// Tick-to-tick round trips in microseconds (lock-step only).
    round_trips_us: Vec<u32>,
    trading: Trading,
    error: Option<String>,
}

/// What the orders of `--order-every` came to.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Trading {
    /// Orders sent (one per `order_batch`).
    pub orders_sent: u64,
    /// `batch_ack`s received.
    pub batch_acks: u64,
    /// Orders refused: in a `batch_ack`, or with their whole batch.
    pub orders_rejected: u64,
    /// Fills (`execution_report`s).
    pub fills: u64,
}

impl Trading {
    fn add(&mut self, o: &Trading) {
        self.orders_sent += o.orders_sent;
        self.batch_acks += o.batch_acks;
        self.orders_rejected += o.orders_rejected;
        self.fills += o.fills;
    }
}

/// Lock-step round-trip statistics in milliseconds.
#[derive(Debug, Serialize)]
pub struct Latency {
    pub samples: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

/// The bench result (also the `--json` document).
#[derive(Debug, Serialize)]
pub struct Summary {
    pub url: String,
    pub mode: Mode,
    pub sessions: u32,
    pub sessions_ok: u32,
    pub threads: usize,
    pub bars_per_session: Option<u64>,
    pub ticks: u64,
    /// From the first connection attempt to the last session's end.
    pub wall_sec: f64,
    /// Ticks over `wall_sec` (connects and session setup included).
    pub ticks_per_sec: f64,
    /// From the first tick of any session to the last tick of any session.
    pub tick_span_sec: f64,
    /// Ticks over `tick_span_sec`: the steady-state rate.
    pub ticks_per_sec_in_span: f64,
    pub round_trip: Option<Latency>,
    /// `--order-every` (0: no orders).
    pub order_every: u64,
    pub trading: Trading,
    pub errors: BTreeMap<String, u32>,
}

/// Runs the plan against `url` with `token`; blocks until every session ended or the
/// deadline (plus a grace period) passed.
pub fn execute(url: &str, token: &Token, plan: &Plan) -> Result<Summary, CliError> {
    let t0 = Instant::now();
    let deadline = t0 + plan.duration;
    let mut handles = Vec::new();
    for thread in 0..plan.threads {
        let count = (plan.sessions as usize + plan.threads - 1 - thread) / plan.threads;
        let (url, token, plan) = (url.to_string(), token.clone(), plan.clone());
        let handle = std::thread::Builder::new()
            .name(format!("bench-{thread}"))
            .spawn(move || {
                actix_rt::System::new().block_on(async move {
                    if plan.busy_poll {
                        // An always-ready task keeps the runtime polling the sockets
                        // (with a zero timeout) instead of parking the thread.
                        actix_rt::spawn(async {
                            loop {
                                tokio::task::yield_now().await;
                            }
                        });
                    }
                    let client = Client::new(url);
                    let tasks: Vec<_> = (0..count)
                        .map(|_| {
                            let (client, token, plan) =
                                (client.clone(), token.clone(), plan.clone());
                            actix_rt::spawn(async move {
                                let hard = tokio::time::Instant::from_std(deadline + EVENT_TIMEOUT);
                                let mut report = SessionReport::default();
                                let run =
                                    one_session(&client, &token, &plan, deadline, &mut report);
                                match tokio::time::timeout_at(hard, run).await {
                                    Ok(Ok(())) => {}
                                    Ok(Err(e)) => report.error = Some(e.to_string()),
                                    Err(_) => {
                                        report.error =
                                            Some("did not finish before the deadline".into())
                                    }
                                }
                                report
                            })
                        })
                        .collect();
                    let mut reports = Vec::with_capacity(tasks.len());
                    for t in tasks {
                        reports.push(t.await.unwrap_or_else(|_| SessionReport {
                            error: Some("session task panicked".into()),
                            ..Default::default()
                        }));
                    }
                    reports
                })
            })
            .map_err(CliError::io("starting a bench thread"))?;
        handles.push(handle);
    }
    let mut reports = Vec::new();
    for h in handles {
        match h.join() {
            Ok(r) => reports.extend(r),
            Err(_) => return Err(CliError::Failed("a bench thread panicked".into())),
        }
    }
    let wall = t0.elapsed().as_secs_f64();
    Ok(summarize(url, plan, reports, wall))
}

/// Connect, start, consume ticks until the end, `--bars` or the deadline; then close.
async fn one_session(
    client: &Client,
    token: &Token,
    plan: &Plan,
    deadline: Instant,
    report: &mut SessionReport,
) -> simutrador_client::Result<()> {
    let mut conn = client.connect(token).await?;
    let lockstep = plan.mode == Mode::Lockstep;
    let symbol = plan.params.symbols.first().cloned().unwrap_or_default();
    let session_id = {
        let mut stream = conn.start_simulation(plan.params.clone()).await?;
        let mut stopping = false;
        let mut position: i64 = 0;
        while let Some(event) = stream.next_within(Some(EVENT_TIMEOUT)).await? {
            match event {
                SessionEvent::Fill(fill) => {
                    report.trading.fills += 1;
                    let q = fill.executed_quantity;
                    position += if fill.side == Side::Buy { q } else { -q };
                }
                SessionEvent::BatchAck(ack) => {
                    report.trading.batch_acks += 1;
                    report.trading.orders_rejected += ack.rejected_orders.len() as u64;
                }
                SessionEvent::BatchFailed { error, .. } => {
                    report.trading.orders_rejected += 1;
                    report.error.get_or_insert(format!(
                        "order batch refused: {}: {}",
                        error.error_code.as_str(),
                        error.message
                    ));
                }
                SessionEvent::Tick(tick) => {
                    let now = Instant::now();
                    if let (true, Some(prev)) = (lockstep && !stopping, report.last_tick) {
                        let us = now.duration_since(prev).as_micros();
                        report.round_trips_us.push(us.min(u32::MAX as u128) as u32);
                    }
                    report.first_tick.get_or_insert(now);
                    report.last_tick = Some(now);
                    report.ticks += 1;
                    if stopping {
                        continue;
                    }
                    let enough = plan.bars.is_some_and(|b| report.ticks >= b);
                    if enough || now >= deadline {
                        stopping = true;
                        stream.stop().await?;
                    } else {
                        if plan.order_every > 0 && report.ticks.is_multiple_of(plan.order_every) {
                            let side = if position > 0 { Side::Sell } else { Side::Buy };
                            let n = report.trading.orders_sent + 1;
                            let order = OrderRequest::market(format!("o{n}"), &symbol, side, 1);
                            stream.send_orders(vec![order]).await?;
                            report.trading.orders_sent = n;
                        }
                        if lockstep {
                            stream.ack(tick.sequence_id).await?;
                        }
                    }
                }
                SessionEvent::End(_) => break,
                _ => {}
            }
        }
        stream.session_id().to_string()
    };
    conn.close_session(&session_id).await?;
    conn.close().await
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1] as f64 / 1000.0
}

fn summarize(url: &str, plan: &Plan, reports: Vec<SessionReport>, wall: f64) -> Summary {
    let mut errors = BTreeMap::new();
    let mut samples = Vec::new();
    let (mut ticks, mut ok) = (0, 0);
    let mut trading = Trading::default();
    let (mut first, mut last): (Option<Instant>, Option<Instant>) = (None, None);
    for r in reports {
        ticks += r.ticks;
        first = match (first, r.first_tick) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        last = last.max(r.last_tick);
        samples.extend(r.round_trips_us);
        trading.add(&r.trading);
        match r.error {
            Some(e) => *errors.entry(e).or_insert(0) += 1,
            None => ok += 1,
        }
    }
    samples.sort_unstable();
    let round_trip = (!samples.is_empty()).then(|| Latency {
        samples: samples.len(),
        p50_ms: percentile(&samples, 50.0),
        p99_ms: percentile(&samples, 99.0),
        max_ms: *samples.last().unwrap_or(&0) as f64 / 1000.0,
        mean_ms: samples.iter().map(|&x| x as f64).sum::<f64>() / samples.len() as f64 / 1000.0,
    });
    let span = match (first, last) {
        (Some(a), Some(b)) => b.duration_since(a).as_secs_f64(),
        _ => 0.0,
    };
    let rate = |secs: f64| if secs > 0.0 { ticks as f64 / secs } else { 0.0 };
    Summary {
        url: url.to_string(),
        mode: plan.mode,
        sessions: plan.sessions,
        sessions_ok: ok,
        threads: plan.threads,
        bars_per_session: plan.bars,
        ticks,
        wall_sec: wall,
        ticks_per_sec: rate(wall),
        tick_span_sec: span,
        ticks_per_sec_in_span: rate(span),
        round_trip,
        order_every: plan.order_every,
        trading,
        errors,
    }
}

/// The human-readable summary.
pub fn report(s: &Summary, plan: &Plan) -> String {
    let p = &plan.params;
    let mut lines = vec![
        ("Server", s.url.clone()),
        (
            "Load",
            format!(
                "{} session(s), {:?}, {} {} {} .. {}{}",
                s.sessions,
                s.mode,
                p.symbols.join(","),
                p.timeframe,
                crate::output::time(p.start_date),
                crate::output::time(p.end_date),
                s.bars_per_session
                    .map(|b| format!(", at most {b} bars each"))
                    .unwrap_or_default()
            )
            .replace("Lockstep", "lock-step")
            .replace("Stream", "streaming"),
        ),
        (
            "Client threads",
            format!(
                "{}{}",
                s.threads,
                if plan.busy_poll {
                    " (busy-polling)"
                } else {
                    ""
                }
            ),
        ),
        ("Sessions ok", format!("{}/{}", s.sessions_ok, s.sessions)),
        ("Ticks", s.ticks.to_string()),
        ("Wall time", format!("{:.3} s", s.wall_sec)),
        (
            "Throughput",
            format!(
                "{:.0} ticks/s over the wall time (connects and setup included); \
                 {:.0} ticks/s from first to last tick ({:.3} s)",
                s.ticks_per_sec, s.ticks_per_sec_in_span, s.tick_span_sec
            ),
        ),
    ];
    if let Some(l) = &s.round_trip {
        lines.push((
            "Tick round trip",
            format!(
                "p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms, mean {:.3} ms ({} samples)",
                l.p50_ms, l.p99_ms, l.max_ms, l.mean_ms, l.samples
            ),
        ));
    }
    if s.order_every > 0 {
        let t = &s.trading;
        lines.push((
            "Orders",
            format!(
                "one every {} bar(s): {} sent, {} batch_ack(s), {} rejected, {} fill(s)",
                s.order_every, t.orders_sent, t.batch_acks, t.orders_rejected, t.fills
            ),
        ));
    }
    let errors: u32 = s.errors.values().sum();
    lines.push(("Errors", errors.to_string()));
    let mut out = key_values(&lines);
    for (e, n) in &s.errors {
        out += &format!("  {n} x {e}\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<u32> = (1..=100).map(|x| x * 1000).collect();
        assert_eq!(percentile(&v, 50.0), 50.0);
        assert_eq!(percentile(&v, 99.0), 99.0);
        assert_eq!(percentile(&[5000], 99.0), 5.0);
        assert!(percentile(&[], 50.0).is_nan());
    }

    #[test]
    fn limits_are_enforced() {
        let parse = |s: &str| {
            Plan::from_args(&Args::parse(s.split_whitespace().map(String::from)).unwrap())
        };
        let base = "--start 2004-01-01 --end 2014-01-01";
        assert!(parse(&format!("{base} --sessions 1001")).is_err());
        assert!(parse(&format!("{base} --duration 0")).is_err());
        assert!(parse(&format!("{base} --mode fast")).is_err());
        assert!(parse(&format!("{base} --sessions 2 --threads 3")).is_err());
        let p = parse(&format!("{base} --sessions 4 --mode stream --bars 10")).unwrap();
        assert_eq!(
            (p.mode, p.bars, p.params.flow_control),
            (Mode::Stream, Some(10), false)
        );
        assert!(p.threads >= 1 && p.threads <= 4);
        assert_eq!(p.order_every, 0);
        assert_eq!(
            parse(&format!("{base} --order-every 3"))
                .unwrap()
                .order_every,
            3
        );
        assert!(parse(&format!("{base} --order-every -1")).is_err());
    }
}
