//! The `lowest-cost` router: the cheapest healthy deployment for this request whose
//! measured latency stays under a bound. A request's cost is estimated from the configured
//! prices: prompt tokens (the host's estimate) × input price + expected output tokens ×
//! output price, the output being the request's `max_tokens` or, without one, the
//! configured typical answer length.
//!
//! Plugin config (`[plugins.lowest-cost.config]`), all optional:
//!
//! ```toml
//! max_latency_ms = 2000     # for streams: time to first token; otherwise the whole call
//! output_tokens = 256       # expected answer length when the request sets no max_tokens
//! recheck = 0.05            # share of requests that try a cheaper deployment over the bound
//! ```
//!
//! Deployments within the bound (or not yet measured) come first, cheapest first, latency
//! breaking ties; then those over the bound, fastest first, so a request still has
//! somewhere to go when everything is slow; deployments with an open circuit last. A
//! deployment without prices (both 0) counts as free: price it, or it wins.
//!
//! Latency is only measured on traffic, so a cheap deployment over the bound would never
//! be seen to get fast again: a `recheck` share of requests tries the cheapest one over the
//! bound first (when it is cheaper than the usual choice), and its answer updates the mean.

// Tests may unwrap: a failed expectation is the point.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

use serde::Deserialize;
use switchyard_sdk::router::rank::{SeededRng, index, is_open, observed_latency_ms};
use switchyard_sdk::router::*;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Config {
    max_latency_ms: Option<f64>,
    output_tokens: u32,
    recheck: f64,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            max_latency_ms: None,
            output_tokens: 256,
            recheck: 0.05,
        }
    }
}

impl Config {
    fn checked(self) -> Result<Config, PluginError> {
        if let Some(ms) = self.max_latency_ms
            && !(ms.is_finite() && ms > 0.0)
        {
            return Err(switchyard_sdk::config_error(
                "max_latency_ms",
                "must be a positive number of milliseconds",
            ));
        }
        if !(0.0..=1.0).contains(&self.recheck) {
            return Err(switchyard_sdk::config_error(
                "recheck",
                "must be between 0 and 1, e.g. 0.05",
            ));
        }
        Ok(self)
    }
}

#[derive(Default)]
struct LowestCost;

impl Router for LowestCost {
    fn route(
        &mut self,
        request: RouteRequest,
        candidates: Vec<Candidate>,
    ) -> Result<RouteDecision, PluginError> {
        let config = switchyard_sdk::config::<Config>()?.checked()?;
        Ok(RouteDecision {
            order: rank(&config, &request, &candidates),
            shadow: None,
        })
    }
}

/// The request's estimated cost on `c`, in USD; a price that is not a number of 0 or more
/// sorts last rather than looking free.
fn cost(config: &Config, request: &RouteRequest, c: &Candidate) -> f64 {
    let price = |p: f64| {
        if p.is_finite() && p >= 0.0 {
            p
        } else {
            f64::INFINITY
        }
    };
    let output = request.max_tokens.unwrap_or(config.output_tokens);
    (f64::from(request.estimated_prompt_tokens) * price(c.input_price_per_mtok)
        + f64::from(output) * price(c.output_price_per_mtok))
        / 1e6
}

fn rank(config: &Config, request: &RouteRequest, candidates: &[Candidate]) -> Vec<u32> {
    // (group, primary, secondary): group 0 within the bound by cost then latency, 1 over
    // it by latency then cost, 2 open circuits.
    let costs: Vec<f64> = candidates
        .iter()
        .map(|c| cost(config, request, c))
        .collect();
    let keys: Vec<(u8, f64, f64)> = candidates
        .iter()
        .zip(&costs)
        .map(|(c, &cost)| {
            let latency = observed_latency_ms(c, request.stream);
            let within = match (config.max_latency_ms, latency) {
                (Some(bound), Some(ms)) => ms <= bound,
                _ => true,
            };
            let latency = latency.unwrap_or(0.0);
            if is_open(c) {
                (2, latency, cost)
            } else if within {
                (0, cost, latency)
            } else {
                (1, latency, cost)
            }
        })
        .collect();
    let mut order: Vec<usize> = (0..candidates.len()).collect();
    order.sort_by(|&a, &b| {
        let (ka, kb) = (keys[a], keys[b]);
        ka.0.cmp(&kb.0)
            .then(ka.1.total_cmp(&kb.1))
            .then(ka.2.total_cmp(&kb.2))
    });
    if SeededRng::new(request.request_seed).unit() < config.recheck {
        let over = (0..candidates.len())
            .filter(|&i| keys[i].0 == 1)
            .min_by(|&a, &b| costs[a].total_cmp(&costs[b]));
        if let (Some(probe), Some(&first)) = (over, order.first())
            && costs[probe] < costs[first]
        {
            order.retain(|&i| i != probe);
            order.insert(0, probe);
        }
    }
    order.into_iter().map(index).collect()
}

switchyard_sdk::export_router!(LowestCost);

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_sdk::parse_config;
    use switchyard_sdk::testing::{candidate, route_request};

    fn priced(name: &str, input: f64, output: f64, latency: f64) -> Candidate {
        let mut c = candidate(name);
        c.input_price_per_mtok = input;
        c.output_price_per_mtok = output;
        c.stats.latency_ewma_ms = latency;
        c
    }

    /// No rechecks: the plain ranking.
    fn plain() -> Config {
        Config {
            recheck: 0.0,
            ..Config::default()
        }
    }

    #[test]
    fn cheapest_first_counting_prompt_and_expected_output() {
        // Cheap input, dear output vs the reverse: a long prompt with a short answer
        // favours cheap input; a long answer favours cheap output.
        let cs = vec![
            priced("in", 0.1, 10.0, 100.0),
            priced("out", 5.0, 1.0, 100.0),
        ];
        let mut r = route_request(1);
        r.estimated_prompt_tokens = 10_000;
        r.max_tokens = Some(10);
        assert_eq!(rank(&plain(), &r, &cs), vec![0, 1]);
        r.estimated_prompt_tokens = 10;
        r.max_tokens = Some(10_000);
        assert_eq!(rank(&plain(), &r, &cs), vec![1, 0]);
        r.max_tokens = None;
        let c: Config = parse_config(r#"{"output_tokens": 1, "recheck": 0}"#).unwrap();
        r.estimated_prompt_tokens = 10_000;
        assert_eq!(rank(&c, &r, &cs), vec![0, 1]);
    }

    #[test]
    fn the_latency_bound_excludes_slow_cheap_deployments_until_nothing_else_is_left() {
        let cs = vec![
            priced("cheap-slow", 0.1, 0.1, 5_000.0),
            priced("dear-fast", 10.0, 10.0, 200.0),
            priced("mid-slower", 1.0, 1.0, 3_000.0),
        ];
        let bounded: Config = parse_config(r#"{"max_latency_ms": 1000, "recheck": 0}"#).unwrap();
        let r = route_request(1);
        assert_eq!(rank(&plain(), &r, &cs), vec![0, 2, 1]);
        assert_eq!(
            rank(&bounded, &r, &cs),
            vec![1, 2, 0],
            "over the bound: fastest first"
        );
    }

    #[test]
    fn streams_are_bounded_by_time_to_first_token_and_unmeasured_counts_as_within() {
        let mut cs = vec![
            priced("cheap", 0.1, 0.1, 9_000.0),
            priced("dear", 9.0, 9.0, 100.0),
        ];
        cs[0].stats.ttft_ewma_ms = 300.0;
        let bounded: Config = parse_config(r#"{"max_latency_ms": 1000, "recheck": 0}"#).unwrap();
        let mut r = route_request(1);
        assert_eq!(rank(&bounded, &r, &cs), vec![1, 0]);
        r.stream = true;
        assert_eq!(rank(&bounded, &r, &cs), vec![0, 1]);
        cs[0].stats.requests = 0;
        r.stream = false;
        assert_eq!(rank(&bounded, &r, &cs), vec![0, 1]);
    }

    #[test]
    fn open_circuits_last_and_nonsense_prices_are_never_cheapest() {
        let mut cs = vec![
            priced("open", 0.0, 0.0, 10.0),
            priced("nan", f64::NAN, 0.0, 10.0),
            priced("ok", 3.0, 3.0, 10.0),
        ];
        cs[0].stats.circuit = CircuitState::Open;
        assert_eq!(rank(&plain(), &route_request(1), &cs), vec![2, 1, 0]);
    }

    #[test]
    fn a_recheck_share_tries_the_cheaper_deployment_over_the_bound() {
        let cs = vec![
            priced("dear-fast", 10.0, 10.0, 100.0),
            priced("cheap-slow", 0.1, 0.1, 5_000.0),
        ];
        let c: Config = parse_config(r#"{"max_latency_ms": 1000, "recheck": 0.1}"#).unwrap();
        let probes = (0..10_000)
            .filter(|&seed| rank(&c, &route_request(seed), &cs)[0] == 1)
            .count();
        assert!((850..1_150).contains(&probes), "{probes}");
        // Never a dearer one: a recheck is for getting cheaper.
        let cs = vec![
            priced("cheap-fast", 0.1, 0.1, 100.0),
            priced("dear-slow", 9.0, 9.0, 5_000.0),
        ];
        assert!((0..1_000).all(|seed| rank(&c, &route_request(seed), &cs)[0] == 0));
    }

    #[test]
    fn config_is_typed_and_checked() {
        assert!(parse_config::<Config>(r#"{"max_latency": 5}"#).is_err());
        let e = parse_config::<Config>(r#"{"max_latency_ms": -1}"#)
            .unwrap()
            .checked()
            .unwrap_err();
        assert!(e.message.contains("`max_latency_ms`"), "{}", e.message);
        let e = parse_config::<Config>(r#"{"recheck": 1.5}"#)
            .unwrap()
            .checked()
            .unwrap_err();
        assert!(e.message.contains("`recheck`"), "{}", e.message);
    }
}
