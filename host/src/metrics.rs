//! Prometheus metrics: one [`Metrics`] per process, rendered by [`Metrics::encode`] in the
//! Prometheus text format 0.0.4 ([`CONTENT_TYPE`]).
//!
//! The request path touches only atomics. `Family::get_or_create` takes the family's lock,
//! so callers resolve handles once, when config or plugins load ([`Metrics::route`],
//! [`Metrics::plugin`], [`Metrics::circuit`]), keep them, and update them per request.
//! Histograms are this module's [`AtomicHistogram`] rather than the crate's, whose
//! `observe` takes a mutex.
//!
//! Names follow the OpenTelemetry GenAI semantic conventions where one exists (rendered
//! the Prometheus way, as Envoy AI Gateway does) and use the `switchyard_` prefix
//! otherwise. Label values come only from config names and fixed enums, never from keys,
//! requests or error text, so the number of series is bounded by the config.
//!
//! Choices: `gen_ai_client_operation_duration_seconds` carries `error_type`, empty on
//! success (Prometheus treats an empty label as absent, which is OTel's "only on error")
//! and the status class (`4xx`, `5xx`) otherwise, so success latency can be read apart
//! from fast failures. Cost is `switchyard_cost_usd_micros_total`: integer millionths of a
//! dollar, so sums are exact.
//!
//! Series for names a reload removes stay (at their last value) until the process
//! restarts; they stop moving, and the config's names bound them.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeLabelSet, EncodeMetric, MetricEncoder, NoLabelSet,
};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::exemplar::Exemplar;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::info::Info;
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::{Registry, Unit};

use crate::plugins::PluginKind;
use crate::sandbox::Fault;
use crate::stats::Circuit;

/// The `Content-Type` of [`Metrics::encode`]'s output.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Token counts: the OTel-recommended buckets, 1 to 64 Mi in steps of ×4.
const TOKEN_BUCKETS: &[f64] = &[
    1.0, 4.0, 16.0, 64.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0, 262144.0, 1048576.0, 4194304.0,
    16777216.0, 67108864.0,
];
/// Durations of provider calls: the OTel-recommended buckets, 10 ms to 81.92 s in steps of ×2.
const DURATION_BUCKETS: &[f64] = &[
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
];
/// The gateway's own time and plugin calls: 50 µs to 102.4 ms in steps of ×2.
const OVERHEAD_BUCKETS: &[f64] = &[
    0.00005, 0.0001, 0.0002, 0.0004, 0.0008, 0.0016, 0.0032, 0.0064, 0.0128, 0.0256, 0.0512, 0.1024,
];

/// The only GenAI operation the gateway serves today.
const OPERATION_CHAT: &str = "chat";

/// A histogram with fixed buckets whose `observe` is lock-free: one bucket increment and a
/// compare-and-swap on the sum. Clones share state, like the crate's metrics.
///
/// A scrape racing an observation may see the bucket before the sum; `_count` is the
/// buckets' total, so it always matches the `+Inf` bucket.
#[derive(Debug, Clone)]
pub struct AtomicHistogram(Arc<HistogramInner>);

#[derive(Debug)]
struct HistogramInner {
    /// Upper bounds, ascending, without `+Inf`.
    bounds: &'static [f64],
    /// Per-bucket (not cumulative) counts; the last is `+Inf`.
    counts: Box<[AtomicU64]>,
    /// The sum's `f64` bits.
    sum: AtomicU64,
}

impl AtomicHistogram {
    fn new(bounds: &'static [f64]) -> Self {
        AtomicHistogram(Arc::new(HistogramInner {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicU64::new(0f64.to_bits()),
        }))
    }

    fn tokens() -> Self {
        Self::new(TOKEN_BUCKETS)
    }

    fn durations() -> Self {
        Self::new(DURATION_BUCKETS)
    }

    fn overheads() -> Self {
        Self::new(OVERHEAD_BUCKETS)
    }

    /// Records one observation.
    pub fn observe(&self, v: f64) {
        let inner = &*self.0;
        let bucket = inner.bounds.partition_point(|bound| *bound < v);
        if let Some(count) = inner.counts.get(bucket) {
            count.fetch_add(1, Ordering::Relaxed);
        }
        let _ = inner
            .sum
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                Some((f64::from_bits(bits) + v).to_bits())
            });
    }

    fn observe_duration(&self, d: Duration) {
        self.observe(d.as_secs_f64());
    }
}

impl TypedMetric for AtomicHistogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for AtomicHistogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let inner = &*self.0;
        let buckets: Vec<(f64, u64)> = inner
            .bounds
            .iter()
            .copied()
            .chain([f64::INFINITY])
            .zip(inner.counts.iter().map(|c| c.load(Ordering::Relaxed)))
            .collect();
        let count = buckets.iter().map(|(_, n)| n).sum();
        let sum = f64::from_bits(inner.sum.load(Ordering::Relaxed));
        encoder.encode_histogram::<NoLabelSet>(
            sum,
            count,
            &buckets,
            None::<&HashMap<usize, Exemplar<NoLabelSet, f64>>>,
        )
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

type HistogramFamily<L> = Family<L, AtomicHistogram, fn() -> AtomicHistogram>;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TokenLabels {
    gen_ai_operation_name: &'static str,
    gen_ai_request_model: String,
    gen_ai_provider_name: String,
    gen_ai_token_type: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    gen_ai_operation_name: &'static str,
    gen_ai_request_model: String,
    gen_ai_provider_name: String,
    error_type: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GenAiLabels {
    gen_ai_operation_name: &'static str,
    gen_ai_request_model: String,
    gen_ai_provider_name: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    model: String,
    deployment: String,
    status_class: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ModelDeploymentLabels {
    model: String,
    deployment: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeploymentLabels {
    deployment: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PluginLabels {
    plugin: String,
    kind: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PluginFaultLabels {
    plugin: String,
    kind: &'static str,
    fault: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

/// Response status classes, as label values and array indices.
const STATUS_CLASSES: [&str; 3] = ["2xx", "4xx", "5xx"];

/// Index into [`STATUS_CLASSES`]: the gateway answers success with 2xx only, so anything
/// below 400 counts as 2xx, and anything from 500 (or nonsense) as 5xx.
fn status_class(status: u16) -> usize {
    match status {
        0..400 => 0,
        400..500 => 1,
        _ => 2,
    }
}

/// How a plugin call faulted: a fixed set, so raw error text never becomes a label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    Trap,
    Timeout,
    Memory,
    /// The plugin returned output the host rejected (too large, malformed).
    Output,
    Other,
}

impl FaultKind {
    const ALL: [FaultKind; 5] = [
        FaultKind::Trap,
        FaultKind::Timeout,
        FaultKind::Memory,
        FaultKind::Output,
        FaultKind::Other,
    ];

    fn label(self) -> &'static str {
        match self {
            FaultKind::Trap => "trap",
            FaultKind::Timeout => "timeout",
            FaultKind::Memory => "memory",
            FaultKind::Output => "output",
            FaultKind::Other => "other",
        }
    }
}

impl From<&Fault> for FaultKind {
    fn from(fault: &Fault) -> Self {
        match fault {
            Fault::Deadline { .. } => FaultKind::Timeout,
            Fault::MemoryLimit { .. } => FaultKind::Memory,
            Fault::Trap { .. } => FaultKind::Trap,
            Fault::Instantiate { .. } | Fault::Poisoned { .. } => FaultKind::Other,
        }
    }
}

/// Why a request was refused before reaching a provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DenyKind {
    /// Requests per minute.
    Rpm,
    /// Tokens per minute.
    Tpm,
    Budget,
    /// The key may not use the model asked for (`model_not_allowed`).
    Model,
}

impl DenyKind {
    const ALL: [DenyKind; 4] = [
        DenyKind::Rpm,
        DenyKind::Tpm,
        DenyKind::Budget,
        DenyKind::Model,
    ];

    fn label(self) -> &'static str {
        match self {
            DenyKind::Rpm => "rpm",
            DenyKind::Tpm => "tpm",
            DenyKind::Budget => "budget",
            DenyKind::Model => "model",
        }
    }
}

/// The ledger's own counters, copied in by [`Metrics::set_ledger`] and rendered as
/// constant metrics: the ledger is their source of truth, and a `Counter` can only add.
#[derive(Debug, Default)]
struct LedgerCollector {
    /// False until the first `set_ledger`, so a gateway without a ledger shows none.
    seen: AtomicBool,
    queued: AtomicI64,
    written: AtomicU64,
    dropped: AtomicU64,
}

impl Collector for LedgerCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        if !self.seen.load(Ordering::Acquire) {
            return Ok(());
        }
        let queued = ConstGauge::new(self.queued.load(Ordering::Relaxed));
        queued.encode(encoder.encode_descriptor(
            "switchyard_ledger_queue_depth",
            "Usage rows waiting to be written to the ledger.",
            None,
            queued.metric_type(),
        )?)?;
        let written = ConstCounter::new(self.written.load(Ordering::Relaxed));
        written.encode(encoder.encode_descriptor(
            "switchyard_ledger_rows_written",
            "Usage rows written to the ledger.",
            None,
            written.metric_type(),
        )?)?;
        let dropped = ConstCounter::new(self.dropped.load(Ordering::Relaxed));
        dropped.encode(encoder.encode_descriptor(
            "switchyard_ledger_rows_dropped",
            "Usage rows dropped because the ledger queue was full or a write failed.",
            None,
            dropped.metric_type(),
        )?)
    }
}

/// Every metric family, registered once; shared as `Arc<Metrics>`.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    token_usage: HistogramFamily<TokenLabels>,
    operation_duration: HistogramFamily<OperationLabels>,
    ttft: HistogramFamily<GenAiLabels>,
    requests: Family<RequestLabels, Counter>,
    cost: Family<ModelDeploymentLabels, Counter>,
    unpriced: Family<DeploymentLabels, Counter>,
    plugin_duration: HistogramFamily<PluginLabels>,
    plugin_faults: Family<PluginFaultLabels, Counter>,
    plugin_instances: Family<PluginLabels, Counter>,
    circuit: Family<DeploymentLabels, Gauge>,
    overhead: AtomicHistogram,
    inflight: Gauge,
    /// Indexed by `applied as usize`: rejected, applied.
    config_reloads: [Counter; 2],
    plugin_reloads: [Counter; 2],
    /// Indexed like [`DenyKind::ALL`].
    denied: [Counter; 4],
    auth_failures: Counter,
    ledger: Arc<LedgerCollector>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let token_usage = HistogramFamily::<TokenLabels>::new_with_constructor(
            AtomicHistogram::tokens as fn() -> AtomicHistogram,
        );
        registry.register(
            "gen_ai_client_token_usage",
            "Tokens per provider call, by token type (OTel gen_ai.client.token.usage)",
            token_usage.clone(),
        );
        let operation_duration = HistogramFamily::<OperationLabels>::new_with_constructor(
            AtomicHistogram::durations as fn() -> AtomicHistogram,
        );
        registry.register_with_unit(
            "gen_ai_client_operation_duration",
            "Duration of a request answered by a provider, error_type empty on success \
             (OTel gen_ai.client.operation.duration)",
            Unit::Seconds,
            operation_duration.clone(),
        );
        let ttft = HistogramFamily::<GenAiLabels>::new_with_constructor(
            AtomicHistogram::durations as fn() -> AtomicHistogram,
        );
        registry.register_with_unit(
            "gen_ai_server_time_to_first_token",
            "Time to the first streamed token (OTel gen_ai.server.time_to_first_token)",
            Unit::Seconds,
            ttft.clone(),
        );
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "switchyard_requests",
            "Requests finished, by public model, answering deployment and status class",
            requests.clone(),
        );
        let cost = Family::<ModelDeploymentLabels, Counter>::default();
        registry.register(
            "switchyard_cost_usd_micros",
            "Cost of requests in millionths of a US dollar",
            cost.clone(),
        );
        let unpriced = Family::<DeploymentLabels, Counter>::default();
        registry.register(
            "switchyard_unpriced_requests",
            "Requests served by a deployment with no price configured, so absent from cost",
            unpriced.clone(),
        );
        let overhead = AtomicHistogram::overheads();
        registry.register_with_unit(
            "switchyard_overhead",
            "The gateway's own time per request, upstream time excluded",
            Unit::Seconds,
            overhead.clone(),
        );
        let plugin_duration = HistogramFamily::<PluginLabels>::new_with_constructor(
            AtomicHistogram::overheads as fn() -> AtomicHistogram,
        );
        registry.register_with_unit(
            "switchyard_plugin_call_duration",
            "Duration of one plugin call",
            Unit::Seconds,
            plugin_duration.clone(),
        );
        let plugin_faults = Family::<PluginFaultLabels, Counter>::default();
        registry.register(
            "switchyard_plugin_faults",
            "Plugin calls that faulted, by fault",
            plugin_faults.clone(),
        );
        let plugin_instances = Family::<PluginLabels, Counter>::default();
        registry.register(
            "switchyard_plugin_instances_created",
            "Plugin instances created: one per request per plugin, fewer in warm mode",
            plugin_instances.clone(),
        );
        let circuit = Family::<DeploymentLabels, Gauge>::default();
        registry.register(
            "switchyard_circuit_state",
            "Circuit breaker state per deployment: 0 closed, 1 half-open, 2 open",
            circuit.clone(),
        );
        let inflight = Gauge::default();
        registry.register(
            "switchyard_inflight_requests",
            "Requests being served",
            inflight.clone(),
        );
        let results = |name: &str, help: &str, registry: &mut Registry| {
            let family = Family::<ResultLabels, Counter>::default();
            registry.register(name, help, family.clone());
            ["rejected", "applied"]
                .map(|result| family.get_or_create_owned(&ResultLabels { result }))
        };
        let config_reloads = results(
            "switchyard_config_reloads",
            "Config reloads, applied or rejected",
            &mut registry,
        );
        let plugin_reloads = results(
            "switchyard_plugin_reloads",
            "Plugin reloads, applied or rejected",
            &mut registry,
        );
        let denials = Family::<KindLabels, Counter>::default();
        registry.register(
            "switchyard_rate_limited",
            "Requests refused by a key's limits, by reason",
            denials.clone(),
        );
        let denied = DenyKind::ALL
            .map(|kind| denials.get_or_create_owned(&KindLabels { kind: kind.label() }));
        let auth_failures = Counter::default();
        registry.register(
            "switchyard_auth_failures",
            "Requests refused for a missing or unknown key",
            auth_failures.clone(),
        );
        registry.register(
            "switchyard_build",
            "The running build",
            Info::new([("version", env!("CARGO_PKG_VERSION"))]),
        );
        let ledger = Arc::new(LedgerCollector::default());
        registry.register_collector(Box::new(ledger.clone()));
        Metrics {
            registry,
            token_usage,
            operation_duration,
            ttft,
            requests,
            cost,
            unpriced,
            plugin_duration,
            plugin_faults,
            plugin_instances,
            circuit,
            overhead,
            inflight,
            config_reloads,
            plugin_reloads,
            denied,
            auth_failures,
            ledger,
        }
    }

    /// Renders every metric in the Prometheus text format 0.0.4 ([`CONTENT_TYPE`]).
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(16 * 1024);
        // Writing into a `String` cannot fail.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry);
        out
    }

    /// Handles for one public model and its deployments, given as `(deployment, adapter)`;
    /// the adapter's name is the `gen_ai_provider_name`. Build at config load.
    pub fn route(&self, model: &str, deployments: &[(&str, &str)]) -> RouteMetrics {
        let requests = |deployment: &str| {
            STATUS_CLASSES.map(|status_class| {
                self.requests.get_or_create_owned(&RequestLabels {
                    model: model.to_owned(),
                    deployment: deployment.to_owned(),
                    status_class,
                })
            })
        };
        let deployments = deployments
            .iter()
            .map(|&(deployment, provider)| {
                let tokens = |gen_ai_token_type| {
                    self.token_usage.get_or_create_owned(&TokenLabels {
                        gen_ai_operation_name: OPERATION_CHAT,
                        gen_ai_request_model: model.to_owned(),
                        gen_ai_provider_name: provider.to_owned(),
                        gen_ai_token_type,
                    })
                };
                let handles = DeploymentMetrics {
                    requests: requests(deployment),
                    cost: self.cost.get_or_create_owned(&ModelDeploymentLabels {
                        model: model.to_owned(),
                        deployment: deployment.to_owned(),
                    }),
                    unpriced: self.unpriced.get_or_create_owned(&DeploymentLabels {
                        deployment: deployment.to_owned(),
                    }),
                    input_tokens: tokens("input"),
                    output_tokens: tokens("output"),
                    duration: ["", "4xx", "5xx"].map(|error_type| {
                        self.operation_duration
                            .get_or_create_owned(&OperationLabels {
                                gen_ai_operation_name: OPERATION_CHAT,
                                gen_ai_request_model: model.to_owned(),
                                gen_ai_provider_name: provider.to_owned(),
                                error_type,
                            })
                    }),
                    ttft: self.ttft.get_or_create_owned(&GenAiLabels {
                        gen_ai_operation_name: OPERATION_CHAT,
                        gen_ai_request_model: model.to_owned(),
                        gen_ai_provider_name: provider.to_owned(),
                    }),
                };
                (Box::<str>::from(deployment), handles)
            })
            .collect();
        RouteMetrics {
            unanswered: requests(""),
            deployments,
        }
    }

    /// Handles for one plugin. Build at plugin load.
    pub fn plugin(&self, plugin: &str, kind: PluginKind) -> PluginMetrics {
        let kind = kind.interface();
        PluginMetrics {
            duration: self.plugin_duration.get_or_create_owned(&PluginLabels {
                plugin: plugin.to_owned(),
                kind,
            }),
            faults: FaultKind::ALL.map(|fault| {
                self.plugin_faults.get_or_create_owned(&PluginFaultLabels {
                    plugin: plugin.to_owned(),
                    kind,
                    fault: fault.label(),
                })
            }),
            instances: self.plugin_instances.get_or_create_owned(&PluginLabels {
                plugin: plugin.to_owned(),
                kind,
            }),
        }
    }

    /// The circuit-state gauge of one deployment. Build at config load.
    pub fn circuit(&self, deployment: &str) -> CircuitGauge {
        CircuitGauge(self.circuit.get_or_create_owned(&DeploymentLabels {
            deployment: deployment.to_owned(),
        }))
    }

    pub fn config_reload(&self, applied: bool) {
        self.config_reloads[usize::from(applied)].inc();
    }

    pub fn plugin_reload(&self, applied: bool) {
        self.plugin_reloads[usize::from(applied)].inc();
    }

    /// Counts a request as in flight until the guard drops.
    pub fn enter(&self) -> InflightGuard {
        self.inflight.inc();
        InflightGuard(self.inflight.clone())
    }

    pub fn denied(&self, kind: DenyKind) {
        self.denied[kind as usize].inc();
    }

    pub fn auth_failure(&self) {
        self.auth_failures.inc();
    }

    /// Records the gateway's own time for one request, upstream time excluded.
    pub fn overhead(&self, d: Duration) {
        self.overhead.observe_duration(d);
    }

    /// Copies the ledger's counters in; call right before [`Metrics::encode`].
    pub fn set_ledger(&self, queued: i64, written: u64, dropped: u64) {
        self.ledger.queued.store(queued, Ordering::Relaxed);
        self.ledger.written.store(written, Ordering::Relaxed);
        self.ledger.dropped.store(dropped, Ordering::Relaxed);
        self.ledger.seen.store(true, Ordering::Release);
    }
}

/// Token counts a provider reported for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenUsage {
    pub input: u32,
    pub output: u32,
}

/// How one request ended, for [`RouteMetrics::finished`].
#[derive(Debug, Clone, Copy)]
pub struct Finished<'a> {
    /// The deployment that answered; `None` when none did (refused, or every attempt failed
    /// before a response).
    pub deployment: Option<&'a str>,
    /// The status the client got.
    pub status: u16,
    /// `None` when the provider reported none: OTel says not to report usage then.
    pub usage: Option<TokenUsage>,
    /// Cost in millionths of a US dollar; `None` when the deployment has no price.
    pub cost_micros: Option<u64>,
    /// Whole request, as the client saw it.
    pub duration: Duration,
    /// Time to the first streamed token; `None` when not streamed.
    pub ttft: Option<Duration>,
}

#[derive(Debug)]
struct DeploymentMetrics {
    /// Indexed like [`STATUS_CLASSES`].
    requests: [Counter; 3],
    cost: Counter,
    unpriced: Counter,
    input_tokens: AtomicHistogram,
    output_tokens: AtomicHistogram,
    /// Indexed like [`STATUS_CLASSES`]; the 2xx one has `error_type=""`.
    duration: [AtomicHistogram; 3],
    ttft: AtomicHistogram,
}

/// Pre-resolved handles for one public model, from [`Metrics::route`].
#[derive(Debug)]
pub struct RouteMetrics {
    /// `deployment=""`: requests no deployment answered.
    unanswered: [Counter; 3],
    /// A handful per model, so a linear scan beats hashing.
    deployments: Vec<(Box<str>, DeploymentMetrics)>,
}

impl RouteMetrics {
    /// Records one finished request: atomics only, no allocation, no lock.
    ///
    /// The GenAI histograms describe a provider call, so they move only when a deployment
    /// answered; a deployment this route was not built with counts as none.
    /// `switchyard_unpriced_requests_total` counts successful requests without a price.
    pub fn finished(&self, done: &Finished<'_>) {
        let class = status_class(done.status);
        let answered = done.deployment.and_then(|name| {
            self.deployments
                .iter()
                .find(|(d, _)| **d == *name)
                .map(|(_, m)| m)
        });
        let Some(m) = answered else {
            self.unanswered[class].inc();
            return;
        };
        m.requests[class].inc();
        m.duration[class].observe_duration(done.duration);
        if let Some(ttft) = done.ttft {
            m.ttft.observe_duration(ttft);
        }
        if let Some(usage) = done.usage {
            m.input_tokens.observe(f64::from(usage.input));
            m.output_tokens.observe(f64::from(usage.output));
        }
        match done.cost_micros {
            Some(micros) => {
                m.cost.inc_by(micros);
            }
            None if class == 0 => {
                m.unpriced.inc();
            }
            None => {}
        }
    }
}

/// Pre-resolved handles for one plugin, from [`Metrics::plugin`].
#[derive(Debug, Clone)]
pub struct PluginMetrics {
    duration: AtomicHistogram,
    /// Indexed like [`FaultKind::ALL`].
    faults: [Counter; 5],
    instances: Counter,
}

impl PluginMetrics {
    /// Records one call's duration, faulted or not.
    pub fn call(&self, d: Duration) {
        self.duration.observe_duration(d);
    }

    pub fn fault(&self, fault: FaultKind) {
        self.faults[fault as usize].inc();
    }

    /// Counts a new instance (fresh, or a warm pool's new member).
    pub fn instance_created(&self) {
        self.instances.inc();
    }
}

/// One deployment's `switchyard_circuit_state`, from [`Metrics::circuit`].
#[derive(Debug, Clone)]
pub struct CircuitGauge(Gauge);

impl CircuitGauge {
    /// 0 closed, 1 half-open, 2 open: ordered by how unavailable the deployment is, so
    /// `max()` across deployments means something.
    pub fn set(&self, state: Circuit) {
        self.0.set(match state {
            Circuit::Closed => 0,
            Circuit::HalfOpen => 1,
            Circuit::Open => 2,
        });
    }
}

/// Decrements `switchyard_inflight_requests` on drop; from [`Metrics::enter`].
#[derive(Debug)]
pub struct InflightGuard(Gauge);

impl Drop for InflightGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, HashSet};

    /// One sample: name, labels in order, value.
    #[derive(Debug, PartialEq)]
    struct Sample {
        name: String,
        labels: Vec<(String, String)>,
        value: String,
    }

    /// Parses the exposition and checks its shape: every sample belongs to the family
    /// declared by the last `# TYPE` line (by name and suffix), every family has samples,
    /// and no series appears twice.
    fn parse(text: &str) -> Vec<Sample> {
        let mut samples = Vec::new();
        let mut family: Option<(String, String)> = None;
        let mut seen_in_family = true;
        let mut series = HashSet::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                assert!(seen_in_family, "family before `{line}` has no samples");
                let (name, kind) = rest.split_once(' ').expect("TYPE has a kind");
                family = Some((name.to_owned(), kind.to_owned()));
                seen_in_family = false;
                continue;
            }
            if line.starts_with('#') || line.is_empty() {
                continue;
            }
            let (series_id, value) = line.rsplit_once(' ').expect("sample has a value");
            assert!(
                series.insert(series_id.to_owned()),
                "duplicate: {series_id}"
            );
            let (name, labels) = match series_id.split_once('{') {
                Some((name, rest)) => {
                    let body = rest.strip_suffix('}').expect("labels close");
                    (name, parse_labels(body))
                }
                None => (series_id, Vec::new()),
            };
            let (family_name, kind) = family.as_ref().expect("sample after a TYPE");
            let suffixes: &[&str] = match kind.as_str() {
                "histogram" => &["_bucket", "_sum", "_count"],
                _ => &[""],
            };
            assert!(
                suffixes
                    .iter()
                    .any(|s| name.strip_suffix(s) == Some(family_name.as_str())),
                "sample {name} outside family {family_name}"
            );
            seen_in_family = true;
            value.parse::<f64>().expect("numeric value");
            samples.push(Sample {
                name: name.to_owned(),
                labels,
                value: value.to_owned(),
            });
        }
        assert!(seen_in_family, "last family has no samples");
        samples
    }

    /// `a="x",b="y"`; the values here never contain `",`.
    fn parse_labels(body: &str) -> Vec<(String, String)> {
        body.split("\",")
            .filter(|p| !p.is_empty())
            .map(|pair| {
                let (k, v) = pair.split_once("=\"").expect("label is k=\"v\"");
                (k.to_owned(), v.trim_end_matches('"').to_owned())
            })
            .collect()
    }

    fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<String> {
        let want: Vec<(String, String)> = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let found: Vec<&Sample> = samples
            .iter()
            .filter(|s| s.name == name && s.labels == want)
            .collect();
        assert!(found.len() <= 1, "{name} {labels:?} twice");
        found.first().map(|s| s.value.clone())
    }

    fn finished<'a>(deployment: Option<&'a str>, status: u16) -> Finished<'a> {
        Finished {
            deployment,
            status,
            usage: Some(TokenUsage {
                input: 10,
                output: 100,
            }),
            cost_micros: Some(250),
            duration: Duration::from_millis(300),
            ttft: Some(Duration::from_millis(50)),
        }
    }

    #[test]
    fn finished_requests_render_with_exact_labels() {
        let metrics = Metrics::new();
        let route = metrics.route("gpt", &[("east", "openai"), ("west", "anthropic")]);
        route.finished(&finished(Some("east"), 200));
        route.finished(&finished(Some("east"), 200));
        route.finished(&Finished {
            usage: None,
            cost_micros: None,
            ttft: None,
            ..finished(Some("west"), 503)
        });
        route.finished(&Finished {
            cost_micros: None,
            ..finished(Some("west"), 200)
        });
        route.finished(&finished(None, 429));
        let samples = parse(&metrics.encode());
        let v = |name: &str, labels: &[(&str, &str)]| value(&samples, name, labels);

        let req = |d: &str, c: &str| {
            v(
                "switchyard_requests_total",
                &[("model", "gpt"), ("deployment", d), ("status_class", c)],
            )
        };
        assert_eq!(req("east", "2xx").as_deref(), Some("2"));
        assert_eq!(req("west", "5xx").as_deref(), Some("1"));
        assert_eq!(req("west", "2xx").as_deref(), Some("1"));
        assert_eq!(req("", "4xx").as_deref(), Some("1"));
        assert_eq!(req("east", "5xx").as_deref(), Some("0"));

        let tokens = |provider: &str, kind: &str, suffix: &str| {
            v(
                &format!("gen_ai_client_token_usage{suffix}"),
                &[
                    ("gen_ai_operation_name", "chat"),
                    ("gen_ai_request_model", "gpt"),
                    ("gen_ai_provider_name", provider),
                    ("gen_ai_token_type", kind),
                ],
            )
        };
        assert_eq!(tokens("openai", "input", "_count").as_deref(), Some("2"));
        assert_eq!(tokens("openai", "input", "_sum").as_deref(), Some("20.0"));
        assert_eq!(tokens("openai", "output", "_sum").as_deref(), Some("200.0"));
        // The failed west call reported no usage; the successful one did.
        assert_eq!(tokens("anthropic", "input", "_count").as_deref(), Some("1"));
        let bucket = |le: &str| {
            v(
                "gen_ai_client_token_usage_bucket",
                &[
                    ("gen_ai_operation_name", "chat"),
                    ("gen_ai_request_model", "gpt"),
                    ("gen_ai_provider_name", "openai"),
                    ("gen_ai_token_type", "output"),
                    ("le", le),
                ],
            )
        };
        assert_eq!(bucket("64").as_deref(), Some("0"));
        assert_eq!(bucket("256").as_deref(), Some("2"));
        assert_eq!(bucket("+Inf").as_deref(), Some("2"));
        // `le` is formatted as Go clients do, so series match theirs.
        assert_eq!(bucket("6.7108864e+07").as_deref(), Some("2"));

        let duration = |provider: &str, error: &str| {
            v(
                "gen_ai_client_operation_duration_seconds_count",
                &[
                    ("gen_ai_operation_name", "chat"),
                    ("gen_ai_request_model", "gpt"),
                    ("gen_ai_provider_name", provider),
                    ("error_type", error),
                ],
            )
        };
        assert_eq!(duration("openai", "").as_deref(), Some("2"));
        assert_eq!(duration("anthropic", "5xx").as_deref(), Some("1"));
        assert_eq!(
            v(
                "gen_ai_server_time_to_first_token_seconds_sum",
                &[
                    ("gen_ai_operation_name", "chat"),
                    ("gen_ai_request_model", "gpt"),
                    ("gen_ai_provider_name", "openai"),
                ],
            )
            .as_deref(),
            Some("0.1")
        );

        let cost = |d: &str| {
            v(
                "switchyard_cost_usd_micros_total",
                &[("model", "gpt"), ("deployment", d)],
            )
        };
        assert_eq!(cost("east").as_deref(), Some("500"));
        assert_eq!(cost("west").as_deref(), Some("0"));
        // Only the successful unpriced request counts.
        assert_eq!(
            v(
                "switchyard_unpriced_requests_total",
                &[("deployment", "west")]
            )
            .as_deref(),
            Some("1")
        );
        assert_eq!(
            v(
                "switchyard_build_info",
                &[("version", env!("CARGO_PKG_VERSION"))]
            )
            .as_deref(),
            Some("1")
        );
    }

    #[test]
    fn gateway_wide_metrics_render() {
        let metrics = Metrics::new();
        let guard = metrics.enter();
        let _second = metrics.enter();
        drop(guard);
        metrics.denied(DenyKind::Tpm);
        metrics.denied(DenyKind::Model);
        metrics.denied(DenyKind::Model);
        metrics.auth_failure();
        metrics.config_reload(true);
        metrics.config_reload(false);
        metrics.config_reload(true);
        metrics.plugin_reload(false);
        metrics.overhead(Duration::from_micros(70));
        metrics.circuit("east").set(Circuit::HalfOpen);
        metrics.circuit("west").set(Circuit::Open);
        let plugin = metrics.plugin("pii", PluginKind::Filter);
        plugin.call(Duration::from_micros(120));
        plugin.fault(FaultKind::Timeout);
        let text = metrics.encode();
        assert!(!text.contains("ledger"), "no ledger until one reports");
        metrics.set_ledger(3, 40, 2);
        let samples = parse(&metrics.encode());
        let v = |name: &str, labels: &[(&str, &str)]| value(&samples, name, labels);

        assert_eq!(v("switchyard_inflight_requests", &[]).as_deref(), Some("1"));
        let denied = |kind: &str| v("switchyard_rate_limited_total", &[("kind", kind)]);
        assert_eq!(denied("tpm").as_deref(), Some("1"));
        assert_eq!(denied("model").as_deref(), Some("2"));
        assert_eq!(denied("rpm").as_deref(), Some("0"));
        assert_eq!(denied("budget").as_deref(), Some("0"));
        assert_eq!(
            v("switchyard_auth_failures_total", &[]).as_deref(),
            Some("1")
        );
        let reloads = |name: &str, result: &str| v(name, &[("result", result)]);
        assert_eq!(
            reloads("switchyard_config_reloads_total", "applied").as_deref(),
            Some("2")
        );
        assert_eq!(
            reloads("switchyard_config_reloads_total", "rejected").as_deref(),
            Some("1")
        );
        assert_eq!(
            reloads("switchyard_plugin_reloads_total", "rejected").as_deref(),
            Some("1")
        );
        assert_eq!(
            v("switchyard_overhead_seconds_bucket", &[("le", "5e-05")]).as_deref(),
            Some("0")
        );
        assert_eq!(
            v("switchyard_overhead_seconds_bucket", &[("le", "0.0001")]).as_deref(),
            Some("1")
        );
        let circuit = |d: &str| v("switchyard_circuit_state", &[("deployment", d)]);
        assert_eq!(circuit("east").as_deref(), Some("1"));
        assert_eq!(circuit("west").as_deref(), Some("2"));
        assert_eq!(
            v(
                "switchyard_plugin_call_duration_seconds_count",
                &[("plugin", "pii"), ("kind", "filter")]
            )
            .as_deref(),
            Some("1")
        );
        let fault = |f: &str| {
            v(
                "switchyard_plugin_faults_total",
                &[("plugin", "pii"), ("kind", "filter"), ("fault", f)],
            )
        };
        assert_eq!(fault("timeout").as_deref(), Some("1"));
        assert_eq!(fault("trap").as_deref(), Some("0"));
        assert_eq!(
            v("switchyard_ledger_queue_depth", &[]).as_deref(),
            Some("3")
        );
        assert_eq!(
            v("switchyard_ledger_rows_written_total", &[]).as_deref(),
            Some("40")
        );
        assert_eq!(
            v("switchyard_ledger_rows_dropped_total", &[]).as_deref(),
            Some("2")
        );
    }

    #[test]
    fn handles_built_twice_share_state() {
        let metrics = Metrics::new();
        let a = metrics.route("gpt", &[("east", "openai")]);
        let b = metrics.route("gpt", &[("east", "openai")]);
        a.finished(&finished(Some("east"), 200));
        b.finished(&finished(Some("east"), 200));
        let p = metrics.plugin("pii", PluginKind::Filter);
        let q = metrics.plugin("pii", PluginKind::Filter);
        p.fault(FaultKind::Trap);
        q.fault(FaultKind::Trap);
        metrics.circuit("east").set(Circuit::Open);
        metrics.circuit("east").set(Circuit::Closed);
        let samples = parse(&metrics.encode());
        let v = |name: &str, labels: &[(&str, &str)]| value(&samples, name, labels);
        assert_eq!(
            v(
                "switchyard_requests_total",
                &[
                    ("model", "gpt"),
                    ("deployment", "east"),
                    ("status_class", "2xx")
                ]
            )
            .as_deref(),
            Some("2")
        );
        assert_eq!(
            v(
                "switchyard_plugin_faults_total",
                &[("plugin", "pii"), ("kind", "filter"), ("fault", "trap")]
            )
            .as_deref(),
            Some("2")
        );
        assert_eq!(
            v("switchyard_circuit_state", &[("deployment", "east")]).as_deref(),
            Some("0")
        );
        let ttft_series = samples
            .iter()
            .filter(|s| s.name == "gen_ai_server_time_to_first_token_seconds_count")
            .count();
        assert_eq!(ttft_series, 1);
    }

    #[test]
    fn label_values_come_only_from_names_and_enums() {
        let metrics = Metrics::new();
        let plugin = metrics.plugin("pii", PluginKind::Filter);
        let fault = Fault::Trap {
            plugin: "pii".into(),
            reason: "wasm `unreachable` at 0xdead: secret-key-123".into(),
        };
        plugin.fault(FaultKind::from(&fault));
        let route = metrics.route("gpt", &[("east", "openai")]);
        route.finished(&finished(Some("no-such-deployment"), 500));
        let text = metrics.encode();
        assert!(!text.contains("0xdead") && !text.contains("secret"));
        assert!(!text.contains("no-such-deployment"));
        let labels: BTreeMap<String, usize> = parse(&text)
            .into_iter()
            .flat_map(|s| s.labels)
            .map(|(k, _)| (k, 0))
            .collect();
        let allowed = [
            "gen_ai_operation_name",
            "gen_ai_request_model",
            "gen_ai_provider_name",
            "gen_ai_token_type",
            "error_type",
            "model",
            "deployment",
            "status_class",
            "plugin",
            "kind",
            "fault",
            "result",
            "version",
            "le",
        ];
        for key in labels.keys() {
            assert!(allowed.contains(&key.as_str()), "unexpected label {key}");
        }
        // An unknown deployment counts as unanswered rather than minting a series.
        let samples = parse(&text);
        assert_eq!(
            value(
                &samples,
                "switchyard_requests_total",
                &[
                    ("model", "gpt"),
                    ("deployment", ""),
                    ("status_class", "5xx")
                ]
            )
            .as_deref(),
            Some("1")
        );
    }

    #[test]
    fn histogram_counts_match_the_inf_bucket() {
        let h = AtomicHistogram::durations();
        for ms in [5, 10, 11, 90_000] {
            h.observe_duration(Duration::from_millis(ms));
        }
        let counts: Vec<u64> =
            h.0.counts
                .iter()
                .map(|c| c.load(Ordering::Relaxed))
                .collect();
        // 5 ms and exactly 10 ms fall in le=0.01; 11 ms in le=0.02; 90 s in +Inf.
        assert_eq!(counts[0], 2);
        assert_eq!(counts[1], 1);
        assert_eq!(counts[DURATION_BUCKETS.len()], 1);
    }
}
