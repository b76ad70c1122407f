//! The bundled routing strategies through the gateway, against controlled statistics:
//! deployments on the mock upstream made slow and fast while the gateway runs, and the
//! answering deployment read from `x-switchyard-deployment`.

use std::collections::HashMap;

use switchyard_mock_upstream::MockUpstream;
use switchyard_tests::{
    TestGateway, mock_upstream, openai_deployment, plugin, post_json, terse_chat,
};

/// A gateway whose model `demo` is served by `names` (each an `openai` deployment asking
/// the mock for `model-NAME`, with `extra` lines), ranked by bundled router `router`
/// configured with `config` (an inline TOML table).
async fn gateway(
    m: &MockUpstream,
    router: &str,
    config: &str,
    names: &[(&str, &str)],
) -> anyhow::Result<TestGateway> {
    let base = format!("http://{}/v1", m.addr);
    let mut toml = format!("[plugins.{router}]\nconfig = {config}\n");
    for (name, extra) in names {
        toml.push_str(&openai_deployment(
            name,
            &base,
            &format!("model-{name}"),
            extra,
        ));
    }
    let list: Vec<String> = names.iter().map(|(n, _)| format!("\"{n}\"")).collect();
    toml.push_str(&format!(
        "[models.demo]\ndeployments = [{}]\nrouter = \"{router}\"\n",
        list.join(", ")
    ));
    TestGateway::start(
        &[
            ("openai.wasm", plugin("openai")),
            (&format!("{router}.wasm"), plugin(router)),
        ],
        &toml,
    )
    .await
}

/// Sends one request; the deployment that answered it.
async fn answered_by(gw: &TestGateway) -> anyhow::Result<String> {
    let (status, headers, body) = post_json(
        gw.gw.addr,
        "/v1/chat/completions",
        &terse_chat("demo", "hi"),
    )
    .await?;
    anyhow::ensure!(
        status == 200,
        "{status}: {}",
        String::from_utf8_lossy(&body)
    );
    Ok(headers["x-switchyard-deployment"].to_str()?.to_owned())
}

/// How many of `n` sequential requests each deployment answered.
async fn tally(gw: &TestGateway, n: usize) -> anyhow::Result<HashMap<String, usize>> {
    let mut counts = HashMap::new();
    for _ in 0..n {
        *counts.entry(answered_by(gw).await?).or_default() += 1;
    }
    Ok(counts)
}

/// Sends requests until `want` of the last `window` went to `name`; how many it took,
/// or an error after `limit`.
async fn until_share(
    gw: &TestGateway,
    name: &str,
    want: usize,
    window: usize,
    limit: usize,
) -> anyhow::Result<usize> {
    let mut recent = std::collections::VecDeque::new();
    for sent in 1..=limit {
        recent.push_back(answered_by(gw).await? == name);
        if recent.len() > window {
            recent.pop_front();
        }
        if recent.iter().filter(|hit| **hit).count() >= want {
            return Ok(sent);
        }
    }
    anyhow::bail!("{name} never got {want} of {window} requests in {limit}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn least_latency_leaves_a_slow_deployment_and_comes_back_after_it_recovers()
-> anyhow::Result<()> {
    let m = mock_upstream().await?;
    let gw = gateway(
        &m,
        "least-latency",
        "{ exploration = 0.1 }",
        &[("a", ""), ("b", "")],
    )
    .await?;
    m.set_knobs("model-a", Some("slow-60ms"));
    // Both get measured first (an unmeasured deployment ranks fastest).
    tally(&gw, 10).await?;
    let slow = tally(&gw, 100).await?;
    let to_a = slow.get("a").copied().unwrap_or(0);
    // Exploration sends ~5% to a (10% to a random one of two).
    assert!(to_a <= 20, "the slow deployment kept traffic: {slow:?}");
    m.set_knobs("model-a", None);
    // Exploration re-measures a; once its mean is down it wins its share back.
    until_share(&gw, "a", 30, 100, 2_000).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lowest_cost_prefers_cheap_within_the_latency_bound() -> anyhow::Result<()> {
    let m = mock_upstream().await?;
    let gw = gateway(
        &m,
        "lowest-cost",
        "{ max_latency_ms = 40, recheck = 0.1 }",
        &[
            ("dear", "input_price = 10.0\noutput_price = 30.0"),
            ("cheap", "input_price = 0.1\noutput_price = 0.4"),
        ],
    )
    .await?;
    let fast = tally(&gw, 20).await?;
    assert_eq!(
        fast.get("cheap"),
        Some(&20),
        "cheapest while fast: {fast:?}"
    );
    m.set_knobs("model-cheap", Some("slow-80ms"));
    // One slow answer is enough to pass the bound (the mean starts from ~1 ms and moves
    // a fifth of the way per sample: a few samples); after that only rechecks go there.
    let slow = tally(&gw, 100).await?;
    let to_cheap = slow.get("cheap").copied().unwrap_or(0);
    assert!(to_cheap <= 30, "the bound was not respected: {slow:?}");
    assert!(slow.get("dear").copied().unwrap_or(0) >= 70, "{slow:?}");
    m.set_knobs("model-cheap", None);
    until_share(&gw, "cheap", 45, 50, 1_000).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_robin_takes_turns_and_weighted_follows_its_weights() -> anyhow::Result<()> {
    let m = mock_upstream().await?;
    let gw = gateway(&m, "round-robin", "{}", &[("a", ""), ("b", ""), ("c", "")]).await?;
    let mut order = String::new();
    for _ in 0..12 {
        order.push_str(&answered_by(&gw).await?);
    }
    // Sequential requests land on consecutive turns, so the pattern repeats exactly.
    assert_eq!(
        order[..3]
            .chars()
            .collect::<std::collections::BTreeSet<_>>()
            .len(),
        3
    );
    assert_eq!(order, order[..3].repeat(4), "turns: {order}");

    let gw = gateway(
        &m,
        "weighted",
        "{ weights = { a = 3 } }",
        &[("a", ""), ("b", "")],
    )
    .await?;
    let counts = tally(&gw, 400).await?;
    let share = counts.get("a").copied().unwrap_or(0) as f64 / 400.0;
    assert!((0.67..0.83).contains(&share), "weights 3:1 gave {counts:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn least_busy_sends_around_a_deployment_holding_calls() -> anyhow::Result<()> {
    let m = mock_upstream().await?;
    let gw = gateway(&m, "least-busy", "{}", &[("a", ""), ("b", "")]).await?;
    m.set_knobs("model-a", Some("slow-1s"));
    m.set_knobs("model-b", Some("slow-1s"));
    // Two calls in flight to whichever deployments got them; the router must have split
    // them (each saw the other's call in flight).
    let addr = gw.gw.addr;
    let first = tokio::spawn(async move {
        post_json(addr, "/v1/chat/completions", &terse_chat("demo", "hold")).await
    });
    m.wait_until(std::time::Duration::from_secs(5), |m| {
        m.requests().len() == 1
    })
    .await
    .map_err(anyhow::Error::msg)?;
    let held = m.requests()[0].body_json().unwrap_or_default()["model"].clone();
    let busy = held
        .as_str()
        .unwrap_or_default()
        .trim_start_matches("model-")
        .to_owned();
    m.set_knobs("model-a", None);
    m.set_knobs("model-b", None);
    // While one deployment holds a call, every request goes to the other.
    for _ in 0..10 {
        assert_ne!(answered_by(&gw).await?, busy, "sent to the busy one");
    }
    let (status, _, _) = first.await??;
    assert_eq!(status, 200);
    Ok(())
}

/// `split`: 2,000 requests hashed by request land 70/30 within three points; the shadow
/// gets a mirrored copy of about half of them, never answers, and each copy has its own
/// ledger row (`shadow = 1`, the primary's request id, its own latency and cost).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_holds_its_percentages_and_the_shadow_is_recorded_but_never_answers()
-> anyhow::Result<()> {
    let m = mock_upstream().await?;
    let gw = gateway(
        &m,
        "split",
        "{ split = { a = 70, b = 30 }, hash_by = \"request\", shadow = \"mirror\", shadow_percent = 50 }",
        &[
            ("a", ""),
            ("b", ""),
            ("mirror", "input_price = 1.0\noutput_price = 2.0\n"),
        ],
    )
    .await?;
    let n = 2000;
    let counts = tally(&gw, n).await?;
    assert_eq!(
        counts.get("mirror"),
        None,
        "the shadow never answers: {counts:?}"
    );
    let a = counts.get("a").copied().unwrap_or(0) as f64 / n as f64;
    assert!((0.67..=0.73).contains(&a), "a got {a}: {counts:?}");

    // The copies run off the request path; wait for them, then read the ledger.
    let mirrored = |m: &MockUpstream| {
        m.requests()
            .iter()
            .filter_map(|r| r.body_json())
            .filter(|v| v["model"] == "model-mirror")
            .count()
    };
    m.wait_until(std::time::Duration::from_secs(20), |m| mirrored(m) >= 900)
        .await
        .map_err(|e| anyhow::anyhow!("shadow copies: {e}"))?;
    // The last copies may still be on their way back.
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let copies = mirrored(&m);
    assert!((900..=1100).contains(&copies), "{copies} of {n} mirrored");
    gw.gw.state.ledger.flush();
    let conn = rusqlite::Connection::open(gw.dir.path().join("switchyard.db"))?;
    let (rows, deployment, cost, primaries): (i64, String, i64, i64) = conn.query_row(
        "SELECT COUNT(*), MIN(deployment), MIN(cost_micros),
                (SELECT COUNT(*) FROM requests p WHERE p.shadow = 0
                   AND p.request_id IN (SELECT request_id FROM requests WHERE shadow = 1))
         FROM requests WHERE shadow = 1 AND status = 200",
        [],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
    )?;
    assert_eq!(rows as usize, copies, "one ledger row per shadow call");
    assert_eq!(deployment, "mirror");
    assert!(cost > 0, "the shadow's own prices");
    assert_eq!(primaries, rows, "each beside its primary's row");
    Ok(())
}

/// `rules`: a short prompt goes to the `small` tier, a long one (or one with tools) to
/// the default `large` tier, cheapest first, with the other tier as fallback.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_route_by_prompt_size_and_tools() -> anyhow::Result<()> {
    let m = mock_upstream().await?;
    let gw = gateway(
        &m,
        "rules",
        "{ rules = [{ max_prompt_tokens = 50, tools = false, prefer = [\"small\"] }], default = [\"large\"], then = \"cost\" }",
        &[
            ("big", "tags = [\"large\"]\ninput_price = 5.0\n"),
            ("tiny", "tags = [\"small\"]\ninput_price = 0.1\n"),
        ],
    )
    .await?;
    let ask = |text: String, tools: bool| {
        let mut body =
            serde_json::json!({"model": "demo", "messages": [{"role": "user", "content": text}]});
        if tools {
            body["tools"] = serde_json::json!([{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]);
        }
        let addr = gw.gw.addr;
        async move {
            let (status, headers, body) = post_json(addr, "/v1/chat/completions", &body).await?;
            anyhow::ensure!(
                status == 200,
                "{status}: {}",
                String::from_utf8_lossy(&body)
            );
            anyhow::Ok(headers["x-switchyard-deployment"].to_str()?.to_owned())
        }
    };
    assert_eq!(ask("hi".into(), false).await?, "tiny");
    assert_eq!(ask("word ".repeat(400), false).await?, "big");
    assert_eq!(ask("hi".into(), true).await?, "big");
    // The preferred tier down: the other serves.
    m.set_knobs("model-tiny", Some("status-503"));
    assert_eq!(ask("hi".into(), false).await?, "big");
    Ok(())
}
