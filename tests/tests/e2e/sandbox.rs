//! The sandbox: deadlines, memory caps, traps, and capabilities that are not there.

use std::time::{Duration, Instant};

use switchyard::canonical::Caller;
use switchyard::plugins::loader::{PluginPolicy, PluginSettings};
use switchyard::plugins::{LoadedPlugin, Loader, PluginName};
use switchyard::sandbox::filter_api::{RequestContext, RequestVerdict};
use switchyard::sandbox::{Fault, FilterInstance, Limits, Sandbox, SandboxSettings, Warm};
use switchyard_tests::{fixture, request};

fn hostile(limits: Limits) -> LoadedPlugin {
    hostile_with(limits, None)
}

fn hostile_with(limits: Limits, warm: Option<Warm>) -> LoadedPlugin {
    let sandbox = Sandbox::new(SandboxSettings {
        max_instances: 32,
        ..Default::default()
    })
    .expect("sandbox");
    let mut policy = PluginPolicy {
        defaults: limits,
        ..Default::default()
    };
    policy.per_plugin.insert(
        "hostile".into(),
        PluginSettings {
            limits: None,
            config_json: Some(r#"{"greeting":"hi"}"#.into()),
            warm,
        },
    );
    let loader = Loader::new(sandbox, None, policy);
    let bytes = std::fs::read(fixture("fx-hostile")).expect("read");
    loader
        .load(PluginName::parse("hostile").expect("name"), &bytes)
        .expect("load")
}

fn ctx() -> RequestContext {
    RequestContext {
        request_id: "req_test".into(),
        caller: Caller {
            key_id: None,
            team: None,
            tags: vec![],
        },
        model: "demo".into(),
    }
}

/// Runs a command; returns the fault, or the message the fixture observed.
fn run(inst: &mut FilterInstance, cmd: &str) -> Result<String, Fault> {
    let outcome = inst
        .on_request(&ctx(), &request(cmd))?
        .expect("plugin-level ok");
    Ok(match outcome.verdict {
        RequestVerdict::Allow => "allow".into(),
        RequestVerdict::Deny(d) => d.message,
        RequestVerdict::Rewrite(_) => "rewrite".into(),
    })
}

fn limits(timeout_ms: u64, memory_mib: usize) -> Limits {
    Limits {
        call_timeout: Duration::from_millis(timeout_ms),
        memory_bytes: memory_mib << 20,
        ..Limits::default()
    }
}

#[test]
fn infinite_loop_is_stopped_at_its_deadline_and_the_next_call_works() {
    let p = hostile(limits(50, 64));
    let mut inst = p.filter().expect("instance");
    let t = Instant::now();
    let fault = run(&mut inst, "loop").expect_err("must be stopped");
    let took = t.elapsed();
    assert!(
        matches!(fault, Fault::Deadline { timeout_ms: 50, .. }),
        "{fault:?}"
    );
    assert!(
        took >= Duration::from_millis(45) && took < Duration::from_millis(1000),
        "stopped after {took:?}"
    );
    // A fresh instance serves the next request.
    assert_eq!(
        run(&mut p.filter().expect("instance"), "ok").expect("works"),
        "allow"
    );
}

#[test]
fn memory_bomb_is_stopped_at_its_cap() {
    let p = hostile(limits(2000, 16));
    let fault = run(&mut p.filter().expect("instance"), "oom").expect_err("must be stopped");
    assert!(
        matches!(fault, Fault::MemoryLimit { limit_bytes, .. } if limit_bytes == 16 << 20),
        "{fault:?}"
    );
    assert_eq!(
        run(&mut p.filter().expect("instance"), "ok").expect("works"),
        "allow"
    );
}

#[test]
fn trapped_instance_is_never_entered_again() {
    let p = hostile(Limits::default());
    let mut inst = p.filter().expect("instance");
    let fault = run(&mut inst, "trap").expect_err("trap");
    assert!(matches!(fault, Fault::Trap { .. }), "{fault:?}");
    let again = run(&mut inst, "ok").expect_err("poisoned");
    assert!(matches!(again, Fault::Poisoned { .. }), "{again:?}");
    let timed_out = {
        let mut i = p.filter().expect("instance");
        let _ = run(&mut i, "loop");
        run(&mut i, "ok")
    };
    assert!(
        matches!(timed_out, Err(Fault::Poisoned { .. })),
        "{timed_out:?}"
    );
}

#[test]
fn plugin_cannot_read_files() {
    let p = hostile(Limits::default());
    let seen = run(&mut p.filter().expect("instance"), "fs").expect("no fault");
    assert!(seen.contains("read=Err"), "{seen}");
    assert!(seen.contains("list=Err"), "{seen}");
    assert!(seen.contains("cwd=Err"), "{seen}");
}

#[test]
fn plugin_sees_no_environment() {
    // SAFETY-free: the test sets nothing; the host process certainly has PATH and HOME.
    assert!(std::env::var("PATH").is_ok());
    let p = hostile(Limits::default());
    let seen = run(&mut p.filter().expect("instance"), "env").expect("no fault");
    assert_eq!(seen, "vars=0 home=None path=None");
}

#[test]
fn plugin_cannot_open_sockets_or_resolve_names() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    listener.set_nonblocking(true).expect("nonblocking");
    let p = hostile(Limits::default());
    let seen = run(
        &mut p.filter().expect("instance"),
        &format!("socket:{addr}"),
    )
    .expect("no fault");
    assert!(seen.contains("tcp=Err"), "{seen}");
    assert!(seen.contains("lookup=Err"), "{seen}");
    assert!(
        listener.accept().is_err(),
        "no connection may reach the listener"
    );
}

#[test]
fn plugin_gets_its_own_config_and_chatty_output_is_bounded_not_fatal() {
    // 10,000 writes take a while in a debug build on a busy machine; the deadline is not
    // what this test is about.
    let p = hostile(Limits {
        call_timeout: Duration::from_secs(10),
        ..Limits::default()
    });
    assert_eq!(
        run(&mut p.filter().expect("instance"), "config").expect("no fault"),
        r#"{"greeting":"hi"}"#
    );
    // 10,000 lines exceed the 16 KiB output cap; the plugin must not fail because of it.
    assert_eq!(
        run(&mut p.filter().expect("instance"), "print").expect("no fault"),
        "printed"
    );
}

fn warm(max_uses: u32, recycle_mib: usize) -> Option<Warm> {
    Some(Warm {
        pool_size: 2,
        max_uses,
        recycle_memory_bytes: recycle_mib << 20,
    })
}

/// `count` returns how many requests the instance has seen: 1 from a fresh instance.
fn count(p: &LoadedPlugin) -> String {
    run(&mut p.filter().expect("instance"), "count").expect("no fault")
}

#[test]
fn fresh_instances_are_the_default_and_share_nothing() {
    let p = hostile(Limits::default());
    for _ in 0..3 {
        assert_eq!(count(&p), "seen=1");
    }
}

#[test]
fn warm_mode_reuses_an_instance_and_discards_it_after_a_fault() {
    let p = hostile_with(Limits::default(), warm(100, 48));
    assert_eq!(count(&p), "seen=1");
    assert_eq!(count(&p), "seen=2", "the instance went back to the pool");
    assert_eq!(count(&p), "seen=3");
    let fault = run(&mut p.filter().expect("instance"), "trap").expect_err("trap");
    assert!(matches!(fault, Fault::Trap { .. }), "{fault:?}");
    assert_eq!(count(&p), "seen=1", "the faulted instance was discarded");
    // A deadline is a fault too.
    let p = hostile_with(limits(50, 64), warm(100, 48));
    assert_eq!(count(&p), "seen=1");
    let _ = run(&mut p.filter().expect("instance"), "loop").expect_err("deadline");
    assert_eq!(count(&p), "seen=1");
}

#[test]
fn warm_mode_retires_an_instance_after_max_uses_and_at_its_memory_mark() {
    let p = hostile_with(Limits::default(), warm(3, 48));
    let seen: Vec<String> = (0..7).map(|_| count(&p)).collect();
    assert_eq!(
        seen,
        [
            "seen=1", "seen=2", "seen=3", "seen=1", "seen=2", "seen=3", "seen=1"
        ]
    );

    let p = hostile_with(Limits::default(), warm(100, 8));
    assert_eq!(count(&p), "seen=1");
    assert_eq!(count(&p), "seen=2");
    let kept = run(&mut p.filter().expect("instance"), "grow:12").expect("no fault");
    assert_eq!(kept, format!("kept={}", 12 << 20));
    assert_eq!(
        count(&p),
        "seen=1",
        "an instance past its mark is discarded"
    );
}

#[test]
fn warm_mode_closes_a_request_s_stream_filter_before_reuse() {
    // Each request leaves its stream filter open; the host must close it (running the
    // plugin's destructor) when the request ends, or they pile up in the instance.
    let p = hostile_with(Limits::default(), warm(100, 48));
    let ctx = ctx();
    assert_eq!(count(&p), "seen=1");
    for _ in 0..3 {
        let mut inst = p.filter().expect("instance");
        let _stream = inst.open_stream(&ctx).expect("stream");
        assert_eq!(run(&mut inst, "streams").expect("no fault"), "open=1");
    }
    let mut inst = p.filter().expect("instance");
    assert_eq!(run(&mut inst, "streams").expect("no fault"), "open=0");
    assert_eq!(
        run(&mut inst, "count").expect("no fault"),
        "seen=2",
        "one instance served every request"
    );
}

#[test]
fn warm_mode_refuses_a_plugin_that_starts_above_its_memory_mark() {
    let sandbox = Sandbox::new(SandboxSettings {
        max_instances: 8,
        ..Default::default()
    })
    .expect("sandbox");
    let mut policy = PluginPolicy::default();
    policy.per_plugin.insert(
        "hostile".into(),
        PluginSettings {
            warm: Some(Warm {
                pool_size: 1,
                max_uses: 10,
                recycle_memory_bytes: 1,
            }),
            ..Default::default()
        },
    );
    let bytes = std::fs::read(fixture("fx-hostile")).expect("read");
    let err = Loader::new(sandbox, None, policy)
        .load(PluginName::parse("hostile").expect("name"), &bytes)
        .expect_err("refused");
    let msg = err.to_string();
    assert!(
        msg.starts_with("warm mode: an instance starts with") && msg.contains("recycle_memory"),
        "{msg}"
    );
}
