//! Watches the plugins folder and reloads changed files without a restart.
//!
//! One task owns reloading (as Zed's extension host does): file events are debounced
//! per file (a burst of writes becomes one reload, and a file still being written is
//! read once it has been quiet for the debounce period), then each file is loaded on a
//! blocking thread and published. A file that fails to load is reported and the last
//! good version keeps serving; a deleted file unloads its plugin.
//! The debounced folder watch itself is `util::fswatch`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::inspect::sha256_hex;
use super::{Loader, PluginName, Registry};
use crate::util::fswatch;

/// Keeps the watch alive; dropping it stops watching.
pub type WatchHandle = fswatch::FolderWatch;

/// Whether a path in the folder is a plugin file (`NAME.wasm`, not hidden).
fn is_plugin_file(path: &Path) -> bool {
    let hidden = path
        .file_name()
        .and_then(|n| n.to_str())
        .is_none_or(|n| n.starts_with('.'));
    !hidden && path.extension().is_some_and(|e| e == "wasm")
}

/// The plugin files in `dir`, sorted by name.
fn plugin_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if is_plugin_file(&path) {
            paths.push(path);
        }
    }
    paths.sort();
    Ok(paths)
}

/// Loads every plugin in `dir` (used at start-up, before serving).
pub async fn load_all(
    dir: &Path,
    loader: &Arc<Loader>,
    registry: &Arc<Registry>,
) -> std::io::Result<()> {
    for_each_file(dir, loader, registry, false).await
}

/// Starts watching `dir`. Changes are applied after `debounce` of quiet per file.
pub fn watch(
    dir: &Path,
    loader: Arc<Loader>,
    registry: Arc<Registry>,
    debounce: Duration,
) -> notify::Result<WatchHandle> {
    fswatch::watch(dir, is_plugin_file, debounce, move |path: PathBuf| {
        let (loader, registry) = (loader.clone(), registry.clone());
        async move { reload(&path, &loader, &registry).await }
    })
}

/// Applies the current state of one file: load it, or unload it if it is gone.
pub async fn reload(path: &Path, loader: &Arc<Loader>, registry: &Arc<Registry>) {
    reload_file(path, loader, registry, false).await
}

/// Reloads every plugin in `dir` even if unchanged (their limits or settings changed).
pub async fn reload_all(
    dir: &Path,
    loader: &Arc<Loader>,
    registry: &Arc<Registry>,
) -> std::io::Result<()> {
    for_each_file(dir, loader, registry, true).await
}

async fn for_each_file(
    dir: &Path,
    loader: &Arc<Loader>,
    registry: &Arc<Registry>,
    force: bool,
) -> std::io::Result<()> {
    for path in plugin_files(dir)? {
        reload_file(&path, loader, registry, force).await;
    }
    Ok(())
}

async fn reload_file(path: &Path, loader: &Arc<Loader>, registry: &Arc<Registry>, force: bool) {
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default()
        .to_owned();
    let Some(name) = PluginName::parse(&stem) else {
        tracing::warn!(file = %path.display(), "ignoring plugin file: names are lowercase letters, digits and dashes");
        return;
    };
    let bytes = match tokio::fs::read(path).await {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if registry.active_sha256(&name).is_some() {
                tracing::info!(plugin = %name, "plugin file deleted; unloading");
            }
            registry.remove(&name);
            return;
        }
        Err(e) => {
            tracing::warn!(plugin = %name, error = %e, "cannot read plugin file; keeping the serving version");
            registry.reject(name, None, format!("cannot read {}: {e}", path.display()));
            return;
        }
    };
    let sha = sha256_hex(&bytes);
    if !force && registry.active_sha256(&name).as_deref() == Some(sha.as_str()) {
        registry.clear_rejection(&name);
        return;
    }
    if !force && registry.rejected_sha256(&name).as_deref() == Some(sha.as_str()) {
        // Already rejected this exact content; don't recompile it on every event.
        return;
    }
    let started = Instant::now();
    let loader2 = loader.clone();
    let name2 = name.clone();
    let result = tokio::task::spawn_blocking(move || loader2.load(name2, &bytes)).await;
    match result {
        Ok(Ok(plugin)) => {
            tracing::info!(
                plugin = %name, kind = %plugin.kind, wit = %plugin.wit_version, sha256 = %plugin.sha256,
                source = ?plugin.source, ms = started.elapsed().as_millis() as u64, "plugin loaded"
            );
            registry.activate(plugin);
        }
        Ok(Err(e)) => {
            let serving = registry.active_sha256(&name).is_some();
            tracing::warn!(plugin = %name, error = %e, keeps_serving_previous = serving, "plugin rejected");
            registry.reject(name, Some(sha), e.to_string());
        }
        Err(e) => {
            tracing::error!(plugin = %name, error = %e, "plugin load task failed");
            registry.reject(name, Some(sha), format!("load task failed: {e}"));
        }
    }
}
