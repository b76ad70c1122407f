//! The gateway end to end: the real server on loopback, the bundled `openai` adapter,
//! `balanced` router and `pii-redact` filter, against the mock upstream speaking
//! OpenAI's wire format.

use std::time::Duration;

use switchyard_mock_upstream::MockUpstream;
use switchyard_tests::{Sse, TestGateway, plugin, post_json};

async fn mock() -> anyhow::Result<MockUpstream> {
    Ok(MockUpstream::start("127.0.0.1:0".parse()?).await?)
}

/// A port nothing listens on.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    drop(l);
    port
}

fn deployment(name: &str, base: &str, model: &str, extra: &str) -> String {
    format!(
        "[deployments.{name}]\nadapter = \"openai\"\nbase_url = \"{base}\"\nmodel = \"{model}\"\n{extra}\n"
    )
}

/// A gateway with the bundled plugins and `models` (TOML) over `deployments`.
async fn gateway(toml: &str) -> anyhow::Result<TestGateway> {
    TestGateway::start(
        &[
            ("openai.wasm", plugin("openai")),
            ("balanced.wasm", plugin("balanced")),
            ("pii-redact.wasm", plugin("pii-redact")),
        ],
        toml,
    )
    .await
}

fn chat(model: &str, text: &str) -> serde_json::Value {
    serde_json::json!({"model": model, "messages": [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": text},
    ]})
}

/// Every phase leaves a trace: the filter redacts the e-mail before the upstream sees it,
/// and the router (cheapest first) picks the second deployment in config order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_streaming_completion_through_filter_router_and_adapter() -> anyhow::Result<()> {
    let m = mock().await?;
    let base = format!("http://{}/v1", m.addr);
    let gw = gateway(&format!(
        "[plugins.balanced]\nconfig = {{ strategy = \"cost\" }}\n{}{}[models.demo]\ndeployments = [\"pricey\", \"primary\"]\nrouter = \"balanced\"\nfilters = [\"pii-redact\"]\n",
        deployment("pricey", &base, "mock-echo", "input_price = 30.0\noutput_price = 60.0"),
        deployment("primary", &base, "mock-echo", "input_price = 0.1\noutput_price = 0.2"),
    ))
    .await?;
    let (status, headers, body) = post_json(
        gw.gw.addr,
        "/v1/chat/completions",
        &chat("demo", "hello there, I am jo@example.com"),
    )
    .await?;
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
    let m = mock().await?;
    let gw = gateway(&format!(
        "{}[models.demo]\ndeployments = [\"primary\"]\nfilters = [\"pii-redact\"]\n",
        deployment("primary", &format!("http://{}/v1", m.addr), "mock-echo", "")
    ))
    .await?;
    let mut req = chat("demo", "one two three");
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
    let m = mock().await?;
    let gw = gateway(&format!(
        "{}[models.demo]\ndeployments = [\"primary\"]\n",
        deployment("primary", &format!("http://{}/v1", m.addr), "mock-echo", "")
    ))
    .await?;
    let mut req = chat("demo", "hi");
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

/// A model whose first deployment fails in some way and whose second works.
async fn fallback_case(first: String, stream: bool) -> anyhow::Result<()> {
    let m = mock().await?;
    let good = deployment("good", &format!("http://{}/v1", m.addr), "mock-echo", "");
    let gw = gateway(&format!(
        "{first}{good}[models.demo]\ndeployments = [\"bad\", \"good\"]\n"
    ))
    .await?;
    let mut req = chat("demo", "fall back");
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
        let m = mock().await?;
        let d = deployment("bad", &format!("http://{}/v1", m.addr), &model, &extra);
        Ok((m, d))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn falls_back_on_connection_refused() -> anyhow::Result<()> {
    let bad = deployment(
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
    let m = mock().await?;
    let gw = gateway(&format!(
        "{}{}[models.demo]\ndeployments = [\"cut\", \"good\"]\n",
        deployment(
            "cut",
            &format!("http://{}/v1", m.addr),
            "mock-words-50+stream-cut-4",
            ""
        ),
        deployment("good", &format!("http://{}/v1", m.addr), "mock-echo", "")
    ))
    .await?;
    let mut req = chat("demo", "hi");
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
async fn client_disconnect_cancels_the_upstream_stream() -> anyhow::Result<()> {
    let m = mock().await?;
    let gw = gateway(&format!(
        "{}[models.demo]\ndeployments = [\"slow\"]\n",
        deployment(
            "slow",
            &format!("http://{}/v1", m.addr),
            "mock-words-100000",
            ""
        )
    ))
    .await?;
    let mut req = chat("demo", "hi");
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
async fn pii_is_redacted_before_it_reaches_the_upstream() -> anyhow::Result<()> {
    let m = mock().await?;
    let gw = gateway(&format!(
        "{}[models.demo]\ndeployments = [\"primary\"]\nfilters = [\"pii-redact\"]\n",
        deployment("primary", &format!("http://{}/v1", m.addr), "mock-echo", "")
    ))
    .await?;
    let (status, _, body) = post_json(
        gw.gw.addr,
        "/v1/chat/completions",
        &chat("demo", "mail jane.doe@example.com today"),
    )
    .await?;
    assert_eq!(status, 200);
    let sent = String::from_utf8_lossy(&m.requests()[0].body).into_owned();
    assert!(!sent.contains("jane.doe@example.com"), "{sent}");
    assert!(sent.contains("[REDACTED:EMAIL]"), "{sent}");
    let v: serde_json::Value = serde_json::from_slice(&body)?;
    assert_eq!(
        v["choices"][0]["message"]["content"],
        "echo: mail [REDACTED:EMAIL] today"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_have_openai_shape_and_status() -> anyhow::Result<()> {
    let m = mock().await?;
    let gw = gateway(&format!(
        "{}[models.demo]\ndeployments = [\"primary\"]\n[models.limited]\ndeployments = [\"limited\"]\n",
        deployment("primary", &format!("http://{}/v1", m.addr), "mock-echo", "")
            + &deployment("limited", &format!("http://{}/v1", m.addr), "mock-status-429", "")
    ))
    .await?;
    let check =
        |status: u16, body: &[u8], want_status: u16, want_code: &str| -> anyhow::Result<()> {
            let v: serde_json::Value = serde_json::from_slice(body)?;
            anyhow::ensure!(
                status == want_status,
                "status {status} != {want_status}: {v}"
            );
            anyhow::ensure!(v["error"]["code"] == want_code, "code in {v}");
            anyhow::ensure!(
                v["error"]["message"].is_string()
                    && v["error"].get("param").is_some()
                    && v["error"]["type"].is_string()
            );
            Ok(())
        };
    let (s, _, b) = post_json(gw.gw.addr, "/v1/chat/completions", &chat("nope", "x")).await?;
    check(s, &b, 404, "model_not_found")?;
    let (s, _, b) = post_json(
        gw.gw.addr,
        "/v1/chat/completions",
        &serde_json::json!({"model": "demo"}),
    )
    .await?;
    check(s, &b, 400, "invalid_request")?;
    let (s, h, b) = post_json(gw.gw.addr, "/v1/chat/completions", &chat("limited", "x")).await?;
    check(s, &b, 429, "rate_limit_exceeded")?;
    assert!(h.contains_key("retry-after"));
    let (s, _, b) = switchyard_tests::get(gw.gw.addr, "/v1/models").await?;
    assert_eq!(s, 200);
    let v: serde_json::Value = serde_json::from_slice(&b)?;
    let ids: Vec<&str> = v["data"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["id"].as_str())
        .collect();
    assert_eq!(ids, ["demo", "limited"]);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_edits_apply_without_restart_and_invalid_ones_keep_the_old_config()
-> anyhow::Result<()> {
    let m = mock().await?;
    let base = format!("http://{}/v1", m.addr);
    let one = format!(
        "{}[models.demo]\ndeployments = [\"primary\"]\n",
        deployment("primary", &base, "mock-echo", "")
    );
    let gw = gateway(&one).await?;
    let config = gw.dir.path().join("switchyard.toml");
    let original = std::fs::read_to_string(&config)?;
    let generation = || gw.gw.state.live.load().generation;
    let g0 = generation();
    let mut events = gw.gw.state.config_events();

    // A valid edit: a second model appears.
    std::fs::write(
        &config,
        format!("{original}[models.second]\ndeployments = [\"primary\"]\n"),
    )?;
    tokio::time::timeout(Duration::from_secs(10), events.changed()).await??;
    assert_eq!(generation(), g0 + 1, "the edit was applied");
    let (s, _, _) = post_json(gw.gw.addr, "/v1/chat/completions", &chat("second", "x")).await?;
    assert_eq!(s, 200);

    // An invalid edit: rejected with a message naming the key; the old config serves.
    std::fs::write(
        &config,
        format!("{original}[models.second]\ndeployments = [\"missing\"]\n"),
    )?;
    tokio::time::timeout(Duration::from_secs(10), events.changed()).await??;
    let (_, _, b) = switchyard_tests::get(gw.gw.addr, "/admin/config").await?;
    let v: serde_json::Value = serde_json::from_slice(&b)?;
    assert_eq!(
        v["last_error"],
        "models.second.deployments: unknown deployment \"missing\""
    );
    let (s, _, _) = post_json(gw.gw.addr, "/v1/chat/completions", &chat("second", "x")).await?;
    assert_eq!(s, 200, "the previous config keeps serving");
    assert_eq!(generation(), g0 + 1);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_no_adapter_supports_is_a_400_not_a_retryable_503() -> anyhow::Result<()> {
    let m = mock().await?;
    let gw = TestGateway::start(
        &[("anthropic.wasm", plugin("anthropic"))],
        &format!(
            "[deployments.claude]\nadapter = \"anthropic\"\nbase_url = \"http://{}\"\nmodel = \"mock-echo\"\n[models.demo]\ndeployments = [\"claude\"]\n",
            m.addr
        ),
    )
    .await?;
    let mut req = chat("demo", "two please");
    req["n"] = 2.into();
    let (status, headers, body) = post_json(gw.gw.addr, "/v1/chat/completions", &req).await?;
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
    assert!(!headers.contains_key("retry-after"));
    let v: serde_json::Value = serde_json::from_slice(&body)?;
    assert_eq!(v["error"]["code"], "unsupported_request");
    assert!(m.requests().is_empty(), "nothing reached the upstream");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn router_shadow_deployment_gets_a_copy_but_never_answers() -> anyhow::Result<()> {
    let m = mock().await?;
    let base = format!("http://{}/v1", m.addr);
    let gw = gateway(&format!(
        "{}{}[models.demo]\ndeployments = [\"primary\", \"candidate\"]\nrouter = \"balanced\"\n\
         [plugins.balanced]\nconfig = {{ shadow = \"candidate\" }}\n",
        deployment("primary", &base, "mock-echo", ""),
        deployment("candidate", &base, "mock-words-3", "")
    ))
    .await?;
    for _ in 0..3 {
        let (status, headers, body) = post_json(
            gw.gw.addr,
            "/v1/chat/completions",
            &chat("demo", "mirror me"),
        )
        .await?;
        assert_eq!(status, 200);
        assert_eq!(
            headers["x-switchyard-deployment"], "primary",
            "the shadow never serves"
        );
        let v: serde_json::Value = serde_json::from_slice(&body)?;
        assert_eq!(v["choices"][0]["message"]["content"], "echo: mirror me");
    }
    let models = |m: &MockUpstream, want: &str| {
        m.requests()
            .iter()
            .filter_map(|r| r.body_json())
            .filter(|v| v["model"] == want)
            .count()
    };
    m.wait_until(Duration::from_secs(10), |m| models(m, "mock-words-3") == 3)
        .await
        .map_err(|e| anyhow::anyhow!("shadow copies not seen: {e}"))?;
    assert_eq!(models(&m, "mock-echo"), 3);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_tool_calls_stream_in_fragments_that_join_to_json() -> anyhow::Result<()> {
    let m = mock().await?;
    let gw = gateway(&format!(
        "{}[models.demo]\ndeployments = [\"primary\"]\n",
        deployment(
            "primary",
            &format!("http://{}/v1", m.addr),
            "mock-tool-call",
            ""
        )
    ))
    .await?;
    let mut req = chat("demo", "find cats");
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
    let m = mock().await?;
    let gw = gateway(&format!(
        "{}[models.demo]\ndeployments = [\"primary\"]\n",
        deployment("primary", &format!("http://{}/v1", m.addr), "mock-echo", "")
    ))
    .await?;
    let mut req = chat("demo", "hi");
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
