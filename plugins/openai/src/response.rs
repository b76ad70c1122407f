//! OpenAI `chat.completion` body → canonical `chat-response`, plus the field readers the
//! stream decoder shares (roles, finish reasons, usage, content arrays).
//!
//! Reading is lenient where compatible servers differ (missing indexes, `reasoning` vs
//! `reasoning_content`, object-valued tool arguments, Mistral's content arrays) and strict
//! only where nothing sensible can be made of the body.

use serde_json::{Map, Value};
use switchyard_sdk::adapter::support::{bad_upstream, read_json};
use switchyard_sdk::adapter::{
    ChatResponse, Choice, ContentPart, FinishReason, Message, PluginError, Role, ToolCall, Usage,
};

use crate::error::{embedded, from_status};

/// Top-level keys the canonical response models; everything else travels in `extra`.
/// `object` is a constant the host writes itself.
const MODELLED: [&str; 6] = ["id", "object", "created", "model", "choices", "usage"];

pub(crate) fn parse(status: u16, body: &[u8]) -> Result<ChatResponse, PluginError> {
    if !(200..300).contains(&status) {
        return Err(from_status(status, body));
    }
    let value = read_json(body, "the upstream response")?;
    // Some compatible servers answer 200 with an error body.
    if let Some(err) = embedded(&value) {
        return Err(err);
    }
    let Value::Object(mut obj) = value else {
        return Err(bad_upstream("the upstream response is not a JSON object"));
    };
    let choices = match obj.remove("choices") {
        Some(Value::Array(choices)) => choices,
        _ => return Err(bad_upstream("the upstream response has no `choices` array")),
    };
    let choices = choices
        .into_iter()
        .enumerate()
        .map(|(pos, c)| choice(pos, c))
        .collect::<Result<Vec<_>, _>>()?;
    let usage = obj.get("usage").and_then(usage);
    let id = string(obj.get("id"));
    let model = string(obj.get("model"));
    let created = unix_seconds(obj.get("created"));
    for key in MODELLED {
        obj.remove(key);
    }
    let extra = if obj.is_empty() {
        String::new()
    } else {
        Value::Object(obj).to_string()
    };
    Ok(ChatResponse {
        id,
        model,
        created,
        choices,
        usage,
        extra,
    })
}

fn choice(pos: usize, value: Value) -> Result<Choice, PluginError> {
    let Value::Object(mut c) = value else {
        return Err(bad_upstream(
            "a choice in the upstream response is not a JSON object",
        ));
    };
    let index = index(c.get("index"), pos);
    let finish_reason = c
        .get("finish_reason")
        .and_then(Value::as_str)
        .map(finish_reason);
    let message = match c.remove("message") {
        Some(Value::Object(m)) => message(m),
        None | Some(Value::Null) => empty_message(),
        Some(_) => return Err(bad_upstream("a choice's `message` is not a JSON object")),
    };
    Ok(Choice {
        index,
        message,
        finish_reason,
    })
}

fn empty_message() -> Message {
    Message {
        role: Role::Assistant,
        content: Vec::new(),
        name: None,
        tool_calls: Vec::new(),
        tool_call_id: None,
        reasoning: None,
    }
}

fn message(mut m: Map<String, Value>) -> Message {
    let mut reasoning = reasoning_field(&m);
    let content = match m.remove("content") {
        Some(Value::String(text)) => vec![ContentPart::Text(text)],
        Some(Value::Array(parts)) => {
            let (parts, thinking) = content_parts(parts);
            if reasoning.is_none() && !thinking.is_empty() {
                reasoning = Some(thinking);
            }
            parts
        }
        // The canonical form has no refusal field: a refusal with no content is the
        // answer, and dropping it would leave the client with an empty message.
        _ => match m.get("refusal").and_then(Value::as_str) {
            Some(refusal) if !refusal.is_empty() => vec![ContentPart::Text(refusal.into())],
            _ => Vec::new(),
        },
    };
    let mut tool_calls: Vec<ToolCall> = match m.get("tool_calls") {
        Some(Value::Array(calls)) => calls.iter().enumerate().filter_map(tool_call).collect(),
        _ => Vec::new(),
    };
    // The legacy `function_call` (one call, no id) is the same thing under an older name.
    if tool_calls.is_empty()
        && let Some(Value::Object(f)) = m.get("function_call")
    {
        tool_calls.push(ToolCall {
            id: "call_0".into(),
            name: string(f.get("name")),
            arguments: arguments(f.get("arguments")),
        });
    }
    Message {
        role: m
            .get("role")
            .and_then(Value::as_str)
            .and_then(role)
            .unwrap_or(Role::Assistant),
        content,
        name: m.get("name").and_then(Value::as_str).map(String::from),
        tool_calls,
        tool_call_id: None,
        reasoning,
    }
}

/// One `tool_calls` entry; entries that are not function calls (future tool types) are
/// skipped rather than failing the whole answer.
fn tool_call((pos, call): (usize, &Value)) -> Option<ToolCall> {
    let function = call.get("function")?.as_object()?;
    let id = match call.get("id").and_then(Value::as_str) {
        Some(id) if !id.is_empty() => id.to_string(),
        _ => format!("call_{pos}"),
    };
    Some(ToolCall {
        id,
        name: string(function.get("name")),
        arguments: arguments(function.get("arguments")),
    })
}

/// Tool arguments as JSON text. OpenAI sends a string; Ollama and some others send the
/// object itself.
pub(crate) fn arguments(value: Option<&Value>) -> String {
    match value {
        Some(Value::String(s)) => s.clone(),
        None | Some(Value::Null) => String::new(),
        Some(other) => other.to_string(),
    }
}

/// vLLM, DeepSeek and Ollama say `reasoning_content`; newer vLLM and OpenRouter say
/// `reasoning`.
pub(crate) fn reasoning_field(m: &Map<String, Value>) -> Option<String> {
    ["reasoning_content", "reasoning"]
        .iter()
        .filter_map(|k| m.get(*k).and_then(Value::as_str))
        .find(|s| !s.is_empty())
        .map(String::from)
}

/// An array-valued `content`: text parts become text, Mistral's `thinking` parts become
/// reasoning (returned second), anything else is kept as an `other` part.
pub(crate) fn content_parts(parts: Vec<Value>) -> (Vec<ContentPart>, String) {
    let mut out = Vec::with_capacity(parts.len());
    let mut thinking = String::new();
    for part in parts {
        match part.get("type").and_then(Value::as_str) {
            Some("text") => out.push(ContentPart::Text(string(part.get("text")))),
            Some("thinking") => thinking.push_str(&thinking_text(part.get("thinking"))),
            _ => out.push(ContentPart::Other(part.to_string())),
        }
    }
    (out, thinking)
}

/// Mistral writes `thinking` as a list of text parts; accept a plain string too.
fn thinking_text(value: Option<&Value>) -> String {
    match value {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect(),
        _ => String::new(),
    }
}

pub(crate) fn role(name: &str) -> Option<Role> {
    Some(match name {
        "system" => Role::System,
        "developer" => Role::Developer,
        "user" => Role::User,
        "assistant" => Role::Assistant,
        "tool" => Role::Tool,
        _ => return None,
    })
}

/// OpenAI's reasons plus the synonyms compatible servers use. An unknown reason still
/// means the choice ended, so it maps to `stop` rather than to "not finished".
pub(crate) fn finish_reason(reason: &str) -> FinishReason {
    match reason {
        "length" | "max_tokens" | "model_length" => FinishReason::Length,
        "tool_calls" | "function_call" => FinishReason::ToolCalls,
        "content_filter" => FinishReason::ContentFilter,
        _ => FinishReason::Stop,
    }
}

/// `usage`, or `None` when it is absent or `null` (streams send `null` on every chunk but
/// the last).
pub(crate) fn usage(value: &Value) -> Option<Usage> {
    let u = value.as_object()?;
    let count = |v: Option<&Value>| v.and_then(Value::as_u64).map_or(0, saturate);
    let cached = u
        .get("prompt_tokens_details")
        .and_then(|d| d.get("cached_tokens"))
        // DeepSeek reports cache hits under its own name.
        .or_else(|| u.get("prompt_cache_hit_tokens"));
    Some(Usage {
        prompt_tokens: count(u.get("prompt_tokens")),
        completion_tokens: count(u.get("completion_tokens")),
        cached_tokens: count(cached),
        cache_creation_tokens: 0,
        reasoning_tokens: count(
            u.get("completion_tokens_details")
                .and_then(|d| d.get("reasoning_tokens")),
        ),
    })
}

/// A choice or tool-call index, defaulting to the position for servers that omit it.
pub(crate) fn index(value: Option<&Value>, pos: usize) -> u32 {
    value
        .and_then(Value::as_u64)
        .map_or_else(|| u32::try_from(pos).unwrap_or(u32::MAX), saturate)
}

pub(crate) fn string(value: Option<&Value>) -> String {
    value
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// `created`, which a few servers write as a float.
pub(crate) fn unix_seconds(value: Option<&Value>) -> u64 {
    match value {
        Some(v) => v
            .as_u64()
            .or_else(|| v.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64)),
        None => None,
    }
    .unwrap_or(0)
}

fn saturate(n: u64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_completion_and_keeps_unmodelled_fields() {
        let body = br#"{"id":"chatcmpl-1","object":"chat.completion","created":1700000000,"model":"gpt-4o-mini",
            "system_fingerprint":"fp_1",
            "choices":[{"index":0,"message":{"role":"assistant","content":"hi","tool_calls":[
                {"id":"call_1","type":"function","function":{"name":"f","arguments":"{\"a\":1}"}}]},
                "finish_reason":"tool_calls"}],
            "usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7,
                "prompt_tokens_details":{"cached_tokens":3}}}"#;
        let r = parse(200, body).expect("parsed");
        assert_eq!(
            (r.id.as_str(), r.model.as_str(), r.created),
            ("chatcmpl-1", "gpt-4o-mini", 1_700_000_000)
        );
        let c = &r.choices[0];
        assert_eq!(c.finish_reason, Some(FinishReason::ToolCalls));
        assert_eq!(c.message.tool_calls[0].name, "f");
        assert_eq!(c.message.tool_calls[0].arguments, r#"{"a":1}"#);
        let u = r.usage.expect("usage");
        assert_eq!(
            (u.prompt_tokens, u.completion_tokens, u.cached_tokens),
            (5, 2, 3)
        );
        assert!(r.extra.contains("system_fingerprint"));
    }

    #[test]
    fn errors_carry_the_providers_message() {
        let e = parse(
            429,
            br#"{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}"#,
        )
        .expect_err("an error");
        assert!(e.message.contains("Rate limit reached"), "{}", e.message);
        // Some compatible servers answer 200 with an error body.
        let e = parse(200, br#"{"error":{"message":"model overloaded"}}"#).expect_err("embedded");
        assert!(e.message.contains("model overloaded"), "{}", e.message);
        assert!(parse(200, b"{not json").is_err());
        assert!(parse(200, br#"{"id":"x"}"#).is_err(), "no choices");
    }
}
