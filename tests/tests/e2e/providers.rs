//! The `anthropic` and `gemini` adapters end to end: the real gateway on loopback with
//! each bundled adapter, against the mock upstream speaking that provider's wire format
//! (Anthropic's named-event stream; Gemini's whole-response events framed with CRLF).
//! Every behaviour is one function taking the provider, run once per provider.

use anyhow::Context;
use serde_json::{Value, json};
use switchyard_mock_upstream::{MockUpstream, Recorded};
use switchyard_tests::{Sse, TestGateway, mock_upstream, plugin, post_json};

/// The provider key the deployments read from a file, to check where it lands.
const KEY: &str = "provider-test-key-0123";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Provider {
    OpenAi,
    Anthropic,
    Gemini,
}

impl Provider {
    fn adapter(self) -> &'static str {
        match self {
            Provider::OpenAi => "openai",
            Provider::Anthropic => "anthropic",
            Provider::Gemini => "gemini",
        }
    }

    /// The deployment's `base_url` on the mock: OpenAI's includes the `/v1`.
    fn base_url(self, mock: &MockUpstream) -> String {
        match self {
            Provider::OpenAi => format!("{}/v1", mock.url()),
            _ => mock.url(),
        }
    }
}

/// A mock upstream and a gateway whose model `demo` is served by its deployments.
struct Setup {
    mock: MockUpstream,
    gw: TestGateway,
    _keys: tempfile::TempDir,
}

impl Setup {
    /// `deployments` are (name, mock model) pairs of provider `p`, tried in this order.
    async fn start(p: Provider, deployments: &[(&str, &str)]) -> anyhow::Result<Setup> {
        let mock = mock_upstream().await?;
        let keys = tempfile::tempdir()?;
        let key_file = keys.path().join("provider-key");
        std::fs::write(&key_file, KEY)?;
        let mut toml = String::new();
        for (name, model) in deployments {
            toml.push_str(&format!(
                "[deployments.{name}]\nadapter = \"{}\"\nbase_url = \"{}\"\nmodel = \"{model}\"\napi_key = \"file:{}\"\n",
                p.adapter(),
                p.base_url(&mock),
                key_file.display()
            ));
        }
        let names: Vec<String> = deployments
            .iter()
            .map(|(n, _)| format!("\"{n}\""))
            .collect();
        toml.push_str(&format!(
            "[models.demo]\ndeployments = [{}]\n",
            names.join(", ")
        ));
        let file = format!("{}.wasm", p.adapter());
        let gw = TestGateway::start(&[(file.as_str(), plugin(p.adapter()))], &toml).await?;
        Ok(Setup {
            mock,
            gw,
            _keys: keys,
        })
    }

    /// One deployment, `primary`, of the mock model `model`.
    async fn one(p: Provider, model: &str) -> anyhow::Result<Setup> {
        Setup::start(p, &[("primary", model)]).await
    }

    async fn post(&self, body: &Value) -> anyhow::Result<(u16, hyper::HeaderMap, Vec<u8>)> {
        post_json(self.gw.gw.addr, "/v1/chat/completions", body).await
    }

    /// A non-streamed completion that must succeed.
    async fn complete(&self, body: &Value) -> anyhow::Result<Value> {
        let (status, _, bytes) = self.post(body).await?;
        anyhow::ensure!(
            status == 200,
            "status {status}: {}",
            String::from_utf8_lossy(&bytes)
        );
        Ok(serde_json::from_slice(&bytes)?)
    }

    /// A streamed completion that must succeed.
    async fn stream(&self, body: &Value) -> anyhow::Result<Sse> {
        let (status, headers, bytes) = self.post(body).await?;
        anyhow::ensure!(
            status == 200,
            "status {status}: {}",
            String::from_utf8_lossy(&bytes)
        );
        anyhow::ensure!(headers["content-type"] == "text/event-stream");
        let sse = Sse::parse(&bytes)?;
        anyhow::ensure!(
            sse.done && sse.errors.is_empty(),
            "a clean stream ends with [DONE]: {}",
            String::from_utf8_lossy(&bytes)
        );
        Ok(sse)
    }

    /// The only request the mock received.
    fn sent(&self) -> anyhow::Result<(Recorded, Value)> {
        let sent = self.mock.requests();
        anyhow::ensure!(sent.len() == 1, "{} upstream requests", sent.len());
        let r = sent.into_iter().next().context("no upstream request")?;
        let body = r.body_json().context("the upstream body is not JSON")?;
        Ok((r, body))
    }
}

fn chat(text: &str) -> Value {
    json!({"model": "demo", "messages": [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": text},
    ]})
}

fn streamed(mut body: Value) -> Value {
    body["stream"] = true.into();
    body["stream_options"] = json!({"include_usage": true});
    body
}

fn with_tool(mut body: Value) -> Value {
    body["tools"] = json!([{"type": "function", "function": {
        "name": "lookup",
        "description": "Looks a query up.",
        "parameters": {
            "type": "object",
            "properties": {"query": {"type": "string"}},
            "required": ["query"],
            "additionalProperties": false,
        },
    }}]);
    body
}

/// Each behaviour as one test per provider: `providers::openai::NAME`,
/// `providers::anthropic::NAME` and `providers::gemini::NAME`.
macro_rules! per_provider {
    ($($name:ident),* $(,)?) => {
        mod openai {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() -> anyhow::Result<()> {
                    super::$name(super::Provider::OpenAi).await
                }
            )*
        }
        mod anthropic {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() -> anyhow::Result<()> {
                    super::$name(super::Provider::Anthropic).await
                }
            )*
        }
        mod gemini {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() -> anyhow::Result<()> {
                    super::$name(super::Provider::Gemini).await
                }
            )*
        }
    };
}

per_provider!(
    non_streaming_completion_has_the_answer_and_usage,
    stream_with_include_usage_ends_with_a_usage_chunk_and_done,
    tool_call_comes_back_with_id_name_and_arguments,
    streamed_tool_call_arguments_join_to_json,
    falls_back_to_the_next_deployment_on_429,
    provider_error_message_reaches_the_client,
    malformed_or_cut_answers_fall_back_before_content,
    upstream_request_has_the_providers_shape,
    tool_results_reach_the_upstream_in_the_providers_shape,
);

async fn non_streaming_completion_has_the_answer_and_usage(p: Provider) -> anyhow::Result<()> {
    let s = Setup::one(p, "mock-echo").await?;
    let (status, headers, body) = s.post(&chat("hello there")).await?;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(headers["x-switchyard-deployment"], "primary");
    let v: Value = serde_json::from_slice(&body)?;
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["model"], "mock-echo");
    assert!(v["id"].as_str().is_some_and(|id| !id.is_empty()));
    assert_eq!(v["choices"][0]["message"]["role"], "assistant");
    assert_eq!(v["choices"][0]["message"]["content"], "echo: hello there");
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    // The mock counts words: "You are terse." + "hello there" in, "echo: hello there" out.
    assert_eq!(v["usage"]["prompt_tokens"], 5, "{v}");
    assert_eq!(v["usage"]["completion_tokens"], 3, "{v}");
    assert_eq!(v["usage"]["total_tokens"], 8, "{v}");
    Ok(())
}

async fn stream_with_include_usage_ends_with_a_usage_chunk_and_done(
    p: Provider,
) -> anyhow::Result<()> {
    let s = Setup::one(p, "mock-echo").await?;
    let sse = s.stream(&streamed(chat("one two three"))).await?;
    assert_eq!(sse.text(), "echo: one two three");
    let chunks = &sse.events;
    assert!(
        chunks
            .iter()
            .all(|c| c["object"] == "chat.completion.chunk")
    );
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let roles = chunks
        .iter()
        .filter(|c| c["choices"][0]["delta"].get("role").is_some())
        .count();
    assert_eq!(roles, 1, "only the first chunk carries the role");
    assert!(
        chunks
            .iter()
            .any(|c| c["choices"][0]["finish_reason"] == "stop")
    );
    let usage = chunks.last().context("no chunks")?;
    assert_eq!(
        usage["choices"].as_array().map(Vec::len),
        Some(0),
        "{usage}"
    );
    // Gemini repeats a running total on every event; added up it would be 1+2+3+4.
    assert_eq!(usage["usage"]["prompt_tokens"], 6, "{usage}");
    assert_eq!(usage["usage"]["completion_tokens"], 4, "{usage}");
    assert!(
        chunks[..chunks.len() - 1]
            .iter()
            .all(|c| c["usage"].is_null())
    );
    Ok(())
}

async fn tool_call_comes_back_with_id_name_and_arguments(p: Provider) -> anyhow::Result<()> {
    let s = Setup::one(p, "mock-tool-call").await?;
    let mut req = with_tool(chat("find cats"));
    req["tool_choice"] = json!({"type": "function", "function": {"name": "lookup"}});
    req["parallel_tool_calls"] = false.into();
    let v = s.complete(&req).await?;
    let choice = &v["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls", "{v}");
    assert!(choice["message"]["content"].is_null(), "{v}");
    let calls = choice["message"]["tool_calls"]
        .as_array()
        .context("no tool_calls")?;
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0]["type"], "function");
    assert_eq!(calls[0]["function"]["name"], "lookup");
    assert!(calls[0]["id"].as_str().is_some_and(|id| !id.is_empty()));
    let args: Value = serde_json::from_str(
        calls[0]["function"]["arguments"]
            .as_str()
            .context("arguments are not a string")?,
    )?;
    assert_eq!(args, json!({"query": "find cats"}));
    // The forced function and the parallel-call switch reached the provider.
    let (_, up) = s.sent()?;
    match p {
        Provider::OpenAi => {
            assert_eq!(
                up["tool_choice"],
                json!({"type": "function", "function": {"name": "lookup"}})
            );
            assert_eq!(up["parallel_tool_calls"], false);
        }
        Provider::Anthropic => assert_eq!(
            up["tool_choice"],
            json!({"type": "tool", "name": "lookup", "disable_parallel_tool_use": true})
        ),
        Provider::Gemini => assert_eq!(
            up["toolConfig"],
            json!({"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["lookup"]}})
        ),
    }
    Ok(())
}

async fn streamed_tool_call_arguments_join_to_json(p: Provider) -> anyhow::Result<()> {
    let s = Setup::one(p, "mock-tool-call").await?;
    let sse = s.stream(&streamed(with_tool(chat("find cats")))).await?;
    let mut id = None;
    let mut name = None;
    let mut arguments = String::new();
    let mut fragments = 0;
    for chunk in &sse.events {
        for call in chunk["choices"][0]["delta"]["tool_calls"]
            .as_array()
            .into_iter()
            .flatten()
        {
            assert_eq!(call["index"], 0, "one call: {call}");
            if let Some(i) = call["id"].as_str() {
                assert!(id.is_none(), "the id comes once");
                id = Some(i.to_owned());
            }
            if let Some(n) = call["function"]["name"].as_str() {
                name = Some(n.to_owned());
            }
            arguments.push_str(call["function"]["arguments"].as_str().unwrap_or_default());
            fragments += 1;
        }
    }
    assert!(id.is_some_and(|i| !i.is_empty()), "{:?}", sse.events);
    assert_eq!(name.as_deref(), Some("lookup"));
    if p == Provider::Anthropic {
        // Anthropic streams the arguments in fragments cut anywhere; Gemini sends them whole.
        assert!(fragments > 2, "{fragments} fragments");
    }
    let args: Value = serde_json::from_str(&arguments).context(arguments.clone())?;
    assert_eq!(args, json!({"query": "find cats"}));
    assert!(
        sse.events
            .iter()
            .any(|c| c["choices"][0]["finish_reason"] == "tool_calls")
    );
    assert!(sse.text().is_empty(), "no text: {:?}", sse.text());
    Ok(())
}

async fn falls_back_to_the_next_deployment_on_429(p: Provider) -> anyhow::Result<()> {
    for stream in [false, true] {
        let s = Setup::start(p, &[("limited", "mock-status-429"), ("good", "mock-echo")]).await?;
        let req = if stream {
            streamed(chat("fall back"))
        } else {
            chat("fall back")
        };
        let (status, headers, body) = s.post(&req).await?;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        assert_eq!(headers["x-switchyard-deployment"], "good");
        assert_eq!(headers["x-switchyard-attempts"], "2");
        let text = if stream {
            let sse = Sse::parse(&body)?;
            assert!(sse.done && sse.errors.is_empty());
            sse.text()
        } else {
            let v: Value = serde_json::from_slice(&body)?;
            v["choices"][0]["message"]["content"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        };
        assert_eq!(text, "echo: fall back");
        assert_eq!(s.mock.requests().len(), 2, "both deployments were asked");
    }
    Ok(())
}

async fn provider_error_message_reaches_the_client(p: Provider) -> anyhow::Result<()> {
    // A request the provider rejects (400) is the client's to fix: the adapter reads the
    // provider's own message out of its error shape and the client gets it.
    let s = Setup::one(p, "mock-status-400").await?;
    let (status, _, body) = s.post(&chat("x")).await?;
    assert_eq!(status, 400);
    let v: Value = serde_json::from_slice(&body)?;
    let message = v["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("mock-status-400: "), "{message}");
    assert!(!message.contains(KEY));
    // A rate limit is the gateway's business: status, code and retry-after pass on, the
    // provider's text (organisation ids, quotas) does not.
    let s = Setup::one(p, "mock-status-429").await?;
    let (status, headers, body) = s.post(&chat("x")).await?;
    assert_eq!(status, 429);
    assert!(headers.contains_key("retry-after"));
    let v: Value = serde_json::from_slice(&body)?;
    assert_eq!(v["error"]["code"], "rate_limit_exceeded");
    let message = v["error"]["message"].as_str().unwrap_or_default();
    assert!(!message.contains("mock-status-429"), "{message}");
    Ok(())
}

async fn malformed_or_cut_answers_fall_back_before_content(p: Provider) -> anyhow::Result<()> {
    for (bad, stream) in [
        ("mock-malformed", false),
        ("mock-malformed", true),
        ("mock-stream-cut-0", true),
    ] {
        let s = Setup::start(p, &[("bad", bad), ("good", "mock-echo")]).await?;
        let req = if stream {
            streamed(chat("again"))
        } else {
            chat("again")
        };
        let (status, headers, body) = s.post(&req).await?;
        let shown = String::from_utf8_lossy(&body);
        assert_eq!(status, 200, "{bad} stream={stream}: {shown}");
        assert_eq!(headers["x-switchyard-deployment"], "good", "{bad}: {shown}");
        let text = if stream {
            Sse::parse(&body)?.text()
        } else {
            let v: Value = serde_json::from_slice(&body)?;
            v["choices"][0]["message"]["content"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        };
        assert_eq!(text, "echo: again", "{bad}: {shown}");
    }
    Ok(())
}

async fn upstream_request_has_the_providers_shape(p: Provider) -> anyhow::Result<()> {
    // A plain request, with no token limit from the client.
    let s = Setup::one(p, "mock-echo").await?;
    s.complete(&chat("hello there")).await?;
    let (r, up) = s.sent()?;
    assert_eq!(r.method, "POST");
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert!(!String::from_utf8_lossy(&r.body).contains(KEY));
    if p != Provider::OpenAi {
        assert!(r.header("authorization").is_none());
    }
    match p {
        Provider::OpenAi => {
            assert_eq!(r.path, "/v1/chat/completions");
            let bearer = format!("Bearer {KEY}");
            assert_eq!(r.header("authorization"), Some(bearer.as_str()));
            assert_eq!(up["model"], "mock-echo");
            assert_eq!(
                up["messages"],
                json!([
                    {"role": "system", "content": "You are terse."},
                    {"role": "user", "content": "hello there"},
                ])
            );
            assert_eq!(up["stream"], false);
            assert!(
                up.get("max_completion_tokens").is_none(),
                "no limit was asked"
            );
        }
        Provider::Anthropic => {
            assert_eq!(r.path, "/v1/messages");
            assert_eq!(r.header("anthropic-version"), Some("2023-06-01"));
            assert_eq!(r.header("x-api-key"), Some(KEY));
            assert_eq!(up["model"], "mock-echo");
            assert_eq!(up["system"], "You are terse.");
            assert_eq!(
                up["messages"],
                json!([{"role": "user", "content": [{"type": "text", "text": "hello there"}]}])
            );
            assert_eq!(up["max_tokens"], 4096, "Anthropic requires max_tokens");
            assert_eq!(up["stream"], false);
        }
        Provider::Gemini => {
            assert_eq!(r.path, "/v1beta/models/mock-echo:generateContent");
            assert_eq!(r.header("x-goog-api-key"), Some(KEY));
            assert_eq!(
                up["systemInstruction"],
                json!({"parts": [{"text": "You are terse."}]})
            );
            assert_eq!(
                up["contents"],
                json!([{"role": "user", "parts": [{"text": "hello there"}]}])
            );
            assert!(up.get("model").is_none(), "the model is in the path");
        }
    }

    // A streamed request with sampling parameters.
    let s = Setup::one(p, "mock-echo").await?;
    let mut req = streamed(chat("hello there"));
    req["max_tokens"] = 100.into();
    req["temperature"] = 0.5.into();
    req["stop"] = json!(["END"]);
    s.stream(&req).await?;
    let (r, up) = s.sent()?;
    match p {
        Provider::OpenAi => {
            assert_eq!(r.path, "/v1/chat/completions");
            assert_eq!(up["stream"], true);
            assert_eq!(up["stream_options"], json!({"include_usage": true}));
            assert_eq!(up["max_completion_tokens"], 100);
            assert_eq!(up["temperature"], 0.5);
            assert_eq!(up["stop"], json!(["END"]));
        }
        Provider::Anthropic => {
            assert_eq!(r.path, "/v1/messages");
            assert_eq!(up["stream"], true);
            assert_eq!(up["max_tokens"], 100);
            assert_eq!(up["temperature"], 0.5);
            assert_eq!(up["stop_sequences"], json!(["END"]));
            assert!(up.get("stream_options").is_none(), "an OpenAI-only field");
        }
        Provider::Gemini => {
            assert_eq!(
                r.path,
                "/v1beta/models/mock-echo:streamGenerateContent?alt=sse"
            );
            assert_eq!(
                up["generationConfig"],
                json!({"maxOutputTokens": 100, "temperature": 0.5, "stopSequences": ["END"]})
            );
        }
    }
    Ok(())
}

async fn tool_results_reach_the_upstream_in_the_providers_shape(p: Provider) -> anyhow::Result<()> {
    let s = Setup::one(p, "mock-echo").await?;
    let req = with_tool(json!({"model": "demo", "messages": [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "find cats"},
        {"role": "assistant", "content": null, "tool_calls": [{
            "id": "call_1", "type": "function",
            "function": {"name": "lookup", "arguments": "{\"query\":\"cats\"}"},
        }]},
        {"role": "tool", "tool_call_id": "call_1", "content": "{\"found\":3}"},
    ]}));
    let v = s.complete(&req).await?;
    // The mock echoes the last user text, skipping turns that only carry tool results.
    assert_eq!(v["choices"][0]["message"]["content"], "echo: find cats");
    let (_, up) = s.sent()?;
    match p {
        Provider::OpenAi => {
            assert_eq!(
                up["messages"],
                json!([
                    {"role": "system", "content": "You are terse."},
                    {"role": "user", "content": "find cats"},
                    {"role": "assistant", "content": null, "tool_calls": [{
                        "id": "call_1", "type": "function",
                        "function": {"name": "lookup", "arguments": "{\"query\":\"cats\"}"},
                    }]},
                    {"role": "tool", "tool_call_id": "call_1", "content": "{\"found\":3}"},
                ])
            );
            assert_eq!(up["tools"][0]["function"]["name"], "lookup");
            assert_eq!(
                up["tools"][0]["function"]["parameters"]["required"],
                json!(["query"])
            );
        }
        Provider::Anthropic => {
            assert_eq!(
                up["messages"],
                json!([
                    {"role": "user", "content": [{"type": "text", "text": "find cats"}]},
                    {"role": "assistant", "content": [{
                        "type": "tool_use", "id": "call_1", "name": "lookup",
                        "input": {"query": "cats"},
                    }]},
                    {"role": "user", "content": [{
                        "type": "tool_result", "tool_use_id": "call_1", "content": "{\"found\":3}",
                    }]},
                ])
            );
            assert_eq!(
                up["tools"],
                json!([{"name": "lookup", "description": "Looks a query up.", "input_schema": {
                    "type": "object",
                    "properties": {"query": {"type": "string"}},
                    "required": ["query"],
                    "additionalProperties": false,
                }}])
            );
        }
        Provider::Gemini => {
            assert_eq!(
                up["contents"],
                json!([
                    {"role": "user", "parts": [{"text": "find cats"}]},
                    {"role": "model", "parts": [
                        {"functionCall": {"name": "lookup", "args": {"query": "cats"}}},
                    ]},
                    {"role": "user", "parts": [{"functionResponse": {
                        "name": "lookup", "response": {"content": {"found": 3}},
                    }}]},
                ])
            );
            // Gemini's schema dialect has no `additionalProperties`.
            assert_eq!(
                up["tools"],
                json!([{"functionDeclarations": [{
                    "name": "lookup",
                    "description": "Looks a query up.",
                    "parameters": {
                        "type": "object",
                        "properties": {"query": {"type": "string"}},
                        "required": ["query"],
                    },
                }]}])
            );
        }
    }
    Ok(())
}
