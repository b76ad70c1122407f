//! The plugin config (`[plugins.pii-redact.config]`):
//!
//! ```toml
//! mode = "redact"            # the action for every kind: "redact", "mask" or "deny"
//! kinds = ["email", "card"]  # default: every kind
//! actions = { card = "mask", private_key = "deny" }   # per-kind overrides
//! ```

use std::collections::HashMap;

use serde::Deserialize;
use switchyard_sdk::filter::{ErrorKind, PluginError};

use crate::detect::{Action, Kind, Kinds, Rules};

/// The config as written; unknown keys are refused, since a typo'd `kinds` would
/// otherwise quietly redact everything or a typo'd `mode` let data through.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    /// `deny` refuses requests that carry any kind; responses are redacted whatever the
    /// action (the upstream call has been paid for, and the client should still get the
    /// answer without the data).
    mode: Option<Action>,
    /// `None` means every kind; an empty list, none.
    kinds: Option<Vec<Kind>>,
    actions: Option<HashMap<Kind, Action>>,
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct Config {
    pub rules: Rules,
}

impl Config {
    /// The config from the host. A broken one is an `internal` error naming the key:
    /// redacting nothing because of a typo would let personal data through, so the
    /// filter stops traffic instead.
    pub(crate) fn read() -> Result<Config, PluginError> {
        switchyard_sdk::config::<Raw>().and_then(Config::try_from)
    }
}

impl TryFrom<Raw> for Config {
    type Error = PluginError;

    fn try_from(raw: Raw) -> Result<Config, PluginError> {
        let kinds = raw.kinds.map_or_else(Kinds::all, |kinds| {
            kinds.into_iter().fold(Kinds::default(), Kinds::with)
        });
        let mut rules = Rules::new(kinds, raw.mode.unwrap_or_default());
        for (kind, action) in raw.actions.unwrap_or_default() {
            if !kinds.contains(kind) {
                // An action for a kind nobody looks for would silently do nothing.
                return Err(PluginError {
                    kind: ErrorKind::Internal,
                    message: format!(
                        "plugin config `actions`: `{}` is not in `kinds`",
                        kind.name()
                    ),
                });
            }
            rules.set(kind, action);
        }
        Ok(Config { rules })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<Config, PluginError> {
        switchyard_sdk::parse_config::<Raw>(json).and_then(Config::try_from)
    }

    #[test]
    fn defaults_redact_every_kind() {
        let c = parse("").unwrap();
        assert_eq!(c.rules, Rules::new(Kinds::all(), Action::Redact));
        let c = parse(r#"{"mode": "deny", "kinds": ["email", "iban"]}"#).unwrap();
        assert_eq!(
            c.rules,
            Rules::new(
                Kinds::default().with(Kind::Email).with(Kind::Iban),
                Action::Deny
            )
        );
        assert_eq!(
            parse(r#"{"kinds": []}"#).unwrap().rules.kinds,
            Kinds::default()
        );
    }

    #[test]
    fn per_kind_actions_override_the_mode() {
        let c = parse(r#"{"mode": "mask", "actions": {"private_key": "deny", "email": "redact"}}"#)
            .unwrap();
        assert_eq!(c.rules.action(Kind::Card), Action::Mask);
        assert_eq!(c.rules.action(Kind::PrivateKey), Action::Deny);
        assert_eq!(c.rules.action(Kind::Email), Action::Redact);
        let e = parse(r#"{"kinds": ["email"], "actions": {"card": "mask"}}"#).unwrap_err();
        assert_eq!(
            e.message,
            "plugin config `actions`: `card` is not in `kinds`"
        );
    }

    #[test]
    fn a_typo_d_key_is_refused_by_name() {
        let e = parse(r#"{"mdoe": "deny"}"#).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Internal);
        assert_eq!(
            e.message,
            "plugin config: unknown field `mdoe`, expected one of `mode`, `kinds`, `actions`"
        );
    }

    #[test]
    fn bad_values_name_the_key() {
        let e = parse(r#"{"kinds": ["email", "passport"]}"#).unwrap_err();
        assert_eq!(
            e.message,
            "plugin config `kinds[1]`: unknown value, expected one of `email`, `card`, `ssn`, \
             `iban`, `phone`, `api_key`, `jwt`, `private_key`"
        );
        let e = parse(r#"{"mode": "block"}"#).unwrap_err();
        assert_eq!(
            e.message,
            "plugin config `mode`: unknown value, expected one of `redact`, `mask`, `deny`"
        );
        let e = parse(r#"{"actions": {"card": "hide"}}"#).unwrap_err();
        assert!(
            e.message.starts_with("plugin config `actions.card`:"),
            "{}",
            e.message
        );
        assert!(parse("[1]").is_err());
    }
}
