//! Compliance filters: allow, rewrite or deny requests and responses, streamed ones
//! included.

#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit/v0.1.0",
        world: "filter-plugin",
        default_bindings_module: "switchyard_sdk::filter::bindings",
        pub_export_macro: true,
        export_macro_name: "__export_filter_world",
    });
}

pub use bindings::exports::switchyard::plugin::filter::{
    ChunkVerdict, Denial, RequestContext, RequestOutcome, RequestVerdict, ResponseVerdict,
    RouteConstraints,
};
pub use bindings::switchyard::plugin::host;
pub use bindings::switchyard::plugin::types::*;

use std::cell::RefCell;
use std::marker::PhantomData;

use bindings::exports::switchyard::plugin::filter as wit;

/// A compliance filter. Every method defaults to "allow".
pub trait Filter: 'static {
    /// Runs before routing.
    fn on_request(
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
        ctx: RequestContext,
        response: ChatResponse,
    ) -> Result<ResponseVerdict, PluginError> {
        let _ = (ctx, response);
        Ok(ResponseVerdict::Allow)
    }

    /// Opens the filter for one streamed response. The default passes chunks through.
    fn open_stream(ctx: RequestContext) -> Box<dyn StreamFilter> {
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

#[doc(hidden)]
pub struct FilterResource<T>(RefCell<Box<dyn StreamFilter>>, PhantomData<T>);

#[doc(hidden)]
pub struct Export<T>(PhantomData<T>);

impl<T: Filter> wit::Guest for Export<T> {
    type StreamFilter = FilterResource<T>;

    fn on_request(
        ctx: RequestContext,
        request: ChatRequest,
    ) -> Result<RequestOutcome, PluginError> {
        T::on_request(ctx, request)
    }

    fn on_response(
        ctx: RequestContext,
        response: ChatResponse,
    ) -> Result<ResponseVerdict, PluginError> {
        T::on_response(ctx, response)
    }
}

impl<T: Filter> wit::GuestStreamFilter for FilterResource<T> {
    fn new(ctx: RequestContext) -> Self {
        FilterResource(RefCell::new(T::open_stream(ctx)), PhantomData)
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
        type __SwitchyardFilterExport = $crate::filter::Export<$t>;
        $crate::filter::bindings::__export_filter_world!(__SwitchyardFilterExport);
    };
}
