//! The Anthropic Messages adapter (`POST /v1/messages`): Anthropic itself and the
//! gateways and proxies that speak its wire format.
//!
//! The JSON mapping lives in plain functions (`request`, `response`, `stream`) so that it
//! can be read and tested apart from the WIT glue in this file.

// Tests may unwrap: a failed expectation is the point.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod error;
mod request;
mod response;
mod settings;
mod stream;

use switchyard_sdk::adapter::support::post_json;
use switchyard_sdk::adapter::*;

use settings::Settings;

#[derive(Default)]
struct Anthropic;

impl Adapter for Anthropic {
    fn build_request(
        &mut self,
        deployment: Deployment,
        request: ChatRequest,
    ) -> Result<UpstreamRequest, PluginError> {
        let settings = Settings::parse(&deployment)?;
        let streaming = request.stream;
        let body = request::body(&deployment.model_id, &settings, request)?;
        post_json(
            settings.path.clone(),
            settings.headers(),
            &body,
            settings.credential,
            streaming,
        )
    }

    fn parse_response(
        &mut self,
        deployment: Deployment,
        response: UpstreamResponse,
    ) -> Result<ChatResponse, PluginError> {
        response::parse(response.status, &response.body, &deployment.model_id)
    }

    fn open_stream(
        &mut self,
        deployment: Deployment,
        _status: u16,
        _headers: Vec<Header>,
    ) -> Box<dyn StreamDecoder> {
        Box::new(stream::Decoder::new(deployment.model_id))
    }
}

switchyard_sdk::export_adapter!(Anthropic);
