//! Measures two plugin-host figures on the real `switchyard` binary:
//! - RSS with 10 plugins loaded (from `/proc/PID/status`);
//! - reload latency: from the moment a new version is renamed into the plugins folder
//!   until `/admin/plugins` reports it serving (debounce included).
//!
//! Run: `bash scripts/build-plugins.sh && cargo build --release -p switchyard &&
//!       cargo run --release -p switchyard-tests --example host_figures`

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use switchyard_tests::{fixture, get, plugin, root};

fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .context("no VmRSS")?;
    Ok(line
        .split_whitespace()
        .nth(1)
        .context("VmRSS value")?
        .parse()?)
}

async fn serving_sha(addr: std::net::SocketAddr, name: &str) -> anyhow::Result<Option<String>> {
    let (_, _, body) = get(addr, "/admin/plugins").await?;
    let v: serde_json::Value = serde_json::from_slice(&body)?;
    Ok(v["plugins"]
        .as_array()
        .and_then(|a| a.iter().find(|p| p["name"] == name))
        .and_then(|p| p["sha256"].as_str())
        .map(str::to_owned))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let bin = root().join("target/release/switchyard");
    anyhow::ensure!(
        bin.exists(),
        "build it first: cargo build --release -p switchyard"
    );
    let dir = tempfile::tempdir()?;
    let plugins = dir.path().join("plugins");
    std::fs::create_dir_all(&plugins)?;
    let sources = [
        plugin("openai"),
        plugin("balanced"),
        plugin("pii-redact"),
        fixture("fx-echo"),
        fixture("fx-hostile"),
    ];
    for i in 0..10 {
        std::fs::copy(
            &sources[i % sources.len()],
            plugins.join(format!("plugin-{i}.wasm")),
        )?;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse()?;
    std::fs::write(
        dir.path().join("switchyard.toml"),
        format!(
            "[server]\nlisten = \"{addr}\"\n[plugins]\ndir = \"plugins\"\ncache_dir = \"cache\"\n"
        ),
    )?;
    let mut child = Command::new(&bin)
        .args(["serve", "--config"])
        .arg(dir.path().join("switchyard.toml"))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()?;
    let result = measure(addr, child.id(), &plugins).await;
    let _ = child.kill();
    let _ = child.wait();
    result
}

async fn measure(
    addr: std::net::SocketAddr,
    pid: u32,
    plugins: &std::path::Path,
) -> anyhow::Result<()> {
    let started = Instant::now();
    loop {
        if let Ok((200, _, _)) = get(addr, "/readyz").await {
            break;
        }
        if started.elapsed() > Duration::from_secs(60) {
            bail!("gateway not ready after 60 s");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!(
        "ready with 10 plugins after {:?} (cold cache, includes compiling)",
        started.elapsed()
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    println!(
        "RSS with 10 plugins loaded: {:.1} MiB",
        rss_kib(pid)? as f64 / 1024.0
    );

    let versions = [
        std::fs::read(fixture("fx-echo-v2"))?,
        std::fs::read(fixture("fx-echo"))?,
    ];
    let mut samples = Vec::new();
    for round in 0..20 {
        let bytes = &versions[round % 2];
        let want = switchyard::plugins::inspect::sha256_hex(bytes);
        let tmp = plugins.join(".plugin-3.tmp");
        std::fs::write(&tmp, bytes)?;
        let t = Instant::now();
        std::fs::rename(&tmp, plugins.join("plugin-3.wasm"))?;
        loop {
            if serving_sha(addr, "plugin-3").await?.as_deref() == Some(want.as_str()) {
                break;
            }
            if t.elapsed() > Duration::from_secs(10) {
                bail!("version not serving after 10 s");
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        samples.push(t.elapsed());
    }
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "reload latency, rename → serving (debounce 200 ms included), n={}: min {:.1} ms, p50 {:.1} ms, max {:.1} ms",
        samples.len(),
        ms(samples[0]),
        ms(samples[samples.len() / 2]),
        ms(samples[samples.len() - 1])
    );
    println!(
        "RSS after 20 reloads: {:.1} MiB",
        rss_kib(pid)? as f64 / 1024.0
    );
    Ok(())
}
