//! The behaviour knobs: status, slow, ttft, stream-cut, malformed, words, header override,
//! client abort accounting, and the routes nothing matches.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::Method;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use switchyard_mock_upstream::StreamCounts;

use crate::common::*;

#[tokio::test]
async fn status_knob_uses_each_provider_error_shape() {
    let mock = mock().await;
    let r = post(
        &mock,
        "/v1/chat/completions",
        &[],
        &openai_req("mock-status-429", "hi"),
    )
    .await;
    assert_eq!(r.status, 429);
    assert_eq!(r.header("retry-after"), Some("1"));
    let e = &r.json()["error"];
    assert!(e["message"].is_string() && e["type"].is_string());
    assert_eq!(e["param"], Value::Null);
    assert_eq!(e["code"], "rate_limit_exceeded");

    let r = post(
        &mock,
        "/v1/messages",
        &ANTHROPIC,
        &anthropic_req("mock-status-529", "hi"),
    )
    .await;
    assert_eq!(r.status, 529);
    assert_eq!(r.json()["type"], "error");
    assert_eq!(r.json()["error"]["type"], "overloaded_error");
    let r = post(
        &mock,
        "/v1/messages",
        &ANTHROPIC,
        &anthropic_req("mock-status-429", "hi"),
    )
    .await;
    assert_eq!(r.json()["error"]["type"], "rate_limit_error");
    assert_eq!(r.header("retry-after"), Some("1"));

    let path = "/v1beta/models/mock-status-503:generateContent";
    let r = post(&mock, path, &[], &gemini_req("hi")).await;
    assert_eq!(r.status, 503);
    assert_eq!(r.json()["error"]["code"], 503);
    assert_eq!(r.json()["error"]["status"], "UNAVAILABLE");
    let path = "/v1beta/models/mock-status-429:streamGenerateContent?alt=sse";
    let r = post(&mock, path, &[], &gemini_req("hi")).await;
    assert_eq!(r.status, 429);
    assert_eq!(r.json()["error"]["status"], "RESOURCE_EXHAUSTED");
}

#[tokio::test]
async fn header_overrides_the_model_name() {
    let mock = mock().await;
    let hdr = [("x-mock-behavior", "mock-status-500")];
    let mut body = openai_req("mock-echo", "hi");
    body["stream"] = json!(true);
    let r = post(&mock, "/v1/chat/completions", &hdr, &body).await;
    assert_eq!(r.status, 500);
    assert_eq!(r.json()["error"]["type"], "server_error");
}

#[tokio::test]
async fn slow_knob_delays_the_response_head() {
    let mock = mock().await;
    let t = Instant::now();
    let r = post(
        &mock,
        "/v1/chat/completions",
        &[],
        &openai_req("mock-slow-200ms", "hi"),
    )
    .await;
    assert!(
        t.elapsed() >= Duration::from_millis(200),
        "{:?}",
        t.elapsed()
    );
    assert_eq!(r.json()["choices"][0]["message"]["content"], "echo: hi");

    let t = Instant::now();
    let r = post(
        &mock,
        "/v1/chat/completions",
        &[],
        &openai_req("mock-slow-150ms+status-503", "hi"),
    )
    .await;
    assert!(t.elapsed() >= Duration::from_millis(150));
    assert_eq!(r.status, 503);
}

#[tokio::test]
async fn ttft_knob_sends_the_head_at_once_and_delays_content() {
    let mock = mock().await;
    let mut body = openai_req("mock-ttft-600ms", "hi");
    body["stream"] = json!(true);
    let t = Instant::now();
    let resp = send(
        &mock,
        Method::POST,
        "/v1/chat/completions",
        &[],
        Some(&body),
    )
    .await;
    let head = t.elapsed();
    let (bytes, err) = read_body(resp).await;
    assert!(err.is_none());
    assert!(head < Duration::from_millis(600), "head took {head:?}");
    assert!(t.elapsed() >= Duration::from_millis(600));
    assert_eq!(parse_sse(&bytes).last().unwrap().data, "[DONE]");
}

/// Content events a stream carried, per provider.
fn content_events(events: &[SseEvent], provider: &str) -> usize {
    match provider {
        "openai" => events
            .iter()
            .filter(|e| e.data != "[DONE]")
            .filter(|e| {
                e.json()["choices"][0]["delta"]["content"]
                    .as_str()
                    .is_some_and(|c| !c.is_empty())
            })
            .count(),
        "anthropic" => events
            .iter()
            .filter(|e| e.event.as_deref() == Some("content_block_delta"))
            .count(),
        _ => events.len(),
    }
}

#[tokio::test]
async fn stream_cut_breaks_the_body_after_n_content_events() {
    let mock = mock().await;
    let user = "one two three four five six";
    let mut oa = openai_req("mock-stream-cut-3", user);
    oa["stream"] = json!(true);
    oa["stream_options"] = json!({"include_usage": true});
    let mut an = anthropic_req("mock-stream-cut-3", user);
    an["stream"] = json!(true);
    let cases = [
        ("openai", "/v1/chat/completions".to_owned(), &[][..], oa),
        ("anthropic", "/v1/messages".to_owned(), &ANTHROPIC[..], an),
        (
            "gemini",
            "/v1beta/models/mock-stream-cut-3:streamGenerateContent?alt=sse".to_owned(),
            &[][..],
            gemini_req(user),
        ),
    ];
    for (provider, path, headers, body) in cases {
        let resp = send(&mock, Method::POST, &path, headers, Some(&body)).await;
        assert_eq!(resp.status(), 200);
        let (bytes, err) = read_body(resp).await;
        assert!(
            err.is_some(),
            "{provider}: body ended cleanly instead of breaking"
        );
        let events = parse_sse(&bytes);
        assert_eq!(content_events(&events, provider), 3, "{provider}");
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            !text.contains("[DONE]")
                && !text.contains("message_stop")
                && !text.contains("finishReason")
        );
    }
    // Deliberate cuts are neither completed nor client aborts.
    let counts = mock.stream_counts();
    assert_eq!(
        (counts.started, counts.completed, counts.client_aborted),
        (3, 0, 0)
    );
}

#[tokio::test]
async fn malformed_answers_are_not_json() {
    let mock = mock().await;
    let r = post(
        &mock,
        "/v1/chat/completions",
        &[],
        &openai_req("mock-malformed", "hi"),
    )
    .await;
    assert_eq!(r.status, 200);
    assert!(serde_json::from_slice::<Value>(&r.body).is_err());
    let r = post(
        &mock,
        "/v1/messages",
        &ANTHROPIC,
        &anthropic_req("mock-malformed", "hi"),
    )
    .await;
    assert!(serde_json::from_slice::<Value>(&r.body).is_err());

    let mut body = openai_req("mock-malformed", "hi");
    body["stream"] = json!(true);
    let events = stream(&mock, "/v1/chat/completions", &[], &body).await;
    let bad = events
        .iter()
        .filter(|e| e.data != "[DONE]" && serde_json::from_str::<Value>(&e.data).is_err())
        .count();
    assert_eq!(bad, 1);
    assert_eq!(events.last().unwrap().data, "[DONE]");

    let path = "/v1beta/models/mock-malformed:streamGenerateContent?alt=sse";
    let events = stream(&mock, path, &[], &gemini_req("hello world")).await;
    assert!(
        events
            .iter()
            .any(|e| serde_json::from_str::<Value>(&e.data).is_err())
    );
}

#[tokio::test]
async fn words_knob_streams_long_answers() {
    let mock = mock().await;
    let mut body = openai_req("mock-words-1000", "hi");
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    let events = stream(&mock, "/v1/chat/completions", &[], &body).await;
    assert_eq!(content_events(&events, "openai"), 1000);
    let usage = events[events.len() - 2].json();
    assert_eq!(usage["usage"]["completion_tokens"], 1000);
    assert_eq!(
        mock.stream_counts(),
        StreamCounts {
            started: 1,
            completed: 1,
            client_aborted: 0
        }
    );
}

#[tokio::test]
async fn client_going_away_mid_stream_is_counted() {
    let mock = mock().await;
    let client = client();
    let mut body = openai_req("mock-ttft-300ms", "hi");
    body["stream"] = json!(true);
    let resp = send_with(
        &client,
        &mock,
        Method::POST,
        "/v1/chat/completions",
        &[],
        Some(&body),
    )
    .await;
    assert_eq!(resp.status(), 200);
    drop(resp);
    drop(client);
    eventually("client_aborted == 1", || {
        mock.stream_counts().client_aborted == 1
    })
    .await;
    let counts = mock.stream_counts();
    assert_eq!((counts.started, counts.completed), (1, 0));
}

#[tokio::test]
async fn http2_prior_knowledge_is_served() {
    let mock = mock().await;
    let h2: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http();
    let mut body = anthropic_req("mock-echo", "over h2");
    body["stream"] = json!(true);
    let resp = send_with(
        &h2,
        &mock,
        Method::POST,
        "/v1/messages",
        &ANTHROPIC,
        Some(&body),
    )
    .await;
    assert_eq!(resp.version(), hyper::Version::HTTP_2);
    let (bytes, err) = read_body(resp).await;
    assert!(err.is_none());
    let events = parse_sse(&bytes);
    assert_eq!(
        events.last().unwrap().event.as_deref(),
        Some("message_stop")
    );
}

#[tokio::test]
async fn unknown_routes_are_404_in_the_closest_shape() {
    let mock = mock().await;
    let r = call(&mock, Method::GET, "/v1/nothing", &[], None).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["error"]["type"], "invalid_request_error");
    let r = post(&mock, "/v1/messages/count_tokens", &ANTHROPIC, &json!({})).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["error"]["type"], "not_found_error");
    let r = post(&mock, "/v1beta/models/x:countTokens", &[], &json!({})).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["error"]["status"], "NOT_FOUND");
    let r = call(&mock, Method::GET, "/v1/chat/completions", &[], None).await;
    assert_eq!(r.status, 404);
}

/// A stream's head leaves together with its first event. One runtime thread serves, so
/// without the queued first event the head would be written alone; the client is a plain
/// thread whose blocking read returns with the first segment that arrives.
#[tokio::test(flavor = "current_thread")]
async fn a_streams_head_arrives_with_its_first_event() {
    use std::io::{Read, Write};
    let m = mock().await;
    let addr = m.addr;
    let firsts = tokio::task::spawn_blocking(move || {
        let body = br#"{"model":"mock-echo","stream":true,"messages":[{"role":"user","content":"hi"}]}"#;
        (0..10)
            .map(|_| {
                let mut s = std::net::TcpStream::connect(addr).expect("connect");
                s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
                    .expect("timeout");
                let head = format!(
                    "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
                    body.len()
                );
                s.write_all(head.as_bytes()).expect("write");
                s.write_all(body).expect("write");
                let mut buf = vec![0u8; 64 << 10];
                let n = s.read(&mut buf).expect("read");
                String::from_utf8_lossy(&buf[..n]).into_owned()
            })
            .collect::<Vec<_>>()
    })
    .await
    .expect("client thread");
    for first in firsts {
        assert!(first.starts_with("HTTP/1.1 200"), "{first}");
        assert!(
            first.contains("data: {"),
            "the first read held only: {first}"
        );
    }
}
