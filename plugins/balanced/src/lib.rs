//! The `balanced` router: ranks deployments by live latency and error rate (or by price,
//! or by weighted chance), keeping deployments with an open circuit as a last resort.
//!
//! Plugin config (`[plugins.balanced.config]`): `strategy = "latency"` (default),
//! `"cost"` or `"weighted-random"`.

#![deny(clippy::unwrap_used, clippy::expect_used)]

mod rank;

use switchyard_sdk::router::*;

use rank::Strategy;

struct Balanced;

impl Router for Balanced {
    fn route(
        request: RouteRequest,
        candidates: Vec<Candidate>,
    ) -> Result<RouteDecision, PluginError> {
        let strategy = Strategy::from_config(&host::config()).unwrap_or_else(|problem| {
            // A typo in the config must not take routing down for every request: say so
            // and route by latency, which is never a dangerous choice.
            host::log(host::Level::Warn, &format!("{problem}; routing by latency"));
            Strategy::Latency
        });
        Ok(RouteDecision {
            order: rank::order(strategy, request.request_seed, &candidates),
            shadow: None,
        })
    }
}

switchyard_sdk::export_router!(Balanced);
