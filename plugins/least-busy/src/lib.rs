//! The `least-busy` router: the deployment with the fewest calls in flight (per unit of
//! weight, so a deployment of weight 2 is as busy with 2 calls as one of weight 1 with 1)
//! goes first. Ties go to the lower measured latency, then to a draw from the request's
//! seed, so idle deployments share a quiet gateway's traffic.
//!
//! Plugin config (`[plugins.least-busy.config]`), all optional:
//!
//! ```toml
//! # Weights by deployment name, overriding each deployment's `weight` (default 1).
//! # 0 means "fallback only".
//! weights = { big-box = 4, small-box = 1 }
//! ```
//!
//! In-flight counts are the host's, shared by every request, so this holds across the
//! fresh router instance each request gets. The fallbacks follow least busy first;
//! deployments with an open circuit go last.

// Tests may unwrap: a failed expectation is the point.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

use std::collections::BTreeMap;

use serde::Deserialize;
use switchyard_sdk::router::rank::{SeededRng, index, is_open, observed_latency_ms};
use switchyard_sdk::router::*;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Config {
    weights: BTreeMap<String, u32>,
}

#[derive(Default)]
struct LeastBusy;

impl Router for LeastBusy {
    fn route(
        &mut self,
        request: RouteRequest,
        candidates: Vec<Candidate>,
    ) -> Result<RouteDecision, PluginError> {
        let config: Config = switchyard_sdk::config()?;
        Ok(RouteDecision {
            order: rank(&config, &request, &candidates),
            shadow: None,
        })
    }
}

fn rank(config: &Config, request: &RouteRequest, candidates: &[Candidate]) -> Vec<u32> {
    let mut rng = SeededRng::new(request.request_seed);
    let keys: Vec<(bool, f64, f64, u64)> = candidates
        .iter()
        .map(|c| {
            let weight = config.weights.get(&c.name).copied().unwrap_or(c.weight);
            let load = if weight == 0 {
                f64::INFINITY
            } else {
                f64::from(c.stats.in_flight) / f64::from(weight)
            };
            let latency = observed_latency_ms(c, request.stream).unwrap_or(0.0);
            (is_open(c), load, latency, rng.next_u64())
        })
        .collect();
    let mut order: Vec<usize> = (0..candidates.len()).collect();
    order.sort_by(|&a, &b| {
        let (ka, kb) = (&keys[a], &keys[b]);
        ka.0.cmp(&kb.0)
            .then(ka.1.total_cmp(&kb.1))
            .then(ka.2.total_cmp(&kb.2))
            .then(ka.3.cmp(&kb.3))
    });
    order.into_iter().map(index).collect()
}

switchyard_sdk::export_router!(LeastBusy);

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_sdk::parse_config;
    use switchyard_sdk::testing::{candidate, route_request};

    fn busy(name: &str, in_flight: u32) -> Candidate {
        let mut c = candidate(name);
        c.stats.in_flight = in_flight;
        c
    }

    #[test]
    fn fewest_in_flight_first_then_the_rest_by_load() {
        let cs = vec![busy("a", 5), busy("b", 1), busy("c", 3)];
        assert_eq!(
            rank(&Config::default(), &route_request(1), &cs),
            vec![1, 2, 0]
        );
    }

    #[test]
    fn load_is_per_unit_of_weight() {
        let mut cs = vec![busy("big", 3), busy("small", 2)];
        cs[0].weight = 4;
        assert_eq!(rank(&Config::default(), &route_request(1), &cs), vec![0, 1]);
        let config: Config = parse_config(r#"{"weights": {"big": 1}}"#).unwrap();
        assert_eq!(rank(&config, &route_request(1), &cs), vec![1, 0]);
    }

    #[test]
    fn ties_go_to_the_faster_then_spread_by_seed() {
        let mut cs = vec![busy("a", 0), busy("b", 0)];
        cs[0].stats.latency_ewma_ms = 300.0;
        assert_eq!(rank(&Config::default(), &route_request(1), &cs), vec![1, 0]);
        cs[0].stats.latency_ewma_ms = 100.0;
        let firsts: u32 = (0..1_000)
            .map(|s| rank(&Config::default(), &route_request(s), &cs)[0])
            .sum();
        assert!((400..600).contains(&firsts), "{firsts}");
    }

    #[test]
    fn open_circuits_and_zero_weights_go_last() {
        let mut cs = vec![busy("a", 0), busy("b", 9), busy("c", 0)];
        cs[0].stats.circuit = CircuitState::Open;
        cs[2].weight = 0;
        assert_eq!(
            rank(&Config::default(), &route_request(1), &cs),
            vec![1, 2, 0]
        );
    }
}
