//! The official `openai` Node SDK (pinned in `tests/node/package.json`, installed by the
//! README's test command) against the real gateway and the mock upstream, aborted
//! streams included.

use switchyard_tests::{TestGateway, mock_upstream, openai_deployment, plugin, root, run_client};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_openai_node_sdk_works_against_the_gateway() -> anyhow::Result<()> {
    let dir = root().join("tests/node");
    anyhow::ensure!(
        dir.join("node_modules/openai").exists(),
        "tests/node/node_modules is missing: `bash scripts/test.sh` installs it (npm ci --prefix tests/node)"
    );
    let m = mock_upstream().await?;
    let keys = tempfile::tempdir()?;
    let key_file = keys.path().join("client-key");
    std::fs::write(&key_file, "sk-switchyard-node-key\n")?;
    let gw = TestGateway::start(
        &[("openai.wasm", plugin("openai"))],
        &format!(
            "[auth]\nkeys = [\"file:{}\"]\n{}[models.demo]\ndeployments = [\"good\"]\n",
            key_file.display(),
            openai_deployment("good", &format!("http://{}/v1", m.addr), "mock-echo", "")
        ),
    )
    .await?;
    let report = run_client(
        tokio::process::Command::new("node")
            .args(["--test", "--test-reporter=spec", "sdk.test.mjs"])
            .current_dir(&dir)
            .env("SWITCHYARD_BASE_URL", format!("http://{}/v1", gw.gw.addr))
            .env("SWITCHYARD_KEY", "sk-switchyard-node-key"),
    )
    .await?;
    assert!(report.contains("pass 6"), "{report}");
    Ok(())
}
