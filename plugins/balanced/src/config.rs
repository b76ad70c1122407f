//! The plugin config (`[plugins.balanced.config]`):
//!
//! ```toml
//! strategy = "latency"       # default; or "cost", or "weighted-random"
//! shadow = "DEPLOYMENT"      # mirror requests to this deployment (answers discarded)
//! shadow_percent = 100       # of requests, by request seed
//! ```

use serde::Deserialize;
use switchyard_sdk::router::{PluginError, host};

use crate::rank::Strategy;

#[derive(Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Config {
    /// Latency when unset.
    pub strategy: Option<Strategy>,
    pub shadow: Option<String>,
    /// Share of requests mirrored to `shadow`; 100 when unset.
    pub shadow_percent: Option<u64>,
}

impl Config {
    /// The config from the host. A broken one must not take routing down for every
    /// request: it is logged and routing falls back to latency without a shadow, which
    /// is never a dangerous choice.
    pub(crate) fn read() -> Config {
        switchyard_sdk::config().unwrap_or_else(|e: PluginError| {
            host::log(
                host::Level::Warn,
                &format!("{}; routing by latency", e.message),
            );
            Config::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_sdk::parse_config;

    #[test]
    fn config_names_the_strategy_or_says_what_is_wrong() {
        assert_eq!(parse_config::<Config>("").unwrap(), Config::default());
        let c: Config =
            parse_config(r#"{"strategy": "weighted-random", "shadow": "b", "shadow_percent": 5}"#)
                .unwrap();
        assert_eq!(c.strategy, Some(Strategy::WeightedRandom));
        assert_eq!(
            (c.shadow.as_deref(), c.shadow_percent),
            (Some("b"), Some(5))
        );
        let e = parse_config::<Config>(r#"{"strategy": "fastest"}"#).unwrap_err();
        assert_eq!(
            e.message,
            "plugin config `strategy`: unknown value, expected one of `latency`, `cost`, \
             `weighted-random`"
        );
        let e = parse_config::<Config>(r#"{"shadow_percnt": 5}"#).unwrap_err();
        assert!(
            e.message
                .starts_with("plugin config: unknown field `shadow_percnt`"),
            "{}",
            e.message
        );
        assert!(parse_config::<Config>("not json").is_err());
    }
}
