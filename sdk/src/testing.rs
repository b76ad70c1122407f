//! Small builders for plugin unit tests, so that a test spells out only what it is about
//! instead of every field of a canonical record.
//!
//! ```ignore
//! use switchyard_sdk::testing::{deployment, message, request};
//! use switchyard_sdk::types::Role;
//!
//! let mut r = request(&[(Role::System, "be brief"), (Role::User, "hi")]);
//! r.sampling.max_tokens = Some(64);
//! let d = deployment("https://api.openai.com/v1", "gpt-4o-mini", r#"{"auth": "none"}"#);
//! ```

use crate::adapter::Deployment;
use crate::filter::{ChunkVerdict, Denial, RequestContext, StreamFilter};
use crate::router::{Candidate, CircuitState, DeploymentStats, RouteRequest};
use crate::types::{
    Caller, ChatChunk, ChatRequest, ChoiceDelta, ContentPart, FinishReason, Message, Role, Sampling,
};

/// A non-streamed request for model `public` with these messages (each one text part),
/// no tools and every sampling parameter left to the provider.
pub fn request(messages: &[(Role, &str)]) -> ChatRequest {
    request_from(
        messages
            .iter()
            .map(|(role, text)| message(*role, text))
            .collect(),
    )
}

/// [`request`] with messages built by the test (tool calls, images, …).
pub fn request_from(messages: Vec<Message>) -> ChatRequest {
    ChatRequest {
        model: "public".into(),
        messages,
        tools: Vec::new(),
        tool_choice: None,
        parallel_tool_calls: None,
        response_format: None,
        sampling: sampling(),
        stream: false,
        user: None,
        extra: String::new(),
    }
}

/// A message of one text part.
pub fn message(role: Role, text: &str) -> Message {
    Message {
        role,
        content: vec![ContentPart::Text(text.into())],
        name: None,
        tool_calls: Vec::new(),
        tool_call_id: None,
        reasoning: None,
    }
}

/// Sampling with every parameter unset.
pub fn sampling() -> Sampling {
    Sampling {
        temperature: None,
        top_p: None,
        max_tokens: None,
        stop: Vec::new(),
        presence_penalty: None,
        frequency_penalty: None,
        seed: None,
        n: None,
        reasoning_effort: None,
    }
}

/// A deployment named `test` with these adapter settings (JSON text; `""` for none).
pub fn deployment(base_url: &str, model_id: &str, settings: &str) -> Deployment {
    Deployment {
        name: "test".into(),
        base_url: base_url.into(),
        model_id: model_id.into(),
        settings: settings.into(),
    }
}

/// A filter's context for request `req-1` to model `public` by an anonymous caller.
pub fn context() -> RequestContext {
    RequestContext {
        request_id: "req-1".into(),
        caller: Caller {
            key_id: None,
            team: None,
            tags: Vec::new(),
        },
        model: "public".into(),
    }
}

/// A healthy candidate named `name` (adapter `openai`, no tags, weight 1, free) that has
/// served 100 calls at 100 ms and has none in flight.
pub fn candidate(name: &str) -> Candidate {
    Candidate {
        name: name.into(),
        adapter: "openai".into(),
        tags: Vec::new(),
        input_price_per_mtok: 0.0,
        output_price_per_mtok: 0.0,
        weight: 1,
        stats: DeploymentStats {
            latency_ewma_ms: 100.0,
            ttft_ewma_ms: 0.0,
            error_rate: 0.0,
            in_flight: 0,
            circuit: CircuitState::Closed,
            requests: 100,
            rate_limit_headroom: None,
        },
    }
}

/// A non-streamed route request for model `public` of ~100 prompt tokens, no
/// `max_tokens`, by an anonymous caller, with `seed`.
pub fn route_request(seed: u64) -> RouteRequest {
    RouteRequest {
        model: "public".into(),
        estimated_prompt_tokens: 100,
        max_tokens: None,
        stream: false,
        has_tools: false,
        caller: context().caller,
        request_seed: seed,
    }
}

/// A streamed chunk adding `text` to choice 0's answer; with `finish`, the choice's last.
pub fn text_chunk(text: &str, finish: bool) -> ChatChunk {
    ChatChunk {
        id: "c".into(),
        model: "m".into(),
        created: 1,
        choices: vec![ChoiceDelta {
            index: 0,
            role: None,
            content: Some(text.into()),
            reasoning: None,
            tool_calls: vec![],
            finish_reason: finish.then_some(FinishReason::Stop),
        }],
        usage: None,
    }
}

/// What a client sees of `parts` streamed through `filter` (the last part finishing the
/// choice, then `finish`): the answer text released, and the denial that stopped the
/// stream, if one did.
pub fn stream_through(filter: &mut dyn StreamFilter, parts: &[&str]) -> (String, Option<Denial>) {
    let mut seen = String::new();
    let mut verdicts: Vec<_> = parts
        .iter()
        .enumerate()
        .map(|(i, p)| filter.on_chunk(text_chunk(p, i + 1 == parts.len())))
        .collect();
    verdicts.push(filter.finish());
    for v in verdicts {
        match v.expect("the stream filter failed") {
            ChunkVerdict::Emit(chunks) => {
                for d in chunks.iter().flat_map(|c| &c.choices) {
                    seen.push_str(d.content.as_deref().unwrap_or(""));
                }
            }
            ChunkVerdict::Deny(d) => return (seen, Some(d)),
        }
    }
    (seen, None)
}
