//! Gemini generateContent and streamGenerateContent?alt=sse: model from the path,
//! CRLF-separated events, whole function calls.

use serde_json::{Value, json};

use crate::common::*;

const GENERATE: &str = "/v1beta/models/mock-echo:generateContent";
const STREAM: &str = "/v1beta/models/mock-echo:streamGenerateContent?alt=sse";

#[tokio::test]
async fn generate_content_has_the_full_response_shape() {
    let mock = mock().await;
    let r = post(&mock, GENERATE, &[], &gemini_req("hello there")).await;
    assert_eq!(r.status, 200);
    let v = r.json();
    let c = &v["candidates"][0];
    assert_eq!(
        c["content"],
        json!({"role": "model", "parts": [{"text": "echo: hello there"}]})
    );
    assert_eq!(c["finishReason"], "STOP");
    assert_eq!(c["index"], 0);
    assert_eq!(
        v["usageMetadata"],
        json!({"promptTokenCount": 4, "candidatesTokenCount": 3, "totalTokenCount": 7})
    );
    assert_eq!(v["modelVersion"], "mock-echo");
}

#[tokio::test]
async fn stream_events_are_whole_responses_separated_by_crlf() {
    let mock = mock().await;
    let resp = send(
        &mock,
        hyper::Method::POST,
        STREAM,
        &[],
        Some(&gemini_req("hello streaming world")),
    )
    .await;
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let (bytes, err) = read_body(resp).await;
    assert!(err.is_none());
    let text = String::from_utf8(bytes.clone()).unwrap();
    assert!(text.ends_with("\r\n\r\n"));
    assert_eq!(
        text.matches("\r\n\r\n").count(),
        text.matches("data: ").count()
    );

    let events: Vec<Value> = parse_sse(&bytes).iter().map(SseEvent::json).collect();
    assert_eq!(events.len(), 4);
    let mut joined = String::new();
    for (i, e) in events.iter().enumerate() {
        let c = &e["candidates"][0];
        assert_eq!(c["content"]["role"], "model");
        assert_eq!(c["index"], 0);
        joined.push_str(c["content"]["parts"][0]["text"].as_str().unwrap());
        let last = i == events.len() - 1;
        assert_eq!(
            c.get("finishReason").is_some(),
            last,
            "finishReason only on the last"
        );
    }
    assert_eq!(joined, "echo: hello streaming world");
    assert_eq!(
        events[3]["usageMetadata"],
        json!({"promptTokenCount": 5, "candidatesTokenCount": 4, "totalTokenCount": 9})
    );
}

#[tokio::test]
async fn function_call_arrives_whole() {
    let mock = mock().await;
    let mut body = gemini_req("weather in Paris");
    body["tools"] = json!([
        {"googleSearch": {}},
        {"functionDeclarations": [{"name": "get_weather", "parameters": {"type": "object"}}]},
    ]);
    let path = "/v1beta/models/mock-tool-call:generateContent";
    let v = post(&mock, path, &[], &body).await.json();
    let call =
        json!({"functionCall": {"name": "get_weather", "args": {"query": "weather in Paris"}}});
    assert_eq!(
        v["candidates"][0]["content"]["parts"],
        json!([call.clone()])
    );
    assert_eq!(v["candidates"][0]["finishReason"], "STOP");

    let path = "/v1beta/models/mock-tool-call:streamGenerateContent?alt=sse";
    let events = stream(&mock, path, &[], &body).await;
    assert_eq!(events.len(), 1);
    let e = events[0].json();
    assert_eq!(e["candidates"][0]["content"]["parts"], json!([call]));
    assert_eq!(e["candidates"][0]["finishReason"], "STOP");
    assert!(e["usageMetadata"]["totalTokenCount"].is_u64());
}

#[tokio::test]
async fn stream_without_alt_sse_is_refused_in_gemini_shape() {
    let mock = mock().await;
    let path = "/v1beta/models/mock-echo:streamGenerateContent";
    let r = post(&mock, path, &[], &gemini_req("hi")).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["status"], "INVALID_ARGUMENT");
    assert_eq!(r.json()["error"]["code"], 400);
}

#[tokio::test]
async fn knobs_come_from_the_path_model() {
    let mock = mock().await;
    let path = "/v1beta/models/mock-words-3%2Bslow-1ms:generateContent";
    let v = post(&mock, path, &[], &gemini_req("hi")).await.json();
    assert_eq!(
        v["candidates"][0]["content"]["parts"][0]["text"],
        "lorem ipsum dolor"
    );
}
