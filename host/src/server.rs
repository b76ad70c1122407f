//! The HTTP listener: accepts connections (TCP_NODELAY on each), serves HTTP/1.1 and
//! HTTP/2, gives every response an `x-request-id`, and routes to the handlers.
//!
//! Routes: `POST /v1/chat/completions` (and `/chat/completions`), `GET /v1/models` (and
//! `/models`), `GET /healthz`, `GET /readyz`, `GET /metrics`, `GET /admin/plugins`,
//! `GET /admin/config`, `GET /admin/usage`.
//!
//! Invariant: every request gets a response. A panic anywhere in a request's handling is
//! caught at the connection task and answered with an OpenAI-shaped 500; a panic in a
//! stream's pump ends the stream with an error event.
//!
//! Start-up: the listener accepts at once, so `/healthz` and `/readyz` answer while the
//! first plugin load runs; model requests that arrive then wait for it (at most
//! `START_WAIT`) instead of failing.

mod admin;
mod body;
mod chat;
pub mod openai;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use arc_swap::ArcSwap;
use bytes::Bytes;
use futures_util::FutureExt;
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

use crate::error::GatewayError;
use crate::governance::Governance;
use crate::ledger::Ledger;
use crate::live::Live;
use crate::metrics::Metrics;
use crate::plugins::Registry;
use crate::upstream::Client;

pub use body::Body;

/// State shared by every connection.
pub struct AppState {
    pub registry: Arc<Registry>,
    /// The current config generation and its deployment statistics.
    pub live: ArcSwap<Live>,
    pub client: Client,
    /// Keys, teams and their limits.
    pub governance: Arc<Governance>,
    /// The usage ledger's writer.
    pub ledger: Arc<Ledger>,
    pub metrics: Arc<Metrics>,
    /// Set once the config and the initial plugins are loaded; cleared on shutdown.
    pub ready: AtomicBool,
    /// Turns true once, when the first plugin load is done (model requests that arrive
    /// earlier wait on it).
    started: tokio::sync::watch::Sender<bool>,
    next_request_id: AtomicU64,
    boot_id: u32,
    /// Why the last config edit was rejected (for `/admin/config`); not on the
    /// request path.
    config_error: std::sync::Mutex<Option<String>>,
    /// Counts config edits handled, applied or rejected (for tests and operators that
    /// wait for an edit to land).
    config_events: tokio::sync::watch::Sender<u64>,
}

impl AppState {
    pub fn new(
        registry: Arc<Registry>,
        live: Live,
        client: Client,
        governance: Arc<Governance>,
        ledger: Arc<Ledger>,
        metrics: Arc<Metrics>,
    ) -> Arc<Self> {
        let boot_id = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos() ^ (d.as_secs() as u32))
            .unwrap_or(0);
        Arc::new(AppState {
            registry,
            live: ArcSwap::from_pointee(live),
            client,
            governance,
            ledger,
            metrics,
            ready: AtomicBool::new(false),
            started: tokio::sync::watch::Sender::new(false),
            next_request_id: AtomicU64::new(1),
            boot_id,
            config_error: std::sync::Mutex::new(None),
            config_events: tokio::sync::watch::Sender::new(0),
        })
    }

    /// Marks the first plugin load done: the gateway is ready and waiting requests go on.
    pub fn set_started(&self) {
        self.ready.store(true, Ordering::Release);
        self.started.send_replace(true);
    }

    /// Waits until the first plugin load is done, at most `START_WAIT`.
    pub(crate) async fn wait_started(&self) -> Result<(), GatewayError> {
        if *self.started.borrow() {
            return Ok(());
        }
        let mut rx = self.started.subscribe();
        match tokio::time::timeout(START_WAIT, rx.wait_for(|s| *s)).await {
            Ok(Ok(_)) => Ok(()),
            _ => Err(GatewayError::NotReady("plugins are still loading".into())),
        }
    }

    /// Records the outcome of a config edit: `None` applied, `Some(why)` rejected.
    pub fn set_config_error(&self, e: Option<String>) {
        *self
            .config_error
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = e;
        self.config_events.send_modify(|n| *n += 1);
    }

    /// Changes each time a config edit was applied or rejected.
    pub fn config_events(&self) -> tokio::sync::watch::Receiver<u64> {
        self.config_events.subscribe()
    }

    pub fn config_error(&self) -> Option<String> {
        self.config_error
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn request_id(&self) -> String {
        format!(
            "req_{:08x}{:012x}",
            self.boot_id,
            self.next_request_id.fetch_add(1, Ordering::Relaxed)
        )
    }
}

/// How long a model request that arrives during start-up waits for the first plugin
/// load before it gets a 503.
pub const START_WAIT: std::time::Duration = std::time::Duration::from_secs(15);

/// How long in-flight requests (streams included) may take to finish after shutdown
/// begins; what is still running then is cut.
pub const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(25);

/// Serves until `shutdown` turns true, then stops accepting, lets connections finish
/// their in-flight requests (keep-alive off) for up to `SHUTDOWN_GRACE`, and returns.
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<()> {
    let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.wait_for(|stop| *stop) => break,
        };
        let (stream, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                // Out of file descriptors and the like: keep accepting after a pause.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        // Without it a keep-alive response written in two parts waits ~40 ms for the
        // peer's delayed ACK (Nagle).
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
        let state = state.clone();
        let builder = builder.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let svc = service_fn(move |req| {
                let state = state.clone();
                async move {
                    let request_id = state.request_id();
                    let resp = guarded(handle(&state, req, &request_id), &request_id).await;
                    Ok::<_, Infallible>(resp)
                }
            });
            let conn = builder.serve_connection(TokioIo::new(stream), svc);
            if let Err(e) = watcher.watch(conn).await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    state.ready.store(false, Ordering::Release);
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(grace = ?SHUTDOWN_GRACE, "requests still running at the end of the grace period were cut");
    }
    Ok(())
}

/// Binds `addr` (port 0 picks a free port) and returns the listener and its address.
pub async fn bind(addr: SocketAddr) -> std::io::Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    Ok((listener, local))
}

/// Runs a request's handler; a panic in it becomes an OpenAI-shaped 500 instead of a
/// reset connection.
async fn guarded(
    handler: impl std::future::Future<Output = Response<Body>>,
    request_id: &str,
) -> Response<Body> {
    AssertUnwindSafe(handler)
        .catch_unwind()
        .await
        .unwrap_or_else(|panic| {
            let what = panic_text(panic.as_ref());
            tracing::error!(%request_id, panic = %what, "request handler panicked");
            let mut r = error_response(&GatewayError::Internal(what), request_id);
            set_request_id(&mut r, request_id);
            r
        })
}

/// The text of a caught panic, for the log.
pub(crate) fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic with a non-text payload".into())
}

fn set_request_id(resp: &mut Response<Body>, request_id: &str) {
    if let Ok(v) = HeaderValue::from_str(request_id) {
        resp.headers_mut().insert("x-request-id", v);
    }
}

async fn handle(state: &AppState, req: Request<Incoming>, request_id: &str) -> Response<Body> {
    let path = req.uri().path();
    let mut resp = if path == "/admin/usage" {
        admin::usage(state, req, request_id).await
    } else if path == "/v1/chat/completions" || path == "/chat/completions" {
        if req.method() == Method::POST {
            chat::handle(state, req, request_id).await
        } else {
            error_response(
                &GatewayError::MethodNotAllowed {
                    method: req.method().to_string(),
                    path: path.to_owned(),
                },
                request_id,
            )
        }
    } else {
        match route(state, &req) {
            Ok(r) => r,
            Err(e) => error_response(&e, request_id),
        }
    };
    set_request_id(&mut resp, request_id);
    resp
}

fn route(state: &AppState, req: &Request<Incoming>) -> Result<Response<Body>, GatewayError> {
    let path = req.uri().path();
    let get_only = |f: &dyn Fn() -> Response<Body>| {
        if req.method() == Method::GET || req.method() == Method::HEAD {
            Ok(f())
        } else {
            Err(GatewayError::MethodNotAllowed {
                method: req.method().to_string(),
                path: path.to_owned(),
            })
        }
    };
    match path {
        "/healthz" => get_only(&|| json(StatusCode::OK, &serde_json::json!({"status": "ok"}))),
        "/readyz" => {
            if state.ready.load(Ordering::Acquire) {
                get_only(&|| {
                    json(
                        StatusCode::OK,
                        &serde_json::json!({"status": "ready", "plugins": state.registry.snapshot().len()}),
                    )
                })
            } else {
                Err(GatewayError::NotReady("plugins are still loading".into()))
            }
        }
        "/admin/plugins" => {
            admin::authorize(state, req.headers())?;
            get_only(&|| admin::plugins(state))
        }
        "/admin/config" => {
            admin::authorize(state, req.headers())?;
            get_only(&|| admin::config(state))
        }
        "/v1/models" | "/models" => {
            let auth = chat::authenticate(state, req.headers())?;
            get_only(&|| chat::models(state, &auth))
        }
        "/metrics" => {
            admin::authorize(state, req.headers())?;
            get_only(&|| admin::metrics(state))
        }
        _ => Err(GatewayError::UnknownRoute {
            method: req.method().to_string(),
            path: path.to_owned(),
        }),
    }
}

pub(crate) fn json(status: StatusCode, value: &serde_json::Value) -> Response<Body> {
    let body = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
    let mut resp = Response::new(Body::full(Bytes::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

pub(crate) fn error_response(e: &GatewayError, request_id: &str) -> Response<Body> {
    let mut resp = json(e.status(), &openai::error_body(e, request_id));
    if let Some(secs) = e.retry_after() {
        resp.headers_mut()
            .insert("retry-after", HeaderValue::from(secs));
    }
    if e.no_retry() {
        resp.headers_mut()
            .insert("x-should-retry", HeaderValue::from_static("false"));
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn a_panicking_handler_answers_an_openai_shaped_500() {
        let resp = guarded(
            async {
                if std::hint::black_box(true) {
                    panic!("internal detail /etc/secret");
                }
                json(StatusCode::OK, &serde_json::json!({}))
            },
            "req_1",
        )
        .await;
        assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(resp.headers()["x-request-id"], "req_1");
        let body = resp.into_body().collect().await.expect("body").to_bytes();
        let v: serde_json::Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(v["error"]["code"], "internal_error");
        assert_eq!(v["error"]["type"], "server_error");
        let message = v["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains("req_1"), "{message}");
        assert!(!message.contains("/etc/secret"), "{message}");
    }
}
