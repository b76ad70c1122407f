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

use serde::Deserialize;
use switchyard_sdk::adapter::support::{
    StringTable, bad_setting, credential, is_header_value, json_headers, percent_encode, settings,
};
use switchyard_sdk::adapter::{CredentialPlacement, Deployment, Header, PluginError};

const DEFAULT_API_VERSION: &str = "v1beta";
const DEFAULT_AUTH_HEADER: &str = "x-goog-api-key";
/// The query parameter Google reads a key from.
const AUTH_QUERY: &str = "key";

/// The settings as written; unknown keys are refused so that a typo is not ignored.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    api_version: Option<String>,
    skip_thought_signature_validator: Option<bool>,
    auth: Option<String>,
    auth_header: Option<String>,
    #[serde(default)]
    headers: StringTable,
}

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
        let raw: Raw = settings(deployment)?;
        let api_version = match raw.api_version {
            None => DEFAULT_API_VERSION.to_string(),
            // One path segment: it is put in the path as it is.
            Some(v)
                if !v.is_empty()
                    && v.bytes().all(|b| {
                        b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-'
                    })
                    && v != "."
                    && v != ".." =>
            {
                v
            }
            Some(_) => {
                return Err(bad_setting(
                    deployment,
                    "api_version",
                    "a version such as \"v1beta\"",
                ));
            }
        };
        let credential = credential(
            deployment,
            raw.auth.as_deref(),
            raw.auth_header.as_deref(),
            CredentialPlacement::Header(DEFAULT_AUTH_HEADER.into()),
            Some(AUTH_QUERY),
        )?;
        let headers = raw.headers.into_headers(deployment, is_header_value)?;
        Ok(Settings {
            credential,
            skip_thought_signature: raw.skip_thought_signature_validator,
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
