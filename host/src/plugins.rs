//! Plugins: what a loaded plugin is, how files become plugins, and the registry that
//! requests read from.
//!
//! watcher ─► loader (inspect, compile off the request path or load the cached
//! artifact, link) ─► registry (a new immutable `Snapshot` behind `ArcSwap`).
//!
//! Invariant: nothing here runs on the request path except `Registry::snapshot`, one
//! atomic load.

pub mod cache;
pub mod inspect;
pub mod loader;
pub mod registry;
pub mod watcher;

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use crate::sandbox::store::PluginEnv;
use crate::sandbox::{
    AdapterInstance, AdapterPre, Fault, FilterInstance, FilterPre, RouterInstance, RouterPre,
    Sandbox,
};

pub use inspect::{Inspection, PluginKind};
pub use loader::{LoadError, Loader};
pub use registry::{PluginStatus, Registry, Snapshot};

/// The WIT package versions this host has bindings for, newest first.
pub const SUPPORTED_WIT_VERSIONS: &[&str] = &[crate::sandbox::wit::latest::VERSION];

/// The supported version a plugin's WIT version loads as, if any. Semver-compatible
/// versions are accepted as wasmtime's export lookup matches them: same major, and for
/// 0.x the same minor (`0.1.3` loads as `0.1.0`), so a patch release may add host
/// imports marked `@since` without breaking plugins; new exports need a new minor.
pub fn compatible_wit_version(version: &str) -> Option<&'static str> {
    let parse = |v: &str| -> Option<(u64, u64, u64)> {
        let mut it = v.split('.').map(|p| p.parse::<u64>().ok());
        let t = (it.next()??, it.next()??, it.next()??);
        it.next().is_none().then_some(t)
    };
    let (major, minor, _) = parse(version)?;
    SUPPORTED_WIT_VERSIONS
        .iter()
        .copied()
        .find(|s| parse(s).is_some_and(|(m, n, _)| m == major && (major > 0 || n == minor)))
}

/// A plugin's name: its file stem, kebab-case.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct PluginName(String);

impl PluginName {
    /// Accepts lowercase ASCII letters, digits and single dashes, starting with a letter.
    pub fn parse(s: &str) -> Option<Self> {
        let ok = s.len() <= 64
            && s.starts_with(|c: char| c.is_ascii_lowercase())
            && !s.ends_with('-')
            && !s.contains("--")
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        ok.then(|| PluginName(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Hashes and compares exactly like the inner `String`, so maps keyed by name can be
/// queried with a `&str`.
impl std::borrow::Borrow<str> for PluginName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PluginName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where a plugin's compiled code came from, reported so that a warm restart can be
/// seen not to recompile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CodeSource {
    /// Compiled from the `.wasm` now.
    Compiled,
    /// Loaded from the on-disk artifact cache.
    Cache,
}

/// The linked, type-checked entry point of one plugin version.
pub(crate) enum Linked {
    Adapter(AdapterPre),
    Router(RouterPre),
    Filter(FilterPre),
}

/// One loaded version of a plugin. Immutable; requests hold it by `Arc` for their whole
/// life, so an in-flight request finishes on the version it started with.
pub struct LoadedPlugin {
    pub name: PluginName,
    pub kind: PluginKind,
    pub wit_version: String,
    pub sha256: String,
    pub size: u64,
    pub source: CodeSource,
    pub loaded_at: SystemTime,
    pub(crate) env: Arc<PluginEnv>,
    pub(crate) linked: Linked,
    pub(crate) sandbox: Arc<Sandbox>,
}

impl fmt::Debug for LoadedPlugin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoadedPlugin")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("wit_version", &self.wit_version)
            .field("sha256", &self.sha256)
            .finish_non_exhaustive()
    }
}

/// Asking a plugin for a kind it is not.
#[derive(Debug, thiserror::Error)]
#[error("plugin `{name}` is a {actual}, not a {wanted}")]
pub struct WrongKind {
    pub name: PluginName,
    pub actual: PluginKind,
    pub wanted: PluginKind,
}

/// Either the plugin is not of the kind asked for, or instantiating it faulted.
#[derive(Debug, thiserror::Error)]
pub enum InstanceError {
    #[error(transparent)]
    WrongKind(#[from] WrongKind),
    #[error(transparent)]
    Fault(#[from] Fault),
}

impl LoadedPlugin {
    fn wrong(&self, wanted: PluginKind) -> InstanceError {
        InstanceError::WrongKind(WrongKind {
            name: self.name.clone(),
            actual: self.kind,
            wanted,
        })
    }

    /// A fresh adapter instance (one per request).
    pub fn adapter(&self) -> Result<AdapterInstance, InstanceError> {
        match &self.linked {
            Linked::Adapter(pre) => Ok(AdapterInstance::new(&self.sandbox, &self.env, pre)?),
            _ => Err(self.wrong(PluginKind::Adapter)),
        }
    }

    /// A fresh router instance (one per request).
    pub fn router(&self) -> Result<RouterInstance, InstanceError> {
        match &self.linked {
            Linked::Router(pre) => Ok(RouterInstance::new(&self.sandbox, &self.env, pre)?),
            _ => Err(self.wrong(PluginKind::Router)),
        }
    }

    /// A fresh filter instance (one per request).
    pub fn filter(&self) -> Result<FilterInstance, InstanceError> {
        match &self.linked {
            Linked::Filter(pre) => Ok(FilterInstance::new(&self.sandbox, &self.env, pre)?),
            _ => Err(self.wrong(PluginKind::Filter)),
        }
    }
}
