//! `/admin/*`: operator views. Never shows secrets or plugin config values.
//!
//! Access: with no keys configured at all (loopback-only development) the views are
//! open. Once any client or admin key is configured they need an admin key
//! (`[auth] admin_keys`), presented as `Authorization: Bearer`: none or an unknown one is
//! a 401, a client key a 403. `/metrics` and `/dashboard` will follow the same rule.

use hyper::header::HeaderMap;
use hyper::{Response, StatusCode};

use super::chat::{bearer, constant_time_eq};
use super::{AppState, Body, json};
use crate::error::GatewayError;

/// Lets the request through if it may see `/admin/*` (see the module doc).
pub(super) fn authorize(state: &AppState, headers: &HeaderMap) -> Result<(), GatewayError> {
    let live = state.live.load();
    let cfg = &live.config;
    if cfg.admin_keys.is_empty() && cfg.client_keys.is_empty() {
        return Ok(());
    }
    let presented = bearer(headers).ok_or(GatewayError::Unauthorized)?;
    let is = |keys: &[crate::config::Secret]| {
        keys.iter()
            .any(|k| constant_time_eq(k.expose().as_bytes(), presented.as_bytes()))
    };
    if is(&cfg.admin_keys) {
        Ok(())
    } else if is(&cfg.client_keys) {
        Err(GatewayError::NotAdmin)
    } else {
        Err(GatewayError::Unauthorized)
    }
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
