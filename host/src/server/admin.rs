//! `/admin/*`: operator views. Never shows secrets or plugin config values.
//!
//! Access: with no keys configured at all (loopback-only development) the views are
//! open. Once any client or admin key is configured they need an admin key
//! (`[auth] admin_keys`), presented as `Authorization: Bearer`: none or an unknown one is
//! a 401, a client key a 403. `/metrics` follows the same rule.

use hyper::header::HeaderMap;
use hyper::{Response, StatusCode};

use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};

use super::chat::{bearer, constant_time_eq};
use super::{AppState, Body, error_response, json};
use crate::error::{BadRequest, GatewayError};
use crate::ledger::report::{self, GroupBy};

/// Lets the request through if it may see `/admin/*` (see the module doc).
pub(super) fn authorize(state: &AppState, headers: &HeaderMap) -> Result<(), GatewayError> {
    let live = state.live.load();
    let cfg = &live.config;
    if cfg.admin_keys.is_empty() && !state.governance.required() {
        return Ok(());
    }
    let presented = bearer(headers).ok_or(GatewayError::Unauthorized)?;
    if cfg
        .admin_keys
        .iter()
        .any(|k| constant_time_eq(k.expose().as_bytes(), presented.as_bytes()))
    {
        return Ok(());
    }
    match state.governance.authenticate(Some(presented)) {
        Ok(Some(_)) | Err(GatewayError::KeyExpired) => Err(GatewayError::NotAdmin),
        _ => Err(GatewayError::Unauthorized),
    }
}

/// `GET /metrics`: Prometheus text.
pub(super) fn metrics(state: &AppState) -> Response<Body> {
    let c = state.ledger.counters();
    state
        .metrics
        .set_ledger(c.queued as i64, c.written, c.dropped);
    let live = state.live.load();
    for name in live.config.deployments.keys() {
        if let Some(s) = live.stats.get(name) {
            state.metrics.circuit(name).set(s.circuit());
        }
    }
    let mut resp = Response::new(Body::full(bytes::Bytes::from(state.metrics.encode())));
    resp.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static(crate::metrics::CONTENT_TYPE),
    );
    resp
}

/// `GET /admin/usage?since=24h&by=key`: the ledger report as JSON (the same as
/// `switchyard usage --format json`). Rows recorded so far are flushed first, so the
/// report includes every request answered before it.
pub(super) async fn usage(
    state: &AppState,
    req: hyper::Request<Incoming>,
    request_id: &str,
) -> Response<Body> {
    match usage_report(state, &req).await {
        Ok(text) => {
            let mut resp = Response::new(Body::full(bytes::Bytes::from(text)));
            resp.headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            resp
        }
        Err(e) => error_response(&e, request_id),
    }
}

async fn usage_report(
    state: &AppState,
    req: &hyper::Request<Incoming>,
) -> Result<String, GatewayError> {
    if req.method() != hyper::Method::GET {
        return Err(GatewayError::MethodNotAllowed {
            method: req.method().to_string(),
            path: req.uri().path().to_owned(),
        });
    }
    authorize(state, req.headers())?;
    let bad = |param: &str, message: String| {
        GatewayError::BadRequest(BadRequest {
            param: Some(param.to_owned()),
            message,
        })
    };
    let (mut since, mut by) = ("24h".to_owned(), GroupBy::Key);
    for (k, v) in form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes()) {
        match k.as_ref() {
            "since" => since = v.into_owned(),
            "by" => by = v.parse().map_err(|e: String| bad("by", e))?,
            other => return Err(bad(other, format!("unknown parameter `{other}`"))),
        }
    }
    let since_ms =
        report::parse_since(&since, crate::state::now_ms()).map_err(|e| bad("since", e))?;
    let ledger = state.ledger.clone();
    let path = state.live.load().config.state_path.clone();
    tokio::task::spawn_blocking(move || {
        ledger.flush();
        let conn = crate::state::open(&path)?;
        report::usage(&conn, since_ms, by).map(|r| report::render_json(&r))
    })
    .await
    .map_err(|e| GatewayError::Internal(e.to_string()))?
    .map_err(|e| GatewayError::Internal(e.to_string()))
}
/// `GET /admin/plugins`: every plugin file's status, the active version and the reason
/// the newest file was rejected, if it was.
pub(super) fn plugins(state: &AppState) -> Response<Body> {
    let statuses = state.registry.statuses();
    // The generation changes with every published plugin set, so a poller can tell a
    // reload happened even when names and statuses look the same.
    let generation = state.registry.snapshot().generation;
    json(
        StatusCode::OK,
        &serde_json::json!({ "generation": generation, "plugins": statuses }),
    )
}

/// `GET /admin/config`: the serving config generation, its models and deployments
/// (never keys), and why the last edit was rejected, if it was.
pub(super) fn config(state: &AppState) -> Response<Body> {
    let live = state.live.load();
    let deployments: Vec<serde_json::Value> = live
        .config
        .deployments
        .values()
        .map(|d| {
            serde_json::json!({
                "name": d.name, "adapter": d.adapter, "base_url": d.base_url, "model": d.model_id,
                "tags": d.tags, "available": d.unavailable().is_none(), "unavailable_reason": d.unavailable(),
            })
        })
        .collect();
    let models: Vec<serde_json::Value> = live
        .config
        .models
        .values()
        .map(|m| {
            serde_json::json!({
                "name": m.name, "router": m.router, "filters": m.filters,
                "deployments": m.deployments.iter().map(|d| d.name.clone()).collect::<Vec<_>>(),
            })
        })
        .collect();
    json(
        StatusCode::OK,
        &serde_json::json!({
            "generation": live.generation,
            "last_error": state.config_error(),
            "models": models,
            "deployments": deployments,
        }),
    )
}
