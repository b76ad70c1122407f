//! `/admin/*`: operator views. Never shows secrets or plugin config values.

use hyper::{Response, StatusCode};

use super::{AppState, Body, json};

/// `GET /admin/plugins`: every plugin file's status, the active version and the reason
/// the newest file was rejected, if it was.
pub(super) fn plugins(state: &AppState) -> Response<Body> {
    let statuses = state.registry.statuses();
    json(StatusCode::OK, &serde_json::json!({ "plugins": statuses }))
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
