//! OpenAI Chat Completions: whole responses, streams, tool calls, the model list.

use hyper::Method;
use serde_json::{Value, json};

use crate::common::*;

#[tokio::test]
async fn echo_has_the_full_chat_completion_shape() {
    let mock = mock().await;
    let r = post(
        &mock,
        "/v1/chat/completions",
        &[],
        &openai_req("mock-echo", "hello there"),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let v = r.json();
    assert!(v["id"].as_str().unwrap().starts_with("chatcmpl-mock-"));
    assert_eq!(v["object"], "chat.completion");
    assert!(v["created"].is_u64());
    assert_eq!(v["model"], "mock-echo");
    let choice = &v["choices"][0];
    assert_eq!(choice["index"], 0);
    assert_eq!(choice["message"]["role"], "assistant");
    assert_eq!(choice["message"]["content"], "echo: hello there");
    assert_eq!(choice["finish_reason"], "stop");
    // "be brief hello there" = 4 words in, "echo: hello there" = 3 out.
    assert_eq!(
        v["usage"],
        json!({"prompt_tokens": 4, "completion_tokens": 3, "total_tokens": 7})
    );
}

#[tokio::test]
async fn base_url_without_v1_and_unknown_models_echo() {
    let mock = mock().await;
    let r = post(&mock, "/chat/completions", &[], &openai_req("gpt-4o", "hi")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["choices"][0]["message"]["content"], "echo: hi");
    assert_eq!(r.json()["model"], "gpt-4o");
}

#[tokio::test]
async fn multi_part_content_echoes_the_joined_text_of_the_last_user_message() {
    let mock = mock().await;
    let body = json!({
        "model": "mock-echo",
        "messages": [
            {"role": "user", "content": "first question"},
            {"role": "assistant", "content": "an answer"},
            {"role": "user", "content": [
                {"type": "text", "text": "look at"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                {"type": "text", "text": "this"},
            ]},
        ],
    });
    let r = post(&mock, "/v1/chat/completions", &[], &body).await;
    assert_eq!(
        r.json()["choices"][0]["message"]["content"],
        "echo: look at this"
    );
    assert_eq!(r.json()["usage"]["prompt_tokens"], 7);
}

fn content_of(events: &[SseEvent]) -> String {
    events
        .iter()
        .filter(|e| e.data != "[DONE]")
        .filter_map(|e| {
            e.json()["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_owned)
        })
        .collect()
}

#[tokio::test]
async fn stream_sends_role_words_finish_usage_then_done() {
    let mock = mock().await;
    let mut body = openai_req("mock-echo", "hello streaming world");
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    let events = stream(&mock, "/v1/chat/completions", &[], &body).await;

    assert!(
        events.iter().all(|e| e.event.is_none()),
        "chat completions carry no event: lines"
    );
    assert_eq!(events.last().unwrap().data, "[DONE]");
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(SseEvent::json)
        .collect();
    assert!(
        chunks
            .iter()
            .all(|c| c["object"] == "chat.completion.chunk")
    );
    assert!(chunks.iter().all(|c| c["id"] == chunks[0]["id"]));

    let first = &chunks[0]["choices"][0];
    assert_eq!(first["delta"], json!({"role": "assistant", "content": ""}));
    assert_eq!(content_of(&events), "echo: hello streaming world");
    // One chunk per word.
    let deltas = chunks[1..chunks.len() - 2].len();
    assert_eq!(deltas, 4);

    let finish = &chunks[chunks.len() - 2];
    assert_eq!(finish["choices"][0]["delta"], json!({}));
    assert_eq!(finish["choices"][0]["finish_reason"], "stop");
    let usage = &chunks[chunks.len() - 1];
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(
        usage["usage"],
        json!({"prompt_tokens": 5, "completion_tokens": 4, "total_tokens": 9})
    );
    // Every other chunk says usage: null explicitly.
    for c in &chunks[..chunks.len() - 1] {
        assert_eq!(c.get("usage"), Some(&Value::Null), "{c}");
    }
}

#[tokio::test]
async fn stream_without_include_usage_has_no_usage_chunk() {
    let mock = mock().await;
    let mut body = openai_req("mock-words-5", "x");
    body["stream"] = json!(true);
    let events = stream(&mock, "/v1/chat/completions", &[], &body).await;
    assert_eq!(events.last().unwrap().data, "[DONE]");
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(SseEvent::json)
        .collect();
    assert!(chunks.iter().all(|c| c.get("usage").is_none()));
    assert_eq!(
        chunks.last().unwrap()["choices"][0]["finish_reason"],
        "stop"
    );
    assert_eq!(content_of(&events), "lorem ipsum dolor sit amet");
}

fn with_tools(mut body: Value) -> Value {
    body["tools"] = json!([
        {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}},
        {"type": "function", "function": {"name": "other", "parameters": {"type": "object"}}},
    ]);
    body
}

#[tokio::test]
async fn tool_call_names_the_first_tool_with_the_user_text_as_query() {
    let mock = mock().await;
    let body = with_tools(openai_req("mock-tool-call", "weather in Paris"));
    let v = post(&mock, "/v1/chat/completions", &[], &body).await.json();
    let choice = &v["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    assert_eq!(choice["message"]["content"], Value::Null);
    let call = &choice["message"]["tool_calls"][0];
    assert!(call["id"].as_str().unwrap().starts_with("call_"));
    assert_eq!(call["type"], "function");
    assert_eq!(call["function"]["name"], "get_weather");
    let args: Value =
        serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(args, json!({"query": "weather in Paris"}));
}

#[tokio::test]
async fn tool_call_stream_names_the_call_first_then_fragments_arguments() {
    let mock = mock().await;
    let mut body = with_tools(openai_req("mock-tool-call", "weather in Paris"));
    body["stream"] = json!(true);
    let events = stream(&mock, "/v1/chat/completions", &[], &body).await;
    assert_eq!(events.last().unwrap().data, "[DONE]");
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(SseEvent::json)
        .collect();

    let first = &chunks[0]["choices"][0]["delta"];
    assert_eq!(first["role"], "assistant");
    let head = &first["tool_calls"][0];
    assert_eq!(head["index"], 0);
    assert!(head["id"].as_str().unwrap().starts_with("call_"));
    assert_eq!(head["type"], "function");
    assert_eq!(head["function"]["name"], "get_weather");
    assert_eq!(head["function"]["arguments"], "");

    let fragments: Vec<&str> = chunks[1..chunks.len() - 1]
        .iter()
        .map(|c| {
            let tc = &c["choices"][0]["delta"]["tool_calls"][0];
            assert_eq!(tc["index"], 0);
            assert!(tc.get("id").is_none());
            tc["function"]["arguments"].as_str().unwrap()
        })
        .collect();
    assert!(fragments.len() >= 2, "{fragments:?}");
    let args: Value = serde_json::from_str(&fragments.concat()).unwrap();
    assert_eq!(args, json!({"query": "weather in Paris"}));
    assert_eq!(
        chunks.last().unwrap()["choices"][0]["finish_reason"],
        "tool_calls"
    );
}

#[tokio::test]
async fn models_lists_mock_models() {
    let mock = mock().await;
    let r = call(&mock, Method::GET, "/v1/models", &[], None).await;
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(v["object"], "list");
    let first = &v["data"][0];
    assert_eq!(
        first,
        &json!({"id": "mock-echo", "object": "model", "created": 0, "owned_by": "mock"})
    );
}

#[tokio::test]
async fn bad_json_is_a_400_in_openai_shape() {
    let mock = mock().await;
    let r = post(
        &mock,
        "/v1/chat/completions",
        &[],
        &json!({"model": "mock-echo"}),
    )
    .await;
    assert_eq!(r.status, 400);
    let e = &r.json()["error"];
    assert_eq!(e["type"], "invalid_request_error");
    assert!(e["message"].is_string());
    assert!(e.get("param").is_some() && e.get("code").is_some());
}
