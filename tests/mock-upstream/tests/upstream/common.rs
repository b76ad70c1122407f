//! Test harness: a mock on `127.0.0.1:0`, a plain hyper client, and a small SSE reader.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{HeaderMap, Method, Request, Response};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use switchyard_mock_upstream::MockUpstream;

pub type HttpClient = Client<HttpConnector, Full<Bytes>>;

pub async fn mock() -> MockUpstream {
    MockUpstream::start("127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("start mock")
}

pub fn client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

/// Sends a request and returns the response with its body still unread.
pub async fn send(
    mock: &MockUpstream,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&Value>,
) -> Response<Incoming> {
    send_with(&client(), mock, method, path, headers, body).await
}

pub async fn send_with(
    client: &HttpClient,
    mock: &MockUpstream,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&Value>,
) -> Response<Incoming> {
    let mut req = Request::builder()
        .method(method)
        .uri(format!("{}{path}", mock.url()));
    if body.is_some() {
        req = req.header("content-type", "application/json");
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let bytes = body.map_or_else(Bytes::new, |b| Bytes::from(b.to_string()));
    client
        .request(req.body(Full::new(bytes)).expect("request"))
        .await
        .expect("response head")
}

/// A response with its whole body.
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

pub async fn call(
    mock: &MockUpstream,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&Value>,
) -> Reply {
    let resp = send(mock, method, path, headers, body).await;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp
        .into_body()
        .collect()
        .await
        .expect("whole body")
        .to_bytes();
    Reply {
        status,
        headers,
        body,
    }
}

pub async fn post(
    mock: &MockUpstream,
    path: &str,
    headers: &[(&str, &str)],
    body: &Value,
) -> Reply {
    call(mock, Method::POST, path, headers, Some(body)).await
}

/// Reads a body frame by frame; the error, if the body broke instead of ending.
pub async fn read_body(resp: Response<Incoming>) -> (Vec<u8>, Option<hyper::Error>) {
    let mut body = resp.into_body();
    let mut bytes = Vec::new();
    loop {
        match body.frame().await {
            None => return (bytes, None),
            Some(Err(e)) => return (bytes, Some(e)),
            Some(Ok(frame)) => {
                if let Some(d) = frame.data_ref() {
                    bytes.extend_from_slice(d);
                }
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    pub event: Option<String>,
    pub data: String,
}

impl SseEvent {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.data)
            .unwrap_or_else(|e| panic!("event not JSON ({e}): {}", self.data))
    }
}

/// Splits a complete SSE text into events; accepts LF and CRLF line ends.
pub fn parse_sse(bytes: &[u8]) -> Vec<SseEvent> {
    let text = String::from_utf8_lossy(bytes).replace("\r\n", "\n");
    text.split("\n\n")
        .filter(|block| !block.trim().is_empty())
        .map(|block| {
            let mut event = None;
            let mut data = Vec::new();
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event:") {
                    event = Some(v.trim().to_owned());
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push(v.strip_prefix(' ').unwrap_or(v));
                }
            }
            SseEvent {
                event,
                data: data.join("\n"),
            }
        })
        .collect()
}

/// Posts a streaming request and returns its events, failing if the body broke.
pub async fn stream(
    mock: &MockUpstream,
    path: &str,
    headers: &[(&str, &str)],
    body: &Value,
) -> Vec<SseEvent> {
    let resp = send(mock, Method::POST, path, headers, Some(body)).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let (bytes, err) = read_body(resp).await;
    assert!(err.is_none(), "stream broke: {err:?}");
    parse_sse(&bytes)
}

/// Polls `f` until it holds, failing after five seconds.
pub async fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !f() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

pub const ANTHROPIC: [(&str, &str); 1] = [("anthropic-version", "2023-06-01")];

/// An OpenAI request for `model` with one system and one user message.
pub fn openai_req(model: &str, user: &str) -> Value {
    serde_json::json!({
        "model": model,
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": user},
        ],
    })
}

pub fn anthropic_req(model: &str, user: &str) -> Value {
    serde_json::json!({
        "model": model,
        "max_tokens": 64,
        "system": "be brief",
        "messages": [{"role": "user", "content": user}],
    })
}

pub fn gemini_req(user: &str) -> Value {
    serde_json::json!({
        "systemInstruction": {"parts": [{"text": "be brief"}]},
        "contents": [{"role": "user", "parts": [{"text": user}]}],
    })
}
