//! The on-disk cache of compiled plugins, so that a restart does not recompile.
//!
//! Key: the `.wasm`'s sha256 plus the engine's artifact key (wasmtime version and every
//! setting that affects code generation). Artifacts are written to a temp file and
//! renamed, never modified in place: `deserialize_file` maps them, and wasmtime requires
//! a mapped artifact to stay unchanged for its whole life.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

static TMP_SEQ: AtomicU64 = AtomicU64::new(0);

/// A directory of `<sha256>-<artifact key>.cwasm` files, owned by the host and never
/// writable by plugins.
#[derive(Debug, Clone)]
pub struct ArtifactCache {
    dir: PathBuf,
}

impl ArtifactCache {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        ArtifactCache { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the artifact for this content and engine lives (whether or not it exists).
    pub fn path(&self, sha256: &str, artifact_key: &str) -> PathBuf {
        self.dir.join(format!("{sha256}-{artifact_key}.cwasm"))
    }

    /// Stores an artifact atomically.
    pub fn store(
        &self,
        sha256: &str,
        artifact_key: &str,
        bytes: &[u8],
    ) -> std::io::Result<PathBuf> {
        fs::create_dir_all(&self.dir)?;
        let path = self.path(sha256, artifact_key);
        let seq = TMP_SEQ.fetch_add(1, Ordering::Relaxed);
        let tmp = self
            .dir
            .join(format!(".{sha256}-{}-{seq}.tmp", std::process::id()));
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, &path)?;
        Ok(path)
    }
}
