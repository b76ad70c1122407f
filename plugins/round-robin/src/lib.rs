//! The `round-robin` router: deployments take turns, in proportion to their weights, with
//! weighted turns interleaved (nginx's smooth weighted round-robin: weights 2 and 1 give
//! `a b a`, not `a a b`).
//!
//! Plugin config (`[plugins.round-robin.config]`), all optional:
//!
//! ```toml
//! # Weights by deployment name, overriding each deployment's `weight` (default 1).
//! # 0 means "fallback only".
//! weights = { east = 2, west = 1 }
//! ```
//!
//! A router instance lives for one request, so the turn cannot be a counter of its own.
//! It is the number of calls the host has started to these deployments (`requests +
//! in-flight`, summed), which moves by one for every call: consecutive requests land on
//! consecutive turns. Because the turn is shared rather than per deployment, a deployment
//! back from an open circuit takes its turns again without being flooded to "catch up".
//! Concurrent requests routed in the same instant may see the same turn; the next turns
//! even that out. After the first choice, the others follow in turn order.

// Tests may unwrap: a failed expectation is the point.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

use std::collections::BTreeMap;

use serde::Deserialize;
use switchyard_sdk::router::rank::{index, open_last};
use switchyard_sdk::router::*;

/// The longest cycle walked per request; larger weights are scaled down to fit, which
/// keeps each call's cost bounded (a cycle step is a few nanoseconds per deployment).
const MAX_CYCLE: u64 = 128;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Config {
    weights: BTreeMap<String, u32>,
}

#[derive(Default)]
struct RoundRobin;

impl Router for RoundRobin {
    fn route(
        &mut self,
        _request: RouteRequest,
        candidates: Vec<Candidate>,
    ) -> Result<RouteDecision, PluginError> {
        let config: Config = switchyard_sdk::config()?;
        Ok(RouteDecision {
            order: rank(&config, &candidates),
            shadow: None,
        })
    }
}

fn rank(config: &Config, candidates: &[Candidate]) -> Vec<u32> {
    let weights: Vec<u64> = candidates
        .iter()
        .map(|c| u64::from(config.weights.get(&c.name).copied().unwrap_or(c.weight)))
        .collect();
    let turn: u64 = candidates
        .iter()
        .map(|c| {
            c.stats
                .requests
                .saturating_add(u64::from(c.stats.in_flight))
        })
        .fold(0, u64::saturating_add);
    let order = match turn_order(&fit(&weights), turn) {
        Some(order) => order,
        // Every weight is 0: config order.
        None => (0..candidates.len()).map(index).collect(),
    };
    open_last(order, candidates)
}

/// Weights scaled down (never to 0) so that they sum to at most `MAX_CYCLE`.
fn fit(weights: &[u64]) -> Vec<u64> {
    let total: u64 = weights.iter().sum();
    if total <= MAX_CYCLE {
        return weights.to_vec();
    }
    weights
        .iter()
        .map(|&w| {
            if w == 0 {
                0
            } else {
                (w * MAX_CYCLE / total).max(1)
            }
        })
        .collect()
}

/// Every index: the one whose turn `turn` is in the smooth weighted cycle first, then the
/// rest in the order their next turns come, weight-0 ones last. `None` if no weight is
/// positive.
fn turn_order(weights: &[u64], turn: u64) -> Option<Vec<u32>> {
    let total: u64 = weights.iter().sum();
    if total == 0 {
        return None;
    }
    let n = weights.len();
    let mut current = vec![0i64; n];
    let mut step = || {
        // nginx's smooth weighted round-robin: everyone gains its weight, the richest
        // goes and pays the total. Ties go to the earlier deployment.
        let mut best = 0;
        for i in 0..n {
            current[i] += weights[i] as i64;
            if current[i] > current[best] {
                best = i;
            }
        }
        current[best] -= total as i64;
        best
    };
    for _ in 0..turn % total {
        step();
    }
    let mut order = Vec::with_capacity(n);
    let mut seen = vec![false; n];
    // One full cycle visits every weighted deployment.
    for _ in 0..total {
        let i = step();
        if !std::mem::replace(&mut seen[i], true) {
            order.push(index(i));
        }
    }
    order.extend((0..n).filter(|&i| !seen[i]).map(index));
    Some(order)
}

switchyard_sdk::export_router!(RoundRobin);

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_sdk::parse_config;
    use switchyard_sdk::testing::candidate;

    /// The first choices of `n` consecutive requests, as the host's counters would move.
    fn run(config: &Config, cs: &mut [Candidate], n: usize) -> String {
        let mut picks = String::new();
        for c in cs.iter_mut() {
            c.stats.requests = 0;
        }
        for _ in 0..n {
            let first = rank(config, cs)[0] as usize;
            picks.push_str(&cs[first].name);
            cs[first].stats.requests += 1;
        }
        picks
    }

    #[test]
    fn equal_weights_alternate_strictly() {
        let mut cs = vec![candidate("a"), candidate("b"), candidate("c")];
        assert_eq!(run(&Config::default(), &mut cs, 7), "abcabca");
    }

    #[test]
    fn weights_interleave_smoothly() {
        let mut cs = vec![candidate("a"), candidate("b")];
        let config: Config = parse_config(r#"{"weights": {"a": 2}}"#).unwrap();
        assert_eq!(run(&config, &mut cs, 6), "abaaba");
        cs[0].weight = 1;
        cs[1].weight = 0;
        assert_eq!(run(&Config::default(), &mut cs, 3), "aaa");
    }

    #[test]
    fn calls_in_flight_count_as_taken_turns() {
        let mut cs = vec![candidate("a"), candidate("b")];
        cs[0].stats.requests = 10;
        cs[1].stats.requests = 10;
        assert_eq!(rank(&Config::default(), &cs), vec![0, 1]);
        cs[1].stats.in_flight = 1;
        assert_eq!(rank(&Config::default(), &cs), vec![1, 0]);
    }

    #[test]
    fn a_returning_deployment_takes_its_turn_without_catching_up() {
        let mut cs = vec![candidate("a"), candidate("b")];
        cs[0].stats.requests = 1_000;
        cs[1].stats.requests = 0;
        let picks: String = (0..4)
            .map(|_| {
                let first = rank(&Config::default(), &cs)[0] as usize;
                cs[first].stats.requests += 1;
                cs[first].name.clone()
            })
            .collect();
        assert_eq!(picks, "abab");
    }

    #[test]
    fn huge_weights_are_scaled_and_every_candidate_is_ranked() {
        let mut cs = vec![candidate("a"), candidate("b"), candidate("c")];
        cs[0].weight = 1_000_000;
        cs[1].weight = 1;
        cs[2].stats.circuit = CircuitState::Open;
        let order = rank(&Config::default(), &cs);
        assert_eq!(order.len(), 3);
        assert_eq!(order[2], 2);
        assert_eq!(fit(&[1_000_000, 1]).iter().sum::<u64>(), 128);
    }
}
