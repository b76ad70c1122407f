//! Streaming load generator for the benchmark harness (`tests/bench/`).
//!
//! `oha` measures a response only as a whole, so it cannot tell time to first byte from
//! time to the end of a stream. This client runs a closed loop of `"stream": true`
//! requests, one keep-alive connection per worker, and reports both, or (`--hold`) opens
//! N streams at once and says when every one of them has delivered its first byte, so
//! the harness can read the gateway's memory while they are open.
//!
//! ```text
//! stream_load URL BODY_FILE [--concurrency 64] [--duration 10] [--warmup 2]
//!             [--header "name: value"]... [--hold N]
//! ```
//! Prints one JSON object on stdout; with `--hold`, first a line `ready` once all N
//! streams are open. A stream counts as complete only with status 200 and a body that
//! ends with `data: [DONE]`.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::mpsc;

struct Args {
    url: hyper::Uri,
    body: Bytes,
    concurrency: usize,
    duration: Duration,
    warmup: Duration,
    headers: Vec<(String, String)>,
    hold: Option<usize>,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut it = std::env::args().skip(1);
    let url: hyper::Uri = it.next().context("URL missing")?.parse()?;
    let body_file = it.next().context("BODY_FILE missing")?;
    let body = Bytes::from(std::fs::read(&body_file).with_context(|| body_file.clone())?);
    let mut a = Args {
        url,
        body,
        concurrency: 64,
        duration: Duration::from_secs(10),
        warmup: Duration::from_secs(2),
        headers: Vec::new(),
        hold: None,
    };
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--concurrency" => a.concurrency = value.parse()?,
            "--duration" => a.duration = Duration::from_secs_f64(value.parse()?),
            "--warmup" => a.warmup = Duration::from_secs_f64(value.parse()?),
            "--hold" => a.hold = Some(value.parse()?),
            "--header" => {
                let (k, v) = value.split_once(':').context("header is `name: value`")?;
                a.headers.push((k.trim().to_owned(), v.trim().to_owned()));
            }
            other => bail!("unknown flag {other}"),
        }
    }
    Ok(a)
}

/// One finished stream: time to the first body byte and to the end, in microseconds.
struct Sample {
    ttfb_us: u64,
    total_us: u64,
}

async fn connect(url: &hyper::Uri) -> anyhow::Result<SendRequest<Full<Bytes>>> {
    let host = url.host().context("URL has no host")?;
    let port = url.port_u16().unwrap_or(80);
    let tcp = TcpStream::connect((host, port)).await?;
    tcp.set_nodelay(true)?;
    let (send, conn) = http1::handshake(TokioIo::new(tcp)).await?;
    tokio::spawn(conn);
    Ok(send)
}

/// Sends one streaming request and reads it to the end. `opened` fires at the first
/// body byte.
async fn one_stream(
    send: &mut SendRequest<Full<Bytes>>,
    args: &Args,
    opened: Option<&mpsc::UnboundedSender<()>>,
) -> anyhow::Result<Sample> {
    // Origin-form target (`/v1/...`): a connection made by hand does not rewrite an
    // absolute URI, and some servers refuse the absolute form.
    let path = args.url.path_and_query().map_or("/", |p| p.as_str());
    let mut req = Request::post(path)
        .header("host", args.url.authority().map_or("", |a| a.as_str()))
        .header("content-type", "application/json");
    for (k, v) in &args.headers {
        req = req.header(k, v);
    }
    let req = req.body(Full::new(args.body.clone()))?;
    send.ready().await?;
    let t0 = Instant::now();
    let resp = send.send_request(req).await?;
    let status = resp.status();
    let mut body = resp.into_body();
    let mut ttfb = None;
    // Only the tail matters for the `[DONE]` check; keep it bounded.
    let mut tail: Vec<u8> = Vec::with_capacity(256);
    while let Some(frame) = body.frame().await {
        let frame = frame?;
        if let Some(data) = frame.data_ref() {
            if data.is_empty() {
                continue;
            }
            if ttfb.is_none() {
                ttfb = Some(t0.elapsed());
                if let Some(tx) = opened {
                    let _ = tx.send(());
                }
            }
            tail.extend_from_slice(data);
            if tail.len() > 128 {
                tail.drain(..tail.len() - 64);
            }
        }
    }
    let total = t0.elapsed();
    if !status.is_success() {
        bail!("status {status}");
    }
    let text = String::from_utf8_lossy(&tail);
    if !text.trim_end().ends_with("data: [DONE]") {
        bail!("stream did not end with [DONE]");
    }
    Ok(Sample {
        ttfb_us: ttfb.unwrap_or(total).as_micros() as u64,
        total_us: total.as_micros() as u64,
    })
}

/// Closed loop until `until`; samples taken before `measure_from` are discarded.
async fn worker(
    args: std::sync::Arc<Args>,
    measure_from: Instant,
    until: Instant,
) -> (Vec<Sample>, u64, Option<String>) {
    let mut samples = Vec::new();
    let mut errors = 0u64;
    let mut first_error = None;
    let mut conn = None;
    while Instant::now() < until {
        if conn.is_none() {
            match connect(&args.url).await {
                Ok(c) => conn = Some(c),
                Err(e) => {
                    errors += 1;
                    first_error.get_or_insert_with(|| format!("connect: {e:#}"));
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            }
        }
        let Some(send) = conn.as_mut() else { continue };
        let started = Instant::now();
        let r = tokio::time::timeout_at(until.into(), one_stream(send, &args, None)).await;
        match r {
            Ok(Ok(s)) if started >= measure_from => samples.push(s),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                if started >= measure_from {
                    errors += 1;
                }
                first_error.get_or_insert_with(|| format!("{e:#}"));
                conn = None;
            }
            // Cut off by the deadline: neither a sample nor an error.
            Err(_) => break,
        }
    }
    (samples, errors, first_error)
}

fn percentiles(mut v: Vec<u64>) -> serde_json::Value {
    if v.is_empty() {
        return serde_json::Value::Null;
    }
    v.sort_unstable();
    let at = |q: f64| v[((v.len() as f64 * q) as usize).min(v.len() - 1)];
    serde_json::json!({"p50": at(0.50), "p90": at(0.90), "p99": at(0.99), "max": v[v.len() - 1]})
}

async fn closed_loop(args: Args) -> anyhow::Result<serde_json::Value> {
    let start = Instant::now();
    let measure_from = start + args.warmup;
    let until = measure_from + args.duration;
    let n = args.concurrency;
    let args = std::sync::Arc::new(args);
    let tasks: Vec<_> = (0..n)
        .map(|_| tokio::spawn(worker(args.clone(), measure_from, until)))
        .collect();
    let (mut samples, mut errors, mut first_error) = (Vec::new(), 0, None);
    for t in tasks {
        let (s, e, fe) = t.await?;
        samples.extend(s);
        errors += e;
        first_error = first_error.or(fe);
    }
    let secs = args.duration.as_secs_f64();
    Ok(serde_json::json!({
        "completed": samples.len(),
        "errors": errors,
        "first_error": first_error,
        "duration_s": secs,
        "streams_per_s": samples.len() as f64 / secs,
        "ttfb_us": percentiles(samples.iter().map(|s| s.ttfb_us).collect()),
        "total_us": percentiles(samples.iter().map(|s| s.total_us).collect()),
    }))
}

/// Opens `n` streams at once, says `ready` when all have their first byte, and waits for
/// them to end.
async fn hold(args: Args, n: usize) -> anyhow::Result<serde_json::Value> {
    let args = std::sync::Arc::new(args);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut tasks = Vec::with_capacity(n);
    for _ in 0..n {
        let (args, tx) = (args.clone(), tx.clone());
        tasks.push(tokio::spawn(async move {
            let mut send = connect(&args.url).await?;
            one_stream(&mut send, &args, Some(&tx)).await
        }));
    }
    drop(tx);
    let t0 = Instant::now();
    let mut opened = 0;
    while opened < n {
        match tokio::time::timeout(Duration::from_secs(60), rx.recv()).await {
            Ok(Some(())) => opened += 1,
            _ => break,
        }
    }
    let open_after = t0.elapsed();
    let mut out = tokio::io::stdout();
    out.write_all(format!("ready {opened}\n").as_bytes())
        .await?;
    out.flush().await?;
    let (mut ok, mut errors, mut first_error) = (0, 0, None);
    for t in tasks {
        match t.await? {
            Ok(_) => ok += 1,
            Err(e) => {
                errors += 1;
                first_error.get_or_insert_with(|| format!("{e:#}"));
            }
        }
    }
    Ok(serde_json::json!({
        "opened": opened,
        "open_after_ms": open_after.as_millis() as u64,
        "completed": ok,
        "errors": errors,
        "first_error": first_error,
    }))
}

fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    // One thread: the harness gives the load generator a core it shares with the upstream.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let result = rt.block_on(async move {
        match args.hold {
            Some(n) => hold(args, n).await,
            None => closed_loop(args).await,
        }
    })?;
    println!("{result}");
    Ok(())
}
