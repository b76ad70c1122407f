//! The `residency` filter: requests from certain keys, teams or key tags may only go to
//! deployments with certain tags (`on-prem`, `eu`) and never to others (`us`).
//!
//! The filter only *states* the constraint; the host enforces it when it picks
//! deployments, before the router ranks them and again for every fallback, so no router
//! (bundled or not) can send a constrained request anywhere else. When no deployment of
//! the model satisfies it, the request fails without being sent.
//!
//! Plugin config (`[plugins.residency.config]`):
//!
//! ```toml
//! rules = [
//!   { teams = ["legal"], require = ["on-prem"] },
//!   { tags = ["confidential"], require = ["on-prem"] },
//!   { keys = ["eu-app"], require = ["eu"], forbid = ["us"] },
//! ]
//! ```
//!
//! A rule applies when the caller's key is in `keys`, or its team in `teams`, or one of
//! its tags (the key's and its team's `tags` in the gateway config) in `tags`. Every rule
//! that applies adds its `require` and `forbid` tags. A rule must name at least one of
//! `keys`, `teams`, `tags`, and at least one of `require`, `forbid`.

// Tests may unwrap: a failed expectation is the point.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

use serde::Deserialize;
use switchyard_sdk::filter::*;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Config {
    rules: Vec<Rule>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Rule {
    keys: Vec<String>,
    teams: Vec<String>,
    tags: Vec<String>,
    require: Vec<String>,
    forbid: Vec<String>,
}

impl Config {
    fn checked(self) -> Result<Config, PluginError> {
        for (i, r) in self.rules.iter().enumerate() {
            if r.keys.is_empty() && r.teams.is_empty() && r.tags.is_empty() {
                return Err(switchyard_sdk::config_error(
                    &format!("rules[{i}]"),
                    "names no `keys`, `teams` or `tags`, so it would apply to nobody",
                ));
            }
            if r.require.is_empty() && r.forbid.is_empty() {
                return Err(switchyard_sdk::config_error(
                    &format!("rules[{i}]"),
                    "has no `require` or `forbid` tags, so it would constrain nothing",
                ));
            }
        }
        Ok(self)
    }
}

impl Rule {
    fn applies(&self, caller: &Caller) -> bool {
        let named = |list: &[String], v: &Option<String>| {
            v.as_ref().is_some_and(|v| list.iter().any(|x| x == v))
        };
        named(&self.keys, &caller.key_id)
            || named(&self.teams, &caller.team)
            || caller.tags.iter().any(|t| self.tags.contains(t))
    }
}

/// Every applying rule's tags, each once, in rule order.
fn constraints(config: &Config, caller: &Caller) -> Option<RouteConstraints> {
    let mut c = RouteConstraints {
        require_tags: Vec::new(),
        forbid_tags: Vec::new(),
    };
    let add = |to: &mut Vec<String>, tags: &[String]| {
        for t in tags {
            if !to.contains(t) {
                to.push(t.clone());
            }
        }
    };
    for rule in config.rules.iter().filter(|r| r.applies(caller)) {
        add(&mut c.require_tags, &rule.require);
        add(&mut c.forbid_tags, &rule.forbid);
    }
    (!c.require_tags.is_empty() || !c.forbid_tags.is_empty()).then_some(c)
}

#[derive(Default)]
struct Residency;

impl Filter for Residency {
    fn on_request(
        &mut self,
        ctx: RequestContext,
        _request: ChatRequest,
    ) -> Result<RequestOutcome, PluginError> {
        let config = switchyard_sdk::config::<Config>()?.checked()?;
        Ok(RequestOutcome {
            verdict: RequestVerdict::Allow,
            constraints: constraints(&config, &ctx.caller),
        })
    }
}

switchyard_sdk::export_filter!(Residency);

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_sdk::parse_config;

    fn caller(key: Option<&str>, team: Option<&str>, tags: &[&str]) -> Caller {
        Caller {
            key_id: key.map(Into::into),
            team: team.map(Into::into),
            tags: tags.iter().map(|t| t.to_string()).collect(),
        }
    }

    fn config() -> Config {
        parse_config::<Config>(
            r#"{"rules": [
                {"teams": ["legal"], "require": ["on-prem"]},
                {"tags": ["confidential"], "require": ["on-prem"]},
                {"keys": ["eu-app"], "require": ["eu"], "forbid": ["us"]}
            ]}"#,
        )
        .unwrap()
        .checked()
        .unwrap()
    }

    #[test]
    fn rules_apply_by_key_team_or_tag_and_combine() {
        let c = config();
        let got = constraints(&c, &caller(Some("eu-app"), Some("legal"), &[])).unwrap();
        assert_eq!(got.require_tags, vec!["on-prem", "eu"]);
        assert_eq!(got.forbid_tags, vec!["us"]);
        let got = constraints(&c, &caller(Some("x"), None, &["confidential"])).unwrap();
        assert_eq!(got.require_tags, vec!["on-prem"]);
        assert!(got.forbid_tags.is_empty());
        let both = constraints(&c, &caller(None, Some("legal"), &["confidential"])).unwrap();
        assert_eq!(both.require_tags, vec!["on-prem"], "each tag once");
    }

    #[test]
    fn others_and_anonymous_callers_are_unconstrained() {
        let c = config();
        assert!(constraints(&c, &caller(Some("other"), Some("sales"), &["internal"])).is_none());
        assert!(constraints(&c, &caller(None, None, &[])).is_none());
    }

    #[test]
    fn rules_that_would_do_nothing_are_config_errors() {
        let e = parse_config::<Config>(r#"{"rules": [{"require": ["eu"]}]}"#)
            .unwrap()
            .checked()
            .unwrap_err();
        assert!(
            e.message.contains("rules[0]") && e.message.contains("nobody"),
            "{}",
            e.message
        );
        let e = parse_config::<Config>(r#"{"rules": [{"teams": ["a"]}]}"#)
            .unwrap()
            .checked()
            .unwrap_err();
        assert!(e.message.contains("constrain nothing"), "{}", e.message);
        assert!(parse_config::<Config>(r#"{"rules": [{"team": ["a"]}]}"#).is_err());
    }
}
