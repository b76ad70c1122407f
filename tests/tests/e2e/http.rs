//! The HTTP surface of the plugin host: health, readiness, `/admin/plugins`, and the
//! OpenAI error shape with `x-request-id` on unknown routes.

use switchyard_tests::{TestGateway, fixture, get};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_readiness_and_admin_plugins_over_http() -> anyhow::Result<()> {
    let gw = TestGateway::start(
        &[
            ("echo.wasm", fixture("fx-echo")),
            ("hostile.wasm", fixture("fx-hostile")),
        ],
        "",
    )
    .await?;
    let (status, headers, _) = get(gw.gw.addr, "/healthz").await?;
    assert_eq!(status, 200);
    assert!(headers.contains_key("x-request-id"));
    let (status, _, body) = get(gw.gw.addr, "/readyz").await?;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));

    let (_, _, body) = get(gw.gw.addr, "/admin/plugins").await?;
    let v: serde_json::Value = serde_json::from_slice(&body)?;
    assert!(v["generation"].as_u64().is_some_and(|g| g >= 1), "{v}");
    let echo = gw.admin_entry("echo").await?;
    assert_eq!(echo["kind"], "adapter");
    assert_eq!(echo["wit_version"], "0.1.0");
    assert_eq!(echo["status"], "active");
    assert!(echo["error"].is_null());
    assert_eq!(gw.admin_entry("hostile").await?["kind"], "filter");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_route_gets_openai_shaped_404_with_request_id() -> anyhow::Result<()> {
    let gw = TestGateway::start(&[], "").await?;
    let (status, headers, body) = get(gw.gw.addr, "/v9/nothing").await?;
    assert_eq!(status, 404);
    let id = headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(id.starts_with("req_"), "{id}");
    let v: serde_json::Value = serde_json::from_slice(&body)?;
    assert_eq!(v["error"]["type"], "invalid_request_error");
    assert_eq!(v["error"]["code"], "unknown_url");
    assert!(v["error"]["param"].is_null());
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("/v9/nothing"))
    );
    let (_, headers2, _) = get(gw.gw.addr, "/v9/nothing").await?;
    assert_ne!(
        headers2.get("x-request-id").and_then(|v| v.to_str().ok()),
        Some(id.as_str()),
        "ids are unique"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_file_without_a_good_version_is_listed_as_rejected() -> anyhow::Result<()> {
    let gw = TestGateway::start(&[("broken.wasm", fixture("fx-wrong-world"))], "").await?;
    let e = gw.admin_entry("broken").await?;
    assert_eq!(e["status"], "rejected");
    assert!(e["kind"].is_null());
    assert!(
        e["error"]
            .as_str()
            .is_some_and(|m| m.contains("no Switchyard plugin interface")),
        "{e}"
    );
    Ok(())
}
