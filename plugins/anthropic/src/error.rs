//! Reading Anthropic's error message out of an error body
//! (`{"type":"error","error":{"type":"rate_limit_error","message":"…"}}`).

use serde_json::Value;
use switchyard_sdk::adapter::PluginError;
use switchyard_sdk::adapter::support::{error_message, reported_error, status_error};

/// `sk-ant-api03-…` and `sk-ant-oat01-…` both start with `sk-`.
const KEY_PREFIXES: [&str; 1] = ["sk-"];

/// The error for a non-2xx answer.
pub(crate) fn from_status(status: u16, body: &[u8]) -> PluginError {
    status_error(status, body, message_of)
}

/// The error of an error body or an `error` stream event: `error.message`, or a
/// top-level `message` (proxies in front of Anthropic), or a plain-string `error`.
fn message_of(body: &Value) -> Option<String> {
    error_message(body, &["message"], &KEY_PREFIXES)
}

/// The upstream error an `error` event or a 200 body of `"type":"error"` carries.
pub(crate) fn embedded(body: &Value) -> PluginError {
    reported_error(message_of(body))
}
