//! Live per-deployment statistics, kept from real traffic and handed to routers: latency
//! and time-to-first-token EWMAs, error rate, in-flight calls, and a circuit breaker.
//!
//! Everything is an atomic so the request path never takes a lock; the values are
//! estimates, and racing updates that lose a sample are acceptable.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Weight of a new sample in the moving averages.
const ALPHA: f64 = 0.2;
/// Consecutive failures that open the circuit.
const TRIP_AFTER: u32 = 5;
/// How long an open circuit stays open before one trial call is allowed.
const COOL_DOWN: Duration = Duration::from_secs(10);

/// A circuit breaker's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Circuit {
    Closed,
    HalfOpen,
    Open,
}

/// An `f64` in an `AtomicU64`.
#[derive(Debug, Default)]
struct AtomicF64(AtomicU64);

impl AtomicF64 {
    fn get(&self) -> f64 {
        f64::from_bits(self.0.load(Ordering::Relaxed))
    }

    fn ewma(&self, sample: f64, first: bool) {
        let old = self.get();
        let new = if first {
            sample
        } else {
            old + ALPHA * (sample - old)
        };
        self.0.store(new.to_bits(), Ordering::Relaxed);
    }
}

/// One deployment's statistics.
#[derive(Debug)]
pub struct DeploymentStats {
    latency_ms: AtomicF64,
    ttft_ms: AtomicF64,
    error_rate: AtomicF64,
    in_flight: AtomicU32,
    requests: AtomicU64,
    /// Remaining share of the provider's request rate limit, from its response headers;
    /// NaN until a provider reported one.
    headroom: AtomicF64,
    consecutive_failures: AtomicU32,
    /// Milliseconds since `epoch` when the circuit opened; 0 when closed.
    opened_at_ms: AtomicU64,
    epoch: Instant,
}

/// What routers see.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StatsView {
    pub latency_ewma_ms: f64,
    pub ttft_ewma_ms: f64,
    pub error_rate: f64,
    pub in_flight: u32,
    pub requests: u64,
    pub circuit: Circuit,
    pub rate_limit_headroom: Option<f64>,
}

impl DeploymentStats {
    fn new(epoch: Instant) -> Self {
        DeploymentStats {
            latency_ms: AtomicF64::default(),
            ttft_ms: AtomicF64::default(),
            error_rate: AtomicF64::default(),
            in_flight: AtomicU32::new(0),
            requests: AtomicU64::new(0),
            headroom: AtomicF64(AtomicU64::new(f64::NAN.to_bits())),
            consecutive_failures: AtomicU32::new(0),
            opened_at_ms: AtomicU64::new(0),
            epoch,
        }
    }

    pub fn view(&self) -> StatsView {
        StatsView {
            latency_ewma_ms: self.latency_ms.get(),
            ttft_ewma_ms: self.ttft_ms.get(),
            error_rate: self.error_rate.get(),
            in_flight: self.in_flight.load(Ordering::Relaxed),
            requests: self.requests.load(Ordering::Relaxed),
            circuit: self.circuit(),
            rate_limit_headroom: Some(self.headroom.get()).filter(|h| !h.is_nan()),
        }
    }

    /// Records the rate-limit headroom a provider reported (`remaining / limit`).
    pub fn record_headroom(&self, remaining: f64, limit: f64) {
        if limit > 0.0 && remaining >= 0.0 {
            self.headroom
                .0
                .store((remaining / limit).min(1.0).to_bits(), Ordering::Relaxed);
        }
    }

    /// Closed; open for `COOL_DOWN` after `TRIP_AFTER` consecutive failures; then
    /// half-open while no call is in flight, so one trial call at a time goes through
    /// (the others see it open and try it last) until one succeeds or fails.
    pub fn circuit(&self) -> Circuit {
        let opened = self.opened_at_ms.load(Ordering::Relaxed);
        if opened == 0 {
            return Circuit::Closed;
        }
        let now = self.epoch.elapsed().as_millis() as u64;
        let cooled = now.saturating_sub(opened) >= COOL_DOWN.as_millis() as u64;
        if cooled && self.in_flight.load(Ordering::Relaxed) == 0 {
            Circuit::HalfOpen
        } else {
            Circuit::Open
        }
    }

    /// Marks a call as started; the guard records the outcome.
    pub fn start(self: &Arc<Self>) -> CallGuard {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        CallGuard {
            stats: self.clone(),
            started: Instant::now(),
        }
    }

    fn record(&self, ok: bool, latency: Duration) {
        let first = self.requests.fetch_add(1, Ordering::Relaxed) == 0;
        self.error_rate.ewma(if ok { 0.0 } else { 1.0 }, first);
        if ok {
            self.latency_ms
                .ewma(latency.as_secs_f64() * 1000.0, self.latency_ms.get() == 0.0);
            self.consecutive_failures.store(0, Ordering::Relaxed);
            self.opened_at_ms.store(0, Ordering::Relaxed);
        } else {
            let n = self.consecutive_failures.fetch_add(1, Ordering::Relaxed) + 1;
            if n >= TRIP_AFTER {
                // Re-opening from half-open restarts the cool-down.
                let now = (self.epoch.elapsed().as_millis() as u64).max(1);
                self.opened_at_ms.store(now, Ordering::Relaxed);
            }
        }
    }
}

/// Records one call's outcome when finished; a call dropped without an outcome (client
/// went away) only leaves the in-flight count.
pub struct CallGuard {
    stats: Arc<DeploymentStats>,
    started: Instant,
}

impl CallGuard {
    /// The first byte of a stream arrived.
    pub fn first_byte(&self) {
        let ms = self.started.elapsed().as_secs_f64() * 1000.0;
        self.stats.ttft_ms.ewma(ms, self.stats.ttft_ms.get() == 0.0);
    }

    pub fn succeeded(self) {
        self.stats.record(true, self.started.elapsed());
    }

    pub fn failed(self) {
        self.stats.record(false, self.started.elapsed());
    }
}

impl Drop for CallGuard {
    fn drop(&mut self) {
        self.stats.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Statistics for every deployment, by name. Built once per config generation; entries
/// for deployments that survive a reload are carried over.
#[derive(Debug)]
pub struct Stats {
    by_name: HashMap<String, Arc<DeploymentStats>>,
    /// Stands in for a name outside this generation. Cannot happen for a deployment of
    /// the generation's own config (every one has an entry); this keeps the call path
    /// free of an "impossible" error branch.
    detached: Arc<DeploymentStats>,
}

impl Default for Stats {
    fn default() -> Self {
        Stats::carry_over(None, std::iter::empty())
    }
}

impl Stats {
    /// Statistics for `names`, reusing the entries of `previous` where names match.
    pub fn carry_over<'a>(previous: Option<&Stats>, names: impl Iterator<Item = &'a str>) -> Stats {
        let epoch = Instant::now();
        let by_name = names
            .map(|n| {
                let s = previous
                    .and_then(|p| p.by_name.get(n).cloned())
                    .unwrap_or_else(|| Arc::new(DeploymentStats::new(epoch)));
                (n.to_owned(), s)
            })
            .collect();
        Stats {
            by_name,
            detached: Arc::new(DeploymentStats::new(epoch)),
        }
    }

    pub fn get(&self, name: &str) -> Option<&Arc<DeploymentStats>> {
        self.by_name.get(name)
    }

    /// Starts timing a call to deployment `name`.
    pub fn start(&self, name: &str) -> CallGuard {
        self.by_name.get(name).unwrap_or(&self.detached).start()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_trip_the_circuit_and_a_success_closes_it() {
        let s = Arc::new(DeploymentStats::new(Instant::now()));
        for _ in 0..TRIP_AFTER {
            assert_eq!(s.circuit(), Circuit::Closed);
            s.start().failed();
        }
        assert_eq!(s.circuit(), Circuit::Open);
        assert!(s.view().error_rate > 0.5);
        s.start().succeeded();
        assert_eq!(s.circuit(), Circuit::Closed);
        assert_eq!(s.view().in_flight, 0);
        assert_eq!(s.view().requests, TRIP_AFTER as u64 + 1);
    }

    #[test]
    fn a_cooled_circuit_lets_one_trial_call_through_at_a_time() {
        let past = Instant::now()
            .checked_sub(COOL_DOWN * 2)
            .expect("a monotonic clock that started a while ago");
        let s = Arc::new(DeploymentStats::new(past));
        for _ in 0..TRIP_AFTER {
            s.start().failed();
        }
        // Tripped "at the epoch", two cool-downs ago.
        s.opened_at_ms.store(1, Ordering::Relaxed);
        assert_eq!(s.circuit(), Circuit::HalfOpen);
        let trial = s.start();
        assert_eq!(s.circuit(), Circuit::Open, "one trial at a time");
        trial.succeeded();
        assert_eq!(s.circuit(), Circuit::Closed);
    }

    #[test]
    fn headroom_is_unknown_until_reported() {
        let s = DeploymentStats::new(Instant::now());
        assert_eq!(s.view().rate_limit_headroom, None);
        s.record_headroom(25.0, 100.0);
        assert_eq!(s.view().rate_limit_headroom, Some(0.25));
    }

    #[test]
    fn in_flight_counts_live_calls_and_latency_averages() {
        let s = Arc::new(DeploymentStats::new(Instant::now()));
        let a = s.start();
        let b = s.start();
        assert_eq!(s.view().in_flight, 2);
        drop(a);
        b.succeeded();
        assert_eq!(s.view().in_flight, 0);
        let s = DeploymentStats::new(Instant::now());
        s.record(true, Duration::from_millis(100));
        assert_eq!(
            s.view().latency_ewma_ms,
            100.0,
            "the first sample sets the average"
        );
        s.record(true, Duration::from_millis(200));
        let avg = s.view().latency_ewma_ms;
        assert!(
            avg > 100.0 && avg < 200.0,
            "moves towards new samples: {avg}"
        );
        s.record(false, Duration::from_secs(60));
        assert_eq!(
            s.view().latency_ewma_ms,
            avg,
            "failures do not count as latency"
        );
    }
}
