//! The plugin config (`[plugins.pii-redact.config]`):
//!
//! ```toml
//! mode = "redact"            # or "deny": refuse requests that carry personal data
//! kinds = ["email", "card"]  # default: email, card, ssn, iban, phone
//! ```

use serde_json::Value;

use crate::detect::{Kind, Kinds};

/// What to do with personal data found in a request. Responses are always redacted: the
/// upstream call has been paid for, and the client should still get the answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    Redact,
    Deny,
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct Config {
    pub mode: Mode,
    pub kinds: Kinds,
}

impl Config {
    /// Reads the config; `Err` names the key that is wrong.
    pub(crate) fn parse(raw: &str) -> Result<Config, String> {
        let raw = raw.trim();
        let value = if raw.is_empty() {
            Value::Object(Default::default())
        } else {
            serde_json::from_str::<Value>(raw)
                .ok()
                .filter(Value::is_object)
                .ok_or("pii-redact: the plugin config is not a JSON object")?
        };
        let mode = match value.get("mode") {
            None | Some(Value::Null) => Mode::Redact,
            Some(Value::String(m)) if m == "redact" => Mode::Redact,
            Some(Value::String(m)) if m == "deny" => Mode::Deny,
            Some(_) => {
                return Err("pii-redact: config `mode` must be \"redact\" or \"deny\"".into());
            }
        };
        let kinds = match value.get("kinds") {
            None | Some(Value::Null) => Kinds::all(),
            Some(Value::Array(names)) => names.iter().try_fold(Kinds::default(), |set, name| {
                let kind = name
                    .as_str()
                    .and_then(|n| Kind::ALL.into_iter().find(|k| k.name() == n))
                    .ok_or(
                        "pii-redact: config `kinds` entries must be \"email\", \"card\", \
                             \"ssn\", \"iban\" or \"phone\"",
                    )?;
                Ok::<_, String>(set.with(kind))
            })?,
            Some(_) => return Err("pii-redact: config `kinds` must be a list".into()),
        };
        Ok(Config { mode, kinds })
    }
}
