//! The gateway end to end: the real server on loopback, the bundled `openai` adapter,
//! `balanced` router and `pii-redact` filter, against the mock upstream speaking
//! OpenAI's wire format.

use std::time::Duration;

use switchyard_tests::{
    Sse, bundled_gateway, demo, mock_upstream, openai_deployment, post_json, terse_chat,
};

/// Every phase leaves a trace: the filter redacts the e-mail before the upstream sees it,
/// and the router (cheapest first) picks the second deployment in config order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_streaming_completion_through_filter_router_and_adapter() -> anyhow::Result<()> {
    let m = mock_upstream().await?;
    let base = format!("http://{}/v1", m.addr);
    let gw = bundled_gateway(&format!(
        "[plugins.balanced]\nconfig = {{ strategy = \"cost\" }}\n{}{}[models.demo]\ndeployments = [\"pricey\", \"primary\"]\nrouter = \"balanced\"\nfilters = [\"pii-redact\"]\n",
        openai_deployment("pricey", &base, "mock-echo", "input_price = 30.0\noutput_price = 60.0"),
        openai_deployment("primary", &base, "mock-echo", "input_price = 0.1\noutput_price = 0.2"),
    ))
    .await?;
    let compiled = gw.gw.loader.counts();
    let (status, headers, body) = post_json(
        gw.gw.addr,
        "/v1/chat/completions",
        &terse_chat("demo", "hello there, I am jo@example.com"),
    )
    .await?;
    assert_eq!(
        gw.gw.loader.counts(),
        compiled,
        "nothing compiled on the request path"
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let v: serde_json::Value = serde_json::from_slice(&body)?;
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["choices"][0]["message"]["role"], "assistant");
    assert_eq!(
        v["choices"][0]["message"]["content"],
        "echo: hello there, I am [REDACTED:EMAIL]"
    );
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    assert!(v["usage"]["prompt_tokens"].as_u64().is_some_and(|n| n > 0));
    assert_eq!(
        headers["x-switchyard-deployment"], "primary",
        "the router's choice"
    );
    assert_eq!(headers["x-switchyard-attempts"], "1");
    assert!(headers.contains_key("x-request-id"));
    let overhead: u64 = headers["x-switchyard-overhead-us"].to_str()?.parse()?;
    assert!(overhead > 0 && overhead < 5_000_000);
    // The upstream got the provider's model id and an OpenAI-shaped, redacted body.
    let sent = m.requests();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].path, "/v1/chat/completions");
    let up: serde_json::Value = serde_json::from_slice(&sent[0].body)?;
    assert_eq!(up["model"], "mock-echo");
    assert_eq!(up["messages"][0]["role"], "system");
    assert!(!String::from_utf8_lossy(&sent[0].body).contains("jo@example.com"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_with_usage_has_openais_shape_and_ends_with_done() -> anyhow::Result<()> {
    let m = mock_upstream().await?;
    let gw = bundled_gateway(&format!(
        "{}[models.demo]\ndeployments = [\"primary\"]\nfilters = [\"pii-redact\"]\n",
        openai_deployment("primary", &format!("http://{}/v1", m.addr), "mock-echo", "")
    ))
    .await?;
    let mut req = terse_chat("demo", "one two three");
    req["stream"] = true.into();
    req["stream_options"] = serde_json::json!({"include_usage": true});
    let (status, headers, body) = post_json(gw.gw.addr, "/v1/chat/completions", &req).await?;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "text/event-stream");
    let sse = Sse::parse(&body)?;
    assert!(
        sse.done,
        "ends with [DONE]: {}",
        String::from_utf8_lossy(&body)
    );
    assert_eq!(sse.text(), "echo: one two three");
    let chunks = &sse.events;
    assert!(
        chunks
            .iter()
            .all(|c| c["object"] == "chat.completion.chunk")
    );
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let usage = chunks.last().expect("usage chunk");
    assert_eq!(usage["choices"].as_array().map(Vec::len), Some(0));
    assert!(
        usage["usage"]["completion_tokens"]
            .as_u64()
            .is_some_and(|n| n > 0)
    );
    assert!(
        chunks[..chunks.len() - 1]
            .iter()
            .all(|c| c["usage"].is_null())
    );
    assert!(
        chunks
            .iter()
            .any(|c| c["choices"][0]["finish_reason"] == "stop")
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_without_include_usage_hides_the_usage_chunk() -> anyhow::Result<()> {
    let (m, gw) = demo("mock-echo", "").await?;
    let mut req = terse_chat("demo", "hi");
    req["stream"] = true.into();
    let (_, _, body) = post_json(gw.gw.addr, "/v1/chat/completions", &req).await?;
    let sse = Sse::parse(&body)?;
    assert!(sse.done);
    assert!(
        sse.events.iter().all(|c| c.get("usage").is_none()),
        "{:?}",
        sse.events
    );
    // The gateway still asked the upstream for usage, to account for it.
    let up: serde_json::Value = serde_json::from_slice(&m.requests()[0].body)?;
    assert_eq!(up["stream_options"]["include_usage"], true);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_disconnect_cancels_the_upstream_stream() -> anyhow::Result<()> {
    let m = mock_upstream().await?;
    let gw = bundled_gateway(&format!(
        "{}[models.demo]\ndeployments = [\"slow\"]\n",
        openai_deployment(
            "slow",
            &format!("http://{}/v1", m.addr),
            "mock-words-100000",
            ""
        )
    ))
    .await?;
    let mut req = terse_chat("demo", "hi");
    req["stream"] = true.into();
    // Read the head and the first bytes, then hang up.
    switchyard_tests::post_and_hang_up(gw.gw.addr, "/v1/chat/completions", &req).await?;
    m.wait_until(Duration::from_secs(10), |m| {
        m.stream_counts().client_aborted == 1
    })
    .await
    .map_err(|e| anyhow::anyhow!("upstream stream not cancelled: {e}"))?;
    assert_eq!(m.stream_counts().completed, 0);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_tool_calls_stream_in_fragments_that_join_to_json() -> anyhow::Result<()> {
    let m = mock_upstream().await?;
    let gw = bundled_gateway(&format!(
        "{}[models.demo]\ndeployments = [\"primary\"]\n",
        openai_deployment(
            "primary",
            &format!("http://{}/v1", m.addr),
            "mock-tool-call",
            ""
        )
    ))
    .await?;
    let mut req = terse_chat("demo", "find cats");
    req["tools"] = serde_json::json!([{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]);
    req["stream"] = true.into();
    req["stream_options"] = serde_json::json!({"include_usage": true});
    let (status, _, body) = post_json(gw.gw.addr, "/v1/chat/completions", &req).await?;
    assert_eq!(status, 200);
    let sse = Sse::parse(&body)?;
    assert!(sse.done);
    let calls: Vec<&serde_json::Value> = sse
        .events
        .iter()
        .flat_map(|c| {
            c["choices"][0]["delta"]["tool_calls"]
                .as_array()
                .into_iter()
                .flatten()
        })
        .collect();
    assert!(calls.len() > 2, "arguments arrive in fragments: {calls:?}");
    assert_eq!(calls[0]["function"]["name"], "lookup");
    assert!(calls[0]["id"].as_str().is_some_and(|i| !i.is_empty()));
    assert!(
        calls[1..].iter().all(|c| c.get("id").is_none()),
        "the id comes once"
    );
    let arguments: String = calls
        .iter()
        .filter_map(|c| c["function"]["arguments"].as_str())
        .collect();
    let parsed: serde_json::Value = serde_json::from_str(&arguments)?;
    assert_eq!(parsed["query"], "find cats");
    assert!(
        sse.events
            .iter()
            .any(|c| c["choices"][0]["finish_reason"] == "tool_calls")
    );
    assert!(
        sse.events
            .last()
            .is_some_and(|c| c["usage"]["completion_tokens"].as_u64().is_some())
    );
    Ok(())
}

/// The head of a stream is written together with its first event. A head alone, then a
/// short body and its end in one packet, makes undici 6 (Node 20's `fetch`, used by the
/// official `openai` Node SDK) lose a client's abort and hang (nodejs/undici#4089).
///
/// One runtime thread serves, so a pump task spawned by the handler cannot have run
/// before the head is written unless the handler waits for it; the client is a plain
/// thread whose blocking read returns with the first segment that arrives.
#[tokio::test(flavor = "current_thread")]
async fn a_streams_head_arrives_with_its_first_event() -> anyhow::Result<()> {
    use std::io::{Read, Write};
    let (_m, gw) = demo("mock-echo", "").await?;
    let mut req = terse_chat("demo", "hi");
    req["stream"] = true.into();
    let body = serde_json::to_vec(&req)?;
    let addr = gw.gw.addr;
    let firsts = tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<String>> {
        let mut firsts = Vec::new();
        for _ in 0..10 {
            let mut s = std::net::TcpStream::connect(addr)?;
            s.set_read_timeout(Some(Duration::from_secs(10)))?;
            let head = format!(
                "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
                body.len()
            );
            s.write_all(head.as_bytes())?;
            s.write_all(&body)?;
            let mut buf = vec![0u8; 64 << 10];
            let n = s.read(&mut buf)?;
            firsts.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
        Ok(firsts)
    })
    .await??;
    for first in firsts {
        assert!(first.starts_with("HTTP/1.1 200"), "{first}");
        assert!(
            first.contains("data: {"),
            "the first read held only: {first}"
        );
    }
    Ok(())
}
