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
    http_as(addr, None, method, path, body)
}

/// `http` presenting `key` as `Authorization: Bearer`.
fn http_as(
    addr: &str,
    key: Option<&str>,
    method: &str,
    path: &str,
    body: &str,
) -> std::io::Result<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr)?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(20)))?;
    let auth = key.map_or(String::new(), |k| format!("authorization: Bearer {k}\r\n"));
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n{auth}content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

/// A child process killed when dropped, so a failed test leaves no gateway running.
struct Reaped(std::process::Child);

impl Reaped {
    /// Stops the process as an orchestrator does (SIGTERM) and waits for it to exit.
    fn terminate(&mut self) -> std::process::ExitStatus {
        let kill = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status()
            .expect("kill");
        assert!(kill.success());
        self.0.wait().expect("wait")
    }
}

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts a mock upstream and `switchyard serve` as a process, with the bundled
/// `openai` plugin and `config(mock address)` appended to the config; returns once
/// `/readyz` answers 200. The runtime keeps the mock alive.
fn serve_process(
    config: impl Fn(std::net::SocketAddr) -> String,
) -> (
    tempfile::TempDir,
    switchyard_mock_upstream::MockUpstream,
    String,
    std::process::Child,
    tokio::runtime::Runtime,
) {
    serve_process_with(config, |_| {}, false)
}

/// `serve_process`, with `prepare(dir)` run before the gateway starts (to put plugins in
/// `dir/plugins`) and, with `logged`, the gateway's output in `dir/gateway.log`.
fn serve_process_with(
    config: impl Fn(std::net::SocketAddr) -> String,
    prepare: impl FnOnce(&std::path::Path),
    logged: bool,
) -> (
    tempfile::TempDir,
    switchyard_mock_upstream::MockUpstream,
    String,
    std::process::Child,
    tokio::runtime::Runtime,
) {
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
            "[server]\nlisten = \"{addr}\"\n[plugins]\ndir = \"plugins\"\n{}",
            config(mock.addr)
        ),
    )
    .expect("write");
    prepare(dir.path());
    let mut cmd = bin();
    cmd.args(["serve", "--config"]).arg(&cfg);
    if logged {
        let log = std::fs::File::create(dir.path().join("gateway.log")).expect("log");
        cmd.stdout(log.try_clone().expect("log")).stderr(log);
    }
    let child = cmd.spawn().expect("spawn");
    // Long enough for a first start that compiles Python and JavaScript components.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(180);
    while !http(&addr, "GET", "/readyz", "").is_ok_and(|r| r.starts_with("HTTP/1.1 200")) {
        assert!(
            std::time::Instant::now() < deadline,
            "gateway never became ready"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    (dir, mock, addr, child, rt)
}

/// Runs `switchyard ARGS --config DIR/sy.toml`; returns stdout, failing on a non-zero exit.
fn cli_ok(dir: &std::path::Path, args: &[&str]) -> String {
    let out = bin()
        .args(args)
        .arg("--config")
        .arg(dir.join("sy.toml"))
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The `x-request-id` of a raw response.
fn chat_ok_id(response: &str) -> String {
    response
        .lines()
        .find_map(|l| l.strip_prefix("x-request-id: "))
        .expect("x-request-id")
        .trim()
        .to_owned()
}

/// Polls `f` until it holds, at most `within`; returns how long it took.
fn within(within: std::time::Duration, mut f: impl FnMut() -> bool) -> std::time::Duration {
    let start = std::time::Instant::now();
    while !f() {
        assert!(start.elapsed() < within, "not within {within:?}");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    start.elapsed()
}

#[test]
fn keys_created_and_revoked_by_the_cli_apply_to_a_running_gateway_within_a_second() {
    let (dir, _mock, addr, child, _rt) = serve_process(|mock| {
        format!(
            "[deployments.echo]\nadapter = \"openai\"\nbase_url = \"http://{mock}/v1\"\nmodel = \"mock-echo\"\n\
             [models.demo]\ndeployments = [\"echo\"]\n[models.other]\ndeployments = [\"echo\"]\n\
             [teams.research]\nmodels = [\"demo\"]\nrpm = 100\n"
        )
    });
    let mut child = Reaped(child);
    let chat = |key: Option<&str>, model: &str| {
        let body =
            format!(r#"{{"model":"{model}","messages":[{{"role":"user","content":"hi"}}]}}"#);
        http_as(&addr, key, "POST", "/v1/chat/completions", &body).expect("http")
    };
    // No keys yet: loopback callers are anonymous.
    assert!(chat(None, "demo").starts_with("HTTP/1.1 200"));

    let created = cli_ok(
        dir.path(),
        &[
            "keys",
            "create",
            "alice",
            "--team",
            "research",
            "--rpm",
            "5",
            "--tags",
            "confidential,eu",
            "--json",
        ],
    );
    let v: serde_json::Value = serde_json::from_str(&created).expect("json");
    let secret = v["secret"].as_str().expect("secret").to_owned();
    assert!(secret.starts_with("sy-") && secret.len() == 67, "{secret}");
    assert_eq!(
        (v["name"].as_str(), v["team"].as_str()),
        (Some("alice"), Some("research"))
    );
    // Within a second the running gateway needs a key, and takes this one.
    let took = within(std::time::Duration::from_secs(1), || {
        chat(None, "demo").starts_with("HTTP/1.1 401")
    });
    eprintln!("key creation applied after {took:?}");
    let ok = chat(Some(&secret), "demo");
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    // The key's own rpm (5) is stricter than its team's (100).
    assert!(ok.contains("x-ratelimit-limit-requests: 5"), "{ok}");
    // Its team may use `demo` only.
    let denied = chat(Some(&secret), "other");
    assert!(
        denied.starts_with("HTTP/1.1 403") && denied.contains("model_not_allowed"),
        "{denied}"
    );

    // The list never shows a secret; the database holds only its hash.
    let listed = cli_ok(dir.path(), &["keys", "list", "--json"]);
    assert!(!listed.contains(&secret[3..]), "{listed}");
    let rows: serde_json::Value = serde_json::from_str(&listed).expect("json");
    assert_eq!(rows[0]["name"], "alice");
    assert_eq!(rows[0]["status"], "active");
    assert_eq!(rows[0]["tags"], serde_json::json!(["confidential", "eu"]));
    assert!(rows[0].get("secret").is_none());
    let table = cli_ok(dir.path(), &["keys", "list"]);
    assert!(
        table.contains("alice") && table.contains("research"),
        "{table}"
    );
    let db = std::fs::read(dir.path().join("switchyard.db")).unwrap_or_default();
    let wal = std::fs::read(dir.path().join("switchyard.db-wal")).unwrap_or_default();
    for bytes in [&db, &wal] {
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "the secret is stored in clear"
        );
    }

    cli_ok(dir.path(), &["keys", "revoke", "alice"]);
    let took = within(std::time::Duration::from_secs(1), || {
        chat(Some(&secret), "demo").starts_with("HTTP/1.1 401")
    });
    eprintln!("revocation applied after {took:?}");
    let listed: serde_json::Value =
        serde_json::from_str(&cli_ok(dir.path(), &["keys", "list", "--json"])).expect("json");
    assert_eq!(listed[0]["status"], "revoked");
    let out = bin()
        .args(["keys", "revoke", "alice", "--config"])
        .arg(dir.path().join("sy.toml"))
        .output()
        .expect("run");
    assert!(!out.status.success(), "revoking twice fails");

    // Both changes are in the audit table.
    let conn = rusqlite::Connection::open(dir.path().join("switchyard.db")).expect("db");
    let actions: Vec<String> = conn
        .prepare("SELECT action FROM audit ORDER BY id")
        .expect("prepare")
        .query_map([], |r| r.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    assert_eq!(actions, ["key.create", "key.revoke"]);

    // SIGTERM writes every pending ledger row before the process exits.
    let sent = chat(None, "demo");
    assert!(sent.starts_with("HTTP/1.1 401"), "{sent}");
    let (status, last_id) = (child.terminate(), chat_ok_id(&ok));
    assert!(status.success(), "{status:?}");
    let count = |sql: &str| -> i64 { conn.query_row(sql, [], |r| r.get(0)).expect("count") };
    assert_eq!(
        count(&format!(
            "SELECT COUNT(*) FROM requests WHERE request_id = '{last_id}'"
        )),
        1
    );
    assert_eq!(count("SELECT COUNT(*) FROM requests WHERE status = 401"), 0);
    assert_eq!(count("SELECT COUNT(*) FROM requests WHERE status = 403"), 1);

    // `switchyard usage` reads the ledger; its totals equal the rows, in every format.
    let (n, cost) = (
        count("SELECT COUNT(*) FROM requests"),
        count("SELECT COALESCE(SUM(cost_micros), 0) FROM requests"),
    );
    let json: serde_json::Value = serde_json::from_str(&cli_ok(
        dir.path(),
        &["usage", "--since", "1h", "--by", "key", "--format", "json"],
    ))
    .expect("json");
    assert_eq!(json["total"]["requests"].as_i64(), Some(n), "{json}");
    assert_eq!(json["total"]["cost_micros"].as_i64(), Some(cost));
    let by_key: i64 = json["groups"]
        .as_array()
        .map_or(0, |g| g.iter().filter_map(|x| x["requests"].as_i64()).sum());
    assert_eq!(by_key, n);
    let csv = cli_ok(
        dir.path(),
        &["usage", "--since", "1h", "--by", "day", "--format", "csv"],
    );
    let total = csv
        .lines()
        .find(|l| l.starts_with("TOTAL,"))
        .expect("TOTAL line");
    assert_eq!(
        total.split(',').nth(1),
        Some(n.to_string().as_str()),
        "{csv}"
    );
    let table = cli_ok(dir.path(), &["usage", "--since", "1h", "--by", "model"]);
    assert!(table.contains("TOTAL") && table.contains("demo"), "{table}");
}

#[test]
fn keys_create_refuses_unknown_teams_and_models_naming_the_flag() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("sy.toml");
    std::fs::write(&cfg, "[teams.t]\n").expect("write");
    for (args, want) in [
        (vec!["--team", "nope"], "--team: unknown team `nope`"),
        (vec!["--models", "gpt-9"], "--models: unknown model `gpt-9`"),
        (vec!["--expires", "soon"], "--expires"),
        (vec!["--budget=-1"], "--budget"),
        (vec!["--tags", "a b"], "--tags: `a b` is not a tag"),
    ] {
        let out = bin()
            .args(["keys", "create", "k"])
            .args(&args)
            .arg("--config")
            .arg(&cfg)
            .output()
            .expect("run");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.contains(want),
            "{args:?}: {err}"
        );
    }
    let out = bin()
        .args(["keys", "create", "bad name", "--config"])
        .arg(&cfg)
        .output()
        .expect("run");
    assert!(!out.status.success());
}

#[test]
fn sigterm_stops_accepting_but_lets_in_flight_streams_finish() {
    let (dir, mock, addr, mut child, _rt) = serve_process(|mock| {
        format!(
            "[deployments.slow]\nadapter = \"openai\"\nbase_url = \"http://{mock}/v1\"\nmodel = \"mock-ttft-1500ms\"\n\
             [models.demo]\ndeployments = [\"slow\"]\n"
        )
    });
    let _dir = dir;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
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
        err.contains("server.listen") && err.contains("[keys.NAME]"),
        "{err}"
    );
}

/// The repository root.
fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `switchyard plugin build DIR --out OUT` with the toolchains `scripts/test.sh` installs
/// (componentize-py in `target/pyenv`, jco in `sdk/js`); its stdout.
fn plugin_build(dir: &std::path::Path, out: &std::path::Path) -> String {
    let py = root().join("target/pyenv/bin/componentize-py");
    let jco = root().join("sdk/js/node_modules/.bin/jco");
    assert!(
        py.exists() && jco.exists(),
        "the plugin toolchains are missing: run `bash scripts/test.sh` (it installs them)"
    );
    let run = bin()
        .args(["plugin", "build"])
        .arg(dir)
        .arg("--out")
        .arg(out)
        .env("COMPONENTIZE_PY", py)
        .env("JCO", jco)
        .output()
        .expect("run");
    let stdout = String::from_utf8_lossy(&run.stdout).into_owned();
    assert!(
        run.status.success(),
        "plugin build {}: {stdout}{}",
        dir.display(),
        String::from_utf8_lossy(&run.stderr)
    );
    stdout
}

/// Plugins in Python and JavaScript, built by `switchyard plugin build` as an author
/// would, dropped into a gateway's folder and doing their work on real requests; their
/// `print` / `console.log` lines land in the gateway's log under their names.
#[test]
fn python_and_javascript_plugins_build_load_and_work_through_the_gateway() {
    let built = tempfile::tempdir().expect("tempdir");
    for (dir, kind) in [
        ("plugins/python/tiered-router", "router plugin"),
        ("plugins/python/secrets-filter", "filter plugin"),
        ("plugins/js/sticky-router", "router plugin"),
        ("plugins/js/tool-policy", "filter plugin"),
    ] {
        let out = plugin_build(&root().join(dir), built.path());
        assert!(
            out.contains(kind) && out.contains("WIT 0.1.0") && out.contains("loads in this host"),
            "{out}"
        );
    }
    let secrets = tempfile::tempdir().expect("tempdir");
    let key = |name: &str, secret: &str, extra: &str| {
        let path = secrets.path().join(name);
        std::fs::write(&path, secret).expect("write");
        format!(
            "[keys.{name}]\nsecret = \"file:{}\"\n{extra}\n",
            path.display()
        )
    };
    let (alice, bob) = (
        "sy-alice-000000000000000000000000",
        "sy-bob-00000000000000000000000000",
    );
    let keys = format!(
        "{}{}[teams.research]\n",
        key("alice", alice, "team = \"research\""),
        key("bob", bob, "")
    );
    let built_dir = built.path().to_owned();
    let (dir, mock, addr, child, _rt) = serve_process_with(
        |mock| {
            let dep = |name: &str, tags: &str, price: f64| {
                format!(
                    "[deployments.{name}]\nadapter = \"openai\"\nbase_url = \"http://{mock}/v1\"\n\
                     model = \"model-{name}\"\ntags = [{tags}]\ninput_price = {price}\noutput_price = {price}\n"
                )
            };
            format!(
                "{keys}{}{}{}\
                 [models.tiered]\ndeployments = [\"large\", \"small\"]\nrouter = \"tiered-router\"\nfilters = [\"secrets-filter\"]\n\
                 [models.sticky]\ndeployments = [\"a\", \"b\", \"c\"]\nrouter = \"sticky-router\"\nfilters = [\"tool-policy\"]\n\
                 [plugins.tiered-router]\ninstances = \"warm\"\nconfig = {{ small_max_tokens = 100 }}\n\
                 [plugins.secrets-filter]\ninstances = \"warm\"\nmax_uses = 2\n\
                 [plugins.tool-policy]\nconfig = {{ teams = {{ research = [\"search\", \"calculator\"] }}, default = [\"calculator\"] }}\n",
                dep("small", "\"small\"", 0.1),
                dep("large", "\"large\"", 5.0),
                ["a", "b", "c"]
                    .iter()
                    .map(|n| dep(n, "", 1.0))
                    .collect::<String>()
            )
        },
        |dir| {
            for entry in std::fs::read_dir(&built_dir).expect("built") {
                let path = entry.expect("entry").path();
                if path.extension().is_some_and(|e| e == "wasm") {
                    let name = path.file_name().expect("name");
                    std::fs::copy(&path, dir.join("plugins").join(name)).expect("copy");
                }
            }
        },
        true,
    );
    let mut child = Reaped(child);
    let chat = |key: &str, model: &str, text: &str, tools: &str| {
        let body = format!(
            r#"{{"model":"{model}","messages":[{{"role":"user","content":"{text}"}}]{tools}}}"#
        );
        http_as(&addr, Some(key), "POST", "/v1/chat/completions", &body).expect("http")
    };
    let deployment = |r: &str| {
        r.lines()
            .find_map(|l| l.strip_prefix("x-switchyard-deployment: "))
            .unwrap_or("")
            .trim()
            .to_owned()
    };

    // Python router: a short prompt to the small tier, a long one to the large.
    let short = chat(alice, "tiered", "hi", "");
    assert!(short.starts_with("HTTP/1.1 200"), "{short}");
    assert_eq!(deployment(&short), "small");
    let long = chat(alice, "tiered", &"word ".repeat(200), "");
    assert_eq!(deployment(&long), "large", "{long}");
    // Python filter: the key never reaches the upstream.
    mock.clear();
    let leaked = chat(
        alice,
        "tiered",
        "my key is sk-proj-abcdefghijklmnopqrstuvwx1234",
        "",
    );
    assert!(leaked.starts_with("HTTP/1.1 200"), "{leaked}");
    let sent = String::from_utf8_lossy(&mock.requests()[0].body).into_owned();
    assert!(
        sent.contains("[REDACTED:SECRET]") && !sent.contains("abcdefghijklmnop"),
        "{sent}"
    );

    // JavaScript router: one caller sticks to one deployment.
    let first = deployment(&chat(alice, "sticky", "hi", ""));
    for _ in 0..10 {
        assert_eq!(deployment(&chat(alice, "sticky", "hi", "")), first);
    }
    // JavaScript filter: tools by team.
    let tool = |name: &str| {
        format!(
            r#","tools":[{{"type":"function","function":{{"name":"{name}","parameters":{{"type":"object"}}}}}}]"#
        )
    };
    let denied = chat(bob, "sticky", "look it up", &tool("search"));
    assert!(
        denied.starts_with("HTTP/1.1 403") && denied.contains("tool_not_allowed"),
        "{denied}"
    );
    let allowed = chat(alice, "sticky", "look it up", &tool("search"));
    assert!(allowed.starts_with("HTTP/1.1 200"), "{allowed}");

    child.terminate();
    let log = std::fs::read_to_string(dir.path().join("gateway.log")).expect("log");
    for plugin in [
        "tiered-router",
        "secrets-filter",
        "sticky-router",
        "tool-policy",
    ] {
        assert!(
            log.lines()
                .any(|l| l.contains(&format!("plugin={plugin}")) && l.contains("stdout")),
            "no print/console.log line from {plugin} in the log:\n{log}"
        );
    }
    // Warm mode (max_uses = 2): each request's print reached the log when that request
    // ended, not only when its instance was dropped. (Reuse itself is proven by
    // e2e::sandbox::warm_mode_* and e2e::pipeline::warm_mode_*.)
    let printed = log
        .lines()
        .filter(|l| l.contains("plugin=secrets-filter") && l.contains(": request req_"))
        .count();
    assert_eq!(printed, 3, "one line per request through `tiered`:\n{log}");
}

/// Runs `cmd` in `dir`, failing with its output unless it succeeds.
fn run_ok(dir: &std::path::Path, cmd: &mut Command) -> String {
    let out = cmd.current_dir(dir).output().expect("run");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{cmd:?} in {}: {text}", dir.display());
    text
}

/// `plugin new` writes, for each language and kind, a project whose own tests pass and
/// which `plugin build` turns into a component this host loads; the three adapters then
/// serve chat through the gateway, streamed and not.
#[test]
fn plugin_new_writes_projects_whose_tests_pass_and_that_build_in_every_language() {
    let work = tempfile::tempdir().expect("tempdir");
    let out = work.path().join("plugins");
    let target = work.path().join("target");
    for lang in ["rust", "python", "js"] {
        for kind in ["router", "filter", "adapter"] {
            let name = format!("my-{lang}-{kind}");
            let made = bin()
                .args([
                    "plugin", "new", &name, "--lang", lang, "--kind", kind, "--dir",
                ])
                .arg(work.path())
                .arg("--sdk")
                .arg(root().join("sdk"))
                .output()
                .expect("run");
            assert!(
                made.status.success(),
                "{}",
                String::from_utf8_lossy(&made.stderr)
            );
            let dir = work.path().join(&name);
            let tests = match lang {
                "rust" => run_ok(
                    &dir,
                    Command::new("cargo")
                        .args(["test", "--quiet"])
                        .env("CARGO_TARGET_DIR", &target),
                ),
                "python" => {
                    run_ok(
                        &dir,
                        Command::new(root().join("target/pyenv/bin/componentize-py")).args([
                            "-d",
                            "wit",
                            "-w",
                            &format!("{kind}-plugin"),
                            "bindings",
                            ".bindings",
                        ]),
                    );
                    run_ok(
                        &dir,
                        Command::new("python3")
                            .args(["-m", "unittest"])
                            .env("PYTHONPATH", ".bindings"),
                    )
                }
                _ => run_ok(&dir, Command::new("npm").arg("test")),
            };
            let n = if kind == "adapter" { 3 } else { 2 };
            assert!(
                tests.contains(&format!("{n} passed"))
                    || tests.contains(&format!("Ran {n} tests"))
                    || tests.contains(&format!("# pass {n}")),
                "{lang} {kind}: {tests}"
            );
            let mut build = bin();
            build
                .args(["plugin", "build"])
                .arg(&dir)
                .arg("--out")
                .arg(&out)
                .env("CARGO_TARGET_DIR", &target)
                .env(
                    "COMPONENTIZE_PY",
                    root().join("target/pyenv/bin/componentize-py"),
                )
                .env("JCO", root().join("sdk/js/node_modules/.bin/jco"));
            let built = run_ok(&dir, &mut build);
            assert!(
                built.contains(&format!("{kind} plugin")) && built.contains("loads in this host"),
                "{built}"
            );
        }
    }
    // The scaffolded adapters, dropped into a gateway in front of the mock upstream.
    let langs = ["rust", "python", "js"];
    let (_dir, _mock, addr, child, _rt) = serve_process_with(
        |mock| {
            langs
                .iter()
                .map(|l| {
                    format!(
                        "[deployments.{l}]\nadapter = \"my-{l}-adapter\"\nbase_url = \"http://{mock}/v1\"\nmodel = \"mock-echo\"\n\
                         [models.{l}]\ndeployments = [\"{l}\"]\n"
                    )
                })
                .collect()
        },
        |dir| {
            for l in langs {
                let file = format!("my-{l}-adapter.wasm");
                std::fs::copy(out.join(&file), dir.join("plugins").join(&file)).expect("copy");
            }
        },
        false,
    );
    let mut child = Reaped(child);
    for l in langs {
        let body =
            format!(r#"{{"model":"{l}","messages":[{{"role":"user","content":"hi {l}"}}]}}"#);
        let r = http_as(&addr, None, "POST", "/v1/chat/completions", &body).expect("http");
        assert!(
            r.starts_with("HTTP/1.1 200") && r.contains(&format!("echo: hi {l}")),
            "{l}: {r}"
        );
        let body = format!(
            r#"{{"model":"{l}","stream":true,"messages":[{{"role":"user","content":"hi {l}"}}]}}"#
        );
        let r = http_as(&addr, None, "POST", "/v1/chat/completions", &body).expect("http");
        assert!(
            r.starts_with("HTTP/1.1 200") && r.contains("data: [DONE]") && r.contains("echo"),
            "{l} stream: {r}"
        );
    }
    child.terminate();
    let refused = bin()
        .args([
            "plugin", "new", "x", "--lang", "cobol", "--kind", "router", "--dir",
        ])
        .arg(work.path())
        .output()
        .expect("run");
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--lang"));
}
