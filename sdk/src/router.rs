//! Routing strategies: rank the deployments that can serve a request.

/// The bindings of the router world; `types` and `host` are the adapter bindings' own.
#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit/v0.1.0",
        world: "router-plugin",
        default_bindings_module: "switchyard_sdk::router::bindings",
        pub_export_macro: true,
        export_macro_name: "__export_router_world",
        with: {
            "switchyard:plugin/types@0.1.0": crate::adapter::bindings::switchyard::plugin::types,
            "switchyard:plugin/host@0.1.0": crate::adapter::bindings::switchyard::plugin::host,
        },
    });
}

pub mod rank;

pub use crate::host;
pub use crate::types::*;
pub use bindings::exports::switchyard::plugin::router::{
    Candidate, CircuitState, DeploymentStats, RouteDecision, RouteRequest,
};

use std::marker::PhantomData;

use crate::__private::Instance;
use bindings::exports::switchyard::plugin::router as wit;

/// A routing strategy. One value lives per component instance (see the crate docs).
pub trait Router: Default + 'static {
    /// Ranks the candidates: indices into `candidates`, best first.
    fn route(
        &mut self,
        request: RouteRequest,
        candidates: Vec<Candidate>,
    ) -> Result<RouteDecision, PluginError>;
}

#[doc(hidden)]
pub struct Export<I>(PhantomData<I>);

impl<I: Instance<Plugin: Router>> wit::Guest for Export<I> {
    fn route(
        request: RouteRequest,
        candidates: Vec<Candidate>,
    ) -> Result<RouteDecision, PluginError> {
        I::with(|r| r.route(request, candidates))
    }
}

/// Exports a type implementing [`Router`] as this component's router.
#[macro_export]
macro_rules! export_router {
    ($t:ty) => {
        $crate::__instance!(__SwitchyardRouterInstance, $t);
        type __SwitchyardRouterExport = $crate::router::Export<__SwitchyardRouterInstance>;
        $crate::router::bindings::__export_router_world!(__SwitchyardRouterExport);
    };
}
