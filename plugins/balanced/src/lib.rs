//! The `balanced` router: ranks deployments by live latency and error rate (or by price,
//! or by weighted chance), keeping deployments with an open circuit as a last resort.
//!
//! Plugin config (`[plugins.balanced.config]`, see `config`): `strategy = "latency"`
//! (default), `"cost"` or `"weighted-random"`; `shadow = "DEPLOYMENT"` mirrors requests to
//! that deployment (its answers are discarded and it never serves the client), for
//! `shadow_percent` (default 100) of requests.

// Tests may unwrap: a failed expectation is the point.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod config;
mod rank;

use switchyard_sdk::router::*;

use config::Config;

#[derive(Default)]
struct Balanced;

impl Router for Balanced {
    fn route(
        &mut self,
        request: RouteRequest,
        candidates: Vec<Candidate>,
    ) -> Result<RouteDecision, PluginError> {
        let config = Config::read();
        let shadow = shadow(&config, request.request_seed, &candidates);
        let strategy = config.strategy.unwrap_or_default();
        let order = rank::order(strategy, request.request_seed, &candidates)
            .into_iter()
            .filter(|i| Some(*i) != shadow)
            .collect();
        Ok(RouteDecision { order, shadow })
    }
}

/// The mirrored candidate for this request, if the config names one that is present.
fn shadow(config: &Config, seed: u64, candidates: &[Candidate]) -> Option<u32> {
    let name = config.shadow.as_deref()?;
    if seed % 100 >= config.shadow_percent.unwrap_or(100) {
        return None;
    }
    let i = candidates.iter().position(|c| c.name == name)?;
    u32::try_from(i).ok()
}

switchyard_sdk::export_router!(Balanced);
