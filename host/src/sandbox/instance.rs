//! One plugin instance: a fresh `Store` per request (or, in opt-in warm mode, one from
//! a bounded pool), typed calls under a deadline, and the rule that a faulted instance
//! is never entered again.

use std::sync::Arc;

use wasmtime::component::{
    Component, ComponentExportIndex, ComponentNamedList, Instance, InstancePre, Lift, Lower,
    ResourceAny, TypedFunc,
};
use wasmtime::{Store, Trap};

use super::engine::{EPOCH_TICK, Sandbox};
use super::store::{PluginEnv, StoreData};
use super::wit::latest::{
    ADAPTER_EXPORT, FILTER_EXPORT, ROUTER_EXPORT, adapter, filter, router, types,
};
use super::{Fault, Warm, adapter_api, filter_api, router_api};

/// A linked plugin of some world, ready to instantiate (built once per plugin version),
/// with the export index of each function the host calls, in the order of `names`.
///
/// Why not the generated `*Pre::instantiate`: it type-checks every export of the world
/// again on every instantiation (about 8 µs per request for the full chain, measured
/// with perf). The generated `*Pre::new` checks them once here, at load, and each call
/// then fetches only the function it needs.
struct Linked<const N: usize> {
    pre: InstancePre<StoreData>,
    funcs: [ComponentExportIndex; N],
    /// Idle instances, in warm mode only.
    pool: Option<Arc<Pool<N>>>,
}

/// Warm mode's idle instances. A lock-free bounded queue: taking or returning an
/// instance is one atomic operation, never a lock shared by requests.
struct Pool<const N: usize> {
    idle: crossbeam_queue::ArrayQueue<Guest<N>>,
    warm: Warm,
}

impl<const N: usize> Linked<N> {
    fn new(
        sandbox: &Sandbox,
        c: &Component,
        typecheck: impl FnOnce(InstancePre<StoreData>) -> wasmtime::Result<()>,
        interface: &str,
        names: [&str; N],
        warm: Option<&Warm>,
    ) -> wasmtime::Result<Self> {
        let pre = sandbox.linker.instantiate_pre(c)?;
        typecheck(pre.clone())?;
        let iface = c
            .get_export_index(None, interface)
            .ok_or_else(|| wasmtime::format_err!("no export `{interface}`"))?;
        let mut funcs = Vec::with_capacity(N);
        for name in names {
            funcs.push(
                c.get_export_index(Some(&iface), name)
                    .ok_or_else(|| wasmtime::format_err!("no export `{interface}#{name}`"))?,
            );
        }
        let funcs = funcs
            .try_into()
            .map_err(|_| wasmtime::format_err!("export list of the wrong length"))?;
        let pool = warm.map(|w| {
            Arc::new(Pool {
                idle: crossbeam_queue::ArrayQueue::new(w.pool_size.max(1) as usize),
                warm: w.clone(),
            })
        });
        Ok(Linked { pre, funcs, pool })
    }

    /// An instance for one request: fresh, or in warm mode an idle one if there is one.
    fn lease(&self, sandbox: &Sandbox, env: &Arc<PluginEnv>) -> Result<Lease<N>, Fault> {
        let reused = self.pool.as_ref().and_then(|p| p.idle.pop());
        let guest = match reused {
            Some(g) => g,
            None => Guest::new(sandbox, env, self)?,
        };
        Ok(Lease {
            guest: Some(guest),
            home: self.pool.clone(),
        })
    }
}

/// An instance serving one request. Dropping it ends the request: a fresh instance is
/// torn down; a warm one goes back to its pool unless it faulted, has served
/// `max_uses` requests or holds more memory than the recycle mark.
struct Lease<const N: usize> {
    /// `Some` until the lease drops.
    guest: Option<Guest<N>>,
    home: Option<Arc<Pool<N>>>,
}

impl<const N: usize> Lease<N> {
    fn call<E: Export>(&mut self, params: E::Params<'_>) -> Result<E::Results, Fault> {
        match &mut self.guest {
            Some(g) => g.call::<E>(params),
            None => Err(Fault::Poisoned {
                plugin: String::new(),
            }),
        }
    }

    /// Calls `E`, which opens a plugin-side resource that warm mode must close before the
    /// instance serves another request.
    fn open<E: Export<Results = (ResourceAny,)>>(
        &mut self,
        params: E::Params<'_>,
    ) -> Result<StreamHandle, Fault> {
        let (r,) = self.call::<E>(params)?;
        if let Some(g) = &mut self.guest
            && self.home.is_some()
        {
            g.open.push(r);
        }
        Ok(StreamHandle(r))
    }

    fn check<E: Export>(&mut self) -> wasmtime::Result<()> {
        match &mut self.guest {
            Some(g) => g.check::<E>(),
            None => Err(wasmtime::format_err!("instance already released")),
        }
    }

    /// Bytes of linear memory the instance holds now.
    fn memory_in_use(&self) -> usize {
        self.guest
            .as_ref()
            .map_or(0, |g| g.store.data().memory_in_use)
    }
}

impl<const N: usize> Drop for Lease<N> {
    fn drop(&mut self) {
        let (Some(mut guest), Some(pool)) = (self.guest.take(), self.home.take()) else {
            return;
        };
        if guest.recycle(&pool.warm) {
            // A full pool drops the instance: at most `pool_size` wait idle.
            let _ = pool.idle.push(guest);
        }
    }
}

/// Positions in `Guest::funcs` of the functions the host calls; each list below names
/// the exports in this order.
const BUILD_REQUEST: usize = 0;
const PARSE_RESPONSE: usize = 1;
const ROUTE: usize = 0;
const ON_REQUEST: usize = 0;
const ON_RESPONSE: usize = 1;
/// Both stream resources (decoder, stream filter) sit at the same positions.
const STREAM_NEW: usize = 2;
const STREAM_NEXT: usize = 3;
const STREAM_FINISH: usize = 4;

/// One function the host calls: its position in `Linked::funcs` and the Rust types it
/// is called with. This is the only place a position meets its types: `Guest::call`
/// calls with them, and `Guest::check` type-checks them against each plugin version at
/// load, in every build, which is what makes the unchecked calls of release builds sound.
trait Export {
    const AT: usize;
    type Params<'a>: ComponentNamedList + Lower;
    type Results: ComponentNamedList + Lift;
}

macro_rules! export {
    ($name:ident, $at:expr, <$a:lifetime> $params:ty, $results:ty) => {
        struct $name;
        impl Export for $name {
            const AT: usize = $at;
            type Params<$a> = $params;
            type Results = $results;
        }
    };
}

type PluginResult<T> = (Result<T, types::PluginError>,);

export!(BuildRequest, BUILD_REQUEST, <'a> (&'a adapter_api::Deployment, &'a types::ChatRequest), PluginResult<adapter_api::UpstreamRequest>);
export!(ParseResponse, PARSE_RESPONSE, <'a> (&'a adapter_api::Deployment, &'a adapter_api::UpstreamResponse), PluginResult<types::ChatResponse>);
export!(OpenDecoder, STREAM_NEW, <'a> (&'a adapter_api::Deployment, u16, &'a [types::Header]), (ResourceAny,));
export!(Decode, STREAM_NEXT, <'a> (ResourceAny, &'a adapter_api::StreamEvent), PluginResult<Vec<types::ChatChunk>>);
export!(FinishDecoder, STREAM_FINISH, <'a> (ResourceAny,), PluginResult<Vec<types::ChatChunk>>);
export!(Route, ROUTE, <'a> (&'a router_api::RouteRequest, &'a [router_api::Candidate]), PluginResult<router_api::RouteDecision>);
export!(OnRequest, ON_REQUEST, <'a> (&'a filter_api::RequestContext, &'a types::ChatRequest), PluginResult<filter_api::RequestOutcome>);
export!(OnResponse, ON_RESPONSE, <'a> (&'a filter_api::RequestContext, &'a types::ChatResponse), PluginResult<filter_api::ResponseVerdict>);
export!(OpenStreamFilter, STREAM_NEW, <'a> (&'a filter_api::RequestContext,), (ResourceAny,));
export!(OnChunk, STREAM_NEXT, <'a> (ResourceAny, &'a types::ChatChunk), PluginResult<filter_api::ChunkVerdict>);
export!(FinishStreamFilter, STREAM_FINISH, <'a> (ResourceAny,), PluginResult<filter_api::ChunkVerdict>);

/// The adapter world: `build-request`, `parse-response` and the stream decoder.
pub(crate) struct AdapterPre(Linked<5>);
/// The router world: `route`.
pub(crate) struct RouterPre(Linked<1>);
/// The filter world: `on-request`, `on-response` and the stream filter.
pub(crate) struct FilterPre(Linked<5>);

impl AdapterPre {
    pub(crate) fn new(
        sandbox: &Sandbox,
        c: &Component,
        warm: Option<&Warm>,
    ) -> wasmtime::Result<Self> {
        let check = |pre| adapter::AdapterPluginPre::new(pre).map(drop);
        Linked::new(
            sandbox,
            c,
            check,
            ADAPTER_EXPORT,
            [
                "build-request",
                "parse-response",
                "[constructor]stream-decoder",
                "[method]stream-decoder.decode",
                "[method]stream-decoder.finish",
            ],
            warm,
        )
        .map(AdapterPre)
    }
}

impl RouterPre {
    pub(crate) fn new(
        sandbox: &Sandbox,
        c: &Component,
        warm: Option<&Warm>,
    ) -> wasmtime::Result<Self> {
        let check = |pre| router::RouterPluginPre::new(pre).map(drop);
        Linked::new(sandbox, c, check, ROUTER_EXPORT, ["route"], warm).map(RouterPre)
    }
}

impl FilterPre {
    pub(crate) fn new(
        sandbox: &Sandbox,
        c: &Component,
        warm: Option<&Warm>,
    ) -> wasmtime::Result<Self> {
        let check = |pre| filter::FilterPluginPre::new(pre).map(drop);
        Linked::new(
            sandbox,
            c,
            check,
            FILTER_EXPORT,
            [
                "on-request",
                "on-response",
                "[constructor]stream-filter",
                "[method]stream-filter.on-chunk",
                "[method]stream-filter.finish",
            ],
            warm,
        )
        .map(FilterPre)
    }
}

/// A live instance of a world with `N` host-called functions.
struct Guest<const N: usize> {
    store: Store<StoreData>,
    instance: Instance,
    funcs: [ComponentExportIndex; N],
    poisoned: bool,
    /// Requests served, in warm mode.
    uses: u32,
    /// Plugin-side resources opened by the current request (warm mode only).
    open: Vec<ResourceAny>,
}

impl<const N: usize> Guest<N> {
    fn new(sandbox: &Sandbox, env: &Arc<PluginEnv>, linked: &Linked<N>) -> Result<Self, Fault> {
        let mut store = Store::new(&sandbox.engine, StoreData::new(env.clone()));
        store.limiter(|s| s as &mut dyn wasmtime::ResourceLimiter);
        // Guests cannot make the host allocate more than this per call.
        store.set_hostcall_fuel(16 << 20);
        store.set_epoch_deadline(deadline_ticks(env));
        if let Some(m) = env.metrics.as_ref() {
            m.instance_created();
        }
        match linked.pre.instantiate(&mut store) {
            Ok(instance) => Ok(Guest {
                store,
                instance,
                funcs: linked.funcs,
                poisoned: false,
                uses: 0,
                open: Vec::new(),
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

    /// Calls `E` under the deadline.
    fn call<E: Export>(&mut self, params: E::Params<'_>) -> Result<E::Results, Fault> {
        if self.poisoned {
            return Err(Fault::Poisoned {
                plugin: self.store.data().env.name.clone(),
            });
        }
        let ticks = deadline_ticks(&self.store.data().env);
        self.store.set_epoch_deadline(ticks);
        let started = std::time::Instant::now();
        let result = self
            .typed::<E>()
            .and_then(|typed| typed.call(&mut self.store, params));
        let metrics = self.store.data().env.metrics.as_ref();
        if let Some(m) = metrics {
            m.call(started.elapsed());
        }
        result.map_err(|e| {
            self.poisoned = true;
            let fault = classify(&self.store, e);
            if let Some(m) = self.store.data().env.metrics.as_ref() {
                m.fault((&fault).into());
            }
            fault
        })
    }

    /// Readies a warm instance for another request; `false` means discard it.
    fn recycle(&mut self, warm: &Warm) -> bool {
        self.uses += 1;
        if self.poisoned
            || self.uses >= warm.max_uses
            || self.store.data().memory_in_use > warm.recycle_memory_bytes
        {
            return false;
        }
        // The request's stream resources run their destructors now, under the deadline,
        // so that they neither pile up in the table nor outlive their request.
        for r in std::mem::take(&mut self.open) {
            let ticks = deadline_ticks(&self.store.data().env);
            self.store.set_epoch_deadline(ticks);
            if r.resource_drop(&mut self.store).is_err() {
                return false;
            }
        }
        self.store.data_mut().end_request();
        true
    }

    /// Type-checks `E` against this instance's component (at load, every build).
    fn check<E: Export>(&mut self) -> wasmtime::Result<()> {
        self.instance
            .get_typed_func::<E::Params<'static>, E::Results>(&mut self.store, self.funcs[E::AT])
            .map(drop)
    }
}

impl<const N: usize> Guest<N> {
    /// `E`'s function. Debug builds (every test) type-check it on each call as well.
    #[cfg(debug_assertions)]
    fn typed<'a, E: Export>(&mut self) -> wasmtime::Result<TypedFunc<E::Params<'a>, E::Results>> {
        self.instance
            .get_typed_func::<E::Params<'a>, E::Results>(&mut self.store, self.funcs[E::AT])
    }

    #[cfg(not(debug_assertions))]
    fn typed<'a, E: Export>(&mut self) -> wasmtime::Result<TypedFunc<E::Params<'a>, E::Results>> {
        let func = self
            .instance
            .get_func(&mut self.store, self.funcs[E::AT])
            .ok_or_else(|| wasmtime::format_err!("export {} vanished", E::AT))?;
        // SAFETY: the loader called `check_exports` on an instance of this same
        // component before publishing it (`Loader::load`, every build), which ran
        // `get_typed_func` with exactly `E`'s types; `Export` is the only place that
        // pairs a position with types, and instances of one component share exports.
        #[allow(unsafe_code)]
        Ok(unsafe { TypedFunc::<E::Params<'a>, E::Results>::new_unchecked(func) })
    }
}

impl<const N: usize> Drop for Guest<N> {
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

/// An adapter instance for one request.
pub struct AdapterInstance(Lease<5>);

impl AdapterInstance {
    pub(crate) fn new(
        sandbox: &Sandbox,
        env: &Arc<PluginEnv>,
        pre: &AdapterPre,
    ) -> Result<Self, Fault> {
        pre.0.lease(sandbox, env).map(AdapterInstance)
    }

    /// Drops the instance without returning it to a warm pool (the loader's smoke test
    /// is not a request).
    pub(crate) fn discard(mut self) {
        self.0.home = None;
    }

    /// Bytes of linear memory the instance holds now.
    pub fn memory_in_use(&self) -> usize {
        self.0.memory_in_use()
    }

    /// Type-checks every call the host makes (see `Export`).
    pub(crate) fn check_exports(&mut self) -> wasmtime::Result<()> {
        let g = &mut self.0;
        g.check::<BuildRequest>()?;
        g.check::<ParseResponse>()?;
        g.check::<OpenDecoder>()?;
        g.check::<Decode>()?;
        g.check::<FinishDecoder>()
    }

    pub fn build_request(
        &mut self,
        deployment: &adapter_api::Deployment,
        request: &types::ChatRequest,
    ) -> Result<Result<adapter_api::UpstreamRequest, types::PluginError>, Fault> {
        self.0
            .call::<BuildRequest>((deployment, request))
            .map(|(r,)| r)
    }

    pub fn parse_response(
        &mut self,
        deployment: &adapter_api::Deployment,
        response: &adapter_api::UpstreamResponse,
    ) -> Result<Result<types::ChatResponse, types::PluginError>, Fault> {
        self.0
            .call::<ParseResponse>((deployment, response))
            .map(|(r,)| r)
    }

    /// Opens the plugin's decoder for one upstream stream.
    pub fn open_stream(
        &mut self,
        deployment: &adapter_api::Deployment,
        status: u16,
        headers: &[types::Header],
    ) -> Result<StreamHandle, Fault> {
        self.0.open::<OpenDecoder>((deployment, status, headers))
    }

    pub fn decode(
        &mut self,
        stream: &StreamHandle,
        event: &adapter_api::StreamEvent,
    ) -> Result<Result<Vec<types::ChatChunk>, types::PluginError>, Fault> {
        self.0.call::<Decode>((stream.0, event)).map(|(r,)| r)
    }

    pub fn finish(
        &mut self,
        stream: &StreamHandle,
    ) -> Result<Result<Vec<types::ChatChunk>, types::PluginError>, Fault> {
        self.0.call::<FinishDecoder>((stream.0,)).map(|(r,)| r)
    }
}

/// A plugin-side stream resource (decoder or stream filter) owned by one instance; it
/// is released with the instance's store.
#[derive(Debug, Clone, Copy)]
pub struct StreamHandle(ResourceAny);

/// A router instance for one request.
pub struct RouterInstance(Lease<1>);

impl RouterInstance {
    pub(crate) fn new(
        sandbox: &Sandbox,
        env: &Arc<PluginEnv>,
        pre: &RouterPre,
    ) -> Result<Self, Fault> {
        pre.0.lease(sandbox, env).map(RouterInstance)
    }

    /// Drops the instance without returning it to a warm pool (the loader's smoke test
    /// is not a request).
    pub(crate) fn discard(mut self) {
        self.0.home = None;
    }

    /// Bytes of linear memory the instance holds now.
    pub fn memory_in_use(&self) -> usize {
        self.0.memory_in_use()
    }

    /// Type-checks every call the host makes (see `Export`).
    pub(crate) fn check_exports(&mut self) -> wasmtime::Result<()> {
        self.0.check::<Route>()
    }

    pub fn route(
        &mut self,
        request: &router_api::RouteRequest,
        candidates: &[router_api::Candidate],
    ) -> Result<Result<router_api::RouteDecision, types::PluginError>, Fault> {
        self.0.call::<Route>((request, candidates)).map(|(r,)| r)
    }
}

/// A filter instance for one request: `on-request`, `on-response` and the stream
/// filter of that request share it.
pub struct FilterInstance(Lease<5>);

impl FilterInstance {
    pub(crate) fn new(
        sandbox: &Sandbox,
        env: &Arc<PluginEnv>,
        pre: &FilterPre,
    ) -> Result<Self, Fault> {
        pre.0.lease(sandbox, env).map(FilterInstance)
    }

    /// Drops the instance without returning it to a warm pool (the loader's smoke test
    /// is not a request).
    pub(crate) fn discard(mut self) {
        self.0.home = None;
    }

    /// Bytes of linear memory the instance holds now.
    pub fn memory_in_use(&self) -> usize {
        self.0.memory_in_use()
    }

    /// Type-checks every call the host makes (see `Export`).
    pub(crate) fn check_exports(&mut self) -> wasmtime::Result<()> {
        let g = &mut self.0;
        g.check::<OnRequest>()?;
        g.check::<OnResponse>()?;
        g.check::<OpenStreamFilter>()?;
        g.check::<OnChunk>()?;
        g.check::<FinishStreamFilter>()
    }

    pub fn on_request(
        &mut self,
        ctx: &filter_api::RequestContext,
        request: &types::ChatRequest,
    ) -> Result<Result<filter_api::RequestOutcome, types::PluginError>, Fault> {
        self.0.call::<OnRequest>((ctx, request)).map(|(r,)| r)
    }

    pub fn on_response(
        &mut self,
        ctx: &filter_api::RequestContext,
        response: &types::ChatResponse,
    ) -> Result<Result<filter_api::ResponseVerdict, types::PluginError>, Fault> {
        self.0.call::<OnResponse>((ctx, response)).map(|(r,)| r)
    }

    pub fn open_stream(&mut self, ctx: &filter_api::RequestContext) -> Result<StreamHandle, Fault> {
        self.0.open::<OpenStreamFilter>((ctx,))
    }

    pub fn on_chunk(
        &mut self,
        stream: &StreamHandle,
        chunk: &types::ChatChunk,
    ) -> Result<Result<filter_api::ChunkVerdict, types::PluginError>, Fault> {
        self.0.call::<OnChunk>((stream.0, chunk)).map(|(r,)| r)
    }

    pub fn finish(
        &mut self,
        stream: &StreamHandle,
    ) -> Result<Result<filter_api::ChunkVerdict, types::PluginError>, Fault> {
        self.0.call::<FinishStreamFilter>((stream.0,)).map(|(r,)| r)
    }
}
