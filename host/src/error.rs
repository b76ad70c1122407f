//! The one place errors become HTTP responses: status + the OpenAI error body
//! `{"error":{"message","type","param","code"}}`. 5xx bodies never carry internals.

use hyper::StatusCode;

/// An error that ends a request.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("Unknown request URL: {method} {path}. Please check the URL for typos.")]
    UnknownRoute { method: String, path: String },
    #[error("{method} is not allowed on {path}")]
    MethodNotAllowed { method: String, path: String },
    #[error("the gateway is not ready: {0}")]
    NotReady(String),
}

impl GatewayError {
    pub fn status(&self) -> StatusCode {
        match self {
            GatewayError::UnknownRoute { .. } => StatusCode::NOT_FOUND,
            GatewayError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            GatewayError::NotReady(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// OpenAI's `type` field.
    pub fn kind(&self) -> &'static str {
        match self {
            GatewayError::UnknownRoute { .. } | GatewayError::MethodNotAllowed { .. } => {
                "invalid_request_error"
            }
            GatewayError::NotReady(_) => "service_unavailable_error",
        }
    }

    /// OpenAI's `code` field, also a low-cardinality label for metrics.
    pub fn code(&self) -> &'static str {
        match self {
            GatewayError::UnknownRoute { .. } => "unknown_url",
            GatewayError::MethodNotAllowed { .. } => "method_not_allowed",
            GatewayError::NotReady(_) => "not_ready",
        }
    }

    /// The JSON body.
    pub fn body(&self) -> serde_json::Value {
        serde_json::json!({
            "error": {
                "message": self.to_string(),
                "type": self.kind(),
                "param": serde_json::Value::Null,
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
}
