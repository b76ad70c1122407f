//! One plugin instance: a fresh `Store` per request, typed calls under a deadline, and
//! the rule that a faulted instance is never entered again.

use std::sync::Arc;

use wasmtime::component::{Component, ResourceAny};
use wasmtime::{Store, Trap};

use super::bindings::{adapter, filter, router, types};
use super::engine::{EPOCH_TICK, Sandbox};
use super::store::{PluginEnv, StoreData};
use super::{Fault, adapter_api, filter_api, router_api};

/// A linked, type-checked adapter, ready to instantiate (built once per plugin version).
pub(crate) struct AdapterPre(adapter::AdapterPluginPre<StoreData>);
/// A linked, type-checked router.
pub(crate) struct RouterPre(router::RouterPluginPre<StoreData>);
/// A linked, type-checked filter.
pub(crate) struct FilterPre(filter::FilterPluginPre<StoreData>);

impl AdapterPre {
    pub(crate) fn new(sandbox: &Sandbox, c: &Component) -> wasmtime::Result<Self> {
        Ok(AdapterPre(adapter::AdapterPluginPre::new(
            sandbox.linker.instantiate_pre(c)?,
        )?))
    }
}

impl RouterPre {
    pub(crate) fn new(sandbox: &Sandbox, c: &Component) -> wasmtime::Result<Self> {
        Ok(RouterPre(router::RouterPluginPre::new(
            sandbox.linker.instantiate_pre(c)?,
        )?))
    }
}

impl FilterPre {
    pub(crate) fn new(sandbox: &Sandbox, c: &Component) -> wasmtime::Result<Self> {
        Ok(FilterPre(filter::FilterPluginPre::new(
            sandbox.linker.instantiate_pre(c)?,
        )?))
    }
}

/// A live instance of some world's bindings `B`.
struct Guest<B> {
    store: Store<StoreData>,
    bindings: B,
    poisoned: bool,
}

impl<B> Guest<B> {
    fn new(
        sandbox: &Sandbox,
        env: &Arc<PluginEnv>,
        instantiate: impl FnOnce(&mut Store<StoreData>) -> wasmtime::Result<B>,
    ) -> Result<Self, Fault> {
        let mut store = Store::new(&sandbox.engine, StoreData::new(env.clone()));
        store.limiter(|s| s as &mut dyn wasmtime::ResourceLimiter);
        // Guests cannot make the host allocate more than this per call.
        store.set_hostcall_fuel(16 << 20);
        store.set_epoch_deadline(deadline_ticks(env));
        match instantiate(&mut store) {
            Ok(bindings) => Ok(Guest {
                store,
                bindings,
                poisoned: false,
            }),
            Err(e) => {
                let fault = classify(&store, e);
                // A trap during start-up (e.g. a constructor that loops) is the plugin's
                // fault like any other; other errors mean the pool is exhausted.
                Err(match fault {
                    Fault::Trap { plugin, reason } => Fault::Instantiate { plugin, reason },
                    other => other,
                })
            }
        }
    }

    fn call<R>(
        &mut self,
        f: impl FnOnce(&B, &mut Store<StoreData>) -> wasmtime::Result<R>,
    ) -> Result<R, Fault> {
        if self.poisoned {
            return Err(Fault::Poisoned {
                plugin: self.store.data().env.name.clone(),
            });
        }
        let ticks = deadline_ticks(&self.store.data().env);
        self.store.set_epoch_deadline(ticks);
        match f(&self.bindings, &mut self.store) {
            Ok(r) => Ok(r),
            Err(e) => {
                self.poisoned = true;
                Err(classify(&self.store, e))
            }
        }
    }
}

impl<B> Drop for Guest<B> {
    fn drop(&mut self) {
        self.store.data().flush_output();
    }
}

/// Epoch ticks for one call: the timeout rounded up, plus the tick already under way.
fn deadline_ticks(env: &PluginEnv) -> u64 {
    let tick = EPOCH_TICK.as_nanos().max(1);
    let n = env.limits.call_timeout.as_nanos().div_ceil(tick);
    u64::try_from(n).unwrap_or(u64::MAX / 2).saturating_add(1)
}

fn classify(store: &Store<StoreData>, e: wasmtime::Error) -> Fault {
    let data = store.data();
    let plugin = data.env.name.clone();
    if data.memory_denied {
        return Fault::MemoryLimit {
            plugin,
            limit_bytes: data.env.limits.memory_bytes,
        };
    }
    match e.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => Fault::Deadline {
            plugin,
            timeout_ms: data.env.limits.call_timeout.as_millis(),
        },
        Some(trap) => Fault::Trap {
            plugin,
            reason: trap.to_string(),
        },
        None => Fault::Trap {
            plugin,
            reason: format!("{e:#}"),
        },
    }
}

/// A fresh adapter instance for one request.
pub struct AdapterInstance(Guest<adapter::AdapterPlugin>);

impl AdapterInstance {
    pub(crate) fn new(
        sandbox: &Sandbox,
        env: &Arc<PluginEnv>,
        pre: &AdapterPre,
    ) -> Result<Self, Fault> {
        Guest::new(sandbox, env, |s| pre.0.instantiate(s)).map(AdapterInstance)
    }

    pub fn build_request(
        &mut self,
        deployment: &adapter_api::Deployment,
        request: &types::ChatRequest,
    ) -> Result<Result<adapter_api::UpstreamRequest, types::PluginError>, Fault> {
        self.0.call(|b, s| {
            b.switchyard_plugin_adapter()
                .call_build_request(s, deployment, request)
        })
    }

    pub fn parse_response(
        &mut self,
        deployment: &adapter_api::Deployment,
        response: &adapter_api::UpstreamResponse,
    ) -> Result<Result<types::ChatResponse, types::PluginError>, Fault> {
        self.0.call(|b, s| {
            b.switchyard_plugin_adapter()
                .call_parse_response(s, deployment, response)
        })
    }

    /// Opens the plugin's decoder for one upstream stream.
    pub fn open_stream(
        &mut self,
        deployment: &adapter_api::Deployment,
        status: u16,
        headers: &[types::Header],
    ) -> Result<StreamHandle, Fault> {
        self.0
            .call(|b, s| {
                b.switchyard_plugin_adapter()
                    .stream_decoder()
                    .call_constructor(s, deployment, status, headers)
            })
            .map(StreamHandle)
    }

    pub fn decode(
        &mut self,
        stream: &StreamHandle,
        event: &adapter_api::StreamEvent,
    ) -> Result<Result<Vec<types::ChatChunk>, types::PluginError>, Fault> {
        self.0.call(|b, s| {
            b.switchyard_plugin_adapter()
                .stream_decoder()
                .call_decode(s, stream.0, event)
        })
    }

    pub fn finish(
        &mut self,
        stream: &StreamHandle,
    ) -> Result<Result<Vec<types::ChatChunk>, types::PluginError>, Fault> {
        self.0.call(|b, s| {
            b.switchyard_plugin_adapter()
                .stream_decoder()
                .call_finish(s, stream.0)
        })
    }
}

/// A plugin-side stream resource (decoder or stream filter) owned by one instance; it
/// is released with the instance's store.
#[derive(Debug, Clone, Copy)]
pub struct StreamHandle(ResourceAny);

/// A fresh router instance for one request.
pub struct RouterInstance(Guest<router::RouterPlugin>);

impl RouterInstance {
    pub(crate) fn new(
        sandbox: &Sandbox,
        env: &Arc<PluginEnv>,
        pre: &RouterPre,
    ) -> Result<Self, Fault> {
        Guest::new(sandbox, env, |s| pre.0.instantiate(s)).map(RouterInstance)
    }

    pub fn route(
        &mut self,
        request: &router_api::RouteRequest,
        candidates: &[router_api::Candidate],
    ) -> Result<Result<router_api::RouteDecision, types::PluginError>, Fault> {
        self.0.call(|b, s| {
            b.switchyard_plugin_router()
                .call_route(s, request, candidates)
        })
    }
}

/// A fresh filter instance for one request: `on-request`, `on-response` and the stream
/// filter of that request share it.
pub struct FilterInstance(Guest<filter::FilterPlugin>);

impl FilterInstance {
    pub(crate) fn new(
        sandbox: &Sandbox,
        env: &Arc<PluginEnv>,
        pre: &FilterPre,
    ) -> Result<Self, Fault> {
        Guest::new(sandbox, env, |s| pre.0.instantiate(s)).map(FilterInstance)
    }

    pub fn on_request(
        &mut self,
        ctx: &filter_api::RequestContext,
        request: &types::ChatRequest,
    ) -> Result<Result<filter_api::RequestOutcome, types::PluginError>, Fault> {
        self.0.call(|b, s| {
            b.switchyard_plugin_filter()
                .call_on_request(s, ctx, request)
        })
    }

    pub fn on_response(
        &mut self,
        ctx: &filter_api::RequestContext,
        response: &types::ChatResponse,
    ) -> Result<Result<filter_api::ResponseVerdict, types::PluginError>, Fault> {
        self.0.call(|b, s| {
            b.switchyard_plugin_filter()
                .call_on_response(s, ctx, response)
        })
    }

    pub fn open_stream(&mut self, ctx: &filter_api::RequestContext) -> Result<StreamHandle, Fault> {
        self.0
            .call(|b, s| {
                b.switchyard_plugin_filter()
                    .stream_filter()
                    .call_constructor(s, ctx)
            })
            .map(StreamHandle)
    }

    pub fn on_chunk(
        &mut self,
        stream: &StreamHandle,
        chunk: &types::ChatChunk,
    ) -> Result<Result<filter_api::ChunkVerdict, types::PluginError>, Fault> {
        self.0.call(|b, s| {
            b.switchyard_plugin_filter()
                .stream_filter()
                .call_on_chunk(s, stream.0, chunk)
        })
    }

    pub fn finish(
        &mut self,
        stream: &StreamHandle,
    ) -> Result<Result<filter_api::ChunkVerdict, types::PluginError>, Fault> {
        self.0.call(|b, s| {
            b.switchyard_plugin_filter()
                .stream_filter()
                .call_finish(s, stream.0)
        })
    }
}
