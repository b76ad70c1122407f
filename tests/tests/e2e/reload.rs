//! Hot reload through the plugins folder: pick-up, swap under load, in-flight calls on
//! the old version, deletion, and broken files that leave the last good version serving.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use switchyard::sandbox::adapter_api::Deployment;
use switchyard_tests::{
    TestGateway, bundled_gateway, fixture, mock_upstream, openai_deployment, post_json, request,
    terse_chat,
};

const WAIT: Duration = Duration::from_secs(10);

fn deployment() -> Deployment {
    Deployment {
        name: "d".into(),
        base_url: "http://127.0.0.1:1".into(),
        model_id: "m".into(),
        settings: "{}".into(),
    }
}

/// Calls the `echo` plugin from the current snapshot; returns its version header.
fn echo_version(gw: &TestGateway) -> anyhow::Result<String> {
    let snap = gw.snapshot();
    let p = snap
        .get("echo")
        .ok_or_else(|| anyhow::anyhow!("echo not loaded"))?;
    let mut inst = p.adapter()?;
    let up = inst
        .build_request(&deployment(), &request("hi"))?
        .map_err(|e| anyhow::anyhow!(e.message))?;
    let h = up
        .headers
        .iter()
        .find(|h| h.name == "x-fixture-version")
        .ok_or_else(|| anyhow::anyhow!("no header"))?;
    Ok(String::from_utf8(h.value.clone())?)
}

fn sha(path: &std::path::Path) -> String {
    switchyard::plugins::inspect::sha256_hex(&std::fs::read(path).expect("read"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_plugin_is_picked_up_without_restart_and_deleting_it_unloads_it() -> anyhow::Result<()>
{
    let gw = TestGateway::start(&[], "").await?;
    assert!(gw.snapshot().get("echo").is_none());
    gw.install("echo.wasm", &fixture("fx-echo"))?;
    gw.wait_until(WAIT, |g| g.snapshot().get("echo").is_some())
        .await?;
    assert_eq!(echo_version(&gw)?, "1");

    std::fs::remove_file(gw.plugins_dir().join("echo.wasm"))?;
    gw.wait_until(WAIT, |g| g.snapshot().get("echo").is_none())
        .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaced_file_serves_new_requests_while_in_flight_ones_finish_on_the_old()
-> anyhow::Result<()> {
    let gw = TestGateway::start(&[("echo.wasm", fixture("fx-echo"))], "").await?;
    // A request in flight: it took its snapshot and instance before the swap.
    let old_snapshot = gw.snapshot();
    let mut in_flight = old_snapshot.get("echo").expect("loaded").adapter()?;

    gw.install("echo.wasm", &fixture("fx-echo-v2"))?;
    let v2 = sha(&fixture("fx-echo-v2"));
    gw.wait_until(WAIT, |g| {
        g.snapshot().get("echo").is_some_and(|p| p.sha256 == v2)
    })
    .await?;

    assert_eq!(echo_version(&gw)?, "2", "new requests see the new version");
    let up = in_flight
        .build_request(&deployment(), &request("hi"))?
        .map_err(|e| anyhow::anyhow!(e.message))?;
    let version = up
        .headers
        .iter()
        .find(|h| h.name == "x-fixture-version")
        .map(|h| h.value.clone());
    assert_eq!(
        version.as_deref(),
        Some(&b"1"[..]),
        "the in-flight request finishes on the old version"
    );
    // And a second call of the same in-flight request still does.
    let up = in_flight
        .build_request(&deployment(), &request("again"))?
        .map_err(|e| anyhow::anyhow!(e.message))?;
    assert_eq!(up.body, b"again");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hot_swap_under_a_concurrent_call_loop_has_zero_errors() -> anyhow::Result<()> {
    let gw = Arc::new(TestGateway::start(&[("echo.wasm", fixture("fx-echo"))], "").await?);
    let stop = Arc::new(AtomicBool::new(false));
    let (calls, errors, v1, v2) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
    );
    let mut workers = Vec::new();
    for _ in 0..4 {
        let (gw, stop, calls, errors, v1, v2) = (
            gw.clone(),
            stop.clone(),
            calls.clone(),
            errors.clone(),
            v1.clone(),
            v2.clone(),
        );
        workers.push(tokio::task::spawn_blocking(move || {
            while !stop.load(Ordering::Relaxed) {
                calls.fetch_add(1, Ordering::Relaxed);
                match echo_version(&gw).as_deref() {
                    Ok("1") => v1.fetch_add(1, Ordering::Relaxed),
                    Ok("2") => v2.fetch_add(1, Ordering::Relaxed),
                    _ => errors.fetch_add(1, Ordering::Relaxed),
                };
            }
        }));
    }
    let (s1, s2) = (sha(&fixture("fx-echo")), sha(&fixture("fx-echo-v2")));
    for _round in 0..3 {
        for (src, want) in [(fixture("fx-echo-v2"), &s2), (fixture("fx-echo"), &s1)] {
            gw.install("echo.wasm", &src)?;
            gw.wait_until(WAIT, |g| {
                g.snapshot().get("echo").is_some_and(|p| &p.sha256 == want)
            })
            .await?;
            // Let the workers run on this version for a moment.
            let seen = calls.load(Ordering::Relaxed);
            while calls.load(Ordering::Relaxed) < seen + 50 {
                tokio::task::yield_now().await;
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await?;
    }
    let (calls, errors, v1, v2) = (
        calls.load(Ordering::Relaxed),
        errors.load(Ordering::Relaxed),
        v1.load(Ordering::Relaxed),
        v2.load(Ordering::Relaxed),
    );
    assert_eq!(errors, 0, "{errors} errors in {calls} calls");
    assert!(v1 > 0 && v2 > 0, "both versions served: v1={v1} v2={v2}");
    Ok(())
}

/// Drops a broken file over the working `echo.wasm` and checks that it is reported and
/// that the good version keeps serving.
async fn broken_file_keeps_last_good_version(bytes: &[u8], reason: &str) -> anyhow::Result<()> {
    let gw = TestGateway::start(&[("echo.wasm", fixture("fx-echo"))], "").await?;
    let good = sha(&fixture("fx-echo"));
    gw.install_bytes("echo.wasm", bytes)?;
    gw.wait_until(WAIT, |g| {
        g.gw.registry
            .rejected_sha256(&switchyard::plugins::PluginName::parse("echo").expect("name"))
            .is_some()
    })
    .await?;
    let entry = gw.admin_entry("echo").await?;
    assert_eq!(entry["status"], "active", "{entry}");
    assert_eq!(entry["sha256"], good.as_str(), "{entry}");
    let error = entry["error"].as_str().unwrap_or_default();
    assert!(error.contains(reason), "expected {reason:?} in {error:?}");
    assert_eq!(
        echo_version(&gw)?,
        "1",
        "the last good version keeps serving"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_replacement_keeps_last_good_version() -> anyhow::Result<()> {
    let good = std::fs::read(fixture("fx-echo-v2"))?;
    broken_file_keeps_last_good_version(&good[..good.len() / 2], "truncated").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn core_module_replacement_keeps_last_good_version() -> anyhow::Result<()> {
    broken_file_keeps_last_good_version(
        &[0, b'a', b's', b'm', 1, 0, 0, 0],
        "core WebAssembly module",
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_world_replacement_keeps_last_good_version() -> anyhow::Result<()> {
    broken_file_keeps_last_good_version(
        &std::fs::read(fixture("fx-wrong-world"))?,
        "no Switchyard plugin interface",
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsupported_version_replacement_keeps_last_good_version() -> anyhow::Result<()> {
    broken_file_keeps_last_good_version(
        &std::fs::read(fixture("fx-future-version"))?,
        "supports WIT version",
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kind_change_is_a_new_plugin_not_a_broken_one() -> anyhow::Result<()> {
    // Replacing an adapter with a filter of the same name is allowed: the name now
    // refers to a filter.
    let gw = TestGateway::start(&[("echo.wasm", fixture("fx-echo"))], "").await?;
    gw.install("echo.wasm", &fixture("fx-hostile"))?;
    gw.wait_until(WAIT, |g| {
        g.snapshot()
            .get("echo")
            .is_some_and(|p| p.kind == switchyard::plugins::PluginKind::Filter)
    })
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_written_in_place_slowly_is_loaded_once_complete() -> anyhow::Result<()> {
    // A writer that does not use rename: the file is half there for a while. It may be
    // rejected meanwhile, the old version must keep serving, and the complete file must
    // win in the end.
    use std::io::Write;
    let gw = TestGateway::start(&[("echo.wasm", fixture("fx-echo"))], "").await?;
    let v2 = std::fs::read(fixture("fx-echo-v2"))?;
    let v2_sha = sha(&fixture("fx-echo-v2"));
    let mut f = std::fs::File::create(gw.plugins_dir().join("echo.wasm"))?;
    let chunks: Vec<&[u8]> = v2.chunks(v2.len() / 4 + 1).collect();
    let (last, partial) = chunks.split_last().expect("chunks");
    let name = switchyard::plugins::PluginName::parse("echo").expect("name");
    let mut written = Vec::new();
    for chunk in partial {
        f.write_all(chunk)?;
        f.flush()?;
        written.extend_from_slice(chunk);
        // The incomplete file really is tried, and rejected.
        let partial_sha = switchyard::plugins::inspect::sha256_hex(&written);
        gw.wait_until(WAIT, |g| {
            g.gw.registry.rejected_sha256(&name).as_deref() == Some(partial_sha.as_str())
        })
        .await?;
        assert_eq!(
            echo_version(&gw)?,
            "1",
            "old version serves while the file is incomplete"
        );
    }
    f.write_all(last)?;
    drop(f);
    gw.wait_until(WAIT, |g| {
        g.snapshot().get("echo").is_some_and(|p| p.sha256 == v2_sha)
    })
    .await?;
    assert_eq!(echo_version(&gw)?, "2");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_edits_apply_without_restart_and_invalid_ones_keep_the_old_config()
-> anyhow::Result<()> {
    let m = mock_upstream().await?;
    let base = format!("http://{}/v1", m.addr);
    let one = format!(
        "{}[models.demo]\ndeployments = [\"primary\"]\n",
        openai_deployment("primary", &base, "mock-echo", "")
    );
    let gw = bundled_gateway(&one).await?;
    let config = gw.dir.path().join("switchyard.toml");
    let original = std::fs::read_to_string(&config)?;
    let generation = || gw.gw.state.live.load().generation;
    let g0 = generation();
    let mut events = gw.gw.state.config_events();

    // A valid edit: a second model appears.
    std::fs::write(
        &config,
        format!("{original}[models.second]\ndeployments = [\"primary\"]\n"),
    )?;
    tokio::time::timeout(Duration::from_secs(10), events.changed()).await??;
    assert_eq!(generation(), g0 + 1, "the edit was applied");
    let (s, _, _) = post_json(
        gw.gw.addr,
        "/v1/chat/completions",
        &terse_chat("second", "x"),
    )
    .await?;
    assert_eq!(s, 200);

    // An invalid edit: rejected with a message naming the key; the old config serves.
    std::fs::write(
        &config,
        format!("{original}[models.second]\ndeployments = [\"missing\"]\n"),
    )?;
    tokio::time::timeout(Duration::from_secs(10), events.changed()).await??;
    let (_, _, b) = switchyard_tests::get(gw.gw.addr, "/admin/config").await?;
    let v: serde_json::Value = serde_json::from_slice(&b)?;
    assert_eq!(
        v["last_error"],
        "models.second.deployments: unknown deployment \"missing\""
    );
    let (s, _, _) = post_json(
        gw.gw.addr,
        "/v1/chat/completions",
        &terse_chat("second", "x"),
    )
    .await?;
    assert_eq!(s, 200, "the previous config keeps serving");
    assert_eq!(generation(), g0 + 1);
    Ok(())
}
