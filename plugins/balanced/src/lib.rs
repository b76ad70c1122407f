//! The `balanced` router: ranks deployments by live latency and error rate (or by price,
//! or by weighted chance), keeping deployments with an open circuit as a last resort.
//!
//! Plugin config (`[plugins.balanced.config]`): `strategy = "latency"` (default),
//! `"cost"` or `"weighted-random"`; `shadow = "DEPLOYMENT"` mirrors requests to that
//! deployment (its answers are discarded and it never serves the client), for
//! `shadow_percent` (default 100) of requests.

// Tests may unwrap: a failed expectation is the point.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod rank;

use switchyard_sdk::router::*;

use rank::Strategy;

struct Balanced;

impl Router for Balanced {
    fn route(
        request: RouteRequest,
        candidates: Vec<Candidate>,
    ) -> Result<RouteDecision, PluginError> {
        let config = host::config();
        let strategy = Strategy::from_config(&config).unwrap_or_else(|problem| {
            // A typo in the config must not take routing down for every request: say so
            // and route by latency, which is never a dangerous choice.
            host::log(host::Level::Warn, &format!("{problem}; routing by latency"));
            Strategy::Latency
        });
        let shadow = shadow(&config, request.request_seed, &candidates);
        let order = rank::order(strategy, request.request_seed, &candidates)
            .into_iter()
            .filter(|i| Some(*i) != shadow)
            .collect();
        Ok(RouteDecision { order, shadow })
    }
}

/// The mirrored candidate for this request, if the config names one that is present.
fn shadow(config: &str, seed: u64, candidates: &[Candidate]) -> Option<u32> {
    let value: serde_json::Value = serde_json::from_str(config).ok()?;
    let name = value.get("shadow")?.as_str()?;
    let percent = value
        .get("shadow_percent")
        .and_then(serde_json::Value::as_u64)
        .unwrap_or(100);
    if seed % 100 >= percent {
        return None;
    }
    let i = candidates.iter().position(|c| c.name == name)?;
    u32::try_from(i).ok()
}

switchyard_sdk::export_router!(Balanced);
