//! Compliance filters: allow, rewrite or deny requests and responses, streamed ones
//! included.

/// The bindings of the filter world; `types` and `host` are the adapter bindings' own.
#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit/v0.1.0",
        world: "filter-plugin",
        default_bindings_module: "switchyard_sdk::filter::bindings",
        pub_export_macro: true,
        export_macro_name: "__export_filter_world",
        with: {
            "switchyard:plugin/types@0.1.0": crate::adapter::bindings::switchyard::plugin::types,
            "switchyard:plugin/host@0.1.0": crate::adapter::bindings::switchyard::plugin::host,
        },
    });
}

pub mod hold;

pub use crate::host;
pub use crate::types::*;
pub use bindings::exports::switchyard::plugin::filter::{
    ChunkVerdict, Denial, RequestContext, RequestOutcome, RequestVerdict, ResponseVerdict,
    RouteConstraints,
};

use std::cell::RefCell;
use std::marker::PhantomData;

use crate::__private::Instance;
use bindings::exports::switchyard::plugin::filter as wit;

/// A compliance filter. Every method defaults to "allow".
///
/// One value serves one request: `on_request`, `on_response` and `open_stream` of a
/// request are called on the same value, so it may carry what `on_request` saw over to
/// the answer, and nothing is ever shared between requests.
pub trait Filter: Default + 'static {
    /// Runs before routing.
    fn on_request(
        &mut self,
        ctx: RequestContext,
        request: ChatRequest,
    ) -> Result<RequestOutcome, PluginError> {
        let _ = (ctx, request);
        Ok(RequestOutcome {
            verdict: RequestVerdict::Allow,
            constraints: None,
        })
    }

    /// Runs on a complete response.
    fn on_response(
        &mut self,
        ctx: RequestContext,
        response: ChatResponse,
    ) -> Result<ResponseVerdict, PluginError> {
        let _ = (ctx, response);
        Ok(ResponseVerdict::Allow)
    }

    /// Opens the filter for one streamed response. The default passes chunks through.
    fn open_stream(&mut self, ctx: RequestContext) -> Box<dyn StreamFilter> {
        let _ = ctx;
        Box::new(PassThrough)
    }
}

/// Filters one streamed response, chunk by chunk.
pub trait StreamFilter: 'static {
    /// Decides on one chunk.
    fn on_chunk(&mut self, chunk: ChatChunk) -> Result<ChunkVerdict, PluginError>;
    /// The stream ended: emit what is still held back.
    fn finish(&mut self) -> Result<ChunkVerdict, PluginError> {
        Ok(ChunkVerdict::Emit(Vec::new()))
    }
}

struct PassThrough;

impl StreamFilter for PassThrough {
    fn on_chunk(&mut self, chunk: ChatChunk) -> Result<ChunkVerdict, PluginError> {
        Ok(ChunkVerdict::Emit(vec![chunk]))
    }
}

/// The resource the host sees; it forwards to the plugin's boxed stream filter.
#[doc(hidden)]
pub struct FilterResource<I>(RefCell<Box<dyn StreamFilter>>, PhantomData<I>);

#[doc(hidden)]
pub struct Export<I>(PhantomData<I>);

impl<I: Instance<Plugin: Filter>> wit::Guest for Export<I> {
    type StreamFilter = FilterResource<I>;

    fn on_request(
        ctx: RequestContext,
        request: ChatRequest,
    ) -> Result<RequestOutcome, PluginError> {
        I::with(|f| f.on_request(ctx, request))
    }

    fn on_response(
        ctx: RequestContext,
        response: ChatResponse,
    ) -> Result<ResponseVerdict, PluginError> {
        I::with(|f| f.on_response(ctx, response))
    }
}

impl<I: Instance<Plugin: Filter>> wit::GuestStreamFilter for FilterResource<I> {
    fn new(ctx: RequestContext) -> Self {
        let filter = I::with(|f| f.open_stream(ctx));
        FilterResource(RefCell::new(filter), PhantomData)
    }

    fn on_chunk(&self, chunk: ChatChunk) -> Result<ChunkVerdict, PluginError> {
        self.0.borrow_mut().on_chunk(chunk)
    }

    fn finish(&self) -> Result<ChunkVerdict, PluginError> {
        self.0.borrow_mut().finish()
    }
}

/// Exports a type implementing [`Filter`] as this component's filter.
#[macro_export]
macro_rules! export_filter {
    ($t:ty) => {
        $crate::__instance!(__SwitchyardFilterInstance, $t);
        type __SwitchyardFilterExport = $crate::filter::Export<__SwitchyardFilterInstance>;
        $crate::filter::bindings::__export_filter_world!(__SwitchyardFilterExport);
    };
}
