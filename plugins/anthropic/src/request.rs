//! Canonical `chat-request` → Anthropic Messages request body.
//!
//! The shapes differ in four ways that matter: `system` is a top-level field, never a
//! message; turns must alternate user/assistant, so consecutive turns of one role are
//! merged; tool results are `tool_result` blocks inside a user turn (first in it); and
//! `max_tokens` is required.

use serde_json::{Map, Value, json};
use switchyard_sdk::adapter::support::{
    ImageSource, alternating_turns, call_arguments, extra_fields, file_data, image_source,
    json_float, merge_missing, plain_text, tool_parameters,
};
use switchyard_sdk::adapter::{
    ChatRequest, ContentPart, ImagePart, Message, PluginError, ResponseFormat, Role, Sampling,
    ToolCall, ToolChoice, ToolDefinition, unsupported,
};

use crate::settings::Settings;

/// The request body for `model` (the deployment's model id, not the public name).
pub(crate) fn body(
    model: &str,
    settings: &Settings,
    request: ChatRequest,
) -> Result<Value, PluginError> {
    if request.sampling.n.is_some_and(|n| n > 1) {
        return Err(unsupported("several choices (`n` > 1)"));
    }
    match request.response_format {
        None | Some(ResponseFormat::Text) => {}
        // Anthropic has no JSON mode; pretending would hand the client prose it cannot parse.
        Some(_) => return Err(unsupported("`response_format` json_object or json_schema")),
    }
    let mut body = Map::new();
    body.insert("model".into(), model.into());
    let (system, messages) = conversation(request.messages)?;
    if !system.is_empty() {
        body.insert("system".into(), system.join("\n\n").into());
    }
    body.insert("messages".into(), Value::Array(messages));
    sampling(&mut body, settings, request.sampling);

    if !request.tools.is_empty() {
        let tools = request
            .tools
            .into_iter()
            .map(tool)
            .collect::<Result<Vec<_>, _>>()?;
        body.insert("tools".into(), Value::Array(tools));
        if let Some(choice) = tool_choice(request.tool_choice, request.parallel_tool_calls) {
            body.insert("tool_choice".into(), choice);
        }
    }
    if let Some(user) = request.user {
        body.insert("metadata".into(), json!({ "user_id": user }));
    }
    // Always explicit, so that `extra` can never turn a stream on behind the host's back.
    body.insert("stream".into(), request.stream.into());
    // Fields the canonical form does not model (`top_k`, `thinking`, `metadata`, …).
    merge_missing(&mut body, extra_fields(&request.extra)?);
    Ok(Value::Object(body))
}

/// Splits the conversation into the system texts and alternating turns.
fn conversation(messages: Vec<Message>) -> Result<(Vec<String>, Vec<Value>), PluginError> {
    let (system, turns) = alternating_turns(messages, |i, m| {
        Ok(match m.role {
            Role::Assistant => ("assistant", assistant_blocks(i, m)?),
            Role::Tool => ("user", vec![tool_result(i, m)?]),
            // User turns; system and developer messages never get here.
            _ => ("user", content_blocks(i, m.content)?),
        })
    })?;
    let turns = turns
        .into_iter()
        .map(|mut t| {
            // Tool results must open the user turn that carries them; a stable sort keeps
            // every other order.
            t.blocks.sort_by_key(|b| b["type"] != "tool_result");
            json!({ "role": t.role, "content": t.blocks })
        })
        .collect();
    Ok((system, turns))
}

/// Text, image and document blocks. Anthropic rejects empty text blocks, so they are
/// dropped.
fn content_blocks(index: usize, parts: Vec<ContentPart>) -> Result<Vec<Value>, PluginError> {
    let mut out = Vec::with_capacity(parts.len());
    for part in parts {
        match part {
            ContentPart::Text(text) if text.is_empty() => {}
            ContentPart::Text(text) => out.push(json!({ "type": "text", "text": text })),
            ContentPart::Image(image) => out.push(image_block(index, &image)?),
            ContentPart::Other(raw) => out.push(other_block(index, &raw)?),
        }
    }
    Ok(out)
}

/// An image from a `data:` URL (base64 source) or an `http(s):` URL (url source).
fn image_block(index: usize, image: &ImagePart) -> Result<Value, PluginError> {
    let source = match image_source(index, image)? {
        ImageSource::Inline { media_type, data } => {
            json!({ "type": "base64", "media_type": media_type, "data": data })
        }
        ImageSource::Url(url) => json!({ "type": "url", "url": url }),
    };
    Ok(json!({ "type": "image", "source": source }))
}

/// An OpenAI `file` part holding a base64 PDF becomes a document block; any other part
/// this adapter cannot translate is refused rather than silently dropped.
fn other_block(index: usize, raw: &str) -> Result<Value, PluginError> {
    let (media_type, data) = file_data(index, raw, |t| t == "application/pdf")?;
    Ok(json!({
        "type": "document",
        "source": { "type": "base64", "media_type": media_type, "data": data },
    }))
}

/// An assistant turn: its text, then one `tool_use` block per call. Reasoning is not sent
/// back: Anthropic only accepts thinking blocks with the signature it issued, which the
/// canonical form does not carry.
fn assistant_blocks(index: usize, m: Message) -> Result<Vec<Value>, PluginError> {
    let mut blocks = content_blocks(index, m.content)?;
    for (j, call) in m.tool_calls.into_iter().enumerate() {
        blocks.push(tool_use(index, j, call)?);
    }
    Ok(blocks)
}

fn tool_use(index: usize, j: usize, call: ToolCall) -> Result<Value, PluginError> {
    Ok(json!({
        "type": "tool_use",
        "id": tool_id(&call.id),
        "name": call.name,
        "input": call_arguments(index, j, &call.arguments)?,
    }))
}

/// A tool message as a `tool_result` block: plain text as a string, text with images as
/// blocks.
fn tool_result(index: usize, m: Message) -> Result<Value, PluginError> {
    let id = m.tool_call_id.as_deref().unwrap_or_default();
    let mut out = Map::new();
    out.insert("type".into(), "tool_result".into());
    out.insert("tool_use_id".into(), tool_id(id).into());
    match plain_text(&m.content) {
        Some(text) if text.is_empty() => {}
        Some(text) => {
            out.insert("content".into(), text.into());
        }
        None => {
            out.insert(
                "content".into(),
                Value::Array(content_blocks(index, m.content)?),
            );
        }
    }
    Ok(Value::Object(out))
}

/// Anthropic accepts tool ids matching `^[a-zA-Z0-9_-]+$`; ids issued by other providers
/// (`functions.get_weather:0`) are mapped character by character, the same way for the
/// call and its result, so they still pair up.
fn tool_id(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn tool(t: ToolDefinition) -> Result<Value, PluginError> {
    let mut schema = tool_parameters(&t.name, &t.parameters)?;
    // Anthropic requires an object schema; `{}` means "no arguments".
    schema.entry("type").or_insert_with(|| "object".into());
    let mut out = Map::new();
    out.insert("name".into(), t.name.into());
    if let Some(description) = t.description {
        out.insert("description".into(), description.into());
    }
    out.insert("input_schema".into(), Value::Object(schema));
    Ok(Value::Object(out))
}

/// `tool_choice`, with `disable_parallel_tool_use` when the client turned parallel calls
/// off (Anthropic keeps that flag inside `tool_choice`).
fn tool_choice(choice: Option<ToolChoice>, parallel: Option<bool>) -> Option<Value> {
    let mut out = match choice {
        None if parallel == Some(false) => json!({ "type": "auto" }),
        None => return None,
        Some(ToolChoice::Auto) => json!({ "type": "auto" }),
        Some(ToolChoice::Required) => json!({ "type": "any" }),
        // `none` takes no other field.
        Some(ToolChoice::None) => return Some(json!({ "type": "none" })),
        Some(ToolChoice::Function(name)) => json!({ "type": "tool", "name": name }),
    };
    if parallel == Some(false) {
        out["disable_parallel_tool_use"] = true.into();
    }
    Some(out)
}

/// The sampling fields Anthropic has. Penalties, `seed` and `reasoning_effort` have no
/// Anthropic equivalent and are left out (the provider default applies).
fn sampling(body: &mut Map<String, Value>, settings: &Settings, s: Sampling) {
    let max_tokens = s.max_tokens.unwrap_or(settings.default_max_tokens);
    body.insert("max_tokens".into(), max_tokens.into());
    if let Some(t) = s.temperature.and_then(json_float) {
        body.insert("temperature".into(), t);
    }
    if let Some(p) = s.top_p.and_then(json_float) {
        body.insert("top_p".into(), p);
    }
    if !s.stop.is_empty() {
        body.insert("stop_sequences".into(), s.stop.into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_sdk::testing::{deployment, message as msg, request, request_from};

    fn settings() -> Settings {
        Settings::parse(&deployment("https://api.anthropic.com", "claude", "")).unwrap()
    }

    fn call(id: &str, args: &str) -> ToolCall {
        ToolCall {
            id: id.into(),
            name: "lookup".into(),
            arguments: args.into(),
        }
    }

    fn tool_msg(id: &str, text: &str) -> Message {
        Message {
            tool_call_id: Some(id.into()),
            ..msg(Role::Tool, text)
        }
    }

    #[test]
    fn system_and_developer_become_one_top_level_string() {
        let b = body(
            "claude",
            &settings(),
            request(&[
                (Role::System, "one"),
                (Role::User, "hi"),
                (Role::Developer, "two"),
            ]),
        )
        .unwrap();
        assert_eq!(b["system"], "one\n\ntwo");
        assert_eq!(b["messages"].as_array().unwrap().len(), 1);
        assert_eq!(b["max_tokens"], 4096);
        assert_eq!(b["model"], "claude");
    }

    #[test]
    fn parallel_tool_results_merge_into_one_user_turn_before_its_text() {
        let mut assistant = msg(Role::Assistant, "");
        assistant.tool_calls = vec![call("call.1", r#"{"q":1}"#), call("call_2", "")];
        let b = body(
            "claude",
            &settings(),
            request_from(vec![
                msg(Role::User, "go"),
                assistant,
                tool_msg("call.1", "a"),
                msg(Role::User, "and?"),
                tool_msg("call_2", "b"),
            ]),
        )
        .unwrap();
        let turns = b["messages"].as_array().unwrap();
        assert_eq!(turns.len(), 3, "{b}");
        assert_eq!(
            turns[1]["content"],
            json!([
                {"type": "tool_use", "id": "call_1", "name": "lookup", "input": {"q": 1}},
                {"type": "tool_use", "id": "call_2", "name": "lookup", "input": {}},
            ])
        );
        assert_eq!(
            turns[2],
            json!({"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "call_1", "content": "a"},
                {"type": "tool_result", "tool_use_id": "call_2", "content": "b"},
                {"type": "text", "text": "and?"},
            ]})
        );
    }

    #[test]
    fn consecutive_user_turns_merge() {
        let b = body(
            "claude",
            &settings(),
            request(&[(Role::User, "a"), (Role::User, "b")]),
        )
        .unwrap();
        assert_eq!(
            b["messages"],
            json!([{"role": "user", "content": [
                {"type": "text", "text": "a"}, {"type": "text", "text": "b"},
            ]}])
        );
    }

    #[test]
    fn images_map_to_base64_and_url_sources() {
        let mut m = msg(Role::User, "see");
        m.content.push(ContentPart::Image(ImagePart {
            url: "data:image/png;base64,iVBOR".into(),
            detail: Some("high".into()),
        }));
        m.content.push(ContentPart::Image(ImagePart {
            url: "https://example.com/cat.jpg".into(),
            detail: None,
        }));
        let b = body("claude", &settings(), request_from(vec![m])).unwrap();
        assert_eq!(
            b["messages"][0]["content"][1],
            json!({"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBOR"}})
        );
        assert_eq!(
            b["messages"][0]["content"][2],
            json!({"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}})
        );
        let mut bad = msg(Role::User, "x");
        bad.content = vec![ContentPart::Image(ImagePart {
            url: "file:///etc/passwd".into(),
            detail: None,
        })];
        let e = body("claude", &settings(), request_from(vec![bad])).unwrap_err();
        assert_eq!(e.kind, switchyard_sdk::adapter::ErrorKind::InvalidRequest);
    }

    #[test]
    fn tools_and_choices() {
        let mut r = request(&[(Role::User, "x")]);
        r.tools = vec![ToolDefinition {
            name: "lookup".into(),
            description: None,
            parameters: "{}".into(),
            strict: Some(true),
        }];
        r.tool_choice = Some(ToolChoice::Required);
        r.parallel_tool_calls = Some(false);
        let b = body("claude", &settings(), r.clone()).unwrap();
        assert_eq!(
            b["tools"],
            json!([{"name": "lookup", "input_schema": {"type": "object"}}])
        );
        assert_eq!(
            b["tool_choice"],
            json!({"type": "any", "disable_parallel_tool_use": true})
        );
        r.tool_choice = Some(ToolChoice::None);
        let b = body("claude", &settings(), r.clone()).unwrap();
        assert_eq!(b["tool_choice"], json!({"type": "none"}));
        r.tool_choice = None;
        r.parallel_tool_calls = None;
        let b = body("claude", &settings(), r).unwrap();
        assert!(b.get("tool_choice").is_none());
    }

    #[test]
    fn unsupported_features_are_refused() {
        let mut r = request(&[(Role::User, "x")]);
        r.sampling.n = Some(2);
        let e = body("claude", &settings(), r.clone()).unwrap_err();
        assert_eq!(e.kind, switchyard_sdk::adapter::ErrorKind::Unsupported);
        r.sampling.n = Some(1);
        r.response_format = Some(ResponseFormat::JsonObject);
        let e = body("claude", &settings(), r).unwrap_err();
        assert_eq!(e.kind, switchyard_sdk::adapter::ErrorKind::Unsupported);
    }

    #[test]
    fn extra_adds_fields_but_never_overrides() {
        let mut r = request(&[(Role::User, "x")]);
        r.stream = true;
        r.user = Some("u1".into());
        r.extra =
            r#"{"stream": false, "top_k": 5, "metadata": {"user_id": "evil", "x": 1}}"#.into();
        let b = body("claude", &settings(), r).unwrap();
        assert_eq!(b["stream"], true);
        assert_eq!(b["top_k"], 5);
        assert_eq!(b["metadata"], json!({"user_id": "u1", "x": 1}));
    }
}
