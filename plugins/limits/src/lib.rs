//! The `limits` filter: caps on what one request may ask for, checked before anything is
//! sent upstream: prompt size, `max_tokens`, `n`, tools, images and messages. A request
//! over a cap is refused with 400 and a message naming the cap, in OpenAI's words where
//! OpenAI has them (`context_length_exceeded`); `max_tokens` may be lowered to the cap
//! instead (`clamp_max_tokens`).
//!
//! Plugin config (`[plugins.limits.config]`); every cap is optional and off when unset:
//!
//! ```toml
//! max_prompt_tokens = 8000    # estimated: UTF-8 bytes of text / 4, images 1,000 each
//! max_tokens = 4096           # the answer's cap the request may set
//! clamp_max_tokens = false    # true: lower max_tokens to the cap (and set it when unset)
//! max_n = 1                   # choices per request
//! max_tools = 32
//! max_images = 4
//! max_messages = 100
//! ```
//!
//! Prompt tokens are estimated, not counted: a plugin has no tokenizer (the host counts
//! exactly for budgets). Four bytes per token is the providers' rule of thumb for English
//! and overestimates most other text, so the cap errs on the strict side.

// Tests may unwrap: a failed expectation is the point.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

use serde::Deserialize;
use switchyard_sdk::filter::*;

/// What an image counts as in the prompt estimate (OpenAI bills a high-detail 1024² image
/// at ~765 tokens; this rounds up).
const IMAGE_TOKENS: u64 = 1_000;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Config {
    max_prompt_tokens: Option<u64>,
    max_tokens: Option<u32>,
    clamp_max_tokens: bool,
    max_n: Option<u32>,
    max_tools: Option<usize>,
    max_images: Option<usize>,
    max_messages: Option<usize>,
}

#[derive(Default)]
struct Limits;

impl Filter for Limits {
    fn on_request(
        &mut self,
        _ctx: RequestContext,
        request: ChatRequest,
    ) -> Result<RequestOutcome, PluginError> {
        let config: Config = switchyard_sdk::config()?;
        Ok(RequestOutcome {
            verdict: check(&config, request),
            constraints: None,
        })
    }
}

fn deny(code: &str, message: String) -> RequestVerdict {
    RequestVerdict::Deny(Denial {
        status: 400,
        code: code.into(),
        message,
    })
}

/// The prompt's estimated size and its image count.
fn measure(request: &ChatRequest) -> (u64, usize) {
    let (mut bytes, mut images) = (0u64, 0usize);
    for m in &request.messages {
        for part in &m.content {
            match part {
                ContentPart::Text(t) => bytes += t.len() as u64,
                ContentPart::Image(_) => images += 1,
                ContentPart::Other(o) => bytes += o.len() as u64,
            }
        }
        for call in &m.tool_calls {
            bytes += (call.name.len() + call.arguments.len()) as u64;
        }
    }
    for t in &request.tools {
        bytes += (t.name.len() + t.parameters.len()) as u64;
        bytes += t.description.as_ref().map_or(0, |d| d.len()) as u64;
    }
    (bytes.div_ceil(4) + images as u64 * IMAGE_TOKENS, images)
}

fn check(config: &Config, mut request: ChatRequest) -> RequestVerdict {
    if let Some(cap) = config.max_messages
        && request.messages.len() > cap
    {
        return deny(
            "too_many_messages",
            format!(
                "This request has {} messages; at most {cap} are allowed.",
                request.messages.len()
            ),
        );
    }
    if let Some(cap) = config.max_tools
        && request.tools.len() > cap
    {
        return deny(
            "too_many_tools",
            format!(
                "This request defines {} tools; at most {cap} are allowed.",
                request.tools.len()
            ),
        );
    }
    let (tokens, images) = measure(&request);
    if let Some(cap) = config.max_images
        && images > cap
    {
        return deny(
            "too_many_images",
            format!("This request has {images} images; at most {cap} are allowed."),
        );
    }
    if let Some(cap) = config.max_prompt_tokens
        && tokens > cap
    {
        return deny(
            "context_length_exceeded",
            format!(
                "This request's prompt is about {tokens} tokens; at most {cap} are allowed. \
                 Shorten the messages."
            ),
        );
    }
    if let Some(cap) = config.max_n
        && let Some(n) = request.sampling.n
        && n > cap
    {
        return deny(
            "n_too_large",
            format!("`n` is {n}; at most {cap} choices are allowed."),
        );
    }
    if let Some(cap) = config.max_tokens {
        match request.sampling.max_tokens {
            Some(asked) if asked > cap && !config.clamp_max_tokens => {
                return deny(
                    "max_tokens_too_large",
                    format!("`max_tokens` is {asked}; at most {cap} are allowed."),
                );
            }
            Some(asked) if asked <= cap => {}
            _ if config.clamp_max_tokens => {
                request.sampling.max_tokens = Some(cap);
                return RequestVerdict::Rewrite(request);
            }
            _ => {}
        }
    }
    RequestVerdict::Allow
}

switchyard_sdk::export_filter!(Limits);

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_sdk::parse_config;
    use switchyard_sdk::testing::{message, request, request_from};

    fn config(json: &str) -> Config {
        parse_config(json).unwrap()
    }

    fn denied_code(v: &RequestVerdict) -> Option<&str> {
        match v {
            RequestVerdict::Deny(d) => {
                assert_eq!(d.status, 400);
                Some(&d.code)
            }
            _ => None,
        }
    }

    fn tool(name: &str) -> ToolDefinition {
        ToolDefinition {
            name: name.into(),
            description: None,
            parameters: "{}".into(),
            strict: None,
        }
    }

    #[test]
    fn no_caps_allow_anything() {
        let r = request(&[(Role::User, &"x".repeat(1_000_000))]);
        assert!(matches!(
            check(&Config::default(), r),
            RequestVerdict::Allow
        ));
    }

    #[test]
    fn prompt_size_is_estimated_from_text_tools_and_images() {
        let c = config(r#"{"max_prompt_tokens": 100}"#);
        let at_cap = request(&[
            (Role::System, &"a".repeat(200)),
            (Role::User, &"b".repeat(200)),
        ]);
        assert!(matches!(check(&c, at_cap), RequestVerdict::Allow));
        let over = request(&[(Role::User, &"b".repeat(401))]);
        assert_eq!(
            denied_code(&check(&c, over)),
            Some("context_length_exceeded")
        );
        let mut with_tools = request(&[(Role::User, "hi")]);
        with_tools.tools = vec![ToolDefinition {
            parameters: "p".repeat(400),
            ..tool("t")
        }];
        assert!(denied_code(&check(&c, with_tools)).is_some());
        let mut img = message(Role::User, "look");
        img.content.push(ContentPart::Image(ImagePart {
            url: "https://example.com/a.png".into(),
            detail: None,
        }));
        let c = config(r#"{"max_prompt_tokens": 999}"#);
        assert!(denied_code(&check(&c, request_from(vec![img]))).is_some());
    }

    #[test]
    fn counts_are_capped_with_codes_that_say_which() {
        let mut r = request(&[(Role::User, "hi"), (Role::User, "again")]);
        assert_eq!(
            denied_code(&check(&config(r#"{"max_messages": 1}"#), r.clone())),
            Some("too_many_messages")
        );
        r.tools = vec![tool("a"), tool("b")];
        assert_eq!(
            denied_code(&check(&config(r#"{"max_tools": 1}"#), r.clone())),
            Some("too_many_tools")
        );
        r.sampling.n = Some(3);
        assert_eq!(
            denied_code(&check(&config(r#"{"max_n": 2}"#), r.clone())),
            Some("n_too_large")
        );
        r.sampling.n = Some(2);
        assert!(matches!(
            check(&config(r#"{"max_n": 2}"#), r),
            RequestVerdict::Allow
        ));
        let mut two = message(Role::User, "");
        for _ in 0..2 {
            two.content.push(ContentPart::Image(ImagePart {
                url: "data:image/png;base64,AAAA".into(),
                detail: None,
            }));
        }
        assert_eq!(
            denied_code(&check(
                &config(r#"{"max_images": 1}"#),
                request_from(vec![two])
            )),
            Some("too_many_images")
        );
    }

    #[test]
    fn max_tokens_is_refused_or_clamped() {
        let mut r = request(&[(Role::User, "hi")]);
        r.sampling.max_tokens = Some(5_000);
        let refuse = config(r#"{"max_tokens": 4096}"#);
        assert_eq!(
            denied_code(&check(&refuse, r.clone())),
            Some("max_tokens_too_large")
        );
        let clamp = config(r#"{"max_tokens": 4096, "clamp_max_tokens": true}"#);
        match check(&clamp, r.clone()) {
            RequestVerdict::Rewrite(r) => assert_eq!(r.sampling.max_tokens, Some(4096)),
            _ => panic!("expected a rewrite"),
        }
        r.sampling.max_tokens = None;
        assert!(matches!(check(&refuse, r.clone()), RequestVerdict::Allow));
        match check(&clamp, r.clone()) {
            RequestVerdict::Rewrite(r) => assert_eq!(r.sampling.max_tokens, Some(4096)),
            _ => panic!("an unset max_tokens is set to the cap"),
        }
        r.sampling.max_tokens = Some(100);
        assert!(matches!(check(&clamp, r), RequestVerdict::Allow));
    }

    #[test]
    fn unknown_keys_are_rejected_by_name() {
        let e = parse_config::<Config>(r#"{"max_prompt": 5}"#).unwrap_err();
        assert!(
            e.message.contains("unknown field `max_prompt`"),
            "{}",
            e.message
        );
    }
}
