//! `/admin/*`: operator views. Never shows secrets or plugin config values.

use hyper::{Response, StatusCode};

use super::{AppState, Body, json};

/// `GET /admin/plugins`: every plugin file's status, the active version and the reason
/// the newest file was rejected, if it was.
pub(super) fn plugins(state: &AppState) -> Response<Body> {
    let statuses = state.registry.statuses();
    json(StatusCode::OK, &serde_json::json!({ "plugins": statuses }))
}
