//! Provider adapters: translate the canonical request and response to a provider's wire
//! format. The host does the HTTP call; the adapter only describes and reads it.

#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit/v0.1.0",
        world: "adapter-plugin",
        default_bindings_module: "switchyard_sdk::adapter::bindings",
        pub_export_macro: true,
        export_macro_name: "__export_adapter_world",
    });
}

pub mod support;

pub use bindings::exports::switchyard::plugin::adapter::{
    CredentialPlacement, Deployment, StreamEvent, StreamFraming, UpstreamRequest, UpstreamResponse,
};
pub use bindings::switchyard::plugin::host;
pub use bindings::switchyard::plugin::types::*;

use std::cell::RefCell;
use std::marker::PhantomData;

use bindings::exports::switchyard::plugin::adapter as wit;

/// A provider adapter. Every method defaults to an `unsupported` error.
pub trait Adapter: 'static {
    /// Builds the upstream HTTP request for a canonical request.
    fn build_request(
        deployment: Deployment,
        request: ChatRequest,
    ) -> Result<UpstreamRequest, PluginError> {
        let _ = (deployment, request);
        Err(unsupported("build-request"))
    }

    /// Reads a complete upstream response (any status).
    fn parse_response(
        deployment: Deployment,
        response: UpstreamResponse,
    ) -> Result<ChatResponse, PluginError> {
        let _ = (deployment, response);
        Err(unsupported("parse-response"))
    }

    /// Opens the decoder for one upstream stream.
    fn open_stream(
        deployment: Deployment,
        status: u16,
        headers: Vec<Header>,
    ) -> Box<dyn StreamDecoder> {
        let _ = (deployment, status, headers);
        Box::new(NoStreaming)
    }
}

/// Decodes one upstream stream, event by event.
pub trait StreamDecoder: 'static {
    /// Turns one event into zero or more canonical chunks.
    fn decode(&mut self, event: StreamEvent) -> Result<Vec<ChatChunk>, PluginError>;
    /// The upstream body ended; return what is still held.
    fn finish(&mut self) -> Result<Vec<ChatChunk>, PluginError> {
        Ok(Vec::new())
    }
}

struct NoStreaming;

impl StreamDecoder for NoStreaming {
    fn decode(&mut self, _event: StreamEvent) -> Result<Vec<ChatChunk>, PluginError> {
        Err(unsupported("streaming"))
    }
}

/// An `unsupported` error naming the missing feature.
pub fn unsupported(what: &str) -> PluginError {
    PluginError {
        kind: ErrorKind::Unsupported,
        message: format!("this adapter does not support {what}"),
    }
}

/// The resource the host sees; it forwards to the plugin's boxed decoder.
#[doc(hidden)]
pub struct DecoderResource<T>(RefCell<Box<dyn StreamDecoder>>, PhantomData<T>);

#[doc(hidden)]
pub struct Export<T>(PhantomData<T>);

impl<T: Adapter> wit::Guest for Export<T> {
    type StreamDecoder = DecoderResource<T>;

    fn build_request(d: Deployment, r: ChatRequest) -> Result<UpstreamRequest, PluginError> {
        T::build_request(d, r)
    }

    fn parse_response(d: Deployment, r: UpstreamResponse) -> Result<ChatResponse, PluginError> {
        T::parse_response(d, r)
    }
}

impl<T: Adapter> wit::GuestStreamDecoder for DecoderResource<T> {
    fn new(deployment: Deployment, status: u16, headers: Vec<Header>) -> Self {
        DecoderResource(
            RefCell::new(T::open_stream(deployment, status, headers)),
            PhantomData,
        )
    }

    fn decode(&self, event: StreamEvent) -> Result<Vec<ChatChunk>, PluginError> {
        self.0.borrow_mut().decode(event)
    }

    fn finish(&self) -> Result<Vec<ChatChunk>, PluginError> {
        self.0.borrow_mut().finish()
    }
}

/// Exports a type implementing [`Adapter`] as this component's adapter.
#[macro_export]
macro_rules! export_adapter {
    ($t:ty) => {
        type __SwitchyardAdapterExport = $crate::adapter::Export<$t>;
        $crate::adapter::bindings::__export_adapter_world!(__SwitchyardAdapterExport);
    };
}
