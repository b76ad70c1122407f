//! Start-up: the listener accepts before the first plugin load is done; health answers
//! at once and model requests wait for the load instead of failing.

use std::time::Duration;

use switchyard::config::Config;
use switchyard::gateway::Gateway;
use switchyard_tests::{chat_body, get, mock_upstream, openai_deployment, plugin, post_json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_sent_while_plugins_load_waits_and_succeeds() -> anyhow::Result<()> {
    let m = mock_upstream().await?;
    let dir = tempfile::tempdir()?;
    std::fs::create_dir(dir.path().join("plugins"))?;
    // Several plugins on a cold cache: compiling them takes long enough to aim at.
    for name in ["openai", "anthropic", "gemini", "pii-redact", "balanced"] {
        std::fs::copy(
            plugin(name),
            dir.path().join("plugins").join(format!("{name}.wasm")),
        )?;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse()?;
    let path = dir.path().join("switchyard.toml");
    std::fs::write(
        &path,
        format!(
            "[server]\nlisten = \"{addr}\"\n[plugins]\ndir = \"plugins\"\ncache_dir = \"cache\"\n{}[models.demo]\ndeployments = [\"a\"]\nfilters = [\"pii-redact\"]\n",
            openai_deployment("a", &format!("http://{}/v1", m.addr), "mock-echo", "")
        ),
    )?;
    let cfg = Config::load(&path)?;
    let starting = tokio::spawn(async move { Gateway::start(cfg, None).await });
    // Connect as soon as the port accepts, as a client started with the process does.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "never accepted");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let (health, _, _) = get(addr, "/healthz").await?;
    let (ready, _, _) = get(addr, "/readyz").await?;
    let was_loading = !starting.is_finished();
    let (status, _, body) =
        post_json(addr, "/v1/chat/completions", &chat_body("demo", "hi")).await?;
    assert_eq!(health, 200);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert!(
        was_loading && ready == 503,
        "the request should have arrived during the load (loading: {was_loading}, readyz: {ready})"
    );
    let gw = starting.await??;
    let (ready, _, _) = get(addr, "/readyz").await?;
    assert_eq!(ready, 200);
    let _ = gw.shutdown.send(true);
    Ok(())
}
