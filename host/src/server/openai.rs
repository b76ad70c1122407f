//! The only module that knows OpenAI's Chat Completions JSON on the client side:
//! request JSON → canonical `ChatRequest`, canonical response/chunks → JSON and SSE.
//!
//! Fields the canonical form does not model are kept in `extra` and passed through, so
//! newer SDK fields reach providers that understand them instead of being rejected.

use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::canonical::{
    ChatChunk, ChatRequest, ChatResponse, ContentPart, FinishReason, ImagePart, Message,
    ResponseFormat, Role, Sampling, ToolCall, ToolChoice, ToolDefinition, Usage,
};

pub use crate::error::BadRequest;
use crate::error::GatewayError;

fn bad(param: impl Into<String>, message: impl Into<String>) -> BadRequest {
    BadRequest {
        param: Some(param.into()),
        message: message.into(),
    }
}

/// The body's top level. Scalars are kept as JSON values and type-checked one by one, so
/// a wrong type names its parameter as OpenAI does instead of failing the whole parse.
#[derive(Deserialize)]
struct RawRequest {
    model: Option<Value>,
    messages: Option<Value>,
    tools: Option<Value>,
    tool_choice: Option<Value>,
    parallel_tool_calls: Option<Value>,
    response_format: Option<Value>,
    temperature: Option<Value>,
    top_p: Option<Value>,
    max_tokens: Option<Value>,
    max_completion_tokens: Option<Value>,
    stop: Option<Value>,
    presence_penalty: Option<Value>,
    frequency_penalty: Option<Value>,
    seed: Option<Value>,
    n: Option<Value>,
    reasoning_effort: Option<Value>,
    stream: Option<Value>,
    stream_options: Option<Value>,
    user: Option<Value>,
    #[serde(flatten)]
    extra: Map<String, Value>,
}

/// JSON `null` counts as absent, as in OpenAI's API.
fn present(v: Option<Value>) -> Option<Value> {
    v.filter(|v| !v.is_null())
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn wrong_type(param: &str, expected: &str, got: &Value) -> BadRequest {
    bad(
        param,
        format!(
            "Invalid type for '{param}': expected {expected}, but got {} instead.",
            type_name(got)
        ),
    )
}

/// A number within `range`, named `param` in errors.
fn number(
    param: &str,
    v: Option<Value>,
    range: std::ops::RangeInclusive<f64>,
) -> Result<Option<f64>, BadRequest> {
    let Some(v) = present(v) else { return Ok(None) };
    let x = v
        .as_f64()
        .ok_or_else(|| wrong_type(param, "a decimal", &v))?;
    if !range.contains(&x) {
        return Err(bad(
            param,
            format!(
                "Invalid '{param}': {x} is not between {} and {}.",
                range.start(),
                range.end()
            ),
        ));
    }
    Ok(Some(x))
}

/// An integer of at least `min`, named `param` in errors.
fn integer(param: &str, v: Option<Value>, min: i64) -> Result<Option<i64>, BadRequest> {
    let Some(v) = present(v) else { return Ok(None) };
    let x = v
        .as_i64()
        .ok_or_else(|| wrong_type(param, "an integer", &v))?;
    if x < min {
        return Err(bad(
            param,
            format!(
                "Invalid '{param}': integer below minimum value. Expected a value >= {min}, but got {x} instead."
            ),
        ));
    }
    Ok(Some(x))
}

fn boolean(param: &str, v: Option<Value>) -> Result<Option<bool>, BadRequest> {
    let Some(v) = present(v) else { return Ok(None) };
    v.as_bool()
        .map(Some)
        .ok_or_else(|| wrong_type(param, "a boolean", &v))
}

fn string(param: &str, v: Option<Value>) -> Result<Option<String>, BadRequest> {
    match present(v) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(wrong_type(param, "a string", &other)),
    }
}

fn u32_of(param: &str, v: Option<i64>) -> Result<Option<u32>, BadRequest> {
    v.map(|x| {
        u32::try_from(x).map_err(|_| bad(param, format!("Invalid '{param}': {x} is too large.")))
    })
    .transpose()
}

/// A parsed request plus what only the HTTP edge needs.
#[derive(Debug, Clone)]
pub struct ParsedRequest {
    pub request: ChatRequest,
    /// `stream_options.include_usage`.
    pub include_usage: bool,
}

/// Parses and validates a `/v1/chat/completions` body as OpenAI does: every error names
/// the parameter at fault.
pub fn parse_request(body: &[u8]) -> Result<ParsedRequest, BadRequest> {
    let raw: RawRequest = serde_json::from_slice(body).map_err(|e| BadRequest {
        param: None,
        message: format!("We could not parse the JSON body of your request: {e}"),
    })?;
    let model = string("model", raw.model)?
        .filter(|m| !m.is_empty())
        .ok_or_else(|| bad("model", "Missing required parameter: 'model'."))?;
    let messages = match present(raw.messages) {
        None => return Err(bad("messages", "Missing required parameter: 'messages'.")),
        Some(Value::Array(a)) => a,
        Some(other) => return Err(wrong_type("messages", "an array", &other)),
    };
    if messages.is_empty() {
        return Err(bad(
            "messages",
            "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.",
        ));
    }
    let messages = messages
        .iter()
        .enumerate()
        .map(|(i, m)| message(i, m))
        .collect::<Result<Vec<_>, _>>()?;
    let tools = match present(raw.tools) {
        None => vec![],
        Some(Value::Array(a)) => a
            .iter()
            .enumerate()
            .map(|(i, t)| tool(i, t))
            .collect::<Result<_, _>>()?,
        Some(other) => return Err(wrong_type("tools", "an array", &other)),
    };
    let tool_choice = present(raw.tool_choice)
        .as_ref()
        .map(tool_choice)
        .transpose()?;
    let response_format = present(raw.response_format)
        .as_ref()
        .map(response_format)
        .transpose()?;
    let stop = match present(raw.stop) {
        None => vec![],
        Some(Value::String(s)) => vec![s],
        Some(Value::Array(a)) => a
            .into_iter()
            .enumerate()
            .map(|(i, v)| match v {
                Value::String(s) => Ok(s),
                other => Err(wrong_type(&format!("stop[{i}]"), "a string", &other)),
            })
            .collect::<Result<_, _>>()?,
        Some(other) => {
            return Err(wrong_type(
                "stop",
                "a string or an array of strings",
                &other,
            ));
        }
    };
    let temperature = number("temperature", raw.temperature, 0.0..=2.0)?;
    let top_p = number("top_p", raw.top_p, 0.0..=1.0)?;
    let presence_penalty = number("presence_penalty", raw.presence_penalty, -2.0..=2.0)?;
    let frequency_penalty = number("frequency_penalty", raw.frequency_penalty, -2.0..=2.0)?;
    let max_tokens = u32_of("max_tokens", integer("max_tokens", raw.max_tokens, 1)?)?;
    let max_completion_tokens = u32_of(
        "max_completion_tokens",
        integer("max_completion_tokens", raw.max_completion_tokens, 1)?,
    )?;
    let n = u32_of("n", integer("n", raw.n, 1)?)?;
    if n.is_some_and(|n| n > 128) {
        return Err(bad(
            "n",
            "Invalid 'n': integer above maximum value. Expected a value <= 128.",
        ));
    }
    let seed = integer("seed", raw.seed, i64::MIN)?;
    let stream = boolean("stream", raw.stream)?.unwrap_or(false);
    let stream_options = present(raw.stream_options);
    let include_usage = match &stream_options {
        None => false,
        Some(_) if !stream => {
            return Err(bad(
                "stream_options",
                "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
            ));
        }
        Some(Value::Object(o)) => boolean(
            "stream_options.include_usage",
            o.get("include_usage").cloned(),
        )?
        .unwrap_or(false),
        Some(other) => return Err(wrong_type("stream_options", "an object", other)),
    };
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
            parallel_tool_calls: boolean("parallel_tool_calls", raw.parallel_tool_calls)?,
            response_format,
            sampling: Sampling {
                temperature,
                top_p,
                max_tokens: max_completion_tokens.or(max_tokens),
                stop,
                presence_penalty,
                frequency_penalty,
                seed,
                n,
                reasoning_effort: string("reasoning_effort", raw.reasoning_effort)?,
            },
            stream,
            user: string("user", raw.user)?,
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
    let content_param = || format!("messages[{i}].content");
    let content = match obj.get("content") {
        // Only an assistant message may leave content out (it carries tool calls).
        None | Some(Value::Null) if role != Role::Assistant => {
            return Err(bad(
                content_param(),
                format!("Missing required parameter: '{}'.", content_param()),
            ));
        }
        None | Some(Value::Null) => vec![],
        Some(Value::String(s)) => vec![ContentPart::Text(s.clone())],
        Some(Value::Array(parts)) if parts.is_empty() && role != Role::Assistant => {
            return Err(bad(
                content_param(),
                format!(
                    "Invalid '{}': empty array. Expected an array with minimum length 1, but got an empty array instead.",
                    content_param()
                ),
            ));
        }
        Some(Value::Array(parts)) => parts
            .iter()
            .enumerate()
            .map(|(j, p)| part(i, j, p))
            .collect::<Result<_, _>>()?,
        Some(other) => {
            return Err(wrong_type(
                &content_param(),
                "a string or an array of content parts",
                other,
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
    // `tool` messages answer a call by id; the legacy `function` role names the function.
    let legacy_function = obj.get("role").and_then(Value::as_str) == Some("function");
    let needed = if legacy_function {
        "name"
    } else {
        "tool_call_id"
    };
    if role == Role::Tool && text(needed).is_none() {
        let p = format!("messages[{i}].{needed}");
        return Err(bad(&p, format!("Missing required parameter: '{p}'.")));
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

/// Renders a canonical request back as a Chat Completions body: what a filtered request
/// looked like when it left the gateway (for the ledger's stored payloads and replays).
pub fn request_json(r: &ChatRequest) -> Value {
    let messages: Vec<Value> = r
        .messages
        .iter()
        .map(|m| {
            let content = match m.content.as_slice() {
                [] => Value::Null,
                [ContentPart::Text(t)] => json!(t),
                parts => parts
                    .iter()
                    .map(|p| match p {
                        ContentPart::Text(t) => json!({"type": "text", "text": t}),
                        ContentPart::Image(i) => {
                            let mut url = json!({"url": i.url});
                            if let Some(d) = &i.detail {
                                url["detail"] = json!(d);
                            }
                            json!({"type": "image_url", "image_url": url})
                        }
                        ContentPart::Other(o) => serde_json::from_str(o).unwrap_or(Value::Null),
                    })
                    .collect(),
            };
            let mut out = json!({"role": role_name(m.role), "content": content});
            if let Some(n) = &m.name {
                out["name"] = json!(n);
            }
            if !m.tool_calls.is_empty() {
                out["tool_calls"] = m
                    .tool_calls
                    .iter()
                    .map(|t| json!({"id": t.id, "type": "function", "function": {"name": t.name, "arguments": t.arguments}}))
                    .collect();
            }
            if let Some(id) = &m.tool_call_id {
                out["tool_call_id"] = json!(id);
            }
            out
        })
        .collect();
    let mut out = json!({"model": r.model, "messages": messages});
    if !r.tools.is_empty() {
        out["tools"] = r
            .tools
            .iter()
            .map(|t| {
                let mut f = json!({
                    "name": t.name,
                    "parameters": serde_json::from_str::<Value>(&t.parameters).unwrap_or(Value::Null),
                });
                if let Some(d) = &t.description {
                    f["description"] = json!(d);
                }
                if let Some(strict) = t.strict {
                    f["strict"] = json!(strict);
                }
                json!({"type": "function", "function": f})
            })
            .collect();
    }
    if let Some(c) = &r.tool_choice {
        out["tool_choice"] = match c {
            ToolChoice::Auto => json!("auto"),
            ToolChoice::None => json!("none"),
            ToolChoice::Required => json!("required"),
            ToolChoice::Function(name) => json!({"type": "function", "function": {"name": name}}),
        };
    }
    if let Some(p) = r.parallel_tool_calls {
        out["parallel_tool_calls"] = json!(p);
    }
    if let Some(f) = &r.response_format {
        out["response_format"] = match f {
            ResponseFormat::Text => json!({"type": "text"}),
            ResponseFormat::JsonObject => json!({"type": "json_object"}),
            ResponseFormat::JsonSchema(schema) => json!({
                "type": "json_schema",
                "json_schema": serde_json::from_str::<Value>(schema).unwrap_or(Value::Null),
            }),
        };
    }
    let sp = &r.sampling;
    let fields = [
        ("temperature", sp.temperature.map(|v| json!(v))),
        ("top_p", sp.top_p.map(|v| json!(v))),
        ("max_completion_tokens", sp.max_tokens.map(|v| json!(v))),
        ("presence_penalty", sp.presence_penalty.map(|v| json!(v))),
        ("frequency_penalty", sp.frequency_penalty.map(|v| json!(v))),
        ("seed", sp.seed.map(|v| json!(v))),
        ("n", sp.n.map(|v| json!(v))),
        (
            "reasoning_effort",
            sp.reasoning_effort.as_ref().map(|v| json!(v)),
        ),
        ("user", r.user.as_ref().map(|v| json!(v))),
    ];
    for (k, v) in fields {
        if let Some(v) = v {
            out[k] = v;
        }
    }
    if !sp.stop.is_empty() {
        out["stop"] = json!(sp.stop);
    }
    if r.stream {
        out["stream"] = json!(true);
    }
    merge_extra(&mut out, &r.extra);
    out
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

/// Renders an error as OpenAI's error body. Server-side errors carry the request id, so
/// a client can quote it; the details are in the log under that id.
pub fn error_body(e: &GatewayError, request_id: &str) -> Value {
    let mut message = e.public_message();
    if e.status().is_server_error() {
        message = format!("{message} (request id: {request_id})");
    }
    json!({
        "error": {
            "message": message,
            "type": e.kind(),
            "param": e.param(),
            "code": e.code(),
        }
    })
}

/// The final SSE event of a stream that ended early, in OpenAI's error shape.
pub fn stream_error_event(code: &str, message: &str, request_id: &str) -> Value {
    json!({"error": {
        "message": format!("{message} (request id: {request_id})"),
        "type": "server_error",
        "param": Value::Null,
        "code": code,
    }})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rendered_request_parses_back_to_the_same_canonical_request() {
        let body = serde_json::json!({
            "model": "m", "user": "u1", "temperature": 0.5, "max_tokens": 9, "stop": ["x"],
            "tool_choice": {"type": "function", "function": {"name": "f"}},
            "response_format": {"type": "json_object"}, "seed": 3,
            "tools": [{"type": "function", "function": {"name": "f", "description": "d", "parameters": {"type": "object"}}}],
            "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "user", "name": "jo", "content": [{"type": "text", "text": "look"}, {"type": "image_url", "image_url": {"url": "https://x/y.png", "detail": "low"}}]},
                {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
                {"role": "tool", "tool_call_id": "c1", "content": "42"}
            ],
            "metadata": {"k": "v"}
        });
        let first = parse_request(body.to_string().as_bytes())
            .expect("parse")
            .request;
        let again = parse_request(request_json(&first).to_string().as_bytes())
            .expect("parse the rendering")
            .request;
        assert_eq!(format!("{first:?}"), format!("{again:?}"));
    }

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

    #[test]
    fn validates_messages_and_types_as_openai_does() {
        let param = |b: &str| parse_request(b.as_bytes()).unwrap_err().param;
        let cases = [
            (
                r#"{"model":"m","messages":[{"role":"user"}]}"#,
                "messages[0].content",
            ),
            (
                r#"{"model":"m","messages":[{"role":"system","content":null}]}"#,
                "messages[0].content",
            ),
            (
                r#"{"model":"m","messages":[{"role":"user","content":[]}]}"#,
                "messages[0].content",
            ),
            (
                r#"{"model":"m","messages":[{"role":"user","content":5}]}"#,
                "messages[0].content",
            ),
            (
                r#"{"model":"m","messages":[{"role":"user","content":"x"},{"role":"tool","content":"r"}]}"#,
                "messages[1].tool_call_id",
            ),
            (r#"{"model":"m","messages":"hi"}"#, "messages"),
            (
                r#"{"model":"m","messages":[{"role":"user","content":"x"}],"n":"2"}"#,
                "n",
            ),
            (
                r#"{"model":"m","messages":[{"role":"user","content":"x"}],"n":1.5}"#,
                "n",
            ),
            (
                r#"{"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":"9"}"#,
                "max_tokens",
            ),
            (
                r#"{"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":0}"#,
                "max_tokens",
            ),
            (
                r#"{"model":"m","messages":[{"role":"user","content":"x"}],"temperature":"hot"}"#,
                "temperature",
            ),
            (
                r#"{"model":"m","messages":[{"role":"user","content":"x"}],"top_p":2}"#,
                "top_p",
            ),
            (
                r#"{"model":"m","messages":[{"role":"user","content":"x"}],"stream":"yes"}"#,
                "stream",
            ),
            (
                r#"{"model":"m","messages":[{"role":"user","content":"x"}],"stream_options":{"include_usage":true}}"#,
                "stream_options",
            ),
            (
                r#"{"model":7,"messages":[{"role":"user","content":"x"}]}"#,
                "model",
            ),
        ];
        for (body, want) in cases {
            assert_eq!(param(body).as_deref(), Some(want), "{body}");
        }
        let msg = parse_request(br#"{"model":"m","messages":[{"role":"user"}]}"#)
            .unwrap_err()
            .message;
        assert_eq!(msg, "Missing required parameter: 'messages[0].content'.");
        // What OpenAI accepts stays accepted.
        for ok in [
            r#"{"model":"m","messages":[{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{}"}}]},{"role":"tool","tool_call_id":"c","content":"r"}]}"#,
            r#"{"model":"m","messages":[{"role":"user","content":""}],"temperature":null,"n":null,"stream":false}"#,
            r#"{"model":"m","messages":[{"role":"function","name":"f","content":"r"}]}"#,
        ] {
            assert!(parse_request(ok.as_bytes()).is_ok(), "{ok}");
        }
    }
}
