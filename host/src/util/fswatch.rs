//! A debounced watch of one folder, shared by the plugin folder and the config file.
//!
//! Written here rather than taken from `notify-debouncer-full` because the debounce must
//! be per path and feed an async task (as Zed's extension host does): a burst of writes
//! becomes one call, and a file still being written is handed over once it has been
//! quiet for the debounce period. It is a map of deadlines.

use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use notify::event::{AccessKind, AccessMode, ModifyKind};
use notify::{EventKind, RecursiveMode, Watcher};
use tokio::sync::mpsc;

/// Keeps the watch alive; dropping it stops watching.
pub struct FolderWatch {
    _watcher: notify::RecommendedWatcher,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FolderWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Whether an event can change what a file holds. Reads are excluded: a loader's own
/// read of a file would otherwise trigger another load, forever.
fn changes_content(kind: &EventKind) -> bool {
    match kind {
        EventKind::Create(_) | EventKind::Remove(_) | EventKind::Any | EventKind::Other => true,
        EventKind::Modify(m) => !matches!(m, ModifyKind::Metadata(_)),
        EventKind::Access(a) => matches!(a, AccessKind::Close(AccessMode::Write)),
    }
}

/// Watches `dir` (not recursively). Each path `wanted` accepts is handed to `apply` once
/// it has been quiet for `debounce`; calls run one at a time, in one task.
pub fn watch<W, A, F>(
    dir: &Path,
    wanted: W,
    debounce: Duration,
    mut apply: A,
) -> notify::Result<FolderWatch>
where
    W: Fn(&Path) -> bool + Send + 'static,
    A: FnMut(PathBuf) -> F + Send + 'static,
    F: Future<Output = ()> + Send,
{
    let (tx, mut rx) = mpsc::unbounded_channel::<PathBuf>();
    let what = dir.display().to_string();
    let mut watcher =
        notify::recommended_watcher(move |event: notify::Result<notify::Event>| match event {
            Ok(event) if changes_content(&event.kind) => {
                for path in event.paths.into_iter().filter(|p| wanted(p)) {
                    // The receiver only goes away when the watch is dropped.
                    let _ = tx.send(path);
                }
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(dir = %what, error = %e, "folder watch error"),
        })?;
    watcher.watch(dir, RecursiveMode::NonRecursive)?;
    let task = tokio::spawn(async move {
        let mut due: HashMap<PathBuf, Instant> = HashMap::new();
        loop {
            let next = due.values().min().copied();
            tokio::select! {
                path = rx.recv() => match path {
                    Some(path) => { due.insert(path, Instant::now() + debounce); }
                    None => return,
                },
                _ = sleep_until(next), if next.is_some() => {
                    let now = Instant::now();
                    let ready: Vec<PathBuf> = due.iter().filter(|(_, t)| **t <= now).map(|(p, _)| p.clone()).collect();
                    for path in ready {
                        due.remove(&path);
                        apply(path).await;
                    }
                }
            }
        }
    });
    Ok(FolderWatch {
        _watcher: watcher,
        task,
    })
}

async fn sleep_until(t: Option<Instant>) {
    if let Some(t) = t {
        tokio::time::sleep_until(t.into()).await;
    }
}
