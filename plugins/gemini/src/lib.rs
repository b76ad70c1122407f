//! The Google Gemini adapter (`models/{model}:generateContent` and
//! `:streamGenerateContent?alt=sse` of the Gemini API).
//!
//! The JSON mapping lives in plain functions (`request`, `schema`, `response`, `stream`)
//! so that it can be read and tested apart from the WIT glue in this file.

// Tests may unwrap: a failed expectation is the point.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod error;
mod request;
mod response;
mod schema;
mod settings;
mod stream;

use switchyard_sdk::adapter::support::post_json;
use switchyard_sdk::adapter::*;

use settings::Settings;

#[derive(Default)]
struct Gemini;

impl Adapter for Gemini {
    fn build_request(
        &mut self,
        deployment: Deployment,
        request: ChatRequest,
    ) -> Result<UpstreamRequest, PluginError> {
        let settings = Settings::parse(&deployment)?;
        let streaming = request.stream;
        let body = request::body(&deployment.model_id, &settings, request)?;
        post_json(
            settings.path(&deployment.model_id, streaming),
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

switchyard_sdk::export_adapter!(Gemini);
