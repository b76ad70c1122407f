//! Host-side bindings for `wit/v0.1.0`, quarantined here so that generated names do not
//! leak through the crate. One `bindgen!` per world; the router and filter worlds reuse
//! the adapter world's `types` and `host` modules so that every kind shares one set of
//! canonical types.

#![allow(clippy::all, missing_docs)]

pub mod adapter {
    wasmtime::component::bindgen!({
        path: "../wit/v0.1.0",
        world: "adapter-plugin",
    });
}

pub mod router {
    wasmtime::component::bindgen!({
        path: "../wit/v0.1.0",
        world: "router-plugin",
        with: {
            "switchyard:plugin/types": super::adapter::switchyard::plugin::types,
            "switchyard:plugin/host": super::adapter::switchyard::plugin::host,
        },
    });
}

pub mod filter {
    wasmtime::component::bindgen!({
        path: "../wit/v0.1.0",
        world: "filter-plugin",
        with: {
            "switchyard:plugin/types": super::adapter::switchyard::plugin::types,
            "switchyard:plugin/host": super::adapter::switchyard::plugin::host,
        },
    });
}

pub use adapter::switchyard::plugin::host::{self as host_iface, Level};
pub use adapter::switchyard::plugin::types;
