//! The deployment's adapter settings for this adapter: the API version, the path, where
//! the credential goes, extra headers and the default token limit.
//!
//! ```toml
//! [deployments.claude.settings]
//! version = "2023-06-01"                 # the `anthropic-version` header
//! headers = { anthropic-beta = "prompt-caching-2024-07-31" }
//! default_max_tokens = 8192              # when the client sets no limit (Anthropic needs one)
//! path = "/v1/messages"                  # proxies that mount the API elsewhere
//! auth_header = "x-api-key"              # or another header name
//! auth = "none"                          # or "bearer" (`Authorization: Bearer`)
//! ```
//!
//! A broken setting is an operator error, not the client's: it is reported as `internal`
//! and names the key, never the value (header values may be secrets).

use serde_json::{Map, Value};
use switchyard_sdk::adapter::{CredentialPlacement, Deployment, Header, PluginError};

use crate::error::internal;

/// The API version every request pins unless `version` says otherwise.
const DEFAULT_VERSION: &str = "2023-06-01";
const DEFAULT_PATH: &str = "/v1/messages";
/// Anthropic requires `max_tokens`; this applies when neither the client nor the
/// deployment sets one.
const DEFAULT_MAX_TOKENS: u32 = 4096;
const DEFAULT_AUTH_HEADER: &str = "x-api-key";

pub(crate) struct Settings {
    pub path: String,
    pub default_max_tokens: u32,
    pub credential: CredentialPlacement,
    version: String,
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

        let version = match map.get("version") {
            None | Some(Value::Null) => DEFAULT_VERSION.to_string(),
            Some(Value::String(v)) if is_header_value(v) && !v.is_empty() => v.clone(),
            Some(_) => return Err(bad("version", "a version string such as \"2023-06-01\"")),
        };
        let path = match map.get("path") {
            None | Some(Value::Null) => DEFAULT_PATH.to_string(),
            Some(Value::String(p)) if p.starts_with('/') && !p.starts_with("//") => p.clone(),
            Some(_) => return Err(bad("path", "a path starting with `/`")),
        };
        let default_max_tokens = match map.get("default_max_tokens") {
            None | Some(Value::Null) => DEFAULT_MAX_TOKENS,
            Some(v) => v
                .as_u64()
                .filter(|n| *n > 0)
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| bad("default_max_tokens", "a positive integer"))?,
        };

        let auth = match map.get("auth") {
            None | Some(Value::Null) => None,
            Some(Value::String(a)) if matches!(a.as_str(), "none" | "header" | "bearer") => {
                Some(a.as_str())
            }
            Some(_) => return Err(bad("auth", "\"header\", \"bearer\" or \"none\"")),
        };
        let auth_header = match map.get("auth_header") {
            None | Some(Value::Null) => None,
            Some(Value::String(h)) if is_token(h) => Some(h.to_ascii_lowercase()),
            Some(_) => return Err(bad("auth_header", "a header name")),
        };
        let credential = match (auth, auth_header) {
            (Some("none"), _) => CredentialPlacement::None,
            (Some("bearer"), Some(_)) => {
                return Err(bad("auth_header", "left out when auth = \"bearer\""));
            }
            (Some("bearer"), None) => CredentialPlacement::Bearer,
            (_, Some(h)) => CredentialPlacement::Header(h),
            _ => CredentialPlacement::Header(DEFAULT_AUTH_HEADER.into()),
        };

        let headers = string_table(map.get("headers"))
            .filter(|h| h.iter().all(|(k, v)| is_token(k) && is_header_value(v)))
            .ok_or_else(|| bad("headers", "a table of header names to strings"))?;
        Ok(Settings {
            path,
            default_max_tokens,
            credential,
            version,
            headers,
        })
    }

    /// `content-type` and `anthropic-version`, then the configured headers (which may
    /// replace either).
    pub fn headers(&self) -> Vec<Header> {
        let configured = |name: &str| {
            self.headers
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case(name))
        };
        let mut out = Vec::with_capacity(2 + self.headers.len());
        if !configured("content-type") {
            out.push(header("content-type", "application/json"));
        }
        if !configured("anthropic-version") {
            out.push(header("anthropic-version", &self.version));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_shape_headers_and_credential() {
        let s = Settings::parse(&Deployment {
            name: "d".into(),
            base_url: "https://proxy".into(),
            model_id: "m".into(),
            settings: r#"{"version": "2024-01-01", "headers": {"anthropic-beta": "x"}, "auth_header": "Api-Key", "default_max_tokens": 100, "path": "/anthropic/v1/messages"}"#.into(),
        })
        .unwrap();
        assert_eq!(s.path, "/anthropic/v1/messages");
        assert_eq!(s.default_max_tokens, 100);
        assert!(matches!(&s.credential, CredentialPlacement::Header(h) if h == "api-key"));
        let headers: Vec<(String, String)> = s
            .headers()
            .into_iter()
            .map(|h| (h.name, String::from_utf8(h.value).unwrap()))
            .collect();
        assert!(headers.contains(&("anthropic-version".into(), "2024-01-01".into())));
        assert!(headers.contains(&("anthropic-beta".into(), "x".into())));
        let none = Settings::parse(&Deployment {
            name: "d".into(),
            base_url: "http://local".into(),
            model_id: "m".into(),
            settings: r#"{"auth": "none"}"#.into(),
        })
        .unwrap();
        assert!(matches!(none.credential, CredentialPlacement::None));
        let bad = Settings::parse(&Deployment {
            name: "d".into(),
            base_url: "http://local".into(),
            model_id: "m".into(),
            settings: r#"{"headers": {"x": "a\r\nb"}}"#.into(),
        });
        assert!(bad.is_err());
    }
}
