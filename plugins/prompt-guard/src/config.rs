//! The plugin config (`[plugins.prompt-guard.config]`):
//!
//! ```toml
//! threshold = 1.0           # a message scoring this much or more is an attack
//! action = "deny"           # or "log": let it through, and log the score
//! roles = ["user", "tool"]  # whose messages are scored (tool results carry indirect injections)
//! status = 400              # 400 to 499
//! code = "prompt_injection_detected"
//! message = "The request was refused by the gateway's prompt-injection guard."
//! ```

use serde::Deserialize;
use switchyard_sdk::filter::{ErrorKind, PluginError, Role};

/// Reached by one strong signal or two weaker ones (see `score`).
pub(crate) const DEFAULT_THRESHOLD: f32 = 1.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Action {
    Deny,
    Log,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum RoleName {
    System,
    Developer,
    User,
    Assistant,
    Tool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Raw {
    threshold: Option<f32>,
    action: Option<Action>,
    roles: Option<Vec<RoleName>>,
    status: Option<u16>,
    code: Option<String>,
    message: Option<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub threshold: f32,
    pub action: Action,
    roles: Vec<RoleName>,
    pub status: u16,
    pub code: String,
    pub message: String,
}

impl Config {
    pub(crate) fn read() -> Result<Config, PluginError> {
        switchyard_sdk::config::<Raw>().and_then(Config::try_from)
    }

    /// Whether messages of `role` are scored.
    pub(crate) fn scans(&self, role: Role) -> bool {
        let name = match role {
            Role::System => RoleName::System,
            Role::Developer => RoleName::Developer,
            Role::User => RoleName::User,
            Role::Assistant => RoleName::Assistant,
            Role::Tool => RoleName::Tool,
        };
        self.roles.contains(&name)
    }
}

fn invalid(message: String) -> PluginError {
    PluginError {
        kind: ErrorKind::Internal,
        message,
    }
}

impl TryFrom<Raw> for Config {
    type Error = PluginError;

    fn try_from(raw: Raw) -> Result<Config, PluginError> {
        let threshold = raw.threshold.unwrap_or(DEFAULT_THRESHOLD);
        if !(threshold.is_finite() && threshold > 0.0) {
            return Err(invalid(
                "plugin config `threshold`: must be a number above 0".into(),
            ));
        }
        let status = raw.status.unwrap_or(400);
        if !(400..=499).contains(&status) {
            return Err(invalid(
                "plugin config `status`: must be from 400 to 499".into(),
            ));
        }
        Ok(Config {
            threshold,
            action: raw.action.unwrap_or(Action::Deny),
            roles: raw
                .roles
                .unwrap_or_else(|| vec![RoleName::User, RoleName::Tool]),
            status,
            code: raw
                .code
                .unwrap_or_else(|| "prompt_injection_detected".into()),
            message: raw.message.unwrap_or_else(|| {
                "The request was refused by the gateway's prompt-injection guard.".into()
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<Config, PluginError> {
        switchyard_sdk::parse_config::<Raw>(json).and_then(Config::try_from)
    }

    #[test]
    fn defaults_and_overrides() {
        let c = parse("").unwrap();
        assert_eq!((c.threshold, c.action, c.status), (1.0, Action::Deny, 400));
        assert!(c.scans(Role::User) && c.scans(Role::Tool) && !c.scans(Role::System));
        let c = parse(r#"{"threshold": 1.5, "action": "log", "roles": ["user"]}"#).unwrap();
        assert_eq!((c.threshold, c.action), (1.5, Action::Log));
        assert!(!c.scans(Role::Tool));
    }

    #[test]
    fn bad_values_name_the_key() {
        assert!(
            parse(r#"{"threshhold": 1}"#)
                .unwrap_err()
                .message
                .contains("threshhold")
        );
        assert!(
            parse(r#"{"threshold": 0}"#)
                .unwrap_err()
                .message
                .contains("`threshold`")
        );
        assert!(
            parse(r#"{"status": 500}"#)
                .unwrap_err()
                .message
                .contains("`status`")
        );
        assert!(
            parse(r#"{"action": "block"}"#)
                .unwrap_err()
                .message
                .contains("`action`")
        );
    }
}
