//! OpenAI streamed `chat.completion.chunk` events → canonical chunks.
//!
//! Each SSE event is one whole chunk (the host has already framed the bytes), so the only
//! state is whether `[DONE]` arrived: without it the stream was cut, and the usage chunk
//! that precedes it may be missing.

use serde_json::{Map, Value};
use switchyard_sdk::adapter::support::{bad_upstream, read_json, stream_cut};
use switchyard_sdk::adapter::{
    ChatChunk, ChoiceDelta, PluginError, StreamDecoder, StreamEvent, ToolCallDelta,
};

use crate::error::{embedded, error_event};
use crate::response::{
    arguments, content_parts, finish_reason, index, reasoning_field, role, string, unix_seconds,
    usage,
};

/// The host opens a decoder only for a 2xx response, so errors arrive in-band only.
#[derive(Default)]
pub(crate) struct Decoder {
    done: bool,
}

impl StreamDecoder for Decoder {
    fn decode(&mut self, event: StreamEvent) -> Result<Vec<ChatChunk>, PluginError> {
        let data = event.data.trim_ascii();
        // Keep-alives, and anything a server sends after `[DONE]`, carry nothing.
        if data.is_empty() || self.done {
            return Ok(Vec::new());
        }
        if event.event.as_deref() == Some("error") {
            return Err(error_event(data));
        }
        if data == b"[DONE]" {
            self.done = true;
            return Ok(Vec::new());
        }
        let value = read_json(data, "a stream event from the upstream")?;
        if let Some(err) = embedded(&value) {
            return Err(err);
        }
        Ok(vec![chunk(value)?])
    }

    fn finish(&mut self) -> Result<Vec<ChatChunk>, PluginError> {
        if self.done {
            Ok(Vec::new())
        } else {
            Err(stream_cut("[DONE]"))
        }
    }
}

fn chunk(value: Value) -> Result<ChatChunk, PluginError> {
    let Value::Object(mut obj) = value else {
        return Err(bad_upstream(
            "a stream event from the upstream is not a JSON object",
        ));
    };
    let choices = match obj.remove("choices") {
        Some(Value::Array(choices)) => choices,
        None | Some(Value::Null) => Vec::new(),
        Some(_) => return Err(bad_upstream("a stream chunk's `choices` is not an array")),
    };
    Ok(ChatChunk {
        id: string(obj.get("id")),
        model: string(obj.get("model")),
        created: unix_seconds(obj.get("created")),
        choices: choices
            .into_iter()
            .enumerate()
            .map(|(pos, c)| delta(pos, c))
            .collect(),
        usage: obj.get("usage").and_then(usage),
    })
}

fn delta(pos: usize, choice: Value) -> ChoiceDelta {
    let index = index(choice.get("index"), pos);
    let finish_reason = choice
        .get("finish_reason")
        .and_then(Value::as_str)
        .map(finish_reason);
    let mut d = match choice {
        Value::Object(mut c) => match c.remove("delta") {
            Some(Value::Object(d)) => d,
            _ => Map::new(),
        },
        _ => Map::new(),
    };
    let mut reasoning = reasoning_field(&d);
    let content = match d.remove("content") {
        Some(Value::String(text)) => Some(text),
        // Mistral's reasoning models stream arrays of text and `thinking` parts.
        Some(Value::Array(parts)) => {
            let (parts, thinking) = content_parts(parts);
            if !thinking.is_empty() {
                reasoning.get_or_insert_default().push_str(&thinking);
            }
            let text: String = parts
                .into_iter()
                .filter_map(|p| match p {
                    switchyard_sdk::adapter::ContentPart::Text(t) => Some(t),
                    _ => None,
                })
                .collect();
            (!text.is_empty()).then_some(text)
        }
        _ => None,
    };
    ChoiceDelta {
        index,
        role: d.get("role").and_then(Value::as_str).and_then(role),
        content,
        reasoning,
        tool_calls: tool_calls(&d),
        finish_reason,
    }
}

fn tool_calls(d: &Map<String, Value>) -> Vec<ToolCallDelta> {
    if let Some(Value::Array(calls)) = d.get("tool_calls") {
        return calls
            .iter()
            .enumerate()
            .map(|(pos, call)| {
                let function = call.get("function");
                ToolCallDelta {
                    index: index(call.get("index"), pos),
                    id: non_empty(call.get("id")),
                    name: non_empty(function.and_then(|f| f.get("name"))),
                    arguments: arguments(function.and_then(|f| f.get("arguments"))),
                }
            })
            .collect();
    }
    // The legacy `function_call` delta: one call, so index 0, and the id the
    // non-streamed reader gives it.
    match d.get("function_call") {
        Some(Value::Object(f)) => {
            let name = non_empty(f.get("name"));
            vec![ToolCallDelta {
                index: 0,
                id: name.as_ref().map(|_| "call_0".to_string()),
                name,
                arguments: arguments(f.get("arguments")),
            }]
        }
        _ => Vec::new(),
    }
}

fn non_empty(value: Option<&Value>) -> Option<String> {
    value
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(String::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(data: &str) -> StreamEvent {
        StreamEvent {
            event: None,
            data: data.as_bytes().to_vec(),
        }
    }

    #[test]
    fn decodes_chunks_until_done_and_ignores_keep_alives() {
        let mut d = Decoder::default();
        let c = d
            .decode(event(r#"{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":"he"},"finish_reason":null}]}"#))
            .expect("chunk");
        assert_eq!(c[0].choices[0].content.as_deref(), Some("he"));
        assert!(d.decode(event("")).expect("keep-alive").is_empty());
        let u = d
            .decode(event(r#"{"id":"c1","choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}"#))
            .expect("usage");
        assert_eq!(u[0].usage.as_ref().map(|u| u.completion_tokens), Some(2));
        assert!(d.decode(event("[DONE]")).expect("done").is_empty());
        assert!(d.finish().expect("clean end").is_empty());
    }

    #[test]
    fn a_stream_without_done_or_with_an_error_event_fails() {
        let mut d = Decoder::default();
        assert!(d.finish().is_err(), "cut before [DONE]");
        let mut d = Decoder::default();
        let e = d
            .decode(event(
                r#"{"error":{"message":"overloaded","type":"server_error"}}"#,
            ))
            .expect_err("error event");
        assert!(e.message.contains("overloaded"), "{}", e.message);
        let named = StreamEvent {
            event: Some("error".into()),
            data: br#"{"error":{"message":"quota exceeded"}}"#.to_vec(),
        };
        let e = Decoder::default()
            .decode(named)
            .expect_err("named error event");
        assert_eq!(e.message, "quota exceeded");
        assert!(Decoder::default().decode(event("{cut")).is_err());
    }
}
