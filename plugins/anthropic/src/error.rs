//! Building `plugin-error`s, and reading Anthropic's error message out of an error body
//! (`{"type":"error","error":{"type":"rate_limit_error","message":"…"}}`).

use serde_json::Value;
use switchyard_sdk::adapter::{ErrorKind, PluginError};

/// Provider messages are shown to clients; a bound keeps a runaway body out of logs.
const MAX_MESSAGE_CHARS: usize = 500;

fn error(kind: ErrorKind, message: impl Into<String>) -> PluginError {
    PluginError {
        kind,
        message: message.into(),
    }
}

pub(crate) fn invalid(message: impl Into<String>) -> PluginError {
    error(ErrorKind::InvalidRequest, message)
}

pub(crate) fn internal(message: impl Into<String>) -> PluginError {
    error(ErrorKind::Internal, message)
}

pub(crate) fn bad_upstream(message: impl Into<String>) -> PluginError {
    error(ErrorKind::BadUpstreamResponse, message)
}

pub(crate) fn upstream(message: impl Into<String>) -> PluginError {
    error(ErrorKind::UpstreamError, message)
}

/// The error for a non-2xx answer: Anthropic's own message when the body carries one,
/// else a generic line naming the status (the host keeps the status itself).
pub(crate) fn from_status(status: u16, body: &[u8]) -> PluginError {
    let message = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| message_of(&v))
        .unwrap_or_else(|| format!("the upstream answered with HTTP status {status}"));
    upstream(message)
}

/// The error of an error body or an `error` stream event: `error.message`, or a
/// top-level `message` (proxies in front of Anthropic), or a plain-string `error`.
pub(crate) fn message_of(body: &Value) -> Option<String> {
    let text = match body.get("error") {
        Some(Value::Object(e)) => e.get("message").and_then(Value::as_str),
        Some(Value::String(s)) => Some(s.as_str()),
        _ => None,
    }
    .or_else(|| body.get("message").and_then(Value::as_str))?;
    let text = text.trim();
    (!text.is_empty()).then(|| scrub(text))
}

/// The upstream error an `error` event or a 200 body of `"type":"error"` carries.
pub(crate) fn embedded(body: &Value) -> PluginError {
    upstream(message_of(body).unwrap_or_else(|| "the upstream reported an error".into()))
}

/// Bounds the message and masks anything that looks like a credential: clients must
/// never see even part of a key.
fn scrub(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(MAX_MESSAGE_CHARS));
    for (i, word) in text.split(' ').enumerate() {
        if i > 0 {
            out.push(' ');
        }
        if looks_like_key(word) {
            out.push_str("[redacted]");
        } else {
            out.push_str(word);
        }
    }
    match out.char_indices().nth(MAX_MESSAGE_CHARS) {
        Some((cut, _)) => {
            out.truncate(cut);
            out.push('…');
            out
        }
        None => out,
    }
}

fn looks_like_key(word: &str) -> bool {
    let word = word.trim_matches(|c: char| !c.is_ascii_alphanumeric() && c != '*');
    // `sk-ant-api03-…` and `sk-ant-oat01-…` both start with `sk-`.
    word.starts_with("sk-") || word.contains("***")
}
