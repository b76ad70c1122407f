//! {{name}}: a Switchyard adapter for a server speaking OpenAI's Chat Completions
//! (`POST {base_url}/chat/completions`: vLLM, llama.cpp's server, Ollama, LM Studio),
//! text only, streamed or not. The host does the HTTP call and adds the credential; this
//! code only writes the request and reads the answer. Start here for your own model's
//! API: change the JSON in `build_request`, `parse_response` and `Decoder`.
//!
//! Deployment settings (`[deployments.NAME.settings]`), optional:
//! `path = "/chat/completions"`.

use serde::Deserialize;
use serde_json::{Value, json};
use switchyard_sdk::adapter::support::{bad_upstream, invalid, read_object, status_error};
use switchyard_sdk::adapter::*;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Settings {
    path: String,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            path: "/chat/completions".into(),
        }
    }
}

#[derive(Default)]
struct Plugin;

fn role(r: Role) -> &'static str {
    match r {
        Role::System | Role::Developer => "system",
        Role::User => "user",
        Role::Assistant => "assistant",
        Role::Tool => "tool",
    }
}

impl Adapter for Plugin {
    fn build_request(
        &mut self,
        deployment: Deployment,
        request: ChatRequest,
    ) -> Result<UpstreamRequest, PluginError> {
        let settings: Settings = switchyard_sdk::adapter::support::settings(&deployment)?;
        if !request.tools.is_empty() {
            return Err(unsupported("tools"));
        }
        let mut messages = Vec::with_capacity(request.messages.len());
        for (i, m) in request.messages.iter().enumerate() {
            let mut text = String::new();
            for part in &m.content {
                match part {
                    ContentPart::Text(t) => text.push_str(t),
                    _ => return Err(invalid(format!("messages[{i}]: only text is supported"))),
                }
            }
            messages.push(json!({ "role": role(m.role), "content": text }));
        }
        let mut body = json!({
            "model": deployment.model_id,
            "messages": messages,
            "stream": request.stream,
        });
        let s = &request.sampling;
        if let Some(n) = s.max_tokens {
            body["max_tokens"] = json!(n);
        }
        if let Some(t) = s.temperature {
            body["temperature"] = json!(t);
        }
        if !s.stop.is_empty() {
            body["stop"] = json!(s.stop);
        }
        if request.stream {
            // Usage in the last chunk, so the gateway bills what the server counted.
            body["stream_options"] = json!({ "include_usage": true });
        }
        Ok(UpstreamRequest {
            method: "POST".into(),
            path: settings.path,
            headers: vec![Header {
                name: "content-type".into(),
                value: b"application/json".to_vec(),
            }],
            body: serde_json::to_vec(&body).map_err(|_| invalid("unserialisable request"))?,
            credential: CredentialPlacement::Bearer,
            streaming: request.stream.then_some(StreamFraming::Sse),
        })
    }

    fn parse_response(
        &mut self,
        _deployment: Deployment,
        response: UpstreamResponse,
    ) -> Result<ChatResponse, PluginError> {
        if !(200..300).contains(&response.status) {
            return Err(status_error(response.status, &response.body, |v| {
                v["error"]["message"].as_str().map(str::to_owned)
            }));
        }
        let v = read_object(&response.body, "response")?;
        let choices = v["choices"].as_array().ok_or_else(|| bad_upstream("no `choices`"))?;
        let choices = choices
            .iter()
            .enumerate()
            .map(|(i, c)| Choice {
                index: i as u32,
                message: Message {
                    role: Role::Assistant,
                    content: vec![ContentPart::Text(
                        c["message"]["content"].as_str().unwrap_or("").to_owned(),
                    )],
                    name: None,
                    tool_calls: vec![],
                    tool_call_id: None,
                    reasoning: None,
                },
                finish_reason: finish(&c["finish_reason"]),
            })
            .collect();
        Ok(ChatResponse {
            id: v["id"].as_str().unwrap_or("").to_owned(),
            model: v["model"].as_str().unwrap_or("").to_owned(),
            created: v["created"].as_u64().unwrap_or(0),
            choices,
            usage: usage(&v["usage"]),
            extra: String::new(),
        })
    }

    fn open_stream(
        &mut self,
        _deployment: Deployment,
        _status: u16,
        _headers: Vec<Header>,
    ) -> Box<dyn StreamDecoder> {
        Box::new(Decoder)
    }
}

fn finish(v: &Value) -> Option<FinishReason> {
    match v.as_str()? {
        "stop" => Some(FinishReason::Stop),
        "length" => Some(FinishReason::Length),
        "content_filter" => Some(FinishReason::ContentFilter),
        "tool_calls" => Some(FinishReason::ToolCalls),
        _ => None,
    }
}

fn usage(v: &Value) -> Option<Usage> {
    let count = |k: &str| v[k].as_u64().map(|n| n as u32);
    Some(Usage {
        prompt_tokens: count("prompt_tokens")?,
        completion_tokens: count("completion_tokens")?,
        cached_tokens: 0,
        cache_creation_tokens: 0,
        reasoning_tokens: 0,
    })
}

/// One stream: each SSE `data:` event is a JSON chunk; `[DONE]` ends it.
struct Decoder;

impl StreamDecoder for Decoder {
    fn decode(&mut self, event: StreamEvent) -> Result<Vec<ChatChunk>, PluginError> {
        if event.data.as_slice() == b"[DONE]" {
            return Ok(vec![]);
        }
        let v = read_object(&event.data, "stream event")?;
        if let Some(message) = v["error"]["message"].as_str() {
            return Err(switchyard_sdk::adapter::support::upstream(message));
        }
        let choices = v["choices"].as_array().map_or(&[][..], Vec::as_slice);
        Ok(vec![ChatChunk {
            id: v["id"].as_str().unwrap_or("").to_owned(),
            model: v["model"].as_str().unwrap_or("").to_owned(),
            created: v["created"].as_u64().unwrap_or(0),
            choices: choices
                .iter()
                .enumerate()
                .map(|(i, c)| ChoiceDelta {
                    index: i as u32,
                    role: None,
                    content: c["delta"]["content"].as_str().map(str::to_owned),
                    reasoning: None,
                    tool_calls: vec![],
                    finish_reason: finish(&c["finish_reason"]),
                })
                .collect(),
            usage: usage(&v["usage"]),
        }])
    }
}

switchyard_sdk::export_adapter!(Plugin);

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_sdk::testing::{deployment, request};

    #[test]
    fn builds_an_openai_style_request() {
        let d = deployment("http://127.0.0.1:8000/v1", "my-model", "{}");
        let r = Plugin
            .build_request(d, request(&[(Role::System, "be brief"), (Role::User, "hi")]))
            .unwrap();
        assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/chat/completions"));
        let body: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(body["model"], "my-model");
        assert_eq!(body["messages"][1], json!({"role": "user", "content": "hi"}));
    }

    #[test]
    fn reads_an_answer_and_an_error() {
        let d = deployment("http://x/v1", "m", "{}");
        let ok = UpstreamResponse {
            status: 200,
            headers: vec![],
            body: br#"{"id":"c1","model":"m","choices":[{"message":{"content":"hello"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":1}}"#.to_vec(),
        };
        let r = Plugin.parse_response(d.clone(), ok).unwrap();
        assert!(matches!(&r.choices[0].message.content[..], [ContentPart::Text(t)] if t == "hello"));
        assert_eq!(r.usage.unwrap().prompt_tokens, 3);
        let err = UpstreamResponse {
            status: 429,
            headers: vec![],
            body: br#"{"error":{"message":"slow down"}}"#.to_vec(),
        };
        let e = Plugin.parse_response(d, err).unwrap_err();
        assert_eq!((e.kind, e.message.as_str()), (ErrorKind::UpstreamError, "slow down"));
    }

    #[test]
    fn decodes_a_stream() {
        let mut dec = Decoder;
        let event = |data: &str| StreamEvent {
            event: None,
            data: data.as_bytes().to_vec(),
        };
        let chunks = dec
            .decode(event(r#"{"id":"c","choices":[{"delta":{"content":"Hel"}}]}"#))
            .unwrap();
        assert_eq!(chunks[0].choices[0].content.as_deref(), Some("Hel"));
        assert!(dec.decode(event("[DONE]")).unwrap().is_empty());
    }
}
