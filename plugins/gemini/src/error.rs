//! Reading Google's error message out of an error body
//! (`{"error":{"code":429,"message":"…","status":"RESOURCE_EXHAUSTED"}}`).

use serde_json::Value;
use switchyard_sdk::adapter::PluginError;
use switchyard_sdk::adapter::support::{embedded_error, error_message, status_error};

/// Google API keys start with `AIza`; OAuth access tokens with `ya29.`.
const KEY_PREFIXES: [&str; 2] = ["AIza", "ya29."];

/// The error for a non-2xx answer.
pub(crate) fn from_status(status: u16, body: &[u8]) -> PluginError {
    status_error(status, body, message_of)
}

/// The message of an error body: `error.message`, also inside the one-element array
/// that the non-SSE stream method wraps its answers in, or a plain-string `error`.
fn message_of(body: &Value) -> Option<String> {
    let body = match body {
        Value::Array(items) => items.first()?,
        other => other,
    };
    error_message(body, &[], &KEY_PREFIXES)
}

/// The `error` member of a body that should have been a response, when it is set.
pub(crate) fn embedded(body: &Value) -> Option<PluginError> {
    embedded_error(body, message_of)
}
