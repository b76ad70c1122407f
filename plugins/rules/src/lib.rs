//! The `rules` router: routes by what is known of the request and the caller. The first
//! rule whose conditions all hold names the deployment tags to prefer; deployments
//! carrying all of them go first (or, with `only`, alone), the rest follow as fallbacks.
//!
//! Plugin config (`[plugins.rules.config]`):
//!
//! ```toml
//! rules = [
//!   # Callers tagged `confidential` (key or team tags) only ever reach on-prem models.
//!   { tags = ["confidential"], prefer = ["on-prem"], only = true },
//!   # Short prompts without tools to the small, cheap tier.
//!   { max_prompt_tokens = 500, tools = false, prefer = ["small"] },
//!   # Long ones to a long-context deployment.
//!   { min_prompt_tokens = 30000, prefer = ["long-context"] },
//!   # Team research streams from the fast tier.
//!   { teams = ["research"], stream = true, prefer = ["fast"] },
//! ]
//! default = ["general"]      # tags to prefer when no rule matches (optional)
//! then = "cost"              # order within each group: "config" (default), "cost" or "latency"
//! ```
//!
//! Conditions, all optional, all of a rule's must hold: `min_prompt_tokens` /
//! `max_prompt_tokens` (the host's estimate), `min_max_tokens` / `max_max_tokens` (the
//! `max_tokens` asked for; unset counts as 0), `tools`, `stream`, `teams`, `keys` (key
//! names), `tags` (any of the caller's tags), `models` (public model names).
//!
//! Routing on the prompt's words, images, JSON mode or request headers needs those in the
//! router's view of the request, which WIT 0.1.0 leaves out; until a later contract
//! carries them, a filter can read the prompt and add a routing constraint.

// Tests may unwrap: a failed expectation is the point.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

use serde::Deserialize;
use switchyard_sdk::router::rank::{observed_latency_ms, open_last, sorted_by_key};
use switchyard_sdk::router::*;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Then {
    #[default]
    Config,
    Cost,
    Latency,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Rule {
    min_prompt_tokens: Option<u32>,
    max_prompt_tokens: Option<u32>,
    min_max_tokens: Option<u32>,
    max_max_tokens: Option<u32>,
    tools: Option<bool>,
    stream: Option<bool>,
    teams: Option<Vec<String>>,
    keys: Option<Vec<String>>,
    tags: Option<Vec<String>>,
    models: Option<Vec<String>>,
    prefer: Vec<String>,
    #[serde(default)]
    only: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Config {
    rules: Vec<Rule>,
    default: Vec<String>,
    then: Then,
}

fn any_of(list: &Option<Vec<String>>, value: Option<&str>) -> bool {
    match list {
        None => true,
        Some(l) => value.is_some_and(|v| l.iter().any(|x| x == v)),
    }
}

impl Rule {
    fn matches(&self, r: &RouteRequest) -> bool {
        let tokens = r.estimated_prompt_tokens;
        let max_tokens = r.max_tokens.unwrap_or(0);
        self.min_prompt_tokens.is_none_or(|n| tokens >= n)
            && self.max_prompt_tokens.is_none_or(|n| tokens <= n)
            && self.min_max_tokens.is_none_or(|n| max_tokens >= n)
            && self.max_max_tokens.is_none_or(|n| max_tokens <= n)
            && self.tools.is_none_or(|t| r.has_tools == t)
            && self.stream.is_none_or(|s| r.stream == s)
            && any_of(&self.teams, r.caller.team.as_deref())
            && any_of(&self.keys, r.caller.key_id.as_deref())
            && any_of(&self.models, Some(&r.model))
            && self
                .tags
                .as_ref()
                .is_none_or(|t| r.caller.tags.iter().any(|c| t.contains(c)))
    }
}

fn check(config: &Config) -> Result<(), PluginError> {
    for (i, rule) in config.rules.iter().enumerate() {
        if rule.prefer.is_empty() {
            return Err(switchyard_sdk::config_error(
                &format!("rules[{i}].prefer"),
                "name at least one deployment tag",
            ));
        }
    }
    Ok(())
}

/// The order, and the index of the rule that decided it (`None`: the default).
fn rank(config: &Config, r: &RouteRequest, candidates: &[Candidate]) -> (Vec<u32>, Option<usize>) {
    let matched = config.rules.iter().position(|rule| rule.matches(r));
    let (prefer, only): (&[String], bool) = match matched {
        Some(i) => (&config.rules[i].prefer, config.rules[i].only),
        None => (&config.default, false),
    };
    let within = match config.then {
        Then::Config => sorted_by_key(candidates.len(), |i| i as f64),
        Then::Cost => sorted_by_key(candidates.len(), |i| {
            let c = &candidates[i];
            c.input_price_per_mtok + c.output_price_per_mtok
        }),
        Then::Latency => sorted_by_key(candidates.len(), |i| {
            observed_latency_ms(&candidates[i], r.stream).unwrap_or(0.0)
        }),
    };
    let preferred = |i: u32| {
        let tags = &candidates[i as usize].tags;
        prefer.iter().all(|p| tags.contains(p))
    };
    let (first, rest): (Vec<u32>, Vec<u32>) = within.into_iter().partition(|&i| preferred(i));
    let mut order = first;
    if !only || prefer.is_empty() {
        order.extend(rest);
    }
    (open_last(order, candidates), matched)
}

#[derive(Default)]
struct Rules;

impl Router for Rules {
    fn route(
        &mut self,
        request: RouteRequest,
        candidates: Vec<Candidate>,
    ) -> Result<RouteDecision, PluginError> {
        let config: Config = switchyard_sdk::config()?;
        check(&config)?;
        let (order, matched) = rank(&config, &request, &candidates);
        let why = matched.map_or_else(|| "default".to_owned(), |i| format!("rule {i}"));
        switchyard_sdk::log(
            host::Level::Debug,
            &format!(
                "{}: {why} -> {:?}",
                request.model,
                order.first().map(|&i| &candidates[i as usize].name)
            ),
        );
        Ok(RouteDecision {
            order,
            shadow: None,
        })
    }
}

switchyard_sdk::export_router!(Rules);

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_sdk::parse_config;
    use switchyard_sdk::testing::{candidate, route_request};

    fn tagged(name: &str, tags: &[&str], price: f64) -> Candidate {
        let mut c = candidate(name);
        c.tags = tags.iter().map(|t| t.to_string()).collect();
        c.input_price_per_mtok = price;
        c
    }

    fn cands() -> Vec<Candidate> {
        vec![
            tagged("cloud-large", &["large"], 5.0),
            tagged("cloud-small", &["small"], 0.2),
            tagged("rack", &["on-prem", "large"], 1.0),
        ]
    }

    const CONFIG: &str = r#"{"rules": [
        {"tags": ["confidential"], "prefer": ["on-prem"], "only": true},
        {"max_prompt_tokens": 500, "tools": false, "prefer": ["small"]},
        {"teams": ["research"], "stream": true, "prefer": ["large"]}
    ], "default": ["large"], "then": "cost"}"#;

    fn route(r: &RouteRequest) -> (Vec<u32>, Option<usize>) {
        let c: Config = parse_config(CONFIG).unwrap();
        check(&c).unwrap();
        rank(&c, r, &cands())
    }

    #[test]
    fn the_first_matching_rule_decides_and_the_rest_follow() {
        let mut r = route_request(1);
        r.estimated_prompt_tokens = 100;
        assert_eq!(
            route(&r),
            (vec![1, 2, 0], Some(1)),
            "short: small first, then by cost"
        );
        r.has_tools = true;
        assert_eq!(
            route(&r),
            (vec![2, 0, 1], None),
            "tools: the default, large by cost"
        );
        r.has_tools = false;
        r.estimated_prompt_tokens = 5000;
        r.stream = true;
        r.caller.team = Some("research".into());
        assert_eq!(route(&r).1, Some(2));
    }

    #[test]
    fn only_keeps_confidential_callers_on_prem_even_when_it_is_down() {
        let mut r = route_request(1);
        r.estimated_prompt_tokens = 100;
        r.caller.tags = vec!["confidential".into()];
        assert_eq!(route(&r), (vec![2], Some(0)));
        let c: Config = parse_config(CONFIG).unwrap();
        let mut cs = cands();
        cs[2].stats.circuit = CircuitState::Open;
        assert_eq!(rank(&c, &r, &cs).0, vec![2], "nowhere else to go");
    }

    #[test]
    fn config_mistakes_are_named() {
        let e =
            parse_config::<Config>(r#"{"rules": [{"prefer": ["a"], "team": ["x"]}]}"#).unwrap_err();
        assert!(e.message.contains("unknown field `team`"), "{}", e.message);
        let c: Config = parse_config(r#"{"rules": [{"prefer": []}]}"#).unwrap();
        assert!(check(&c).unwrap_err().message.contains("rules[0].prefer"));
        let e = parse_config::<Config>(r#"{"then": "random"}"#).unwrap_err();
        assert!(e.message.contains("then"), "{}", e.message);
    }
}
