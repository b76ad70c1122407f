//! Error classification, independent of any wire format: the HTTP status, a stable
//! `type` and `code`, the client-safe message, and retry hints. Each ingress renders
//! these in its own shape (`server::openai::error_body` for OpenAI's
//! `{"error":{"message","type","param","code"}}`).
//!
//! Invariant: `public_message` never carries internals: no deployment names, network
//! error chains, plugin trap text or keys. `Display` is the detailed form, for logs.

use std::time::Duration;

use hyper::StatusCode;

/// A request the client got wrong: becomes a 400 naming the parameter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct BadRequest {
    pub param: Option<String>,
    pub message: String,
}

/// Why one deployment could not serve a request (the next one was tried).
#[derive(Debug, Clone, thiserror::Error)]
pub enum UpstreamFailure {
    #[error("{deployment}: unavailable: {reason}")]
    Unavailable { deployment: String, reason: String },
    /// The adapter cannot express this request (e.g. `n` > 1 for Anthropic).
    #[error("{deployment}: {reason}")]
    Unsupported { deployment: String, reason: String },
    #[error("{deployment}: {reason}")]
    Transport { deployment: String, reason: String },
    #[error("{deployment}: no answer within {after:?}")]
    Timeout { deployment: String, after: Duration },
    #[error("{deployment}: HTTP {status}: {message}")]
    Status {
        deployment: String,
        status: u16,
        message: String,
        retry_after: Option<u64>,
    },
    #[error("{deployment}: unreadable answer: {reason}")]
    BadResponse { deployment: String, reason: String },
    #[error("{deployment}: stream broke before any content: {reason}")]
    StreamBroken { deployment: String, reason: String },
}

/// Which per-minute limit a request hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    Requests,
    Tokens,
}

impl Limit {
    pub fn as_str(self) -> &'static str {
        match self {
            Limit::Requests => "requests",
            Limit::Tokens => "tokens",
        }
    }
}

/// An error that ends a request.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("Unknown request URL: {method} {path}. Please check the URL for typos.")]
    UnknownRoute { method: String, path: String },
    #[error("{method} is not allowed on {path}")]
    MethodNotAllowed { method: String, path: String },
    #[error("the gateway is not ready: {0}")]
    NotReady(String),
    #[error("{0}")]
    BadRequest(BadRequest),
    #[error("the request body exceeds {0} bytes")]
    TooLarge(usize),
    #[error("Incorrect API key provided. Pass a valid key as `Authorization: Bearer <key>`.")]
    Unauthorized,
    #[error("This API key has expired.")]
    KeyExpired,
    #[error("This key may not use the admin API; present an admin key ([auth] admin_keys).")]
    NotAdmin,
    #[error("This key may not use the model `{0}`.")]
    ModelNotAllowed(String),
    #[error("{}", rate_limited_message(*.limit, .scope, .name, *.limit_value, *.wait_ms))]
    RateLimited {
        limit: Limit,
        /// `key` or `team`.
        scope: &'static str,
        name: String,
        limit_value: u64,
        /// `None`: the request is larger than the whole limit and can never pass.
        wait_ms: Option<u64>,
    },
    #[error(
        "The {scope} `{name}` has spent its budget for this {period} (or reserved the rest for requests in flight)."
    )]
    BudgetExceeded {
        scope: &'static str,
        name: String,
        period: &'static str,
    },
    #[error("The model `{0}` does not exist or you do not have access to it.")]
    ModelNotFound(String),
    #[error("{message}")]
    Denied {
        filter: String,
        status: u16,
        code: String,
        message: String,
    },
    #[error("the compliance filter `{filter}` is unavailable, so the request was not sent")]
    FilterUnavailable { filter: String, billed: bool },
    #[error("no deployment of model `{model}` can serve this request")]
    NoDeployment { model: String },
    #[error("{message}")]
    AdapterRejected { deployment: String, message: String },
    #[error("the provider rejected the request: {message}")]
    UpstreamRejected {
        deployment: String,
        status: u16,
        message: String,
    },
    #[error("every deployment failed: {}", summary(.failures))]
    AllFailed {
        failures: Vec<UpstreamFailure>,
        billed: bool,
    },
    #[error("internal error")]
    Internal(String),
}

fn rate_limited_message(
    limit: Limit,
    scope: &str,
    name: &str,
    limit_value: u64,
    wait_ms: Option<u64>,
) -> String {
    let what = limit.as_str();
    match wait_ms {
        Some(ms) => format!(
            "Rate limit reached for {scope} `{name}` on {what} per minute: limit {limit_value}. Please try again in {}.",
            crate::governance::limits::reset_text(ms)
        ),
        None => format!(
            "Request too large for {scope} `{name}` on {what} per minute: limit {limit_value}. Send fewer tokens or lower max_tokens."
        ),
    }
}

/// Every deployment refused the request as unsupported: the client's request is at
/// fault, and retrying cannot help.
fn all_unsupported(failures: &[UpstreamFailure]) -> bool {
    !failures.is_empty()
        && failures
            .iter()
            .all(|f| matches!(f, UpstreamFailure::Unsupported { .. }))
}

fn summary(failures: &[UpstreamFailure]) -> String {
    if failures.is_empty() {
        return "no deployment was tried".into();
    }
    failures
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

impl GatewayError {
    pub fn status(&self) -> StatusCode {
        use GatewayError::*;
        match self {
            UnknownRoute { .. } | ModelNotFound(_) => StatusCode::NOT_FOUND,
            MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            NotReady(_) | FilterUnavailable { .. } | NoDeployment { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            BadRequest(_) | AdapterRejected { .. } => StatusCode::BAD_REQUEST,
            TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Unauthorized | KeyExpired => StatusCode::UNAUTHORIZED,
            NotAdmin | ModelNotAllowed(_) => StatusCode::FORBIDDEN,
            RateLimited { .. } | BudgetExceeded { .. } => StatusCode::TOO_MANY_REQUESTS,
            Denied { status, .. } => StatusCode::from_u16(*status)
                .ok()
                .filter(StatusCode::is_client_error)
                .unwrap_or(StatusCode::BAD_REQUEST),
            UpstreamRejected { status, .. } => match status {
                400 | 413 | 422 => StatusCode::from_u16(*status).unwrap_or(StatusCode::BAD_REQUEST),
                // The provider refused the gateway's own credentials or routing: not the
                // client's fault.
                _ => StatusCode::BAD_GATEWAY,
            },
            AllFailed { failures, .. } if all_unsupported(failures) => StatusCode::BAD_REQUEST,
            AllFailed { failures, .. } => match failures.last() {
                Some(UpstreamFailure::Status { status: 429, .. }) => StatusCode::TOO_MANY_REQUESTS,
                Some(UpstreamFailure::Timeout { .. }) => StatusCode::GATEWAY_TIMEOUT,
                Some(UpstreamFailure::Unavailable { .. }) | None => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::BAD_GATEWAY,
            },
            Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// OpenAI's `type` field.
    pub fn kind(&self) -> &'static str {
        use GatewayError::*;
        match self {
            UnknownRoute { .. }
            | MethodNotAllowed { .. }
            | BadRequest(_)
            | TooLarge(_)
            | ModelNotFound(_)
            | Denied { .. }
            | AdapterRejected { .. } => "invalid_request_error",
            Unauthorized | KeyExpired => "authentication_error",
            NotAdmin | ModelNotAllowed(_) => "permission_error",
            // As OpenAI types its own rate-limit errors.
            RateLimited { limit, .. } => limit.as_str(),
            BudgetExceeded { .. } => "insufficient_quota",
            UpstreamRejected {
                status: 400 | 413 | 422,
                ..
            } => "invalid_request_error",
            AllFailed { .. } if self.status() == StatusCode::TOO_MANY_REQUESTS => {
                "rate_limit_error"
            }
            NotReady(_) | FilterUnavailable { .. } | NoDeployment { .. } => {
                "service_unavailable_error"
            }
            UpstreamRejected { .. } | AllFailed { .. } | Internal(_) => "server_error",
        }
    }

    /// OpenAI's `code` field, also a low-cardinality label for metrics.
    pub fn code(&self) -> String {
        use GatewayError::*;
        match self {
            UnknownRoute { .. } => "unknown_url".into(),
            MethodNotAllowed { .. } => "method_not_allowed".into(),
            NotReady(_) => "not_ready".into(),
            BadRequest(_) => "invalid_request".into(),
            TooLarge(_) => "request_too_large".into(),
            Unauthorized | KeyExpired => "invalid_api_key".into(),
            NotAdmin => "admin_key_required".into(),
            ModelNotAllowed(_) => "model_not_allowed".into(),
            RateLimited { .. } => "rate_limit_exceeded".into(),
            BudgetExceeded { .. } => "insufficient_quota".into(),
            ModelNotFound(_) => "model_not_found".into(),
            Denied { code, .. } => code.clone(),
            FilterUnavailable { .. } => "filter_unavailable".into(),
            NoDeployment { .. } => "no_deployment_available".into(),
            AdapterRejected { .. } => "unsupported_request".into(),
            UpstreamRejected { .. } => "upstream_rejected".into(),
            AllFailed { .. } => match self.status() {
                StatusCode::BAD_REQUEST => "unsupported_request".into(),
                StatusCode::TOO_MANY_REQUESTS => "rate_limit_exceeded".into(),
                StatusCode::GATEWAY_TIMEOUT => "upstream_timeout".into(),
                _ => "upstream_error".into(),
            },
            Internal(_) => "internal_error".into(),
        }
    }

    /// Seconds the client should wait before retrying, when that is known.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            GatewayError::AllFailed { failures, .. } if all_unsupported(failures) => None,
            GatewayError::AllFailed { failures, .. } => match failures.last() {
                Some(UpstreamFailure::Status {
                    status: 429,
                    retry_after,
                    ..
                }) => Some(retry_after.unwrap_or(1).min(120)),
                _ => Some(1),
            },
            GatewayError::RateLimited {
                wait_ms: Some(ms), ..
            } => Some(ms.div_ceil(1000).max(1)),
            GatewayError::NotReady(_)
            | GatewayError::NoDeployment { .. }
            | GatewayError::FilterUnavailable { .. } => Some(1),
            _ => None,
        }
    }

    /// Whether the client must not retry: an upstream may already have billed the call,
    /// and the OpenAI SDK retries every 5xx otherwise.
    pub fn no_retry(&self) -> bool {
        matches!(
            self,
            GatewayError::AllFailed { billed: true, .. }
                | GatewayError::FilterUnavailable { billed: true, .. }
                | GatewayError::BudgetExceeded { .. }
                | GatewayError::RateLimited { wait_ms: None, .. }
        )
    }

    /// `param`: the request field at fault, when one is.
    pub fn param(&self) -> Option<&str> {
        match self {
            GatewayError::BadRequest(b) => b.param.as_deref(),
            GatewayError::ModelNotFound(_) | GatewayError::ModelNotAllowed(_) => Some("model"),
            _ => None,
        }
    }

    /// What a client may be told. Server-side failures get a stable, generic text (the
    /// details go to the log under the request id); client errors say what to fix.
    pub fn public_message(&self) -> String {
        use GatewayError::*;
        match self {
            AllFailed { failures, .. } if all_unsupported(failures) => {
                // The adapters' reasons describe the request, not the deployment.
                let reasons: Vec<&str> = failures
                    .iter()
                    .filter_map(|f| match f {
                        UpstreamFailure::Unsupported { reason, .. } => Some(reason.as_str()),
                        _ => None,
                    })
                    .collect();
                format!(
                    "No deployment of this model supports this request: {}",
                    reasons.first().copied().unwrap_or("unsupported")
                )
            }
            AllFailed { .. } => match self.status() {
                StatusCode::TOO_MANY_REQUESTS => {
                    "The model's providers are rate limiting requests; retry later.".into()
                }
                StatusCode::GATEWAY_TIMEOUT => {
                    "The model's provider did not answer in time.".into()
                }
                StatusCode::SERVICE_UNAVAILABLE => {
                    "No deployment of this model is available right now.".into()
                }
                _ => "The model's provider failed to answer.".into(),
            },
            UpstreamRejected {
                status: 400 | 413 | 422,
                message,
                ..
            } => {
                format!("The provider rejected the request: {message}")
            }
            UpstreamRejected { .. } => "The model's provider refused the gateway's request.".into(),
            FilterUnavailable { .. } => {
                "A compliance filter could not check this request, so it was not sent.".into()
            }
            NotReady(_) => "The gateway is starting or stopping; retry shortly.".into(),
            Internal(_) => "The gateway hit an internal error.".into(),
            other => other.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exhausted_fallbacks_take_the_last_failures_status() {
        let f = |last: UpstreamFailure| GatewayError::AllFailed {
            failures: vec![last],
            billed: false,
        };
        let rl = f(UpstreamFailure::Status {
            deployment: "a".into(),
            status: 429,
            message: "slow".into(),
            retry_after: Some(7),
        });
        assert_eq!(
            (rl.status(), rl.retry_after()),
            (StatusCode::TOO_MANY_REQUESTS, Some(7))
        );
        assert_eq!(rl.kind(), "rate_limit_error");
        let to = f(UpstreamFailure::Timeout {
            deployment: "a".into(),
            after: Duration::from_secs(1),
        });
        assert_eq!(to.status(), StatusCode::GATEWAY_TIMEOUT);
        let br = GatewayError::AllFailed {
            failures: vec![],
            billed: true,
        };
        assert!(br.no_retry());
    }

    #[test]
    fn server_side_messages_name_no_deployment_or_network_detail() {
        let failures = vec![
            UpstreamFailure::Status {
                deployment: "mock-secret-deployment".into(),
                status: 500,
                message: "boom".into(),
                retry_after: None,
            },
            UpstreamFailure::Transport {
                deployment: "dead".into(),
                reason: "tcp connect error: Connection refused (os error 111)".into(),
            },
        ];
        let errors = [
            GatewayError::AllFailed {
                failures,
                billed: false,
            },
            GatewayError::Internal("secret path /etc/x".into()),
            GatewayError::FilterUnavailable {
                filter: "pii-redact".into(),
                billed: false,
            },
            GatewayError::UpstreamRejected {
                deployment: "azure-east".into(),
                status: 401,
                message: "Incorrect API key".into(),
            },
        ];
        for e in errors {
            let m = e.public_message();
            for leak in [
                "mock-secret",
                "dead",
                "os error",
                "/etc/x",
                "pii-redact",
                "azure",
                "Incorrect",
            ] {
                assert!(!m.contains(leak), "{m} leaks {leak}");
            }
            assert!(e.to_string().len() > 10, "the log form keeps detail");
        }
    }
}
