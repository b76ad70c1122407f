//! Applies edits of the config file without a restart. An edit that does not validate
//! is logged and recorded (`/admin/config`) and the previous config keeps serving.
//! Deployment statistics carry over for deployments that keep their name; changed
//! plugin limits or settings reload the plugins (from the compiled cache).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::config::Config;
use crate::live::Live;
use crate::plugins::{Loader, Registry, watcher};
use crate::server::AppState;
use crate::util::fswatch;

/// Keeps the watch alive; dropping it stops watching.
pub type ConfigWatch = fswatch::FolderWatch;

/// Watches `path` (through its folder, so editors that replace the file are seen).
pub fn watch(
    path: &Path,
    state: Arc<AppState>,
    loader: Arc<Loader>,
    registry: Arc<Registry>,
    debounce: Duration,
) -> notify::Result<ConfigWatch> {
    let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let dir = path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let name = path.file_name().map(|n| n.to_owned());
    let is_config = move |p: &Path| p.file_name() == name.as_deref();
    fswatch::watch(&dir, is_config, debounce, move |_| {
        let (path, state, loader, registry) = (
            path.clone(),
            state.clone(),
            loader.clone(),
            registry.clone(),
        );
        async move { apply(&path, &state, &loader, &registry).await }
    })
}

/// Loads the file and, if it is valid, makes it the serving config.
pub async fn apply(path: &Path, state: &AppState, loader: &Arc<Loader>, registry: &Arc<Registry>) {
    let cfg = match Config::load(path) {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(config = %path.display(), error = %e, "config edit rejected; the previous config keeps serving");
            state.metrics.config_reload(false);
            state.ledger.audit(
                "config",
                "config.reject",
                &path.display().to_string(),
                &e.to_string(),
            );
            state.set_config_error(Some(e.to_string()));
            return;
        }
    };
    let cfg = Arc::new(cfg);
    let (gov, for_keys) = (state.governance.clone(), cfg.clone());
    match tokio::task::spawn_blocking(move || gov.reload(&for_keys)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "config edit rejected: cannot rebuild the key table");
            state.metrics.config_reload(false);
            state.set_config_error(Some(format!("keys: {e}")));
            return;
        }
        Err(e) => {
            tracing::warn!(error = %e, "key table rebuild failed");
            return;
        }
    }
    let current = state.live.load_full();
    for (what, changed) in [
        ("server.listen", cfg.listen != current.config.listen),
        ("plugins.dir", cfg.plugins_dir != current.config.plugins_dir),
        ("sandbox", cfg.sandbox != current.config.sandbox),
    ] {
        if changed {
            tracing::warn!(key = what, "this setting changes only on restart");
        }
    }
    let policy_changed = loader.set_policy(cfg.policy.clone());
    if cfg.state_path != current.config.state_path {
        tracing::warn!(key = "state.path", "this setting changes only on restart");
    }
    let plugins_dir = current.config.plugins_dir.clone();
    let live = Live::new(cfg, Some(&current), &state.metrics);
    let generation = live.generation;
    state.live.store(Arc::new(live));
    state.metrics.config_reload(true);
    state.ledger.audit(
        "config",
        "config.apply",
        &path.display().to_string(),
        &format!("generation {generation}"),
    );
    state.set_config_error(None);
    tracing::info!(config = %path.display(), generation, "config reloaded");
    if policy_changed && let Err(e) = watcher::reload_all(&plugins_dir, loader, registry).await {
        tracing::warn!(error = %e, "cannot reload plugins after a limits change");
    }
}
