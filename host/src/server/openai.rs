//! The only module that knows OpenAI's Chat Completions JSON on the client side:
//! request JSON → canonical `ChatRequest`, canonical response/chunks → JSON and SSE.
//!
//! Fields the canonical form does not model are kept in `extra` and passed through, so
//! newer SDK fields reach providers that understand them instead of being rejected.

use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::sandbox::types::{
    ChatChunk, ChatRequest, ChatResponse, ContentPart, FinishReason, ImagePart, Message,
    ResponseFormat, Role, Sampling, ToolCall, ToolChoice, ToolDefinition, Usage,
};

/// A request the client got wrong: becomes a 400 naming the parameter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct BadRequest {
    pub param: Option<String>,
    pub message: String,
}

fn bad(param: impl Into<String>, message: impl Into<String>) -> BadRequest {
    BadRequest {
        param: Some(param.into()),
        message: message.into(),
    }
}

#[derive(Deserialize)]
struct RawRequest {
    model: Option<String>,
    messages: Option<Vec<Value>>,
    #[serde(default)]
    tools: Option<Vec<Value>>,
    tool_choice: Option<Value>,
    parallel_tool_calls: Option<bool>,
    response_format: Option<Value>,
    temperature: Option<f64>,
    top_p: Option<f64>,
    max_tokens: Option<u32>,
    max_completion_tokens: Option<u32>,
    stop: Option<Value>,
    presence_penalty: Option<f64>,
    frequency_penalty: Option<f64>,
    seed: Option<i64>,
    n: Option<u32>,
    reasoning_effort: Option<String>,
    #[serde(default)]
    stream: Option<bool>,
    stream_options: Option<Value>,
    user: Option<String>,
    #[serde(flatten)]
    extra: Map<String, Value>,
}

/// A parsed request plus what only the HTTP edge needs.
#[derive(Debug, Clone)]
pub struct ParsedRequest {
    pub request: ChatRequest,
    /// `stream_options.include_usage`.
    pub include_usage: bool,
}

/// Parses a `/v1/chat/completions` body.
pub fn parse_request(body: &[u8]) -> Result<ParsedRequest, BadRequest> {
    let raw: RawRequest = serde_json::from_slice(body).map_err(|e| BadRequest {
        param: None,
        message: format!("We could not parse the JSON body of your request: {e}"),
    })?;
    let model = raw
        .model
        .filter(|m| !m.is_empty())
        .ok_or_else(|| bad("model", "you must provide a model parameter"))?;
    let messages = raw
        .messages
        .ok_or_else(|| bad("messages", "missing required parameter: 'messages'"))?;
    if messages.is_empty() {
        return Err(bad(
            "messages",
            "'messages' must contain at least one message",
        ));
    }
    let messages = messages
        .iter()
        .enumerate()
        .map(|(i, m)| message(i, m))
        .collect::<Result<Vec<_>, _>>()?;
    let tools = raw
        .tools
        .unwrap_or_default()
        .iter()
        .enumerate()
        .map(|(i, t)| tool(i, t))
        .collect::<Result<_, _>>()?;
    let tool_choice = raw.tool_choice.as_ref().map(tool_choice).transpose()?;
    let response_format = raw
        .response_format
        .as_ref()
        .map(response_format)
        .transpose()?;
    let stop = match raw.stop {
        None | Some(Value::Null) => vec![],
        Some(Value::String(s)) => vec![s],
        Some(Value::Array(a)) => a
            .into_iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| bad("stop", "stop sequences must be strings"))
            })
            .collect::<Result<_, _>>()?,
        Some(_) => {
            return Err(bad(
                "stop",
                "'stop' must be a string or an array of strings",
            ));
        }
    };
    if let Some(t) = raw.temperature
        && !(0.0..=2.0).contains(&t)
    {
        return Err(bad("temperature", format!("{t} is not between 0 and 2")));
    }
    if raw.n == Some(0) {
        return Err(bad("n", "'n' must be at least 1"));
    }
    let include_usage = raw
        .stream_options
        .as_ref()
        .and_then(|o| o.get("include_usage"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let extra = if raw.extra.is_empty() {
        String::new()
    } else {
        Value::Object(raw.extra).to_string()
    };
    Ok(ParsedRequest {
        request: ChatRequest {
            model,
            messages,
            tools,
            tool_choice,
            parallel_tool_calls: raw.parallel_tool_calls,
            response_format,
            sampling: Sampling {
                temperature: raw.temperature,
                top_p: raw.top_p,
                max_tokens: raw.max_completion_tokens.or(raw.max_tokens),
                stop,
                presence_penalty: raw.presence_penalty,
                frequency_penalty: raw.frequency_penalty,
                seed: raw.seed,
                n: raw.n,
                reasoning_effort: raw.reasoning_effort,
            },
            stream: raw.stream.unwrap_or(false),
            user: raw.user,
            extra,
        },
        include_usage,
    })
}

fn role(i: usize, v: Option<&Value>) -> Result<Role, BadRequest> {
    let p = || format!("messages[{i}].role");
    match v.and_then(Value::as_str) {
        Some("system") => Ok(Role::System),
        Some("developer") => Ok(Role::Developer),
        Some("user") => Ok(Role::User),
        Some("assistant") => Ok(Role::Assistant),
        Some("tool") | Some("function") => Ok(Role::Tool),
        Some(other) => Err(bad(
            p(),
            format!("'{other}' is not one of 'system', 'developer', 'user', 'assistant', 'tool'"),
        )),
        None => Err(bad(p(), "missing required parameter")),
    }
}

fn message(i: usize, v: &Value) -> Result<Message, BadRequest> {
    let obj = v
        .as_object()
        .ok_or_else(|| bad(format!("messages[{i}]"), "each message must be an object"))?;
    let role = role(i, obj.get("role"))?;
    let content = match obj.get("content") {
        None | Some(Value::Null) => vec![],
        Some(Value::String(s)) => vec![ContentPart::Text(s.clone())],
        Some(Value::Array(parts)) => parts
            .iter()
            .enumerate()
            .map(|(j, p)| part(i, j, p))
            .collect::<Result<_, _>>()?,
        Some(_) => {
            return Err(bad(
                format!("messages[{i}].content"),
                "content must be a string or an array of parts",
            ));
        }
    };
    let tool_calls = match obj.get("tool_calls") {
        None | Some(Value::Null) => vec![],
        Some(Value::Array(calls)) => calls
            .iter()
            .enumerate()
            .map(|(j, c)| tool_call(i, j, c))
            .collect::<Result<_, _>>()?,
        Some(_) => {
            return Err(bad(
                format!("messages[{i}].tool_calls"),
                "tool_calls must be an array",
            ));
        }
    };
    let text = |k: &str| obj.get(k).and_then(Value::as_str).map(str::to_owned);
    if role == Role::Tool && text("tool_call_id").is_none() && obj.get("name").is_none() {
        return Err(bad(
            format!("messages[{i}].tool_call_id"),
            "tool messages must have a tool_call_id",
        ));
    }
    Ok(Message {
        role,
        content,
        name: text("name"),
        tool_calls,
        tool_call_id: text("tool_call_id"),
        reasoning: text("reasoning_content"),
    })
}

fn part(i: usize, j: usize, v: &Value) -> Result<ContentPart, BadRequest> {
    let p = || format!("messages[{i}].content[{j}]");
    match v.get("type").and_then(Value::as_str) {
        Some("text") => v
            .get("text")
            .and_then(Value::as_str)
            .map(|t| ContentPart::Text(t.to_owned()))
            .ok_or_else(|| bad(p(), "text parts need a 'text' string")),
        Some("image_url") => {
            let img = v.get("image_url");
            let url = img
                .and_then(|i| i.get("url").or(Some(i)))
                .and_then(Value::as_str);
            let url = url.ok_or_else(|| bad(p(), "image_url parts need an 'image_url.url'"))?;
            let detail = img
                .and_then(|i| i.get("detail"))
                .and_then(Value::as_str)
                .map(str::to_owned);
            Ok(ContentPart::Image(ImagePart {
                url: url.to_owned(),
                detail,
            }))
        }
        Some(_) => Ok(ContentPart::Other(v.to_string())),
        None => Err(bad(p(), "each content part needs a 'type'")),
    }
}

fn tool_call(i: usize, j: usize, v: &Value) -> Result<ToolCall, BadRequest> {
    let p = || format!("messages[{i}].tool_calls[{j}]");
    let f = v
        .get("function")
        .ok_or_else(|| bad(p(), "tool calls need a 'function'"))?;
    let name = f
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| bad(p(), "tool calls need 'function.name'"))?;
    let arguments = match f.get("arguments") {
        Some(Value::String(s)) => s.clone(),
        None | Some(Value::Null) => "{}".into(),
        Some(other) => other.to_string(),
    };
    Ok(ToolCall {
        id: v
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        name: name.to_owned(),
        arguments,
    })
}

fn tool(i: usize, v: &Value) -> Result<ToolDefinition, BadRequest> {
    let p = || format!("tools[{i}]");
    if v.get("type").and_then(Value::as_str) != Some("function") {
        return Err(bad(p(), "only tools of type 'function' are supported"));
    }
    let f = v
        .get("function")
        .ok_or_else(|| bad(p(), "function tools need a 'function'"))?;
    let name = f
        .get("name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty());
    let name = name.ok_or_else(|| {
        bad(
            format!("tools[{i}].function.name"),
            "missing required parameter",
        )
    })?;
    Ok(ToolDefinition {
        name: name.to_owned(),
        description: f
            .get("description")
            .and_then(Value::as_str)
            .map(str::to_owned),
        parameters: f
            .get("parameters")
            .map(Value::to_string)
            .unwrap_or_else(|| r#"{"type":"object","properties":{}}"#.into()),
        strict: f.get("strict").and_then(Value::as_bool),
    })
}

fn tool_choice(v: &Value) -> Result<ToolChoice, BadRequest> {
    match v {
        Value::String(s) => match s.as_str() {
            "auto" => Ok(ToolChoice::Auto),
            "none" => Ok(ToolChoice::None),
            "required" => Ok(ToolChoice::Required),
            other => Err(bad(
                "tool_choice",
                format!("'{other}' is not one of 'auto', 'none', 'required'"),
            )),
        },
        Value::Object(o) => o
            .get("function")
            .and_then(|f| f.get("name"))
            .and_then(Value::as_str)
            .map(|n| ToolChoice::Function(n.to_owned()))
            .ok_or_else(|| {
                bad(
                    "tool_choice",
                    "expected {\"type\":\"function\",\"function\":{\"name\":...}}",
                )
            }),
        _ => Err(bad("tool_choice", "must be a string or an object")),
    }
}

fn response_format(v: &Value) -> Result<ResponseFormat, BadRequest> {
    match v.get("type").and_then(Value::as_str) {
        Some("text") => Ok(ResponseFormat::Text),
        Some("json_object") => Ok(ResponseFormat::JsonObject),
        Some("json_schema") => v
            .get("json_schema")
            .map(|s| ResponseFormat::JsonSchema(s.to_string()))
            .ok_or_else(|| bad("response_format.json_schema", "missing required parameter")),
        _ => Err(bad(
            "response_format.type",
            "must be 'text', 'json_object' or 'json_schema'",
        )),
    }
}

fn finish_reason(f: FinishReason) -> &'static str {
    match f {
        FinishReason::Stop => "stop",
        FinishReason::Length => "length",
        FinishReason::ToolCalls => "tool_calls",
        FinishReason::ContentFilter => "content_filter",
    }
}

fn role_name(r: Role) -> &'static str {
    match r {
        Role::System => "system",
        Role::Developer => "developer",
        Role::User => "user",
        Role::Assistant => "assistant",
        Role::Tool => "tool",
    }
}

fn usage_json(u: &Usage) -> Value {
    json!({
        "prompt_tokens": u.prompt_tokens,
        "completion_tokens": u.completion_tokens,
        "total_tokens": u.prompt_tokens.saturating_add(u.completion_tokens),
        "prompt_tokens_details": {"cached_tokens": u.cached_tokens},
        "completion_tokens_details": {"reasoning_tokens": u.reasoning_tokens},
    })
}

fn text_of(content: &[ContentPart]) -> Option<String> {
    let texts: Vec<&str> = content
        .iter()
        .filter_map(|p| match p {
            ContentPart::Text(t) => Some(t.as_str()),
            _ => None,
        })
        .collect();
    (!texts.is_empty()).then(|| texts.concat())
}

/// Renders a complete response as a `chat.completion` object.
pub fn response_json(r: &ChatResponse) -> Value {
    let choices: Vec<Value> = r
        .choices
        .iter()
        .map(|c| {
            let mut message = json!({
                "role": role_name(c.message.role),
                "content": text_of(&c.message.content),
                "refusal": Value::Null,
            });
            if !c.message.tool_calls.is_empty() {
                message["tool_calls"] = c
                    .message
                    .tool_calls
                    .iter()
                    .map(|t| json!({"id": t.id, "type": "function", "function": {"name": t.name, "arguments": t.arguments}}))
                    .collect();
            }
            if let Some(r) = &c.message.reasoning {
                message["reasoning_content"] = json!(r);
            }
            json!({
                "index": c.index,
                "message": message,
                "logprobs": Value::Null,
                "finish_reason": c.finish_reason.map(finish_reason),
            })
        })
        .collect();
    let mut out = json!({
        "id": r.id,
        "object": "chat.completion",
        "created": r.created,
        "model": r.model,
        "choices": choices,
    });
    if let Some(u) = &r.usage {
        out["usage"] = usage_json(u);
    }
    merge_extra(&mut out, &r.extra);
    out
}

/// Renders one chunk as a `chat.completion.chunk` object. With `include_usage`, every
/// chunk carries `"usage": null` except the usage chunk, as OpenAI does.
pub fn chunk_json(c: &ChatChunk, include_usage: bool) -> Value {
    let choices: Vec<Value> = c
        .choices
        .iter()
        .map(|d| {
            let mut delta = Map::new();
            if let Some(r) = d.role {
                delta.insert("role".into(), json!(role_name(r)));
            }
            if let Some(t) = &d.content {
                delta.insert("content".into(), json!(t));
            }
            if let Some(t) = &d.reasoning {
                delta.insert("reasoning_content".into(), json!(t));
            }
            if !d.tool_calls.is_empty() {
                let calls: Vec<Value> = d
                    .tool_calls
                    .iter()
                    .map(|t| {
                        let mut call =
                            json!({"index": t.index, "function": {"arguments": t.arguments}});
                        if let Some(id) = &t.id {
                            call["id"] = json!(id);
                            call["type"] = json!("function");
                        }
                        if let Some(n) = &t.name {
                            call["function"]["name"] = json!(n);
                        }
                        call
                    })
                    .collect();
                delta.insert("tool_calls".into(), Value::Array(calls));
            }
            json!({
                "index": d.index,
                "delta": delta,
                "logprobs": Value::Null,
                "finish_reason": d.finish_reason.map(finish_reason),
            })
        })
        .collect();
    let mut out = json!({
        "id": c.id,
        "object": "chat.completion.chunk",
        "created": c.created,
        "model": c.model,
        "choices": choices,
    });
    match &c.usage {
        Some(u) => out["usage"] = usage_json(u),
        None if include_usage => out["usage"] = Value::Null,
        None => {}
    }
    out
}

fn merge_extra(out: &mut Value, extra: &str) {
    if extra.is_empty() {
        return;
    }
    if let (Some(obj), Ok(Value::Object(extra))) =
        (out.as_object_mut(), serde_json::from_str::<Value>(extra))
    {
        for (k, v) in extra {
            obj.entry(k).or_insert(v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_full_request_and_keeps_unknown_fields() {
        let body = br#"{
            "model": "demo",
            "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": [{"type": "text", "text": "what is in"}, {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA", "detail": "low"}}]},
                {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "look", "arguments": "{\"x\":1}"}}]},
                {"role": "tool", "tool_call_id": "call_1", "content": "a cat"}
            ],
            "tools": [{"type": "function", "function": {"name": "look", "parameters": {"type": "object"}}}],
            "tool_choice": {"type": "function", "function": {"name": "look"}},
            "max_tokens": 10, "max_completion_tokens": 20, "stop": "END", "stream": true,
            "stream_options": {"include_usage": true},
            "logit_bias": {"42": 1}, "metadata": {"a": "b"}
        }"#;
        let p = parse_request(body).unwrap();
        let r = &p.request;
        assert!(p.include_usage && r.stream);
        assert_eq!(r.messages.len(), 4);
        assert!(
            matches!(&r.messages[1].content[1], ContentPart::Image(i) if i.detail.as_deref() == Some("low"))
        );
        assert_eq!(r.messages[2].tool_calls[0].arguments, r#"{"x":1}"#);
        assert_eq!(r.messages[3].tool_call_id.as_deref(), Some("call_1"));
        assert_eq!(
            r.sampling.max_tokens,
            Some(20),
            "max_completion_tokens wins"
        );
        assert_eq!(r.sampling.stop, vec!["END".to_string()]);
        assert!(matches!(&r.tool_choice, Some(ToolChoice::Function(n)) if n == "look"));
        let extra: Value = serde_json::from_str(&r.extra).unwrap();
        assert_eq!(extra["logit_bias"]["42"], 1);
        assert!(extra.get("model").is_none());
    }

    #[test]
    fn errors_name_the_parameter() {
        let e = |b: &str| parse_request(b.as_bytes()).unwrap_err();
        assert_eq!(
            e(r#"{"messages":[{"role":"user","content":"x"}]}"#)
                .param
                .as_deref(),
            Some("model")
        );
        assert_eq!(e(r#"{"model":"m"}"#).param.as_deref(), Some("messages"));
        assert_eq!(
            e(r#"{"model":"m","messages":[{"role":"robot","content":"x"}]}"#)
                .param
                .as_deref(),
            Some("messages[0].role")
        );
        assert_eq!(
            e(r#"{"model":"m","messages":[{"role":"user","content":"x"}],"temperature":7}"#)
                .param
                .as_deref(),
            Some("temperature")
        );
        assert!(e("{not json").param.is_none());
    }
}
