//! The one place errors become HTTP responses: status + the OpenAI error body
//! `{"error":{"message","type","param","code"}}` + headers (`retry-after`,
//! `x-should-retry`). 5xx bodies never carry internals or secrets.

use std::time::Duration;

use hyper::StatusCode;

use crate::server::openai::BadRequest;

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
            Unauthorized => StatusCode::UNAUTHORIZED,
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
            Unauthorized => "authentication_error",
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
            Unauthorized => "invalid_api_key".into(),
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

    fn param(&self) -> Option<&str> {
        match self {
            GatewayError::BadRequest(b) => b.param.as_deref(),
            GatewayError::ModelNotFound(_) => Some("model"),
            _ => None,
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
        )
    }

    /// The JSON body. Internal details stay in the log.
    pub fn body(&self) -> serde_json::Value {
        let message = match self {
            GatewayError::Internal(_) => {
                "The gateway hit an internal error. It was logged.".to_owned()
            }
            other => other.to_string(),
        };
        serde_json::json!({
            "error": {
                "message": message,
                "type": self.kind(),
                "param": self.param(),
                "code": self.code(),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_has_the_openai_shape() {
        let e = GatewayError::UnknownRoute {
            method: "GET".into(),
            path: "/v2/x".into(),
        };
        assert_eq!(e.status(), StatusCode::NOT_FOUND);
        let b = e.body();
        let err = b["error"].as_object().unwrap();
        let mut keys: Vec<_> = err.keys().map(String::as_str).collect();
        keys.sort();
        assert_eq!(keys, ["code", "message", "param", "type"]);
        assert!(err["param"].is_null());
        assert_eq!(err["type"], "invalid_request_error");
    }

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
    fn internal_details_never_reach_the_body() {
        let e = GatewayError::Internal("secret path /etc/x".into());
        assert!(!e.body().to_string().contains("/etc/x"));
    }
}
