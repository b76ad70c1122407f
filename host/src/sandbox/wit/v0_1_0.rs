//! Host-side bindings for `wit/v0.1.0`. One `bindgen!` per world; the router and filter
//! worlds reuse the adapter world's `types` and `host` modules so that every kind shares
//! one set of canonical types.

#![allow(clippy::all, missing_docs)]

/// The package version of this folder.
pub const VERSION: &str = "0.1.0";
/// The exported interface of each world, as the host looks it up in a component.
pub const ADAPTER_EXPORT: &str = "switchyard:plugin/adapter@0.1.0";
pub const ROUTER_EXPORT: &str = "switchyard:plugin/router@0.1.0";
pub const FILTER_EXPORT: &str = "switchyard:plugin/filter@0.1.0";

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
