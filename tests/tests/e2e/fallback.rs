//! Fallback: a deployment that refuses the connection, times out, answers 429 or 5xx,
//! sends an unreadable answer, or breaks its stream before content is skipped for the
//! next one; after content, a broken stream ends with an error event.

use switchyard_mock_upstream::MockUpstream;
use switchyard_tests::{
    Sse, TestGateway, bundled_gateway, closed_port, mock_upstream, openai_deployment, plugin,
    post_json, terse_chat,
};

/// A model whose first deployment fails in some way and whose second works.
async fn fallback_case(first: String, stream: bool) -> anyhow::Result<()> {
    let m = mock_upstream().await?;
    let good = openai_deployment("good", &format!("http://{}/v1", m.addr), "mock-echo", "");
    let gw = bundled_gateway(&format!(
        "{first}{good}[models.demo]\ndeployments = [\"bad\", \"good\"]\n"
    ))
    .await?;
    let mut req = terse_chat("demo", "fall back");
    if stream {
        req["stream"] = true.into();
    }
    let (status, headers, body) = post_json(gw.gw.addr, "/v1/chat/completions", &req).await?;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(headers["x-switchyard-deployment"], "good");
    assert_eq!(headers["x-switchyard-attempts"], "2");
    let text = if stream {
        let sse = Sse::parse(&body)?;
        assert!(sse.done && sse.errors.is_empty());
        sse.text()
    } else {
        let v: serde_json::Value = serde_json::from_slice(&body)?;
        v["choices"][0]["message"]["content"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(text, "echo: fall back");
    Ok(())
}

fn mock_bad(
    model: &str,
    extra: &str,
) -> impl std::future::Future<Output = anyhow::Result<(MockUpstream, String)>> {
    let model = model.to_owned();
    let extra = extra.to_owned();
    async move {
        let m = mock_upstream().await?;
        let d = openai_deployment("bad", &format!("http://{}/v1", m.addr), &model, &extra);
        Ok((m, d))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn falls_back_on_connection_refused() -> anyhow::Result<()> {
    let bad = openai_deployment(
        "bad",
        &format!("http://127.0.0.1:{}/v1", closed_port()),
        "mock-echo",
        "",
    );
    fallback_case(bad.clone(), false).await?;
    fallback_case(bad, true).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn falls_back_on_429_and_5xx() -> anyhow::Result<()> {
    for model in ["mock-status-429", "mock-status-500", "mock-status-503"] {
        for stream in [false, true] {
            let (_m, bad) = mock_bad(model, "").await?;
            fallback_case(bad, stream).await?;
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn falls_back_on_timeout() -> anyhow::Result<()> {
    let (_m, bad) = mock_bad("mock-slow-3000ms", "first_byte_timeout = \"300ms\"").await?;
    fallback_case(bad, false).await?;
    let (_m, bad) = mock_bad(
        "mock-ttft-3000ms",
        "first_byte_timeout = \"300ms\"\nidle_timeout = \"300ms\"",
    )
    .await?;
    fallback_case(bad, true).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn falls_back_on_malformed_answers_and_streams_cut_before_content() -> anyhow::Result<()> {
    let (_m, bad) = mock_bad("mock-malformed", "").await?;
    fallback_case(bad, false).await?;
    let (_m, bad) = mock_bad("mock-malformed", "").await?;
    fallback_case(bad, true).await?;
    let (_m, bad) = mock_bad("mock-stream-cut-0", "").await?;
    fallback_case(bad, true).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_broken_after_content_ends_with_an_error_event() -> anyhow::Result<()> {
    let m = mock_upstream().await?;
    let gw = bundled_gateway(&format!(
        "{}{}[models.demo]\ndeployments = [\"cut\", \"good\"]\n",
        openai_deployment(
            "cut",
            &format!("http://{}/v1", m.addr),
            "mock-words-50+stream-cut-4",
            ""
        ),
        openai_deployment("good", &format!("http://{}/v1", m.addr), "mock-echo", "")
    ))
    .await?;
    let mut req = terse_chat("demo", "hi");
    req["stream"] = true.into();
    let (status, headers, body) = post_json(gw.gw.addr, "/v1/chat/completions", &req).await?;
    assert_eq!(status, 200);
    assert_eq!(
        headers["x-switchyard-deployment"], "cut",
        "content was sent, so no fallback"
    );
    let sse = Sse::parse(&body)?;
    assert!(!sse.done, "a broken stream must not end with [DONE]");
    assert!(!sse.text().is_empty());
    assert_eq!(sse.errors.len(), 1, "{}", String::from_utf8_lossy(&body));
    assert_eq!(sse.errors[0]["error"]["code"], "upstream_stream_broken");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_no_adapter_supports_is_a_400_not_a_retryable_503() -> anyhow::Result<()> {
    let m = mock_upstream().await?;
    let gw = TestGateway::start(
        &[("anthropic.wasm", plugin("anthropic"))],
        &format!(
            "[deployments.claude]\nadapter = \"anthropic\"\nbase_url = \"http://{}\"\nmodel = \"mock-echo\"\n[models.demo]\ndeployments = [\"claude\"]\n",
            m.addr
        ),
    )
    .await?;
    let mut req = terse_chat("demo", "two please");
    req["n"] = 2.into();
    let (status, headers, body) = post_json(gw.gw.addr, "/v1/chat/completions", &req).await?;
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
    assert!(!headers.contains_key("retry-after"));
    let v: serde_json::Value = serde_json::from_slice(&body)?;
    assert_eq!(v["error"]["code"], "unsupported_request");
    assert!(m.requests().is_empty(), "nothing reached the upstream");
    Ok(())
}
