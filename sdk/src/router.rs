//! Routing strategies: rank the deployments that can serve a request.

#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit/v0.1.0",
        world: "router-plugin",
        default_bindings_module: "switchyard_sdk::router::bindings",
        pub_export_macro: true,
        export_macro_name: "__export_router_world",
    });
}

pub use bindings::exports::switchyard::plugin::router::{
    Candidate, CircuitState, DeploymentStats, RouteDecision, RouteRequest,
};
pub use bindings::switchyard::plugin::host;
pub use bindings::switchyard::plugin::types::*;

use std::marker::PhantomData;

use bindings::exports::switchyard::plugin::router as wit;

/// A routing strategy. The default keeps the config's order.
pub trait Router: 'static {
    /// Ranks the candidates: indices into `candidates`, best first.
    fn route(
        request: RouteRequest,
        candidates: Vec<Candidate>,
    ) -> Result<RouteDecision, PluginError> {
        let _ = request;
        Ok(RouteDecision {
            order: (0..candidates.len() as u32).collect(),
            shadow: None,
        })
    }
}

#[doc(hidden)]
pub struct Export<T>(PhantomData<T>);

impl<T: Router> wit::Guest for Export<T> {
    fn route(
        request: RouteRequest,
        candidates: Vec<Candidate>,
    ) -> Result<RouteDecision, PluginError> {
        T::route(request, candidates)
    }
}

/// Exports a type implementing [`Router`] as this component's router.
#[macro_export]
macro_rules! export_router {
    ($t:ty) => {
        type __SwitchyardRouterExport = $crate::router::Export<$t>;
        $crate::router::bindings::__export_router_world!(__SwitchyardRouterExport);
    };
}
