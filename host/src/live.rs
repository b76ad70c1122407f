//! The serving config generation and its deployment statistics, swapped as a whole
//! (`ArcSwap`) on config reload; a request holds the generation it started with.

use std::sync::Arc;

use crate::config::Config;
use crate::stats::Stats;

/// The config generation a request runs against, with the statistics for its
/// deployments. Swapped as a whole on config reload.
pub struct Live {
    pub config: Arc<Config>,
    pub stats: Stats,
    /// Increases with every applied config.
    pub generation: u64,
}

impl Live {
    pub fn new(config: Arc<Config>, previous: Option<&Live>) -> Live {
        let stats = Stats::carry_over(
            previous.map(|p| &p.stats),
            config.deployments.keys().map(String::as_str),
        );
        Live {
            config,
            stats,
            generation: previous.map_or(1, |p| p.generation + 1),
        }
    }
}
