//! Anthropic Messages on the wire: request checks (`anthropic-version`, `max_tokens`),
//! the `message` object, the named-event stream and the `{"type":"error",…}` body.

use hyper::HeaderMap;
use serde_json::{Value, json};

use crate::answer::{self, Answer, Prompt};
use crate::route::Reject;
use crate::sse::{Event, Framing, Script};

pub(crate) fn parse(headers: &HeaderMap, body: &[u8]) -> Result<Prompt, Reject> {
    if !headers.contains_key("anthropic-version") {
        return Err(Reject::bad_request("anthropic-version: header is required"));
    }
    let req: Value = serde_json::from_slice(body)
        .ok()
        .filter(Value::is_object)
        .ok_or_else(|| {
            Reject::bad_request("There was an issue with your request body: not a JSON object")
        })?;
    let model = req
        .get("model")
        .and_then(Value::as_str)
        .ok_or_else(|| Reject::bad_request("model: Field required"))?;
    if !req.get("max_tokens").is_some_and(Value::is_u64) {
        return Err(Reject::bad_request("max_tokens: Field required"));
    }
    let messages = req
        .get("messages")
        .and_then(Value::as_array)
        .ok_or_else(|| Reject::bad_request("messages: Field required"))?;
    let turns = messages.iter().map(|m| {
        let role = m.get("role").and_then(Value::as_str).unwrap_or("");
        (role, m.get("content").unwrap_or(&Value::Null))
    });
    // `system` is a top-level field (a string or text blocks), never a message.
    let system = req
        .get("system")
        .map_or(0, |s| answer::words(&answer::text_of(s)));
    let prompt_tokens = system
        + turns
            .clone()
            .map(|(_, c)| answer::words(&answer::text_of(c)))
            .sum::<u64>();
    let first_tool = req
        .pointer("/tools/0/name")
        .and_then(Value::as_str)
        .map(str::to_owned);
    Ok(Prompt {
        model: model.to_owned(),
        last_user_text: answer::last_user_text(turns),
        prompt_tokens,
        first_tool,
        stream: req.get("stream") == Some(&Value::Bool(true)),
        include_usage: false,
    })
}

/// Anthropic's error type for an HTTP status.
fn error_type(status: u16) -> &'static str {
    match status {
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        503 | 529 => "overloaded_error",
        504 => "timeout_error",
        500..=599 => "api_error",
        _ => "invalid_request_error",
    }
}

pub(crate) fn error_body(status: u16, message: &str) -> Value {
    json!({"type": "error", "error": {"type": error_type(status), "message": message}})
}

/// The error body Anthropic sends for `status`, for `mock-status-NNN`.
pub(crate) fn simulated_error(status: u16) -> Value {
    let message = match error_type(status) {
        "rate_limit_error" => "Number of request tokens has exceeded your per-minute rate limit",
        "overloaded_error" => "Overloaded",
        "authentication_error" => "invalid x-api-key",
        "not_found_error" => "model: not found",
        "api_error" => "Internal server error",
        _ => "Invalid request",
    };
    error_body(status, &format!("mock-status-{status}: {message}"))
}

fn ids(n: u64) -> (String, String) {
    (format!("msg_mock_{n}"), format!("toolu_mock_{n}"))
}

fn stop_reason(answer: &Answer) -> &'static str {
    match answer {
        Answer::Text(_) => "end_turn",
        Answer::ToolCall { .. } => "tool_use",
    }
}

/// A whole `message`.
pub(crate) fn whole(prompt: &Prompt, answer: &Answer, n: u64) -> Value {
    let (id, tool_id) = ids(n);
    let block = match answer {
        Answer::Text(text) => json!({"type": "text", "text": text}),
        Answer::ToolCall { name, arguments } => json!({
            "type": "tool_use",
            "id": tool_id,
            "name": name,
            "input": Answer::arguments_value(arguments),
        }),
    };
    json!({
        "id": id,
        "type": "message",
        "role": "assistant",
        "model": prompt.model,
        "content": [block],
        "stop_reason": stop_reason(answer),
        "stop_sequence": null,
        "usage": {
            "input_tokens": prompt.prompt_tokens,
            "output_tokens": answer.completion_tokens(),
        },
    })
}

/// The named-event stream: message_start, one content block with its deltas,
/// message_delta (cumulative output tokens), message_stop.
pub(crate) fn script(prompt: &Prompt, answer: &Answer, n: u64) -> Script {
    let (id, tool_id) = ids(n);
    let message_start = json!({
        "type": "message_start",
        "message": {
            "id": id,
            "type": "message",
            "role": "assistant",
            "model": prompt.model,
            "content": [],
            "stop_reason": null,
            "stop_sequence": null,
            // Like the real API: a provisional output count that message_delta replaces.
            "usage": {"input_tokens": prompt.prompt_tokens, "output_tokens": 1},
        },
    });
    let delta = |d: Value| {
        Event::json(
            "content_block_delta",
            &json!({"type": "content_block_delta", "index": 0, "delta": d}),
        )
    };
    let (block, content): (Value, Vec<Event>) = match answer {
        Answer::Text(text) => (
            json!({"type": "text", "text": ""}),
            answer::pieces(text)
                .into_iter()
                .map(|p| delta(json!({"type": "text_delta", "text": p})))
                .collect(),
        ),
        // Input arrives as JSON fragments cut anywhere; the block starts with `input: {}`.
        Answer::ToolCall { name, arguments } => (
            json!({"type": "tool_use", "id": tool_id, "name": name, "input": {}}),
            answer::fragments(arguments)
                .into_iter()
                .map(|f| delta(json!({"type": "input_json_delta", "partial_json": f})))
                .collect(),
        ),
    };
    let preamble = vec![
        Event::json("message_start", &message_start),
        Event::json(
            "content_block_start",
            &json!({"type": "content_block_start", "index": 0, "content_block": block}),
        ),
        Event::json("ping", &json!({"type": "ping"})),
    ];
    let finale = vec![
        Event::json(
            "content_block_stop",
            &json!({"type": "content_block_stop", "index": 0}),
        ),
        Event::json(
            "message_delta",
            &json!({
                "type": "message_delta",
                "delta": {"stop_reason": stop_reason(answer), "stop_sequence": null},
                "usage": {"output_tokens": answer.completion_tokens()},
            }),
        ),
        Event::json("message_stop", &json!({"type": "message_stop"})),
    ];
    Script {
        framing: Framing::Anthropic,
        preamble,
        content,
        finale,
    }
}
