//! Switchyard: an OpenAI-compatible AI gateway whose provider adapters, routing
//! strategies and compliance filters are sandboxed WebAssembly components.
//!
//! Modules in the order a request meets them, after the entry points (`cli`, `gateway`)
//! and the config they read; see `ARCHITECTURE.md`.

pub mod accounting;
pub mod canonical;
pub mod cli;
pub mod config;
pub mod error;
pub mod gateway;
pub mod governance;
pub mod ledger;
pub mod live;
pub mod metrics;
pub mod pipeline;
pub mod plugins;
pub mod sandbox;
pub mod server;
pub mod state;
pub mod stats;
pub mod upstream;
pub mod util;
