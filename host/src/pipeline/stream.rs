//! A committed upstream stream: decodes events through the adapter's stream decoder and
//! passes chunks through the filters' stream filters, batch by batch.
//!
//! Before `prime` returns nothing has reached the client, so a failure there falls back
//! to the next deployment. After it, a failure ends the client's stream with an
//! explicit error event (the server's job), never a clean-looking end.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::BodyExt;
use hyper::body::Incoming;

use crate::canonical::ChatChunk;
use crate::config::{Deployment, FilterFailure};
use crate::error::{GatewayError, UpstreamFailure};
use crate::sandbox::adapter_api::StreamEvent;
use crate::sandbox::filter_api::ChunkVerdict;
use crate::sandbox::{AdapterInstance, StreamHandle};
use crate::stats::CallGuard;
use crate::upstream::framing;
use crate::upstream::scrub::Scrub;

use super::RequestCtx;
use super::Served;
use super::filter::{ActiveFilter, context};

/// What a client is told when a compliance filter failed mid-stream.
const FILTER_STOPPED: &str =
    "A compliance filter could not check the rest of the response, so the stream was stopped.";

/// Largest single upstream event accepted.
const MAX_EVENT: usize = 4 << 20;

/// Why a committed stream ended early; rendered as a final SSE error event.
#[derive(Debug, Clone)]
pub struct StreamEnd {
    /// The error code: the host's own, or a denying filter's.
    pub code: std::borrow::Cow<'static, str>,
    /// What the client is told: never a deployment name, network error or trap text.
    pub message: String,
    /// What the log gets.
    pub detail: String,
}

/// A stream whose first content is ready.
pub struct LiveStream {
    deployment: Arc<Deployment>,
    adapter: AdapterInstance,
    decoder: StreamHandle,
    body: Incoming,
    framing: framing::Decoder,
    guard: Option<CallGuard>,
    pub served: Served,
    started: Instant,
    /// Decoded chunks not yet handed out.
    pending: VecDeque<ChatChunk>,
    /// Time spent in plugins while priming, so it is not counted as upstream time.
    pub plugin_time: Duration,
    filters: Vec<(ActiveFilter, StreamHandle)>,
    filter_failure: FilterFailure,
    /// Removes the request's secrets from every event before the adapter decodes it.
    scrub: Scrub,
    upstream_done: bool,
    got_first_byte: bool,
}

fn has_content(c: &ChatChunk) -> bool {
    c.usage.is_some()
        || c.choices.iter().any(|d| {
            d.content.as_deref().is_some_and(|t| !t.is_empty())
                || d.reasoning.as_deref().is_some_and(|t| !t.is_empty())
                || !d.tool_calls.is_empty()
                || d.finish_reason.is_some()
        })
}

impl LiveStream {
    pub(super) fn new(
        deployment: Arc<Deployment>,
        adapter: AdapterInstance,
        decoder: StreamHandle,
        body: Incoming,
        framing: framing::Framing,
        guard: CallGuard,
        served: Served,
    ) -> Self {
        LiveStream {
            deployment,
            adapter,
            decoder,
            body,
            framing: framing::Decoder::new(framing, MAX_EVENT),
            guard: Some(guard),
            served,
            started: Instant::now(),
            pending: VecDeque::new(),
            plugin_time: Duration::ZERO,
            filters: Vec::new(),
            filter_failure: FilterFailure::Closed,
            scrub: Scrub::default(),
            upstream_done: false,
            got_first_byte: false,
        }
    }

    /// Removes these secrets from every event before it is decoded.
    pub(super) fn scrubbing(mut self, scrub: Scrub) -> Self {
        self.scrub = scrub;
        self
    }

    fn failure(&self, reason: String) -> UpstreamFailure {
        UpstreamFailure::StreamBroken {
            deployment: self.deployment.name.clone(),
            reason,
        }
    }

    /// Reads until a chunk with content is decoded or the stream ends cleanly.
    pub(super) async fn prime(&mut self) -> Result<(), UpstreamFailure> {
        while !self.pending.iter().any(has_content) && !self.upstream_done {
            let chunks = self.pull().await.map_err(|e| self.failure(e))?;
            self.pending.extend(chunks);
        }
        Ok(())
    }

    /// Marks the attempt failed (it is being abandoned for the next deployment).
    pub(super) fn fail(&mut self) {
        if let Some(g) = self.guard.take() {
            g.failed();
        }
    }

    /// Decodes the next batch from upstream; empty when the upstream ended.
    async fn pull(&mut self) -> Result<Vec<ChatChunk>, String> {
        let mut events = Vec::new();
        while events.is_empty() && !self.upstream_done {
            let wait = self
                .deployment
                .timeouts
                .next_wait(self.started, !self.got_first_byte);
            match tokio::time::timeout(wait, self.body.frame()).await {
                Err(_) => return Err(format!("no data from the upstream for {wait:?}")),
                Ok(Some(Err(e))) => return Err(format!("the upstream connection broke: {e}")),
                Ok(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        if !self.got_first_byte {
                            self.got_first_byte = true;
                            if let Some(g) = &self.guard {
                                g.first_byte();
                            }
                        }
                        self.framing
                            .push(&data, &mut events)
                            .map_err(|e| e.to_string())?;
                    }
                }
                Ok(None) => {
                    self.framing
                        .finish(&mut events)
                        .map_err(|e| e.to_string())?;
                    self.upstream_done = true;
                }
            }
        }
        let t = Instant::now();
        let mut out = Vec::new();
        for e in events {
            let ev = StreamEvent {
                event: e.event,
                data: self.scrub.vec(e.data),
            };
            match self.adapter.decode(&self.decoder, &ev) {
                Err(fault) => return Err(fault.to_string()),
                Ok(Err(pe)) => return Err(pe.message),
                Ok(Ok(chunks)) => out.extend(chunks),
            }
        }
        if self.upstream_done {
            match self.adapter.finish(&self.decoder) {
                Err(fault) => return Err(fault.to_string()),
                Ok(Err(pe)) => return Err(pe.message),
                Ok(Ok(chunks)) => out.extend(chunks),
            }
        }
        self.plugin_time += t.elapsed();
        Ok(out)
    }

    /// Opens each filter's stream filter (same instances that saw the request).
    pub(super) fn with_filters(
        mut self,
        ctx: &RequestCtx,
        filters: Vec<ActiveFilter>,
    ) -> Result<Self, GatewayError> {
        let rc = context(ctx);
        self.filter_failure = ctx.model.filter_failure;
        for mut f in filters {
            match f.instance.open_stream(&rc) {
                Ok(h) => self.filters.push((f, h)),
                Err(fault) if ctx.model.filter_failure == FilterFailure::Open => {
                    tracing::warn!(filter = %f.name, %fault, "stream filter failed to open; skipped");
                }
                Err(_) => {
                    return Err(GatewayError::FilterUnavailable {
                        filter: f.name,
                        billed: true,
                    });
                }
            }
        }
        Ok(self)
    }

    fn filter(
        &mut self,
        chunks: Vec<ChatChunk>,
        finishing: bool,
    ) -> Result<Vec<ChatChunk>, StreamEnd> {
        let mut batch = chunks;
        for (f, handle) in &mut self.filters {
            let mut next = Vec::new();
            let mut calls: Vec<Option<ChatChunk>> = batch.into_iter().map(Some).collect();
            if finishing {
                calls.push(None);
            }
            for call in calls {
                let r = match &call {
                    Some(c) => f.instance.on_chunk(handle, c),
                    None => f.instance.finish(handle),
                };
                match r {
                    Ok(Ok(ChunkVerdict::Emit(out))) => next.extend(out),
                    Ok(Ok(ChunkVerdict::Deny(d))) => {
                        return Err(StreamEnd {
                            code: d.code.into(),
                            detail: format!("filter {} denied: {}", f.name, d.message),
                            message: d.message,
                        });
                    }
                    Ok(Err(e)) if self.filter_failure == FilterFailure::Closed => {
                        return Err(StreamEnd {
                            code: "filter_unavailable".into(),
                            message: FILTER_STOPPED.into(),
                            detail: format!("filter {} failed: {}", f.name, e.message),
                        });
                    }
                    Err(fault) if self.filter_failure == FilterFailure::Closed => {
                        return Err(StreamEnd {
                            code: "filter_unavailable".into(),
                            message: FILTER_STOPPED.into(),
                            detail: fault.to_string(),
                        });
                    }
                    _ => next.extend(call),
                }
            }
            batch = next;
        }
        Ok(batch)
    }

    /// The next batch of filtered chunks for the client; `Ok(None)` at the clean end.
    pub async fn next_batch(&mut self) -> Result<Option<Vec<ChatChunk>>, StreamEnd> {
        loop {
            if !self.pending.is_empty() {
                let chunks: Vec<ChatChunk> = self.pending.drain(..).collect();
                let finishing = self.upstream_done;
                let out = self.filter(chunks, finishing)?;
                if finishing {
                    self.complete();
                }
                if !out.is_empty() || finishing {
                    return Ok(Some(out));
                }
                continue;
            }
            if self.upstream_done {
                if self.guard.is_some() {
                    let out = self.filter(Vec::new(), true)?;
                    self.complete();
                    return Ok(Some(out));
                }
                return Ok(None);
            }
            match self.pull().await {
                Ok(chunks) => self.pending.extend(chunks),
                Err(detail) => {
                    self.fail();
                    return Err(StreamEnd {
                        code: "upstream_stream_broken".into(),
                        message: "The model's provider broke off the stream.".into(),
                        detail: format!("{}: {detail}", self.deployment.name),
                    });
                }
            }
        }
    }

    fn complete(&mut self) {
        if let Some(g) = self.guard.take() {
            g.succeeded();
        }
    }
}
