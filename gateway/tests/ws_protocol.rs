//! WebSocket protocol hardening over real sockets, with a raw client that writes frames
//! byte by byte: WebSocket pings count toward the plan's message rate, and protocol
//! violations close with their RFC 6455 code (1002, 1007, 1009).

mod support;

use std::time::Duration;

use actix_codec::Framed;
use awc::ws::{Codec, Frame};
use futures_util::StreamExt;
use serde_json::Value;
use support::{spawn_app_with, Backend, TestApp};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const TEXT: u8 = 0x1;
const BINARY: u8 = 0x2;
const CONTINUATION: u8 = 0x0;
const PING: u8 = 0x9;

/// A client frame, masked as RFC 6455 requires of clients.
fn frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![(u8::from(fin) << 7) | opcode];
    let len = payload.len();
    match len {
        0..=125 => out.push(0x80 | len as u8),
        126..=65535 => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    let mask = [0x12, 0x34, 0x56, 0x78];
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out
}

/// A WebSocket client that sends whatever bytes it is given and reads frames with a
/// client codec.
struct RawClient {
    framed: Framed<TcpStream, Codec>,
}

impl RawClient {
    /// Upgrades `/ws/simulate` and reads `connection_ready`.
    async fn connect(app: &TestApp, token: &str) -> RawClient {
        let mut tcp = TcpStream::connect(("127.0.0.1", app.port)).await.unwrap();
        let request = format!(
            "GET /ws/simulate?token={token} HTTP/1.1\r\nHost: 127.0.0.1\r\n\
             Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        );
        tcp.write_all(request.as_bytes()).await.unwrap();
        // Byte by byte up to the blank line, so no frame after the headers is consumed.
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            head.push(tcp.read_u8().await.unwrap());
        }
        let head = String::from_utf8(head).unwrap();
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        let mut client = RawClient {
            framed: Framed::new(tcp, Codec::new().client_mode().max_size(1 << 20)),
        };
        assert_eq!(client.text().await["type"], "connection_ready");
        client
    }

    async fn send(&mut self, bytes: &[u8]) {
        // The server may close the socket before it has read everything: a failed
        // write is then expected, and what was received decides the test.
        let _ = self.framed.io_mut().write_all(bytes).await;
    }

    /// The next frame, or `None` once the connection is gone.
    async fn next(&mut self) -> Option<Frame> {
        tokio::time::timeout(Duration::from_secs(10), self.framed.next())
            .await
            .expect("server answered within 10 s")?
            .ok()
    }

    /// The next text frame as JSON.
    async fn text(&mut self) -> Value {
        loop {
            match self.next().await.expect("connection open") {
                Frame::Text(t) => return serde_json::from_slice(&t).unwrap(),
                Frame::Close(c) => panic!("closed: {c:?}"),
                _ => {}
            }
        }
    }

    /// Reads up to the close frame and returns its code (`None` for a close without
    /// a code or a connection dropped without a close frame).
    async fn close_code(&mut self) -> Option<u16> {
        while let Some(frame) = self.next().await {
            if let Frame::Close(reason) = frame {
                return reason.map(|r| u16::from(r.code));
            }
        }
        None
    }
}

async fn app_and_token(tweak: impl FnOnce(&mut gateway::config::Settings)) -> (TestApp, String) {
    let app = spawn_app_with(Backend::Sqlite, tweak).await;
    let token = app.token(&app.admin_key).await;
    (app, token)
}

#[actix_web::test]
async fn pings_count_toward_the_message_rate_and_a_flood_closes() {
    let (app, token) = app_and_token(|s| s.plans.enterprise.messages_per_second = 5).await;
    let mut ws = RawClient::connect(&app, &token).await;

    // Within the rate a ping is answered with its payload.
    ws.send(&frame(true, PING, b"hello")).await;
    match ws.next().await {
        Some(Frame::Pong(p)) => assert_eq!(&p[..], b"hello"),
        other => panic!("{other:?}"),
    }

    // A burst: the bucket's pongs, then RATE_LIMITED, then the flood closes (1008).
    let burst: Vec<u8> = (0..60u8).flat_map(|i| frame(true, PING, &[i])).collect();
    ws.send(&burst).await;
    let (mut pongs, mut limited, mut closing) = (0, 0, None);
    let code = loop {
        match ws.next().await {
            Some(Frame::Pong(_)) => pongs += 1,
            Some(Frame::Text(t)) => {
                let m: Value = serde_json::from_slice(&t).unwrap();
                match m["type"].as_str() {
                    Some("error") => {
                        assert_eq!(m["data"]["error_code"], "RATE_LIMITED", "{m}");
                        limited += 1;
                    }
                    Some("connection_closing") => closing = Some(m),
                    _ => panic!("{m}"),
                }
            }
            Some(Frame::Close(reason)) => break reason.map(|r| u16::from(r.code)),
            Some(_) => {}
            None => panic!("dropped without a close frame"),
        }
    };
    // At most the 4 tokens left plus a refill during the burst.
    assert!((1..=6).contains(&pongs), "{pongs} pongs");
    assert!(limited >= 1, "{limited}");
    let closing = closing.expect("connection_closing before the close");
    assert_eq!(closing["data"]["reason"], "rate_limit");
    assert_eq!(closing["data"]["close_code"], 1008);
    assert_eq!(code, Some(1008));
}

#[actix_web::test]
async fn invalid_utf8_closes_with_1007() {
    let (app, token) = app_and_token(|_| {}).await;
    let mut ws = RawClient::connect(&app, &token).await;
    ws.send(&frame(
        true,
        TEXT,
        b"{\"type\":\"ping\",\"data\":\"\xff\xfe\"}",
    ))
    .await;
    assert_eq!(ws.close_code().await, Some(1007));

    // The same split over fragments (aggregated by the server).
    let mut ws = RawClient::connect(&app, &token).await;
    let mut bytes = frame(false, TEXT, b"{\"type\":\"ping\",");
    bytes.extend(frame(true, CONTINUATION, b"\"data\":\"\xc3\x28\"}"));
    ws.send(&bytes).await;
    assert_eq!(ws.close_code().await, Some(1007));
}

#[actix_web::test]
async fn frames_beyond_the_hard_limit_close_with_1009() {
    // 1 KiB limit: larger frames are refused; beyond the hard limit (4x, at least
    // 64 KiB) the socket closes.
    let (app, token) = app_and_token(|s| s.server.max_frame_bytes = 1024).await;
    let mut ws = RawClient::connect(&app, &token).await;
    let padded = |n: usize| {
        format!(
            "{{\"type\":\"ping\",\"data\":{{\"pad\":\"{}\"}}}}",
            "x".repeat(n)
        )
    };
    ws.send(&frame(true, TEXT, padded(2000).as_bytes())).await;
    let m = ws.text().await;
    assert_eq!(m["data"]["error_code"], "FRAME_TOO_LARGE", "{m}");
    // Still open and answering.
    ws.send(&frame(true, TEXT, b"{\"type\":\"ping\",\"data\":{}}"))
        .await;
    assert_eq!(ws.text().await["type"], "pong");

    ws.send(&frame(true, TEXT, padded(70_000).as_bytes())).await;
    let closing = ws.text().await;
    assert_eq!(closing["type"], "connection_closing", "{closing}");
    assert_eq!(closing["data"]["close_code"], 1009);
    assert_eq!(ws.close_code().await, Some(1009));

    // Fragments each under the hard limit but together over it.
    let mut ws = RawClient::connect(&app, &token).await;
    let pad = padded(80_000);
    let (a, b) = pad.as_bytes().split_at(40_000);
    let mut bytes = frame(false, TEXT, a);
    bytes.extend(frame(true, CONTINUATION, b));
    ws.send(&bytes).await;
    assert_eq!(ws.close_code().await, Some(1009));
}

#[actix_web::test]
async fn protocol_violations_close_with_1002() {
    let (app, token) = app_and_token(|_| {}).await;
    let mut unmasked = frame(true, TEXT, b"");
    unmasked[1] &= 0x7f;
    unmasked.truncate(2);
    let mut reserved_bits = frame(true, TEXT, b"{}");
    reserved_bits[0] |= 0x40;
    for (what, bytes) in [
        ("reserved opcode 0x3", frame(true, 0x3, b"x")),
        ("reserved control opcode 0xB", frame(true, 0xB, b"")),
        (
            "continuation without a start",
            frame(true, CONTINUATION, b"x"),
        ),
        ("unmasked client frame", unmasked),
        ("non-zero reserved bits", reserved_bits),
        ("ping over 125 bytes", frame(true, PING, &[0u8; 200])),
    ] {
        let mut ws = RawClient::connect(&app, &token).await;
        ws.send(&bytes).await;
        assert_eq!(ws.close_code().await, Some(1002), "{what}");
    }
}

#[actix_web::test]
async fn binary_frames_are_refused_and_the_connection_stays() {
    let (app, token) = app_and_token(|_| {}).await;
    let mut ws = RawClient::connect(&app, &token).await;
    ws.send(&frame(true, BINARY, b"{\"type\":\"ping\",\"data\":{}}"))
        .await;
    let m = ws.text().await;
    assert_eq!(
        (m["type"].as_str(), m["data"]["error_code"].as_str()),
        (Some("error"), Some("INVALID_JSON")),
        "{m}"
    );
    ws.send(&frame(
        true,
        TEXT,
        b"{\"type\":\"ping\",\"data\":{},\"request_id\":\"p\"}",
    ))
    .await;
    let pong = ws.text().await;
    assert_eq!(
        (pong["type"].as_str(), pong["request_id"].as_str()),
        (Some("pong"), Some("p"))
    );
}
