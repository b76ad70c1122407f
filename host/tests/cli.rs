//! The `switchyard` command line, run as a real process.

use std::path::PathBuf;
use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_switchyard"))
}

fn fixture(name: &str) -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../target/fixtures")
        .join(format!("{name}.wasm"));
    assert!(
        p.exists(),
        "{} is missing: run `bash scripts/build-plugins.sh`",
        p.display()
    );
    p
}

#[test]
fn plugin_inspect_shows_kind_version_exports_imports_size_and_sha256() {
    let out = bin()
        .args(["plugin", "inspect"])
        .arg(fixture("fx-echo"))
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    for want in [
        "kind:        adapter",
        "wit version: 0.1.0",
        "switchyard:plugin/adapter@0.1.0",
        "switchyard:plugin/types@0.1.0",
        "sha256:",
        "size:",
    ] {
        assert!(text.contains(want), "missing {want:?} in\n{text}");
    }
}

#[test]
fn plugin_inspect_json_is_machine_readable() {
    let out = bin()
        .args(["plugin", "inspect", "--json"])
        .arg(fixture("fx-hostile"))
        .output()
        .expect("run");
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["kind"], "filter");
    assert_eq!(v["wit_version"], "0.1.0");
    assert_eq!(v["sha256"].as_str().map(str::len), Some(64));
    assert!(v["imports"].as_array().is_some_and(|a| !a.is_empty()));
}

#[test]
fn plugin_inspect_fails_clearly_on_non_plugins() {
    let dir = tempfile::tempdir().expect("tempdir");
    let truncated = dir.path().join("t.wasm");
    let good = std::fs::read(fixture("fx-echo")).expect("read");
    std::fs::write(&truncated, &good[..good.len() / 2]).expect("write");
    let cases = [
        (truncated, "truncated"),
        (fixture("fx-wrong-world"), "no Switchyard plugin interface"),
        (fixture("fx-future-version"), "supports WIT version"),
        (dir.path().join("missing.wasm"), "cannot read"),
    ];
    for (path, want) in cases {
        let out = bin()
            .args(["plugin", "inspect"])
            .arg(&path)
            .output()
            .expect("run");
        assert!(!out.status.success(), "{} should fail", path.display());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "expected {want:?} in {err}");
    }
}

#[test]
fn check_validates_config_and_exits_2_naming_the_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = dir.path().join("good.toml");
    std::fs::write(&good, "[sandbox]\ncall_timeout = \"20ms\"\n").expect("write");
    let out = bin()
        .args(["check", "--config"])
        .arg(&good)
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[sandbox]\nmemory_limit = \"lots\"\n").expect("write");
    let out = bin()
        .args(["check", "--config"])
        .arg(&bad)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("sandbox.memory_limit"));
}

#[test]
fn check_verifies_referenced_plugins_exist_and_have_the_right_kind() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plugins = dir.path().join("plugins");
    std::fs::create_dir_all(&plugins).expect("mkdir");
    std::fs::copy(fixture("fx-echo"), plugins.join("echo.wasm")).expect("copy");
    std::fs::copy(fixture("fx-hostile"), plugins.join("guard.wasm")).expect("copy");
    let cfg = dir.path().join("sy.toml");
    let write = |models: &str| {
        let deployments = "[deployments.a]\nadapter = \"echo\"\nbase_url = \"http://127.0.0.1:1\"\nmodel = \"m\"\n";
        std::fs::write(
            &cfg,
            format!("[plugins]\ndir = \"plugins\"\n{deployments}{models}"),
        )
        .expect("write");
    };
    write("[models.demo]\ndeployments = [\"a\"]\nfilters = [\"guard\"]\n");
    let out = bin()
        .args(["check", "--config"])
        .arg(&cfg)
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    write("[models.demo]\ndeployments = [\"a\"]\nrouter = \"guard\"\nfilters = [\"missing\"]\n");
    let out = bin()
        .args(["check", "--config"])
        .arg(&cfg)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("models.demo.router: plugin `guard` is a filter, not a router"),
        "{err}"
    );
    assert!(
        err.contains("models.demo.filters: plugin `missing`: cannot read"),
        "{err}"
    );
}

/// A raw HTTP/1.1 exchange with `Connection: close`; returns the whole response text.
fn http(addr: &str, method: &str, path: &str, body: &str) -> std::io::Result<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr)?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(20)))?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

#[test]
fn sigterm_stops_accepting_but_lets_in_flight_streams_finish() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mock = rt
        .block_on(switchyard_mock_upstream::MockUpstream::start(
            "127.0.0.1:0".parse().expect("addr"),
        ))
        .expect("mock");
    let dir = tempfile::tempdir().expect("tempdir");
    let plugins = dir.path().join("plugins");
    std::fs::create_dir_all(&plugins).expect("mkdir");
    let openai = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/plugins/openai.wasm");
    std::fs::copy(&openai, plugins.join("openai.wasm")).expect("run scripts/build-plugins.sh");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let addr = format!("127.0.0.1:{port}");
    let cfg = dir.path().join("sy.toml");
    std::fs::write(
        &cfg,
        format!(
            "[server]\nlisten = \"{addr}\"\n[plugins]\ndir = \"plugins\"\n\
             [deployments.slow]\nadapter = \"openai\"\nbase_url = \"http://{}/v1\"\nmodel = \"mock-ttft-1500ms\"\n\
             [models.demo]\ndeployments = [\"slow\"]\n",
            mock.addr
        ),
    )
    .expect("write");
    let mut child = bin()
        .args(["serve", "--config"])
        .arg(&cfg)
        .spawn()
        .expect("spawn");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !http(&addr, "GET", "/readyz", "").is_ok_and(|r| r.starts_with("HTTP/1.1 200")) {
        assert!(
            std::time::Instant::now() < deadline,
            "gateway never became ready"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let stream_addr = addr.clone();
    let in_flight = std::thread::spawn(move || {
        let body =
            r#"{"model":"demo","stream":true,"messages":[{"role":"user","content":"still here"}]}"#;
        http(&stream_addr, "POST", "/v1/chat/completions", body)
    });
    // Wait until the upstream saw the request, so it really is in flight.
    while mock.requests().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "request never reached the upstream"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(kill.success());
    let response = in_flight
        .join()
        .expect("thread")
        .expect("in-flight request completes");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(
        response.contains("echo:") && response.contains("\" still\""),
        "{response}"
    );
    assert!(
        response.contains("data: [DONE]"),
        "the stream finished cleanly: {response}"
    );
    let status = child.wait().expect("wait");
    assert!(status.success(), "clean exit after draining: {status:?}");
    assert!(
        http(&addr, "GET", "/healthz", "").is_err(),
        "no longer accepting"
    );
}

/// `check` with `toml` as the config: the exit code and what it printed to stderr.
fn check_config(toml: &str) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("switchyard.toml");
    std::fs::write(&path, toml).expect("write");
    let out = bin()
        .args(["check", "--config"])
        .arg(&path)
        .output()
        .expect("run");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn check_refuses_an_unsafe_plugin_cache_and_an_open_listener_without_keys() {
    let (code, err) = check_config("[plugins]\ndir = \"p\"\ncache_dir = \"p/.cache\"\n");
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("plugins.cache_dir") && err.contains("inside the plugins folder"),
        "{err}"
    );
    let (code, err) = check_config("[server]\nlisten = \"0.0.0.0:8080\"\n");
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("server.listen") && err.contains("[auth] keys"),
        "{err}"
    );
}
