//! Turns a `.wasm` file into a `LoadedPlugin`: inspect, compile (or load the cached
//! artifact), link against the host, and instantiate once as a smoke test. Runs on
//! blocking threads, never on the request path.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use arc_swap::ArcSwap;

use super::cache::ArtifactCache;
use super::inspect::{InspectError, inspect};
use super::{CodeSource, Linked, LoadedPlugin, PluginKind, PluginName};
use crate::sandbox::store::PluginEnv;
use crate::sandbox::{AdapterPre, FilterPre, Limits, RouterPre, Sandbox, Warm};

/// Why a file could not become a plugin. The message is shown in the log and in
/// `/admin/plugins`.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read {path}: {reason}")]
    Read { path: String, reason: String },
    #[error(
        "`{0}` is not a valid plugin name: use lowercase letters, digits and dashes, e.g. `pii-redact.wasm`"
    )]
    BadName(String),
    #[error(transparent)]
    Inspect(#[from] InspectError),
    #[error("compilation failed: {0}")]
    Compile(String),
    #[error("the component does not fit the {kind} world: {reason}")]
    Link { kind: PluginKind, reason: String },
    #[error("the first instantiation failed: {0}")]
    Smoke(String),
    #[error("warm mode: {0}")]
    Warm(String),
}

/// Limits and settings for plugins, from the gateway config.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PluginPolicy {
    pub defaults: Limits,
    pub per_plugin: HashMap<String, PluginSettings>,
}

/// One plugin's overrides.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PluginSettings {
    pub limits: Option<Limits>,
    /// The plugin's own settings as JSON text.
    pub config_json: Option<String>,
    /// Warm mode; `None` (the default) is a fresh instance per request.
    pub warm: Option<Warm>,
}

/// Loads plugins for one engine.
pub struct Loader {
    sandbox: Arc<Sandbox>,
    cache: Option<ArtifactCache>,
    policy: ArcSwap<PluginPolicy>,
    compiled: AtomicU64,
    cache_hits: AtomicU64,
    metrics: Option<Arc<crate::metrics::Metrics>>,
}

impl Loader {
    pub fn new(sandbox: Arc<Sandbox>, cache: Option<ArtifactCache>, policy: PluginPolicy) -> Self {
        Loader {
            sandbox,
            cache,
            policy: ArcSwap::from_pointee(policy),
            compiled: AtomicU64::new(0),
            cache_hits: AtomicU64::new(0),
            metrics: None,
        }
    }

    /// Records plugin calls, faults and loads in `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<crate::metrics::Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Replaces the limits and settings used for plugins loaded from now on; returns
    /// whether they changed.
    pub fn set_policy(&self, policy: PluginPolicy) -> bool {
        let changed = **self.policy.load() != policy;
        self.policy.store(Arc::new(policy));
        changed
    }

    /// How many components this loader compiled, and how many it took from the cache.
    pub fn counts(&self) -> (u64, u64) {
        (
            self.compiled.load(Ordering::Relaxed),
            self.cache_hits.load(Ordering::Relaxed),
        )
    }

    /// Loads `dir/NAME.wasm`; the plugin's name is the file stem.
    pub fn load_file(&self, path: &Path) -> Result<LoadedPlugin, LoadError> {
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default();
        let name = PluginName::parse(stem).ok_or_else(|| LoadError::BadName(stem.to_owned()))?;
        let bytes = std::fs::read(path).map_err(|e| LoadError::Read {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        self.load(name, &bytes)
    }

    /// Loads a plugin from its bytes.
    pub fn load(&self, name: PluginName, bytes: &[u8]) -> Result<LoadedPlugin, LoadError> {
        let loaded = self.load_inner(name, bytes);
        if let Some(m) = &self.metrics {
            m.plugin_reload(loaded.is_ok());
        }
        loaded
    }

    fn load_inner(&self, name: PluginName, bytes: &[u8]) -> Result<LoadedPlugin, LoadError> {
        let info = inspect(bytes)?;
        let (kind, wit_version) = info.plugin_kind()?;
        let (component, source) = self.component(bytes, &info.sha256)?;
        let policy = self.policy.load();
        let settings = policy.per_plugin.get(name.as_str());
        let warm = settings.and_then(|s| s.warm.as_ref());
        let linked = self.link(kind, &component, warm)?;
        let env = Arc::new(PluginEnv {
            name: name.to_string(),
            config_json: settings
                .and_then(|s| s.config_json.clone())
                .unwrap_or_else(|| "{}".into()),
            limits: settings
                .and_then(|s| s.limits.clone())
                .unwrap_or_else(|| policy.defaults.clone()),
            metrics: self.metrics.as_ref().map(|m| m.plugin(name.as_str(), kind)),
        });
        let plugin = LoadedPlugin {
            name,
            kind,
            wit_version,
            sha256: info.sha256,
            size: info.size,
            source,
            loaded_at: SystemTime::now(),
            env,
            linked,
            sandbox: self.sandbox.clone(),
        };
        // Instantiate once so that a plugin whose start-up traps, loops or needs more
        // memory than its cap is rejected now rather than on the first request.
        // The same instance type-checks every call the host will make (see
        // `sandbox::instance::Export`): a mismatch is a link error, found now.
        let smoke = match kind {
            PluginKind::Adapter => plugin
                .adapter()
                .map(|mut i| (i.check_exports(), i.memory_in_use(), i.discard())),
            PluginKind::Router => plugin
                .router()
                .map(|mut i| (i.check_exports(), i.memory_in_use(), i.discard())),
            PluginKind::Filter => plugin
                .filter()
                .map(|mut i| (i.check_exports(), i.memory_in_use(), i.discard())),
        };
        let (checked, memory, ()) = smoke.map_err(|e| LoadError::Smoke(e.to_string()))?;
        checked.map_err(|e| LoadError::Link {
            kind,
            reason: format!("{e:#}"),
        })?;
        if let Some(w) = warm
            && memory > w.recycle_memory_bytes
        {
            // Every instance would be discarded after one request: warm mode would only
            // add work. Say so instead of silently running cold.
            return Err(LoadError::Warm(format!(
                "an instance starts with {} of linear memory, above its recycle_memory of {}; raise recycle_memory (and memory_limit)",
                bytesize::ByteSize::b(memory as u64),
                bytesize::ByteSize::b(w.recycle_memory_bytes as u64)
            )));
        }
        Ok(plugin)
    }

    fn component(
        &self,
        bytes: &[u8],
        sha256: &str,
    ) -> Result<(wasmtime::component::Component, CodeSource), LoadError> {
        let key = self.sandbox.artifact_key();
        if let Some(artifact) = self.cache.as_ref().and_then(|c| c.load(sha256, &key)) {
            match self.sandbox.deserialize(&artifact) {
                Ok(c) => {
                    self.cache_hits.fetch_add(1, Ordering::Relaxed);
                    return Ok((c, CodeSource::Cache));
                }
                Err(e) => {
                    // From another build of the same version, say: recompile, replace.
                    tracing::warn!(error = %e, "ignoring unusable cached artifact");
                }
            }
        }
        let artifact = self
            .sandbox
            .compile(bytes)
            .map_err(|e| LoadError::Compile(format!("{e:#}")))?;
        self.compiled.fetch_add(1, Ordering::Relaxed);
        if let Some(cache) = &self.cache
            && let Err(e) = cache.store(sha256, &key, &artifact)
        {
            tracing::warn!(dir = %cache.dir().display(), error = %e, "cannot write the plugin cache");
        }
        let c = self
            .sandbox
            .deserialize(&artifact)
            .map_err(|e| LoadError::Compile(format!("{e:#}")))?;
        Ok((c, CodeSource::Compiled))
    }

    fn link(
        &self,
        kind: PluginKind,
        c: &wasmtime::component::Component,
        warm: Option<&Warm>,
    ) -> Result<Linked, LoadError> {
        let s = &self.sandbox;
        let linked = match kind {
            PluginKind::Adapter => AdapterPre::new(s, c, warm).map(Linked::Adapter),
            PluginKind::Router => RouterPre::new(s, c, warm).map(Linked::Router),
            PluginKind::Filter => FilterPre::new(s, c, warm).map(Linked::Filter),
        };
        linked.map_err(|e| LoadError::Link {
            kind,
            reason: format!("{e:#}"),
        })
    }
}
