//! Frame text -> typed message, classifying every failure the way PROTOCOL.md section 5
//! asks: not a JSON object -> `INVALID_JSON`; bad `type` or `data` shape -> `INVALID_PARAMS`;
//! unknown type -> `UNKNOWN_TYPE`; well-formed but unacceptable values ->
//! `VALIDATION_ERROR`. The `request_id` is read first, so every error can echo it.

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::client::{ClientMessage, CreateSessionData, OptionalSessionId};
use crate::errors::{ErrorCode, ProtocolError};
use crate::server::ServerMessage;
use crate::time::truncate;
use crate::validate::{check_text, MAX_REQUEST_ID_LEN};

/// Longest `type` echoed back in an `UNKNOWN_TYPE` message.
const MAX_ECHOED_TYPE_LEN: usize = 64;
/// Longest deserializer message quoted in an `INVALID_PARAMS` error: serde quotes the
/// offending value (`unknown variant `...``), which may be as long as the frame.
const MAX_ECHOED_DETAIL_LEN: usize = 200;

/// A parsed server frame, for the Rust client.
#[derive(Clone, Debug, PartialEq)]
pub struct ServerFrame {
    /// The message.
    pub message: ServerMessage,
    /// The echoed `request_id`, if any.
    pub request_id: Option<String>,
    /// The server's send time (RFC 3339), if any.
    pub timestamp: Option<String>,
}

/// Parses a client frame into its message and `request_id`. Never panics; every
/// failure is a [`ProtocolError`] carrying the code, a message naming the field, and
/// the frame's `request_id` and `type` when they could be read.
pub fn parse_client_frame(text: &str) -> Result<(ClientMessage, Option<String>), ProtocolError> {
    match parse_client_frame_direct(text) {
        Some(parsed) => Ok(parsed),
        None => parse_client_frame_checked(text),
    }
}

/// The route every well-formed frame takes: the envelope read in place with `data`
/// left as raw text, then `data` parsed straight into its type. It answers only what
/// the checked route would accept (same types, same validation) and gives up on
/// anything else, which the checked route then explains. Measured: parsing through a
/// `serde_json::Value` was 12% of the gateway's CPU in lock-step trading.
fn parse_client_frame_direct(text: &str) -> Option<(ClientMessage, Option<String>)> {
    #[derive(serde::Deserialize)]
    struct Envelope<'a> {
        #[serde(rename = "type", borrow)]
        message_type: std::borrow::Cow<'a, str>,
        #[serde(default)]
        request_id: Option<String>,
        #[serde(default, borrow)]
        data: Option<&'a serde_json::value::RawValue>,
    }
    let envelope: Envelope<'_> = serde_json::from_str(text).ok()?;
    if let Some(rid) = &envelope.request_id {
        check_text("request_id", rid, MAX_REQUEST_ID_LEN, true).ok()?;
    }
    let data = match envelope.data.map(serde_json::value::RawValue::get) {
        None | Some("null") => "{}",
        Some(d) if d.starts_with('{') => d,
        Some(_) => return None,
    };
    let message = client_message(&envelope.message_type, &RawData(data)).ok()?;
    message.validate().ok()?;
    Some((message, envelope.request_id))
}

/// Every frame through `serde_json::Value`, with errors that name the problem.
fn parse_client_frame_checked(
    text: &str,
) -> Result<(ClientMessage, Option<String>), ProtocolError> {
    let (message_type, data, request_id) = split_envelope(text)?;
    if let Some(rid) = &request_id {
        // Refused without echoing it: a request id out of bounds is not sent back.
        check_text("request_id", rid, MAX_REQUEST_ID_LEN, true).map_err(|mut e| {
            e.message_type = Some(truncate(&message_type, MAX_ECHOED_TYPE_LEN).to_string());
            e
        })?;
    }
    let attach = |mut e: ProtocolError| {
        e.request_id.clone_from(&request_id);
        e.message_type = Some(message_type.clone());
        e
    };
    if !ClientMessage::TYPES.contains(&message_type.as_str()) {
        return Err(attach(unknown_type(&message_type)));
    }
    let data = data_object(data).map_err(attach)?;
    let message = client_message(&message_type, &data).map_err(attach)?;
    message.validate().map_err(attach)?;
    Ok((message, request_id))
}

/// Parses a server frame. A type this crate does not know is an `UNKNOWN_TYPE` error,
/// which clients should ignore (PROTOCOL.md: "Clients ignore message types they do not
/// know").
pub fn parse_server_frame(text: &str) -> Result<ServerFrame, ProtocolError> {
    match parse_server_frame_direct(text) {
        Some(frame) => Ok(frame),
        None => parse_server_frame_checked(text),
    }
}

/// A well-formed frame (nearly every frame) deserializes straight from the text, with
/// no intermediate `Value`: one pass for the message, one for the envelope fields.
/// Anything this route refuses goes through the checked route, which decides and
/// classifies the error, so both routes accept exactly the same frames.
fn parse_server_frame_direct(text: &str) -> Option<ServerFrame> {
    // One pass over the text: the envelope with `data` kept as raw text, then `data`
    // parsed into the message its `type` names. (Reading the message and the envelope
    // as two documents was a quarter of the SDK's parsing time.)
    #[derive(serde::Deserialize)]
    struct Envelope<'a> {
        #[serde(rename = "type", borrow)]
        message_type: std::borrow::Cow<'a, str>,
        #[serde(default, borrow)]
        data: Option<&'a serde_json::value::RawValue>,
        #[serde(default)]
        request_id: Option<String>,
        #[serde(default)]
        timestamp: Option<String>,
    }
    let envelope: Envelope<'_> = serde_json::from_str(text).ok()?;
    let tagged = Adjacent {
        message_type: &envelope.message_type,
        data: envelope.data,
        next: 0,
    };
    let message =
        ServerMessage::deserialize(serde::de::value::MapAccessDeserializer::new(tagged)).ok()?;
    Some(ServerFrame {
        message,
        request_id: envelope.request_id,
        timestamp: envelope.timestamp,
    })
}

/// `{"type": .., "data": ..}` from the two parts, for an adjacently tagged enum.
struct Adjacent<'a> {
    message_type: &'a str,
    data: Option<&'a serde_json::value::RawValue>,
    /// 0: `type` next, 1: `data` next, 2: done.
    next: u8,
}

impl<'de> serde::de::MapAccess<'de> for Adjacent<'de> {
    type Error = serde_json::Error;

    fn next_key_seed<K: serde::de::DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Self::Error> {
        use serde::de::value::BorrowedStrDeserializer;
        let key = match (self.next, self.data) {
            (0, _) => "type",
            (1, Some(_)) => "data",
            _ => return Ok(None),
        };
        seed.deserialize(BorrowedStrDeserializer::new(key))
            .map(Some)
    }

    fn next_value_seed<V: serde::de::DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, Self::Error> {
        use serde::de::value::BorrowedStrDeserializer;
        self.next += 1;
        match (self.next, self.data) {
            (1, _) => seed.deserialize(BorrowedStrDeserializer::new(self.message_type)),
            (_, Some(data)) => seed.deserialize(data),
            (_, None) => Err(serde::de::Error::custom("no data")),
        }
    }
}

fn parse_server_frame_checked(text: &str) -> Result<ServerFrame, ProtocolError> {
    let value: Value = serde_json::from_str(text).map_err(not_json)?;
    let Value::Object(mut obj) = value else {
        return Err(ProtocolError::new(
            ErrorCode::InvalidJson,
            "frame must be a JSON object",
        ));
    };
    let request_id = optional_string(&mut obj, "request_id")?;
    let timestamp = optional_string(&mut obj, "timestamp")?;
    let message_type = required_type(&mut obj).map_err(|mut e| {
        e.request_id.clone_from(&request_id);
        e
    })?;
    let attach = |mut e: ProtocolError| {
        e.request_id.clone_from(&request_id);
        e.message_type = Some(message_type.clone());
        e
    };
    if !ServerMessage::TYPES.contains(&message_type.as_str()) {
        return Err(attach(unknown_type(&message_type)));
    }
    let data = obj.remove("data").unwrap_or(Value::Null);
    let mut tagged = Map::new();
    tagged.insert("type".to_string(), Value::String(message_type.clone()));
    tagged.insert("data".to_string(), data);
    let message: ServerMessage = typed(&Value::Object(tagged), "data").map_err(attach)?;
    Ok(ServerFrame {
        message,
        request_id,
        timestamp,
    })
}

/// `(type, data, request_id)` of a client frame.
fn split_envelope(text: &str) -> Result<(String, Option<Value>, Option<String>), ProtocolError> {
    let value: Value = serde_json::from_str(text).map_err(not_json)?;
    let Value::Object(mut obj) = value else {
        return Err(ProtocolError::new(
            ErrorCode::InvalidJson,
            "frame must be a JSON object",
        ));
    };
    let request_id = optional_string(&mut obj, "request_id")?;
    let message_type = required_type(&mut obj).map_err(|mut e| {
        e.request_id.clone_from(&request_id);
        e
    })?;
    Ok((message_type, obj.remove("data"), request_id))
}

fn not_json(e: serde_json::Error) -> ProtocolError {
    ProtocolError::new(
        ErrorCode::InvalidJson,
        format!("frame is not valid JSON: {e}"),
    )
}

fn unknown_type(t: &str) -> ProtocolError {
    let shown = truncate(t, MAX_ECHOED_TYPE_LEN);
    let ellipsis = if shown.len() < t.len() { "..." } else { "" };
    ProtocolError::new(
        ErrorCode::UnknownType,
        format!("unknown message type `{shown}{ellipsis}`"),
    )
    .with_field("type")
}

/// A string-or-null envelope field; anything else is `INVALID_PARAMS`.
fn optional_string(
    obj: &mut Map<String, Value>,
    key: &str,
) -> Result<Option<String>, ProtocolError> {
    match obj.remove(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(ProtocolError::new(
            ErrorCode::InvalidParams,
            format!("`{key}` must be a string or null"),
        )
        .with_field(key)),
    }
}

fn required_type(obj: &mut Map<String, Value>) -> Result<String, ProtocolError> {
    match obj.remove("type") {
        Some(Value::String(s)) => Ok(s),
        None | Some(Value::Null) => Err(ProtocolError::new(
            ErrorCode::InvalidParams,
            "missing field `type`",
        )
        .with_field("type")),
        Some(_) => Err(
            ProtocolError::new(ErrorCode::InvalidParams, "`type` must be a string")
                .with_field("type"),
        ),
    }
}

/// Missing or `null` data is an empty object, so required fields are reported by name.
fn data_object(data: Option<Value>) -> Result<Value, ProtocolError> {
    match data {
        None | Some(Value::Null) => Ok(Value::Object(Map::new())),
        Some(v @ Value::Object(_)) => Ok(v),
        Some(_) => Err(
            ProtocolError::new(ErrorCode::InvalidParams, "`data` must be an object")
                .with_field("data"),
        ),
    }
}

/// Deserialises `value`, turning a serde error into `INVALID_PARAMS` with the path of
/// the offending field. `strip` is a leading path segment to drop (`data` for server
/// frames, whose payload sits under it).
fn typed<T: DeserializeOwned>(value: &Value, strip: &str) -> Result<T, ProtocolError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let path = match path.strip_prefix(strip) {
            Some(rest) if !strip.is_empty() => rest.trim_start_matches('.').to_string(),
            _ => path,
        };
        let path = if path == "." { String::new() } else { path };
        let mut inner = e.into_inner().to_string();
        if inner.len() > MAX_ECHOED_DETAIL_LEN {
            inner = format!("{}...", truncate(&inner, MAX_ECHOED_DETAIL_LEN));
        }
        let (field, message) = match missing_field(&inner) {
            Some(name) => {
                let field = join(&path, name);
                let message = format!("missing field `{field}`");
                (field, message)
            }
            None if path.is_empty() => (String::new(), inner),
            None => (path.clone(), format!("invalid `{path}`: {inner}")),
        };
        let err = ProtocolError::new(ErrorCode::InvalidParams, message);
        if field.is_empty() {
            err
        } else {
            err.with_field(field)
        }
    })
}

/// The field name of serde's "missing field `x`" message.
fn missing_field(message: &str) -> Option<&str> {
    message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next())
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

/// A message's `data`, to decode into each message type.
trait Data {
    fn decode<T: DeserializeOwned>(&self) -> Result<T, ProtocolError>;
}

/// `data` parsed into a `Value`: errors name the offending field.
impl Data for Value {
    fn decode<T: DeserializeOwned>(&self) -> Result<T, ProtocolError> {
        typed(self, "")
    }
}

/// The raw text of `data` (the direct route): parsed straight into the type; its
/// errors are not shown, the checked route explains them.
struct RawData<'a>(&'a str);

impl Data for RawData<'_> {
    fn decode<T: DeserializeOwned>(&self) -> Result<T, ProtocolError> {
        serde_json::from_str(self.0)
            .map_err(|e| ProtocolError::new(ErrorCode::InvalidParams, e.to_string()))
    }
}

/// The client message `message_type` with `data`.
fn client_message(message_type: &str, data: &impl Data) -> Result<ClientMessage, ProtocolError> {
    use ClientMessage as M;
    Ok(match message_type {
        "start_simulation" => M::StartSimulation(data.decode()?),
        "create_session" => {
            let id: OptionalSessionId = data.decode()?;
            M::CreateSession(CreateSessionData {
                session_id: id.session_id,
                params: data.decode()?,
            })
        }
        "simulation_start" => M::SimulationStart(data.decode()?),
        "tick_ack" => M::TickAck(data.decode()?),
        "order_batch" => M::OrderBatch(data.decode()?),
        "cancel_orders" => M::CancelOrders(data.decode()?),
        "pause_simulation" => M::PauseSimulation(data.decode()?),
        "resume_simulation" => M::ResumeSimulation(data.decode()?),
        "get_simulation_state" => M::GetSimulationState(data.decode()?),
        "stop_simulation" => M::StopSimulation(data.decode()?),
        "get_account" => M::GetAccount(data.decode()?),
        "list_sessions" => M::ListSessions(data.decode()?),
        "close_session" => M::CloseSession(data.decode()?),
        "resume_session" => M::ResumeSession(data.decode()?),
        "ping" => M::Ping(data.decode()?),
        other => return Err(unknown_type(other)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn direct_and_checked_routes_agree() {
        let tick = r#"{"session_id": "s", "sim_time": "2023-01-03T14:30:00Z", "sequence_id": 7,
            "timeframe": "1h", "candles": {"GOOG": {"date": "2023-01-03T14:30:00Z",
            "open": "89.5", "high": "90", "low": "89", "close": "89.7", "volume": "1200"}},
            "symbols_trading": ["GOOG"], "market_session": "regular", "is_eod": false}"#;
        let frames = [
            format!(r#"{{"type": "tick", "data": {tick}, "request_id": "r", "timestamp": "t"}}"#),
            format!(r#"{{"data": {tick}, "timestamp": null, "type": "tick", "extra": [1]}}"#),
            r#"{"type": "pong", "data": {"server_time": "2023-01-01T00:00:00Z"}}"#.into(),
            r#"{"type": "batch_ack", "data": {"batch_id": "b\u0031", "accepted_orders": ["o1"],
                "rejected_orders": {"o2": "insufficient buying power"},
                "estimated_fills": {"o1": "10.5"}}, "request_id": "rq-1"}"#
                .into(),
        ];
        for f in &frames {
            let direct = parse_server_frame_direct(f);
            assert!(direct.is_some(), "{f}");
            assert_eq!(direct, parse_server_frame_checked(f).ok(), "{f}");
        }
        // Refused by the direct route; the checked route names the problem.
        for f in [
            "[1]",
            r#"{"type": "tick", "data": {}}"#,
            r#"{"type": "tick", "request_id": 5, "data": {}}"#,
            r#"{"type": "nope", "data": {}}"#,
        ] {
            assert!(parse_server_frame_direct(f).is_none(), "{f}");
            assert!(parse_server_frame(f).is_err(), "{f}");
        }
    }

    #[test]
    fn direct_and_checked_client_routes_agree() {
        let params = r#"{"symbols": ["AAPL"], "start_date": "2023-01-03T00:00:00Z",
            "end_date": "2023-06-30T00:00:00Z", "initial_capital": "100000",
            "timeframe": "1h", "metadata": {"k": [1, {"x": null}]}}"#;
        let batch = r#"{"session_id": "s1", "batch_id": "b1", "execution_mode": "atomic",
            "orders": [{"order_id": "o1", "symbol": "AAPL", "side": "buy", "type": "market",
            "quantity": 10}, {"order_id": "o2", "symbol": "AAPL", "side": "sell",
            "type": "stop_limit", "quantity": 5, "price": "151.25", "stop_price": 150,
            "stop_loss": "160", "take_profit": 140.5, "time_in_force": "gtc"}]}"#;
        let session = r#"{"session_id": "s1"}"#;
        let mut accepted = vec![
            format!(r#"{{"type": "start_simulation", "data": {params}, "request_id": "r1"}}"#),
            format!(r#"{{"type": "create_session", "data": {params}}}"#),
            format!(r#"{{"data": {batch}, "type": "order_batch", "timestamp": 5}}"#),
            r#"{"type": "tick_ack", "data": {"session_id": "s1", "sequence_id": 7}}"#.into(),
            r#"{"type": "cancel_orders", "data": {"session_id": "s", "order_ids": ["o1"]}}"#.into(),
            r#"{"type": "resume_session", "data": {"session_id": "s", "last_sequence_id": 3,
                "epoch": 2}}"#
                .into(),
            r#"{"type": "ping"}"#.into(),
            r#"{"type": "list_sessions", "data": null, "request_id": null}"#.into(),
            // An escaped type name and request id.
            r#"{"type": "tick\u005fack", "request_id": "a\"b",
                "data": {"session_id": "s1", "sequence_id": 1}}"#
                .into(),
            // Duplicate keys: the direct route gives up, the checked one keeps the last.
            r#"{"type": "tick_ack", "data": {"session_id": "s1", "sequence_id": 1,
                "sequence_id": 2}}"#
                .into(),
            r#"{"type": "nope", "type": "ping"}"#.into(),
        ];
        for t in [
            "simulation_start",
            "pause_simulation",
            "resume_simulation",
            "get_simulation_state",
            "stop_simulation",
            "get_account",
            "close_session",
        ] {
            accepted.push(format!(r#"{{"type": "{t}", "data": {session}}}"#));
        }
        for f in &accepted {
            let checked = parse_client_frame_checked(f);
            assert!(checked.is_ok(), "{f}: {checked:?}");
            let direct = parse_client_frame_direct(f);
            if !f.contains("sequence_id\": 2") && !f.contains("nope") {
                assert!(direct.is_some(), "the direct route refused {f}");
            }
            if let Some(d) = direct {
                assert_eq!(Ok(d), checked, "{f}");
            }
            assert_eq!(parse_client_frame(f), checked, "{f}");
        }
        // Refused by the direct route and explained by the checked one.
        for f in [
            "[1]",
            "{",
            r#"{"data": {}}"#,
            r#"{"type": null}"#,
            r#"{"type": 5}"#,
            r#"{"type": "ping", "request_id": 5}"#,
            r#"{"type": "ping", "data": [1]}"#,
            r#"{"type": "ping", "data": "x"}"#,
            r#"{"type": "nope", "data": {}}"#,
            r#"{"type": "tick_ack", "data": {"session_id": "s1"}}"#,
            r#"{"type": "tick_ack", "data": {"session_id": "", "sequence_id": 1}}"#,
        ] {
            assert!(parse_client_frame_direct(f).is_none(), "{f}");
            assert_eq!(parse_client_frame(f), parse_client_frame_checked(f), "{f}");
            assert!(parse_client_frame(f).is_err(), "{f}");
        }
    }

    #[test]
    fn missing_field_names() {
        assert_eq!(missing_field("missing field `symbols`"), Some("symbols"));
        assert_eq!(missing_field("invalid type"), None);
    }
}
