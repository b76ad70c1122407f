//! Loading plugins of each kind, and rejecting files that are not plugins.

use switchyard::plugins::inspect::InspectError;
use switchyard::plugins::loader::PluginPolicy;
use switchyard::plugins::{LoadError, Loader, PluginKind, PluginName};
use switchyard::sandbox::{Sandbox, SandboxSettings};
use switchyard_tests::{fixture, plugin, request};

fn loader() -> Loader {
    let sandbox = Sandbox::new(SandboxSettings {
        max_instances: 64,
        ..Default::default()
    })
    .expect("sandbox");
    Loader::new(sandbox, None, PluginPolicy::default())
}

fn name(s: &str) -> PluginName {
    PluginName::parse(s).expect("valid name")
}

#[test]
fn adapter_router_and_filter_load_with_kind_and_version_from_exports() {
    let l = loader();
    for (path, file, kind) in [
        (fixture("fx-echo"), "fx-echo", PluginKind::Adapter),
        (plugin("balanced"), "balanced", PluginKind::Router),
        (fixture("fx-hostile"), "fx-hostile", PluginKind::Filter),
    ] {
        let bytes = std::fs::read(path).expect("read");
        let p = l.load(name(file), &bytes).expect(file);
        assert_eq!(p.kind, kind, "{file}");
        assert_eq!(p.wit_version, "0.1.0");
        assert_eq!(p.sha256.len(), 64);
    }
}

#[test]
fn adapter_call_returns_the_plugins_answer() {
    let l = loader();
    let p = l
        .load(
            name("echo"),
            &std::fs::read(fixture("fx-echo")).expect("read"),
        )
        .expect("load");
    let mut inst = p.adapter().expect("instance");
    let dep = switchyard::sandbox::adapter_api::Deployment {
        name: "d".into(),
        base_url: "http://127.0.0.1:1".into(),
        model_id: "m-1".into(),
        settings: "{}".into(),
    };
    let up = inst
        .build_request(&dep, &request("hello"))
        .expect("no fault")
        .expect("ok");
    assert_eq!(up.path, "/echo/m-1");
    assert_eq!(up.body, b"hello");
    assert!(p.router().is_err(), "an adapter is not a router");
}

fn rejection(bytes: &[u8]) -> LoadError {
    loader()
        .load(name("bad"), bytes)
        .expect_err("must be rejected")
}

#[test]
fn truncated_file_is_rejected_with_a_reason() {
    let good = std::fs::read(fixture("fx-echo")).expect("read");
    for cut in [9, good.len() / 3, good.len() - 1] {
        let e = rejection(&good[..cut]);
        assert!(
            matches!(e, LoadError::Inspect(InspectError::Malformed(_))),
            "cut at {cut}: {e}"
        );
        assert!(e.to_string().contains("truncated"), "{e}");
    }
    assert!(matches!(
        rejection(b""),
        LoadError::Inspect(InspectError::NotWasm)
    ));
}

#[test]
fn core_module_is_rejected_as_not_a_component() {
    let module = [0, b'a', b's', b'm', 1, 0, 0, 0];
    let e = rejection(&module);
    assert!(
        matches!(e, LoadError::Inspect(InspectError::CoreModule)),
        "{e}"
    );
    assert!(e.to_string().contains("core WebAssembly module"), "{e}");
}

#[test]
fn component_exporting_another_world_is_rejected() {
    let e = rejection(&std::fs::read(fixture("fx-wrong-world")).expect("read"));
    assert!(
        matches!(e, LoadError::Inspect(InspectError::WrongWorld { .. })),
        "{e}"
    );
    assert!(e.to_string().contains("example:other/greeter@1.0.0"), "{e}");
}

#[test]
fn unsupported_wit_version_is_rejected() {
    let e = rejection(&std::fs::read(fixture("fx-future-version")).expect("read"));
    assert!(
        matches!(
            e,
            LoadError::Inspect(InspectError::UnsupportedVersion { .. })
        ),
        "{e}"
    );
    assert!(
        e.to_string().contains("@9.0.0") && e.to_string().contains("0.1.0"),
        "{e}"
    );
}

#[test]
fn invalid_file_names_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("Bad_Name.wasm");
    std::fs::copy(fixture("fx-echo"), &path).expect("copy");
    let e = loader().load_file(&path).expect_err("bad name");
    assert!(matches!(e, LoadError::BadName(_)), "{e}");
}

#[test]
fn bundled_plugins_load_as_their_kinds_and_answer() {
    use switchyard::canonical::Caller;
    use switchyard::sandbox::router_api::{Candidate, CircuitState, DeploymentStats, RouteRequest};
    use switchyard_tests::plugin;
    let l = loader();
    let load = |n: &str| {
        l.load(name(n), &std::fs::read(plugin(n)).expect("read"))
            .expect(n)
    };
    let (openai, balanced, pii) = (load("openai"), load("balanced"), load("pii-redact"));
    assert_eq!(
        (openai.kind, balanced.kind, pii.kind),
        (PluginKind::Adapter, PluginKind::Router, PluginKind::Filter)
    );

    let dep = switchyard::sandbox::adapter_api::Deployment {
        name: "d".into(),
        base_url: "https://api.openai.com/v1".into(),
        model_id: "gpt-4o-mini".into(),
        settings: "{}".into(),
    };
    let up = openai
        .adapter()
        .expect("instance")
        .build_request(&dep, &request("hi"))
        .expect("no fault")
        .expect("ok");
    let body: serde_json::Value = serde_json::from_slice(&up.body).expect("json body");
    assert_eq!(body["model"], "gpt-4o-mini");
    assert_eq!(body["temperature"], 0.2, "sampling values arrive exactly");

    let stats = |latency: f64| DeploymentStats {
        latency_ewma_ms: latency,
        ttft_ewma_ms: 0.0,
        error_rate: 0.0,
        in_flight: 0,
        circuit: CircuitState::Closed,
        requests: 100,
        rate_limit_headroom: None,
    };
    let cand = |n: &str, latency: f64| Candidate {
        name: n.into(),
        adapter: "openai".into(),
        tags: vec![],
        input_price_per_mtok: 1.0,
        output_price_per_mtok: 1.0,
        weight: 1,
        stats: stats(latency),
    };
    let rr = RouteRequest {
        model: "demo".into(),
        estimated_prompt_tokens: 10,
        max_tokens: None,
        stream: false,
        has_tools: false,
        caller: Caller {
            key_id: None,
            team: None,
            tags: vec![],
        },
        request_seed: 7,
    };
    let decision = balanced
        .router()
        .expect("instance")
        .route(&rr, &[cand("slow", 900.0), cand("fast", 50.0)]);
    assert_eq!(
        decision.expect("no fault").expect("ok").order,
        vec![1, 0],
        "the faster deployment first"
    );

    let ctx = switchyard::sandbox::filter_api::RequestContext {
        request_id: "r".into(),
        caller: Caller {
            key_id: None,
            team: None,
            tags: vec![],
        },
        model: "demo".into(),
    };
    let outcome = pii
        .filter()
        .expect("instance")
        .on_request(&ctx, &request("card 4111 1111 1111 1111"))
        .expect("no fault")
        .expect("ok");
    match outcome.verdict {
        switchyard::sandbox::filter_api::RequestVerdict::Rewrite(r) => {
            let t = match &r.messages[0].content[0] {
                switchyard::canonical::ContentPart::Text(t) => t.clone(),
                _ => String::new(),
            };
            assert_eq!(t, "card [REDACTED:CARD]");
        }
        _ => panic!("expected a rewrite"),
    }
}

/// `bytes` with every `@0.1.0` rewritten to `to` (same length, so a component stays
/// valid), and how many there were.
fn with_wit_version(bytes: &[u8], to: &[u8; 6]) -> (Vec<u8>, usize) {
    let mut out = bytes.to_vec();
    let at: Vec<usize> = out
        .windows(6)
        .enumerate()
        .filter(|(_, w)| *w == b"@0.1.0")
        .map(|(i, _)| i)
        .collect();
    for &i in &at {
        out[i..i + 6].copy_from_slice(to);
    }
    (out, at.len())
}

/// A plugin built against a semver-compatible WIT release (`0.1.1`, standing in for a
/// patch that adds host imports marked `@since`) loads as `0.1.0` and is called as one;
/// another minor of 0.x is another contract and is refused.
#[test]
fn a_semver_compatible_patch_version_loads_and_serves() {
    let bytes = std::fs::read(fixture("fx-echo")).expect("read");
    let (patched, n) = with_wit_version(&bytes, b"@0.1.1");
    assert!(n > 0, "the fixture names its WIT version");
    let l = loader();
    let p = l
        .load(name("echo"), &patched)
        .expect("a 0.1.1 plugin loads");
    assert_eq!(
        (p.kind, p.wit_version.as_str()),
        (PluginKind::Adapter, "0.1.1")
    );
    let dep = switchyard::sandbox::adapter_api::Deployment {
        name: "d".into(),
        base_url: "http://127.0.0.1:1".into(),
        model_id: "m-1".into(),
        settings: "{}".into(),
    };
    let up = p
        .adapter()
        .expect("instance")
        .build_request(&dep, &request("hello"))
        .expect("no fault")
        .expect("ok");
    assert_eq!(up.body, b"hello");
    let (minor, _) = with_wit_version(&bytes, b"@0.2.0");
    assert!(l.load(name("echo"), &minor).is_err(), "0.2.0 is refused");
}
