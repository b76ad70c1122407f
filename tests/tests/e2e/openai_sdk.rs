//! The official `openai` Python SDK (installed into `target/pyenv` by the README's test
//! command) against the real gateway and the mock upstream.

use switchyard_tests::{TestGateway, mock_upstream, plugin, root, run_client};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_openai_python_sdk_works_against_the_gateway() -> anyhow::Result<()> {
    let python = root().join("target/pyenv/bin/python");
    anyhow::ensure!(
        python.exists(),
        "{} is missing: `bash scripts/test.sh` creates it (python3 -m venv target/pyenv && pip install -r tests/python/requirements.txt)",
        python.display()
    );
    let m = mock_upstream().await?;
    let keys = tempfile::tempdir()?;
    let key_file = keys.path().join("client-key");
    std::fs::write(&key_file, "sk-switchyard-test-key\n")?;
    let base = format!("http://{}/v1", m.addr);
    let toml = format!(
        r#"
[auth]
keys = ["file:{key}"]
[deployments.flaky]
adapter = "openai"
base_url = "{base}"
model = "mock-status-503"
[deployments.good]
adapter = "openai"
base_url = "{base}"
model = "mock-echo"
[deployments.rate-limited]
adapter = "openai"
base_url = "{base}"
model = "mock-status-429"
[deployments.tool-caller]
adapter = "openai"
base_url = "{base}"
model = "mock-tool-call"
[models.demo]
deployments = ["flaky", "good"]
router = "balanced"
filters = ["pii-redact"]
[models.limited]
deployments = ["rate-limited"]
[models.tools]
deployments = ["tool-caller"]
"#,
        key = key_file.display()
    );
    let gw = TestGateway::start(
        &[
            ("openai.wasm", plugin("openai")),
            ("balanced.wasm", plugin("balanced")),
            ("pii-redact.wasm", plugin("pii-redact")),
        ],
        &toml,
    )
    .await?;
    let report = run_client(
        tokio::process::Command::new(&python)
            .args(["-m", "pytest", "-q", "-p", "no:cacheprovider"])
            .arg(root().join("tests/python"))
            .env("SWITCHYARD_BASE_URL", format!("http://{}/v1", gw.gw.addr))
            .env("SWITCHYARD_KEY", "sk-switchyard-test-key"),
    )
    .await?;
    assert!(report.contains("10 passed"), "{report}");
    Ok(())
}
