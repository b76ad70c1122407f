//! The plugin config (`[plugins.pii-redact.config]`):
//!
//! ```toml
//! mode = "redact"            # or "deny": refuse requests that carry personal data
//! kinds = ["email", "card"]  # default: email, card, ssn, iban, phone
//! ```

use serde::Deserialize;
use switchyard_sdk::filter::PluginError;

use crate::detect::{Kind, Kinds};

/// What to do with personal data found in a request. Responses are always redacted: the
/// upstream call has been paid for, and the client should still get the answer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Mode {
    #[default]
    Redact,
    Deny,
}

/// The config as written; unknown keys are refused, since a typo'd `kinds` would
/// otherwise quietly redact everything or a typo'd `mode` let data through.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    mode: Option<Mode>,
    /// `None` means every kind; an empty list, none.
    kinds: Option<Vec<Kind>>,
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct Config {
    pub mode: Mode,
    pub kinds: Kinds,
}

impl Config {
    /// The config from the host. A broken one is an `internal` error naming the key:
    /// redacting nothing because of a typo would let personal data through, so the
    /// filter stops traffic instead.
    pub(crate) fn read() -> Result<Config, PluginError> {
        switchyard_sdk::config::<Raw>().map(Config::from)
    }
}

impl From<Raw> for Config {
    fn from(raw: Raw) -> Config {
        Config {
            mode: raw.mode.unwrap_or_default(),
            kinds: raw.kinds.map_or_else(Kinds::all, |kinds| {
                kinds.into_iter().fold(Kinds::default(), Kinds::with)
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_sdk::filter::ErrorKind;

    fn parse(json: &str) -> Result<Config, PluginError> {
        switchyard_sdk::parse_config::<Raw>(json).map(Config::from)
    }

    #[test]
    fn defaults_redact_every_kind() {
        let c = parse("").unwrap();
        assert_eq!(c.mode, Mode::Redact);
        assert_eq!(c.kinds, Kinds::all());
        let c = parse(r#"{"mode": "deny", "kinds": ["email", "iban"]}"#).unwrap();
        assert_eq!(c.mode, Mode::Deny);
        assert_eq!(c.kinds, Kinds::default().with(Kind::Email).with(Kind::Iban));
        assert_eq!(parse(r#"{"kinds": []}"#).unwrap().kinds, Kinds::default());
    }

    #[test]
    fn a_typo_d_key_is_refused_by_name() {
        let e = parse(r#"{"mdoe": "deny"}"#).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Internal);
        assert_eq!(
            e.message,
            "plugin config: unknown field `mdoe`, expected `mode` or `kinds`"
        );
    }

    #[test]
    fn bad_values_name_the_key() {
        let e = parse(r#"{"kinds": ["email", "passport"]}"#).unwrap_err();
        assert_eq!(
            e.message,
            "plugin config `kinds[1]`: unknown value, expected one of `email`, `card`, `ssn`, \
             `iban`, `phone`"
        );
        let e = parse(r#"{"mode": "block"}"#).unwrap_err();
        assert_eq!(
            e.message,
            "plugin config `mode`: unknown value, expected `redact` or `deny`"
        );
        assert!(parse("[1]").is_err());
    }
}
