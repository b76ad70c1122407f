//! Applies edits of the config file without a restart. An edit that does not validate
//! is logged and recorded (`/admin/config`) and the previous config keeps serving.
//! Deployment statistics carry over for deployments that keep their name; changed
//! plugin limits or settings reload the plugins (from the compiled cache).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::{EventKind, RecursiveMode, Watcher};
use tokio::sync::mpsc;

use super::Config;
use crate::pipeline::Live;
use crate::plugins::{Loader, Registry, watcher};
use crate::server::AppState;

/// Keeps the watch alive; dropping it stops watching.
pub struct ConfigWatch {
    _watcher: notify::RecommendedWatcher,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ConfigWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

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
    let (tx, mut rx) = mpsc::unbounded_channel::<()>();
    let mut w = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Ok(event) = event
            && !matches!(event.kind, EventKind::Access(_))
            && event.paths.iter().any(|p| p.file_name() == name.as_deref())
        {
            let _ = tx.send(());
        }
    })?;
    w.watch(&dir, RecursiveMode::NonRecursive)?;
    let task = tokio::spawn(async move {
        while rx.recv().await.is_some() {
            // Debounce: wait until the file has been quiet.
            loop {
                match tokio::time::timeout(debounce, rx.recv()).await {
                    Ok(Some(())) => continue,
                    Ok(None) => return,
                    Err(_) => break,
                }
            }
            apply(&path, &state, &loader, &registry).await;
        }
    });
    Ok(ConfigWatch { _watcher: w, task })
}

/// Loads the file and, if it is valid, makes it the serving config.
pub async fn apply(path: &Path, state: &AppState, loader: &Arc<Loader>, registry: &Arc<Registry>) {
    let cfg = match Config::load(path) {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(config = %path.display(), error = %e, "config edit rejected; the previous config keeps serving");
            state.set_config_error(Some(e.to_string()));
            return;
        }
    };
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
    let plugins_dir = current.config.plugins_dir.clone();
    let live = Live::new(Arc::new(cfg), Some(&current));
    let generation = live.generation;
    state.live.store(Arc::new(live));
    state.set_config_error(None);
    tracing::info!(config = %path.display(), generation, "config reloaded");
    if policy_changed && let Err(e) = watcher::reload_all(&plugins_dir, loader, registry).await {
        tracing::warn!(error = %e, "cannot reload plugins after a limits change");
    }
}
