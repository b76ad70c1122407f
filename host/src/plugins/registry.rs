//! The registry: the current set of plugins as an immutable `Snapshot` behind `ArcSwap`,
//! plus the load status of every plugin file for `/admin/plugins`.
//!
//! Readers (requests) take one snapshot with a single atomic load and keep it to the
//! end, so in-flight requests finish on the versions they began with; an old version is
//! dropped with its last user. Writers (the watcher) are serialised by a mutex that no
//! request ever takes.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use arc_swap::ArcSwap;
use tokio::sync::watch;

use super::{CodeSource, LoadedPlugin, PluginKind, PluginName};

/// An immutable view of the loaded plugins.
#[derive(Default)]
pub struct Snapshot {
    plugins: HashMap<PluginName, Arc<LoadedPlugin>>,
    /// Increases with every published change.
    pub generation: u64,
}

impl Snapshot {
    pub fn get(&self, name: &str) -> Option<&Arc<LoadedPlugin>> {
        self.plugins.get(name)
    }

    pub fn len(&self) -> usize {
        self.plugins.len()
    }

    pub fn is_empty(&self) -> bool {
        self.plugins.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<LoadedPlugin>> {
        self.plugins.values()
    }
}

/// A file that failed to load.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Rejection {
    pub sha256: Option<String>,
    pub error: String,
    #[serde(with = "unix_seconds")]
    pub at: SystemTime,
}

/// What `/admin/plugins` shows for one plugin name.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PluginStatus {
    pub name: String,
    /// `active` when a version is serving (even if a newer file was rejected), else
    /// `rejected`.
    pub status: &'static str,
    pub kind: Option<PluginKind>,
    pub wit_version: Option<String>,
    pub sha256: Option<String>,
    pub size: Option<u64>,
    pub source: Option<CodeSource>,
    #[serde(with = "opt_unix_seconds")]
    pub loaded_at: Option<SystemTime>,
    /// Why the newest file was rejected, if it was.
    pub error: Option<String>,
    pub rejected_sha256: Option<String>,
}

/// The registry. Cheap to share; see the module doc for the concurrency rules.
pub struct Registry {
    current: ArcSwap<Snapshot>,
    writer: Mutex<BTreeMap<PluginName, Rejection>>,
    changes: watch::Sender<u64>,
}

impl Default for Registry {
    fn default() -> Self {
        Registry {
            current: ArcSwap::from_pointee(Snapshot::default()),
            writer: Mutex::new(BTreeMap::new()),
            changes: watch::channel(0).0,
        }
    }
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    /// The current plugins: one atomic load, the only registry call on the request path.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    /// A receiver that sees a new value after every change (load, rejection, removal),
    /// so callers can wait for a reload instead of sleeping.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    fn rejections(&self) -> std::sync::MutexGuard<'_, BTreeMap<PluginName, Rejection>> {
        self.writer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn publish(
        &self,
        rejections: &BTreeMap<PluginName, Rejection>,
        edit: impl FnOnce(&mut HashMap<PluginName, Arc<LoadedPlugin>>),
    ) {
        let _ = rejections; // held: writers are serialised by the rejections lock
        let old = self.current.load();
        let mut plugins = old.plugins.clone();
        edit(&mut plugins);
        self.current.store(Arc::new(Snapshot {
            plugins,
            generation: old.generation + 1,
        }));
        self.changes.send_modify(|n| *n += 1);
    }

    /// Makes `plugin` the serving version of its name.
    pub fn activate(&self, plugin: LoadedPlugin) {
        let mut rej = self.rejections();
        rej.remove(&plugin.name);
        let plugin = Arc::new(plugin);
        self.publish(&rej, |m| {
            m.insert(plugin.name.clone(), plugin);
        });
    }

    /// Records that a file failed to load; whatever version was serving keeps serving.
    pub fn reject(&self, name: PluginName, sha256: Option<String>, error: String) {
        let mut rej = self.rejections();
        rej.insert(
            name,
            Rejection {
                sha256,
                error,
                at: SystemTime::now(),
            },
        );
        drop(rej);
        self.changes.send_modify(|n| *n += 1);
    }

    /// Clears a rejection (the file now matches the serving version again).
    pub fn clear_rejection(&self, name: &PluginName) {
        if self.rejections().remove(name).is_some() {
            self.changes.send_modify(|n| *n += 1);
        }
    }

    /// Unloads a plugin whose file was deleted.
    pub fn remove(&self, name: &PluginName) {
        let mut rej = self.rejections();
        rej.remove(name);
        if self.current.load().plugins.contains_key(name) {
            self.publish(&rej, |m| {
                m.remove(name);
            });
        } else {
            drop(rej);
            self.changes.send_modify(|n| *n += 1);
        }
    }

    /// Every plugin name with its status, sorted by name.
    pub fn statuses(&self) -> Vec<PluginStatus> {
        let rej = self.rejections().clone();
        let snap = self.snapshot();
        let mut out: BTreeMap<String, PluginStatus> = BTreeMap::new();
        for p in snap.iter() {
            out.insert(
                p.name.to_string(),
                PluginStatus {
                    name: p.name.to_string(),
                    status: "active",
                    kind: Some(p.kind),
                    wit_version: Some(p.wit_version.clone()),
                    sha256: Some(p.sha256.clone()),
                    size: Some(p.size),
                    source: Some(p.source),
                    loaded_at: Some(p.loaded_at),
                    error: None,
                    rejected_sha256: None,
                },
            );
        }
        for (name, r) in rej {
            let entry = out.entry(name.to_string()).or_insert_with(|| PluginStatus {
                name: name.to_string(),
                status: "rejected",
                kind: None,
                wit_version: None,
                sha256: None,
                size: None,
                source: None,
                loaded_at: None,
                error: None,
                rejected_sha256: None,
            });
            entry.error = Some(r.error);
            entry.rejected_sha256 = r.sha256;
        }
        out.into_values().collect()
    }

    /// The sha256 of the last rejected file of this name, if it is still rejected.
    pub fn rejected_sha256(&self, name: &PluginName) -> Option<String> {
        self.rejections().get(name).and_then(|r| r.sha256.clone())
    }

    /// The active version's sha256, if any.
    pub fn active_sha256(&self, name: &PluginName) -> Option<String> {
        self.current
            .load()
            .plugins
            .get(name)
            .map(|p| p.sha256.clone())
    }
}

mod unix_seconds {
    use std::time::{SystemTime, UNIX_EPOCH};

    pub fn serialize<S: serde::Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(
            t.duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
        )
    }
}

mod opt_unix_seconds {
    use std::time::SystemTime;

    pub fn serialize<S: serde::Serializer>(
        t: &Option<SystemTime>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => super::unix_seconds::serialize(t, s),
            None => s.serialize_none(),
        }
    }
}
