//! The deployment's adapter settings for this adapter: the API version, where the
//! credential goes, extra headers, and how replayed function calls are signed.
//!
//! ```toml
//! [deployments.gemini-flash.settings]
//! api_version = "v1beta"                   # or "v1", "v1alpha"
//! headers = { x-goog-user-project = "my-project" }
//! auth_header = "x-goog-api-key"           # or another header name
//! auth = "query"                           # `?key=`; or "bearer", or "none"
//! skip_thought_signature_validator = true  # default: on for gemini-3 and later
//! ```
//!
//! A broken setting is an operator error, not the client's: it is reported as `internal`
//! and names the key, never the value (header values may be secrets).

use serde_json::{Map, Value};
use switchyard_sdk::adapter::{CredentialPlacement, Deployment, Header, PluginError};

use crate::error::internal;

const DEFAULT_API_VERSION: &str = "v1beta";
const DEFAULT_AUTH_HEADER: &str = "x-goog-api-key";
/// The query parameter Google reads a key from.
const AUTH_QUERY: &str = "key";

pub(crate) struct Settings {
    pub credential: CredentialPlacement,
    /// Whether replayed function calls carry Google's "no signature" sentinel; `None`
    /// decides by model.
    pub skip_thought_signature: Option<bool>,
    api_version: String,
    headers: Vec<(String, String)>,
}

impl Settings {
    pub fn parse(deployment: &Deployment) -> Result<Settings, PluginError> {
        let bad = |key: &str, want: &str| {
            internal(format!(
                "deployment `{}`: adapter setting `{key}` must be {want}",
                deployment.name
            ))
        };
        let raw = deployment.settings.trim();
        let map = if raw.is_empty() {
            Map::new()
        } else {
            match serde_json::from_str::<Value>(raw) {
                Ok(Value::Object(map)) => map,
                _ => return Err(bad("settings", "a table")),
            }
        };

        let api_version = match map.get("api_version") {
            None | Some(Value::Null) => DEFAULT_API_VERSION.to_string(),
            Some(Value::String(v))
                if !v.is_empty()
                    && v.bytes().all(|b| {
                        b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-'
                    })
                    && v != "."
                    && v != ".." =>
            {
                v.clone()
            }
            Some(_) => return Err(bad("api_version", "a version such as \"v1beta\"")),
        };
        let skip_thought_signature = match map.get("skip_thought_signature_validator") {
            None | Some(Value::Null) => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(_) => return Err(bad("skip_thought_signature_validator", "true or false")),
        };

        let auth = match map.get("auth") {
            None | Some(Value::Null) => None,
            Some(Value::String(a))
                if matches!(a.as_str(), "none" | "header" | "query" | "bearer") =>
            {
                Some(a.as_str())
            }
            Some(_) => {
                return Err(bad("auth", "\"header\", \"query\", \"bearer\" or \"none\""));
            }
        };
        let auth_header = match map.get("auth_header") {
            None | Some(Value::Null) => None,
            Some(Value::String(h)) if is_token(h) => Some(h.to_ascii_lowercase()),
            Some(_) => return Err(bad("auth_header", "a header name")),
        };
        let credential = match (auth, auth_header) {
            (Some("none"), _) => CredentialPlacement::None,
            (Some("query" | "bearer"), Some(_)) => {
                return Err(bad("auth_header", "left out unless auth = \"header\""));
            }
            (Some("query"), None) => CredentialPlacement::Query(AUTH_QUERY.into()),
            (Some("bearer"), None) => CredentialPlacement::Bearer,
            (_, Some(h)) => CredentialPlacement::Header(h),
            _ => CredentialPlacement::Header(DEFAULT_AUTH_HEADER.into()),
        };

        let headers = string_table(map.get("headers"))
            .filter(|h| h.iter().all(|(k, v)| is_token(k) && is_header_value(v)))
            .ok_or_else(|| bad("headers", "a table of header names to strings"))?;
        Ok(Settings {
            credential,
            skip_thought_signature,
            api_version,
            headers,
        })
    }

    /// `/{version}/models/{model}:generateContent`, or the SSE stream method.
    /// `models/` or `tunedModels/` in front of the id is understood, as Google writes it.
    pub fn path(&self, model_id: &str, stream: bool) -> String {
        let (collection, id) = match model_id.strip_prefix("tunedModels/") {
            Some(id) => ("tunedModels", id),
            None => (
                "models",
                model_id.strip_prefix("models/").unwrap_or(model_id),
            ),
        };
        let mut out = format!("/{}/{collection}/", self.api_version);
        percent_encode(id, &mut out);
        out.push_str(if stream {
            ":streamGenerateContent?alt=sse"
        } else {
            ":generateContent"
        });
        out
    }

    /// `content-type`, then the configured headers (which may replace it).
    pub fn headers(&self) -> Vec<Header> {
        let mut out = Vec::with_capacity(1 + self.headers.len());
        if !self
            .headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        {
            out.push(header("content-type", "application/json"));
        }
        out.extend(self.headers.iter().map(|(k, v)| header(k, v)));
        out
    }
}

/// Whether `model_id` names Gemini 3 or later, which rejects a replayed function call
/// without a thought signature.
pub(crate) fn requires_thought_signatures(model_id: &str) -> bool {
    let id = model_id.strip_prefix("models/").unwrap_or(model_id);
    let Some(version) = id.strip_prefix("gemini-") else {
        return false;
    };
    let major: String = version.chars().take_while(char::is_ascii_digit).collect();
    major.parse::<u32>().is_ok_and(|m| m >= 3)
}

fn header(name: &str, value: &str) -> Header {
    Header {
        name: name.to_ascii_lowercase(),
        value: value.as_bytes().to_vec(),
    }
}

/// A JSON object whose values are strings (numbers and booleans are written out). `None`
/// for any other shape.
fn string_table(value: Option<&Value>) -> Option<Vec<(String, String)>> {
    let map = match value {
        None | Some(Value::Null) => return Some(Vec::new()),
        Some(Value::Object(map)) => map,
        Some(_) => return None,
    };
    map.iter()
        .map(|(k, v)| {
            let v = match v {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                _ => return None,
            };
            Some((k.clone(), v))
        })
        .collect()
}

/// An HTTP header name (RFC 9110 `token`), so a typo fails here rather than upstream.
fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// A header value without control characters (CR and LF would split the header).
fn is_header_value(value: &str) -> bool {
    value
        .bytes()
        .all(|b| b == b'\t' || (b >= 0x20 && b != 0x7f))
}

/// RFC 3986 percent-encoding of everything but the unreserved characters, so that a model
/// id can never add a path segment, a query or a method of its own.
fn percent_encode(text: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in text.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 0xf)] as char);
        }
    }
}
