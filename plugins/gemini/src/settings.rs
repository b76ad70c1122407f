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

use serde_json::Value;
use switchyard_sdk::adapter::support::{
    SettingsTable, is_header_value, json_headers, percent_encode,
};
use switchyard_sdk::adapter::{CredentialPlacement, Deployment, Header, PluginError};

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
        let table = SettingsTable::parse(deployment, "adapter setting", "settings")?;
        let api_version = match table.get("api_version") {
            None => DEFAULT_API_VERSION.to_string(),
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
            Some(_) => return Err(table.bad("api_version", "a version such as \"v1beta\"")),
        };
        let skip_thought_signature = match table.get("skip_thought_signature_validator") {
            None => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(_) => return Err(table.bad("skip_thought_signature_validator", "true or false")),
        };

        let credential = table.credential(
            CredentialPlacement::Header(DEFAULT_AUTH_HEADER.into()),
            Some(AUTH_QUERY),
        )?;
        let headers = table.headers(is_header_value)?;
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
        json_headers(&[], &self.headers)
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
