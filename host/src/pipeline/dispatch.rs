//! `dispatch`: tries the ranked deployments in order until one answers. A deployment
//! that refuses the connection, times out, answers 429 or 5xx, sends an unreadable
//! answer, or (streaming) breaks before its first content reaches the client is skipped
//! for the next one; the client only sees which one served it.

use std::sync::Arc;
use std::time::Instant;

use hyper::body::Incoming;

use crate::canonical::{ChatRequest, ChatResponse, ErrorKind, Header, PluginError};
use crate::config::Deployment;
use crate::error::{GatewayError, UpstreamFailure};
use crate::sandbox::AdapterInstance;
use crate::sandbox::adapter_api::{self, StreamFraming, UpstreamResponse};
use crate::stats::CallGuard;
use crate::upstream::{UpstreamError, framing, read_body};

use super::stream::LiveStream;
use super::{RequestCtx, Served};

/// Largest non-streamed upstream body accepted.
const MAX_BODY: usize = 32 << 20;

pub(super) fn wit_deployment(d: &Deployment) -> adapter_api::Deployment {
    adapter_api::Deployment {
        name: d.name.clone(),
        base_url: d.base_url.clone(),
        model_id: d.model_id.clone(),
        settings: d.settings_json.clone(),
    }
}

fn headers_of(resp: &hyper::Response<Incoming>) -> Vec<Header> {
    resp.headers()
        .iter()
        .map(|(n, v)| Header {
            name: n.as_str().to_owned(),
            value: v.as_bytes().to_vec(),
        })
        .collect()
}

/// Providers' rate-limit headers (OpenAI and compatible servers, Anthropic), as
/// (remaining, limit) requests.
fn rate_limit(resp: &hyper::Response<Incoming>) -> Option<(f64, f64)> {
    let num = |name: &str| {
        resp.headers()
            .get(name)?
            .to_str()
            .ok()?
            .trim()
            .parse::<f64>()
            .ok()
    };
    let pairs = [
        (
            "x-ratelimit-remaining-requests",
            "x-ratelimit-limit-requests",
        ),
        (
            "anthropic-ratelimit-requests-remaining",
            "anthropic-ratelimit-requests-limit",
        ),
    ];
    pairs.iter().find_map(|(r, l)| Some((num(r)?, num(l)?)))
}

/// Feeds what the response head says about the provider into the live statistics.
fn observe(ctx: &RequestCtx, d: &Deployment, resp: &hyper::Response<Incoming>) {
    if let (Some((remaining, limit)), Some(s)) = (rate_limit(resp), ctx.live.stats.get(&d.name)) {
        s.record_headroom(remaining, limit);
    }
}

fn retry_after(resp: &hyper::Response<Incoming>) -> Option<u64> {
    resp.headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.trim().parse().ok())
}

/// What one attempt produced.
enum Attempt<T> {
    Done(T),
    /// Try the next deployment.
    Next(UpstreamFailure),
}

/// A prepared attempt: the adapter instance and its request.
struct Prepared {
    deployment: Arc<Deployment>,
    wit: adapter_api::Deployment,
    adapter: AdapterInstance,
    request: adapter_api::UpstreamRequest,
}

/// Instantiates the deployment's adapter and builds the upstream request, or says why
/// this deployment is skipped for the next one.
fn prepare(
    ctx: &RequestCtx,
    d: &Arc<Deployment>,
    req: &ChatRequest,
) -> Result<Attempt<Prepared>, GatewayError> {
    let skip = |reason: String| {
        Ok(Attempt::Next(UpstreamFailure::Unavailable {
            deployment: d.name.clone(),
            reason,
        }))
    };
    let Some(plugin) = ctx.plugins.get(d.adapter.as_str()) else {
        return skip(format!("adapter plugin `{}` is not loaded", d.adapter));
    };
    let mut adapter = match plugin.adapter() {
        Ok(a) => a,
        Err(e) => return skip(e.to_string()),
    };
    let wit = wit_deployment(d);
    match adapter.build_request(&wit, req) {
        Err(fault) => skip(fault.to_string()),
        Ok(Err(PluginError {
            kind: ErrorKind::InvalidRequest,
            message,
        })) => Err(GatewayError::AdapterRejected {
            deployment: d.name.clone(),
            message,
        }),
        Ok(Err(PluginError {
            kind: ErrorKind::Unsupported,
            message,
        })) => Ok(Attempt::Next(UpstreamFailure::Unsupported {
            deployment: d.name.clone(),
            reason: message,
        })),
        Ok(Err(e)) => skip(format!("adapter `{}`: {}", d.adapter, e.message)),
        Ok(Ok(request)) => Ok(Attempt::Done(Prepared {
            deployment: d.clone(),
            wit,
            adapter,
            request,
        })),
    }
}

fn transport(d: &Deployment, e: UpstreamError) -> UpstreamFailure {
    match e {
        UpstreamError::Timeout(t) => UpstreamFailure::Timeout {
            deployment: d.name.clone(),
            after: t,
        },
        other => UpstreamFailure::Transport {
            deployment: d.name.clone(),
            reason: other.to_string(),
        },
    }
}

/// Sends and times the call; the elapsed wait counts as upstream time.
async fn send(
    ctx: &mut RequestCtx,
    d: &Deployment,
    up: &adapter_api::UpstreamRequest,
) -> Result<hyper::Response<Incoming>, UpstreamError> {
    let t = Instant::now();
    let r = ctx.client.send(d, up).await;
    ctx.upstream_time += t.elapsed();
    if let Ok(resp) = &r {
        observe(ctx, d, resp);
    }
    r
}

/// Handles a non-2xx head: reads the body, lets the adapter extract the provider's
/// message, and says whether the next deployment should be tried.
async fn upstream_error(
    ctx: &mut RequestCtx,
    p: &mut Prepared,
    resp: hyper::Response<Incoming>,
    guard: CallGuard,
) -> Result<UpstreamFailure, GatewayError> {
    let status = resp.status().as_u16();
    let retry = retry_after(&resp);
    let headers = headers_of(&resp);
    let t = Instant::now();
    let body = read_body(resp.into_body(), p.deployment.timeouts.idle, MAX_BODY)
        .await
        .unwrap_or_default();
    let body = ctx.scrub_for(&p.deployment).vec(body);
    ctx.upstream_time += t.elapsed();
    let message = match p.adapter.parse_response(
        &p.wit,
        &UpstreamResponse {
            status,
            headers,
            body,
        },
    ) {
        Ok(Err(e)) => e.message,
        _ => format!("upstream answered HTTP {status}"),
    };
    let d = p.deployment.name.clone();
    if status == 429 || status >= 500 || status == 408 {
        guard.failed();
        Ok(UpstreamFailure::Status {
            deployment: d,
            status,
            message,
            retry_after: retry,
        })
    } else {
        // The provider refused the request itself; another deployment would too.
        guard.succeeded();
        Err(GatewayError::UpstreamRejected {
            deployment: d,
            status,
            message,
        })
    }
}

/// Sends a prepared attempt and deals with a failed call or a non-2xx head, the same way
/// for complete and streamed requests: the call is timed from here, and anything but a
/// 2xx head is either "try the next deployment" or a request the provider refused.
async fn open(
    ctx: &mut RequestCtx,
    p: &mut Prepared,
) -> Result<Attempt<(hyper::Response<Incoming>, CallGuard)>, GatewayError> {
    let guard = ctx.live.stats.start(&p.deployment.name);
    let resp = match send(ctx, &p.deployment, &p.request).await {
        Ok(r) => r,
        Err(e) => {
            guard.failed();
            return Ok(Attempt::Next(transport(&p.deployment, e)));
        }
    };
    if !resp.status().is_success() {
        return upstream_error(ctx, p, resp, guard).await.map(Attempt::Next);
    }
    Ok(Attempt::Done((resp, guard)))
}

async fn attempt_complete(
    ctx: &mut RequestCtx,
    mut p: Prepared,
) -> Result<Attempt<ChatResponse>, GatewayError> {
    let (resp, guard) = match open(ctx, &mut p).await? {
        Attempt::Done(answered) => answered,
        Attempt::Next(f) => return Ok(Attempt::Next(f)),
    };
    let status = resp.status().as_u16();
    let headers = headers_of(&resp);
    let t = Instant::now();
    let body = read_body(resp.into_body(), p.deployment.timeouts.idle, MAX_BODY).await;
    ctx.upstream_time += t.elapsed();
    let body = match body {
        Ok(b) => ctx.scrub_for(&p.deployment).vec(b),
        Err(e) => {
            guard.failed();
            return Ok(Attempt::Next(transport(&p.deployment, e)));
        }
    };
    ctx.billed = true;
    let outcome = match p.adapter.parse_response(
        &p.wit,
        &UpstreamResponse {
            status,
            headers,
            body,
        },
    ) {
        Ok(Ok(r)) => {
            guard.succeeded();
            Ok(Attempt::Done(r))
        }
        Ok(Err(e)) => {
            guard.failed();
            Ok(Attempt::Next(UpstreamFailure::BadResponse {
                deployment: p.deployment.name.clone(),
                reason: e.message,
            }))
        }
        Err(fault) => {
            guard.failed();
            Ok(Attempt::Next(UpstreamFailure::BadResponse {
                deployment: p.deployment.name.clone(),
                reason: fault.to_string(),
            }))
        }
    };
    ctx.retire(p.adapter);
    outcome
}

/// Non-streaming: the first deployment that answers.
pub(super) async fn first_success(
    ctx: &mut RequestCtx,
    candidates: &[Arc<Deployment>],
    req: &ChatRequest,
) -> Result<(ChatResponse, Served), GatewayError> {
    let mut failures = Vec::new();
    for (i, d) in candidates.iter().enumerate() {
        ctx.tried.push(d.name.clone());
        let p = match prepare(ctx, d, req)? {
            Attempt::Done(p) => p,
            Attempt::Next(f) => {
                failures.push(f);
                continue;
            }
        };
        match attempt_complete(ctx, p).await? {
            Attempt::Done(r) => {
                log_fallbacks(ctx, &failures);
                return Ok((
                    r,
                    Served {
                        deployment: d.name.clone(),
                        attempts: i as u32 + 1,
                    },
                ));
            }
            Attempt::Next(f) => failures.push(f),
        }
    }
    Err(GatewayError::AllFailed {
        failures,
        billed: ctx.billed,
    })
}

/// Sends a copy of the request to `d` in the background and discards the answer (the
/// router's shadow deployment: to evaluate a deployment on real traffic). Its outcome
/// still feeds that deployment's statistics.
pub(super) fn mirror(ctx: &RequestCtx, d: Arc<Deployment>, req: &ChatRequest) {
    use crate::accounting::ShadowOutcome;
    let mut shadow = ctx.fork();
    let ledger = ctx.shadow_ledger.clone();
    let model = ctx.model.name.clone();
    let mut req = req.clone();
    req.stream = false;
    tokio::spawn(async move {
        let started = Instant::now();
        let request_id = shadow.request_id.clone();
        let failed = |f: &dyn std::fmt::Display| {
            tracing::info!(request_id = %request_id, deployment = %d.name, failure = %f, "shadow call failed");
            ShadowOutcome::Failed {
                status: 502,
                code: "upstream_error",
            }
        };
        let outcome = match prepare(&shadow, &d, &req) {
            Ok(Attempt::Done(p)) => match attempt_complete(&mut shadow, p).await {
                Ok(Attempt::Done(r)) => ShadowOutcome::Answered(
                    r.usage.as_ref().map(crate::governance::Counted::reported),
                ),
                Ok(Attempt::Next(f)) => failed(&f),
                Err(e) => failed(&e),
            },
            Ok(Attempt::Next(f)) => failed(&f),
            Err(e) => failed(&e),
        };
        if let Some(ledger) = ledger {
            ledger.record(&request_id, &model, &d, started, outcome);
        }
    });
}

fn log_fallbacks(ctx: &RequestCtx, failures: &[UpstreamFailure]) {
    for f in failures {
        tracing::info!(request_id = %ctx.request_id, failure = %f, "fell back to the next deployment");
    }
}

/// Streaming: the first deployment whose stream produces content.
pub(super) async fn first_stream(
    ctx: &mut RequestCtx,
    candidates: &[Arc<Deployment>],
    req: &ChatRequest,
) -> Result<LiveStream, GatewayError> {
    let mut failures = Vec::new();
    for (i, d) in candidates.iter().enumerate() {
        ctx.tried.push(d.name.clone());
        let mut p = match prepare(ctx, d, req)? {
            Attempt::Done(p) => p,
            Attempt::Next(f) => {
                failures.push(f);
                continue;
            }
        };
        let (resp, guard) = match open(ctx, &mut p).await? {
            Attempt::Done(answered) => answered,
            Attempt::Next(f) => {
                failures.push(f);
                continue;
            }
        };
        let framing = match p.request.streaming {
            Some(StreamFraming::Ndjson) => framing::Framing::Ndjson,
            _ => framing::Framing::Sse,
        };
        let status = resp.status().as_u16();
        let headers = headers_of(&resp);
        let decoder = match p.adapter.open_stream(&p.wit, status, &headers) {
            Ok(h) => h,
            Err(fault) => {
                guard.failed();
                failures.push(UpstreamFailure::BadResponse {
                    deployment: d.name.clone(),
                    reason: fault.to_string(),
                });
                continue;
            }
        };
        ctx.billed = true;
        let served = Served {
            deployment: d.name.clone(),
            attempts: i as u32 + 1,
        };
        let mut stream = LiveStream::new(
            p.deployment.clone(),
            p.adapter,
            decoder,
            resp.into_body(),
            framing,
            guard,
            served,
        )
        .scrubbing(ctx.scrub_for(d));
        let t = Instant::now();
        let primed = stream.prime().await;
        ctx.upstream_time += t.elapsed().saturating_sub(stream.plugin_time);
        match primed {
            Ok(()) => {
                log_fallbacks(ctx, &failures);
                return Ok(stream);
            }
            Err(f) => {
                stream.fail();
                failures.push(f);
            }
        }
    }
    Err(GatewayError::AllFailed {
        failures,
        billed: ctx.billed,
    })
}
