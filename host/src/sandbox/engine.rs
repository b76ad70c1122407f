//! The shared wasmtime `Engine`, its pooling allocator and the epoch ticker that turns
//! wall-clock deadlines into traps.

use std::sync::Arc;
use std::thread;
use std::time::Duration;

use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::store::StoreData;
use super::wit::latest as bindings;

/// How often the epoch advances: the granularity of every plugin deadline.
pub const EPOCH_TICK: Duration = Duration::from_millis(5);

/// Engine-wide settings. They are part of the compiled-artifact cache key, so a change
/// recompiles every plugin once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxSettings {
    /// Instances that may exist at once across all plugins (pool size).
    pub max_instances: u32,
    /// The largest linear memory any plugin may reserve (the pool's slot size); per
    /// plugin caps below it come from `Limits`.
    pub max_memory_bytes: usize,
    /// Guest stack, in bytes.
    pub max_wasm_stack: usize,
}

impl Default for SandboxSettings {
    fn default() -> Self {
        SandboxSettings {
            max_instances: 1000,
            max_memory_bytes: 1 << 30,
            max_wasm_stack: 512 << 10,
        }
    }
}

/// The engine and the linkers for every plugin world.
pub struct Sandbox {
    pub(crate) engine: Engine,
    pub(crate) linker: Linker<StoreData>,
}

impl Sandbox {
    /// Builds the engine and starts the epoch ticker (a thread that ends when the engine
    /// is dropped).
    pub fn new(settings: SandboxSettings) -> wasmtime::Result<Arc<Sandbox>> {
        let engine = Engine::new(&engine_config(&settings))?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
        super::guest_io::shadow_wasi_io(&mut linker)?;
        bindings::adapter::switchyard::plugin::host::add_to_linker::<
            _,
            wasmtime::component::HasSelf<_>,
        >(&mut linker, |s| s)?;
        bindings::adapter::switchyard::plugin::types::add_to_linker::<
            _,
            wasmtime::component::HasSelf<_>,
        >(&mut linker, |s| s)?;
        start_epoch_ticker(&engine)
            .map_err(|e| wasmtime::format_err!("cannot start the epoch ticker thread: {e}"))?;
        Ok(Arc::new(Sandbox { engine, linker }))
    }

    /// A key that changes whenever compiled artifacts stop being loadable: the wasmtime
    /// version and every engine setting that affects code generation.
    pub fn artifact_key(&self) -> String {
        use std::hash::{DefaultHasher, Hash, Hasher};
        // SipHash with fixed keys: stable for a given build, which is all the cache needs
        // since the wasmtime version is also in the key.
        let mut h = DefaultHasher::new();
        self.engine.precompile_compatibility_hash().hash(&mut h);
        format!("wasmtime{}-{:016x}", wasmtime_version(), h.finish())
    }

    /// Compiles a component (slow: tens of milliseconds for Rust, seconds for Python).
    pub(crate) fn compile(&self, bytes: &[u8]) -> wasmtime::Result<Vec<u8>> {
        self.engine.precompile_component(bytes)
    }

    /// Loads a compiled artifact from memory.
    pub(crate) fn deserialize(&self, artifact: &[u8]) -> wasmtime::Result<Component> {
        // SAFETY: `Component::deserialize` runs the artifact's native code, so it must
        // come from `compile` on an engine with this configuration. It does: either
        // straight from `compile`, or from the plugin cache, which (checked in
        // `ArtifactCache::open`) is a folder outside the plugins folder that only this
        // user can write, and whose files (checked in `ArtifactCache::load`) match the
        // sha256 written with them by `store`. wasmtime itself rejects artifacts from
        // another version or configuration. The bytes are checked and then loaded from
        // memory, so the file cannot change between the check and the load.
        #[allow(unsafe_code)]
        unsafe {
            Component::deserialize(&self.engine, artifact)
        }
    }
}

/// The wasmtime version compiled in, for cache keys and `plugin inspect`.
pub fn wasmtime_version() -> &'static str {
    "48.0.8"
}

fn engine_config(s: &SandboxSettings) -> Config {
    let mut cfg = Config::new();
    cfg.wasm_component_model(true)
        .epoch_interruption(true)
        // The WIT is sync-shaped; without concurrency support a call costs ~0.2 µs
        // instead of ~2 µs.
        .concurrency_support(false)
        .max_wasm_stack(s.max_wasm_stack)
        .memory_init_cow(true)
        .parallel_compilation(true)
        .cranelift_opt_level(wasmtime::OptLevel::Speed);
    let n = s.max_instances;
    let mut pool = PoolingAllocationConfig::new();
    pool.total_component_instances(n)
        // componentize-py and jco components carry many core modules.
        .total_core_instances(n.saturating_mul(8))
        .max_core_instances_per_component(64)
        .total_memories(n.saturating_mul(2))
        .max_memories_per_component(8)
        .max_memories_per_module(2)
        .total_tables(n.saturating_mul(4))
        .max_tables_per_component(32)
        .max_tables_per_module(4)
        .total_stacks(n)
        .table_elements(100_000)
        .max_component_instance_size(4 << 20)
        .max_core_instance_size(4 << 20)
        .max_memory_size(s.max_memory_bytes)
        // Measured (host/benches/plugin_call.rs): keeping 1 MiB resident means a 1 MiB
        // memset per dropped instance (instantiate 22 µs → 6 µs without it), and batched
        // decommits save a further ~4 µs per call by sharing madvise/TLB work.
        .linear_memory_keep_resident(256 << 10)
        .table_keep_resident(64 << 10)
        .pagemap_scan(Enabled::Auto)
        .max_unused_warm_slots(n.min(128))
        .decommit_batch_size(16);
    cfg.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    cfg
}

/// Without the ticker no deadline would ever fire, so failing to start it is fatal.
fn start_epoch_ticker(engine: &Engine) -> std::io::Result<()> {
    let weak = engine.weak();
    thread::Builder::new()
        .name("switchyard-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                thread::sleep(EPOCH_TICK);
            }
        })?;
    Ok(())
}
