//! Shared harness for the end-to-end tests: where the built plugins are, a real gateway
//! on `127.0.0.1:0` over a temporary plugins folder, an HTTP client, and canonical
//! requests to feed plugins.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use switchyard::canonical::{ChatRequest, ContentPart, Message, Role, Sampling};
use switchyard::config::Config;
use switchyard::gateway::Gateway;
use switchyard::plugins::Snapshot;

/// The repository root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn built(dir: &str, name: &str) -> PathBuf {
    let p = root().join("target").join(dir).join(format!("{name}.wasm"));
    assert!(
        p.exists(),
        "{} is missing: run `bash scripts/build-plugins.sh` (the README's test command does)",
        p.display()
    );
    p
}

/// A bundled plugin, built by `scripts/build-plugins.sh`.
pub fn plugin(name: &str) -> PathBuf {
    built("plugins", name)
}

/// A test fixture plugin, built by `scripts/build-plugins.sh`.
pub fn fixture(name: &str) -> PathBuf {
    built("fixtures", name)
}

/// Logs to the test output when `RUST_LOG` is set (e.g. `RUST_LOG=switchyard=debug`).
pub fn init_logging() {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_test_writer()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .try_init();
    }
}

/// A gateway serving a temporary plugins folder.
pub struct TestGateway {
    pub gw: Gateway,
    pub dir: tempfile::TempDir,
}

impl TestGateway {
    /// Starts a gateway whose plugins folder holds `plugins` (file name → source file)
    /// and whose config has `extra_toml` appended.
    pub async fn start(
        plugins: &[(&str, PathBuf)],
        extra_toml: &str,
    ) -> anyhow::Result<TestGateway> {
        let dir = tempfile::tempdir()?;
        std::fs::create_dir_all(dir.path().join("plugins"))?;
        for (name, src) in plugins {
            std::fs::copy(src, dir.path().join("plugins").join(name))
                .with_context(|| format!("copy {name}"))?;
        }
        let toml = format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n[plugins]\ndir = \"plugins\"\ncache_dir = \"cache\"\ndebounce = \"50ms\"\n{extra_toml}"
        );
        std::fs::write(dir.path().join("switchyard.toml"), toml)?;
        let cfg = Config::load(&dir.path().join("switchyard.toml"))?;
        let gw = Gateway::start(cfg, Some(&dir.path().join("switchyard.toml"))).await?;
        Ok(TestGateway { gw, dir })
    }

    pub fn plugins_dir(&self) -> PathBuf {
        self.dir.path().join("plugins")
    }

    /// Puts `bytes` into the plugins folder as `name` the way a careful operator does:
    /// write beside it, then rename over it.
    pub fn install_bytes(&self, name: &str, bytes: &[u8]) -> anyhow::Result<()> {
        let tmp = self.plugins_dir().join(format!(".{name}.tmp"));
        std::fs::write(&tmp, bytes)?;
        std::fs::rename(&tmp, self.plugins_dir().join(name))?;
        Ok(())
    }

    pub fn install(&self, name: &str, src: &Path) -> anyhow::Result<()> {
        self.install_bytes(name, &std::fs::read(src)?)
    }

    pub fn snapshot(&self) -> std::sync::Arc<Snapshot> {
        self.gw.registry.snapshot()
    }

    /// Waits (without sleeping blindly) until `pred` holds for the registry, or fails
    /// after `timeout`.
    pub async fn wait_until(
        &self,
        timeout: Duration,
        mut pred: impl FnMut(&Self) -> bool,
    ) -> anyhow::Result<()> {
        let mut rx = self.gw.registry.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if pred(self) {
                return Ok(());
            }
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(Ok(())) => continue,
                Ok(Err(_)) => bail!("registry closed"),
                Err(_) => bail!(
                    "condition not reached within {timeout:?}; plugins: {:?}",
                    self.gw.registry.statuses()
                ),
            }
        }
    }

    /// The `/admin/plugins` entry for `name`.
    pub async fn admin_entry(&self, name: &str) -> anyhow::Result<serde_json::Value> {
        let (status, _, body) = get(self.gw.addr, "/admin/plugins").await?;
        anyhow::ensure!(status == 200, "admin status {status}");
        let v: serde_json::Value = serde_json::from_slice(&body)?;
        v["plugins"]
            .as_array()
            .and_then(|a| a.iter().find(|p| p["name"] == name).cloned())
            .with_context(|| format!("{name} not in {v}"))
    }
}

/// `GET path` over real HTTP; returns status, headers and body.
pub async fn get(
    addr: std::net::SocketAddr,
    path: &str,
) -> anyhow::Result<(u16, hyper::HeaderMap, Vec<u8>)> {
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<bytes::Bytes>>();
    let uri: hyper::Uri = format!("http://{addr}{path}").parse()?;
    let resp = client.get(uri).await?;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await?.to_bytes().to_vec();
    Ok((status, headers, body))
}

/// A canonical request with one user message.
pub fn request(text: &str) -> ChatRequest {
    conversation(&[(Role::User, text)])
}

/// A canonical request with these messages.
pub fn conversation(messages: &[(Role, &str)]) -> ChatRequest {
    ChatRequest {
        model: "demo".into(),
        messages: messages
            .iter()
            .map(|(role, text)| Message {
                role: *role,
                content: vec![ContentPart::Text((*text).to_owned())],
                name: None,
                tool_calls: vec![],
                tool_call_id: None,
                reasoning: None,
            })
            .collect(),
        tools: vec![],
        tool_choice: None,
        parallel_tool_calls: None,
        response_format: None,
        sampling: Sampling {
            temperature: Some(0.2),
            top_p: None,
            max_tokens: Some(256),
            stop: vec![],
            presence_penalty: None,
            frequency_penalty: None,
            seed: None,
            n: None,
            reasoning_effort: None,
        },
        stream: false,
        user: None,
        extra: String::new(),
    }
}

/// `POST path` with a JSON body over real HTTP; returns status, headers and the whole body.
pub async fn post_json(
    addr: std::net::SocketAddr,
    path: &str,
    body: &serde_json::Value,
) -> anyhow::Result<(u16, hyper::HeaderMap, Vec<u8>)> {
    let client =
        Client::builder(TokioExecutor::new()).build_http::<http_body_util::Full<bytes::Bytes>>();
    let req = hyper::Request::post(format!("http://{addr}{path}"))
        .header("content-type", "application/json")
        .body(http_body_util::Full::new(bytes::Bytes::from(
            serde_json::to_vec(body)?,
        )))?;
    let resp = client.request(req).await?;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await?.to_bytes().to_vec();
    Ok((status, headers, body))
}

/// Sends a streaming request, reads the response head and the first body bytes, then
/// closes the connection, as a client that gives up does.
pub async fn post_and_hang_up(
    addr: std::net::SocketAddr,
    path: &str,
    body: &serde_json::Value,
) -> anyhow::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let body = serde_json::to_vec(body)?;
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await?;
    s.write_all(&body).await?;
    let mut buf = vec![0u8; 4096];
    let mut got = Vec::new();
    while !String::from_utf8_lossy(&got).contains("data:") {
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf)).await??;
        anyhow::ensure!(n > 0, "connection closed before any event");
        got.extend_from_slice(&buf[..n]);
    }
    drop(s);
    Ok(())
}

/// A parsed SSE response body from the gateway.
#[derive(Debug, Default)]
pub struct Sse {
    /// `chat.completion.chunk` objects in order.
    pub events: Vec<serde_json::Value>,
    /// `{"error":...}` events.
    pub errors: Vec<serde_json::Value>,
    /// Whether `data: [DONE]` ended the stream.
    pub done: bool,
}

impl Sse {
    pub fn parse(body: &[u8]) -> anyhow::Result<Sse> {
        let text = std::str::from_utf8(body)?;
        let mut sse = Sse::default();
        for block in text.split("\n\n").filter(|b| !b.trim().is_empty()) {
            anyhow::ensure!(!sse.done, "event after [DONE]: {block}");
            let data = block
                .strip_prefix("data: ")
                .with_context(|| format!("not a data event: {block:?}"))?;
            if data == "[DONE]" {
                sse.done = true;
                continue;
            }
            let v: serde_json::Value = serde_json::from_str(data)?;
            if v.get("error").is_some() {
                sse.errors.push(v);
            } else {
                sse.events.push(v);
            }
        }
        Ok(sse)
    }

    /// The concatenated content of choice 0.
    pub fn text(&self) -> String {
        self.events
            .iter()
            .filter_map(|e| e["choices"][0]["delta"]["content"].as_str())
            .collect()
    }
}

/// Sends `method path` with `headers` and an optional JSON body over real HTTP; returns
/// status, headers and the whole body.
pub async fn send(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&serde_json::Value>,
) -> anyhow::Result<(u16, hyper::HeaderMap, Vec<u8>)> {
    let client =
        Client::builder(TokioExecutor::new()).build_http::<http_body_util::Full<bytes::Bytes>>();
    let mut req = hyper::Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let bytes = match body {
        Some(b) => {
            req = req.header("content-type", "application/json");
            serde_json::to_vec(b)?
        }
        None => Vec::new(),
    };
    let resp = client
        .request(req.body(http_body_util::Full::new(bytes::Bytes::from(bytes)))?)
        .await?;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await?.to_bytes().to_vec();
    Ok((status, headers, body))
}

/// A `[deployments.NAME]` table for the bundled `openai` adapter.
pub fn openai_deployment(name: &str, base: &str, model: &str, extra: &str) -> String {
    format!(
        "[deployments.{name}]\nadapter = \"openai\"\nbase_url = \"{base}\"\nmodel = \"{model}\"\n{extra}\n"
    )
}

/// A one-message OpenAI chat body.
pub fn chat_body(model: &str, text: &str) -> serde_json::Value {
    serde_json::json!({"model": model, "messages": [{"role": "user", "content": text}]})
}

/// A mock upstream on a free loopback port.
pub async fn mock_upstream() -> anyhow::Result<switchyard_mock_upstream::MockUpstream> {
    Ok(switchyard_mock_upstream::MockUpstream::start("127.0.0.1:0".parse()?).await?)
}

/// A loopback port nothing listens on.
pub fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// A gateway with the bundled `openai` adapter, `balanced` router and `pii-redact`
/// filter, and `toml` (deployments and models) as its config.
pub async fn bundled_gateway(toml: &str) -> anyhow::Result<TestGateway> {
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

/// An OpenAI chat body with a system message and one user message.
pub fn terse_chat(model: &str, text: &str) -> serde_json::Value {
    serde_json::json!({"model": model, "messages": [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": text},
    ]})
}

/// A mock upstream and a bundled gateway whose model `demo` is served by one `openai`
/// deployment, `primary`, asking the mock for `mock_model`; `model_toml` adds lines to
/// `[models.demo]` (filters, router).
pub async fn demo(
    mock_model: &str,
    model_toml: &str,
) -> anyhow::Result<(switchyard_mock_upstream::MockUpstream, TestGateway)> {
    let m = mock_upstream().await?;
    let gw = bundled_gateway(&format!(
        "{}[models.demo]\ndeployments = [\"primary\"]\n{model_toml}",
        openai_deployment("primary", &format!("http://{}/v1", m.addr), mock_model, "")
    ))
    .await?;
    Ok((m, gw))
}

/// Runs a client program (an official SDK's test suite) to completion; fails with its
/// whole output unless it succeeded. Returns the output, for counting passed tests.
pub async fn run_client(cmd: &mut tokio::process::Command) -> anyhow::Result<String> {
    let out = cmd.output().await?;
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    anyhow::ensure!(out.status.success(), "{cmd:?} failed:\n{report}");
    Ok(report)
}
