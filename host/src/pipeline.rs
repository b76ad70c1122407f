//! The request pipeline, in the order a request meets it:
//!
//! ```text
//! filter_request* ─► route ─► dispatch (fallback over candidates) ─► filter_response*
//! ```
//!
//! Invariant: a denied request returns before any byte is sent upstream.
//! Invariant: a shadow (mirror) call runs on its own task and never delays or changes
//! the client's answer.
//! Invariant: every plugin instance serves this request only and is dropped with it;
//! the filter instances of `filter_request` are the ones that see the response.

mod dispatch;
mod filter;
mod route;
pub mod stream;

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::canonical::{Caller, ChatRequest, ChatResponse};
use crate::config::Model;
use crate::error::GatewayError;
use crate::ledger::PluginNote;
use crate::live::Live;
use crate::plugins::Snapshot;
use crate::upstream::Client;

pub use stream::LiveStream;

/// Which deployment served a request, and after how many attempts.
#[derive(Debug, Clone)]
pub struct Served {
    pub deployment: String,
    pub attempts: u32,
}

/// Everything a request carries through the pipeline.
pub struct RequestCtx {
    pub request_id: String,
    pub caller: Caller,
    /// The key the client presented, scrubbed from whatever upstreams send back.
    pub client_key: Option<Arc<str>>,
    pub model: Arc<Model>,
    pub plugins: Arc<Snapshot>,
    pub live: Arc<Live>,
    pub client: Client,
    pub started: Instant,
    /// Time spent waiting on upstreams, excluded from the reported overhead.
    pub upstream_time: Duration,
    /// Whether an upstream may already have billed for this request.
    pub billed: bool,
    /// Plugin instances this request is done with, dropped after the response is sent.
    pub retired: Vec<Box<dyn Send>>,
    /// Deployments tried, in order (for the ledger).
    pub tried: Vec<String>,
    /// What the plugins did (for the ledger).
    pub notes: Vec<PluginNote>,
    /// Keep the request as the filters left it (`[ledger] store_payloads`).
    pub keep_filtered: bool,
    pub filtered: Option<ChatRequest>,
    /// Where shadow calls are recorded (`None`: not recorded, e.g. in tests).
    pub shadow_ledger: Option<crate::accounting::ShadowLedger>,
}

impl RequestCtx {
    #[allow(clippy::too_many_arguments)] // Every field a request starts with; no defaults.
    pub fn new(
        request_id: String,
        caller: Caller,
        client_key: Option<Arc<str>>,
        model: Arc<Model>,
        plugins: Arc<Snapshot>,
        live: Arc<Live>,
        client: Client,
        started: Instant,
    ) -> RequestCtx {
        RequestCtx {
            request_id,
            caller,
            client_key,
            model,
            plugins,
            live,
            client,
            started,
            upstream_time: Duration::ZERO,
            billed: false,
            retired: Vec::new(),
            tried: Vec::new(),
            notes: Vec::new(),
            keep_filtered: false,
            filtered: None,
            shadow_ledger: None,
        }
    }

    /// A context for a side call of this request (a shadow deployment's copy): same
    /// caller, model, plugins and config generation, its own clock and billing.
    pub fn fork(&self) -> RequestCtx {
        RequestCtx::new(
            self.request_id.clone(),
            self.caller.clone(),
            self.client_key.clone(),
            self.model.clone(),
            self.plugins.clone(),
            self.live.clone(),
            self.client.clone(),
            Instant::now(),
        )
    }

    /// The secrets to remove from what deployment `d` sends back.
    pub fn scrub_for(&self, d: &crate::config::Deployment) -> crate::upstream::scrub::Scrub {
        let key = match &d.api_key {
            Some(Ok(k)) => Some(k.shared()),
            _ => None,
        };
        crate::upstream::scrub::Scrub::new(key).with(self.client_key.clone())
    }

    /// Records what a plugin did, for the ledger.
    pub fn note(&mut self, plugin: &str, action: &str) {
        self.notes.push(PluginNote {
            plugin: plugin.to_owned(),
            action: action.to_owned(),
        });
    }

    /// Time spent in the host and plugins so far.
    pub fn overhead(&self) -> Duration {
        self.started.elapsed().saturating_sub(self.upstream_time)
    }

    /// Keeps an instance the request no longer needs until its response is on the way:
    /// tearing an instance down (resetting its pooled memory and tables) costs a few
    /// microseconds that neither the upstream call nor the client should wait for.
    pub fn retire(&mut self, instance: impl Send + 'static) {
        self.retired.push(Box::new(instance));
    }

    /// Drops the retired instances on a task of their own. Called just before the
    /// handler returns its response, so hyper writes the response first.
    pub fn release_retired(&mut self) {
        let retired = std::mem::take(&mut self.retired);
        if !retired.is_empty() {
            tokio::spawn(async move { drop(retired) });
        }
    }
}

/// The pipeline's answer.
pub enum Reply {
    Complete {
        response: ChatResponse,
        served: Served,
    },
    Stream(Box<LiveStream>),
}

/// Runs one chat completion through the pipeline.
pub async fn run(ctx: &mut RequestCtx, req: ChatRequest) -> Result<Reply, GatewayError> {
    let (req, mut filters, constraints) = filter::on_request(ctx, req)?;
    if ctx.keep_filtered {
        ctx.filtered = Some(req.clone());
    }
    let ranked = route::rank(ctx, &req, &constraints)?;
    if let Some(shadow) = ranked.shadow {
        dispatch::mirror(ctx, shadow, &req);
    }
    let candidates = ranked.order;
    if req.stream {
        let stream = dispatch::first_stream(ctx, &candidates, &req).await?;
        Ok(Reply::Stream(Box::new(stream.with_filters(ctx, filters)?)))
    } else {
        let (response, served) = dispatch::first_success(ctx, &candidates, &req).await?;
        let response = filter::on_response(ctx, &mut filters, response)?;
        ctx.retire(filters);
        Ok(Reply::Complete { response, served })
    }
}
