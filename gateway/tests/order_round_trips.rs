//! A strategy that trades must not stall: lock-step order + ack round trips over a raw
//! WebSocket on a real TCP socket, and `TCP_NODELAY` on every socket the gateway
//! accepts (main, compat and metrics listeners).
//!
//! The stall this guards against: the client sends `order_batch` and `tick_ack` back to
//! back; the server answers the batch (`batch_ack`) and, after the ack, writes the next
//! `tick`. Without `TCP_NODELAY` on the server's socket, Nagle's algorithm holds that
//! tick until the client acknowledges the `batch_ack`, which the client's delayed ACK
//! does only after ~40 ms, since it has nothing to send. Every bar with an order then
//! costs 40 ms.

mod support;

use std::os::fd::{AsRawFd, BorrowedFd};
use std::time::{Duration, Instant};

use actix_codec::Framed;
use auth::Plan;
use awc::ws::{Codec, Frame, Message};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use support::sma::goog_start;
use support::{spawn_app, spawn_app_with, Backend};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Lock-step bars with an order each.
const ROUND_TRIPS: u32 = 200;
/// With the stall, 200 round trips take 8 s or more (200 x 40 ms); without it, a few
/// hundred milliseconds even on a loaded machine. The bound sits far from both.
const LIMIT: Duration = Duration::from_secs(4);

/// A WebSocket client on a plain tokio socket: the upgrade by hand, then the
/// actix-http codec in client mode (masked frames).
struct RawWs {
    framed: Framed<TcpStream, Codec>,
}

impl RawWs {
    /// Upgrades a socket to `127.0.0.1:port`. `nodelay` is the client side's own
    /// option.
    async fn connect(port: u16, token: &str, nodelay: bool) -> RawWs {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        stream.set_nodelay(nodelay).unwrap();
        let request = format!(
            "GET /ws/simulate?token={token} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\
             Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        // Byte by byte up to the blank line, so no frame after the headers is read
        // here (the codec must see it).
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let mut b = [0u8; 1];
            let n = stream.read(&mut b).await.unwrap();
            assert_eq!(n, 1, "closed during the upgrade: {head:?}");
            head.push(b[0]);
        }
        let head = String::from_utf8_lossy(&head);
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        RawWs {
            framed: Framed::new(stream, Codec::new().client_mode().max_size(16 << 20)),
        }
    }

    async fn send(&mut self, msg_type: &str, data: Value, request_id: Option<&str>) {
        let frame = json!({"type": msg_type, "data": data, "request_id": request_id});
        self.framed
            .send(Message::Text(frame.to_string().into()))
            .await
            .unwrap();
    }

    async fn recv(&mut self) -> Value {
        loop {
            let frame = tokio::time::timeout(Duration::from_secs(20), self.framed.next())
                .await
                .expect("server answered within 20 s")
                .expect("socket open")
                .expect("valid frame");
            match frame {
                Frame::Text(t) => return serde_json::from_slice(&t).unwrap(),
                Frame::Close(c) => panic!("closed: {c:?}"),
                _ => continue,
            }
        }
    }

    async fn until(&mut self, msg_type: &str) -> Value {
        loop {
            let m = self.recv().await;
            if m["type"] == msg_type {
                return m;
            }
        }
    }
}

/// What [`trade_lock_step`] saw.
#[derive(Debug)]
struct Trading {
    elapsed: Duration,
    batch_acks: u32,
    fills: u32,
}

/// `ROUND_TRIPS` bars, each answered with a one-share market order (buy and sell in
/// turn) followed at once by the `tick_ack`, the way a Python `websockets` strategy
/// sends them.
async fn trade_lock_step(port: u16, token: &str, client_nodelay: bool) -> Trading {
    let mut ws = RawWs::connect(port, token, client_nodelay).await;
    assert_eq!(ws.recv().await["type"], "connection_ready");
    ws.send("start_simulation", goog_start(), Some("start"))
        .await;
    let sid = ws.until("session_created").await["data"]["session_id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut tick = ws.until("tick").await;
    let (mut batch_acks, mut fills) = (0, 0);
    let started = Instant::now();
    for i in 0..ROUND_TRIPS {
        let seq = tick["data"]["sequence_id"].as_u64().unwrap();
        let side = if i % 2 == 0 { "buy" } else { "sell" };
        let batch = format!("b{i}");
        let order = json!({"order_id": format!("o{i}"), "symbol": "GOOG", "side": side,
                           "type": "market", "quantity": 1});
        ws.send(
            "order_batch",
            json!({"session_id": sid, "batch_id": batch, "orders": [order]}),
            Some(&batch),
        )
        .await;
        ws.send(
            "tick_ack",
            json!({"session_id": sid, "sequence_id": seq}),
            None,
        )
        .await;
        let mut kinds = Vec::new();
        tick = loop {
            let m = ws.recv().await;
            kinds.push(m["type"].as_str().unwrap().to_string());
            match m["type"].as_str().unwrap() {
                "batch_ack" => {
                    assert_eq!(m["request_id"], batch, "{m}");
                    assert_eq!(
                        m["data"]["accepted_orders"],
                        json!([format!("o{i}")]),
                        "{m}"
                    );
                    batch_acks += 1;
                }
                "execution_report" => fills += 1,
                "tick" => break m,
                "account_snapshot" | "order_update" => {}
                other => panic!("unexpected {other}: {m}"),
            }
        };
        assert_eq!(
            tick["data"]["sequence_id"].as_u64(),
            Some(seq + 1),
            "{tick}"
        );
        // The answer comes before anything the next bar causes (its fill included).
        assert_eq!(kinds[0], "batch_ack", "bar {i}: {kinds:?}");
        assert_eq!(kinds.iter().filter(|k| *k == "batch_ack").count(), 1);
    }
    Trading {
        elapsed: started.elapsed(),
        batch_acks,
        fills,
    }
}

#[actix_web::test]
async fn trading_lock_step_does_not_stall() {
    let app = spawn_app(Backend::Sqlite).await;
    let key = app
        .user_with_key("trader@example.com", Plan::Enterprise)
        .await;
    let token = app.token(&key).await;
    // The client's own TCP_NODELAY is on, as asyncio (Python) sets it on every TCP
    // socket. Off, the client's Nagle would hold each tick_ack until the order_batch
    // is acknowledged, which happens with the batch_ack: the tick_ack would then carry
    // the ACK the server's Nagle waits for, and the server's missing option would go
    // unnoticed. Both are run; both must be fast.
    for client_nodelay in [true, false] {
        let t = trade_lock_step(app.port, &token, client_nodelay).await;
        assert!(
            t.elapsed < LIMIT,
            "{ROUND_TRIPS} order round trips (client nodelay {client_nodelay}) took {:?}",
            t.elapsed
        );
        assert_eq!(t.batch_acks, ROUND_TRIPS, "{t:?}");
        // Market orders fill at the next bar's open: all but the last one sent.
        assert!(t.fills >= ROUND_TRIPS - 1, "{t:?}");
    }
    app.cleanup().await;
}

/// A batch sent on another connection of the same user, for a session this one does
/// not drive, is answered on the connection that sent it; its fill reaches the
/// session's own connection.
#[actix_web::test]
async fn a_batch_for_a_session_driven_elsewhere_is_answered_to_its_sender() {
    let app = spawn_app(Backend::Sqlite).await;
    let key = app
        .user_with_key("trader@example.com", Plan::Enterprise)
        .await;
    let token = app.token(&key).await;
    let mut driver = RawWs::connect(app.port, &token, true).await;
    assert_eq!(driver.recv().await["type"], "connection_ready");
    driver
        .send("start_simulation", goog_start(), Some("start"))
        .await;
    let sid = driver.until("session_created").await["data"]["session_id"]
        .as_str()
        .unwrap()
        .to_string();
    let tick = driver.until("tick").await;
    let mut other = RawWs::connect(app.port, &token, true).await;
    assert_eq!(other.recv().await["type"], "connection_ready");
    let order = json!({"order_id": "elsewhere", "symbol": "GOOG", "side": "buy",
                       "type": "market", "quantity": 1});
    other
        .send(
            "order_batch",
            json!({"session_id": sid, "batch_id": "b-other", "orders": [order]}),
            Some("rq-other"),
        )
        .await;
    let ack = other.until("batch_ack").await;
    assert_eq!(ack["request_id"], "rq-other", "{ack}");
    assert_eq!(
        ack["data"]["accepted_orders"],
        json!(["elsewhere"]),
        "{ack}"
    );
    let seq = tick["data"]["sequence_id"].as_u64().unwrap();
    driver
        .send(
            "tick_ack",
            json!({"session_id": sid, "sequence_id": seq}),
            None,
        )
        .await;
    loop {
        let m = driver.recv().await;
        match m["type"].as_str().unwrap() {
            "execution_report" => {
                assert_eq!(m["data"]["order_id"], "elsewhere", "{m}");
                break;
            }
            "batch_ack" => panic!("the driver got another connection's answer: {m}"),
            "tick" => panic!("no fill before the next tick: {m}"),
            _ => {}
        }
    }
    app.cleanup().await;
}

/// `TCP_NODELAY` of the gateway's end of the connection that `client` opened: the
/// socket in this process (the gateway runs in the test) whose local address is the
/// client's peer and whose peer is the client.
fn server_side_nodelay(client: &std::net::TcpStream) -> bool {
    let (local, peer) = (client.local_addr().unwrap(), client.peer_addr().unwrap());
    for entry in std::fs::read_dir("/proc/self/fd").unwrap() {
        let Ok(fd) = entry.unwrap().file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if fd == client.as_raw_fd() {
            continue;
        }
        // SAFETY: the descriptor is only queried (getsockname, getpeername,
        // getsockopt) and not closed; if it was closed since the listing, or is not a
        // socket, the calls fail and it is skipped.
        #[allow(unsafe_code)]
        let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
        let sock = socket2::SockRef::from(&borrowed);
        let addrs = (sock.local_addr(), sock.peer_addr());
        if let (Ok(l), Ok(p)) = addrs {
            if l.as_socket() == Some(peer) && p.as_socket() == Some(local) {
                return sock.tcp_nodelay().unwrap();
            }
        }
    }
    panic!("no accepted socket for {local} -> {peer}");
}

/// Opens a plain connection to `port`, makes one request (so the gateway has
/// accepted it) and returns the gateway end's `TCP_NODELAY`.
async fn accepted_nodelay(port: u16, path: &str) -> bool {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut buf = [0u8; 12];
    stream.read_exact(&mut buf).await.unwrap();
    assert!(buf.starts_with(b"HTTP/1.1 "), "{buf:?}");
    let std_stream = stream.into_std().unwrap();
    let nodelay = server_side_nodelay(&std_stream);
    // The client leaves Nagle on here: the option checked is the gateway's own.
    assert!(!std_stream.nodelay().unwrap());
    nodelay
}

/// A port free right now (the listeners that need a fixed number take it).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[actix_web::test]
async fn every_listener_sets_nodelay_on_accepted_sockets() {
    let (compat, metrics) = (free_port(), free_port());
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.server.compat_port = compat;
        s.server.metrics_port = metrics;
    })
    .await;
    assert!(accepted_nodelay(app.port, "/health").await, "main listener");
    assert!(accepted_nodelay(compat, "/health").await, "compat listener");
    assert!(
        accepted_nodelay(metrics, "/metrics").await,
        "metrics listener"
    );
    app.cleanup().await;
}
