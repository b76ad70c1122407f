//! Canonical `chat-request` → Gemini `GenerateContentRequest` body.
//!
//! System messages become `systemInstruction`; the other turns become `contents` with
//! roles `user` and `model`, consecutive turns of one role merged. Tool results are
//! `functionResponse` parts of a user turn and must name the function, which Gemini
//! calls have instead of ids: the name comes from the earlier assistant call whose id
//! the tool message answers.

use std::collections::HashMap;

use serde_json::{Map, Value, json};
use switchyard_sdk::adapter::support::{
    ImageSource, alternating_turns, call_arguments, extra_fields, file_data, image_source, invalid,
    json_float, merge_missing, plain_text, tool_parameters,
};
use switchyard_sdk::adapter::{
    ChatRequest, ContentPart, ImagePart, Message, PluginError, ResponseFormat, Role, Sampling,
    ToolCall, ToolChoice, ToolDefinition, unsupported,
};

use crate::schema;
use crate::settings::{Settings, requires_thought_signatures};

/// Google's documented stand-in for a thought signature the client could not keep: the
/// canonical form has no field for the signature Gemini issued with a call.
const SKIP_SIGNATURE: &str = "skip_thought_signature_validator";

/// The request body; the model is in the path, not here.
pub(crate) fn body(
    model: &str,
    settings: &Settings,
    request: ChatRequest,
) -> Result<Value, PluginError> {
    let sign = settings
        .skip_thought_signature
        .unwrap_or_else(|| requires_thought_signatures(model));
    let mut body = Map::new();
    let (system, contents) = conversation(request.messages, sign)?;
    body.insert("contents".into(), Value::Array(contents));
    if !system.is_empty() {
        body.insert(
            "systemInstruction".into(),
            json!({ "parts": [{ "text": system.join("\n\n") }] }),
        );
    }
    if !request.tools.is_empty() {
        let declarations = request
            .tools
            .into_iter()
            .map(declaration)
            .collect::<Result<Vec<_>, _>>()?;
        body.insert(
            "tools".into(),
            json!([{ "functionDeclarations": declarations }]),
        );
        if let Some(choice) = request.tool_choice {
            body.insert(
                "toolConfig".into(),
                json!({ "functionCallingConfig": calling_config(choice) }),
            );
        }
    }
    let config = generation_config(request.sampling, request.response_format)?;
    if !config.is_empty() {
        body.insert("generationConfig".into(), Value::Object(config));
    }
    // Fields the canonical form does not model (`safetySettings`, `cachedContent`,
    // `generationConfig.thinkingConfig`, …).
    merge_missing(&mut body, extra_fields(&request.extra)?);
    Ok(Value::Object(body))
}

/// Splits the conversation into the system texts and the `contents`.
fn conversation(
    messages: Vec<Message>,
    sign: bool,
) -> Result<(Vec<String>, Vec<Value>), PluginError> {
    // Tool call id → function name, from the assistant turns seen so far.
    let mut names: HashMap<String, String> = HashMap::new();
    let (system, turns) = alternating_turns(messages, |i, m| {
        Ok(match m.role {
            Role::Assistant => ("model", model_parts(i, m, sign, &mut names)?),
            Role::Tool => ("user", vec![function_response(i, m, &names)?]),
            // User turns; system and developer messages never get here.
            _ => ("user", parts(i, m.content)?),
        })
    })?;
    let contents = turns
        .into_iter()
        .map(|t| json!({ "role": t.role, "parts": t.blocks }))
        .collect();
    Ok((system, contents))
}

/// Text, image and file parts. Gemini rejects empty text parts, so they are dropped.
fn parts(index: usize, content: Vec<ContentPart>) -> Result<Vec<Value>, PluginError> {
    let mut out = Vec::with_capacity(content.len());
    for part in content {
        match part {
            ContentPart::Text(text) if text.is_empty() => {}
            ContentPart::Text(text) => out.push(json!({ "text": text })),
            ContentPart::Image(image) => out.push(image_part(index, &image)?),
            ContentPart::Other(raw) => out.push(other_part(index, &raw)?),
        }
    }
    Ok(out)
}

/// An image from a `data:` URL (`inlineData`) or an `http(s):` URL (`fileData`).
fn image_part(index: usize, image: &ImagePart) -> Result<Value, PluginError> {
    Ok(match image_source(index, image)? {
        ImageSource::Inline { media_type, data } => {
            json!({ "inlineData": { "mimeType": media_type, "data": data } })
        }
        ImageSource::Url(url) => {
            let mut file = Map::new();
            if let Some(mime_type) = mime_from_extension(url) {
                file.insert("mimeType".into(), mime_type.into());
            }
            file.insert("fileUri".into(), url.into());
            json!({ "fileData": file })
        }
    })
}

/// An OpenAI `file` part holding a base64 `data:` URL becomes `inlineData`; any other
/// part this adapter cannot translate is refused rather than silently dropped.
fn other_part(index: usize, raw: &str) -> Result<Value, PluginError> {
    let (mime_type, data) = file_data(index, raw, |_| true)?;
    Ok(json!({ "inlineData": { "mimeType": mime_type, "data": data } }))
}

/// The MIME type of a URL's file extension, for the image types Gemini reads.
fn mime_from_extension(url: &str) -> Option<&'static str> {
    let path = url.split(['?', '#']).next().unwrap_or_default();
    let ext = path.rsplit_once('.')?.1.to_ascii_lowercase();
    Some(match ext.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "webp" => "image/webp",
        "gif" => "image/gif",
        "heic" => "image/heic",
        "heif" => "image/heif",
        "pdf" => "application/pdf",
        _ => return None,
    })
}

/// A model turn: its text, then one `functionCall` part per call. Reasoning is not sent
/// back: Gemini reads thoughts only with the signatures it issued.
fn model_parts(
    index: usize,
    m: Message,
    sign: bool,
    names: &mut HashMap<String, String>,
) -> Result<Vec<Value>, PluginError> {
    let mut out = parts(index, m.content)?;
    for (j, call) in m.tool_calls.into_iter().enumerate() {
        let mut part = function_call(index, j, &call)?;
        // Gemini 3 wants the signature on the first call of a turn (parallel calls share it).
        if sign && j == 0 {
            part.insert("thoughtSignature".into(), SKIP_SIGNATURE.into());
        }
        names.insert(call.id, call.name);
        out.push(Value::Object(part));
    }
    Ok(out)
}

fn function_call(
    index: usize,
    j: usize,
    call: &ToolCall,
) -> Result<Map<String, Value>, PluginError> {
    let args = call_arguments(index, j, &call.arguments)?;
    let mut part = Map::new();
    part.insert(
        "functionCall".into(),
        json!({ "name": call.name, "args": args }),
    );
    Ok(part)
}

/// A tool message as a `functionResponse` naming the function it answers. The result is
/// JSON when the text is JSON, else the text itself.
fn function_response(
    index: usize,
    m: Message,
    names: &HashMap<String, String>,
) -> Result<Value, PluginError> {
    let name = m
        .tool_call_id
        .as_ref()
        .and_then(|id| names.get(id))
        .cloned()
        .or(m.name)
        .ok_or_else(|| {
            invalid(format!(
                "messages[{index}]: the tool message answers no earlier tool call"
            ))
        })?;
    let text = plain_text(&m.content).ok_or_else(|| unsupported("non-text tool results"))?;
    let content = serde_json::from_str::<Value>(&text).unwrap_or(Value::String(text));
    Ok(json!({
        "functionResponse": { "name": name, "response": { "content": content } },
    }))
}

fn declaration(t: ToolDefinition) -> Result<Value, PluginError> {
    let mut out = Map::new();
    out.insert("name".into(), t.name.clone().into());
    if let Some(description) = t.description {
        out.insert("description".into(), description.into());
    }
    let parameters = Value::Object(tool_parameters(&t.name, &t.parameters)?);
    if !schema::is_empty_object(&parameters) {
        out.insert("parameters".into(), schema::to_gemini(parameters));
    }
    Ok(Value::Object(out))
}

fn calling_config(choice: ToolChoice) -> Value {
    match choice {
        ToolChoice::Auto => json!({ "mode": "AUTO" }),
        ToolChoice::None => json!({ "mode": "NONE" }),
        ToolChoice::Required => json!({ "mode": "ANY" }),
        ToolChoice::Function(name) => json!({ "mode": "ANY", "allowedFunctionNames": [name] }),
    }
}

/// `generationConfig`. `reasoning_effort` has no single Gemini equivalent across model
/// generations (thinking budgets, then levels) and is left out.
fn generation_config(
    s: Sampling,
    format: Option<ResponseFormat>,
) -> Result<Map<String, Value>, PluginError> {
    let mut out = Map::new();
    let mut put = |key: &str, value: Option<Value>| {
        if let Some(value) = value {
            out.insert(key.into(), value);
        }
    };
    put("temperature", s.temperature.and_then(json_float));
    put("topP", s.top_p.and_then(json_float));
    put("maxOutputTokens", s.max_tokens.map(Value::from));
    put(
        "stopSequences",
        (!s.stop.is_empty()).then(|| Value::from(s.stop)),
    );
    put("candidateCount", s.n.map(Value::from));
    put("seed", s.seed.map(Value::from));
    put("presencePenalty", s.presence_penalty.and_then(json_float));
    put("frequencyPenalty", s.frequency_penalty.and_then(json_float));
    match format {
        None | Some(ResponseFormat::Text) => {}
        Some(ResponseFormat::JsonObject) => {
            put("responseMimeType", Some("application/json".into()));
        }
        Some(ResponseFormat::JsonSchema(raw)) => {
            let spec: Value = serde_json::from_str(&raw)
                .map_err(|_| invalid("`response_format.json_schema` is not valid JSON"))?;
            put("responseMimeType", Some("application/json".into()));
            if let Some(schema) = spec.get("schema").filter(|s| s.is_object()) {
                put("responseSchema", Some(schema::to_gemini(schema.clone())));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_sdk::adapter::ErrorKind;
    use switchyard_sdk::testing::{deployment, message as msg, request, request_from};

    fn settings(raw: &str) -> Settings {
        Settings::parse(&deployment(
            "https://generativelanguage.googleapis.com",
            "gemini-2.0-flash",
            raw,
        ))
        .unwrap()
    }

    fn tool_turn(model: &str) -> Result<Value, PluginError> {
        let mut assistant = msg(Role::Assistant, "");
        assistant.tool_calls = vec![
            ToolCall {
                id: "c1".into(),
                name: "weather".into(),
                arguments: r#"{"city":"Oslo"}"#.into(),
            },
            ToolCall {
                id: "c2".into(),
                name: "time".into(),
                arguments: String::new(),
            },
        ];
        let answer = |id: &str, text: &str| Message {
            tool_call_id: Some(id.into()),
            ..msg(Role::Tool, text)
        };
        body(
            model,
            &settings("{}"),
            request_from(vec![
                msg(Role::User, "weather and time?"),
                assistant,
                answer("c2", "12:00"),
                answer("c1", r#"{"temp": -3}"#),
            ]),
        )
    }

    #[test]
    fn function_responses_are_named_from_the_calls_they_answer() {
        let b = tool_turn("gemini-2.0-flash").unwrap();
        assert_eq!(
            b["contents"][1],
            json!({"role": "model", "parts": [
                {"functionCall": {"name": "weather", "args": {"city": "Oslo"}}},
                {"functionCall": {"name": "time", "args": {}}},
            ]})
        );
        assert_eq!(
            b["contents"][2],
            json!({"role": "user", "parts": [
                {"functionResponse": {"name": "time", "response": {"content": "12:00"}}},
                {"functionResponse": {"name": "weather", "response": {"content": {"temp": -3}}}},
            ]})
        );
    }

    #[test]
    fn gemini_3_calls_carry_the_signature_sentinel_on_the_first_call_only() {
        let b = tool_turn("gemini-3-pro-preview").unwrap();
        let parts = &b["contents"][1]["parts"];
        assert_eq!(parts[0]["thoughtSignature"], SKIP_SIGNATURE);
        assert!(parts[1].get("thoughtSignature").is_none());
        assert!(requires_thought_signatures("models/gemini-3.1-flash"));
        assert!(requires_thought_signatures("gemini-10-ultra"));
        assert!(!requires_thought_signatures("gemini-2.5-pro"));
        assert!(!requires_thought_signatures("learnlm-2.0"));
    }

    #[test]
    fn an_unanswerable_tool_message_is_refused() {
        let orphan = Message {
            tool_call_id: Some("nope".into()),
            ..msg(Role::Tool, "x")
        };
        let e = body(
            "gemini-2.0-flash",
            &settings("{}"),
            request_from(vec![orphan]),
        )
        .unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidRequest);
    }

    #[test]
    fn system_images_config_and_tools() {
        let mut user = msg(Role::User, "look");
        user.content.push(ContentPart::Image(ImagePart {
            url: "data:image/jpeg;base64,/9j/".into(),
            detail: None,
        }));
        user.content.push(ContentPart::Image(ImagePart {
            url: "https://example.com/a.PNG?x=1".into(),
            detail: None,
        }));
        let mut r = request_from(vec![
            msg(Role::System, "be brief"),
            user,
            msg(Role::User, ""),
        ]);
        r.sampling.temperature = Some(0.3);
        r.sampling.top_p = Some(0.9);
        r.sampling.n = Some(2);
        r.sampling.seed = Some(7);
        r.sampling.max_tokens = Some(50);
        r.response_format = Some(ResponseFormat::JsonSchema(
            r#"{"name":"x","strict":true,"schema":{"type":"object","properties":{"a":{"type":["string","null"],"format":"uri"}},"additionalProperties":false}}"#.into(),
        ));
        r.tools = vec![ToolDefinition {
            name: "ping".into(),
            description: Some("no arguments".into()),
            parameters: r#"{"type":"object","properties":{}}"#.into(),
            strict: None,
        }];
        r.tool_choice = Some(ToolChoice::None);
        let b = body("gemini-2.0-flash", &settings("{}"), r).unwrap();
        assert_eq!(
            b["systemInstruction"],
            json!({"parts": [{"text": "be brief"}]})
        );
        assert_eq!(
            b["contents"],
            json!([{"role": "user", "parts": [
                {"text": "look"},
                {"inlineData": {"mimeType": "image/jpeg", "data": "/9j/"}},
                {"fileData": {"mimeType": "image/png", "fileUri": "https://example.com/a.PNG?x=1"}},
            ]}])
        );
        assert_eq!(
            b["generationConfig"],
            json!({
                "temperature": 0.3, "topP": 0.9, "maxOutputTokens": 50, "candidateCount": 2,
                "seed": 7, "responseMimeType": "application/json",
                "responseSchema": {"type": "object", "properties": {"a": {"type": "string", "nullable": true}}},
            })
        );
        assert_eq!(
            b["tools"],
            json!([{"functionDeclarations": [{"name": "ping", "description": "no arguments"}]}])
        );
        assert_eq!(
            b["toolConfig"],
            json!({"functionCallingConfig": {"mode": "NONE"}})
        );
    }

    #[test]
    fn extra_merges_into_nested_objects_without_overriding() {
        let mut r = request(&[(Role::User, "x")]);
        r.sampling.temperature = Some(1.0);
        r.extra = r#"{"generationConfig": {"temperature": 0, "thinkingConfig": {"thinkingBudget": 0}}, "safetySettings": []}"#.into();
        let b = body("gemini-2.5-flash", &settings("{}"), r).unwrap();
        assert_eq!(
            b["generationConfig"],
            json!({"temperature": 1.0, "thinkingConfig": {"thinkingBudget": 0}})
        );
        assert_eq!(b["safetySettings"], json!([]));
    }

    #[test]
    fn paths_encode_the_model_and_pick_the_method() {
        let s = settings("{}");
        assert_eq!(
            s.path("gemini-2.0-flash", false),
            "/v1beta/models/gemini-2.0-flash:generateContent"
        );
        assert_eq!(
            s.path("models/gemini-2.0-flash", true),
            "/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse"
        );
        assert_eq!(
            s.path("tunedModels/my-model", false),
            "/v1beta/tunedModels/my-model:generateContent"
        );
        assert_eq!(
            s.path("a/../b?c", false),
            "/v1beta/models/a%2F..%2Fb%3Fc:generateContent"
        );
        let v1 = settings(r#"{"api_version": "v1", "auth": "query"}"#);
        assert_eq!(v1.path("m", false), "/v1/models/m:generateContent");
        assert!(
            matches!(&v1.credential, switchyard_sdk::adapter::CredentialPlacement::Query(k) if k == "key")
        );
        assert!(
            matches!(&s.credential, switchyard_sdk::adapter::CredentialPlacement::Header(h) if h == "x-goog-api-key")
        );
        assert!(Settings::parse(&deployment("b", "m", r#"{"api_version": "../x"}"#)).is_err());
        let e = Settings::parse(&deployment(
            "b",
            "m",
            r#"{"skip_thought_signatures": true}"#,
        ));
        assert!(
            e.is_err_and(|e| e
                .message
                .contains("unknown field `skip_thought_signatures`")),
            "a typo'd key is refused by name"
        );
    }
}
