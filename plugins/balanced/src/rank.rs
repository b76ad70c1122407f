//! The ranking itself, as plain functions over the candidates and the request seed.

use serde::Deserialize;
use switchyard_sdk::router::{Candidate, CircuitState};

/// How to rank, named in the plugin config as `strategy`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Strategy {
    /// Fastest and most reliable first.
    #[default]
    Latency,
    /// Cheapest first (input plus output price), latency breaking ties.
    Cost,
    /// The first pick is drawn by weight; the fallbacks follow by latency.
    WeightedRandom,
}

/// Every candidate index, best first: candidates with an open circuit come last (the host
/// skips them unless nothing else is left), each group in the strategy's order.
pub(crate) fn order(strategy: Strategy, seed: u64, candidates: &[Candidate]) -> Vec<u32> {
    let (mut live, mut open): (Vec<usize>, Vec<usize>) =
        (0..candidates.len()).partition(|&i| candidates[i].stats.circuit != CircuitState::Open);
    let tiebreak = |i: usize| splitmix64(seed ^ splitmix64(i as u64));
    let by_latency = |a: &usize, b: &usize| {
        latency_score(&candidates[*a])
            .total_cmp(&latency_score(&candidates[*b]))
            .then_with(|| tiebreak(*a).cmp(&tiebreak(*b)))
    };
    match strategy {
        Strategy::Latency => live.sort_by(by_latency),
        Strategy::Cost => live.sort_by(|a, b| {
            price(&candidates[*a])
                .total_cmp(&price(&candidates[*b]))
                .then_with(|| by_latency(a, b))
        }),
        Strategy::WeightedRandom => {
            live.sort_by(by_latency);
            if let Some(pos) = weighted_pick(seed, live.iter().map(|&i| candidates[i].weight)) {
                let first = live.remove(pos);
                live.insert(0, first);
            }
        }
    }
    open.sort_by(by_latency);
    live.into_iter()
        .chain(open)
        .filter_map(|i| u32::try_from(i).ok())
        .collect()
}

/// Lower is better: latency inflated by the error rate, divided by the weight.
///
/// A deployment with no calls yet scores 0 so that it gets traffic and so statistics;
/// weight 0 means "fallback only" and scores worst.
fn latency_score(c: &Candidate) -> f64 {
    if c.weight == 0 {
        return f64::INFINITY;
    }
    if c.stats.requests == 0 {
        return 0.0;
    }
    let latency = finite_non_negative(c.stats.latency_ewma_ms);
    let error_rate = finite_non_negative(c.stats.error_rate).min(1.0);
    (latency + 1.0) * (1.0 + 10.0 * error_rate) / f64::from(c.weight)
}

/// USD per million tokens, in plus out. A missing or nonsensical price sorts last rather
/// than looking free.
fn price(c: &Candidate) -> f64 {
    let total = c.input_price_per_mtok + c.output_price_per_mtok;
    if total.is_finite() && total >= 0.0 {
        total
    } else {
        f64::INFINITY
    }
}

/// Statistics come from the host, but a NaN would poison every comparison.
fn finite_non_negative(x: f64) -> f64 {
    if x.is_finite() && x > 0.0 { x } else { 0.0 }
}

/// A position drawn with probability proportional to its weight (uniformly when every
/// weight is 0), stable for a given seed; `None` when there is nothing to draw.
fn weighted_pick(seed: u64, weights: impl Iterator<Item = u32> + Clone) -> Option<usize> {
    let count = weights.clone().count();
    if count == 0 {
        return None;
    }
    let total: u64 = weights.clone().map(u64::from).sum();
    // A different stream from the tie-break hashes, so the draw and the ties do not
    // correlate.
    let draw = splitmix64(seed.wrapping_add(0x5bd1_e995));
    if total == 0 {
        return usize::try_from(draw % count as u64).ok();
    }
    let mut ticket = draw % total;
    for (pos, w) in weights.enumerate() {
        let w = u64::from(w);
        if ticket < w {
            return Some(pos);
        }
        ticket -= w;
    }
    Some(count - 1)
}

/// SplitMix64: a tiny, well-mixed hash of a 64-bit value (Steele, Lea and Flood, 2014).
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_sdk::router::DeploymentStats;

    fn candidate(name: &str, latency: f64, error_rate: f64, price: f64, weight: u32) -> Candidate {
        Candidate {
            name: name.into(),
            adapter: "openai".into(),
            tags: vec![],
            input_price_per_mtok: price,
            output_price_per_mtok: price,
            weight,
            stats: DeploymentStats {
                latency_ewma_ms: latency,
                ttft_ewma_ms: 0.0,
                error_rate,
                in_flight: 0,
                circuit: CircuitState::Closed,
                requests: 100,
                rate_limit_headroom: None,
            },
        }
    }

    #[test]
    fn latency_ranks_fast_and_reliable_first_and_weight_zero_last() {
        let c = [
            candidate("slow", 900.0, 0.0, 1.0, 1),
            candidate("fast", 100.0, 0.0, 1.0, 1),
            candidate("fast-but-failing", 100.0, 0.5, 1.0, 1),
            candidate("fallback-only", 1.0, 0.0, 1.0, 0),
        ];
        assert_eq!(order(Strategy::Latency, 7, &c), [1, 2, 0, 3]);
    }

    #[test]
    fn an_untried_deployment_goes_first_so_it_gets_statistics() {
        let mut c = [
            candidate("known", 10.0, 0.0, 1.0, 1),
            candidate("new", 5000.0, 0.0, 1.0, 1),
        ];
        c[1].stats.requests = 0;
        assert_eq!(order(Strategy::Latency, 1, &c)[0], 1);
    }

    #[test]
    fn cost_ranks_cheapest_first_and_a_nonsense_price_last() {
        let c = [
            candidate("dear", 10.0, 0.0, 30.0, 1),
            candidate("nan", 10.0, 0.0, f64::NAN, 1),
            candidate("cheap", 500.0, 0.0, 0.1, 1),
        ];
        assert_eq!(order(Strategy::Cost, 3, &c), [2, 0, 1]);
    }

    #[test]
    fn open_circuits_go_last_and_every_candidate_is_listed_once() {
        let mut c = [
            candidate("a", 10.0, 0.0, 1.0, 1),
            candidate("b", 20.0, 0.0, 1.0, 1),
            candidate("c", 30.0, 0.0, 1.0, 1),
        ];
        c[0].stats.circuit = CircuitState::Open;
        for s in [Strategy::Latency, Strategy::Cost, Strategy::WeightedRandom] {
            let o = order(s, 11, &c);
            assert_eq!(o.last(), Some(&0), "{s:?}");
            let mut sorted = o.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, [0, 1, 2], "{s:?}");
        }
    }

    #[test]
    fn weighted_random_follows_the_weights_and_is_stable_per_seed() {
        let c = [
            candidate("heavy", 10.0, 0.0, 1.0, 3),
            candidate("light", 10.0, 0.0, 1.0, 1),
        ];
        let firsts: Vec<u32> = (0..4000)
            .map(|seed| order(Strategy::WeightedRandom, seed, &c)[0])
            .collect();
        let heavy = firsts.iter().filter(|&&i| i == 0).count();
        // 3:1 weights: 75% ± a wide margin for 4,000 draws.
        assert!((2800..=3200).contains(&heavy), "{heavy} of 4000");
        assert_eq!(
            order(Strategy::WeightedRandom, 42, &c),
            order(Strategy::WeightedRandom, 42, &c)
        );
    }
}
