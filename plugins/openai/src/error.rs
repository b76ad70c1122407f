//! Reading a provider's error message out of an error body, in the shapes
//! OpenAI-compatible servers use.

use serde_json::Value;
use switchyard_sdk::adapter::PluginError;
use switchyard_sdk::adapter::support::{
    embedded_error, error_message, reported_error, status_error,
};

/// OpenAI (`sk-`) and Groq (`gsk_`) keys; OpenAI echoes a masked key in some 401 messages.
const KEY_PREFIXES: [&str; 2] = ["sk-", "gsk_"];

/// The error for a non-2xx answer.
pub(crate) fn from_status(status: u16, body: &[u8]) -> PluginError {
    status_error(status, body, message_of)
}

/// The message of an error body: `{"error":{"message"}}` (OpenAI, Groq, Ollama),
/// `{"error":"..."}` (some local servers), `{"object":"error","message"}` (older vLLM)
/// and `{"detail":"..."}` (FastAPI servers).
fn message_of(body: &Value) -> Option<String> {
    error_message(body, &["message", "detail"], &KEY_PREFIXES)
}

/// The `error` member of a body that should have been a completion, when it is set.
pub(crate) fn embedded(body: &Value) -> Option<PluginError> {
    embedded_error(body, message_of)
}

/// The error of an `event: error` in a stream, which some compatible servers send.
pub(crate) fn error_event(data: &[u8]) -> PluginError {
    let body = serde_json::from_slice::<Value>(data).ok();
    reported_error(body.as_ref().and_then(message_of))
}
