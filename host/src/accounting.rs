//! One request's account: its admission (reservations), its ledger row and its
//! metrics, finished exactly once.
//!
//! Invariant: every authenticated model request has exactly one ledger row: `finish`
//! writes it, and a `Tally` dropped unfinished (the client hung up before the answer
//! was ready, or a panic) writes one with status 499 and code `abandoned`.

use std::sync::Arc;
use std::time::Instant;

use crate::config::Deployment;
use crate::governance::{Admission, Counted, KeyEntry, Prices, RateHeaders};
use crate::ledger::{Ledger, LedgerRow, PluginNote, StreamOutcome};
use crate::metrics::{Finished, InflightGuard, Metrics, RouteMetrics, TokenUsage};

/// How a request ended, for its row.
#[derive(Debug, Default)]
pub struct Ending<'a> {
    pub status: u16,
    pub error_code: Option<&'a str>,
    pub usage: Option<Counted>,
    /// Who answered (its prices make the cost).
    pub deployment: Option<&'a Deployment>,
    pub stream: Option<StreamOutcome>,
}

pub struct Tally {
    ledger: Arc<Ledger>,
    metrics: Arc<Metrics>,
    /// The model's pre-resolved metric handles, once the model is known.
    route: Option<Arc<RouteMetrics>>,
    _inflight: Option<InflightGuard>,
    row: LedgerRow,
    started: Instant,
    admission: Option<Admission>,
    /// Reported on every response once known (OpenAI's `x-ratelimit-*`).
    pub rate_headers: RateHeaders,
    done: bool,
}

impl Tally {
    pub fn new(
        ledger: Arc<Ledger>,
        metrics: Arc<Metrics>,
        request_id: &str,
        key: Option<&KeyEntry>,
        started: Instant,
    ) -> Tally {
        let elapsed = started.elapsed().as_millis() as i64;
        Tally {
            _inflight: Some(metrics.enter()),
            ledger,
            metrics,
            route: None,
            row: LedgerRow {
                ts_ms: crate::state::now_ms() - elapsed,
                request_id: request_id.to_owned(),
                key_name: key.map(|k| k.name.clone()),
                team: key.and_then(|k| k.team.clone()),
                ..LedgerRow::default()
            },
            started,
            admission: None,
            rate_headers: RateHeaders::default(),
            done: false,
        }
    }

    pub fn model(&mut self, name: &str, stream: bool, route: Option<Arc<RouteMetrics>>) {
        self.route = route;
        self.row.model = Some(name.to_owned());
        self.row.stream = stream;
    }

    pub fn admitted(&mut self, a: Admission) {
        self.rate_headers = a.headers;
        self.admission = Some(a);
    }

    pub fn admission(&self) -> Option<&Admission> {
        self.admission.as_ref()
    }

    /// What the pipeline did: the deployments tried and the plugins' actions.
    pub fn pipeline(&mut self, tried: Vec<String>, notes: Vec<PluginNote>) {
        self.row.tried = tried;
        self.row.plugins = notes;
    }

    pub fn first_token(&mut self) {
        if self.row.ttft_us.is_none() {
            self.row.ttft_us = Some(self.started.elapsed().as_micros() as u64);
        }
    }

    pub fn payload(&mut self, p: crate::ledger::Payload) {
        self.row.payload = Some(p);
    }

    /// Moves the account out (into a stream's pump), leaving a finished husk.
    pub fn detach(&mut self) -> Tally {
        let t = Tally {
            ledger: self.ledger.clone(),
            metrics: self.metrics.clone(),
            route: self.route.take(),
            _inflight: self._inflight.take(),
            row: std::mem::take(&mut self.row),
            started: self.started,
            admission: self.admission.take(),
            rate_headers: self.rate_headers,
            done: self.done,
        };
        self.done = true;
        t
    }

    /// Settles the reservations, writes the row and moves the metrics.
    pub fn finish(mut self, end: Ending<'_>) {
        self.close(end);
    }

    fn close(&mut self, end: Ending<'_>) {
        if self.done {
            return;
        }
        self.done = true;
        let usage = end.usage.unwrap_or_default();
        let prices = end.deployment.map(Prices::of).unwrap_or_default();
        let cost = prices.cost(u64::from(usage.prompt), u64::from(usage.completion));
        if let Some(a) = self.admission.take() {
            a.settle(usage.total(), cost);
        }
        let r = &mut self.row;
        r.deployment = end.deployment.map(|d| d.name.clone());
        r.prompt_tokens = usage.prompt;
        r.completion_tokens = usage.completion;
        r.cached_tokens = usage.cached;
        r.reasoning_tokens = usage.reasoning;
        r.tokens_estimated = usage.estimated;
        r.cost_micros = cost;
        r.latency_us = self.started.elapsed().as_micros() as u64;
        r.status = end.status;
        r.error_code = end.error_code.map(str::to_owned);
        r.stream_outcome = end.stream;
        if let Some(route) = &self.route {
            route.finished(&Finished {
                deployment: end.deployment.map(|d| d.name.as_str()),
                status: end.status,
                // OTel: no usage metric for counts the host had to estimate.
                usage: end.usage.filter(|u| !u.estimated).map(|u| TokenUsage {
                    input: u.prompt,
                    output: u.completion,
                }),
                cost_micros: (!prices.is_free()).then_some(cost.max(0) as u64),
                duration: self.started.elapsed(),
                ttft: r.ttft_us.map(std::time::Duration::from_micros),
            });
        }
        self.ledger.record(std::mem::take(&mut self.row));
    }
}

/// Where a router's shadow calls are written: the ledger, with the caller's key and team
/// (a shadow row is never billed; it sits beside the primary's row for comparison).
#[derive(Clone)]
pub struct ShadowLedger {
    pub ledger: Arc<Ledger>,
    pub key: Option<Arc<KeyEntry>>,
}

/// How a shadow call ended.
pub enum ShadowOutcome {
    Answered(Option<Counted>),
    Failed { status: u16, code: &'static str },
}

impl ShadowLedger {
    /// Writes the row of one shadow call to `d` that started at `started`.
    pub fn record(
        &self,
        request_id: &str,
        model: &str,
        d: &Deployment,
        started: Instant,
        outcome: ShadowOutcome,
    ) {
        let elapsed = started.elapsed();
        let (status, error_code, usage) = match outcome {
            ShadowOutcome::Answered(usage) => (200, None, usage.unwrap_or_default()),
            ShadowOutcome::Failed { status, code } => {
                (status, Some(code.to_owned()), Counted::default())
            }
        };
        let cost = Prices::of(d).cost(u64::from(usage.prompt), u64::from(usage.completion));
        self.ledger.record(LedgerRow {
            ts_ms: crate::state::now_ms() - elapsed.as_millis() as i64,
            request_id: request_id.to_owned(),
            key_name: self.key.as_ref().map(|k| k.name.clone()),
            team: self.key.as_ref().and_then(|k| k.team.clone()),
            model: Some(model.to_owned()),
            deployment: Some(d.name.clone()),
            tried: vec![d.name.clone()],
            prompt_tokens: usage.prompt,
            completion_tokens: usage.completion,
            cached_tokens: usage.cached,
            reasoning_tokens: usage.reasoning,
            tokens_estimated: usage.estimated,
            cost_micros: cost,
            latency_us: elapsed.as_micros() as u64,
            status,
            error_code,
            shadow: true,
            ..LedgerRow::default()
        });
    }
}

impl Drop for Tally {
    fn drop(&mut self) {
        self.close(Ending {
            status: 499,
            error_code: Some("abandoned"),
            ..Ending::default()
        });
    }
}
