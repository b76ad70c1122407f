//! The canonical chat model every layer above the sandbox speaks: requests, responses,
//! chunks, usage, errors. Today these are the types of the newest WIT version; when a
//! new version changes them, this module becomes the one place old versions convert to
//! and from (as Zed's extension host does with `since_v0_x` and `latest`), and the
//! server, pipeline and upstream code do not change.

pub use crate::sandbox::wit::latest::types::*;
