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

use serde_json::Value;
use switchyard_sdk::adapter::support::{SettingsTable, json_headers, percent_encode};
use switchyard_sdk::adapter::{CredentialPlacement, Deployment, Header, PluginError};

pub(crate) struct Settings {
    /// `max_completion_tokens` (OpenAI's current name) or `max_tokens`.
    pub max_tokens_field: &'static str,
    pub credential: CredentialPlacement,
    headers: Vec<(String, String)>,
    query: Vec<(String, String)>,
}

impl Settings {
    pub fn parse(deployment: &Deployment) -> Result<Settings, PluginError> {
        let table = SettingsTable::parse(deployment, "adapter setting", "settings")?;
        let max_tokens_field = match table.get("max_tokens_field").map(Value::as_str) {
            None => "max_completion_tokens",
            Some(Some("max_completion_tokens")) => "max_completion_tokens",
            Some(Some("max_tokens")) => "max_tokens",
            Some(_) => {
                return Err(table.bad(
                    "max_tokens_field",
                    "\"max_completion_tokens\" or \"max_tokens\"",
                ));
            }
        };
        // Compatible servers mostly take a bearer token; Azure takes `api-key`.
        let credential = table.credential(CredentialPlacement::Bearer, None)?;
        // Header values are left to the host to check.
        let headers = table.headers(|_| true)?;
        let query = table.strings("query", "a table of strings")?;
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
        json_headers(&[], &self.headers)
    }
}
