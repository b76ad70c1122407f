//! `POST /v1/chat/completions` and `GET /v1/models`: the OpenAI-compatible edge. Parses
//! and authenticates, runs the pipeline, and renders JSON or SSE.

use std::panic::AssertUnwindSafe;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use futures_util::FutureExt;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderMap, HeaderValue};
use hyper::{Request, Response, StatusCode};

use super::{AppState, Body, error_response, json, openai};
use crate::canonical::Caller;
use crate::error::GatewayError;
use crate::pipeline::{self, Reply, RequestCtx};

/// Largest request body accepted.
const MAX_REQUEST: usize = 8 << 20;
/// SSE events buffered between the stream task and a slow client.
const STREAM_BUFFER: usize = 32;

/// The credentials of `Authorization: Bearer KEY`. The scheme is case-insensitive
/// (RFC 9110 §11.1), so `bearer KEY` works too.
pub(super) fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(hyper::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, key) = v.trim_start().split_once(' ')?;
    let key = key.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !key.is_empty()).then_some(key)
}

/// An authenticated caller and the key it presented (scrubbed from upstream answers).
pub(super) struct Authenticated {
    pub caller: Caller,
    pub key: Option<std::sync::Arc<str>>,
}

/// Checks `Authorization: Bearer` against the configured client keys; with none
/// configured every caller is anonymous.
pub(super) fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Authenticated, GatewayError> {
    let live = state.live.load();
    let keys = &live.config.client_keys;
    if keys.is_empty() {
        return Ok(Authenticated {
            caller: Caller {
                key_id: None,
                team: None,
                tags: vec![],
            },
            key: None,
        });
    }
    let presented = bearer(headers).ok_or(GatewayError::Unauthorized)?;
    keys.iter()
        .enumerate()
        .find(|(_, k)| constant_time_eq(k.expose().as_bytes(), presented.as_bytes()))
        .map(|(i, k)| Authenticated {
            caller: Caller {
                key_id: Some(format!("key-{i}")),
                team: None,
                tags: vec![],
            },
            key: Some(k.shared()),
        })
        .ok_or(GatewayError::Unauthorized)
}

/// Compares without an early exit, so timing does not reveal a key's prefix.
pub(super) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `GET /v1/models`: the public models.
pub(super) fn models(state: &AppState) -> Response<Body> {
    let live = state.live.load();
    let data: Vec<serde_json::Value> = live
        .config
        .models
        .keys()
        .map(|m| serde_json::json!({"id": m, "object": "model", "created": 0, "owned_by": "switchyard"}))
        .collect();
    json(
        StatusCode::OK,
        &serde_json::json!({"object": "list", "data": data}),
    )
}

async fn read_body(body: Incoming) -> Result<Bytes, GatewayError> {
    let limited = http_body_util::Limited::new(body, MAX_REQUEST);
    match limited.collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(GatewayError::TooLarge(MAX_REQUEST))
        }
        Err(e) => Err(GatewayError::BadRequest(crate::error::BadRequest {
            param: None,
            message: format!("could not read the body: {e}"),
        })),
    }
}

pub(super) async fn handle(
    state: &AppState,
    req: Request<Incoming>,
    request_id: &str,
) -> Response<Body> {
    match run(state, req, request_id).await {
        Ok(r) => r,
        Err(e) => {
            if e.status().is_server_error() {
                tracing::warn!(request_id, error = %e, detail = ?e, "request failed");
            }
            error_response(&e, request_id)
        }
    }
}

async fn run(
    state: &AppState,
    req: Request<Incoming>,
    request_id: &str,
) -> Result<Response<Body>, GatewayError> {
    let started = Instant::now();
    let auth = authenticate(state, req.headers())?;
    let body = read_body(req.into_body()).await?;
    state.wait_started().await?;
    let parsed = openai::parse_request(&body).map_err(GatewayError::BadRequest)?;
    let live = state.live.load_full();
    let model = live.config.models.get(&parsed.request.model).cloned();
    let model = model.ok_or_else(|| GatewayError::ModelNotFound(parsed.request.model.clone()))?;
    let mut ctx = RequestCtx::new(
        request_id.to_owned(),
        auth.caller,
        auth.key,
        model,
        state.registry.snapshot(),
        live,
        state.client.clone(),
        started,
    );
    let reply = pipeline::run(&mut ctx, parsed.request).await?;
    ctx.release_retired();
    Ok(match reply {
        Reply::Complete {
            mut response,
            served,
        } => {
            if response.id.is_empty() {
                response.id = format!("chatcmpl-{request_id}");
            }
            if response.created == 0 {
                response.created = now();
            }
            let mut resp = json(StatusCode::OK, &openai::response_json(&response));
            annotate(&mut resp, &served.deployment, served.attempts, &ctx);
            resp
        }
        Reply::Stream(stream) => {
            let (tx, body) = Body::channel(STREAM_BUFFER);
            let mut resp = Response::new(body);
            let h = resp.headers_mut();
            h.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
            h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            annotate(
                &mut resp,
                &stream.served.deployment,
                stream.served.attempts,
                &ctx,
            );
            let request_id = request_id.to_owned();
            let include_usage = parsed.include_usage;
            let (first_sent, first) = tokio::sync::oneshot::channel();
            tokio::spawn(async move {
                let (tx, request_id) = (tx, request_id);
                let pumped =
                    AssertUnwindSafe(pump(*stream, &tx, include_usage, &request_id, first_sent))
                        .catch_unwind()
                        .await;
                if let Err(panic) = pumped {
                    let what = super::panic_text(panic.as_ref());
                    tracing::error!(%request_id, panic = %what, "stream pump panicked");
                    let event = openai::stream_error_event(
                        "internal_error",
                        "The gateway hit an internal error.",
                        &request_id,
                    );
                    let _ = tx.send(sse(&event)).await;
                }
            });
            // Answer once the first event is in the body channel, so that hyper writes
            // the head and the first event together. A head alone followed by a short
            // body and its end in one packet makes undici 6 (Node 20's `fetch`) lose a
            // client's abort and leave its read pending forever (nodejs/undici#4089).
            // The stream is primed, so this waits for no upstream byte.
            let _ = first.await;
            resp
        }
    })
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn annotate(resp: &mut Response<Body>, deployment: &str, attempts: u32, ctx: &RequestCtx) {
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(deployment) {
        h.insert("x-switchyard-deployment", v);
    }
    h.insert("x-switchyard-attempts", HeaderValue::from(attempts));
    h.insert(
        "x-switchyard-overhead-us",
        HeaderValue::from(ctx.overhead().as_micros() as u64),
    );
}

fn sse(value: &serde_json::Value) -> Bytes {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(b"data: ");
    // Serialising a Value cannot fail.
    let _ = serde_json::to_writer(&mut out, value);
    out.extend_from_slice(b"\n\n");
    Bytes::from(out)
}

/// Feeds a committed stream to the client. Ends with `[DONE]`, or with an explicit
/// error event if the upstream or a filter stops it: never a clean-looking truncation.
/// `first_sent` fires once the first event is in the channel (or is dropped if the
/// stream ends without one).
async fn pump(
    mut stream: pipeline::LiveStream,
    tx: &tokio::sync::mpsc::Sender<Bytes>,
    include_usage: bool,
    request_id: &str,
    first_sent: tokio::sync::oneshot::Sender<()>,
) {
    let created = now();
    let mut first_sent = Some(first_sent);
    loop {
        match stream.next_batch().await {
            Ok(Some(chunks)) => {
                for mut c in chunks {
                    if c.created == 0 {
                        c.created = created;
                    }
                    if c.id.is_empty() {
                        c.id = format!("chatcmpl-{request_id}");
                    }
                    if c.usage.is_some() && !include_usage {
                        // The gateway always asks upstreams for usage (to account for it);
                        // the client only gets it if it asked.
                        if c.choices.is_empty() {
                            continue;
                        }
                        c.usage = None;
                    }
                    if tx
                        .send(sse(&openai::chunk_json(&c, include_usage)))
                        .await
                        .is_err()
                    {
                        tracing::info!(%request_id, "client went away; upstream stream cancelled");
                        return;
                    }
                    if let Some(s) = first_sent.take() {
                        let _ = s.send(());
                    }
                }
            }
            Ok(None) => {
                let _ = tx.send(Bytes::from_static(b"data: [DONE]\n\n")).await;
                return;
            }
            Err(end) => {
                tracing::warn!(%request_id, code = end.code, detail = %end.detail, "stream ended early");
                let event = openai::stream_error_event(end.code, &end.message, request_id);
                let _ = tx.send(sse(&event)).await;
                return;
            }
        }
    }
}
