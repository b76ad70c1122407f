//! The `split` router: A/B by percentage, stable per caller, with an optional shadow
//! deployment that gets a mirrored copy of a share of requests.
//!
//! Plugin config (`[plugins.split.config]`):
//!
//! ```toml
//! split = { gpt-4o = 90, candidate = 10 }   # percent of requests per deployment (sum 100)
//! hash_by = "key"          # "key" (default), "team" or "request": what keeps a caller on one side
//! salt = "2026-11-test"    # a new salt reshuffles who lands where
//! shadow = "llama-rack"    # optional: also sent a copy, its answer discarded
//! shadow_percent = 20      # share of requests mirrored (default 100)
//! ```
//!
//! Each request hashes `salt` and the chosen attribute (the caller's key id, their team,
//! or for `request` the request's own seed) into one of 10,000 buckets, and the bucket
//! picks the deployment by the percentages (counted in name order): the same caller always
//! lands on the same side
//! while the percentages and salt stay, so an A/B comparison is not muddied by users who
//! see both. A caller without a key (or team) is hashed by request. The other variants
//! follow as fallbacks by percentage, then the model's other deployments in config
//! order; deployments with an open circuit go last.
//!
//! The shadow never serves the client: it is left out of the order, and the host sends it
//! a copy off the request path and records its latency, tokens, cost and status in the
//! ledger beside the primary's (`shadow = 1`).

// Tests may unwrap: a failed expectation is the point.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

use std::collections::BTreeMap;

use serde::Deserialize;
use switchyard_sdk::config_error;
use switchyard_sdk::router::rank::{index, open_last, splitmix64};
use switchyard_sdk::router::*;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum HashBy {
    #[default]
    Key,
    Team,
    Request,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    split: BTreeMap<String, f64>,
    #[serde(default)]
    hash_by: HashBy,
    #[serde(default)]
    salt: String,
    shadow: Option<String>,
    shadow_percent: Option<f64>,
}

/// The checked config: variants in config order with their shares in basis points.
#[derive(Debug)]
struct Config {
    variants: Vec<(String, u32)>,
    hash_by: HashBy,
    salt: String,
    shadow: Option<String>,
    /// Basis points of requests mirrored.
    shadow_bp: u32,
}

const BUCKETS: u32 = 10_000;

impl TryFrom<Raw> for Config {
    type Error = PluginError;

    fn try_from(raw: Raw) -> Result<Config, PluginError> {
        if raw.split.is_empty() {
            return Err(config_error("split", "name at least one deployment"));
        }
        let mut variants = Vec::with_capacity(raw.split.len());
        for (name, pct) in &raw.split {
            if !(pct.is_finite() && *pct >= 0.0) {
                return Err(config_error(
                    &format!("split.{name}"),
                    "a percentage from 0 to 100",
                ));
            }
            variants.push((name.clone(), (pct * 100.0).round() as u32));
        }
        let total: u32 = variants.iter().map(|v| v.1).sum();
        let sum: f64 = raw.split.values().sum();
        // Thirds (33.333 + 33.333 + 33.334) round a basis point short: close enough to 100
        // is 100, the last variant takes the difference.
        if (sum - 100.0).abs() < 0.01
            && let Some(last) = variants.last_mut()
        {
            last.1 = (last.1 + BUCKETS).saturating_sub(total);
        } else if total != BUCKETS {
            return Err(config_error(
                "split",
                &format!("the percentages add up to {sum}, not 100"),
            ));
        }
        let shadow_percent = raw.shadow_percent.unwrap_or(100.0);
        if !(0.0..=100.0).contains(&shadow_percent) {
            return Err(config_error("shadow_percent", "a percentage from 0 to 100"));
        }
        if let Some(s) = &raw.shadow
            && raw.split.contains_key(s)
        {
            return Err(config_error(
                "shadow",
                &format!("`{s}` is one of the split's deployments; a shadow never serves"),
            ));
        }
        if raw.shadow.is_none() && raw.shadow_percent.is_some() {
            return Err(config_error(
                "shadow_percent",
                "set `shadow` to a deployment first",
            ));
        }
        Ok(Config {
            variants,
            hash_by: raw.hash_by,
            salt: raw.salt,
            shadow: raw.shadow,
            shadow_bp: (shadow_percent * 100.0).round() as u32,
        })
    }
}

/// FNV-1a over `salt`, a separator and `value`, finished with SplitMix64: stable across
/// builds and platforms (unlike `std`'s hasher), which an assignment must be.
fn stable_hash(salt: &str, value: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in salt.as_bytes().iter().chain(&[0xff]).chain(value) {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    splitmix64(h)
}

/// The request's bucket in `0..BUCKETS`.
fn bucket(config: &Config, request: &RouteRequest) -> u32 {
    let attribute = match config.hash_by {
        HashBy::Key => request.caller.key_id.as_deref(),
        HashBy::Team => request.caller.team.as_deref(),
        HashBy::Request => None,
    };
    let h = match attribute {
        Some(a) => stable_hash(&config.salt, a.as_bytes()),
        None => stable_hash(&config.salt, &request.request_seed.to_le_bytes()),
    };
    (h % u64::from(BUCKETS)) as u32
}

fn rank(config: &Config, request: &RouteRequest, candidates: &[Candidate]) -> RouteDecision {
    let position = |name: &str| candidates.iter().position(|c| c.name == name);
    // The shadow deployment never serves, mirrored this time or not.
    let shadow_at = config.shadow.as_deref().and_then(position);
    let shadow = shadow_at.filter(|_| {
        // Its own hash of the request, so which requests are mirrored does not follow
        // which side of the split they are on.
        let h = stable_hash("shadow", &request.request_seed.to_le_bytes());
        (h % u64::from(BUCKETS)) < u64::from(config.shadow_bp)
    });
    // The variant whose share holds the bucket, counted over the config's order.
    let b = bucket(config, request);
    let mut upto = 0;
    let chosen = config.variants.iter().find(|(_, bp)| {
        upto += bp;
        b < upto
    });
    let mut order: Vec<u32> = Vec::with_capacity(candidates.len());
    let mut push = |i: usize| {
        let i = index(i);
        if !order.contains(&i) && Some(i as usize) != shadow_at {
            order.push(i);
        }
    };
    if let Some(i) = chosen.and_then(|(name, _)| position(name)) {
        push(i);
    }
    let mut others: Vec<&(String, u32)> = config.variants.iter().collect();
    // Stable: equal shares keep config order.
    others.sort_by_key(|v| std::cmp::Reverse(v.1));
    for (name, _) in others {
        if let Some(i) = position(name) {
            push(i);
        }
    }
    for i in 0..candidates.len() {
        push(i);
    }
    RouteDecision {
        order: open_last(order, candidates),
        shadow: shadow.map(index),
    }
}

#[derive(Default)]
struct Split;

impl Router for Split {
    fn route(
        &mut self,
        request: RouteRequest,
        candidates: Vec<Candidate>,
    ) -> Result<RouteDecision, PluginError> {
        let config = Config::try_from(switchyard_sdk::config::<Raw>()?)?;
        Ok(rank(&config, &request, &candidates))
    }
}

switchyard_sdk::export_router!(Split);

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_sdk::parse_config;
    use switchyard_sdk::testing::{candidate, route_request};

    fn config(json: &str) -> Config {
        Config::try_from(parse_config::<Raw>(json).unwrap()).unwrap()
    }

    fn error(json: &str) -> String {
        parse_config::<Raw>(json)
            .and_then(Config::try_from)
            .unwrap_err()
            .message
    }

    fn as_key(seed: u64, key: &str) -> RouteRequest {
        let mut r = route_request(seed);
        r.caller.key_id = Some(key.into());
        r
    }

    fn cands() -> Vec<Candidate> {
        ["a", "b", "spare", "mirror"]
            .into_iter()
            .map(candidate)
            .collect()
    }

    #[test]
    fn shares_hold_within_three_points_over_2000_callers_and_each_caller_sticks() {
        let c = config(r#"{"split": {"a": 90, "b": 10}, "salt": "exp-1"}"#);
        let cs = cands();
        let mut b = 0;
        for k in 0..2000 {
            let key = format!("key-{k}");
            let first = rank(&c, &as_key(k, &key), &cs).order[0];
            if first == 1 {
                b += 1;
            }
            for seed in [7, 99_999] {
                assert_eq!(rank(&c, &as_key(seed, &key), &cs).order[0], first, "sticky");
            }
        }
        let share = f64::from(b) / 2000.0;
        assert!((0.07..=0.13).contains(&share), "b got {share}");
    }

    #[test]
    fn a_new_salt_reshuffles_callers() {
        let cs = cands();
        let one = config(r#"{"split": {"a": 50, "b": 50}, "salt": "one"}"#);
        let two = config(r#"{"split": {"a": 50, "b": 50}, "salt": "two"}"#);
        let moved = (0..1000)
            .filter(|k| {
                let r = as_key(0, &format!("key-{k}"));
                rank(&one, &r, &cs).order[0] != rank(&two, &r, &cs).order[0]
            })
            .count();
        assert!((400..600).contains(&moved), "{moved} of 1000 moved");
    }

    #[test]
    fn by_request_spreads_one_caller_and_by_team_groups_a_team() {
        let cs = cands();
        let c = config(r#"{"split": {"a": 50, "b": 50}, "hash_by": "request"}"#);
        let firsts: std::collections::BTreeSet<u32> = (0..50)
            .map(|s| rank(&c, &as_key(s, "k"), &cs).order[0])
            .collect();
        assert_eq!(firsts.len(), 2, "one caller sees both sides");
        let c = config(r#"{"split": {"a": 50, "b": 50}, "hash_by": "team"}"#);
        let mut r = as_key(1, "k1");
        r.caller.team = Some("research".into());
        let first = rank(&c, &r, &cs).order[0];
        for k in 0..20 {
            r.caller.key_id = Some(format!("other-{k}"));
            r.request_seed = k;
            assert_eq!(rank(&c, &r, &cs).order[0], first, "one team, one side");
        }
    }

    #[test]
    fn fallbacks_follow_and_the_shadow_never_serves() {
        let cs = cands();
        let c =
            config(r#"{"split": {"a": 80, "b": 20}, "shadow": "mirror", "shadow_percent": 25}"#);
        let mut mirrored = 0;
        for s in 0..2000 {
            let d = rank(&c, &route_request(s), &cs);
            assert_eq!(d.order.len(), 3, "every candidate but the shadow");
            assert!(!d.order.contains(&3));
            assert_eq!(d.order[2], 2, "variants first, then the rest");
            if d.shadow == Some(3) {
                mirrored += 1;
            }
        }
        assert!(
            (440..=560).contains(&mirrored),
            "{mirrored} of 2000 mirrored"
        );
        // An open circuit goes last even when the hash picks it.
        let mut cs = cs;
        cs[0].stats.circuit = CircuitState::Open;
        let only_a = config(r#"{"split": {"a": 100, "b": 0}}"#);
        assert_eq!(rank(&only_a, &route_request(1), &cs).order, [1, 2, 3, 0]);
    }

    #[test]
    fn thirds_add_up_to_one_hundred() {
        let c = config(r#"{"split": {"a": 33.333, "b": 33.333, "c": 33.334}}"#);
        assert_eq!(c.variants.iter().map(|v| v.1).sum::<u32>(), BUCKETS);
    }

    #[test]
    fn config_mistakes_are_named() {
        assert!(error(r#"{"split": {"a": 90, "b": 20}}"#).contains("add up to 110"));
        assert!(error(r#"{"split": {}}"#).contains("`split`"));
        assert!(error(r#"{"split": {"a": 100}, "shadow": "a"}"#).contains("`shadow`"));
        assert!(
            error(r#"{"split": {"a": 100}, "shadow_percent": 5}"#).contains("`shadow_percent`")
        );
        assert!(error(r#"{"split": {"a": 100}, "hash": "key"}"#).contains("unknown field `hash`"));
        assert!(error(r#"{"split": {"a": 100}, "hash_by": "user"}"#).contains("hash_by"));
    }
}
