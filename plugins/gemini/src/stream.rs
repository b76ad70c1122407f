//! Gemini's `streamGenerateContent?alt=sse` events → canonical chunks.
//!
//! Every event is a whole `GenerateContentResponse` carrying the next parts, so each one
//! maps to one chunk. What needs state: the role goes on a choice's first chunk only;
//! function calls arrive whole and get ids numbered across events; `usageMetadata` is a
//! running total repeated on every event (never to be added up), so only the latest is
//! kept and reported once at the end; and a stream without any `finishReason` was cut.

use serde_json::Value;
use switchyard_sdk::adapter::support::{read_object, stream_cut};
use switchyard_sdk::adapter::{
    ChatChunk, ChoiceDelta, FinishReason, PluginError, Role, StreamDecoder, StreamEvent,
    ToolCallDelta, Usage,
};

use crate::error::embedded;
use crate::response::{
    blocked, candidate_index, finish_reason, model_version, read_parts, response_id, usage,
};

/// What the stream has shown of one choice so far.
struct ChoiceState {
    index: u32,
    sent_role: bool,
    /// Function calls emitted, which numbers the next one.
    calls: usize,
}

/// The host opens a decoder only for a 2xx response, so errors arrive in-band only, as
/// an event with an `error` member.
pub(crate) struct Decoder {
    id: String,
    model: String,
    choices: Vec<ChoiceState>,
    usage: Option<Usage>,
    finished: bool,
}

impl Decoder {
    /// `model` is the deployment's model id, used until an event names the version.
    pub(crate) fn new(model: String) -> Self {
        Decoder {
            id: String::new(),
            model,
            choices: Vec::new(),
            usage: None,
            finished: false,
        }
    }
}

impl StreamDecoder for Decoder {
    fn decode(&mut self, event: StreamEvent) -> Result<Vec<ChatChunk>, PluginError> {
        let data = event.data.trim_ascii();
        if data.is_empty() {
            return Ok(Vec::new());
        }
        let value = read_object(data, "a stream event from the upstream")?;
        if let Some(err) = embedded(&value) {
            return Err(err);
        }
        if self.id.is_empty()
            && let Some(id) = response_id(&value)
        {
            self.id = id.to_string();
        }
        if let Some(version) = model_version(&value) {
            self.model = version.to_string();
        }
        // A running total: the latest replaces what came before.
        if let Some(meta) = value.get("usageMetadata") {
            self.usage = Some(usage(meta));
        }

        let mut deltas = Vec::new();
        if let Some(Value::Array(candidates)) = value.get("candidates") {
            for (pos, candidate) in candidates.iter().enumerate() {
                deltas.extend(self.candidate(pos, candidate));
            }
        } else if blocked(&value) {
            // A blocked prompt: no candidates, only the reason.
            let role = match self.state(0) {
                Some(s) if !s.sent_role => {
                    s.sent_role = true;
                    Some(Role::Assistant)
                }
                _ => None,
            };
            self.finished = true;
            deltas.push(ChoiceDelta {
                index: 0,
                role,
                content: None,
                reasoning: None,
                tool_calls: Vec::new(),
                finish_reason: Some(FinishReason::ContentFilter),
            });
        }
        if deltas.is_empty() {
            return Ok(Vec::new());
        }
        Ok(vec![ChatChunk {
            id: self.id.clone(),
            model: self.model.clone(),
            created: 0,
            choices: deltas,
            usage: None,
        }])
    }

    fn finish(&mut self) -> Result<Vec<ChatChunk>, PluginError> {
        if !self.finished {
            return Err(stream_cut("a finishReason"));
        }
        Ok(self
            .usage
            .take()
            .map(|usage| ChatChunk {
                id: self.id.clone(),
                model: self.model.clone(),
                created: 0,
                choices: Vec::new(),
                usage: Some(usage),
            })
            .into_iter()
            .collect())
    }
}

impl Decoder {
    /// The state of choice `index`, created on first sight. `None` only past `u32::MAX`
    /// choices, which no stream has.
    fn state(&mut self, index: u32) -> Option<&mut ChoiceState> {
        let pos = match self.choices.iter().position(|c| c.index == index) {
            Some(pos) => pos,
            None => {
                self.choices.push(ChoiceState {
                    index,
                    sent_role: false,
                    calls: 0,
                });
                self.choices.len() - 1
            }
        };
        self.choices.get_mut(pos)
    }

    /// One candidate's parts as one delta; `None` when it adds nothing.
    fn candidate(&mut self, pos: usize, candidate: &Value) -> Option<ChoiceDelta> {
        let index = candidate_index(candidate, pos);
        let state = self.state(index)?;
        let parts = read_parts(candidate, index, state.calls);
        let first = state.calls;
        state.calls += parts.calls.len();
        let has_calls = state.calls > 0;
        let role = (!state.sent_role).then_some(Role::Assistant);
        state.sent_role = true;

        let finish = candidate
            .get("finishReason")
            .and_then(Value::as_str)
            .filter(|r| !r.is_empty())
            .map(|r| finish_reason(r, has_calls));
        if finish.is_some() {
            self.finished = true;
        }
        let tool_calls: Vec<ToolCallDelta> = parts
            .calls
            .into_iter()
            .enumerate()
            .map(|(k, call)| ToolCallDelta {
                index: u32::try_from(first + k).unwrap_or(u32::MAX),
                id: Some(call.id),
                name: Some(call.name),
                arguments: call.arguments,
            })
            .collect();
        let reasoning = (!parts.reasoning.is_empty()).then_some(parts.reasoning);
        let mut content = (!parts.text.is_empty()).then_some(parts.text);
        if role.is_some() && content.is_none() && reasoning.is_none() && tool_calls.is_empty() {
            // The choice's first chunk says who speaks even when it has no text yet.
            content = Some(String::new());
        }
        if role.is_none()
            && content.is_none()
            && reasoning.is_none()
            && tool_calls.is_empty()
            && finish.is_none()
        {
            return None;
        }
        Some(ChoiceDelta {
            index,
            role,
            content,
            reasoning,
            tool_calls,
            finish_reason: finish,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(v: Value) -> StreamEvent {
        StreamEvent {
            event: None,
            data: v.to_string().into_bytes(),
        }
    }

    fn usage_of(prompt: u32, out: u32) -> Value {
        json!({"promptTokenCount": prompt, "candidatesTokenCount": out})
    }

    #[test]
    fn running_usage_is_reported_once_at_the_end() {
        let mut d = Decoder::new("dep".into());
        let mut chunks = Vec::new();
        for (i, (text, done)) in [("Hel", false), ("lo", true)].into_iter().enumerate() {
            let mut candidate =
                json!({"content": {"role": "model", "parts": [{"text": text}]}, "index": 0});
            if done {
                candidate["finishReason"] = "STOP".into();
            }
            chunks.extend(
                d.decode(event(json!({
                    "candidates": [candidate],
                    "usageMetadata": usage_of(5, i as u32 + 1),
                    "modelVersion": "gemini-x", "responseId": "r1",
                })))
                .unwrap(),
            );
        }
        chunks.extend(d.finish().unwrap());
        assert_eq!(chunks.len(), 3);
        assert_eq!(chunks[0].choices[0].role, Some(Role::Assistant));
        assert_eq!(chunks[1].choices[0].role, None);
        assert_eq!(chunks[1].choices[0].finish_reason, Some(FinishReason::Stop));
        assert!(
            chunks[..2]
                .iter()
                .all(|c| c.usage.is_none() && c.id == "r1")
        );
        let u = chunks[2].usage.unwrap();
        assert_eq!((u.prompt_tokens, u.completion_tokens), (5, 2));
        assert!(chunks[2].choices.is_empty());
    }

    #[test]
    fn calls_get_ids_numbered_across_events_and_thoughts_are_reasoning() {
        let mut d = Decoder::new("dep".into());
        let a = d
            .decode(event(json!({"candidates": [{"content": {"parts": [
                {"text": "plan", "thought": true},
                {"functionCall": {"name": "f", "args": {"x": 1}}},
            ]}}]})))
            .unwrap();
        let b = d
            .decode(event(json!({"candidates": [{"content": {"parts": [
                {"functionCall": {"name": "g", "args": {}}},
            ]}, "finishReason": "STOP"}]})))
            .unwrap();
        let first = &a[0].choices[0];
        assert_eq!(first.reasoning.as_deref(), Some("plan"));
        assert_eq!(first.content, None);
        assert_eq!(first.tool_calls[0].index, 0);
        assert_eq!(first.tool_calls[0].id.as_deref(), Some("call_0_0"));
        assert_eq!(first.tool_calls[0].arguments, r#"{"x":1}"#);
        let second = &b[0].choices[0];
        assert_eq!(second.tool_calls[0].index, 1);
        assert_eq!(second.tool_calls[0].id.as_deref(), Some("call_0_1"));
        assert_eq!(second.finish_reason, Some(FinishReason::ToolCalls));
        assert!(d.finish().unwrap().is_empty(), "no usage was reported");
    }

    #[test]
    fn a_stream_without_finish_reason_was_cut() {
        let mut d = Decoder::new("dep".into());
        d.decode(event(
            json!({"candidates": [{"content": {"parts": [{"text": "x"}]}}]}),
        ))
        .unwrap();
        let e = d.finish().unwrap_err();
        assert_eq!(
            e.kind,
            switchyard_sdk::adapter::ErrorKind::BadUpstreamResponse
        );
    }

    #[test]
    fn mid_stream_errors_and_bad_json_fail() {
        let mut d = Decoder::new("dep".into());
        let e = d
            .decode(event(
                json!({"error": {"code": 503, "message": "overloaded"}}),
            ))
            .unwrap_err();
        assert_eq!(e.message, "overloaded");
        let e = d
            .decode(StreamEvent {
                event: None,
                data: b"{\"candidates\":[".to_vec(),
            })
            .unwrap_err();
        assert_eq!(
            e.kind,
            switchyard_sdk::adapter::ErrorKind::BadUpstreamResponse
        );
    }

    #[test]
    fn a_blocked_prompt_ends_the_stream_with_content_filter() {
        let mut d = Decoder::new("dep".into());
        let c = d
            .decode(event(
                json!({"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}}),
            ))
            .unwrap();
        assert_eq!(
            c[0].choices[0].finish_reason,
            Some(FinishReason::ContentFilter)
        );
        assert_eq!(c[0].choices[0].role, Some(Role::Assistant));
        assert!(d.finish().is_ok());
    }
}
