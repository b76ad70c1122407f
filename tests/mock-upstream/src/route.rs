//! One request's path through the mock:
//! read body ─► record ─► route ─► parse (provider) ─► knobs (slow, status) ─► answer
//! (whole JSON, or an SSE script played on its own task).
//!
//! Invariant: every provider request is recorded before any byte of the answer is sent,
//! so a test that sees no record knows the request never arrived.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use hyper::http::request::Parts;
use hyper::{HeaderMap, Method, Request, Response, StatusCode};
use serde_json::Value;

use crate::answer::{Answer, Prompt};
use crate::behavior::{self, Behavior};
use crate::body::MockBody;
use crate::sse::{self, truncate_json};
use crate::{Recorded, State, anthropic, gemini, openai};

/// Larger request bodies are refused; a mock has no use for them and tests stay bounded.
const MAX_BODY: usize = 32 * 1024 * 1024;

/// A request the mock refuses before any knob applies, rendered in the provider's shape.
#[derive(Debug)]
pub(crate) struct Reject {
    status: u16,
    message: String,
}

impl Reject {
    pub(crate) fn bad_request(message: &str) -> Reject {
        Reject {
            status: 400,
            message: message.to_owned(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Provider {
    OpenAi,
    Anthropic,
    Gemini,
}

impl Provider {
    /// The provider whose error shape suits a request no route matched.
    fn closest(path: &str, headers: &HeaderMap) -> Provider {
        if path.starts_with("/v1beta/") || path.contains(":generateContent") {
            Provider::Gemini
        } else if path.starts_with("/v1/messages") || headers.contains_key("anthropic-version") {
            Provider::Anthropic
        } else {
            Provider::OpenAi
        }
    }

    fn reject(self, r: &Reject) -> Response<MockBody> {
        let body = match self {
            Provider::OpenAi => openai::error_body(&r.message, "invalid_request_error", None),
            Provider::Anthropic => anthropic::error_body(r.status, &r.message),
            Provider::Gemini => gemini::error_body(r.status, &r.message),
        };
        json(status(r.status), &body)
    }

    fn simulated(self, code: u16) -> Response<MockBody> {
        let body = match self {
            Provider::OpenAi => openai::simulated_error(code),
            Provider::Anthropic => anthropic::simulated_error(code),
            Provider::Gemini => gemini::simulated_error(code),
        };
        let mut resp = json(status(code), &body);
        if code == 429 {
            resp.headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from_static("1"));
        }
        resp
    }

    fn whole(self, prompt: &Prompt, answer: &Answer, n: u64) -> Value {
        match self {
            Provider::OpenAi => openai::whole(prompt, answer, n),
            Provider::Anthropic => anthropic::whole(prompt, answer, n),
            Provider::Gemini => gemini::whole(prompt, answer, n),
        }
    }

    fn script(self, prompt: &Prompt, answer: &Answer, n: u64) -> sse::Script {
        match self {
            Provider::OpenAi => openai::script(prompt, answer, n),
            Provider::Anthropic => anthropic::script(prompt, answer, n),
            Provider::Gemini => gemini::script(prompt, answer, n),
        }
    }
}

/// hyper's service entry point.
pub(crate) async fn handle(
    state: Arc<State>,
    req: Request<Incoming>,
) -> Result<Response<MockBody>, Infallible> {
    let (parts, body) = req.into_parts();
    let body = Limited::new(body, MAX_BODY)
        .collect()
        .await
        .map(|c| c.to_bytes());
    if parts.uri.path().starts_with("/__mock/") {
        let body = body.as_ref().map_or(&[][..], |b| &b[..]);
        return Ok(control(&state, &parts, body));
    }
    state.record(record(&parts, body.as_ref().map_or(&[][..], |b| &b[..])));
    let resp = match body {
        Ok(bytes) => route(&state, &parts, &bytes).await,
        Err(e) => {
            let provider = Provider::closest(parts.uri.path(), &parts.headers);
            provider.reject(&Reject::bad_request(&format!("cannot read body: {e}")))
        }
    };
    Ok(resp)
}

fn record(parts: &Parts, body: &[u8]) -> Recorded {
    Recorded {
        method: parts.method.to_string(),
        path: parts
            .uri
            .path_and_query()
            .map_or_else(|| parts.uri.path().to_owned(), |p| p.as_str().to_owned()),
        headers: parts
            .headers
            .iter()
            .map(|(k, v)| {
                let v = String::from_utf8_lossy(v.as_bytes()).into_owned();
                (k.as_str().to_owned(), v)
            })
            .collect(),
        body: body.to_vec(),
    }
}

async fn route(state: &Arc<State>, parts: &Parts, body: &Bytes) -> Response<MockBody> {
    let path = parts.uri.path();
    let post = parts.method == Method::POST;
    if post && matches!(path, "/v1/chat/completions" | "/chat/completions") {
        let prompt = openai::parse(body);
        return turn(state, Provider::OpenAi, parts, prompt).await;
    }
    if post && path == "/v1/messages" {
        let prompt = anthropic::parse(&parts.headers, body);
        return turn(state, Provider::Anthropic, parts, prompt).await;
    }
    if parts.method == Method::GET && matches!(path, "/v1/models" | "/models") {
        return json(StatusCode::OK, &openai::models());
    }
    if let Some((model, method)) = gemini::target(path).filter(|_| post) {
        let sse = parts
            .uri
            .query()
            .is_some_and(|q| q.split('&').any(|kv| kv == "alt=sse"));
        let prompt = match method {
            "generateContent" => gemini::parse(&model, false, body),
            "streamGenerateContent" if sse => gemini::parse(&model, true, body),
            // Without alt=sse Gemini streams one JSON array; the mock only speaks SSE.
            "streamGenerateContent" => Err(Reject::bad_request(
                "mock upstream: streamGenerateContent needs ?alt=sse",
            )),
            _ => return not_found(parts),
        };
        return turn(state, Provider::Gemini, parts, prompt).await;
    }
    not_found(parts)
}

fn not_found(parts: &Parts) -> Response<MockBody> {
    let path = parts.uri.path();
    let r = Reject {
        status: 404,
        message: format!("Invalid URL ({} {path})", parts.method),
    };
    Provider::closest(path, &parts.headers).reject(&r)
}

/// Answers one provider request, applying the knobs in the order a real failure would
/// show them: validation, then latency, then status, then the answer.
async fn turn(
    state: &Arc<State>,
    provider: Provider,
    parts: &Parts,
    prompt: Result<Prompt, Reject>,
) -> Response<MockBody> {
    let prompt = match prompt {
        Ok(p) => p,
        Err(r) => return provider.reject(&r),
    };
    let behavior = match parts.headers.get(behavior::HEADER) {
        Some(v) => Behavior::parse(&String::from_utf8_lossy(v.as_bytes())),
        None => match state.knobs_for(&prompt.model) {
            Some(spec) => Behavior::parse(&spec),
            None => Behavior::parse(&prompt.model),
        },
    };
    if let Some(d) = behavior.slow {
        tokio::time::sleep(d).await;
    }
    let key = behavior.echo_key.then(|| credential(parts)).flatten();
    if let Some(code) = behavior.status {
        if let Some(key) = &key {
            let message = format!("Incorrect API key provided: {key}.");
            return provider.reject(&Reject {
                status: code,
                message,
            });
        }
        return provider.simulated(code);
    }
    let n = state.next_id();
    let answer = Answer::choose(&behavior, &prompt);
    let mut prompt = prompt;
    if behavior.no_usage {
        // llama.cpp's server: no usage chunk even when the client asks for one.
        prompt.include_usage = false;
    }
    if prompt.stream {
        let script = provider.script(&prompt, &answer, n);
        let script = if behavior.malformed {
            script.malformed()
        } else {
            script
        };
        let script = match &key {
            Some(key) => script.failing(&format!("internal failure while serving key {key}")),
            None => script,
        };
        return sse::respond(script, &behavior, state.streams.clone());
    }
    let mut whole = provider.whole(&prompt, &answer, n);
    if behavior.no_usage
        && let Some(o) = whole.as_object_mut()
    {
        o.remove("usage");
        o.remove("usageMetadata");
    }
    let whole = whole.to_string();
    if behavior.malformed {
        return json_text(StatusCode::OK, truncate_json(&whole).to_owned());
    }
    json_text(StatusCode::OK, whole)
}

/// The credential a request carried, wherever its provider puts it.
fn credential(parts: &Parts) -> Option<String> {
    let h = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    h("authorization")
        .map(|v| v.trim_start_matches("Bearer ").to_owned())
        .or_else(|| h("x-api-key"))
        .or_else(|| h("x-goog-api-key"))
        .or_else(|| h("api-key"))
}

/// `/__mock/*`: what tests and operators use to inspect and steer the mock. Never
/// recorded. `PUT /__mock/knobs/MODEL` (body: knobs such as `slow-200ms`) makes requests
/// for MODEL behave so until `DELETE /__mock/knobs/MODEL`.
fn control(state: &State, parts: &Parts, body: &[u8]) -> Response<MockBody> {
    if let Some(model) = parts.uri.path().strip_prefix("/__mock/knobs/") {
        let spec = String::from_utf8_lossy(body);
        match parts.method {
            Method::PUT => state.set_knobs(model, Some(spec.trim())),
            Method::DELETE => state.set_knobs(model, None),
            _ => return not_found(parts),
        }
        let mut resp = Response::new(MockBody::full(Bytes::new()));
        *resp.status_mut() = StatusCode::NO_CONTENT;
        return resp;
    }
    match (&parts.method, parts.uri.path()) {
        (&Method::GET, "/__mock/requests") => json(StatusCode::OK, &to_value(&state.requests())),
        (&Method::DELETE, "/__mock/requests") => {
            state.clear();
            let mut resp = Response::new(MockBody::full(Bytes::new()));
            *resp.status_mut() = StatusCode::NO_CONTENT;
            resp
        }
        (&Method::GET, "/__mock/streams") => {
            json(StatusCode::OK, &to_value(&state.streams.snapshot()))
        }
        _ => not_found(parts),
    }
}

fn to_value<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

fn status(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

fn json(status: StatusCode, value: &Value) -> Response<MockBody> {
    json_text(status, value.to_string())
}

fn json_text(status: StatusCode, text: String) -> Response<MockBody> {
    let mut resp = Response::new(MockBody::full(text));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}
