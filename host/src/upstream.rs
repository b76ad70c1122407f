//! The pooled upstream HTTP client: the only code that talks to providers.
//!
//! HTTP/1.1 and HTTP/2 over rustls, connection pooling, `TCP_NODELAY`, connect and
//! first-byte timeouts here; idle and total timeouts are applied by the caller while it
//! reads the body. The adapter's request description is checked so that it cannot reach
//! any origin but the deployment's base URL, and the credential is injected here, after
//! the adapter ran, so no plugin ever sees it.

pub mod framing;
pub mod scrub;

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Method, Request, Response};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::config::Deployment;
use crate::sandbox::adapter_api::{CredentialPlacement, UpstreamRequest};

/// Connecting to any upstream gives up after this; a deployment's `first_byte_timeout`
/// bounds connecting and waiting for the head together.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Why an upstream call failed before a usable response head arrived.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("the adapter's request is invalid: {0}")]
    BadRequest(String),
    #[error("could not connect to the upstream: {0}")]
    Connect(String),
    #[error("the upstream did not answer within {0:?}")]
    Timeout(Duration),
    #[error("the upstream connection failed: {0}")]
    Io(String),
    #[error("the upstream response body exceeds {0} bytes")]
    TooLarge(usize),
}

/// The shared client (cheap to clone).
#[derive(Clone)]
pub struct Client {
    inner: HyperClient<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>,
}

impl Client {
    pub fn new() -> Result<Client, rustls::Error> {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(CONNECT_TIMEOUT));
        http.set_keepalive(Some(Duration::from_secs(60)));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(std::sync::Arc::new(
                rustls::crypto::ring::default_provider(),
            ))?
            .https_or_http()
            .enable_all_versions()
            .wrap_connector(http);
        let inner = HyperClient::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(256)
            .build(https);
        Ok(Client { inner })
    }

    /// Sends the adapter's request to the deployment; returns once the head arrived.
    pub async fn send(
        &self,
        deployment: &Deployment,
        up: &UpstreamRequest,
    ) -> Result<Response<Incoming>, UpstreamError> {
        let req = build(deployment, up)?;
        // The head must arrive within `first_byte` of sending, connecting included.
        let timeout = deployment.timeouts.first_byte;
        match tokio::time::timeout(timeout, self.inner.request(req)).await {
            Err(_) => Err(UpstreamError::Timeout(timeout)),
            Ok(Err(e)) if e.is_connect() => Err(UpstreamError::Connect(source_chain(&e))),
            Ok(Err(e)) => Err(UpstreamError::Io(source_chain(&e))),
            Ok(Ok(resp)) => Ok(resp),
        }
    }
}

fn source_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(inner) = cur {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        cur = inner.source();
    }
    s
}

/// Headers the adapter may not set: the host owns them.
fn reserved(name: &str) -> bool {
    matches!(
        name,
        "host" | "content-length" | "transfer-encoding" | "connection" | "authorization" | "cookie"
    )
}

/// Turns the adapter's description into a request to the deployment's origin.
pub fn build(
    deployment: &Deployment,
    up: &UpstreamRequest,
) -> Result<Request<Full<Bytes>>, UpstreamError> {
    let bad = |m: String| UpstreamError::BadRequest(m);
    if !up.path.starts_with('/')
        || up.path.starts_with("//")
        || up.path.contains(['\r', '\n', '#', '\\'])
    {
        return Err(bad(format!(
            "path `{}` must start with a single `/`",
            up.path
        )));
    }
    if up.path.split(['/', '?']).any(|seg| seg == "..") {
        return Err(bad("path must not contain `..`".into()));
    }
    let mut url = format!("{}{}", deployment.base_url, up.path);
    let mut credential_header: Option<(HeaderName, HeaderValue)> = None;
    if let Some(Ok(key)) = &deployment.api_key {
        let value = |v: String| {
            HeaderValue::from_str(&v)
                .map_err(|_| bad("the API key is not a valid header value".into()))
        };
        match &up.credential {
            CredentialPlacement::None => {}
            CredentialPlacement::Bearer => {
                let mut v = value(format!("Bearer {}", key.expose()))?;
                v.set_sensitive(true);
                credential_header = Some((hyper::header::AUTHORIZATION, v));
            }
            CredentialPlacement::Header(name) => {
                let n = HeaderName::from_bytes(name.as_bytes())
                    .map_err(|_| bad(format!("bad credential header `{name}`")))?;
                let mut v = value(key.expose().to_owned())?;
                v.set_sensitive(true);
                credential_header = Some((n, v));
            }
            CredentialPlacement::Query(name) => {
                let sep = if url.contains('?') { '&' } else { '?' };
                url.push(sep);
                url.push_str(&urlencode(name));
                url.push('=');
                url.push_str(&urlencode(key.expose()));
            }
        }
    }
    let uri: hyper::Uri = url.parse().map_err(|e| bad(format!("invalid URL: {e}")))?;
    let base = &deployment.base_uri;
    if uri.scheme() != base.scheme() || uri.authority() != base.authority() {
        return Err(bad("the request would leave the deployment's origin".into()));
    }
    let method = match up.method.to_ascii_uppercase().as_str() {
        "POST" => Method::POST,
        "GET" => Method::GET,
        other => return Err(bad(format!("method `{other}` is not allowed"))),
    };
    let mut req = Request::builder().method(method).uri(uri);
    let headers = req
        .headers_mut()
        .ok_or_else(|| bad("invalid request".into()))?;
    for h in &up.headers {
        let lower = h.name.to_ascii_lowercase();
        if reserved(&lower)
            || credential_header
                .as_ref()
                .is_some_and(|(n, _)| n.as_str() == lower)
        {
            continue;
        }
        let name = HeaderName::from_bytes(lower.as_bytes())
            .map_err(|_| bad(format!("bad header name `{}`", h.name)))?;
        let value = HeaderValue::from_bytes(&h.value)
            .map_err(|_| bad(format!("bad value for header `{}`", h.name)))?;
        headers.append(name, value);
    }
    if let Some((n, v)) = credential_header {
        headers.insert(n, v);
    }
    req.body(Full::new(Bytes::copy_from_slice(&up.body)))
        .map_err(|e| bad(e.to_string()))
}

/// Percent-encodes a query component. A dozen lines do not justify a dependency.
fn urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Reads a whole body under the idle timeout and a size cap.
pub async fn read_body(
    body: Incoming,
    idle: Duration,
    cap: usize,
) -> Result<Vec<u8>, UpstreamError> {
    let mut body = body;
    let mut out = Vec::new();
    loop {
        match tokio::time::timeout(idle, body.frame()).await {
            Err(_) => return Err(UpstreamError::Timeout(idle)),
            Ok(None) => return Ok(out),
            Ok(Some(Err(e))) => return Err(UpstreamError::Io(source_chain(&e))),
            Ok(Some(Ok(frame))) => {
                if let Ok(data) = frame.into_data() {
                    if out.len() + data.len() > cap {
                        return Err(UpstreamError::TooLarge(cap));
                    }
                    out.extend_from_slice(&data);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Secret, Timeouts};

    fn dep(key: Option<&str>) -> Deployment {
        Deployment {
            name: "d".into(),
            adapter: "openai".into(),
            base_url: "https://api.example.com/v1".into(),
            base_uri: hyper::Uri::from_static("https://api.example.com/v1"),
            model_id: "m".into(),
            api_key: key.map(|k| Ok(Secret::for_tests(k))),
            tags: vec![],
            input_price: 0.0,
            output_price: 0.0,
            weight: 1,
            max_output_tokens: None,
            timeouts: Timeouts::default(),
            settings_json: "{}".into(),
        }
    }

    fn up(path: &str, credential: CredentialPlacement) -> UpstreamRequest {
        UpstreamRequest {
            method: "POST".into(),
            path: path.into(),
            headers: vec![
                crate::canonical::Header {
                    name: "Authorization".into(),
                    value: b"Bearer stolen".to_vec(),
                },
                crate::canonical::Header {
                    name: "x-extra".into(),
                    value: b"1".to_vec(),
                },
            ],
            body: b"{}".to_vec(),
            credential,
            streaming: None,
        }
    }

    #[test]
    fn credential_is_injected_by_the_host_and_adapter_auth_headers_dropped() {
        let r = build(
            &dep(Some("sk-1")),
            &up("/chat/completions", CredentialPlacement::Bearer),
        )
        .unwrap();
        assert_eq!(
            r.uri().to_string(),
            "https://api.example.com/v1/chat/completions"
        );
        let auth: Vec<_> = r.headers().get_all("authorization").iter().collect();
        assert_eq!(auth, ["Bearer sk-1"]);
        assert_eq!(r.headers()["x-extra"], "1");
        let r = build(
            &dep(Some("k y")),
            &up("/m:gen?alt=sse", CredentialPlacement::Query("key".into())),
        )
        .unwrap();
        assert_eq!(r.uri().query(), Some("alt=sse&key=k%20y"));
        let r = build(
            &dep(Some("sk-2")),
            &up("/messages", CredentialPlacement::Header("x-api-key".into())),
        )
        .unwrap();
        assert_eq!(r.headers()["x-api-key"], "sk-2");
        assert!(r.headers().get("authorization").is_none());
    }

    #[test]
    fn adapter_cannot_leave_the_deployments_origin() {
        for path in [
            "//evil.com/x",
            "@evil.com/x",
            "/../../x",
            "x",
            "/a\r\nHost: evil",
        ] {
            assert!(
                build(&dep(None), &up(path, CredentialPlacement::None)).is_err(),
                "{path}"
            );
        }
    }
}
