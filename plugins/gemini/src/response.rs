//! Gemini `GenerateContentResponse` → canonical `chat-response`, plus the readers the
//! stream decoder shares (parts, finish reasons, usage).

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
    if let Some(err) = embedded(&value) {
        return Err(err);
    }
    let candidates = match value.get("candidates") {
        Some(Value::Array(c)) => c.as_slice(),
        None | Some(Value::Null) => &[],
        Some(_) => {
            return Err(bad_upstream(
                "the upstream response's `candidates` is not an array",
            ));
        }
    };
    let mut choices: Vec<Choice> = candidates
        .iter()
        .enumerate()
        .map(|(pos, c)| choice(pos, c))
        .collect();
    if choices.is_empty() {
        // A blocked prompt has no candidates, only `promptFeedback.blockReason`.
        if blocked(&value) {
            choices.push(Choice {
                index: 0,
                message: message(Parts::default()),
                finish_reason: Some(FinishReason::ContentFilter),
            });
        } else {
            return Err(bad_upstream("the upstream response has no candidates"));
        }
    }
    Ok(ChatResponse {
        id: response_id(&value).unwrap_or_default().to_string(),
        model: model_version(&value).unwrap_or(model_id).to_string(),
        created: 0,
        choices,
        usage: value.get("usageMetadata").map(usage),
        extra: String::new(),
    })
}

fn choice(pos: usize, candidate: &Value) -> Choice {
    let index = candidate_index(candidate, pos);
    let parts = read_parts(candidate, index, 0);
    let finish_reason = candidate
        .get("finishReason")
        .and_then(Value::as_str)
        .map(|r| finish_reason(r, !parts.calls.is_empty()));
    Choice {
        index,
        message: message(parts),
        finish_reason,
    }
}

fn message(parts: Parts) -> Message {
    // A turn that only called functions has no content (`null` for the client).
    let content = if parts.text.is_empty() && !parts.calls.is_empty() {
        Vec::new()
    } else {
        vec![ContentPart::Text(parts.text)]
    };
    Message {
        role: Role::Assistant,
        content,
        name: None,
        tool_calls: parts.calls,
        tool_call_id: None,
        reasoning: (!parts.reasoning.is_empty()).then_some(parts.reasoning),
    }
}

/// What a candidate's parts add up to.
#[derive(Default)]
pub(crate) struct Parts {
    pub text: String,
    /// Parts marked `thought: true`.
    pub reasoning: String,
    pub calls: Vec<ToolCall>,
}

/// Reads a candidate's parts. Gemini calls have no ids (newer models sometimes send one),
/// so a call without one gets `call_<choice>_<n>`, `n` counting the choice's calls from
/// `first_call` (a stream numbers across events).
pub(crate) fn read_parts(candidate: &Value, choice: u32, first_call: usize) -> Parts {
    let mut out = Parts::default();
    let Some(Value::Array(parts)) = candidate.pointer("/content/parts") else {
        return out;
    };
    for part in parts {
        if let Some(call) = part.get("functionCall") {
            let n = first_call + out.calls.len();
            let id = match call.get("id").and_then(Value::as_str) {
                Some(id) if !id.is_empty() => id.to_string(),
                _ => format!("call_{choice}_{n}"),
            };
            let arguments = match call.get("args") {
                None | Some(Value::Null) => "{}".to_string(),
                Some(args) => args.to_string(),
            };
            out.calls.push(ToolCall {
                id,
                name: call
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                arguments,
            });
        } else if let Some(text) = part.get("text").and_then(Value::as_str) {
            if part.get("thought").and_then(Value::as_bool) == Some(true) {
                out.reasoning.push_str(text);
            } else {
                out.text.push_str(text);
            }
        }
        // inlineData (generated images), executableCode, codeExecutionResult: not text.
    }
    out
}

/// `STOP` after a function call means the model wants the calls answered. Unknown and
/// tool-related reasons still end the choice, so they map to `stop` (or `tool_calls`)
/// rather than to "not finished".
pub(crate) fn finish_reason(reason: &str, has_calls: bool) -> FinishReason {
    match reason {
        "MAX_TOKENS" => FinishReason::Length,
        "SAFETY"
        | "RECITATION"
        | "PROHIBITED_CONTENT"
        | "BLOCKLIST"
        | "SPII"
        | "IMAGE_SAFETY"
        | "IMAGE_PROHIBITED_CONTENT" => FinishReason::ContentFilter,
        _ if has_calls => FinishReason::ToolCalls,
        _ => FinishReason::Stop,
    }
}

/// `usageMetadata`. OpenAI counts reasoning inside the completion tokens, Gemini apart
/// from them; tool-use prompt tokens (search results and the like) are billed as input.
pub(crate) fn usage(meta: &Value) -> Usage {
    let count = |key: &str| {
        meta.get(key)
            .and_then(Value::as_u64)
            .map_or(0, |n| u32::try_from(n).unwrap_or(u32::MAX))
    };
    let thoughts = count("thoughtsTokenCount");
    Usage {
        prompt_tokens: count("promptTokenCount").saturating_add(count("toolUsePromptTokenCount")),
        completion_tokens: count("candidatesTokenCount").saturating_add(thoughts),
        cached_tokens: count("cachedContentTokenCount"),
        cache_creation_tokens: 0,
        reasoning_tokens: thoughts,
    }
}

/// Whether the prompt itself was blocked.
pub(crate) fn blocked(value: &Value) -> bool {
    value
        .pointer("/promptFeedback/blockReason")
        .and_then(Value::as_str)
        .is_some_and(|r| !r.is_empty())
}

pub(crate) fn candidate_index(candidate: &Value, pos: usize) -> u32 {
    candidate
        .get("index")
        .and_then(Value::as_u64)
        .or(u64::try_from(pos).ok())
        .map_or(u32::MAX, |i| u32::try_from(i).unwrap_or(u32::MAX))
}

pub(crate) fn response_id(value: &Value) -> Option<&str> {
    value
        .get("responseId")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

pub(crate) fn model_version(value: &Value) -> Option<&str> {
    value
        .get("modelVersion")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_text_thoughts_calls_and_usage() {
        let body = json!({
            "candidates": [{
                "content": {"role": "model", "parts": [
                    {"text": "thinking...", "thought": true},
                    {"text": "Calling."},
                    {"functionCall": {"name": "f", "args": {"a": 1}}},
                    {"functionCall": {"name": "g"}},
                ]},
                "finishReason": "STOP",
                "index": 0,
            }],
            "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 4,
                "thoughtsTokenCount": 6, "cachedContentTokenCount": 2, "totalTokenCount": 20},
            "modelVersion": "gemini-2.5-flash",
            "responseId": "r1",
        });
        let r = parse(200, body.to_string().as_bytes(), "dep").unwrap();
        assert_eq!(
            (r.id.as_str(), r.model.as_str()),
            ("r1", "gemini-2.5-flash")
        );
        let c = &r.choices[0];
        assert_eq!(c.finish_reason, Some(FinishReason::ToolCalls));
        assert_eq!(c.message.reasoning.as_deref(), Some("thinking..."));
        assert!(matches!(&c.message.content[..], [ContentPart::Text(t)] if t == "Calling."));
        let calls: Vec<(&str, &str, &str)> = c
            .message
            .tool_calls
            .iter()
            .map(|t| (t.id.as_str(), t.name.as_str(), t.arguments.as_str()))
            .collect();
        assert_eq!(
            calls,
            [("call_0_0", "f", r#"{"a":1}"#), ("call_0_1", "g", "{}")]
        );
        let u = r.usage.unwrap();
        assert_eq!(
            (
                u.prompt_tokens,
                u.completion_tokens,
                u.reasoning_tokens,
                u.cached_tokens
            ),
            (10, 10, 6, 2)
        );
    }

    #[test]
    fn blocked_prompts_and_safety_stops_are_content_filter() {
        let blocked = br#"{"promptFeedback":{"blockReason":"SAFETY"},"usageMetadata":{"promptTokenCount":3}}"#;
        let r = parse(200, blocked, "dep").unwrap();
        assert_eq!(r.model, "dep");
        assert_eq!(
            r.choices[0].finish_reason,
            Some(FinishReason::ContentFilter)
        );
        let safety = br#"{"candidates":[{"finishReason":"SAFETY","index":0}]}"#;
        let r = parse(200, safety, "dep").unwrap();
        assert_eq!(
            r.choices[0].finish_reason,
            Some(FinishReason::ContentFilter)
        );
        assert_eq!(finish_reason("MAX_TOKENS", false), FinishReason::Length);
        assert_eq!(
            finish_reason("RECITATION", true),
            FinishReason::ContentFilter
        );
        assert_eq!(finish_reason("STOP", false), FinishReason::Stop);
    }

    #[test]
    fn errors_carry_googles_message() {
        let body = br#"{"error":{"code":429,"message":"Resource has been exhausted","status":"RESOURCE_EXHAUSTED"}}"#;
        let e = parse(429, body, "dep").unwrap_err();
        assert_eq!(e.kind, switchyard_sdk::adapter::ErrorKind::UpstreamError);
        assert_eq!(e.message, "Resource has been exhausted");
        let wrapped = br#"[{"error":{"code":400,"message":"API key not valid: AIzaSyFAKE","status":"INVALID_ARGUMENT"}}]"#;
        let e = parse(400, wrapped, "dep").unwrap_err();
        assert_eq!(e.message, "API key not valid: [redacted]");
    }
}
