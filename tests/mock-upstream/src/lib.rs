//! A mock LLM provider that speaks the real wire formats of OpenAI Chat Completions,
//! Anthropic Messages and Google Gemini, streaming included, so that Switchyard's adapter
//! plugins can be tested end to end without provider keys.
//!
//! Behaviour is chosen by the model name (or the `x-mock-behavior` header), e.g.
//! `mock-echo`, `mock-status-429`, `mock-slow-200ms`, `mock-ttft-300ms`,
//! `mock-gap-100ms`, `mock-stream-cut-3`, `mock-malformed`, `mock-tool-call`, `mock-words-500`,
//! `mock-echo-key` (repeats the request's credential in an error), `mock-no-usage`
//! (reports no token usage, as llama.cpp streams), combined
//! with `+`. Every provider request is recorded; `GET /__mock/requests` and
//! `GET /__mock/streams` expose the record and the stream counters over HTTP.
//!
//! Routes: `POST /v1/chat/completions` (and `/chat/completions`), `GET /v1/models`,
//! `POST /v1/messages`, `POST /v1beta/models/{model}:generateContent`,
//! `POST /v1beta/models/{model}:streamGenerateContent?alt=sse`,
//! `GET|DELETE /__mock/requests`, `GET /__mock/streams`, `PUT|DELETE /__mock/knobs/{model}`
//! (knobs for a model name set at run time).

mod answer;
mod behavior;
mod body;
mod route;
mod sse;

mod anthropic;
mod gemini;
mod openai;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

use crate::body::StreamStats;

/// One request as the mock received it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Recorded {
    pub method: String,
    /// Path with the query string.
    pub path: String,
    /// Every header line in arrival order; names are lower case.
    pub headers: Vec<(String, String)>,
    #[serde(serialize_with = "lossy_utf8")]
    pub body: Vec<u8>,
}

impl Recorded {
    /// The first value of header `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body parsed as JSON, if it is JSON.
    pub fn body_json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

fn lossy_utf8<S: serde::Serializer>(body: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&String::from_utf8_lossy(body))
}

/// Streaming responses so far: `started` = `completed` + `client_aborted` + deliberate
/// cuts + streams still running.
#[derive(Debug, Clone, Copy, Default, serde::Serialize, PartialEq, Eq)]
pub struct StreamCounts {
    pub started: u64,
    pub completed: u64,
    pub client_aborted: u64,
}

/// State shared by every connection of one mock.
#[derive(Debug, Default)]
struct State {
    requests: Mutex<Vec<Recorded>>,
    streams: Arc<StreamStats>,
    next_id: AtomicU64,
    /// Knobs set at run time per model name, replacing the name's own.
    knobs: Mutex<std::collections::HashMap<String, String>>,
}

impl State {
    /// A poisoned lock only means a panicking test thread; the list is still usable.
    fn lock(&self) -> MutexGuard<'_, Vec<Recorded>> {
        self.requests.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn record(&self, r: Recorded) {
        self.lock().push(r);
        self.streams.changed.notify_waiters();
    }

    fn requests(&self) -> Vec<Recorded> {
        self.lock().clone()
    }

    fn clear(&self) {
        self.lock().clear();
    }

    fn knobs_for(&self, model: &str) -> Option<String> {
        let knobs = self.knobs.lock().unwrap_or_else(PoisonError::into_inner);
        knobs.get(model).cloned()
    }

    fn set_knobs(&self, model: &str, spec: Option<&str>) {
        let mut knobs = self.knobs.lock().unwrap_or_else(PoisonError::into_inner);
        match spec {
            Some(spec) => knobs.insert(model.to_owned(), spec.to_owned()),
            None => knobs.remove(model),
        };
    }

    /// Numbers response ids (`chatcmpl-mock-1`, `msg_mock_1`…) from 1.
    fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed) + 1
    }
}

/// A mock upstream serving on a background task until dropped.
pub struct MockUpstream {
    pub addr: SocketAddr,
    state: Arc<State>,
    server: JoinHandle<()>,
}

impl MockUpstream {
    /// Binds (port 0 = any free port) and serves on a spawned tokio task until dropped.
    pub async fn start(addr: SocketAddr) -> std::io::Result<MockUpstream> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State::default());
        let server = tokio::spawn(serve_with(listener, state.clone()));
        Ok(MockUpstream {
            addr,
            state,
            server,
        })
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.state.requests()
    }

    pub fn clear(&self) {
        self.state.clear();
    }

    /// Makes requests for `model` behave as `spec` (e.g. `slow-200ms`) from now on,
    /// replacing the knobs in the name; `None` restores them. A deployment whose
    /// behaviour changes while the gateway runs (slow, then recovered) is tested so.
    pub fn set_knobs(&self, model: &str, spec: Option<&str>) {
        self.state.set_knobs(model, spec);
    }

    /// Streams started, finished normally, and abandoned because the client went away.
    pub fn stream_counts(&self) -> StreamCounts {
        self.state.streams.snapshot()
    }

    /// `http://ADDR`, the base URL to configure a provider with.
    /// Waits (without polling) until `pred` holds, e.g. until a number of requests were
    /// recorded or a stream was abandoned; fails after `timeout` saying what it saw.
    pub async fn wait_until(
        &self,
        timeout: std::time::Duration,
        mut pred: impl FnMut(&MockUpstream) -> bool,
    ) -> Result<(), String> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let changed = self.state.streams.changed.notified();
            tokio::pin!(changed);
            // Registered before the check, so a change in between is not missed.
            changed.as_mut().enable();
            if pred(self) {
                return Ok(());
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return Err(format!(
                    "not reached within {timeout:?}: {} requests, streams {:?}",
                    self.requests().len(),
                    self.stream_counts()
                ));
            }
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for MockUpstream {
    fn drop(&mut self) {
        // Aborting the accept task drops its JoinSet, which aborts every connection.
        self.server.abort();
    }
}

/// Serves on an existing listener (for the CLI), forever.
pub async fn serve(listener: TcpListener) -> std::io::Result<()> {
    serve_with(listener, Arc::new(State::default())).await;
    Ok(())
}

async fn serve_with(listener: TcpListener, state: Arc<State>) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().keep_alive(true).timer(TokioTimer::new());
    builder.http2().timer(TokioTimer::new());
    // Connections live in a set owned by this task, so that stopping the task stops them.
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(x) => x,
                    Err(e) => {
                        // Out of file descriptors and the like: keep accepting after a pause.
                        tracing::warn!(error = %e, "mock upstream: accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                };
                // Without it a response written in parts waits for the peer's delayed
                // ACK (Nagle), which would distort latency measurements.
                if let Err(e) = stream.set_nodelay(true) {
                    tracing::debug!(error = %e, "mock upstream: cannot set TCP_NODELAY");
                }
                let builder = builder.clone();
                let state = state.clone();
                connections.spawn(async move {
                    let svc = service_fn(move |req| route::handle(state.clone(), req));
                    if let Err(e) = builder.serve_connection(TokioIo::new(stream), svc).await {
                        tracing::debug!(%peer, error = %e, "mock upstream: connection ended");
                    }
                });
            }
            // Reap finished connections so the set does not grow without bound.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}
