//! Governance on a running gateway: keys and teams from the config, model access, rate
//! limits with OpenAI's headers, budgets under concurrency, the ledger, `/admin/usage`
//! and `/metrics`.

use std::sync::Arc;

use switchyard_mock_upstream::MockUpstream;
use switchyard_tests::{Sse, TestGateway, mock_upstream, openai_deployment, plugin, send};

/// Writes each secret to a file and returns `[keys.NAME]` tables referring to them.
fn key_tables(dir: &std::path::Path, keys: &[(&str, &str, &str)]) -> String {
    keys.iter()
        .map(|(name, secret, extra)| {
            let path = dir.join(format!("{name}.key"));
            std::fs::write(&path, secret).expect("write key");
            format!(
                "[keys.{name}]\nsecret = \"file:{}\"\n{extra}\n",
                path.display()
            )
        })
        .collect()
}

async fn gateway(
    m: &MockUpstream,
    keys: &[(&str, &str, &str)],
    rest: &str,
) -> (TestGateway, tempfile::TempDir) {
    let secrets = tempfile::tempdir().expect("tempdir");
    let base = format!("http://{}/v1", m.addr);
    let toml = format!(
        "{}{}{}{}[models.demo]\ndeployments = [\"echo\"]\n[models.other]\ndeployments = [\"echo\"]\n\
         [models.slow]\ndeployments = [\"slow\"]\n[models.words]\ndeployments = [\"words\"]\n\
         [models.silent]\ndeployments = [\"silent\"]\n[auth]\nadmin_keys = [\"file:{}\"]\n{rest}",
        openai_deployment(
            "echo",
            &base,
            "mock-echo",
            "input_price = 1.0\noutput_price = 2.0\n"
        ),
        openai_deployment(
            "slow",
            &base,
            "mock-slow-1500ms",
            "input_price = 1.0\noutput_price = 1.0\n"
        ),
        openai_deployment(
            "words",
            &base,
            "mock-words-200",
            "input_price = 1.0\noutput_price = 1.0\n"
        ),
        openai_deployment(
            "silent",
            &base,
            "mock-echo+no-usage",
            "input_price = 1.0\noutput_price = 1.0\n"
        ),
        {
            let p = secrets.path().join("admin");
            std::fs::write(&p, ADMIN).expect("write");
            p.display().to_string()
        },
    );
    let toml = format!("{}{toml}", key_tables(secrets.path(), keys));
    let gw = TestGateway::start(&[("openai.wasm", plugin("openai"))], &toml)
        .await
        .expect("gateway");
    (gw, secrets)
}

const ADMIN: &str = "admin-secret-000000000000";

fn bearer(k: &str) -> String {
    format!("Bearer {k}")
}

async fn chat(
    gw: &TestGateway,
    key: Option<&str>,
    body: serde_json::Value,
) -> (u16, hyper::HeaderMap, serde_json::Value) {
    let auth = key.map(bearer);
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("authorization", a.as_str())).collect();
    let (s, h, b) = send(
        gw.gw.addr,
        "POST",
        "/v1/chat/completions",
        &headers,
        Some(&body),
    )
    .await
    .expect("send");
    let v = serde_json::from_slice(&b).unwrap_or(serde_json::Value::Null);
    (s, h, v)
}

fn ask(model: &str) -> serde_json::Value {
    serde_json::json!({"model": model, "messages": [{"role": "user", "content": "hi"}]})
}

fn header<'a>(h: &'a hyper::HeaderMap, name: &str) -> &'a str {
    h.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

async fn rows(gw: &TestGateway, sql: &str) -> Vec<Vec<rusqlite::types::Value>> {
    gw.gw.state.ledger.flush();
    let conn = rusqlite::Connection::open(gw.dir.path().join("switchyard.db")).expect("db");
    let mut stmt = conn.prepare(sql).expect("sql");
    let n = stmt.column_count();
    stmt.query_map([], |r| {
        (0..n).map(|i| r.get(i)).collect::<Result<Vec<_>, _>>()
    })
    .expect("query")
    .collect::<Result<Vec<_>, _>>()
    .expect("rows")
}

fn int(v: &rusqlite::types::Value) -> i64 {
    match v {
        rusqlite::types::Value::Integer(i) => *i,
        _ => -1,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_and_teams_decide_who_may_call_which_model() -> anyhow::Result<()> {
    let m = mock_upstream().await?;
    let (gw, _s) = gateway(
        &m,
        &[
            (
                "alice",
                "sk-alice-0000000000",
                "team = \"research\"\nmodels = [\"demo\", \"other\"]",
            ),
            ("bob", "sk-bob-00000000000000", "models = [\"other\"]"),
            ("carol", "sk-carol-000000000000", ""),
            ("old", "sk-old-00000000000000", "expires = \"2020-01-01\""),
        ],
        "[teams.research]\nmodels = [\"demo\"]\n",
    )
    .await;
    // Missing, unknown, hostile: all simply invalid keys.
    let long = "k".repeat(10_000);
    for key in [
        None,
        Some("sk-nobody"),
        Some("' OR '1'='1' --"),
        Some(long.as_str()),
    ] {
        let (s, h, v) = chat(&gw, key, ask("demo")).await;
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (401, Some("invalid_api_key")),
            "{key:?}"
        );
        assert_eq!(v["error"]["type"], "authentication_error");
        assert!(h.get("x-ratelimit-limit-requests").is_none());
    }
    let (s, _, v) = chat(&gw, Some("sk-old-00000000000000"), ask("demo")).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (401, Some("invalid_api_key"))
    );
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("expired"),
        "{v}"
    );

    let (s, _, v) = chat(&gw, Some("sk-alice-0000000000"), ask("demo")).await;
    assert_eq!(s, 200, "{v}");
    // The key allows `other`, its team does not: the stricter wins.
    for (key, model) in [
        ("sk-alice-0000000000", "other"),
        ("sk-bob-00000000000000", "demo"),
    ] {
        let (s, _, v) = chat(&gw, Some(key), ask(model)).await;
        assert_eq!(s, 403, "{v}");
        assert_eq!(v["error"]["type"], "permission_error");
        assert_eq!(v["error"]["code"], "model_not_allowed");
        assert_eq!(v["error"]["param"], "model");
    }
    // `/v1/models` lists what the key may use, and needs a key too.
    for (key, want) in [
        ("sk-alice-0000000000", vec!["demo"]),
        ("sk-bob-00000000000000", vec!["other"]),
        (
            "sk-carol-000000000000",
            vec!["demo", "other", "silent", "slow", "words"],
        ),
    ] {
        let auth = bearer(key);
        let (s, _, b) = send(
            gw.gw.addr,
            "GET",
            "/v1/models",
            &[("authorization", &auth)],
            None,
        )
        .await?;
        assert_eq!(s, 200);
        let v: serde_json::Value = serde_json::from_slice(&b)?;
        let ids: Vec<&str> = v["data"].as_array().map_or(vec![], |a| {
            a.iter().filter_map(|m| m["id"].as_str()).collect()
        });
        assert_eq!(ids, want, "{key}");
    }
    let (s, _, _) = send(gw.gw.addr, "GET", "/v1/models", &[], None).await?;
    assert_eq!(s, 401);
    // A client key is not an admin key.
    let auth = bearer("sk-carol-000000000000");
    let (s, _, _) = send(
        gw.gw.addr,
        "GET",
        "/metrics",
        &[("authorization", &auth)],
        None,
    )
    .await?;
    assert_eq!(s, 403);
    // Denials have ledger rows too; 401s (no key to charge) do not.
    let r = rows(
        &gw,
        "SELECT key_name, status, error_code FROM requests ORDER BY id",
    )
    .await;
    let seen: Vec<(String, i64)> = r
        .iter()
        .map(|row| (format!("{:?}", row[0]), int(&row[1])))
        .collect();
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert_eq!(
        seen.iter().filter(|(_, s)| *s == 403).count(),
        2,
        "{seen:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_answer_429_with_openais_headers_on_every_response() -> anyhow::Result<()> {
    let m = mock_upstream().await?;
    let (gw, _s) = gateway(
        &m,
        &[
            ("r", "sk-r-000000000000000", "rpm = 3"),
            ("t", "sk-t-000000000000000", "tpm = 100"),
            ("k1", "sk-k1-00000000000000", "team = \"pair\""),
            ("k2", "sk-k2-00000000000000", "team = \"pair\""),
        ],
        "[teams.pair]\nrpm = 2\n",
    )
    .await;
    for remaining in ["2", "1", "0"] {
        let (s, h, _) = chat(&gw, Some("sk-r-000000000000000"), ask("demo")).await;
        assert_eq!(s, 200);
        assert_eq!(header(&h, "x-ratelimit-limit-requests"), "3");
        assert_eq!(header(&h, "x-ratelimit-remaining-requests"), remaining);
        assert!(
            header(&h, "x-ratelimit-reset-requests").ends_with('s'),
            "{h:?}"
        );
    }
    let (s, h, v) = chat(&gw, Some("sk-r-000000000000000"), ask("demo")).await;
    assert_eq!(s, 429, "{v}");
    assert_eq!(v["error"]["code"], "rate_limit_exceeded");
    assert_eq!(v["error"]["type"], "requests");
    let retry: u64 = header(&h, "retry-after").parse()?;
    assert!((1..=20).contains(&retry), "{retry}");
    assert_eq!(header(&h, "x-ratelimit-remaining-requests"), "0");

    // Tokens: reserved from the estimate (prompt + max_tokens), settled to the real count.
    let body = |max: u32| serde_json::json!({"model": "demo", "max_tokens": max, "messages": [{"role": "user", "content": "hi"}]});
    let (s, h, v) = chat(&gw, Some("sk-t-000000000000000"), body(60)).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(header(&h, "x-ratelimit-limit-tokens"), "100");
    // The prompt's byte bound (8: "hi" and the message framing) + 60 reserved.
    assert_eq!(header(&h, "x-ratelimit-remaining-tokens"), "32");
    // Settled to the upstream's count (a few tokens), so another 68 fit.
    let (s, h, v) = chat(&gw, Some("sk-t-000000000000000"), body(60)).await;
    assert_eq!(s, 200, "{v}");
    let remaining: u64 = header(&h, "x-ratelimit-remaining-tokens").parse()?;
    assert!(remaining < 33, "{remaining}");
    // More than the whole limit: never admitted, and the SDK is told not to retry.
    let (s, h, v) = chat(&gw, Some("sk-t-000000000000000"), body(200)).await;
    assert_eq!(
        (s, v["error"]["type"].as_str()),
        (429, Some("tokens")),
        "{v}"
    );
    assert_eq!(header(&h, "x-should-retry"), "false");

    // A team limit is shared by its keys.
    assert_eq!(
        chat(&gw, Some("sk-k1-00000000000000"), ask("demo")).await.0,
        200
    );
    assert_eq!(
        chat(&gw, Some("sk-k2-00000000000000"), ask("demo")).await.0,
        200
    );
    let (s, _, v) = chat(&gw, Some("sk-k1-00000000000000"), ask("demo")).await;
    assert_eq!(s, 429);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("team `pair`"),
        "{v}"
    );
    Ok(())
}

/// Fires `n` requests at once (a barrier releases them together); returns the statuses.
async fn burst(
    gw: &TestGateway,
    keys: &[&str],
    n: usize,
    body: serde_json::Value,
) -> Vec<(u16, serde_json::Value, hyper::HeaderMap)> {
    let barrier = Arc::new(tokio::sync::Barrier::new(n));
    let addr = gw.gw.addr;
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let (barrier, body) = (barrier.clone(), body.clone());
            let auth = bearer(keys[i % keys.len()]);
            tokio::spawn(async move {
                barrier.wait().await;
                let (s, h, b) = send(
                    addr,
                    "POST",
                    "/v1/chat/completions",
                    &[("authorization", &auth)],
                    Some(&body),
                )
                .await
                .expect("send");
                (s, serde_json::from_slice(&b).unwrap_or_default(), h)
            })
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.expect("task"));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_cannot_overspend_a_key_or_a_team_budget() -> anyhow::Result<()> {
    let m = mock_upstream().await?;
    // "hi" is 7 prompt tokens (8 by the byte bound tried first); with max_tokens 100 at
    // $1/M each way a request reserves 107 µ$ (108 by the bound). 1,070 µ$ allow ten at
    // most, whichever way they are counted.
    let (gw, _s) = gateway(
        &m,
        &[
            (
                "solo",
                "sk-solo-000000000000",
                "budget = 0.00107\nbudget_period = \"day\"",
            ),
            ("a", "sk-a-000000000000000", "team = \"shared\""),
            ("b", "sk-b-000000000000000", "team = \"shared\""),
        ],
        "[teams.shared]\nbudget = 0.00107\n",
    )
    .await;
    let body = serde_json::json!({"model": "slow", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]});
    for (keys, scope) in [
        (vec!["sk-solo-000000000000"], "solo"),
        (
            vec!["sk-a-000000000000000", "sk-b-000000000000000"],
            "shared",
        ),
    ] {
        let results = burst(&gw, &keys, 50, body.clone()).await;
        let ok = results.iter().filter(|r| r.0 == 200).count();
        assert!((1..=10).contains(&ok), "{scope}: {ok} admitted");
        for (s, v, h) in results.iter().filter(|r| r.0 != 200) {
            assert_eq!(*s, 429, "{v}");
            assert_eq!(v["error"]["code"], "insufficient_quota");
            assert_eq!(v["error"]["type"], "insufficient_quota");
            assert_eq!(header(h, "x-should-retry"), "false");
        }
        let column = if scope == "solo" { "key_name" } else { "team" };
        let spent = rows(&gw, &format!("SELECT COALESCE(SUM(cost_micros), 0), COUNT(*) FROM requests WHERE {column} = '{scope}'")).await;
        assert!(
            int(&spent[0][0]) <= 1070,
            "{scope} spent {}",
            int(&spent[0][0])
        );
        assert_eq!(int(&spent[0][1]), 50, "every request has a row");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_past_its_budget_reservation_is_cut_and_the_ledger_says_so() -> anyhow::Result<()>
{
    let m = mock_upstream().await?;
    let (gw, _s) = gateway(&m, &[("s", "sk-s-000000000000000", "budget = 1.0")], "").await;
    // The upstream ignores max_tokens (200 words); the reservation covers 10.
    let body = serde_json::json!({"model": "words", "stream": true, "max_tokens": 10, "messages": [{"role": "user", "content": "go"}]});
    let auth = bearer("sk-s-000000000000000");
    let (s, _, b) = send(
        gw.gw.addr,
        "POST",
        "/v1/chat/completions",
        &[("authorization", &auth)],
        Some(&body),
    )
    .await?;
    assert_eq!(s, 200);
    let sse = Sse::parse(&b)?;
    assert!(!sse.done, "no [DONE] after a cut");
    let last = sse.errors.last().expect("an error event");
    assert_eq!(last["error"]["code"], "budget_exceeded", "{last}");
    let r = rows(
        &gw,
        "SELECT stream_outcome, error_code, completion_tokens FROM requests",
    )
    .await;
    assert_eq!(r.len(), 1);
    assert_eq!(
        r[0][0],
        rusqlite::types::Value::Text("budget_exceeded".into())
    );
    assert!(
        int(&r[0][2]) <= 11,
        "billed {} output tokens",
        int(&r[0][2])
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ledger_matches_what_was_sent_including_an_upstream_that_reports_no_usage()
-> anyhow::Result<()> {
    let m = mock_upstream().await?;
    let (gw, _s) = gateway(
        &m,
        &[("l", "sk-l-000000000000000", "team = \"t\"")],
        "[teams.t]\n",
    )
    .await;
    let key = "sk-l-000000000000000";
    for _ in 0..3 {
        assert_eq!(chat(&gw, Some(key), ask("demo")).await.0, 200);
    }
    // No usage from upstream: counted by the host, marked estimated, told to the client.
    let (s, _, v) = chat(&gw, Some(key), ask("silent")).await;
    assert_eq!(s, 200);
    assert!(
        v["usage"]["prompt_tokens"].as_u64().is_some_and(|n| n > 0),
        "{v}"
    );
    let stream = serde_json::json!({"model": "silent", "stream": true, "stream_options": {"include_usage": true}, "messages": [{"role": "user", "content": "hello there"}]});
    let auth = bearer(key);
    let (_, _, b) = send(
        gw.gw.addr,
        "POST",
        "/v1/chat/completions",
        &[("authorization", &auth)],
        Some(&stream),
    )
    .await?;
    let sse = Sse::parse(&b)?;
    assert!(sse.done);
    let usage = sse
        .events
        .iter()
        .rev()
        .find(|e| e["usage"].is_object())
        .expect("a usage chunk");
    assert!(
        usage["usage"]["completion_tokens"]
            .as_u64()
            .is_some_and(|n| n > 0),
        "{usage}"
    );
    // A failed request has a row too.
    assert_eq!(chat(&gw, Some(key), ask("nope")).await.0, 404);

    let r = rows(&gw, "SELECT model, deployment, prompt_tokens, completion_tokens, cost_micros, tokens_estimated, status, stream, stream_outcome, key_name, team, tried FROM requests ORDER BY id").await;
    assert_eq!(r.len(), 6, "one row per request");
    for row in &r[..3] {
        // Mock echo: prompt 1 word, answer "echo: hi" 2 words; $1/M in, $2/M out.
        let (p, c) = (int(&row[2]), int(&row[3]));
        assert_eq!(int(&row[4]), (p + 2 * c).max(1), "{row:?}");
        assert_eq!(int(&row[5]), 0);
        assert_eq!(row[1], rusqlite::types::Value::Text("echo".into()));
        assert_eq!(row[10], rusqlite::types::Value::Text("t".into()));
        assert_eq!(row[11], rusqlite::types::Value::Text("[\"echo\"]".into()));
    }
    for row in &r[3..5] {
        assert_eq!(int(&row[5]), 1, "estimated: {row:?}");
        assert!(int(&row[2]) > 0 && int(&row[3]) > 0, "{row:?}");
        assert_eq!(int(&row[4]), int(&row[2]) + int(&row[3]), "$1/M each way");
    }
    assert_eq!(r[4][8], rusqlite::types::Value::Text("completed".into()));
    assert_eq!(int(&r[5][6]), 404);

    // `/admin/usage` totals equal the rows.
    let auth = bearer(ADMIN);
    let (s, _, b) = send(
        gw.gw.addr,
        "GET",
        "/admin/usage?since=1h&by=model",
        &[("authorization", &auth)],
        None,
    )
    .await?;
    assert_eq!(s, 200, "{}", String::from_utf8_lossy(&b));
    let v: serde_json::Value = serde_json::from_slice(&b)?;
    let sum: i64 = r.iter().map(|row| int(&row[4])).sum();
    assert_eq!(v["total"]["cost_micros"].as_i64(), Some(sum), "{v}");
    assert_eq!(v["total"]["requests"].as_u64(), Some(6));
    let groups: i64 = v["groups"].as_array().map_or(0, |g| {
        g.iter().filter_map(|x| x["cost_micros"].as_i64()).sum()
    });
    assert_eq!(groups, sum);
    let (s, _, _) = send(
        gw.gw.addr,
        "GET",
        "/admin/usage?by=colour",
        &[("authorization", &auth)],
        None,
    )
    .await?;
    assert_eq!(s, 400);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_parse_as_prometheus_text_and_move_with_requests() -> anyhow::Result<()> {
    let m = mock_upstream().await?;
    let (gw, _s) = gateway(&m, &[("p", "sk-p-000000000000000", "rpm = 1")], "").await;
    let scrape = || async {
        let auth = bearer(ADMIN);
        let (s, h, b) = send(
            gw.gw.addr,
            "GET",
            "/metrics",
            &[("authorization", &auth)],
            None,
        )
        .await
        .expect("scrape");
        assert_eq!(s, 200);
        assert!(
            header(&h, "content-type").starts_with("text/plain"),
            "{h:?}"
        );
        parse(&b)
    };
    let before = scrape().await;
    assert_eq!(
        chat(&gw, Some("sk-p-000000000000000"), ask("demo")).await.0,
        200
    );
    assert_eq!(
        chat(&gw, Some("sk-p-000000000000000"), ask("demo")).await.0,
        429
    );
    assert_eq!(chat(&gw, Some("sk-nope"), ask("demo")).await.0, 401);
    let after = scrape().await;
    let value = |m: &serde_json::Value, name: &str, labels: &[(&str, &str)]| -> f64 {
        m.as_array()
            .into_iter()
            .flatten()
            .filter(|s| s["name"] == name && labels.iter().all(|(k, v)| s["labels"][k] == *v))
            .filter_map(|s| s["value"].as_f64())
            .sum()
    };
    let ok = [
        ("model", "demo"),
        ("deployment", "echo"),
        ("status_class", "2xx"),
    ];
    assert_eq!(
        value(&after, "switchyard_requests_total", &ok)
            - value(&before, "switchyard_requests_total", &ok),
        1.0
    );
    assert_eq!(
        value(&after, "switchyard_rate_limited_total", &[("kind", "rpm")]),
        1.0
    );
    assert_eq!(value(&after, "switchyard_auth_failures_total", &[]), 1.0);
    assert!(
        value(
            &after,
            "gen_ai_client_token_usage_count",
            &[("gen_ai_token_type", "input")]
        ) >= 1.0
    );
    assert!(
        value(
            &after,
            "switchyard_cost_usd_micros_total",
            &[("deployment", "echo")]
        ) >= 1.0
    );
    assert!(
        value(
            &after,
            "switchyard_plugin_call_duration_seconds_count",
            &[("plugin", "openai"), ("kind", "adapter")]
        ) >= 2.0
    );
    assert_eq!(
        value(
            &after,
            "switchyard_plugin_reloads_total",
            &[("result", "applied")]
        ),
        1.0
    );
    assert_eq!(value(&after, "switchyard_inflight_requests", &[]), 0.0);
    assert!(value(&after, "switchyard_overhead_seconds_count", &[]) >= 1.0);
    gw.gw.state.ledger.flush();
    let after = scrape().await;
    assert!(value(&after, "switchyard_ledger_rows_written_total", &[]) >= 2.0);
    assert_eq!(
        value(&after, "switchyard_ledger_rows_dropped_total", &[]),
        0.0
    );
    Ok(())
}

/// Parses Prometheus text with the official Python client's parser (a real parser,
/// not ours); returns every sample as `{"name","labels","value"}`.
fn parse(text: &[u8]) -> serde_json::Value {
    use std::io::Write;
    let python = switchyard_tests::root().join("target/pyenv/bin/python");
    let script = "import sys, json\nfrom prometheus_client.parser import text_string_to_metric_families\n\
                  out = [{'name': s.name, 'labels': s.labels, 'value': s.value} for f in text_string_to_metric_families(sys.stdin.read()) for s in f.samples]\n\
                  print(json.dumps(out))";
    let mut child = std::process::Command::new(python)
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("target/pyenv/bin/python (the README's test command makes it)");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text)
        .expect("write");
    let out = child.wait_with_output().expect("parser");
    assert!(
        out.status.success(),
        "not Prometheus text: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(text)
    );
    serde_json::from_slice(&out.stdout).expect("json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_payloads_are_what_the_filters_let_out_and_only_when_asked() -> anyhow::Result<()> {
    let m = mock_upstream().await?;
    let base = format!("http://{}/v1", m.addr);
    let models = "[models.demo]\ndeployments = [\"echo\"]\nfilters = [\"pii-redact\"]\n";
    let deployment = openai_deployment("echo", &base, "mock-echo", "");
    let plugins = [
        ("openai.wasm", plugin("openai")),
        ("pii-redact.wasm", plugin("pii-redact")),
    ];
    for store in [true, false] {
        let gw = TestGateway::start(
            &plugins,
            &format!("[ledger]\nstore_payloads = {store}\n[plugins.pii-redact]\nconfig = {{ mode = \"redact\" }}\n{deployment}{models}"),
        )
        .await?;
        let body = serde_json::json!({"model": "demo", "messages": [{"role": "user", "content": "mail jo@example.com"}]});
        assert_eq!(chat(&gw, None, body.clone()).await.0, 200);
        let mut stream = body;
        stream["stream"] = serde_json::json!(true);
        let (s, _, _) = send(
            gw.gw.addr,
            "POST",
            "/v1/chat/completions",
            &[],
            Some(&stream),
        )
        .await?;
        assert_eq!(s, 200);
        let stored = rows(&gw, "SELECT p.request, p.response FROM payloads p JOIN requests r USING (request_id) ORDER BY r.id").await;
        if !store {
            assert!(stored.is_empty(), "payloads stored without store_payloads");
            continue;
        }
        assert_eq!(stored.len(), 2);
        for row in &stored {
            let (rusqlite::types::Value::Text(req), rusqlite::types::Value::Text(resp)) =
                (&row[0], &row[1])
            else {
                panic!("{row:?}");
            };
            assert!(
                !req.contains("jo@example.com") && !resp.contains("jo@example.com"),
                "{req} {resp}"
            );
            let req: serde_json::Value = serde_json::from_str(req)?;
            assert_eq!(req["model"], "demo");
            assert!(
                req["messages"][0]["content"]
                    .as_str()
                    .is_some_and(|c| c.starts_with("mail ")),
                "{req}"
            );
            assert!(resp.contains("echo:"), "{resp}");
        }
    }
    Ok(())
}
