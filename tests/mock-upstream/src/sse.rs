//! Server-sent event streams: a provider builds a [`Script`] (preamble, content events,
//! finale), and [`respond`] plays it into a channel-backed body on its own task, applying
//! the time-to-first-token delay and the deliberate cut.

use std::sync::Arc;

use bytes::Bytes;
use hyper::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use hyper::{Response, StatusCode};
use tokio::sync::mpsc;

use crate::behavior::Behavior;
use crate::body::{Chunk, MockBody, StreamStats};

/// How events are written on the wire; each provider differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// `data: …\n\n`, no `event:` line.
    OpenAi,
    /// `event: name\ndata: …\n\n`.
    Anthropic,
    /// `data: …\r\n\r\n`: Gemini ends events with CRLF pairs, a classic parser trap.
    Gemini,
}

#[derive(Debug, Clone)]
pub(crate) struct Event {
    name: &'static str,
    data: String,
}

impl Event {
    /// An event whose data is `value` as compact JSON; `name` is used by Anthropic framing.
    pub(crate) fn json(name: &'static str, value: &serde_json::Value) -> Event {
        Event {
            name,
            data: value.to_string(),
        }
    }

    /// An event with literal data, such as OpenAI's `[DONE]`.
    pub(crate) fn raw(data: &str) -> Event {
        Event {
            name: "",
            data: data.to_owned(),
        }
    }

    /// The same event with its JSON cut in half, so no parser accepts it.
    fn truncated(&self) -> Event {
        Event {
            name: self.name,
            data: truncate_json(&self.data).to_owned(),
        }
    }
}

/// A strict prefix of a JSON object or array text, which is never valid JSON.
pub(crate) fn truncate_json(json: &str) -> &str {
    let half = json.len() / 2;
    let cut = (0..=half)
        .rev()
        .find(|i| json.is_char_boundary(*i))
        .unwrap_or(0);
    &json[..cut.max(1).min(json.len())]
}

/// One stream, in three parts so that the knobs know where content begins and ends.
#[derive(Debug, Clone)]
pub(crate) struct Script {
    pub framing: Framing,
    /// Sent at once, before the time-to-first-token delay (role chunk, message_start…).
    pub preamble: Vec<Event>,
    /// The events `mock-stream-cut-N` counts: text deltas or tool-argument fragments.
    pub content: Vec<Event>,
    /// The end: finish reason, usage, `[DONE]` or `message_stop`; never sent after a cut.
    pub finale: Vec<Event>,
}

impl Script {
    /// Ends the stream with a provider error event (OpenAI's shape) saying `message`
    /// instead of the normal end.
    pub(crate) fn failing(mut self, message: &str) -> Script {
        let error = serde_json::json!({"error": {"message": message, "type": "server_error", "param": null, "code": null}});
        self.finale = vec![Event::json("error", &error)];
        self
    }

    /// Replaces the content with one event whose data is not valid JSON.
    pub(crate) fn malformed(mut self) -> Script {
        let bad = self
            .content
            .first()
            .or_else(|| self.finale.first())
            .map(Event::truncated);
        self.content = bad.into_iter().collect();
        self
    }

    fn encode(&self, e: &Event) -> Bytes {
        let text = match self.framing {
            Framing::OpenAi => format!("data: {}\n\n", e.data),
            Framing::Anthropic => format!("event: {}\ndata: {}\n\n", e.name, e.data),
            Framing::Gemini => format!("data: {}\r\n\r\n", e.data),
        };
        Bytes::from(text)
    }

    /// Writes the script into `tx`. Stops quietly when the body was dropped (the body
    /// itself counts the abort), and breaks the body with an error for a cut.
    async fn play(self, behavior: Behavior, tx: mpsc::Sender<Chunk>) {
        let (ttft, gap, cut) = (behavior.ttft, behavior.gap, behavior.stream_cut);
        for e in &self.preamble {
            if send(&tx, self.encode(e)).await.is_err() {
                return;
            }
        }
        if let Some(d) = ttft {
            tokio::time::sleep(d).await;
        }
        for (i, e) in self.content.iter().enumerate() {
            if cut == Some(i) {
                break;
            }
            if let (Some(d), true) = (gap, i > 0) {
                tokio::time::sleep(d).await;
            }
            if send(&tx, self.encode(e)).await.is_err() {
                return;
            }
        }
        if cut.is_some() {
            // An error item makes hyper abort the connection (HTTP/1: no last chunk;
            // HTTP/2: RST_STREAM), which is what a provider dying mid-stream looks like.
            let cut = std::io::Error::new(std::io::ErrorKind::ConnectionAborted, "mock stream cut");
            let _ = tx.send(Err(cut)).await;
            return;
        }
        for e in &self.finale {
            if send(&tx, self.encode(e)).await.is_err() {
                return;
            }
        }
    }
}

async fn send(tx: &mpsc::Sender<Chunk>, bytes: Bytes) -> Result<(), ()> {
    tx.send(Ok(bytes)).await.map_err(|_| {
        tracing::debug!("client went away mid-stream");
    })
}

/// A 200 `text/event-stream` response whose body is produced by `script` on a new task.
pub(crate) fn respond(
    script: Script,
    behavior: &Behavior,
    stats: Arc<StreamStats>,
) -> Response<MockBody> {
    let (body, tx) = MockBody::channel(stats);
    let mut script = script;
    // Queue the first event before answering, so that the head and it leave in one
    // write, as the gateway does: a head alone, then a short body and its end in one
    // packet, trips undici 6 (Node 20's fetch) into losing a client's abort
    // (nodejs/undici#4089). The channel is empty, so this cannot fail.
    if !script.preamble.is_empty() {
        let first = script.preamble.remove(0);
        let _ = tx.try_send(Ok(script.encode(&first)));
    }
    tokio::spawn(script.play(behavior.clone(), tx));
    let mut resp = Response::new(body);
    *resp.status_mut() = StatusCode::OK;
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncated_json_never_parses() {
        for s in [
            r#"{}"#,
            r#"{"a":"é"}"#,
            r#"{"choices":[{"delta":{"content":"x"}}]}"#,
        ] {
            let t = truncate_json(s);
            assert!(!t.is_empty() && t.len() < s.len());
            assert!(serde_json::from_str::<serde_json::Value>(t).is_err(), "{t}");
        }
    }

    #[test]
    fn framings_differ_as_the_providers_do() {
        let e = Event::json("ping", &serde_json::json!({"type": "ping"}));
        let script = |framing| Script {
            framing,
            preamble: vec![],
            content: vec![],
            finale: vec![],
        };
        assert_eq!(
            script(Framing::OpenAi).encode(&e),
            "data: {\"type\":\"ping\"}\n\n"
        );
        assert_eq!(
            script(Framing::Anthropic).encode(&e),
            "event: ping\ndata: {\"type\":\"ping\"}\n\n"
        );
        assert_eq!(
            script(Framing::Gemini).encode(&e),
            "data: {\"type\":\"ping\"}\r\n\r\n"
        );
    }
}
