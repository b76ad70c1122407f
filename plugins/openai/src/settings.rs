//! The deployment's `adapter-config` for this adapter: the token-limit field name, where
//! the credential goes, and extra headers or query parameters (Azure's `api-version`).
//!
//! ```toml
//! [deployments.azure-gpt4o.adapter-config]
//! auth_header = "api-key"
//! query = { api-version = "2024-10-21" }
//! headers = { x-ms-useragent = "switchyard" }
//! max_tokens_field = "max_tokens"   # older servers that predate max_completion_tokens
//! auth = "none"                     # local servers without a key
//! ```
//!
//! A broken setting is an operator error, not the client's: it is reported as `internal`
//! and names the key, never the value (header values may be secrets).

use serde_json::{Map, Value};
use switchyard_sdk::adapter::{CredentialPlacement, Deployment, Header, PluginError};

use crate::error::internal;

pub(crate) struct Settings {
    /// `max_completion_tokens` (OpenAI's current name) or `max_tokens`.
    pub max_tokens_field: &'static str,
    pub credential: CredentialPlacement,
    headers: Vec<(String, String)>,
    query: Vec<(String, String)>,
}

impl Settings {
    pub fn parse(deployment: &Deployment) -> Result<Settings, PluginError> {
        let bad = |key: &str, want: &str| {
            internal(format!(
                "deployment `{}`: adapter-config `{key}` must be {want}",
                deployment.name
            ))
        };
        let raw = deployment.settings.trim();
        let map = if raw.is_empty() {
            Map::new()
        } else {
            match serde_json::from_str::<Value>(raw) {
                Ok(Value::Object(map)) => map,
                _ => return Err(bad("adapter-config", "a table")),
            }
        };

        let max_tokens_field = match map.get("max_tokens_field") {
            None | Some(Value::Null) => "max_completion_tokens",
            Some(v) => match v.as_str() {
                Some("max_completion_tokens") => "max_completion_tokens",
                Some("max_tokens") => "max_tokens",
                _ => {
                    return Err(bad(
                        "max_tokens_field",
                        "\"max_completion_tokens\" or \"max_tokens\"",
                    ));
                }
            },
        };

        let auth = match map.get("auth") {
            None | Some(Value::Null) => None,
            Some(Value::String(a)) if a == "none" || a == "bearer" => Some(a.as_str()),
            Some(_) => return Err(bad("auth", "\"bearer\" or \"none\"")),
        };
        let auth_header = match map.get("auth_header") {
            None | Some(Value::Null) => None,
            Some(Value::String(h)) if is_token(h) => Some(h.to_ascii_lowercase()),
            Some(_) => return Err(bad("auth_header", "a header name")),
        };
        let credential = match (auth, auth_header) {
            (Some("none"), _) => CredentialPlacement::None,
            (Some(_), Some(_)) => {
                return Err(bad("auth_header", "left out when auth = \"bearer\""));
            }
            (_, Some(h)) => CredentialPlacement::Header(h),
            _ => CredentialPlacement::Bearer,
        };

        let headers = string_table(map.get("headers"))
            .filter(|h| h.iter().all(|(k, _)| is_token(k)))
            .ok_or_else(|| bad("headers", "a table of header names to strings"))?;
        let query =
            string_table(map.get("query")).ok_or_else(|| bad("query", "a table of strings"))?;
        Ok(Settings {
            max_tokens_field,
            credential,
            headers,
            query,
        })
    }

    /// `path` with the configured query parameters appended.
    pub fn path(&self, path: &str) -> String {
        let mut out = path.to_string();
        for (i, (k, v)) in self.query.iter().enumerate() {
            out.push(if i == 0 { '?' } else { '&' });
            percent_encode(k, &mut out);
            out.push('=');
            percent_encode(v, &mut out);
        }
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

fn header(name: &str, value: &str) -> Header {
    Header {
        name: name.to_ascii_lowercase(),
        value: value.as_bytes().to_vec(),
    }
}

/// A JSON object whose values are strings (numbers and booleans are written out, since
/// TOML users write `api-version = 2024` as easily as a string). `None` for any other shape.
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

/// RFC 3986 percent-encoding of everything but the unreserved characters.
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
