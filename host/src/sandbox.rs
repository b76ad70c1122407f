//! The sandbox: the only module that builds a wasmtime `Engine` or `Store`.
//!
//! One engine serves every plugin. Each call runs in a fresh instance from a pooling
//! allocator, under an epoch deadline (a trap, never a yield) and a memory cap. WASI p2
//! is linked so that components from any toolchain load, but with every capability
//! denied: no preopened directories, no environment, no sockets. Guest stdout/stderr are
//! captured, bounded, and logged under the plugin's name.

mod engine;
mod guest_io;
mod instance;
mod output;
pub(crate) mod store;
pub mod wit;

pub use engine::{Sandbox, SandboxSettings};
pub use instance::{AdapterInstance, FilterInstance, RouterInstance, StreamHandle};
pub(crate) use instance::{AdapterPre, FilterPre, RouterPre};
pub use wit::latest::adapter::exports::switchyard::plugin::adapter as adapter_api;
pub use wit::latest::filter::exports::switchyard::plugin::filter as filter_api;
pub use wit::latest::router::exports::switchyard::plugin::router as router_api;
pub use wit::latest::types;

use std::time::Duration;

/// Per-plugin limits, from the gateway config (never from a file beside the plugin).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Wall-clock budget of one call into the plugin, instantiation included.
    pub call_timeout: Duration,
    /// Cap on the plugin's linear memory, in bytes.
    pub memory_bytes: usize,
    /// Cap on captured stdout+stderr per instance, in bytes; the rest is dropped.
    pub output_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            call_timeout: Duration::from_millis(100),
            memory_bytes: 64 << 20,
            output_bytes: 16 << 10,
        }
    }
}

/// Opt-in reuse of instances across requests (`[plugins.NAME] instances = "warm"`), for
/// plugins whose runtime is slow to start (a componentize-py component instantiates in
/// about 1 ms). The trade-off: state a plugin leaves in its globals is visible to later
/// requests served by the same instance, so only plugins that are trusted not to keep
/// one caller's data for another should run warm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warm {
    /// Idle instances kept per plugin; more may run at once, and those are dropped when
    /// their request ends and the pool is full.
    pub pool_size: u32,
    /// Requests one instance serves before it is discarded.
    pub max_uses: u32,
    /// An instance whose linear memory has grown past this is discarded after its
    /// request, so a slow leak is cut off long before the memory cap.
    pub recycle_memory_bytes: usize,
}

/// A plugin's fault: the call did not complete, and the instance is never entered again.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum Fault {
    #[error("plugin `{plugin}` exceeded its {timeout_ms} ms deadline")]
    Deadline { plugin: String, timeout_ms: u128 },
    #[error("plugin `{plugin}` exceeded its memory limit of {limit_bytes} bytes")]
    MemoryLimit { plugin: String, limit_bytes: usize },
    #[error("plugin `{plugin}` trapped: {reason}")]
    Trap { plugin: String, reason: String },
    #[error("plugin `{plugin}` could not be instantiated: {reason}")]
    Instantiate { plugin: String, reason: String },
    #[error("plugin `{plugin}` is unusable after an earlier fault in this request")]
    Poisoned { plugin: String },
}
