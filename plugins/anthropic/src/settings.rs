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

use serde::Deserialize;
use switchyard_sdk::adapter::support::{
    StringTable, bad_setting, credential, is_header_value, json_headers, settings,
};
use switchyard_sdk::adapter::{CredentialPlacement, Deployment, Header, PluginError};

/// The API version every request pins unless `version` says otherwise.
const DEFAULT_VERSION: &str = "2023-06-01";
const DEFAULT_PATH: &str = "/v1/messages";
/// Anthropic requires `max_tokens`; this applies when neither the client nor the
/// deployment sets one.
const DEFAULT_MAX_TOKENS: u32 = 4096;
const DEFAULT_AUTH_HEADER: &str = "x-api-key";

/// The settings as written; unknown keys are refused so that a typo is not ignored.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    version: Option<String>,
    path: Option<String>,
    default_max_tokens: Option<u32>,
    auth: Option<String>,
    auth_header: Option<String>,
    #[serde(default)]
    headers: StringTable,
}

pub(crate) struct Settings {
    pub path: String,
    pub default_max_tokens: u32,
    pub credential: CredentialPlacement,
    version: String,
    headers: Vec<(String, String)>,
}

impl Settings {
    pub fn parse(deployment: &Deployment) -> Result<Settings, PluginError> {
        let raw: Raw = settings(deployment)?;
        let bad = |key: &str, want: &str| bad_setting(deployment, key, want);
        let version = match raw.version {
            None => DEFAULT_VERSION.to_string(),
            Some(v) if is_header_value(&v) && !v.is_empty() => v,
            Some(_) => return Err(bad("version", "a version string such as \"2023-06-01\"")),
        };
        let path = match raw.path {
            None => DEFAULT_PATH.to_string(),
            Some(p) if p.starts_with('/') && !p.starts_with("//") => p,
            Some(_) => return Err(bad("path", "a path starting with `/`")),
        };
        let default_max_tokens = match raw.default_max_tokens {
            None => DEFAULT_MAX_TOKENS,
            Some(0) => return Err(bad("default_max_tokens", "a positive integer")),
            Some(n) => n,
        };
        let credential = credential(
            deployment,
            raw.auth.as_deref(),
            raw.auth_header.as_deref(),
            CredentialPlacement::Header(DEFAULT_AUTH_HEADER.into()),
            None,
        )?;
        let headers = raw.headers.into_headers(deployment, is_header_value)?;
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
    use switchyard_sdk::testing::deployment;

    fn parse(settings: &str) -> Result<Settings, PluginError> {
        Settings::parse(&deployment("https://proxy", "m", settings))
    }

    #[test]
    fn settings_shape_headers_and_credential() {
        let s = parse(r#"{"version": "2024-01-01", "headers": {"anthropic-beta": "x"}, "auth_header": "Api-Key", "default_max_tokens": 100, "path": "/anthropic/v1/messages"}"#)
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
        let none = parse(r#"{"auth": "none"}"#).unwrap();
        assert!(matches!(none.credential, CredentialPlacement::None));
        assert!(parse(r#"{"headers": {"x": "a\r\nb"}}"#).is_err());
    }

    #[test]
    fn typos_and_bad_limits_are_refused_by_name() {
        let e = parse(r#"{"default_max_token": 10}"#).err().unwrap();
        assert!(
            e.message.starts_with(
                "deployment `test`: adapter settings: unknown field `default_max_token`"
            ),
            "{}",
            e.message
        );
        for bad in [
            r#"{"default_max_tokens": 0}"#,
            r#"{"default_max_tokens": -1}"#,
        ] {
            let e = parse(bad).err().unwrap();
            assert!(e.message.contains("`default_max_tokens`"), "{}", e.message);
        }
        assert!(parse(r#"{"path": "//evil"}"#).is_err());
    }
}
