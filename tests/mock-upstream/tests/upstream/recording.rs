//! The request record: in process and over `/__mock/*`.

use hyper::Method;
use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn every_provider_request_is_recorded_in_order_but_control_calls_are_not() {
    let mock = mock().await;
    post(
        &mock,
        "/v1/chat/completions?trace=1",
        &[("x-test", "a")],
        &openai_req("mock-status-429", "one"),
    )
    .await;
    post(
        &mock,
        "/v1/messages",
        &ANTHROPIC,
        &anthropic_req("mock-echo", "two"),
    )
    .await;
    call(&mock, Method::GET, "/nowhere", &[], None).await;
    call(&mock, Method::GET, "/__mock/streams", &[], None).await;

    let recs = mock.requests();
    assert_eq!(recs.len(), 3);
    assert_eq!(recs[0].method, "POST");
    assert_eq!(recs[0].path, "/v1/chat/completions?trace=1");
    assert_eq!(recs[0].header("x-test"), Some("a"));
    assert_eq!(
        recs[0].body_json().unwrap()["messages"][1]["content"],
        "one"
    );
    assert_eq!(recs[1].header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(recs[2].path, "/nowhere");

    let r = call(&mock, Method::GET, "/__mock/requests", &[], None).await;
    assert_eq!(r.status, 200);
    let list = r.json();
    assert_eq!(list.as_array().unwrap().len(), 3);
    assert_eq!(list[0]["path"], "/v1/chat/completions?trace=1");
    assert_eq!(list[0]["method"], "POST");
    // Bodies are served as text, headers as [name, value] pairs.
    let body: serde_json::Value = serde_json::from_str(list[0]["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["model"], "mock-status-429");
    assert!(
        list[0]["headers"]
            .as_array()
            .unwrap()
            .contains(&json!(["x-test", "a"]))
    );

    let r = call(&mock, Method::DELETE, "/__mock/requests", &[], None).await;
    assert_eq!(r.status, 204);
    assert!(mock.requests().is_empty());

    post(
        &mock,
        "/v1/chat/completions",
        &[],
        &openai_req("mock-echo", "x"),
    )
    .await;
    assert_eq!(mock.requests().len(), 1);
    mock.clear();
    assert!(mock.requests().is_empty());
}

#[tokio::test]
async fn stream_counts_are_served_over_http() {
    let mock = mock().await;
    let mut body = openai_req("mock-echo", "hi");
    body["stream"] = json!(true);
    stream(&mock, "/v1/chat/completions", &[], &body).await;
    eventually("completed == 1", || mock.stream_counts().completed == 1).await;
    let r = call(&mock, Method::GET, "/__mock/streams", &[], None).await;
    assert_eq!(
        r.json(),
        json!({"started": 1, "completed": 1, "client_aborted": 0})
    );
}
