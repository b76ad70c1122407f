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

use serde_json::Value;
use switchyard_sdk::adapter::support::{SettingsTable, is_header_value, json_headers};
use switchyard_sdk::adapter::{CredentialPlacement, Deployment, Header, PluginError};

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
        let table = SettingsTable::parse(deployment, "adapter setting", "settings")?;
        let version = match table.get("version") {
            None => DEFAULT_VERSION.to_string(),
            Some(Value::String(v)) if is_header_value(v) && !v.is_empty() => v.clone(),
            Some(_) => {
                return Err(table.bad("version", "a version string such as \"2023-06-01\""));
            }
        };
        let path = match table.get("path") {
            None => DEFAULT_PATH.to_string(),
            Some(Value::String(p)) if p.starts_with('/') && !p.starts_with("//") => p.clone(),
            Some(_) => return Err(table.bad("path", "a path starting with `/`")),
        };
        let default_max_tokens = match table.get("default_max_tokens") {
            None => DEFAULT_MAX_TOKENS,
            Some(v) => v
                .as_u64()
                .filter(|n| *n > 0)
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| table.bad("default_max_tokens", "a positive integer"))?,
        };
        let credential = table.credential(
            CredentialPlacement::Header(DEFAULT_AUTH_HEADER.into()),
            None,
        )?;
        let headers = table.headers(is_header_value)?;
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
        json_headers(&[("anthropic-version", &self.version)], &self.headers)
    }
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
