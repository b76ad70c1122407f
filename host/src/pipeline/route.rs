//! `route`: the deployments that may serve the request, ranked by the model's router
//! plugin. A router that is missing, faults or errs fails open to the config's order:
//! routing is an optimisation, not a policy.

use std::sync::Arc;

use crate::canonical::{ChatRequest, ContentPart};
use crate::config::Deployment;
use crate::error::GatewayError;
use crate::sandbox::router_api::{Candidate, CircuitState, DeploymentStats, RouteRequest};
use crate::stats::{Circuit, StatsView};

use super::RequestCtx;
use super::filter::Constraints;

/// Rough prompt size for routers: ~4 bytes per token, as providers' rules of thumb say.
fn estimate_tokens(req: &ChatRequest) -> u32 {
    let bytes: usize = req
        .messages
        .iter()
        .flat_map(|m| &m.content)
        .map(|p| match p {
            ContentPart::Text(t) => t.len(),
            ContentPart::Image(_) => 1000,
            ContentPart::Other(o) => o.len(),
        })
        .sum();
    u32::try_from(bytes / 4).unwrap_or(u32::MAX)
}

fn circuit(c: Circuit) -> CircuitState {
    match c {
        Circuit::Closed => CircuitState::Closed,
        Circuit::HalfOpen => CircuitState::HalfOpen,
        Circuit::Open => CircuitState::Open,
    }
}

fn candidate(d: &Deployment, s: StatsView) -> Candidate {
    Candidate {
        name: d.name.clone(),
        adapter: d.adapter.clone(),
        tags: d.tags.clone(),
        input_price_per_mtok: d.input_price,
        output_price_per_mtok: d.output_price,
        weight: d.weight,
        stats: DeploymentStats {
            latency_ewma_ms: s.latency_ewma_ms,
            ttft_ewma_ms: s.ttft_ewma_ms,
            error_rate: s.error_rate,
            in_flight: s.in_flight,
            circuit: circuit(s.circuit),
            requests: s.requests,
            rate_limit_headroom: s.rate_limit_headroom,
        },
    }
}

/// The router's answer, resolved to deployments.
pub(super) struct Ranked {
    /// The deployments to try, best first.
    pub order: Vec<Arc<Deployment>>,
    /// A deployment that also gets the request; its answer is discarded.
    pub shadow: Option<Arc<Deployment>>,
}

/// The deployments to try, best first, and the shadow, if the router named one.
pub(super) fn rank(
    ctx: &mut RequestCtx,
    req: &ChatRequest,
    c: &Constraints,
) -> Result<Ranked, GatewayError> {
    let eligible: Vec<Arc<Deployment>> = ctx
        .model
        .deployments
        .iter()
        .filter(|d| c.require.iter().all(|t| d.tags.contains(t)))
        .filter(|d| !c.forbid.iter().any(|t| d.tags.contains(t)))
        .filter(|d| d.unavailable().is_none())
        .cloned()
        .collect();
    if eligible.is_empty() {
        return Err(GatewayError::NoDeployment {
            model: ctx.model.name.clone(),
        });
    }
    let views: Vec<StatsView> = eligible
        .iter()
        .map(|d| {
            ctx.live
                .stats
                .get(&d.name)
                .map(|s| s.view())
                .unwrap_or(StatsView {
                    latency_ewma_ms: 0.0,
                    ttft_ewma_ms: 0.0,
                    error_rate: 0.0,
                    in_flight: 0,
                    requests: 0,
                    circuit: Circuit::Closed,
                    rate_limit_headroom: None,
                })
        })
        .collect();
    let model = ctx.model.clone();
    let (order, shadow) = match &model.router {
        None => ((0..eligible.len()).collect(), None),
        Some(name) => match ask_router(ctx, name, req, &eligible, &views) {
            Some(answer) => {
                ctx.note(name, "ranked");
                answer
            }
            None => {
                ctx.note(name, "failed; config order used");
                ((0..eligible.len()).collect(), None)
            }
        },
    };
    let shadow = shadow.map(|i| eligible[i].clone());
    // Open circuits go last: tried only when everything else failed.
    let (mut ranked, open): (Vec<_>, Vec<_>) = order
        .into_iter()
        .map(|i| (eligible[i].clone(), views[i].circuit))
        .partition(|(_, c)| *c != Circuit::Open);
    ranked.extend(open);
    if ranked.is_empty() {
        return Err(GatewayError::NoDeployment {
            model: ctx.model.name.clone(),
        });
    }
    Ok(Ranked {
        order: ranked.into_iter().map(|(d, _)| d).collect(),
        shadow,
    })
}

fn ask_router(
    ctx: &mut RequestCtx,
    name: &str,
    req: &ChatRequest,
    eligible: &[Arc<Deployment>],
    views: &[StatsView],
) -> Option<(Vec<usize>, Option<usize>)> {
    let warn = |reason: String| {
        tracing::warn!(request_id = %ctx.request_id, router = name, %reason, "router failed; using the config's order");
    };
    let Some(plugin) = ctx.plugins.get(name) else {
        warn("the plugin is not loaded".into());
        return None;
    };
    let mut inst = match plugin.router() {
        Ok(i) => i,
        Err(e) => {
            warn(e.to_string());
            return None;
        }
    };
    let candidates: Vec<Candidate> = eligible
        .iter()
        .zip(views)
        .map(|(d, v)| candidate(d, *v))
        .collect();
    let rr = RouteRequest {
        model: ctx.model.name.clone(),
        estimated_prompt_tokens: estimate_tokens(req),
        max_tokens: req.sampling.max_tokens,
        stream: req.stream,
        has_tools: !req.tools.is_empty(),
        caller: ctx.caller.clone(),
        request_seed: seed(&ctx.request_id),
    };
    let ranked = match inst.route(&rr, &candidates) {
        Err(fault) => {
            warn(fault.to_string());
            None
        }
        Ok(Err(e)) => {
            warn(e.message);
            None
        }
        Ok(Ok(decision)) => {
            let named = decision.order.len();
            let mut seen = vec![false; eligible.len()];
            let order: Vec<usize> = decision
                .order
                .into_iter()
                .map(|i| i as usize)
                .filter(|i| *i < eligible.len() && !std::mem::replace(&mut seen[*i], true))
                .collect();
            let shadow = decision
                .shadow
                .map(|i| i as usize)
                .filter(|i| *i < eligible.len());
            if order.is_empty() && named > 0 {
                // Only indices that do not exist: a broken router, not "none can serve".
                warn(format!(
                    "every index of its answer is out of range ({named} given)"
                ));
                None
            } else {
                Some((order, shadow))
            }
        }
    };
    ctx.retire(inst);
    ranked
}

/// A stable per-request number (FNV-1a of the request id).
fn seed(id: &str) -> u64 {
    id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}
