//! The on-disk cache of compiled plugins, so that a restart does not recompile.
//!
//! Key: the `.wasm`'s sha256 plus the engine's artifact key (wasmtime version and every
//! setting that affects code generation). Each file is the sha256 of the artifact
//! followed by the artifact, written to a temp file and renamed.
//!
//! Trust: loading an artifact runs native code, so whoever can write the cache folder
//! can run code in the gateway. `open` therefore refuses a folder inside the plugins
//! folder (whoever drops plugins in must not be able to drop native code in) or one
//! writable by group or others, and creates it `0700`. `load` checks every artifact
//! against the digest written with it before handing it to wasmtime, and anything that
//! fails the check is recompiled; the digest catches damage and partial writes, the
//! folder checks keep other users out.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};

static TMP_SEQ: AtomicU64 = AtomicU64::new(0);

/// Bytes of the digest at the start of each cache file.
const DIGEST: usize = 32;

/// Why a cache folder cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error(
        "the plugin cache {0} is inside the plugins folder; whoever can add plugins could add native code. Put it beside the folder (the default) or elsewhere"
    )]
    InsidePlugins(PathBuf),
    #[error(
        "the plugin cache {dir} is writable by group or others (mode {mode:o}); run `chmod 700 {dir}` or choose another folder"
    )]
    Writable { dir: PathBuf, mode: u32 },
    #[error("the plugin cache {0} is not a folder")]
    NotADirectory(PathBuf),
    #[error("cannot create the plugin cache {dir}: {source}")]
    Io {
        dir: PathBuf,
        source: std::io::Error,
    },
}

/// A directory of `<sha256>-<artifact key>.cwasm` files, owned by the host and never
/// writable by plugins.
#[derive(Debug, Clone)]
pub struct ArtifactCache {
    dir: PathBuf,
}

impl ArtifactCache {
    /// Opens (creating it `0700` if missing) a cache folder that only this user can
    /// write and that is not inside `plugins_dir` (see the module doc).
    pub fn open(dir: impl Into<PathBuf>, plugins_dir: &Path) -> Result<Self, CacheError> {
        let dir = dir.into();
        let io = |source| CacheError::Io {
            dir: dir.clone(),
            source,
        };
        create_private(&dir).map_err(io)?;
        let meta = fs::symlink_metadata(&dir).map_err(io)?;
        if !meta.is_dir() {
            return Err(CacheError::NotADirectory(dir));
        }
        check_mode(&dir, &meta)?;
        let real = fs::canonicalize(&dir).map_err(io)?;
        if let Ok(plugins) = fs::canonicalize(plugins_dir)
            && real.starts_with(&plugins)
        {
            return Err(CacheError::InsidePlugins(dir));
        }
        Ok(ArtifactCache { dir })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the artifact for this content and engine lives (whether or not it exists).
    pub fn path(&self, sha256: &str, artifact_key: &str) -> PathBuf {
        self.dir.join(format!("{sha256}-{artifact_key}.cwasm"))
    }

    /// The stored artifact, if there is one and it matches the digest written with it.
    pub fn load(&self, sha256: &str, artifact_key: &str) -> Option<Vec<u8>> {
        let path = self.path(sha256, artifact_key);
        let mut file = fs::read(&path).ok()?;
        if file.len() < DIGEST || Sha256::digest(&file[DIGEST..])[..] != file[..DIGEST] {
            tracing::warn!(path = %path.display(), "cached artifact fails its digest; recompiling");
            return None;
        }
        file.drain(..DIGEST);
        Some(file)
    }

    /// Stores an artifact atomically, with its digest.
    pub fn store(
        &self,
        sha256: &str,
        artifact_key: &str,
        bytes: &[u8],
    ) -> std::io::Result<PathBuf> {
        create_private(&self.dir)?;
        let path = self.path(sha256, artifact_key);
        let seq = TMP_SEQ.fetch_add(1, Ordering::Relaxed);
        let tmp = self
            .dir
            .join(format!(".{sha256}-{}-{seq}.tmp", std::process::id()));
        let mut f = fs::File::create(&tmp)?;
        f.write_all(&Sha256::digest(bytes))?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, &path)?;
        Ok(path)
    }
}

#[cfg(unix)]
fn create_private(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    match fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
    {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(not(unix))]
fn create_private(dir: &Path) -> std::io::Result<()> {
    fs::create_dir_all(dir)
}

#[cfg(unix)]
fn check_mode(dir: &Path, meta: &fs::Metadata) -> Result<(), CacheError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(CacheError::Writable {
            dir: dir.to_owned(),
            mode,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_mode(_: &Path, _: &fs::Metadata) -> Result<(), CacheError> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_created_private_and_refuses_unsafe_folders() {
        let root = tempfile::tempdir().expect("tempdir");
        let plugins = root.path().join("plugins");
        fs::create_dir(&plugins).expect("mkdir");
        let c = ArtifactCache::open(root.path().join("cache"), &plugins).expect("open");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(c.dir()).expect("meta").permissions().mode() & 0o777;
            assert_eq!(mode, 0o700);
            let shared = root.path().join("shared");
            fs::create_dir(&shared).expect("mkdir");
            fs::set_permissions(&shared, fs::Permissions::from_mode(0o777)).expect("chmod");
            assert!(matches!(
                ArtifactCache::open(&shared, &plugins),
                Err(CacheError::Writable { .. })
            ));
        }
        assert!(matches!(
            ArtifactCache::open(plugins.join(".cache"), &plugins),
            Err(CacheError::InsidePlugins(_))
        ));
    }

    #[test]
    fn an_artifact_that_fails_its_digest_is_not_returned() {
        let root = tempfile::tempdir().expect("tempdir");
        let c =
            ArtifactCache::open(root.path().join("cache"), &root.path().join("p")).expect("open");
        let path = c.store("abc", "key", b"native code").expect("store");
        assert_eq!(c.load("abc", "key").as_deref(), Some(&b"native code"[..]));
        let mut bytes = fs::read(&path).expect("read");
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        fs::write(&path, bytes).expect("write");
        assert_eq!(c.load("abc", "key"), None, "a flipped bit is caught");
        assert_eq!(c.load("other", "key"), None);
    }
}
