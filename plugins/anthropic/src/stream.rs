//! Anthropic's named-event stream → canonical chunks.
//!
//! `message_start` → per content block `content_block_start` / `content_block_delta`* /
//! `content_block_stop` → `message_delta` (stop reason, cumulative output tokens) →
//! `message_stop`, with `ping` anywhere and `error` possible mid-stream. The state kept:
//! the message id and model, which content blocks are client tool calls (and which
//! canonical tool index each got), the running token counts, and whether `message_stop`
//! arrived — without it the stream was cut.

use serde_json::Value;
use switchyard_sdk::adapter::support::{read_json, stream_cut};
use switchyard_sdk::adapter::{
    ChatChunk, ChoiceDelta, FinishReason, PluginError, Role, StreamDecoder, StreamEvent,
    ToolCallDelta,
};

use crate::error::embedded;
use crate::response::{Tokens, finish_reason, str_of};

/// A `tool_use` content block of this message.
struct ToolBlock {
    /// Anthropic's content block index.
    block: u64,
    /// The canonical tool-call index (tool blocks counted from 0).
    index: u32,
    /// Whether any argument text was emitted for it.
    has_arguments: bool,
}

/// The host opens a decoder only for a 2xx response, so errors arrive in-band only, as
/// `error` events.
pub(crate) struct Decoder {
    id: String,
    model: String,
    /// The first chunk carries the assistant role.
    sent_role: bool,
    tools: Vec<ToolBlock>,
    tokens: Tokens,
    done: bool,
}

impl Decoder {
    /// `model` is the deployment's model id, used until `message_start` names one.
    pub(crate) fn new(model: String) -> Self {
        Decoder {
            id: String::new(),
            model,
            sent_role: false,
            tools: Vec::new(),
            tokens: Tokens::default(),
            done: false,
        }
    }
}

impl StreamDecoder for Decoder {
    fn decode(&mut self, event: StreamEvent) -> Result<Vec<ChatChunk>, PluginError> {
        let data = event.data.trim_ascii();
        // Keep-alives, and anything sent after `message_stop`, carry nothing.
        if self.done || data.is_empty() {
            return Ok(Vec::new());
        }
        let name = event.event.as_deref().filter(|n| !n.is_empty());
        if name == Some("ping") {
            return Ok(Vec::new());
        }
        let value = read_json(data, "a stream event from the upstream")?;
        // Proxies that drop `event:` lines still send the name as `type`.
        let name = name.unwrap_or_else(|| str_of(value.get("type")));
        let chunk = match name {
            "message_start" => self.message_start(&value),
            "content_block_start" => self.block_start(&value),
            "content_block_delta" => self.block_delta(&value),
            "content_block_stop" => self.block_stop(&value),
            "message_delta" => self.message_delta(&value),
            "message_stop" => {
                self.done = true;
                Some(ChatChunk {
                    id: self.id.clone(),
                    model: self.model.clone(),
                    created: 0,
                    choices: Vec::new(),
                    usage: Some(self.tokens.usage()),
                })
            }
            "error" => return Err(embedded(&value)),
            // `ping`, and event types added after this adapter was written.
            _ => None,
        };
        Ok(chunk.into_iter().collect())
    }

    fn finish(&mut self) -> Result<Vec<ChatChunk>, PluginError> {
        if self.done {
            Ok(Vec::new())
        } else {
            Err(stream_cut("message_stop"))
        }
    }
}

impl Decoder {
    /// A chunk for choice 0; the first one carries the role.
    fn chunk(&mut self, delta: Delta) -> ChatChunk {
        let role = (!self.sent_role).then_some(Role::Assistant);
        self.sent_role = true;
        ChatChunk {
            id: self.id.clone(),
            model: self.model.clone(),
            created: 0,
            choices: vec![ChoiceDelta {
                index: 0,
                role,
                content: delta.content,
                reasoning: delta.reasoning,
                tool_calls: delta.tool_calls,
                finish_reason: delta.finish_reason,
            }],
            usage: None,
        }
    }

    /// Opens the answer with the role, as OpenAI's first chunk does.
    fn message_start(&mut self, value: &Value) -> Option<ChatChunk> {
        let message = value.get("message")?;
        if let Some(id) = message.get("id").and_then(Value::as_str) {
            self.id = id.to_string();
        }
        if let Some(model) = message.get("model").and_then(Value::as_str)
            && !model.is_empty()
        {
            self.model = model.to_string();
        }
        if let Some(usage) = message.get("usage") {
            self.tokens = self.tokens.read(usage);
        }
        Some(self.chunk(Delta {
            content: Some(String::new()),
            ..Delta::default()
        }))
    }

    fn block_start(&mut self, value: &Value) -> Option<ChatChunk> {
        let block = value.get("content_block")?;
        let delta = match str_of(block.get("type")) {
            "text" => Delta::content(str_of(block.get("text")))?,
            "thinking" => Delta::reasoning(str_of(block.get("thinking")))?,
            "tool_use" => {
                let index = u32::try_from(self.tools.len()).unwrap_or(u32::MAX);
                // The block opens with `input: {}` and the arguments follow as fragments;
                // a proxy that sends the whole input up front is taken at its word.
                let arguments = match block.get("input") {
                    Some(Value::Object(input)) if !input.is_empty() => {
                        Value::Object(input.clone()).to_string()
                    }
                    _ => String::new(),
                };
                self.tools.push(ToolBlock {
                    block: block_index(value),
                    index,
                    has_arguments: !arguments.is_empty(),
                });
                Delta::tool_call(ToolCallDelta {
                    index,
                    id: Some(str_of(block.get("id")).to_string()),
                    name: Some(str_of(block.get("name")).to_string()),
                    arguments,
                })
            }
            // redacted_thinking, server tool use and results: nothing for the client.
            _ => return None,
        };
        Some(self.chunk(delta))
    }

    fn block_delta(&mut self, value: &Value) -> Option<ChatChunk> {
        let delta = value.get("delta")?;
        let out = match str_of(delta.get("type")) {
            "text_delta" => Delta::content(str_of(delta.get("text")))?,
            "thinking_delta" => Delta::reasoning(str_of(delta.get("thinking")))?,
            "input_json_delta" => {
                let fragment = str_of(delta.get("partial_json"));
                // Only client tool blocks: a server tool's input is not a call to answer.
                let tool = self.tool(block_index(value))?;
                if fragment.is_empty() {
                    return None;
                }
                tool.has_arguments = true;
                Delta::tool_call(ToolCallDelta {
                    index: tool.index,
                    id: None,
                    name: None,
                    arguments: fragment.to_string(),
                })
            }
            // signature_delta, citations_delta: nothing the canonical form carries.
            _ => return None,
        };
        Some(self.chunk(out))
    }

    /// A tool without arguments may stream only empty fragments; its arguments are then
    /// `{}`, so that what the client joins is always a JSON object.
    fn block_stop(&mut self, value: &Value) -> Option<ChatChunk> {
        let tool = self.tool(block_index(value))?;
        if tool.has_arguments {
            return None;
        }
        tool.has_arguments = true;
        let index = tool.index;
        Some(self.chunk(Delta::tool_call(ToolCallDelta {
            index,
            id: None,
            name: None,
            arguments: "{}".into(),
        })))
    }

    fn message_delta(&mut self, value: &Value) -> Option<ChatChunk> {
        // `output_tokens` here is cumulative: it replaces the count, never adds to it.
        if let Some(usage) = value.get("usage") {
            self.tokens = self.tokens.read(usage);
        }
        let reason = value
            .pointer("/delta/stop_reason")
            .and_then(Value::as_str)?;
        Some(self.chunk(Delta {
            finish_reason: Some(finish_reason(reason)),
            ..Delta::default()
        }))
    }

    /// The tool block with this content block index.
    fn tool(&mut self, block: u64) -> Option<&mut ToolBlock> {
        self.tools.iter_mut().rev().find(|t| t.block == block)
    }
}

/// An event's content block `index` (0 when a proxy leaves it out).
fn block_index(value: &Value) -> u64 {
    value.get("index").and_then(Value::as_u64).unwrap_or(0)
}

/// What one chunk adds to choice 0.
#[derive(Default)]
struct Delta {
    content: Option<String>,
    reasoning: Option<String>,
    tool_calls: Vec<ToolCallDelta>,
    finish_reason: Option<FinishReason>,
}

impl Delta {
    /// Text to append; `None` when there is none (no empty chunk is sent for it).
    fn content(text: &str) -> Option<Delta> {
        (!text.is_empty()).then(|| Delta {
            content: Some(text.to_string()),
            ..Delta::default()
        })
    }

    fn reasoning(text: &str) -> Option<Delta> {
        (!text.is_empty()).then(|| Delta {
            reasoning: Some(text.to_string()),
            ..Delta::default()
        })
    }

    fn tool_call(call: ToolCallDelta) -> Delta {
        Delta {
            tool_calls: vec![call],
            ..Delta::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(name: &str, data: Value) -> StreamEvent {
        StreamEvent {
            event: Some(name.into()),
            data: data.to_string().into_bytes(),
        }
    }

    fn feed(d: &mut Decoder, events: Vec<(&str, Value)>) -> Vec<ChatChunk> {
        events
            .into_iter()
            .flat_map(|(n, v)| d.decode(event(n, v)).unwrap())
            .collect()
    }

    fn start() -> (&'static str, Value) {
        (
            "message_start",
            json!({"type": "message_start", "message": {"id": "msg_1", "model": "claude-x",
                "usage": {"input_tokens": 7, "cache_read_input_tokens": 3, "output_tokens": 1}}}),
        )
    }

    #[test]
    fn thinking_text_and_usage() {
        let mut d = Decoder::new("dep".into());
        let chunks = feed(
            &mut d,
            vec![
                start(),
                (
                    "content_block_start",
                    json!({"index": 0, "content_block": {"type": "thinking", "thinking": ""}}),
                ),
                (
                    "content_block_delta",
                    json!({"index": 0, "delta": {"type": "thinking_delta", "thinking": "hm"}}),
                ),
                (
                    "content_block_delta",
                    json!({"index": 0, "delta": {"type": "signature_delta", "signature": "s"}}),
                ),
                ("content_block_stop", json!({"index": 0})),
                ("ping", json!({"type": "ping"})),
                (
                    "content_block_start",
                    json!({"index": 1, "content_block": {"type": "text", "text": ""}}),
                ),
                (
                    "content_block_delta",
                    json!({"index": 1, "delta": {"type": "text_delta", "text": "Hi"}}),
                ),
                ("content_block_stop", json!({"index": 1})),
                (
                    "message_delta",
                    json!({"delta": {"stop_reason": "max_tokens"}, "usage": {"output_tokens": 9}}),
                ),
                ("message_stop", json!({"type": "message_stop"})),
            ],
        );
        assert_eq!(chunks[0].choices[0].role, Some(Role::Assistant));
        assert!(
            chunks[1..]
                .iter()
                .all(|c| c.choices.iter().all(|d| d.role.is_none()))
        );
        assert!(
            chunks
                .iter()
                .all(|c| c.id == "msg_1" && c.model == "claude-x")
        );
        let reasoning: String = chunks
            .iter()
            .filter_map(|c| c.choices.first()?.reasoning.clone())
            .collect();
        assert_eq!(reasoning, "hm");
        let text: String = chunks
            .iter()
            .filter_map(|c| c.choices.first()?.content.clone())
            .collect();
        assert_eq!(text, "Hi");
        let finish = chunks.iter().find_map(|c| c.choices.first()?.finish_reason);
        assert_eq!(finish, Some(FinishReason::Length));
        let last = chunks.last().unwrap();
        assert!(last.choices.is_empty());
        let u = last.usage.unwrap();
        assert_eq!(
            (u.prompt_tokens, u.completion_tokens, u.cached_tokens),
            (10, 9, 3)
        );
        assert!(d.finish().unwrap().is_empty());
    }

    #[test]
    fn tools_get_running_indexes_and_empty_arguments_become_an_object() {
        let mut d = Decoder::new("dep".into());
        let chunks = feed(
            &mut d,
            vec![
                start(),
                (
                    "content_block_start",
                    json!({"index": 0, "content_block": {"type": "text", "text": "Let me"}}),
                ),
                ("content_block_stop", json!({"index": 0})),
                (
                    "content_block_start",
                    json!({"index": 1, "content_block": {"type": "tool_use", "id": "t1", "name": "a", "input": {}}}),
                ),
                (
                    "content_block_delta",
                    json!({"index": 1, "delta": {"type": "input_json_delta", "partial_json": ""}}),
                ),
                (
                    "content_block_delta",
                    json!({"index": 1, "delta": {"type": "input_json_delta", "partial_json": "{\"x\":"}}),
                ),
                (
                    "content_block_delta",
                    json!({"index": 1, "delta": {"type": "input_json_delta", "partial_json": "1}"}}),
                ),
                ("content_block_stop", json!({"index": 1})),
                (
                    "content_block_start",
                    json!({"index": 2, "content_block": {"type": "tool_use", "id": "t2", "name": "b", "input": {}}}),
                ),
                (
                    "content_block_delta",
                    json!({"index": 2, "delta": {"type": "input_json_delta", "partial_json": ""}}),
                ),
                ("content_block_stop", json!({"index": 2})),
                (
                    "message_delta",
                    json!({"delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 3}}),
                ),
                ("message_stop", json!({})),
            ],
        );
        let calls: Vec<&ToolCallDelta> = chunks
            .iter()
            .flat_map(|c| c.choices.iter().flat_map(|d| d.tool_calls.iter()))
            .collect();
        let args = |i: u32| -> String {
            calls
                .iter()
                .filter(|c| c.index == i)
                .map(|c| c.arguments.as_str())
                .collect()
        };
        assert_eq!(args(0), r#"{"x":1}"#);
        assert_eq!(args(1), "{}");
        assert_eq!(calls[0].id.as_deref(), Some("t1"));
        assert_eq!(calls.iter().filter(|c| c.id.is_some()).count(), 2);
    }

    #[test]
    fn server_tool_input_is_not_a_client_call() {
        let mut d = Decoder::new("dep".into());
        let chunks = feed(
            &mut d,
            vec![
                start(),
                (
                    "content_block_start",
                    json!({"index": 0, "content_block": {"type": "server_tool_use", "id": "s", "name": "web_search", "input": {}}}),
                ),
                (
                    "content_block_delta",
                    json!({"index": 0, "delta": {"type": "input_json_delta", "partial_json": "{\"q\":1}"}}),
                ),
            ],
        );
        assert!(
            chunks
                .iter()
                .all(|c| c.choices.iter().all(|d| d.tool_calls.is_empty()))
        );
    }

    #[test]
    fn events_named_only_by_type_are_understood() {
        let mut d = Decoder::new("dep".into());
        let e = StreamEvent {
            event: None,
            data: br#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"x"}}"#.to_vec(),
        };
        let chunks = d.decode(e).unwrap();
        assert_eq!(chunks[0].choices[0].content.as_deref(), Some("x"));
    }

    #[test]
    fn error_event_and_cut_stream_fail() {
        let mut d = Decoder::new("dep".into());
        feed(&mut d, vec![start()]);
        let e = d
            .decode(event(
                "error",
                json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
            ))
            .unwrap_err();
        assert_eq!(e.kind, switchyard_sdk::adapter::ErrorKind::UpstreamError);
        assert_eq!(e.message, "Overloaded");
        let e = d.finish().unwrap_err();
        assert_eq!(
            e.kind,
            switchyard_sdk::adapter::ErrorKind::BadUpstreamResponse
        );
        assert_eq!(e.message, "stream ended before message_stop");
    }
}
