//! OpenAI Chat Completions on the wire: request parsing, `chat.completion`,
//! `chat.completion.chunk` streams (with `stream_options.include_usage`) and the
//! `{"error":{message,type,param,code}}` body.

use serde_json::{Value, json};

use crate::answer::{self, Answer, Prompt};
use crate::route::Reject;
use crate::sse::{Event, Framing, Script};

/// What `GET /v1/models` lists: a few names that show the knobs.
pub(crate) const MODELS: [&str; 7] = [
    "mock-echo",
    "mock-tool-call",
    "mock-words-100",
    "mock-slow-1000ms",
    "mock-ttft-500ms",
    "mock-status-429",
    "mock-malformed",
];

pub(crate) fn parse(body: &[u8]) -> Result<Prompt, Reject> {
    let req: Value = serde_json::from_slice(body)
        .ok()
        .filter(Value::is_object)
        .ok_or_else(|| Reject::bad_request("We could not parse the JSON body of your request."))?;
    let model = req
        .get("model")
        .and_then(Value::as_str)
        .ok_or_else(|| Reject::bad_request("you must provide a model parameter"))?;
    let messages = req
        .get("messages")
        .and_then(Value::as_array)
        .ok_or_else(|| Reject::bad_request("'messages' is a required property"))?;
    let turns = messages.iter().map(|m| {
        let role = m.get("role").and_then(Value::as_str).unwrap_or("");
        (role, m.get("content").unwrap_or(&Value::Null))
    });
    let prompt_tokens = turns
        .clone()
        .map(|(_, c)| answer::words(&answer::text_of(c)))
        .sum();
    let first_tool = req
        .pointer("/tools/0/function/name")
        .and_then(Value::as_str)
        .map(str::to_owned);
    Ok(Prompt {
        model: model.to_owned(),
        last_user_text: answer::last_user_text(turns),
        prompt_tokens,
        first_tool,
        stream: req.get("stream") == Some(&Value::Bool(true)),
        include_usage: req.pointer("/stream_options/include_usage") == Some(&Value::Bool(true)),
    })
}

/// The error body for a request the mock refuses (bad JSON, unknown route).
pub(crate) fn error_body(message: &str, kind: &str, code: Option<&str>) -> Value {
    json!({"error": {"message": message, "type": kind, "param": null, "code": code}})
}

/// The error body OpenAI sends for `status`, for `mock-status-NNN`.
pub(crate) fn simulated_error(status: u16) -> Value {
    let (kind, code, message) = match status {
        401 => (
            "invalid_request_error",
            Some("invalid_api_key"),
            "Incorrect API key provided.",
        ),
        404 => (
            "invalid_request_error",
            Some("model_not_found"),
            "The model does not exist or you do not have access to it.",
        ),
        429 => (
            "requests",
            Some("rate_limit_exceeded"),
            "Rate limit reached for requests. Please try again in 1s.",
        ),
        503 => (
            "service_unavailable_error",
            Some("server_is_overloaded"),
            "The server is overloaded. Please try again later.",
        ),
        500..=599 => (
            "server_error",
            None,
            "The server had an error while processing your request.",
        ),
        _ => ("invalid_request_error", None, "Invalid request."),
    };
    error_body(&format!("mock-status-{status}: {message}"), kind, code)
}

fn usage(prompt: &Prompt, answer: &Answer) -> Value {
    let completion = answer.completion_tokens();
    json!({
        "prompt_tokens": prompt.prompt_tokens,
        "completion_tokens": completion,
        "total_tokens": prompt.prompt_tokens + completion,
    })
}

fn ids(n: u64) -> (String, String) {
    (format!("chatcmpl-mock-{n}"), format!("call_mock_{n}"))
}

/// A whole `chat.completion`.
pub(crate) fn whole(prompt: &Prompt, answer: &Answer, n: u64) -> Value {
    let (id, call_id) = ids(n);
    let (message, finish) = match answer {
        Answer::Text(text) => (
            json!({"role": "assistant", "content": text, "refusal": null, "annotations": []}),
            "stop",
        ),
        Answer::ToolCall { name, arguments } => (
            json!({
                "role": "assistant",
                "content": null,
                "refusal": null,
                "annotations": [],
                "tool_calls": [{
                    "id": call_id,
                    "type": "function",
                    "function": {"name": name, "arguments": arguments},
                }],
            }),
            "tool_calls",
        ),
    };
    json!({
        "id": id,
        "object": "chat.completion",
        "created": answer::unix_now(),
        "model": prompt.model,
        "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": finish}],
        "usage": usage(prompt, answer),
        "system_fingerprint": "fp_mock",
    })
}

/// Builds `chat.completion.chunk` events that share one id and timestamp.
struct Chunks<'a> {
    id: String,
    created: u64,
    prompt: &'a Prompt,
}

impl Chunks<'_> {
    fn event(&self, delta: Value, finish: Option<&str>) -> Event {
        let mut chunk = self.base(json!([{
            "index": 0,
            "delta": delta,
            "logprobs": null,
            "finish_reason": finish,
        }]));
        if self.prompt.include_usage {
            // With include_usage every chunk but the last carries an explicit null.
            chunk["usage"] = Value::Null;
        }
        Event::json("", &chunk)
    }

    fn usage(&self, answer: &Answer) -> Event {
        let mut chunk = self.base(json!([]));
        chunk["usage"] = usage(self.prompt, answer);
        Event::json("", &chunk)
    }

    fn base(&self, choices: Value) -> Value {
        json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.prompt.model,
            "system_fingerprint": "fp_mock",
            "choices": choices,
        })
    }
}

/// A `chat.completion.chunk` stream ending in `data: [DONE]`.
pub(crate) fn script(prompt: &Prompt, answer: &Answer, n: u64) -> Script {
    let (id, call_id) = ids(n);
    let chunks = Chunks {
        id,
        created: answer::unix_now(),
        prompt,
    };
    let (preamble, content, finish) = match answer {
        Answer::Text(text) => (
            chunks.event(json!({"role": "assistant", "content": ""}), None),
            answer::pieces(text)
                .into_iter()
                .map(|p| chunks.event(json!({"content": p}), None))
                .collect(),
            "stop",
        ),
        // The first fragment names the call; the arguments follow in pieces that a
        // client must concatenate by `index`.
        Answer::ToolCall { name, arguments } => (
            chunks.event(
                json!({"role": "assistant", "content": null, "tool_calls": [{
                    "index": 0,
                    "id": call_id,
                    "type": "function",
                    "function": {"name": name, "arguments": ""},
                }]}),
                None,
            ),
            answer::fragments(arguments)
                .into_iter()
                .map(|f| {
                    let delta = json!({"tool_calls": [{"index": 0, "function": {"arguments": f}}]});
                    chunks.event(delta, None)
                })
                .collect(),
            "tool_calls",
        ),
    };
    let mut finale = vec![chunks.event(json!({}), Some(finish))];
    if prompt.include_usage {
        finale.push(chunks.usage(answer));
    }
    finale.push(Event::raw("[DONE]"));
    Script {
        framing: Framing::OpenAi,
        preamble: vec![preamble],
        content,
        finale,
    }
}

/// The `GET /v1/models` list.
pub(crate) fn models() -> Value {
    let data: Vec<Value> = MODELS
        .iter()
        .map(|id| json!({"id": id, "object": "model", "created": 0, "owned_by": "mock"}))
        .collect();
    json!({"object": "list", "data": data})
}
