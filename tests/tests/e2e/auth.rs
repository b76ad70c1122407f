//! Who may call what: client keys on the OpenAI routes, admin keys on `/admin/*`, and the
//! `Authorization` scheme matched case-insensitively (RFC 9110 §11.1).

use switchyard_mock_upstream::MockUpstream;
use switchyard_tests::{TestGateway, chat_body, mock_upstream, openai_deployment, plugin, send};

const CLIENT: &str = "client-key-0123456789";
const ADMIN: &str = "admin-key-9876543210";

async fn gateway(
    m: &MockUpstream,
    admin: bool,
) -> anyhow::Result<(TestGateway, tempfile::TempDir)> {
    let keys = tempfile::tempdir()?;
    std::fs::write(keys.path().join("client"), CLIENT)?;
    std::fs::write(keys.path().join("admin"), ADMIN)?;
    let admin_keys = if admin {
        format!(
            "admin_keys = [\"file:{}\"]\n",
            keys.path().join("admin").display()
        )
    } else {
        String::new()
    };
    let gw = TestGateway::start(
        &[("openai.wasm", plugin("openai"))],
        &format!(
            "[auth]\nkeys = [\"file:{}\"]\n{admin_keys}{}[models.demo]\ndeployments = [\"a\"]\n",
            keys.path().join("client").display(),
            openai_deployment("a", &format!("http://{}/v1", m.addr), "mock-echo", ""),
        ),
    )
    .await?;
    Ok((gw, keys))
}

fn code(body: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(body)
        .map(|v| v["error"]["code"].as_str().unwrap_or_default().to_owned())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_routes_need_an_admin_key_and_a_client_key_is_not_one() -> anyhow::Result<()> {
    let m = mock_upstream().await?;
    let (gw, _keys) = gateway(&m, true).await?;
    let client = format!("Bearer {CLIENT}");
    let admin = format!("Bearer {ADMIN}");
    let admin_lower = format!("bearer {ADMIN}");
    for path in ["/admin/config", "/admin/plugins"] {
        let (s, _, b) = send(gw.gw.addr, "GET", path, &[], None).await?;
        assert_eq!((s, code(&b).as_str()), (401, "invalid_api_key"), "{path}");
        let (s, _, b) = send(
            gw.gw.addr,
            "GET",
            path,
            &[("authorization", "Bearer wrong-key-000")],
            None,
        )
        .await?;
        assert_eq!((s, code(&b).as_str()), (401, "invalid_api_key"), "{path}");
        let (s, _, b) = send(gw.gw.addr, "GET", path, &[("authorization", &client)], None).await?;
        assert_eq!(
            (s, code(&b).as_str()),
            (403, "admin_key_required"),
            "{path}"
        );
        for h in [&admin, &admin_lower] {
            let (s, _, b) = send(gw.gw.addr, "GET", path, &[("authorization", h)], None).await?;
            assert_eq!(s, 200, "{path}: {}", String::from_utf8_lossy(&b));
        }
    }
    // An admin key is not a client key.
    let (s, _, _) = send(
        gw.gw.addr,
        "POST",
        "/v1/chat/completions",
        &[("authorization", &admin)],
        Some(&chat_body("demo", "hi")),
    )
    .await?;
    assert_eq!(s, 401);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_client_keys_but_no_admin_keys_admin_is_closed() -> anyhow::Result<()> {
    let m = mock_upstream().await?;
    let (gw, _keys) = gateway(&m, false).await?;
    let (s, _, _) = send(gw.gw.addr, "GET", "/admin/config", &[], None).await?;
    assert_eq!(s, 401);
    let client = format!("Bearer {CLIENT}");
    let (s, _, _) = send(
        gw.gw.addr,
        "GET",
        "/admin/config",
        &[("authorization", &client)],
        None,
    )
    .await?;
    assert_eq!(s, 403);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bearer_scheme_is_case_insensitive() -> anyhow::Result<()> {
    let m = mock_upstream().await?;
    let (gw, _keys) = gateway(&m, true).await?;
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let h = format!("{scheme} {CLIENT}");
        let (s, _, b) = send(
            gw.gw.addr,
            "POST",
            "/v1/chat/completions",
            &[("authorization", &h)],
            Some(&chat_body("demo", "hi")),
        )
        .await?;
        assert_eq!(s, 200, "{scheme}: {}", String::from_utf8_lossy(&b));
        let (s, _, _) = send(
            gw.gw.addr,
            "GET",
            "/v1/models",
            &[("authorization", &h)],
            None,
        )
        .await?;
        assert_eq!(s, 200, "{scheme}");
    }
    for bad in [
        CLIENT.to_owned(),
        format!("Basic {CLIENT}"),
        "Bearer".to_owned(),
    ] {
        let (s, _, _) = send(
            gw.gw.addr,
            "POST",
            "/v1/chat/completions",
            &[("authorization", &bad)],
            Some(&chat_body("demo", "hi")),
        )
        .await?;
        assert_eq!(s, 401, "{bad}");
    }
    Ok(())
}
