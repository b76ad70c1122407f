//! The `least-latency` router: the fastest healthy deployment first, by the latency the
//! host measures on real traffic (an exponentially weighted mean; for streams the time to
//! first token), inflated by its recent error rate.
//!
//! It picks with the power of two choices: two healthy deployments drawn at random, the
//! faster one first. That sends traffic to the fastest without stampeding it the instant
//! its mean dips (Mitzenmacher, 2001), and with two deployments it is simply "the faster".
//! A small exploration share of requests goes to a random healthy deployment instead, so a
//! deployment that was slow and has recovered is measured again and wins its traffic back;
//! a deployment never measured ranks as fastest so that it gets measured at all.
//!
//! Plugin config (`[plugins.least-latency.config]`), all optional:
//!
//! ```toml
//! exploration = 0.05       # share of requests sent to a random healthy deployment
//! use_ttft = true          # streams compare time to first token (false: whole call)
//! error_penalty = 4.0      # latency × (1 + error_penalty × error rate)
//! ```
//!
//! The fallbacks follow fastest first; deployments with an open circuit go last.

// Tests may unwrap: a failed expectation is the point.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

use serde::Deserialize;
use switchyard_sdk::router::rank::{
    SeededRng, error_rate, index, is_open, observed_latency_ms, sorted_by_key,
};
use switchyard_sdk::router::*;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Config {
    exploration: f64,
    use_ttft: bool,
    error_penalty: f64,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            exploration: 0.05,
            use_ttft: true,
            error_penalty: 4.0,
        }
    }
}

impl Config {
    fn read() -> Result<Config, PluginError> {
        switchyard_sdk::config::<Config>()?.checked()
    }

    fn checked(self) -> Result<Config, PluginError> {
        let c = self;
        let bad = switchyard_sdk::config_error;
        if !(0.0..=1.0).contains(&c.exploration) {
            return Err(bad("exploration", "must be between 0 and 1, e.g. 0.05"));
        }
        if !(c.error_penalty >= 0.0 && c.error_penalty.is_finite()) {
            return Err(bad("error_penalty", "must be a number of 0 or more"));
        }
        Ok(c)
    }
}

#[derive(Default)]
struct LeastLatency;

impl Router for LeastLatency {
    fn route(
        &mut self,
        request: RouteRequest,
        candidates: Vec<Candidate>,
    ) -> Result<RouteDecision, PluginError> {
        let config = Config::read()?;
        Ok(RouteDecision {
            order: rank(&config, &request, &candidates),
            shadow: None,
        })
    }
}

/// Lower is faster. Unmeasured deployments score 0 so that they are tried and measured.
fn score(config: &Config, stream: bool, c: &Candidate) -> f64 {
    if is_open(c) {
        // After every healthy one whatever its latency (the host would skip it anyway).
        return f64::INFINITY;
    }
    let Some(ms) = observed_latency_ms(c, stream && config.use_ttft) else {
        return 0.0;
    };
    ms * (1.0 + config.error_penalty * error_rate(c))
}

fn rank(config: &Config, request: &RouteRequest, candidates: &[Candidate]) -> Vec<u32> {
    let scores: Vec<f64> = candidates
        .iter()
        .map(|c| score(config, request.stream, c))
        .collect();
    let mut order = sorted_by_key(candidates.len(), |i| scores[i]);
    let healthy: Vec<usize> = (0..candidates.len())
        .filter(|&i| !is_open(&candidates[i]))
        .collect();
    if healthy.len() < 2 {
        return order;
    }
    let mut rng = SeededRng::new(request.request_seed);
    let first = if rng.unit() < config.exploration {
        healthy[rng.below(healthy.len())]
    } else {
        // Two distinct draws: the second skips over the first.
        let i = rng.below(healthy.len());
        let mut j = rng.below(healthy.len() - 1);
        if j >= i {
            j += 1;
        }
        let (a, b) = (healthy[i], healthy[j]);
        if scores[b] < scores[a] { b } else { a }
    };
    order.retain(|&i| i != index(first));
    order.insert(0, index(first));
    order
}

switchyard_sdk::export_router!(LeastLatency);

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_sdk::parse_config;
    use switchyard_sdk::testing::{candidate, route_request};

    fn with_latency(name: &str, ms: f64) -> Candidate {
        let mut c = candidate(name);
        c.stats.latency_ewma_ms = ms;
        c
    }

    fn firsts(config: &Config, cs: &[Candidate], stream: bool, n: u64) -> Vec<u64> {
        let mut hits = vec![0; cs.len()];
        for seed in 0..n {
            let mut r = route_request(seed);
            r.stream = stream;
            let order = rank(config, &r, cs);
            assert_eq!(order.len(), cs.len(), "every candidate is ranked");
            hits[order[0] as usize] += 1;
        }
        hits
    }

    #[test]
    fn the_faster_of_two_wins_all_but_the_exploration_share() {
        let cs = vec![with_latency("slow", 400.0), with_latency("fast", 40.0)];
        let hits = firsts(&Config::default(), &cs, false, 10_000);
        // Exploration sends 5% to a random one of two: ~2.5% to the slow one.
        assert!((150..350).contains(&hits[0]), "{hits:?}");
        let none = Config {
            exploration: 0.0,
            ..Config::default()
        };
        assert_eq!(firsts(&none, &cs, false, 1_000), vec![0, 1_000]);
    }

    #[test]
    fn power_of_two_choices_spreads_among_many_but_favours_the_fast() {
        let cs: Vec<Candidate> = (0..4)
            .map(|i| with_latency(&format!("d{i}"), 10.0 * f64::from(i + 1)))
            .collect();
        let none = Config {
            exploration: 0.0,
            ..Config::default()
        };
        let hits = firsts(&none, &cs, false, 10_000);
        // The slowest loses every pair it is in; the fastest wins every pair.
        assert_eq!(hits[3], 0, "{hits:?}");
        assert!(hits[0] > hits[1] && hits[1] > hits[2], "{hits:?}");
    }

    #[test]
    fn streams_compare_time_to_first_token() {
        let mut cs = vec![with_latency("a", 100.0), with_latency("b", 300.0)];
        cs[0].stats.ttft_ewma_ms = 90.0;
        cs[1].stats.ttft_ewma_ms = 20.0;
        let none = Config {
            exploration: 0.0,
            ..Config::default()
        };
        assert_eq!(firsts(&none, &cs, true, 100), vec![0, 100]);
        assert_eq!(firsts(&none, &cs, false, 100), vec![100, 0]);
        let whole: Config = parse_config(r#"{"use_ttft": false, "exploration": 0}"#).unwrap();
        assert_eq!(firsts(&whole, &cs, true, 100), vec![100, 0]);
    }

    #[test]
    fn errors_inflate_latency_and_unmeasured_deployments_are_tried() {
        let mut cs = vec![with_latency("flaky", 50.0), with_latency("steady", 100.0)];
        cs[0].stats.error_rate = 0.5;
        let none = Config {
            exploration: 0.0,
            ..Config::default()
        };
        assert_eq!(firsts(&none, &cs, false, 100), vec![0, 100]);
        cs.push(candidate("new"));
        cs[2].stats.requests = 0;
        let order = rank(&none, &route_request(1), &cs);
        assert_eq!(order, vec![2, 1, 0]);
    }

    #[test]
    fn open_circuits_go_last_even_when_fastest() {
        let mut cs = vec![
            with_latency("a", 1.0),
            with_latency("b", 50.0),
            with_latency("c", 60.0),
        ];
        cs[0].stats.circuit = CircuitState::Open;
        for seed in 0..200 {
            let order = rank(&Config::default(), &route_request(seed), &cs);
            assert_eq!(order[2], 0, "{order:?}");
        }
    }

    #[test]
    fn config_is_typed_and_checked() {
        let c: Config = parse_config(r#"{"exploration": 0.1}"#).unwrap();
        assert_eq!((c.exploration, c.use_ttft), (0.1, true));
        assert!(parse_config::<Config>(r#"{"explore": 0.1}"#).is_err());
        assert!(parse_config::<Config>(r#"{"exploration": "lots"}"#).is_err());
        let e = parse_config::<Config>(r#"{"exploration": 2}"#)
            .unwrap()
            .checked()
            .unwrap_err();
        assert!(e.message.contains("`exploration`"), "{}", e.message);
    }
}
