//! Building blocks for routing strategies: a random source seeded by the request, weighted
//! draws, and the host's statistics read the way every bundled router reads them.
//!
//! A router instance lives for one request, so a strategy keeps no memory of its own
//! between requests: what it needs to know about the past (latency, calls in flight, calls
//! started) comes from the host in each candidate's [`DeploymentStats`](super::DeploymentStats).

use super::{Candidate, CircuitState};

/// Random numbers drawn from the request's seed: one request always ranks the same way,
/// and different requests spread. SplitMix64 (Steele, Lea and Flood, 2014): tiny, fast and
/// well mixed, which is all a load balancer's coin needs.
#[derive(Debug, Clone)]
pub struct SeededRng(u64);

impl SeededRng {
    pub fn new(seed: u64) -> SeededRng {
        // Mixed once, so that seeds differing in one bit start far apart.
        SeededRng(splitmix64(seed))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix(self.0)
    }

    /// A number in `0..n`; 0 when `n` is 0.
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            return 0;
        }
        // Multiply-shift maps 64 random bits onto 0..n without a modulo's bias worth
        // speaking of (n is a handful of deployments).
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }

    /// A number in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// SplitMix64's finaliser applied to `x + golden ratio`: a stable, well-mixed hash of a
/// 64-bit value (for "the same key always lands in the same bucket").
pub fn splitmix64(x: u64) -> u64 {
    mix(x.wrapping_add(0x9e37_79b9_7f4a_7c15))
}

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Every index, drawn one at a time without replacement, each draw with a chance
/// proportional to the weight among those left. Weight 0 means "fallback only": those
/// come after every weighted one, in config order.
pub fn weighted_order(weights: &[u32], rng: &mut SeededRng) -> Vec<u32> {
    let mut left: Vec<usize> = (0..weights.len()).filter(|&i| weights[i] > 0).collect();
    let mut order = Vec::with_capacity(weights.len());
    let mut total: u64 = left.iter().map(|&i| u64::from(weights[i])).sum();
    while !left.is_empty() {
        let mut ticket = rng.next_u64() % total.max(1);
        let mut pos = left.len() - 1;
        for (p, &i) in left.iter().enumerate() {
            let w = u64::from(weights[i]);
            if ticket < w {
                pos = p;
                break;
            }
            ticket -= w;
        }
        let i = left.remove(pos);
        total -= u64::from(weights[i]);
        order.push(index(i));
    }
    order.extend((0..weights.len()).filter(|&i| weights[i] == 0).map(index));
    order
}

/// Whether the host's circuit breaker has taken the deployment out. The host tries such a
/// deployment only when nothing else is left, whatever a router says; routers rank them
/// last too so that their order reads the same.
pub fn is_open(c: &Candidate) -> bool {
    c.stats.circuit == CircuitState::Open
}

/// `order` with open-circuit candidates moved to the end, each group in its order.
pub fn open_last(order: Vec<u32>, candidates: &[Candidate]) -> Vec<u32> {
    let (mut live, open): (Vec<u32>, Vec<u32>) = order
        .into_iter()
        .partition(|&i| candidates.get(i as usize).is_some_and(|c| !is_open(c)));
    live.extend(open);
    live
}

/// The latency that matters for this request, in ms: the time to first token for a
/// stream (when measured; the whole call otherwise), the whole call for the rest. `None`
/// before the deployment has answered once. Nonsense from the host (NaN, negative) reads
/// as unmeasured rather than poisoning a comparison.
pub fn observed_latency_ms(c: &Candidate, stream: bool) -> Option<f64> {
    let valid = |x: f64| (x.is_finite() && x > 0.0).then_some(x);
    if c.stats.requests == 0 {
        return None;
    }
    let whole = valid(c.stats.latency_ewma_ms);
    if stream {
        valid(c.stats.ttft_ewma_ms).or(whole)
    } else {
        whole
    }
}

/// The share of recent calls that failed, clamped to `[0, 1]`.
pub fn error_rate(c: &Candidate) -> f64 {
    let e = c.stats.error_rate;
    if e.is_finite() {
        e.clamp(0.0, 1.0)
    } else {
        0.0
    }
}

/// The indices `0..n` sorted by `key`, lowest first; ties keep config order. `NaN` keys
/// sort last.
pub fn sorted_by_key(n: usize, key: impl Fn(usize) -> f64) -> Vec<u32> {
    let keys: Vec<f64> = (0..n)
        .map(|i| {
            let k = key(i);
            if k.is_nan() { f64::INFINITY } else { k }
        })
        .collect();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| keys[a].total_cmp(&keys[b]));
    order.into_iter().map(index).collect()
}

/// A candidate index as the WIT's `u32` (a router never sees 4 billion candidates).
pub fn index(i: usize) -> u32 {
    u32::try_from(i).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::candidate;

    #[test]
    fn the_same_seed_draws_the_same_numbers_and_others_spread() {
        let a: Vec<u64> = (0..4).map(|_| SeededRng::new(7).next_u64()).collect();
        assert!(a.windows(2).all(|w| w[0] == w[1]));
        let mut hits = [0u32; 4];
        for seed in 0..4000 {
            hits[SeededRng::new(seed).below(4)] += 1;
        }
        assert!(hits.iter().all(|&h| (900..1100).contains(&h)), "{hits:?}");
        let mut r = SeededRng::new(1);
        assert!((0..1000).map(|_| r.unit()).all(|u| (0.0..1.0).contains(&u)));
        assert_eq!(SeededRng::new(1).below(0), 0);
    }

    #[test]
    fn weighted_order_follows_the_weights_and_keeps_zero_weights_last() {
        let mut firsts = [0u32; 3];
        for seed in 0..10_000 {
            let order = weighted_order(&[1, 3, 0], &mut SeededRng::new(seed));
            assert_eq!(order.len(), 3);
            assert_eq!(order[2], 2, "weight 0 is fallback only");
            firsts[order[0] as usize] += 1;
        }
        assert_eq!(firsts[2], 0);
        let share = f64::from(firsts[1]) / 10_000.0;
        assert!((0.72..0.78).contains(&share), "{share}");
        assert_eq!(weighted_order(&[0, 0], &mut SeededRng::new(3)), vec![0, 1]);
        assert!(weighted_order(&[], &mut SeededRng::new(3)).is_empty());
    }

    #[test]
    fn latency_reads_ttft_for_streams_and_nothing_before_a_call() {
        let mut c = candidate("a");
        c.stats.latency_ewma_ms = 900.0;
        c.stats.ttft_ewma_ms = 120.0;
        c.stats.requests = 3;
        assert_eq!(observed_latency_ms(&c, false), Some(900.0));
        assert_eq!(observed_latency_ms(&c, true), Some(120.0));
        c.stats.ttft_ewma_ms = f64::NAN;
        assert_eq!(observed_latency_ms(&c, true), Some(900.0));
        c.stats.requests = 0;
        assert_eq!(observed_latency_ms(&c, false), None);
    }

    #[test]
    fn open_circuits_go_last_and_sorting_keeps_ties_in_order() {
        let mut cs = vec![candidate("a"), candidate("b"), candidate("c")];
        cs[0].stats.circuit = CircuitState::Open;
        assert_eq!(open_last(vec![0, 1, 2], &cs), vec![1, 2, 0]);
        assert_eq!(
            sorted_by_key(4, |i| [2.0, 1.0, f64::NAN, 1.0][i]),
            vec![1, 3, 0, 2]
        );
    }
}
