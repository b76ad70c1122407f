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
use crate::accounting::{Ending, Tally};
use crate::canonical::{Caller, ChatChunk};
use crate::config::Deployment;
use crate::error::{GatewayError, Limit};
use crate::governance::{Counted, Governance, KeyEntry, tokens};
use crate::ledger::{Payload, StreamOutcome};
use crate::metrics::DenyKind;
use crate::pipeline::{self, Reply, RequestCtx};
use std::sync::Arc;

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

/// An authenticated caller, its key entry (`None` when no keys exist) and the key it
/// presented (scrubbed from upstream answers).
pub(super) struct Authenticated {
    pub caller: Caller,
    pub entry: Option<Arc<KeyEntry>>,
    pub key: Option<Arc<str>>,
}

/// Looks the presented key up; with no keys at all every caller is anonymous
/// (the gateway then serves loopback only).
pub(super) fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Authenticated, GatewayError> {
    let presented = bearer(headers);
    let entry = state.governance.authenticate(presented).inspect_err(|_| {
        state.metrics.auth_failure();
    })?;
    Ok(match entry {
        None => Authenticated {
            caller: Caller {
                key_id: None,
                team: None,
                tags: vec![],
            },
            entry: None,
            key: None,
        },
        Some(e) => Authenticated {
            caller: Caller {
                key_id: Some(e.name.clone()),
                team: e.team.clone(),
                tags: e.tags.clone(),
            },
            key: presented.map(Arc::from),
            entry: Some(e),
        },
    })
}

/// Compares without an early exit, so timing does not reveal a key's prefix.
pub(super) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `GET /v1/models`: the public models this caller may use.
pub(super) fn models(state: &AppState, auth: &Authenticated) -> Response<Body> {
    let live = state.live.load();
    let data: Vec<serde_json::Value> = live
        .config
        .models
        .keys()
        .filter(|m| auth.entry.as_ref().is_none_or(|k| Governance::allows(k, m)))
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
    let started = Instant::now();
    let auth = match authenticate(state, req.headers()) {
        Ok(a) => a,
        Err(e) => return error_response(&e, request_id),
    };
    let mut tally = Tally::new(
        state.ledger.clone(),
        state.metrics.clone(),
        request_id,
        auth.entry.as_deref(),
        started,
    );
    let result = run(state, req, request_id, auth, &mut tally, started).await;
    let headers = tally.rate_headers;
    let mut resp = match result {
        Ok(r) => r,
        Err(e) => {
            if e.status().is_server_error() {
                tracing::warn!(request_id, error = %e, detail = ?e, "request failed");
            }
            let code = e.code();
            tally.finish(Ending {
                status: e.status().as_u16(),
                error_code: Some(&code),
                ..Ending::default()
            });
            error_response(&e, request_id)
        }
    };
    headers.apply(resp.headers_mut());
    resp
}

async fn run(
    state: &AppState,
    req: Request<Incoming>,
    request_id: &str,
    auth: Authenticated,
    tally: &mut Tally,
    started: Instant,
) -> Result<Response<Body>, GatewayError> {
    let body = read_body(req.into_body()).await?;
    state.wait_started().await?;
    let mut parsed = openai::parse_request(&body).map_err(GatewayError::BadRequest)?;
    let live = state.live.load_full();
    let model = live.config.models.get(&parsed.request.model).cloned();
    let model = model.ok_or_else(|| GatewayError::ModelNotFound(parsed.request.model.clone()))?;
    tally.model(
        &model.name,
        parsed.request.stream,
        live.route_metrics.get(&model.name).cloned(),
    );
    if let Some(key) = &auth.entry {
        match state.governance.admit(key, &model, &mut parsed.request) {
            Ok(a) => tally.admitted(a),
            Err(refusal) => {
                tally.rate_headers = refusal.headers;
                if let Some(kind) = deny_kind(&refusal.error) {
                    state.metrics.denied(kind);
                }
                return Err(refusal.error);
            }
        }
    }
    let key_entry = auth.entry.clone();
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
    ctx.keep_filtered = ctx.live.config.ledger.store_payloads;
    ctx.shadow_ledger = Some(crate::accounting::ShadowLedger {
        ledger: state.ledger.clone(),
        key: key_entry,
    });
    let prompt_tokens = tally.admission().and_then(|a| a.prompt_tokens);
    let counting = Counting {
        body: body.clone(),
        prompt: prompt_tokens,
    };
    let outcome = pipeline::run(&mut ctx, parsed.request).await;
    tally.pipeline(
        std::mem::take(&mut ctx.tried),
        std::mem::take(&mut ctx.notes),
    );
    // The request as it left the gateway (filters applied), for `store_payloads`.
    let stored_request = ctx
        .filtered
        .take()
        .map(|r| openai::request_json(&r).to_string());
    if let Some(request) = &stored_request {
        tally.payload(Payload {
            request: request.clone(),
            response: None,
        });
    }
    let reply = outcome?;
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
            let deployment = ctx.live.config.deployments.get(&served.deployment).cloned();
            let usage = match &response.usage {
                Some(u) => Counted::reported(u),
                None => {
                    // The upstream reported nothing: count, and tell the client too.
                    let c = counting.count(deployment.as_deref(), Some(&response), 0);
                    response.usage = Some(c.to_usage());
                    c
                }
            };
            let body = openai::response_json(&response);
            if let Some(request) = stored_request {
                tally.payload(Payload {
                    request,
                    response: Some(body.to_string()),
                });
            }
            let mut resp = json(StatusCode::OK, &body);
            annotate(&mut resp, &served.deployment, served.attempts, &ctx);
            state.metrics.overhead(ctx.overhead());
            tally.detach().finish(Ending {
                status: 200,
                usage: Some(usage),
                deployment: deployment.as_deref(),
                ..Ending::default()
            });
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
            // A stream's overhead is what the gateway added before its first event.
            state.metrics.overhead(ctx.overhead());
            let deployment = ctx
                .live
                .config
                .deployments
                .get(&stream.served.deployment)
                .cloned();
            let account = StreamAccount {
                allowance: tally.admission().and_then(|a| a.output_allowance),
                tally: tally.detach(),
                deployment,
                counting,
                output: String::new(),
                output_tokens: 0,
                usage: None,
                transcript: stored_request.map(|request| (request, String::new())),
            };
            let request_id = request_id.to_owned();
            let include_usage = parsed.include_usage;
            let (first_sent, first) = tokio::sync::oneshot::channel();
            tokio::spawn(async move {
                let (tx, request_id) = (tx, request_id);
                let pumped = AssertUnwindSafe(pump(
                    *stream,
                    &tx,
                    include_usage,
                    &request_id,
                    first_sent,
                    account,
                ))
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

fn deny_kind(e: &GatewayError) -> Option<DenyKind> {
    Some(match e {
        GatewayError::ModelNotAllowed(_) => DenyKind::Model,
        GatewayError::RateLimited {
            limit: Limit::Requests,
            ..
        } => DenyKind::Rpm,
        GatewayError::RateLimited { .. } => DenyKind::Tpm,
        GatewayError::BudgetExceeded { .. } => DenyKind::Budget,
        _ => return None,
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

/// Counts the usage an upstream did not report. It keeps the request body (a
/// reference, not a copy), so the prompt is parsed and counted again only for the
/// rare upstream that reports nothing, not on every request.
struct Counting {
    body: Bytes,
    /// Already counted at admission.
    prompt: Option<u32>,
}

impl Counting {
    fn count(
        &self,
        d: Option<&Deployment>,
        response: Option<&crate::canonical::ChatResponse>,
        streamed_output: u32,
    ) -> Counted {
        let model = d.map_or("", |d| d.model_id.as_str());
        let prompt = self.prompt.unwrap_or_else(|| {
            openai::parse_request(&self.body)
                .map(|p| tokens::count_request(model, &p.request))
                .unwrap_or(0)
        });
        Counted {
            prompt,
            completion: streamed_output + response.map_or(0, |r| tokens::count_response(model, r)),
            estimated: true,
            ..Counted::default()
        }
    }
}

/// A stream's usage as it goes: what the upstream reported, or the text to count.
struct StreamAccount {
    tally: Tally,
    deployment: Option<Arc<Deployment>>,
    counting: Counting,
    /// Output tokens the budget reservation covers; the stream is cut past it.
    allowance: Option<u32>,
    /// Output text, kept only until the upstream reports usage.
    output: String,
    /// Output tokens counted so far (only with an allowance).
    output_tokens: u32,
    usage: Option<Counted>,
    /// With `store_payloads`: the stored request and the answer's text so far.
    transcript: Option<(String, String)>,
}

impl StreamAccount {
    fn model_id(&self) -> &str {
        self.deployment
            .as_deref()
            .map_or("", |d| d.model_id.as_str())
    }

    /// Notes a chunk's usage and text; false once the output passes the allowance.
    fn observe(&mut self, c: &ChatChunk) -> bool {
        if let Some(u) = &c.usage {
            self.usage = Some(Counted::reported(u));
            self.output = String::new();
        }
        if c.choices
            .iter()
            .any(|d| d.content.is_some() || !d.tool_calls.is_empty())
        {
            self.tally.first_token();
        }
        if let Some((_, text)) = &mut self.transcript {
            for t in c.choices.iter().filter_map(|d| d.content.as_deref()) {
                text.push_str(t);
            }
        }
        if let Some(allowance) = self.allowance {
            self.output_tokens += tokens::count_chunk(self.model_id(), c);
            return self.output_tokens <= allowance;
        }
        if self.usage.is_none() {
            for d in &c.choices {
                for t in [&d.content, &d.reasoning].into_iter().flatten() {
                    self.output.push_str(t);
                }
                for t in &d.tool_calls {
                    self.output.push_str(&t.arguments);
                }
            }
        }
        true
    }

    /// The usage to bill: reported, or counted from what was sent.
    fn usage(&self) -> Counted {
        if let Some(u) = self.usage {
            return u;
        }
        let output = if self.allowance.is_some() {
            self.output_tokens
        } else {
            tokens::count_text(self.model_id(), &self.output)
        };
        self.counting
            .count(self.deployment.as_deref(), None, output)
    }

    fn finish(mut self, outcome: StreamOutcome, error_code: Option<&str>) {
        let usage = self.usage();
        if let Some((request, text)) = self.transcript.take() {
            let answer = serde_json::json!({"role": "assistant", "content": text});
            self.tally.payload(Payload {
                request,
                response: Some(answer.to_string()),
            });
        }
        self.tally.finish(Ending {
            status: 200,
            error_code,
            usage: Some(usage),
            deployment: self.deployment.as_deref(),
            stream: Some(outcome),
        });
    }
}

/// Feeds a committed stream to the client. Ends with `[DONE]`, or with an explicit
/// error event if the upstream or a filter stops it, or its budget runs out: never a
/// clean-looking truncation. `first_sent` fires once the first event is in the
/// channel (or is dropped if the stream ends without one).
async fn pump(
    mut stream: pipeline::LiveStream,
    tx: &tokio::sync::mpsc::Sender<Bytes>,
    include_usage: bool,
    request_id: &str,
    first_sent: tokio::sync::oneshot::Sender<()>,
    mut account: StreamAccount,
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
                    if !account.observe(&c) {
                        tracing::info!(%request_id, "stream cut: its output passed what the budget reserved");
                        let event = openai::stream_error_event(
                            "budget_exceeded",
                            "The budget does not cover more output, so the stream was stopped.",
                            request_id,
                        );
                        let _ = tx.send(sse(&event)).await;
                        account.finish(StreamOutcome::BudgetExceeded, Some("budget_exceeded"));
                        return;
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
                        account.finish(StreamOutcome::ClientGone, Some("client_gone"));
                        return;
                    }
                    if let Some(s) = first_sent.take() {
                        let _ = s.send(());
                    }
                }
            }
            Ok(None) => {
                if include_usage && account.usage.is_none() {
                    // The upstream sent no usage (llama.cpp streams): the client asked
                    // for it, so it gets the host's count.
                    let usage = account.usage();
                    let chunk = ChatChunk {
                        id: format!("chatcmpl-{request_id}"),
                        model: account.model_id().to_owned(),
                        created,
                        choices: vec![],
                        usage: Some(usage.to_usage()),
                    };
                    let _ = tx.send(sse(&openai::chunk_json(&chunk, true))).await;
                }
                let _ = tx.send(Bytes::from_static(b"data: [DONE]\n\n")).await;
                account.finish(StreamOutcome::Completed, None);
                return;
            }
            Err(end) => {
                tracing::warn!(%request_id, code = %end.code, detail = %end.detail, "stream ended early");
                let event = openai::stream_error_event(&end.code, &end.message, request_id);
                let _ = tx.send(sse(&event)).await;
                account.finish(StreamOutcome::Broken, Some(&end.code));
                return;
            }
        }
    }
}
