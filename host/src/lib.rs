//! Switchyard: an OpenAI-compatible AI gateway whose provider adapters, routing
//! strategies and compliance filters are sandboxed WebAssembly components.
//!
//! Modules are declared in the order a request meets them; see `ARCHITECTURE.md`.

pub mod cli;
pub mod config;
pub mod error;
pub mod pipeline;
pub mod plugins;
pub mod sandbox;
pub mod server;
pub mod stats;
pub mod upstream;
