//! Anthropic `message` body → canonical `chat-response`, plus the readers the stream
//! decoder shares (stop reasons, usage).

use serde_json::Value;
use switchyard_sdk::adapter::support::{bad_upstream, read_object};
use switchyard_sdk::adapter::{
    ChatResponse, Choice, ContentPart, FinishReason, Message, PluginError, Role, ToolCall, Usage,
};

use crate::error::{embedded, from_status};

pub(crate) fn parse(status: u16, body: &[u8], model_id: &str) -> Result<ChatResponse, PluginError> {
    if !(200..300).contains(&status) {
        return Err(from_status(status, body));
    }
    let value = read_object(body, "the upstream response")?;
    if value.get("type").and_then(Value::as_str) == Some("error") {
        return Err(embedded(&value));
    }
    let blocks = match value.get("content") {
        Some(Value::Array(blocks)) => blocks.as_slice(),
        _ => return Err(bad_upstream("the upstream response has no `content` array")),
    };

    let mut text = String::new();
    let mut reasoning = String::new();
    let mut tool_calls = Vec::new();
    for block in blocks {
        match block.get("type").and_then(Value::as_str) {
            // Citations split one answer into several adjacent text blocks.
            Some("text") => text.push_str(str_of(block.get("text"))),
            Some("thinking") => reasoning.push_str(str_of(block.get("thinking"))),
            Some("tool_use") => tool_calls.push(ToolCall {
                id: str_of(block.get("id")).to_string(),
                name: str_of(block.get("name")).to_string(),
                arguments: arguments(block.get("input")),
            }),
            // redacted_thinking, server tool blocks and future types carry no answer text.
            _ => {}
        }
    }
    // A turn that only called tools has no content (`null` for the client); any other
    // turn keeps its text, even an empty one.
    let content = if text.is_empty() && !tool_calls.is_empty() {
        Vec::new()
    } else {
        vec![ContentPart::Text(text)]
    };
    let message = Message {
        role: Role::Assistant,
        content,
        name: None,
        tool_calls,
        tool_call_id: None,
        reasoning: (!reasoning.is_empty()).then_some(reasoning),
    };
    let model = match value.get("model").and_then(Value::as_str) {
        Some(m) if !m.is_empty() => m.to_string(),
        _ => model_id.to_string(),
    };
    Ok(ChatResponse {
        id: str_of(value.get("id")).to_string(),
        model,
        created: 0,
        choices: vec![Choice {
            index: 0,
            message,
            finish_reason: value
                .get("stop_reason")
                .and_then(Value::as_str)
                .map(finish_reason),
        }],
        usage: value
            .get("usage")
            .map(|u| Tokens::default().read(u).usage()),
        extra: String::new(),
    })
}

/// A tool call's `input` as JSON text; a missing input means "no arguments".
fn arguments(input: Option<&Value>) -> String {
    match input {
        None | Some(Value::Null) => "{}".into(),
        Some(v) => v.to_string(),
    }
}

/// An unknown reason still means the turn ended, so it maps to `stop` rather than to
/// "not finished" (`pause_turn` included: the turn is over for the client).
pub(crate) fn finish_reason(reason: &str) -> FinishReason {
    match reason {
        "max_tokens" | "model_context_window_exceeded" => FinishReason::Length,
        "tool_use" => FinishReason::ToolCalls,
        "refusal" => FinishReason::ContentFilter,
        _ => FinishReason::Stop,
    }
}

/// Anthropic's token counts. Input is split three ways (uncached, written to the cache,
/// read from the cache); the canonical prompt count is their sum.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Tokens {
    input: u32,
    cache_creation: u32,
    cache_read: u32,
    output: u32,
}

impl Tokens {
    /// Updates from a `usage` object; fields it leaves out keep their value (a stream's
    /// `message_delta` usually only carries the cumulative `output_tokens`).
    pub(crate) fn read(mut self, usage: &Value) -> Tokens {
        let count = |key: &str| usage.get(key).and_then(Value::as_u64).map(saturate);
        if let Some(n) = count("input_tokens") {
            self.input = n;
        }
        if let Some(n) = count("cache_creation_input_tokens") {
            self.cache_creation = n;
        }
        if let Some(n) = count("cache_read_input_tokens") {
            self.cache_read = n;
        }
        if let Some(n) = count("output_tokens") {
            self.output = n;
        }
        self
    }

    pub(crate) fn usage(self) -> Usage {
        Usage {
            prompt_tokens: self
                .input
                .saturating_add(self.cache_creation)
                .saturating_add(self.cache_read),
            completion_tokens: self.output,
            cached_tokens: self.cache_read,
            cache_creation_tokens: self.cache_creation,
            reasoning_tokens: 0,
        }
    }
}

pub(crate) fn str_of(value: Option<&Value>) -> &str {
    value.and_then(Value::as_str).unwrap_or_default()
}

fn saturate(n: u64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_text_thinking_tool_use_and_cache_usage() {
        let body = serde_json::json!({
            "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-x",
            "content": [
                {"type": "thinking", "thinking": "hmm", "signature": "sig"},
                {"type": "text", "text": "Hello, "},
                {"type": "text", "text": "world"},
                {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"a": 1}},
            ],
            "stop_reason": "tool_use",
            "usage": {"input_tokens": 10, "cache_creation_input_tokens": 20,
                      "cache_read_input_tokens": 30, "output_tokens": 5},
        });
        let r = parse(200, body.to_string().as_bytes(), "dep").unwrap();
        assert_eq!(r.id, "msg_1");
        assert_eq!(r.model, "claude-x");
        let c = &r.choices[0];
        assert_eq!(c.finish_reason, Some(FinishReason::ToolCalls));
        assert!(matches!(&c.message.content[..], [ContentPart::Text(t)] if t == "Hello, world"));
        assert_eq!(c.message.reasoning.as_deref(), Some("hmm"));
        assert_eq!(c.message.tool_calls[0].arguments, r#"{"a":1}"#);
        let u = r.usage.unwrap();
        assert_eq!(
            (
                u.prompt_tokens,
                u.completion_tokens,
                u.cached_tokens,
                u.cache_creation_tokens
            ),
            (60, 5, 30, 20)
        );
    }

    #[test]
    fn errors_carry_anthropics_message() {
        let body =
            br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#;
        let e = parse(529, body, "dep").unwrap_err();
        assert_eq!(e.kind, switchyard_sdk::adapter::ErrorKind::UpstreamError);
        assert_eq!(e.message, "Overloaded");
        let e = parse(200, body, "dep").unwrap_err();
        assert_eq!(e.message, "Overloaded");
        let e = parse(200, b"{\"id\":", "dep").unwrap_err();
        assert_eq!(
            e.kind,
            switchyard_sdk::adapter::ErrorKind::BadUpstreamResponse
        );
    }

    #[test]
    fn stop_reasons() {
        assert_eq!(finish_reason("end_turn"), FinishReason::Stop);
        assert_eq!(finish_reason("stop_sequence"), FinishReason::Stop);
        assert_eq!(finish_reason("max_tokens"), FinishReason::Length);
        assert_eq!(finish_reason("tool_use"), FinishReason::ToolCalls);
        assert_eq!(finish_reason("refusal"), FinishReason::ContentFilter);
    }
}
