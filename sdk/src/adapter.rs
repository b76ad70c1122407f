//! Provider adapters: translate the canonical request and response to a provider's wire
//! format. The host does the HTTP call; the adapter only describes and reads it.

/// The bindings of the adapter world. They are also the one copy of the shared `types`
/// and `host` interfaces: the router and filter bindings reuse them through `with`, so
/// that a `ChatRequest` is the same Rust type in every module.
#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit/v0.1.0",
        world: "adapter-plugin",
        default_bindings_module: "switchyard_sdk::adapter::bindings",
        pub_export_macro: true,
        export_macro_name: "__export_adapter_world",
        // `caller` and friends are used by the other worlds only.
        generate_unused_types: true,
    });
}

pub mod support;

pub use crate::host;
pub use crate::types::*;
pub use bindings::exports::switchyard::plugin::adapter::{
    CredentialPlacement, Deployment, StreamEvent, StreamFraming, UpstreamRequest, UpstreamResponse,
};

use std::cell::RefCell;
use std::marker::PhantomData;

use crate::__private::Instance;
use bindings::exports::switchyard::plugin::adapter as wit;

/// A provider adapter. One value lives per component instance (see the crate docs).
pub trait Adapter: Default + 'static {
    /// Builds the upstream HTTP request for a canonical request.
    fn build_request(
        &mut self,
        deployment: Deployment,
        request: ChatRequest,
    ) -> Result<UpstreamRequest, PluginError>;

    /// Reads a complete upstream response. Called for every status: for a non-2xx status
    /// return an `upstream-error` carrying the provider's own message.
    fn parse_response(
        &mut self,
        deployment: Deployment,
        response: UpstreamResponse,
    ) -> Result<ChatResponse, PluginError>;

    /// Opens the decoder for one upstream stream. The host opens one only for a 2xx
    /// response (a non-2xx answer goes to [`parse_response`](Adapter::parse_response)),
    /// so a decoder sees errors only in-band, as events. The default decoder refuses
    /// every event as `unsupported`.
    fn open_stream(
        &mut self,
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
pub struct DecoderResource<I>(RefCell<Box<dyn StreamDecoder>>, PhantomData<I>);

#[doc(hidden)]
pub struct Export<I>(PhantomData<I>);

impl<I: Instance<Plugin: Adapter>> wit::Guest for Export<I> {
    type StreamDecoder = DecoderResource<I>;

    fn build_request(d: Deployment, r: ChatRequest) -> Result<UpstreamRequest, PluginError> {
        I::with(|a| a.build_request(d, r))
    }

    fn parse_response(d: Deployment, r: UpstreamResponse) -> Result<ChatResponse, PluginError> {
        I::with(|a| a.parse_response(d, r))
    }
}

impl<I: Instance<Plugin: Adapter>> wit::GuestStreamDecoder for DecoderResource<I> {
    fn new(deployment: Deployment, status: u16, headers: Vec<Header>) -> Self {
        let decoder = I::with(|a| a.open_stream(deployment, status, headers));
        DecoderResource(RefCell::new(decoder), PhantomData)
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
        $crate::__instance!(__SwitchyardAdapterInstance, $t);
        type __SwitchyardAdapterExport = $crate::adapter::Export<__SwitchyardAdapterInstance>;
        $crate::adapter::bindings::__export_adapter_world!(__SwitchyardAdapterExport);
    };
}
