//! The pipeline's promises (ARCHITECTURE.md), one test each: a denied request never
//! reaches the upstream; a failing filter fails closed or, if so configured, open; a
//! failing router falls back to the config's order; an open circuit is tried last; an
//! oversized body is a 413.

use std::time::Duration;

use switchyard_mock_upstream::MockUpstream;
use switchyard_tests::{
    TestGateway, bundled_gateway, chat_body, fixture, mock_upstream, openai_deployment, plugin,
    post_json, terse_chat,
};

async fn gateway(toml: &str) -> anyhow::Result<TestGateway> {
    TestGateway::start(
        &[
            ("openai.wasm", plugin("openai")),
            ("hostile.wasm", fixture("fx-hostile")),
        ],
        toml,
    )
    .await
}

fn base(m: &MockUpstream) -> String {
    format!("http://{}/v1", m.addr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denied_request_never_reaches_the_upstream() -> anyhow::Result<()> {
    let m = mock_upstream().await?;
    let gw = gateway(&format!(
        "{}[models.demo]\ndeployments = [\"a\"]\nfilters = [\"hostile\"]\n",
        openai_deployment("a", &base(&m), "mock-echo", "")
    ))
    .await?;
    // The fixture denies `config` with status 418 and code `observed`.
    let (status, _, body) = post_json(
        gw.gw.addr,
        "/v1/chat/completions",
        &chat_body("demo", "config"),
    )
    .await?;
    let v: serde_json::Value = serde_json::from_slice(&body)?;
    assert_eq!(status, 418, "{v}");
    assert_eq!(v["error"]["code"], "observed");
    assert!(m.requests().is_empty(), "zero upstream requests");
    // The same filter allows other text: the upstream is reachable.
    let (status, _, _) = post_json(
        gw.gw.addr,
        "/v1/chat/completions",
        &chat_body("demo", "hello"),
    )
    .await?;
    assert_eq!(status, 200);
    assert_eq!(m.requests().len(), 1);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_filter_fails_closed_by_default_and_open_when_configured() -> anyhow::Result<()> {
    let m = mock_upstream().await?;
    let gw = gateway(&format!(
        "{}[models.closed]\ndeployments = [\"a\"]\nfilters = [\"hostile\"]\n[models.open]\ndeployments = [\"a\"]\nfilters = [\"hostile\"]\nfilter_failure = \"open\"\n",
        openai_deployment("a", &base(&m), "mock-echo", "")
    ))
    .await?;
    let (status, _, body) = post_json(
        gw.gw.addr,
        "/v1/chat/completions",
        &chat_body("closed", "trap"),
    )
    .await?;
    assert_eq!(status, 503, "{}", String::from_utf8_lossy(&body));
    assert!(m.requests().is_empty(), "fail-closed sends nothing");
    let (status, _, body) = post_json(
        gw.gw.addr,
        "/v1/chat/completions",
        &chat_body("open", "trap"),
    )
    .await?;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(
        m.requests().len(),
        1,
        "fail-open skips the filter and sends"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_router_falls_back_to_the_configs_order() -> anyhow::Result<()> {
    let m = mock_upstream().await?;
    let mut toml = format!(
        "{}{}",
        openai_deployment("first", &base(&m), "mock-echo", ""),
        openai_deployment("second", &base(&m), "mock-echo", ""),
    );
    // The fixture picks its behaviour from the public model name.
    for model in ["works", "trap", "loop", "error", "out-of-range"] {
        toml.push_str(&format!(
            "[models.{model}]\ndeployments = [\"first\", \"second\"]\nrouter = \"router-fault\"\n"
        ));
    }
    let gw = TestGateway::start(
        &[
            ("openai.wasm", plugin("openai")),
            ("router-fault.wasm", fixture("fx-router-fault")),
        ],
        &toml,
    )
    .await?;
    // A working router's answer is used: reverse order.
    let (status, headers, _) = post_json(
        gw.gw.addr,
        "/v1/chat/completions",
        &chat_body("works", "hi"),
    )
    .await?;
    assert_eq!(
        (status, headers["x-switchyard-deployment"].to_str()?),
        (200, "second")
    );
    for model in ["trap", "loop", "error", "out-of-range"] {
        let (status, headers, body) =
            post_json(gw.gw.addr, "/v1/chat/completions", &chat_body(model, "hi")).await?;
        assert_eq!(status, 200, "{model}: {}", String::from_utf8_lossy(&body));
        assert_eq!(headers["x-switchyard-deployment"], "first", "{model}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_circuit_is_tried_last() -> anyhow::Result<()> {
    let m = mock_upstream().await?;
    let gw = gateway(&format!(
        "{}{}[models.demo]\ndeployments = [\"flaky\", \"good\"]\n",
        openai_deployment("flaky", &base(&m), "mock-status-500", ""),
        openai_deployment("good", &base(&m), "mock-echo", ""),
    ))
    .await?;
    // Five consecutive failures open `flaky`'s circuit; each request falls back.
    for _ in 0..5 {
        let (status, headers, _) =
            post_json(gw.gw.addr, "/v1/chat/completions", &chat_body("demo", "hi")).await?;
        assert_eq!(
            (status, headers["x-switchyard-attempts"].to_str()?),
            (200, "2")
        );
    }
    m.clear();
    let (status, headers, _) =
        post_json(gw.gw.addr, "/v1/chat/completions", &chat_body("demo", "hi")).await?;
    assert_eq!(status, 200);
    assert_eq!(headers["x-switchyard-deployment"], "good");
    assert_eq!(
        headers["x-switchyard-attempts"], "1",
        "the open circuit went last"
    );
    assert_eq!(m.requests().len(), 1, "flaky was not asked");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_over_the_limit_is_a_413() -> anyhow::Result<()> {
    let m = mock_upstream().await?;
    let gw = gateway(&format!(
        "{}[models.demo]\ndeployments = [\"a\"]\n",
        openai_deployment("a", &base(&m), "mock-echo", "")
    ))
    .await?;
    let big = "x".repeat(9 << 20);
    let (status, _, body) =
        post_json(gw.gw.addr, "/v1/chat/completions", &chat_body("demo", &big)).await?;
    let v: serde_json::Value = serde_json::from_slice(&body)?;
    assert_eq!(status, 413, "{v}");
    assert_eq!(v["error"]["code"], "request_too_large");
    assert!(m.requests().is_empty());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pii_is_redacted_before_it_reaches_the_upstream() -> anyhow::Result<()> {
    let m = mock_upstream().await?;
    let gw = bundled_gateway(&format!(
        "{}[models.demo]\ndeployments = [\"primary\"]\nfilters = [\"pii-redact\"]\n",
        openai_deployment("primary", &format!("http://{}/v1", m.addr), "mock-echo", "")
    ))
    .await?;
    let (status, _, body) = post_json(
        gw.gw.addr,
        "/v1/chat/completions",
        &terse_chat("demo", "mail jane.doe@example.com today"),
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

/// Per-kind actions through the gateway: a card is masked, an API key redacted, and a
/// private key refuses the request before anything is sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pii_actions_mask_redact_or_deny_per_kind() -> anyhow::Result<()> {
    let m = mock_upstream().await?;
    let gw = bundled_gateway(&format!(
        "{}[models.demo]\ndeployments = [\"primary\"]\nfilters = [\"pii-redact\"]\n\
         [plugins.pii-redact]\nconfig = {{ actions = {{ card = \"mask\", private_key = \"deny\" }} }}\n",
        openai_deployment("primary", &format!("http://{}/v1", m.addr), "mock-echo", "")
    ))
    .await?;
    let (status, _, body) = post_json(
        gw.gw.addr,
        "/v1/chat/completions",
        &terse_chat(
            "demo",
            "card 4111 1111 1111 1111 key sk-proj-AbCdEf0123456789_AbCdEf0123456789wxyz",
        ),
    )
    .await?;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let sent = String::from_utf8_lossy(&m.requests()[0].body).into_owned();
    assert!(
        sent.contains("card **** **** **** 1111 key [REDACTED:API_KEY]"),
        "{sent}"
    );
    let (status, _, body) = post_json(
        gw.gw.addr,
        "/v1/chat/completions",
        &terse_chat(
            "demo",
            "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----",
        ),
    )
    .await?;
    let v: serde_json::Value = serde_json::from_slice(&body)?;
    assert_eq!(status, 400, "{v}");
    assert_eq!(v["error"]["code"], "pii_detected");
    assert_eq!(
        v["error"]["message"],
        "the request contains data that may not be sent (private key); remove it and try again"
    );
    assert_eq!(m.requests().len(), 1, "nothing more was sent upstream");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn router_shadow_deployment_gets_a_copy_but_never_answers() -> anyhow::Result<()> {
    let m = mock_upstream().await?;
    let base = format!("http://{}/v1", m.addr);
    let gw = bundled_gateway(&format!(
        "{}{}[models.demo]\ndeployments = [\"primary\", \"candidate\"]\nrouter = \"balanced\"\n\
         [plugins.balanced]\nconfig = {{ shadow = \"candidate\" }}\n",
        openai_deployment("primary", &base, "mock-echo", ""),
        openai_deployment("candidate", &base, "mock-words-3", "")
    ))
    .await?;
    for _ in 0..3 {
        let (status, headers, body) = post_json(
            gw.gw.addr,
            "/v1/chat/completions",
            &terse_chat("demo", "mirror me"),
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

/// One instance serves one request: a counter in the guest's memory reads 1 every time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_gets_a_fresh_plugin_instance() -> anyhow::Result<()> {
    let m = mock_upstream().await?;
    let gw = gateway(&format!(
        "{}[models.demo]\ndeployments = [\"a\"]\nfilters = [\"hostile\"]\n",
        openai_deployment("a", &base(&m), "mock-echo", "")
    ))
    .await?;
    for _ in 0..5 {
        let (status, _, body) = post_json(
            gw.gw.addr,
            "/v1/chat/completions",
            &chat_body("demo", "count"),
        )
        .await?;
        let v: serde_json::Value = serde_json::from_slice(&body)?;
        assert_eq!(
            (status, v["error"]["message"].as_str()),
            (418, Some("seen=1")),
            "{v}"
        );
    }
    Ok(())
}

/// Warm mode through the gateway: requests are served by a reused instance, a fault
/// retires it, and `/metrics` counts the instances created.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warm_mode_reuses_instances_across_requests_until_a_fault() -> anyhow::Result<()> {
    let m = mock_upstream().await?;
    let gw = gateway(&format!(
        "{}[models.demo]\ndeployments = [\"a\"]\nfilters = [\"hostile\"]\n\
         [plugins.hostile]\ninstances = \"warm\"\npool_size = 1\n",
        openai_deployment("a", &base(&m), "mock-echo", "")
    ))
    .await?;
    let seen = |text: &'static str| {
        let addr = gw.gw.addr;
        async move {
            let (status, _, body) =
                post_json(addr, "/v1/chat/completions", &chat_body("demo", text)).await?;
            let v: serde_json::Value = serde_json::from_slice(&body)?;
            anyhow::Ok((
                status,
                v["error"]["message"].as_str().unwrap_or("").to_owned(),
            ))
        }
    };
    for n in 1..=4 {
        assert_eq!(seen("count").await?, (418, format!("seen={n}")));
    }
    let (status, _) = seen("trap").await?;
    assert_eq!(status, 503, "a filter fault fails closed");
    assert_eq!(
        seen("count").await?,
        (418, "seen=1".into()),
        "a new instance"
    );
    let (_, _, metrics) = switchyard_tests::send(gw.gw.addr, "GET", "/metrics", &[], None).await?;
    let metrics = String::from_utf8_lossy(&metrics);
    let created = metrics
        .lines()
        .find(|l| {
            l.starts_with("switchyard_plugin_instances_created_total")
                && l.contains("plugin=\"hostile\"")
        })
        .and_then(|l| l.rsplit(' ').next())
        .unwrap_or_default();
    // The load's smoke test, the instance that served five requests, and its successor.
    assert_eq!(created, "3", "{metrics}");
    Ok(())
}
