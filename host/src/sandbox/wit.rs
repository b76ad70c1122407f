//! The WIT versions this host speaks, one module of bindings per released folder of
//! `wit/`. Everything above the sandbox uses `latest` only, through `crate::canonical`,
//! so a new version touches this module and the conversions, not the pipeline.
//!
//! Invariant: a released folder never changes; `tests::released_wit_folders_are_frozen`
//! pins each one's digest. A new contract is a new folder and a new module here.

pub mod v0_1_0;

pub use v0_1_0 as latest;

#[cfg(test)]
mod tests {
    use sha2::{Digest, Sha256};
    use std::path::Path;

    /// The sha256 over every `.wit` file of a folder: name, NUL, contents, in name order.
    fn folder_digest(dir: &Path) -> String {
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .expect("wit folder")
            .map(|e| e.expect("entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == "wit"))
            .collect();
        files.sort();
        let mut h = Sha256::new();
        for f in files {
            h.update(f.file_name().expect("name").as_encoded_bytes());
            h.update([0]);
            h.update(std::fs::read(&f).expect("read"));
        }
        hex::encode(h.finalize())
    }

    #[test]
    fn released_wit_folders_are_frozen() {
        let wit = Path::new(env!("CARGO_MANIFEST_DIR")).join("../wit");
        // Released folders and their digests. Changing a released folder breaks every
        // plugin built against it: add a new version folder instead.
        let released = [(
            "v0.1.0",
            "8278c9a9349e13573e941221c933187ebf9561a57458385313bf9fff20f846de",
        )];
        for (folder, want) in released {
            assert_eq!(
                folder_digest(&wit.join(folder)),
                want,
                "wit/{folder} changed after its release; add a new version folder instead"
            );
        }
    }
}
