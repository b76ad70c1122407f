//! The Rust SDK for Switchyard plugins: one trait per plugin kind and one export macro.
//!
//! A plugin is a `cdylib` crate built for `wasm32-wasip2`. Implement [`adapter::Adapter`],
//! [`router::Router`] or [`filter::Filter`] on a unit struct, export it with
//! [`export_adapter!`], [`export_router!`] or [`export_filter!`], and build with
//! `cargo build --target wasm32-wasip2 --release`. Every trait method defaults to an
//! "unsupported" error, so a plugin implements only what it needs.
//!
//! ```ignore
//! use switchyard_sdk::router::*;
//!
//! struct Cheapest;
//!
//! impl Router for Cheapest {
//!     fn route(_req: RouteRequest, candidates: Vec<Candidate>) -> Result<RouteDecision, PluginError> {
//!         let mut order: Vec<u32> = (0..candidates.len() as u32).collect();
//!         order.sort_by(|a, b| {
//!             let price = |i: &u32| candidates[*i as usize].input_price_per_mtok;
//!             price(a).total_cmp(&price(b))
//!         });
//!         Ok(RouteDecision { order, shadow: None })
//!     }
//! }
//!
//! switchyard_sdk::export_router!(Cheapest);
//! ```
//!
//! The bindings are generated from `wit/v0.1.0`, the contract the host checks at load time.

pub mod adapter;
pub mod filter;
pub mod router;

/// The WIT package version this SDK builds plugins against.
pub const WIT_VERSION: &str = "0.1.0";
