//! Canonical `chat-request` → OpenAI Chat Completions request body.

use serde_json::{Map, Value, json};
use switchyard_sdk::adapter::support::{extra_fields, invalid, json_float};
use switchyard_sdk::adapter::{
    ChatRequest, ContentPart, Message, PluginError, ResponseFormat, Role, Sampling, ToolCall,
    ToolChoice, ToolDefinition,
};

use crate::settings::Settings;

/// The request body for `model` (the deployment's model id, not the public name).
pub(crate) fn body(
    model: &str,
    settings: &Settings,
    request: ChatRequest,
) -> Result<Value, PluginError> {
    let mut body = Map::new();
    body.insert("model".into(), model.into());
    let messages = request
        .messages
        .into_iter()
        .enumerate()
        .map(|(i, m)| message(i, m))
        .collect::<Result<Vec<_>, _>>()?;
    body.insert("messages".into(), Value::Array(messages));

    if !request.tools.is_empty() {
        let tools = request
            .tools
            .into_iter()
            .map(tool)
            .collect::<Result<Vec<_>, _>>()?;
        body.insert("tools".into(), Value::Array(tools));
    }
    if let Some(choice) = request.tool_choice {
        body.insert("tool_choice".into(), tool_choice(choice));
    }
    if let Some(parallel) = request.parallel_tool_calls {
        body.insert("parallel_tool_calls".into(), parallel.into());
    }
    if let Some(format) = request.response_format {
        body.insert("response_format".into(), response_format(format)?);
    }
    sampling(&mut body, settings, request.sampling);
    if let Some(user) = request.user {
        body.insert("user".into(), user.into());
    }
    // Always explicit, so that `extra` can never turn a stream on behind the host's back.
    body.insert("stream".into(), request.stream.into());
    merge_extra(&mut body, &request.extra, request.stream)?;
    Ok(Value::Object(body))
}

fn role(role: Role) -> &'static str {
    match role {
        Role::System => "system",
        Role::Developer => "developer",
        Role::User => "user",
        Role::Assistant => "assistant",
        Role::Tool => "tool",
    }
}

/// One message. `reasoning` is deliberately not sent back: OpenAI ignores it at best and
/// DeepSeek rejects `reasoning_content` in input messages.
fn message(index: usize, m: Message) -> Result<Value, PluginError> {
    let mut out = Map::new();
    out.insert("role".into(), role(m.role).into());
    let content = if m.content.is_empty() {
        // An assistant turn that only called tools has `content: null`; every other turn
        // needs a string, and an empty array is rejected by OpenAI.
        if m.tool_calls.is_empty() {
            Value::from("")
        } else {
            Value::Null
        }
    } else {
        content(index, m.content)?
    };
    out.insert("content".into(), content);
    if let Some(name) = m.name {
        out.insert("name".into(), name.into());
    }
    if !m.tool_calls.is_empty() {
        let calls = m.tool_calls.into_iter().map(tool_call).collect();
        out.insert("tool_calls".into(), Value::Array(calls));
    }
    if let Some(id) = m.tool_call_id {
        out.insert("tool_call_id".into(), id.into());
    }
    Ok(Value::Object(out))
}

/// A lone text part is sent as a plain string: every compatible server accepts that,
/// while some (older llama.cpp, several hosted ones) reject arrays of parts.
fn content(index: usize, mut parts: Vec<ContentPart>) -> Result<Value, PluginError> {
    if let [ContentPart::Text(text)] = parts.as_mut_slice() {
        return Ok(std::mem::take(text).into());
    }
    parts
        .into_iter()
        .map(|part| match part {
            ContentPart::Text(text) => Ok(json!({ "type": "text", "text": text })),
            ContentPart::Image(image) => {
                let mut url = Map::new();
                url.insert("url".into(), image.url.into());
                if let Some(detail) = image.detail {
                    url.insert("detail".into(), detail.into());
                }
                Ok(json!({ "type": "image_url", "image_url": url }))
            }
            ContentPart::Other(raw) => match serde_json::from_str::<Value>(&raw) {
                Ok(v @ Value::Object(_)) => Ok(v),
                _ => Err(invalid(format!(
                    "messages[{index}]: a content part is not a JSON object"
                ))),
            },
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Value::Array)
}

fn tool_call(call: ToolCall) -> Value {
    // OpenAI requires `arguments` to be a string holding JSON; an absent one means "none".
    let arguments = if call.arguments.trim().is_empty() {
        "{}".into()
    } else {
        call.arguments
    };
    json!({
        "id": call.id,
        "type": "function",
        "function": { "name": call.name, "arguments": arguments },
    })
}

fn tool(t: ToolDefinition) -> Result<Value, PluginError> {
    let mut function = Map::new();
    if let Some(description) = t.description {
        function.insert("description".into(), description.into());
    }
    if !t.parameters.trim().is_empty() {
        let parameters = serde_json::from_str::<Value>(&t.parameters)
            .map_err(|_| invalid(format!("tool `{}`: `parameters` is not valid JSON", t.name)))?;
        function.insert("parameters".into(), parameters);
    }
    if let Some(strict) = t.strict {
        function.insert("strict".into(), strict.into());
    }
    function.insert("name".into(), t.name.into());
    Ok(json!({ "type": "function", "function": function }))
}

fn tool_choice(choice: ToolChoice) -> Value {
    match choice {
        ToolChoice::Auto => "auto".into(),
        ToolChoice::None => "none".into(),
        ToolChoice::Required => "required".into(),
        ToolChoice::Function(name) => json!({ "type": "function", "function": { "name": name } }),
    }
}

fn response_format(format: ResponseFormat) -> Result<Value, PluginError> {
    Ok(match format {
        ResponseFormat::Text => json!({ "type": "text" }),
        ResponseFormat::JsonObject => json!({ "type": "json_object" }),
        ResponseFormat::JsonSchema(raw) => {
            let schema = serde_json::from_str::<Value>(&raw)
                .map_err(|_| invalid("`response_format.json_schema` is not valid JSON"))?;
            json!({ "type": "json_schema", "json_schema": schema })
        }
    })
}

fn sampling(body: &mut Map<String, Value>, settings: &Settings, s: Sampling) {
    let mut put = |key: &str, value: Option<Value>| {
        if let Some(value) = value {
            body.insert(key.into(), value);
        }
    };
    put("temperature", s.temperature.and_then(json_float));
    put("top_p", s.top_p.and_then(json_float));
    put(settings.max_tokens_field, s.max_tokens.map(Value::from));
    put("stop", (!s.stop.is_empty()).then(|| Value::from(s.stop)));
    put("presence_penalty", s.presence_penalty.and_then(json_float));
    put(
        "frequency_penalty",
        s.frequency_penalty.and_then(json_float),
    );
    put("seed", s.seed.map(Value::from));
    put("n", s.n.map(Value::from));
    put("reasoning_effort", s.reasoning_effort.map(Value::from));
}

/// Merges the fields the canonical form does not model. Keys already set win: `extra`
/// may add provider parameters but never change what the typed fields say.
fn merge_extra(
    body: &mut Map<String, Value>,
    extra: &str,
    stream: bool,
) -> Result<(), PluginError> {
    let mut extra = extra_fields(extra)?;
    // Client stream options (e.g. `include_obfuscation`) are kept, but usage is always
    // requested so every stream can be billed. OpenAI rejects `stream_options` on a
    // non-streamed request, so they are dropped there.
    let options = extra.remove("stream_options");
    if stream {
        let mut options = match options {
            Some(Value::Object(map)) => map,
            _ => Map::new(),
        };
        options.insert("include_usage".into(), true.into());
        body.insert("stream_options".into(), Value::Object(options));
    }
    for (key, value) in extra {
        body.entry(key).or_insert(value);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_sdk::testing::{deployment, request};

    fn settings(raw: &str) -> Settings {
        Settings::parse(&deployment("https://api.openai.com/v1", "gpt-4o-mini", raw))
            .expect("settings")
    }

    /// A request with a few sampling values set, to see them mapped.
    fn sampled(messages: &[(Role, &str)]) -> ChatRequest {
        let mut r = request(messages);
        r.sampling.temperature = Some(0.5);
        r.sampling.max_tokens = Some(64);
        r.sampling.stop = vec!["END".into()];
        r
    }

    #[test]
    fn builds_the_chat_completions_body_with_the_deployments_model() {
        let r = sampled(&[(Role::System, "be brief"), (Role::User, "hi")]);
        let b = body("gpt-4o-mini", &settings("{}"), r).expect("body");
        assert_eq!(
            b,
            json!({
                "model": "gpt-4o-mini",
                "messages": [
                    {"role": "system", "content": "be brief"},
                    {"role": "user", "content": "hi"},
                ],
                "temperature": 0.5,
                "max_completion_tokens": 64,
                "stop": ["END"],
                "stream": false,
            })
        );
    }

    #[test]
    fn older_servers_get_max_tokens_and_streams_always_ask_for_usage() {
        let mut r = sampled(&[(Role::User, "hi")]);
        r.stream = true;
        let b = body("m", &settings(r#"{"max_tokens_field":"max_tokens"}"#), r).expect("body");
        assert_eq!(b["max_tokens"], 64);
        assert!(b.get("max_completion_tokens").is_none());
        assert_eq!(b["stream_options"], json!({"include_usage": true}));
    }

    #[test]
    fn extra_fields_pass_through_but_never_override_typed_ones() {
        let mut r = sampled(&[(Role::User, "hi")]);
        r.extra = r#"{"logit_bias":{"42":1},"model":"other","stream":true}"#.into();
        let b = body("m", &settings("{}"), r).expect("body");
        assert_eq!(b["logit_bias"], json!({"42": 1}));
        assert_eq!(b["model"], "m");
        assert_eq!(b["stream"], false);
    }
}
