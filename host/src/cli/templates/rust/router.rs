//! {{name}}: a Switchyard router. Deployments carrying the configured tag first, then
//! the cheapest; deployments whose circuit is open last.
//!
//! Config (`[plugins.{{name}}] config = { prefer_tag = "fast" }`), optional.

use serde::Deserialize;
use switchyard_sdk::router::*;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Config {
    prefer_tag: Option<String>,
}

#[derive(Default)]
struct Plugin;

impl Router for Plugin {
    fn route(
        &mut self,
        request: RouteRequest,
        candidates: Vec<Candidate>,
    ) -> Result<RouteDecision, PluginError> {
        let config: Config = switchyard_sdk::config()?;
        let order = rank(&config, &candidates);
        if let Some(first) = order.first() {
            switchyard_sdk::log(
                host::Level::Debug,
                &format!("{} -> {}", request.model, candidates[*first as usize].name),
            );
        }
        Ok(RouteDecision {
            order,
            shadow: None,
        })
    }
}

fn rank(config: &Config, candidates: &[Candidate]) -> Vec<u32> {
    let key = |c: &Candidate| {
        let open = c.stats.circuit == CircuitState::Open;
        let untagged = config
            .prefer_tag
            .as_ref()
            .is_some_and(|t| !c.tags.contains(t));
        (open, untagged, c.input_price_per_mtok + c.output_price_per_mtok)
    };
    let mut order: Vec<u32> = (0..candidates.len() as u32).collect();
    order.sort_by(|a, b| {
        let (ka, kb) = (key(&candidates[*a as usize]), key(&candidates[*b as usize]));
        ka.0.cmp(&kb.0)
            .then(ka.1.cmp(&kb.1))
            .then(ka.2.total_cmp(&kb.2))
    });
    order
}

switchyard_sdk::export_router!(Plugin);

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_sdk::testing::candidate;

    fn priced(name: &str, price: f64, tags: &[&str]) -> Candidate {
        let mut c = candidate(name);
        c.input_price_per_mtok = price;
        c.tags = tags.iter().map(|t| t.to_string()).collect();
        c
    }

    #[test]
    fn tagged_first_then_cheapest_and_open_circuits_last() {
        let mut cs = vec![
            priced("dear-fast", 9.0, &["fast"]),
            priced("cheap", 1.0, &[]),
            priced("cheap-fast", 2.0, &["fast"]),
        ];
        assert_eq!(rank(&Config::default(), &cs), vec![1, 2, 0]);
        let fast = Config {
            prefer_tag: Some("fast".into()),
        };
        assert_eq!(rank(&fast, &cs), vec![2, 0, 1]);
        cs[2].stats.circuit = CircuitState::Open;
        assert_eq!(rank(&fast, &cs), vec![0, 1, 2]);
    }

    #[test]
    fn a_typo_in_the_config_is_an_error_naming_it() {
        let e = switchyard_sdk::parse_config::<Config>(r#"{"prefer": "x"}"#).unwrap_err();
        assert!(e.message.contains("prefer"), "{}", e.message);
    }
}
