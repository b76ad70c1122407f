//! Misbehaving plugins over real HTTP: whatever a plugin does, the client gets an answer
//! and the gateway keeps serving.

use switchyard_mock_upstream::MockUpstream;
use switchyard_tests::{
    Sse, TestGateway, chat_body, fixture, mock_upstream, openai_deployment, plugin, post_json,
};

async fn gateway_with_hostile_filter(m: &MockUpstream) -> anyhow::Result<TestGateway> {
    TestGateway::start(
        &[
            ("openai.wasm", plugin("openai")),
            ("hostile.wasm", fixture("fx-hostile")),
        ],
        // Printing 10,000 lines takes a while in a debug build on a busy machine.
        &format!(
            "[plugins.hostile]\ncall_timeout = \"10s\"\n{}[models.demo]\ndeployments = [\"primary\"]\nfilters = [\"hostile\"]\n",
            openai_deployment("primary", &format!("http://{}/v1", m.addr), "mock-echo", "")
        ),
    )
    .await
}

/// Rust's `println!` (and Python's `print`, JavaScript's `console.log`) goes through
/// WASI's blocking stream write. On a tokio worker that used to panic inside
/// wasmtime-wasi ("Cannot start a runtime from within a runtime") and reset the client's
/// connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_that_prints_gets_its_answer_to_the_client() -> anyhow::Result<()> {
    let m = mock_upstream().await?;
    let gw = gateway_with_hostile_filter(&m).await?;
    for stream in [false, true] {
        let mut body = chat_body("demo", "print");
        body["stream"] = stream.into();
        let (status, _, bytes) = post_json(gw.gw.addr, "/v1/chat/completions", &body).await?;
        let v: serde_json::Value = serde_json::from_slice(&bytes)?;
        // The fixture prints 10,000 lines, then denies with what it observed.
        assert_eq!(status, 418, "{v}");
        assert_eq!(v["error"]["message"], "printed");
    }
    // The workers survived: an ordinary request is served.
    let (status, _, bytes) =
        post_json(gw.gw.addr, "/v1/chat/completions", &chat_body("demo", "hi")).await?;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&bytes));
    let mut body = chat_body("demo", "hi");
    body["stream"] = true.into();
    let (status, _, bytes) = post_json(gw.gw.addr, "/v1/chat/completions", &body).await?;
    assert_eq!(status, 200);
    assert!(Sse::parse(&bytes)?.done);
    Ok(())
}

/// A filter that traps: fail-closed gives a 503 whose body has no trap text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trapping_filter_fails_closed_without_leaking_the_trap() -> anyhow::Result<()> {
    let m = mock_upstream().await?;
    let gw = gateway_with_hostile_filter(&m).await?;
    let (status, headers, bytes) = post_json(
        gw.gw.addr,
        "/v1/chat/completions",
        &chat_body("demo", "trap"),
    )
    .await?;
    let v: serde_json::Value = serde_json::from_slice(&bytes)?;
    assert_eq!(status, 503, "{v}");
    assert_eq!(v["error"]["code"], "filter_unavailable");
    let message = v["error"]["message"].as_str().unwrap_or_default();
    for leak in ["hostile", "trap", "panic", "wasm"] {
        assert!(!message.contains(leak), "{message} leaks {leak}");
    }
    let id = headers["x-request-id"].to_str()?;
    assert!(message.contains(id), "{message} quotes the request id {id}");
    assert!(m.requests().is_empty(), "nothing reached the upstream");
    Ok(())
}
