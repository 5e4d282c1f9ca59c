//! The frame envelope every message travels in:
//! `{"type": str, "data": object, "request_id": str|null, "timestamp": RFC3339|null}`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One frame, with its payload still untyped.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// Message type (`type` on the wire).
    #[serde(rename = "type")]
    pub message_type: String,
    /// Payload; `null` when the frame has none.
    #[serde(default)]
    pub data: Value,
    /// Correlates a response with its request; responses echo it.
    #[serde(default)]
    pub request_id: Option<String>,
    /// When the server sent the frame (RFC 3339), or `null`.
    #[serde(default)]
    pub timestamp: Option<String>,
}
