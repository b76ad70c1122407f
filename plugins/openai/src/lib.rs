//! The OpenAI Chat Completions adapter: OpenAI itself and every server that speaks its
//! wire format (vLLM, Ollama, llama.cpp, Groq, Together, Mistral, Azure via base URL).
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
struct OpenAi;

impl Adapter for OpenAi {
    fn build_request(
        &mut self,
        deployment: Deployment,
        request: ChatRequest,
    ) -> Result<UpstreamRequest, PluginError> {
        let settings = Settings::parse(&deployment)?;
        let streaming = request.stream;
        let body = request::body(&deployment.model_id, &settings, request)?;
        post_json(
            settings.path("/chat/completions"),
            settings.headers(),
            &body,
            settings.credential,
            streaming,
        )
    }

    fn parse_response(
        &mut self,
        _deployment: Deployment,
        response: UpstreamResponse,
    ) -> Result<ChatResponse, PluginError> {
        response::parse(response.status, &response.body)
    }

    fn open_stream(
        &mut self,
        _deployment: Deployment,
        _status: u16,
        _headers: Vec<Header>,
    ) -> Box<dyn StreamDecoder> {
        Box::new(stream::Decoder::default())
    }
}

switchyard_sdk::export_adapter!(OpenAi);
