//! The serving config generation and its deployment statistics, swapped as a whole
//! (`ArcSwap`) on config reload; a request holds the generation it started with.

use std::collections::HashMap;
use std::sync::Arc;

use crate::config::Config;
use crate::metrics::{Metrics, RouteMetrics};
use crate::stats::Stats;

/// The config generation a request runs against, with the statistics for its
/// deployments. Swapped as a whole on config reload.
pub struct Live {
    pub config: Arc<Config>,
    pub stats: Stats,
    /// Increases with every applied config.
    pub generation: u64,
    /// Each model's metric handles, resolved once per generation so that a request
    /// only touches atomics.
    pub route_metrics: HashMap<String, Arc<RouteMetrics>>,
}

impl Live {
    pub fn new(config: Arc<Config>, previous: Option<&Live>, metrics: &Metrics) -> Live {
        let stats = Stats::carry_over(
            previous.map(|p| &p.stats),
            config.deployments.keys().map(String::as_str),
        );
        let route_metrics = config
            .models
            .values()
            .map(|m| {
                let deployments: Vec<(&str, &str)> = m
                    .deployments
                    .iter()
                    .map(|d| (d.name.as_str(), d.adapter.as_str()))
                    .collect();
                (
                    m.name.clone(),
                    Arc::new(metrics.route(&m.name, &deployments)),
                )
            })
            .collect();
        Live {
            route_metrics,
            config,
            stats,
            generation: previous.map_or(1, |p| p.generation + 1),
        }
    }
}
