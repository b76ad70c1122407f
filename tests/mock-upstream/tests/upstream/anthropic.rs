//! Anthropic Messages: required headers and fields, the message object, the named-event
//! stream, tool use.

use serde_json::{Value, json};

use crate::common::*;

#[tokio::test]
async fn missing_version_header_is_an_anthropic_400() {
    let mock = mock().await;
    let r = post(
        &mock,
        "/v1/messages",
        &[],
        &anthropic_req("mock-echo", "hi"),
    )
    .await;
    assert_eq!(r.status, 400);
    let v = r.json();
    assert_eq!(v["type"], "error");
    assert_eq!(v["error"]["type"], "invalid_request_error");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("anthropic-version")
    );
}

#[tokio::test]
async fn missing_max_tokens_is_a_400() {
    let mock = mock().await;
    let mut body = anthropic_req("mock-echo", "hi");
    body.as_object_mut().unwrap().remove("max_tokens");
    let r = post(&mock, "/v1/messages", &ANTHROPIC, &body).await;
    assert_eq!(r.status, 400);
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("max_tokens")
    );
}

#[tokio::test]
async fn echo_is_a_whole_message() {
    let mock = mock().await;
    let r = post(
        &mock,
        "/v1/messages",
        &ANTHROPIC,
        &anthropic_req("mock-echo", "hello there"),
    )
    .await;
    assert_eq!(r.status, 200);
    let v = r.json();
    assert!(v["id"].as_str().unwrap().starts_with("msg_"));
    assert_eq!(v["type"], "message");
    assert_eq!(v["role"], "assistant");
    assert_eq!(v["model"], "mock-echo");
    assert_eq!(
        v["content"],
        json!([{"type": "text", "text": "echo: hello there"}])
    );
    assert_eq!(v["stop_reason"], "end_turn");
    assert_eq!(v["stop_sequence"], Value::Null);
    assert_eq!(v["usage"], json!({"input_tokens": 4, "output_tokens": 3}));
}

fn names(events: &[SseEvent]) -> Vec<&str> {
    events
        .iter()
        .map(|e| e.event.as_deref().unwrap_or(""))
        .collect()
}

#[tokio::test]
async fn stream_follows_the_message_event_sequence() {
    let mock = mock().await;
    let mut body = anthropic_req("mock-echo", "hello streaming world");
    body["stream"] = json!(true);
    let events = stream(&mock, "/v1/messages", &ANTHROPIC, &body).await;
    assert_eq!(
        names(&events),
        [
            "message_start",
            "content_block_start",
            "ping",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop",
        ]
    );
    // The `event:` line always matches the data's type.
    for e in &events {
        assert_eq!(e.json()["type"], e.event.as_deref().unwrap());
    }
    let start = events[0].json();
    assert_eq!(start["message"]["usage"]["input_tokens"], 5);
    assert_eq!(start["message"]["content"], json!([]));
    assert_eq!(
        events[1].json()["content_block"],
        json!({"type": "text", "text": ""})
    );
    let text: String = events
        .iter()
        .filter(|e| e.event.as_deref() == Some("content_block_delta"))
        .map(|e| {
            let d = e.json()["delta"].clone();
            assert_eq!(d["type"], "text_delta");
            d["text"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(text, "echo: hello streaming world");
    let delta = events[8].json();
    assert_eq!(delta["delta"]["stop_reason"], "end_turn");
    assert_eq!(delta["usage"]["output_tokens"], 4);
}

#[tokio::test]
async fn tool_use_whole_and_streamed() {
    let mock = mock().await;
    let mut body = anthropic_req("mock-tool-call", "weather in Paris");
    body["tools"] =
        json!([{"name": "get_weather", "description": "d", "input_schema": {"type": "object"}}]);

    let v = post(&mock, "/v1/messages", &ANTHROPIC, &body).await.json();
    assert_eq!(v["stop_reason"], "tool_use");
    let block = &v["content"][0];
    assert_eq!(block["type"], "tool_use");
    assert!(block["id"].as_str().unwrap().starts_with("toolu_"));
    assert_eq!(block["name"], "get_weather");
    assert_eq!(block["input"], json!({"query": "weather in Paris"}));

    body["stream"] = json!(true);
    let events = stream(&mock, "/v1/messages", &ANTHROPIC, &body).await;
    let start = events[1].json();
    assert_eq!(start["type"], "content_block_start");
    assert_eq!(start["content_block"]["type"], "tool_use");
    assert_eq!(start["content_block"]["name"], "get_weather");
    assert_eq!(start["content_block"]["input"], json!({}));
    let fragments: Vec<String> = events
        .iter()
        .filter(|e| e.event.as_deref() == Some("content_block_delta"))
        .map(|e| {
            let d = e.json()["delta"].clone();
            assert_eq!(d["type"], "input_json_delta");
            d["partial_json"].as_str().unwrap().to_owned()
        })
        .collect();
    assert!(fragments.len() >= 2);
    // Cut mid-token: at least one fragment is not JSON on its own.
    assert!(
        fragments
            .iter()
            .any(|f| serde_json::from_str::<Value>(f).is_err())
    );
    let input: Value = serde_json::from_str(&fragments.concat()).unwrap();
    assert_eq!(input, json!({"query": "weather in Paris"}));
    let n = events.len();
    assert_eq!(
        names(&events)[n - 3..],
        ["content_block_stop", "message_delta", "message_stop"]
    );
    assert_eq!(events[n - 2].json()["delta"]["stop_reason"], "tool_use");
}

#[tokio::test]
async fn tool_result_turn_still_echoes_the_question() {
    let mock = mock().await;
    let body = json!({
        "model": "mock-echo",
        "max_tokens": 10,
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "weather?"}]},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "w", "input": {}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "sunny"}]},
        ],
    });
    let v = post(&mock, "/v1/messages", &ANTHROPIC, &body).await.json();
    assert_eq!(v["content"][0]["text"], "echo: weather?");
}
