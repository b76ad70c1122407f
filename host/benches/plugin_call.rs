//! Instantiate + call + drop for each plugin kind, with a realistic request (5 messages
//! of ~1 KB each): the per-request cost a plugin adds on top of the host.
//!
//! `governance`: what key auth, rate limits, a budget and the ledger add per request,
//! outside any plugin: the same request authenticated, admitted (prompt counted, rpm, tpm
//! and budget on the key and its team) and settled, and a ledger row enqueued.
//!
//! `languages`: the same calls into a router and a filter written in each language, each
//! with a fresh instance per request (the default) and in warm mode. Python and
//! JavaScript plugins are measured when built into `target/polyglot` (see
//! `tests/bench/README.md`), and skipped with a note otherwise.
//!
//! Needs the bundled plugins: `bash scripts/build-plugins.sh` first.

use std::hint::black_box;
use std::path::PathBuf;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use switchyard::canonical::{Caller, ChatRequest, ContentPart, Header, Message, Role, Sampling};
use switchyard::plugins::loader::{PluginPolicy, PluginSettings};
use switchyard::plugins::{LoadedPlugin, Loader, PluginName};
use switchyard::sandbox::adapter_api::{Deployment, UpstreamResponse};
use switchyard::sandbox::filter_api::RequestContext;
use switchyard::sandbox::router_api::{Candidate, CircuitState, DeploymentStats, RouteRequest};
use switchyard::sandbox::{Sandbox, SandboxSettings, Warm};

fn plugin(loader: &Loader, name: &str) -> LoadedPlugin {
    plugin_in(loader, "plugins", name)
}

fn plugin_in(loader: &Loader, dir: &str, name: &str) -> LoadedPlugin {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../target")
        .join(dir)
        .join(format!("{name}.wasm"));
    let bytes = std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run `bash scripts/build-plugins.sh` first",
            path.display()
        )
    });
    loader
        .load(PluginName::parse(name).expect("name"), &bytes)
        .expect("load")
}

/// Five messages of ~1 KB of ordinary prose each, as a chat with history looks.
fn realistic_request() -> ChatRequest {
    let para = "The quarterly report shows revenue growth across all regions, with the strongest \
                gains in the north-east where new contracts were signed in the second month. \
                Please summarise the main drivers and list any risks the finance team flagged. ";
    let text = para.repeat(1024 / para.len() + 1);
    let roles = [
        Role::System,
        Role::User,
        Role::Assistant,
        Role::User,
        Role::Assistant,
    ];
    ChatRequest {
        model: "demo".into(),
        messages: roles
            .iter()
            .map(|r| Message {
                role: *r,
                content: vec![ContentPart::Text(text[..1024].to_owned())],
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
            temperature: Some(0.7),
            top_p: None,
            max_tokens: Some(512),
            stop: vec![],
            presence_penalty: None,
            frequency_penalty: None,
            seed: None,
            n: None,
            reasoning_effort: None,
        },
        stream: false,
        user: Some("user-1234".into()),
        extra: String::new(),
    }
}

fn candidates() -> Vec<Candidate> {
    (0..4)
        .map(|i| Candidate {
            name: format!("deployment-{i}"),
            adapter: "openai".into(),
            tags: vec!["eu".into()],
            input_price_per_mtok: 0.15 * (i + 1) as f64,
            output_price_per_mtok: 0.6 * (i + 1) as f64,
            weight: 1,
            stats: DeploymentStats {
                latency_ewma_ms: 200.0 + 50.0 * i as f64,
                ttft_ewma_ms: 80.0,
                error_rate: 0.01 * i as f64,
                in_flight: i,
                circuit: CircuitState::Closed,
                requests: 1000,
                rate_limit_headroom: Some(0.8),
            },
        })
        .collect()
}

const RESPONSE: &str = r#"{"id":"chatcmpl-1","object":"chat.completion","created":1700000000,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"Revenue grew in every region, led by the north-east."},"finish_reason":"stop"}],"usage":{"prompt_tokens":1300,"completion_tokens":12,"total_tokens":1312}}"#;

fn context() -> RequestContext {
    RequestContext {
        request_id: "req_1".into(),
        caller: Caller {
            key_id: Some("key-1".into()),
            team: Some("team-a".into()),
            tags: vec![],
        },
        model: "demo".into(),
    }
}

fn route_request(caller: &Caller) -> RouteRequest {
    RouteRequest {
        model: "demo".into(),
        estimated_prompt_tokens: 1300,
        max_tokens: Some(512),
        stream: false,
        has_tools: false,
        caller: caller.clone(),
        request_seed: 42,
    }
}

fn bench(c: &mut Criterion) {
    let sandbox = Sandbox::new(SandboxSettings::default()).expect("sandbox");
    let mut policy = PluginPolicy::default();
    // `split` has no default: a 50/50 split with a 10% shadow over the bench candidates.
    policy.per_plugin.insert(
        "split".into(),
        PluginSettings {
            config_json: Some(
                r#"{"split": {"deployment-0": 50, "deployment-1": 50}, "shadow": "deployment-3", "shadow_percent": 10}"#
                    .into(),
            ),
            ..Default::default()
        },
    );
    let loader = Loader::new(sandbox, None, policy);
    let adapter = plugin(&loader, "openai");
    let router = plugin(&loader, "balanced");
    let filter = plugin(&loader, "pii-redact");
    let req = realistic_request();
    let dep = Deployment {
        name: "openai-eu".into(),
        base_url: "https://api.openai.com/v1".into(),
        model_id: "gpt-4o-mini".into(),
        settings: "{}".into(),
    };
    let resp = UpstreamResponse {
        status: 200,
        headers: vec![Header {
            name: "content-type".into(),
            value: b"application/json".to_vec(),
        }],
        body: RESPONSE.as_bytes().to_vec(),
    };
    let ctx = context();
    let route_req = route_request(&ctx.caller);
    let cands = candidates();

    let mut g = c.benchmark_group("plugin");
    g.measurement_time(Duration::from_secs(5));
    g.bench_function("instantiate_only/adapter", |b| {
        b.iter(|| black_box(adapter.adapter().expect("instance")))
    });
    g.bench_function("adapter/build_request", |b| {
        b.iter(|| {
            let mut i = adapter.adapter().expect("instance");
            black_box(i.build_request(&dep, &req).expect("no fault").expect("ok"))
        })
    });
    g.bench_function("adapter/build_request+parse_response", |b| {
        b.iter(|| {
            let mut i = adapter.adapter().expect("instance");
            black_box(i.build_request(&dep, &req).expect("no fault").expect("ok"));
            black_box(
                i.parse_response(&dep, &resp)
                    .expect("no fault")
                    .expect("ok"),
            )
        })
    });
    g.bench_function("router/route", |b| {
        b.iter(|| {
            let mut i = router.router().expect("instance");
            black_box(i.route(&route_req, &cands).expect("no fault").expect("ok"))
        })
    });
    // Every bundled routing strategy, instantiate + route + drop over four candidates.
    for name in [
        "weighted",
        "round-robin",
        "least-latency",
        "least-busy",
        "lowest-cost",
        "rules",
        "split",
    ] {
        let router = plugin(&loader, name);
        g.bench_function(format!("router/{name}"), |b| {
            b.iter(|| {
                let mut i = router.router().expect("instance");
                black_box(i.route(&route_req, &cands).expect("no fault").expect("ok"))
            })
        });
    }
    g.bench_function("filter/on_request", |b| {
        b.iter(|| {
            let mut i = filter.filter().expect("instance");
            black_box(i.on_request(&ctx, &req).expect("no fault").expect("ok"))
        })
    });
    // Every bundled filter, instantiate + on_request + drop, default config.
    for name in [
        "pii-redact",
        "prompt-guard",
        "deny-list",
        "limits",
        "residency",
    ] {
        let filter = plugin(&loader, name);
        g.bench_function(format!("filter/{name}"), |b| {
            b.iter(|| {
                let mut i = filter.filter().expect("instance");
                black_box(i.on_request(&ctx, &req).expect("no fault").expect("ok"))
            })
        });
    }
    g.finish();
}

/// A router and a filter per language: (language, kind, folder under `target/`, name).
const POLYGLOT: [(&str, &str, &str, &str); 6] = [
    ("rust", "router", "plugins", "least-latency"),
    ("rust", "filter", "plugins", "pii-redact"),
    ("python", "router", "polyglot", "tiered-router"),
    ("python", "filter", "polyglot", "secrets-filter"),
    ("js", "router", "polyglot", "sticky-router"),
    ("js", "filter", "polyglot", "tool-policy"),
];

fn languages(c: &mut Criterion) {
    let warm = Warm {
        pool_size: 4,
        max_uses: 1000,
        recycle_memory_bytes: 48 << 20,
    };
    let mut policy = PluginPolicy::default();
    for (_, _, _, name) in POLYGLOT {
        policy.per_plugin.insert(
            name.into(),
            PluginSettings {
                warm: Some(warm.clone()),
                ..Default::default()
            },
        );
    }
    let sandbox = Sandbox::new(SandboxSettings::default()).expect("sandbox");
    let fresh_loader = Loader::new(sandbox.clone(), None, PluginPolicy::default());
    let warm_loader = Loader::new(sandbox, None, policy);
    let req = realistic_request();
    let ctx = context();
    let route_req = route_request(&ctx.caller);
    let cands = candidates();

    let mut g = c.benchmark_group("languages");
    g.measurement_time(Duration::from_secs(5));
    for (lang, kind, dir, name) in POLYGLOT {
        let file = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../target")
            .join(dir)
            .join(format!("{name}.wasm"));
        if !file.exists() {
            eprintln!(
                "languages/{lang}: skipped, {} not built (see tests/bench/README.md)",
                file.display()
            );
            continue;
        }
        for (mode, loader) in [("fresh", &fresh_loader), ("warm", &warm_loader)] {
            let p = plugin_in(loader, dir, name);
            let id = format!("{lang}/{kind}/{mode}");
            if kind == "router" {
                g.bench_function(id, |b| {
                    b.iter(|| {
                        let mut i = p.router().expect("instance");
                        black_box(i.route(&route_req, &cands).expect("no fault").expect("ok"))
                    })
                });
            } else {
                g.bench_function(id, |b| {
                    b.iter(|| {
                        let mut i = p.filter().expect("instance");
                        black_box(i.on_request(&ctx, &req).expect("no fault").expect("ok"))
                    })
                });
            }
        }
    }
    g.finish();
}

fn governance(c: &mut Criterion) {
    use switchyard::config::Config;
    use switchyard::governance::{Governance, tokens};
    use switchyard::ledger::{Ledger, LedgerRow, LedgerSettings, PluginNote};
    let dir = tempfile::tempdir().expect("tempdir");
    let secret = "sy-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    std::fs::write(dir.path().join("key"), secret).expect("write");
    let limits = "rpm = 100000000\ntpm = 2000000000\nbudget = 1000000.0\n";
    let cfg = Config::parse(
        &format!(
            "[deployments.d]\nadapter = \"openai\"\nbase_url = \"http://127.0.0.1:1/v1\"\nmodel = \"gpt-4o-mini\"\n\
             input_price = 0.15\noutput_price = 0.6\n[models.demo]\ndeployments = [\"d\"]\n\
             [teams.t]\n{limits}[keys.k]\nsecret = \"file:{}\"\nteam = \"t\"\n{limits}",
            dir.path().join("key").display()
        ),
        dir.path(),
    )
    .expect("config");
    let gov = Governance::open(&cfg).expect("governance");
    let model = cfg.models["demo"].clone();
    let key = gov.authenticate(Some(secret)).expect("auth").expect("key");
    let req = realistic_request();
    tokens::warm();
    let mut g = c.benchmark_group("governance");
    g.bench_function("authenticate (HMAC + lookup)", |b| {
        b.iter(|| black_box(gov.authenticate(Some(black_box(secret))).is_ok()))
    });
    g.bench_function("count prompt (5 x 1 KB, o200k)", |b| {
        b.iter(|| black_box(tokens::count_request("gpt-4o-mini", black_box(&req))))
    });
    g.bench_function("admit + settle (key and team: rpm, tpm, budget)", |b| {
        b.iter(|| {
            let mut r = req.clone();
            let a = gov.admit(&key, &model, &mut r).expect("admitted");
            a.settle(300, 100);
        })
    });
    let ledger = Ledger::open(LedgerSettings::new(dir.path().join("ledger.db"))).expect("ledger");
    g.bench_function("ledger row enqueued", |b| {
        b.iter(|| {
            ledger.record(LedgerRow {
                request_id: "req_0123456789abcdef".into(),
                key_name: Some("k".into()),
                team: Some("t".into()),
                model: Some("demo".into()),
                deployment: Some("d".into()),
                tried: vec!["d".into()],
                plugins: vec![PluginNote {
                    plugin: "pii-redact".into(),
                    action: "rewrote request".into(),
                }],
                ..LedgerRow::default()
            })
        })
    });
    g.finish();
    ledger.close();
}

criterion_group!(benches, bench, languages, governance);
criterion_main!(benches);
