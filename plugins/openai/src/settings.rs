//! The deployment's `settings` for this adapter: the token-limit field name, where
//! the credential goes, and extra headers or query parameters (Azure's `api-version`).
//!
//! ```toml
//! [deployments.azure-gpt4o.settings]
//! auth_header = "api-key"
//! query = { api-version = "2024-10-21" }
//! headers = { x-ms-useragent = "switchyard" }
//! max_tokens_field = "max_tokens"   # older servers that predate max_completion_tokens
//! auth = "none"                     # local servers without a key
//! ```
//!
//! A broken setting is an operator error, not the client's: it is reported as `internal`
//! and names the key, never the value (header values may be secrets).

use serde::Deserialize;
use switchyard_sdk::adapter::support::{
    StringTable, credential, json_headers, percent_encode, settings,
};
use switchyard_sdk::adapter::{CredentialPlacement, Deployment, Header, PluginError};

/// The settings as written; unknown keys are refused so that a typo is not ignored.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    max_tokens_field: Option<MaxTokensField>,
    auth: Option<String>,
    auth_header: Option<String>,
    #[serde(default)]
    headers: StringTable,
    #[serde(default)]
    query: StringTable,
}

/// The name of the token limit in the request body.
#[derive(Clone, Copy, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
enum MaxTokensField {
    /// OpenAI's current name.
    #[default]
    MaxCompletionTokens,
    MaxTokens,
}

pub(crate) struct Settings {
    /// `max_completion_tokens` (OpenAI's current name) or `max_tokens`.
    pub max_tokens_field: &'static str,
    pub credential: CredentialPlacement,
    headers: Vec<(String, String)>,
    query: Vec<(String, String)>,
}

impl Settings {
    pub fn parse(deployment: &Deployment) -> Result<Settings, PluginError> {
        let raw: Raw = settings(deployment)?;
        let max_tokens_field = match raw.max_tokens_field.unwrap_or_default() {
            MaxTokensField::MaxCompletionTokens => "max_completion_tokens",
            MaxTokensField::MaxTokens => "max_tokens",
        };
        // Compatible servers mostly take a bearer token; Azure takes `api-key`.
        let credential = credential(
            deployment,
            raw.auth.as_deref(),
            raw.auth_header.as_deref(),
            CredentialPlacement::Bearer,
            None,
        )?;
        // Header values are left to the host to check.
        let headers = raw.headers.into_headers(deployment, |_| true)?;
        Ok(Settings {
            max_tokens_field,
            credential,
            headers,
            query: raw.query.0,
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
        json_headers(&[], &self.headers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_sdk::testing::deployment;

    fn parse(settings: &str) -> Result<Settings, PluginError> {
        Settings::parse(&deployment(
            "https://example.openai.azure.com",
            "m",
            settings,
        ))
    }

    #[test]
    fn azure_style_settings_read() {
        let s = parse(
            r#"{"auth_header": "Api-Key", "query": {"api-version": "2024-10-21"}, "max_tokens_field": "max_tokens", "headers": {"x-ms-useragent": "switchyard"}}"#,
        )
        .unwrap();
        assert_eq!(s.max_tokens_field, "max_tokens");
        assert!(matches!(&s.credential, CredentialPlacement::Header(h) if h == "api-key"));
        assert_eq!(
            s.path("/chat/completions"),
            "/chat/completions?api-version=2024-10-21"
        );
        assert_eq!(s.headers().len(), 2);
        let none = parse(r#"{"auth": "none"}"#).unwrap();
        assert!(matches!(none.credential, CredentialPlacement::None));
        let default = parse("").unwrap();
        assert_eq!(default.max_tokens_field, "max_completion_tokens");
        assert!(matches!(default.credential, CredentialPlacement::Bearer));
    }

    #[test]
    fn a_typo_d_key_is_refused_by_name() {
        let e = parse(r#"{"auth_heder": "api-key"}"#).err().unwrap();
        assert_eq!(e.kind, switchyard_sdk::adapter::ErrorKind::Internal);
        assert_eq!(
            e.message,
            "deployment `test`: adapter settings: unknown field `auth_heder`, expected one of \
             `max_tokens_field`, `auth`, `auth_header`, `headers`, `query`"
        );
    }

    #[test]
    fn bad_values_name_the_key_but_not_the_value() {
        let e = parse(r#"{"max_tokens_field": "max_output_tokens"}"#)
            .err()
            .unwrap();
        assert_eq!(
            e.message,
            "deployment `test`: adapter setting `max_tokens_field`: unknown value, expected \
             `max_completion_tokens` or `max_tokens`"
        );
        let e = parse(r#"{"headers": "sk-secret"}"#).err().unwrap();
        assert!(!e.message.contains("sk-secret"), "{}", e.message);
        assert!(e.message.contains("`headers`"), "{}", e.message);
        assert!(parse(r#"{"auth": "query"}"#).is_err());
    }
}
