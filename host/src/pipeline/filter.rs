//! `filter_request` and `filter_response`: the model's compliance filters, in config
//! order, in one instance per filter for the whole request.
//!
//! A filter that faults or is missing fails closed (503) unless the model says
//! `filter_failure = "open"`.

use crate::canonical::{ChatRequest, ChatResponse};
use crate::config::FilterFailure;
use crate::error::GatewayError;
use crate::sandbox::FilterInstance;
use crate::sandbox::filter_api::{RequestContext, RequestVerdict, ResponseVerdict};

use super::RequestCtx;

/// A filter's live instance for this request.
pub struct ActiveFilter {
    pub name: String,
    pub instance: FilterInstance,
}

/// Tag constraints collected from every filter.
#[derive(Debug, Default, Clone)]
pub struct Constraints {
    pub require: Vec<String>,
    pub forbid: Vec<String>,
}

pub(super) fn context(ctx: &RequestCtx) -> RequestContext {
    RequestContext {
        request_id: ctx.request_id.clone(),
        caller: ctx.caller.clone(),
        model: ctx.model.name.clone(),
    }
}

fn failure(ctx: &mut RequestCtx, name: &str, reason: String) -> Result<(), GatewayError> {
    tracing::warn!(request_id = %ctx.request_id, filter = name, %reason, "filter failed");
    match ctx.model.filter_failure {
        FilterFailure::Open => {
            ctx.note(name, "failed; skipped (filter_failure = open)");
            Ok(())
        }
        FilterFailure::Closed => Err(GatewayError::FilterUnavailable {
            filter: name.to_owned(),
            billed: ctx.billed,
        }),
    }
}

/// Runs every filter's `on-request`.
pub(super) fn on_request(
    ctx: &mut RequestCtx,
    mut req: ChatRequest,
) -> Result<(ChatRequest, Vec<ActiveFilter>, Constraints), GatewayError> {
    let mut active = Vec::with_capacity(ctx.model.filters.len());
    let mut constraints = Constraints::default();
    let rc = context(ctx);
    let model = ctx.model.clone();
    for name in &model.filters {
        let Some(plugin) = ctx.plugins.get(name.as_str()) else {
            failure(ctx, name, "the plugin is not loaded".into())?;
            continue;
        };
        let mut instance = match plugin.filter() {
            Ok(i) => i,
            Err(e) => {
                failure(ctx, name, e.to_string())?;
                continue;
            }
        };
        match instance.on_request(&rc, &req) {
            Err(fault) => {
                failure(ctx, name, fault.to_string())?;
                continue;
            }
            Ok(Err(e)) => {
                failure(ctx, name, e.message)?;
                continue;
            }
            Ok(Ok(outcome)) => {
                match outcome.verdict {
                    RequestVerdict::Allow => {}
                    RequestVerdict::Rewrite(new) => {
                        ctx.note(name, "rewrote request");
                        req = new;
                    }
                    RequestVerdict::Deny(d) => {
                        ctx.note(name, "denied request");
                        return Err(GatewayError::Denied {
                            filter: name.clone(),
                            status: d.status,
                            code: d.code,
                            message: d.message,
                        });
                    }
                }
                if let Some(c) = outcome.constraints {
                    ctx.note(name, "constrained routing");
                    constraints.require.extend(c.require_tags);
                    constraints.forbid.extend(c.forbid_tags);
                }
            }
        }
        active.push(ActiveFilter {
            name: name.clone(),
            instance,
        });
    }
    Ok((req, active, constraints))
}

/// Runs every filter's `on-response`, in the same order and instances.
pub(super) fn on_response(
    ctx: &mut RequestCtx,
    filters: &mut [ActiveFilter],
    mut resp: ChatResponse,
) -> Result<ChatResponse, GatewayError> {
    let rc = context(ctx);
    for f in filters.iter_mut() {
        match f.instance.on_response(&rc, &resp) {
            Err(fault) => failure(ctx, &f.name, fault.to_string())?,
            Ok(Err(e)) => failure(ctx, &f.name, e.message)?,
            Ok(Ok(ResponseVerdict::Allow)) => {}
            Ok(Ok(ResponseVerdict::Rewrite(new))) => {
                ctx.note(&f.name, "rewrote response");
                resp = new;
            }
            Ok(Ok(ResponseVerdict::Deny(d))) => {
                ctx.note(&f.name, "denied response");
                return Err(GatewayError::Denied {
                    filter: f.name.clone(),
                    status: d.status,
                    code: d.code,
                    message: d.message,
                });
            }
        }
    }
    Ok(resp)
}
