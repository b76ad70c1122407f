//! The Rust SDK for Switchyard plugins: one trait per plugin kind and one export macro.
//!
//! A plugin is a `cdylib` crate built for `wasm32-wasip2`. Implement [`adapter::Adapter`],
//! [`router::Router`] or [`filter::Filter`] on a type with a [`Default`], export it with
//! [`export_adapter!`], [`export_router!`] or [`export_filter!`], and build with
//! `cargo build --target wasm32-wasip2 --release`.
//!
//! Methods every plugin of a kind needs have no default, so forgetting one fails to
//! compile: an adapter's `build_request` and `parse_response`, a router's `route`.
//! Optional features default to the harmless answer: an adapter's `open_stream` to a
//! decoder that reports streaming as unsupported, and every filter method to "allow"
//! (or "pass the chunk through").
//!
//! Methods take `&mut self`: the export macro keeps one value of the plugin type per
//! component instance, made with `Default` on the first call, so a plugin may keep state
//! between calls. The host makes a fresh instance for every request, so that state never
//! outlives one request (a filter's `on_request` and `on_response` see the same value).
//!
//! ```ignore
//! use switchyard_sdk::router::*;
//!
//! #[derive(Default)]
//! struct Cheapest;
//!
//! impl Router for Cheapest {
//!     fn route(
//!         &mut self,
//!         _req: RouteRequest,
//!         candidates: Vec<Candidate>,
//!     ) -> Result<RouteDecision, PluginError> {
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
//! Plugin settings are read with serde: [`config`] for `[plugins.NAME.config]` and
//! [`adapter::support::settings`] for a deployment's adapter settings, so that
//! `#[serde(deny_unknown_fields)]` turns a typo'd key into an error naming it.
//!
//! The bindings are generated once from `wit/v0.1.0`, the contract the host checks at load
//! time; the three kinds share the canonical [`types`] and the [`host`] imports.

pub mod adapter;
mod config;
pub mod filter;
pub mod router;
pub mod testing;

pub use config::{config, config_error, parse_config};

/// The canonical request and response types every plugin kind speaks
/// (`switchyard:plugin/types`), shared by [`adapter`], [`router`] and [`filter`].
pub mod types {
    pub use crate::adapter::bindings::switchyard::plugin::types::*;
}

/// What the host offers every plugin: logging, the plugin's config and a clock.
pub use adapter::bindings::switchyard::plugin::host;

/// Writes a line to the gateway's log under the plugin's name ([`host::log`]). Off wasm
/// (a plugin's native unit tests) the host is not there, so the line goes to stderr
/// instead of trapping: code that logs stays testable with `cargo test`.
pub fn log(level: host::Level, message: &str) {
    #[cfg(target_arch = "wasm32")]
    host::log(level, message);
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("[{level:?}] {message}");
}

/// The WIT package version this SDK builds plugins against.
pub const WIT_VERSION: &str = "0.1.0";

/// Glue for the export macros; not part of the API.
#[doc(hidden)]
pub mod __private {
    /// The one plugin value of a component instance. `export_*!` implements it on a
    /// type of the plugin's crate, because a `static` cannot be generic over the plugin.
    pub trait Instance: 'static {
        type Plugin;
        /// Runs `f` on the value, made with `Default` on first use.
        fn with<R>(f: impl FnOnce(&mut Self::Plugin) -> R) -> R;
    }

    /// Implements [`Instance`] for `$name` over plugin type `$t`. A `thread_local!` needs
    /// no unsafe and costs nothing on wasm, which has one thread. The host never calls
    /// into an instance while a call is running, so the `RefCell` is never borrowed twice.
    #[macro_export]
    #[doc(hidden)]
    macro_rules! __instance {
        ($name:ident, $t:ty) => {
            #[doc(hidden)]
            struct $name;

            impl $crate::__private::Instance for $name {
                type Plugin = $t;

                fn with<R>(f: impl FnOnce(&mut $t) -> R) -> R {
                    ::std::thread_local! {
                        static PLUGIN: ::core::cell::RefCell<::core::option::Option<$t>> =
                            const { ::core::cell::RefCell::new(::core::option::Option::None) };
                    }
                    PLUGIN.with_borrow_mut(|p| {
                        f(p.get_or_insert_with(<$t as ::core::default::Default>::default))
                    })
                }
            }
        };
    }
}

#[cfg(test)]
mod tests {
    /// One bindgen run owns the shared interfaces, so a request read by a filter is the
    /// very type an adapter builds from: this only compiles if the types are one.
    #[test]
    fn every_kind_shares_one_set_of_types() {
        let request: crate::filter::ChatRequest = crate::testing::request(&[]);
        let request: crate::adapter::ChatRequest = request;
        let request: crate::types::ChatRequest = request;
        let caller: crate::router::Caller = crate::testing::context().caller;
        assert!(request.messages.is_empty() && caller.tags.is_empty());
    }
}
