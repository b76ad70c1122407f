//! What clients are told when something goes wrong: invalid requests name the parameter
//! as OpenAI does; server-side failures say nothing about deployments, networks or
//! plugins; credentials an upstream echoes never reach the client.

use switchyard_tests::{
    Sse, TestGateway, bundled_gateway, chat_body, closed_port, mock_upstream, openai_deployment,
    plugin, post_json, terse_chat,
};

async fn gateway(toml: &str) -> anyhow::Result<TestGateway> {
    TestGateway::start(&[("openai.wasm", plugin("openai"))], toml).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_messages_and_types_are_400s_naming_the_parameter() -> anyhow::Result<()> {
    let m = mock_upstream().await?;
    let gw = gateway(&format!(
        "{}[models.demo]\ndeployments = [\"a\"]\n",
        openai_deployment("a", &format!("http://{}/v1", m.addr), "mock-echo", "")
    ))
    .await?;
    let cases = [
        (
            serde_json::json!({"model": "demo", "messages": [{"role": "user"}]}),
            "messages[0].content",
        ),
        (
            serde_json::json!({"model": "demo", "messages": [{"role": "user", "content": "x"}, {"role": "tool", "content": "y"}]}),
            "messages[1].tool_call_id",
        ),
        (
            serde_json::json!({"model": "demo", "messages": [{"role": "user", "content": "x"}], "n": "2"}),
            "n",
        ),
        (
            serde_json::json!({"model": "demo", "messages": [{"role": "user", "content": "x"}], "max_tokens": "many"}),
            "max_tokens",
        ),
        (
            serde_json::json!({"model": "demo", "messages": [{"role": "user", "content": "x"}], "temperature": "warm"}),
            "temperature",
        ),
    ];
    for (body, param) in cases {
        let (status, _, bytes) = post_json(gw.gw.addr, "/v1/chat/completions", &body).await?;
        let v: serde_json::Value = serde_json::from_slice(&bytes)?;
        assert_eq!(status, 400, "{body} → {v}");
        assert_eq!(v["error"]["param"], param, "{v}");
        assert_eq!(v["error"]["type"], "invalid_request_error");
    }
    assert!(
        m.requests().is_empty(),
        "no invalid request reached the upstream"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exhausted_fallbacks_tell_the_client_nothing_internal() -> anyhow::Result<()> {
    let m = mock_upstream().await?;
    let dead = format!("http://127.0.0.1:{}/v1", closed_port());
    let gw = gateway(&format!(
        "{}{}[models.demo]\ndeployments = [\"internal-east\", \"secret-dead\"]\n",
        openai_deployment(
            "internal-east",
            &format!("http://{}/v1", m.addr),
            "mock-status-500",
            ""
        ),
        openai_deployment("secret-dead", &dead, "m", "")
    ))
    .await?;
    for stream in [false, true] {
        let mut body = chat_body("demo", "hi");
        body["stream"] = stream.into();
        let (status, headers, bytes) = post_json(gw.gw.addr, "/v1/chat/completions", &body).await?;
        let v: serde_json::Value = serde_json::from_slice(&bytes)?;
        assert!(status == 502 || status == 503, "{status} {v}");
        let message = v["error"]["message"].as_str().unwrap_or_default();
        for leak in [
            "internal-east",
            "secret-dead",
            "mock-status",
            "connect",
            "refused",
            "os error",
            "127.0.0.1",
            "HTTP 500",
        ] {
            assert!(!message.contains(leak), "{message} leaks {leak}");
        }
        let id = headers["x-request-id"].to_str()?;
        assert!(message.contains(id), "{message} quotes {id}");
        assert_eq!(v["error"]["code"], "upstream_error");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_broken_mid_way_ends_with_a_generic_error_event() -> anyhow::Result<()> {
    let m = mock_upstream().await?;
    let gw = gateway(&format!(
        "{}[models.demo]\ndeployments = [\"internal-east\"]\n",
        openai_deployment(
            "internal-east",
            &format!("http://{}/v1", m.addr),
            "mock-stream-cut-2",
            ""
        ),
    ))
    .await?;
    let mut body = chat_body("demo", "one two three four five");
    body["stream"] = true.into();
    let (status, headers, bytes) = post_json(gw.gw.addr, "/v1/chat/completions", &body).await?;
    assert_eq!(status, 200);
    let sse = Sse::parse(&bytes)?;
    assert!(!sse.done, "a broken stream must not look finished");
    let error = &sse.errors.last().expect("an error event")["error"];
    assert_eq!(error["code"], "upstream_stream_broken");
    let message = error["message"].as_str().unwrap_or_default();
    assert!(!message.contains("internal-east"), "{message}");
    assert!(!message.contains("connection"), "{message}");
    assert!(
        message.contains(headers["x-request-id"].to_str()?),
        "{message}"
    );
    Ok(())
}

/// Azure-style key: no prefix for a guess to match.
const KEY: &str = "3f9a0c7e5b2d4a61c8e0f7a9b3d5c1e2";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_the_upstream_echoes_never_reaches_the_client() -> anyhow::Result<()> {
    let m = mock_upstream().await?;
    let keyfile = tempfile::NamedTempFile::new()?;
    std::fs::write(keyfile.path(), KEY)?;
    let key = format!("api_key = \"file:{}\"", keyfile.path().display());
    let base = format!("http://{}/v1", m.addr);
    let gw = gateway(&format!(
        "{}{}{}[models.rejected]\ndeployments = [\"rejected\"]\n[models.unauthorized]\ndeployments = [\"unauthorized\"]\n[models.streamed]\ndeployments = [\"streamed\"]\n",
        openai_deployment("rejected", &base, "mock-status-400+echo-key", &key),
        openai_deployment("unauthorized", &base, "mock-status-401+echo-key", &key),
        openai_deployment("streamed", &base, "mock-echo-key", &key),
    ))
    .await?;
    // A 400 is the client's problem, so the provider's message is passed on, scrubbed.
    let (status, _, bytes) = post_json(
        gw.gw.addr,
        "/v1/chat/completions",
        &chat_body("rejected", "hi"),
    )
    .await?;
    let text = String::from_utf8_lossy(&bytes);
    assert_eq!(status, 400, "{text}");
    assert!(
        text.contains("Incorrect API key provided: [redacted]"),
        "{text}"
    );
    assert!(!text.contains(KEY), "{text}");
    // A 401 is the gateway's problem: a generic 502.
    let (status, _, bytes) = post_json(
        gw.gw.addr,
        "/v1/chat/completions",
        &chat_body("unauthorized", "hi"),
    )
    .await?;
    let text = String::from_utf8_lossy(&bytes);
    assert_eq!(status, 502, "{text}");
    assert!(!text.contains(KEY) && !text.contains("Incorrect"), "{text}");
    // The upstream really got the key (so it had something to echo).
    let sent = format!("Bearer {KEY}");
    assert!(
        m.requests()
            .iter()
            .all(|r| r.header("authorization") == Some(sent.as_str()))
    );
    // A stream whose provider error event carries the key.
    let mut body = chat_body("streamed", "hi");
    body["stream"] = true.into();
    let (status, _, bytes) = post_json(gw.gw.addr, "/v1/chat/completions", &body).await?;
    let text = String::from_utf8_lossy(&bytes);
    assert_eq!(status, 200, "{text}");
    assert!(!Sse::parse(&bytes)?.errors.is_empty(), "{text}");
    assert!(!text.contains(KEY), "{text}");
    Ok(())
}

/// A typo in a deployment's adapter settings is not silently ignored: that deployment is
/// skipped (the next one serves), and alone it is a 503, never a call with the wrong
/// settings.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_typo_in_adapter_settings_takes_the_deployment_out() -> anyhow::Result<()> {
    let m = mock_upstream().await?;
    let base = format!("http://{}/v1", m.addr);
    let gw = gateway(&format!(
        "{}{}[models.only]\ndeployments = [\"typo\"]\n[models.both]\ndeployments = [\"typo\", \"fine\"]\n",
        openai_deployment("typo", &base, "mock-echo", "settings = { auth_heder = \"api-key\" }"),
        openai_deployment("fine", &base, "mock-echo", ""),
    ))
    .await?;
    let (status, _, body) =
        post_json(gw.gw.addr, "/v1/chat/completions", &chat_body("only", "hi")).await?;
    assert_eq!(status, 503, "{}", String::from_utf8_lossy(&body));
    assert!(
        m.requests().is_empty(),
        "nothing was sent with the wrong settings"
    );
    let (status, headers, _) =
        post_json(gw.gw.addr, "/v1/chat/completions", &chat_body("both", "hi")).await?;
    assert_eq!(
        (status, headers["x-switchyard-deployment"].to_str()?),
        (200, "fine")
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_have_openai_shape_and_status() -> anyhow::Result<()> {
    let m = mock_upstream().await?;
    let gw = bundled_gateway(&format!(
        "{}[models.demo]\ndeployments = [\"primary\"]\n[models.limited]\ndeployments = [\"limited\"]\n",
        openai_deployment("primary", &format!("http://{}/v1", m.addr), "mock-echo", "")
            + &openai_deployment("limited", &format!("http://{}/v1", m.addr), "mock-status-429", "")
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
    let (s, _, b) = post_json(gw.gw.addr, "/v1/chat/completions", &terse_chat("nope", "x")).await?;
    check(s, &b, 404, "model_not_found")?;
    let (s, _, b) = post_json(
        gw.gw.addr,
        "/v1/chat/completions",
        &serde_json::json!({"model": "demo"}),
    )
    .await?;
    check(s, &b, 400, "invalid_request")?;
    let (s, h, b) = post_json(
        gw.gw.addr,
        "/v1/chat/completions",
        &terse_chat("limited", "x"),
    )
    .await?;
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
