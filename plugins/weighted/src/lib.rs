//! The `weighted` router: weighted random. Each request's first choice is drawn with a
//! chance proportional to the deployment's weight; the fallbacks are drawn the same way
//! from those left, so a failed first choice spreads its retries by weight too.
//!
//! Plugin config (`[plugins.weighted.config]`), all optional:
//!
//! ```toml
//! # Weights by deployment name, overriding each deployment's `weight` (default 1).
//! # 0 means "fallback only".
//! weights = { east = 3, west = 1 }
//! ```
//!
//! The draw uses the request's seed, so a request ranks the same way wherever it is
//! asked; deployments with an open circuit go last.

// Tests may unwrap: a failed expectation is the point.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

use std::collections::BTreeMap;

use serde::Deserialize;
use switchyard_sdk::router::rank::{SeededRng, open_last, weighted_order};
use switchyard_sdk::router::*;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Config {
    weights: BTreeMap<String, u32>,
}

#[derive(Default)]
struct Weighted;

impl Router for Weighted {
    fn route(
        &mut self,
        request: RouteRequest,
        candidates: Vec<Candidate>,
    ) -> Result<RouteDecision, PluginError> {
        let config: Config = switchyard_sdk::config()?;
        Ok(RouteDecision {
            order: rank(&config, request.request_seed, &candidates),
            shadow: None,
        })
    }
}

fn rank(config: &Config, seed: u64, candidates: &[Candidate]) -> Vec<u32> {
    let weights: Vec<u32> = candidates
        .iter()
        .map(|c| config.weights.get(&c.name).copied().unwrap_or(c.weight))
        .collect();
    open_last(
        weighted_order(&weights, &mut SeededRng::new(seed)),
        candidates,
    )
}

switchyard_sdk::export_router!(Weighted);

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_sdk::parse_config;
    use switchyard_sdk::testing::candidate;

    fn firsts(config: &Config, candidates: &[Candidate], n: u64) -> Vec<u64> {
        let mut hits = vec![0; candidates.len()];
        for seed in 0..n {
            let order = rank(config, seed, candidates);
            assert_eq!(order.len(), candidates.len(), "every candidate is ranked");
            hits[order[0] as usize] += 1;
        }
        hits
    }

    #[test]
    fn first_choices_follow_the_deployment_weights() {
        let mut cs = vec![candidate("a"), candidate("b")];
        cs[0].weight = 1;
        cs[1].weight = 4;
        let hits = firsts(&Config::default(), &cs, 10_000);
        assert!((1_850..2_150).contains(&hits[0]), "{hits:?}");
    }

    #[test]
    fn config_weights_override_and_zero_is_fallback_only() {
        let cs = vec![candidate("a"), candidate("b"), candidate("c")];
        let config: Config = parse_config(r#"{"weights": {"a": 0, "b": 1, "c": 1}}"#).unwrap();
        let hits = firsts(&config, &cs, 2_000);
        assert_eq!(hits[0], 0);
        assert!((900..1_100).contains(&hits[1]), "{hits:?}");
        assert_eq!(rank(&config, 9, &cs)[2], 0);
    }

    #[test]
    fn open_circuits_are_last_and_the_same_seed_ranks_the_same() {
        let mut cs = vec![candidate("a"), candidate("b"), candidate("c")];
        cs[1].stats.circuit = CircuitState::Open;
        for seed in 0..100 {
            let order = rank(&Config::default(), seed, &cs);
            assert_eq!(order[2], 1);
            assert_eq!(order, rank(&Config::default(), seed, &cs));
        }
    }

    #[test]
    fn unknown_keys_are_rejected_by_name() {
        let e = parse_config::<Config>(r#"{"weight": {"a": 1}}"#).unwrap_err();
        assert!(
            e.message.contains("unknown field `weight`"),
            "{}",
            e.message
        );
    }
}
