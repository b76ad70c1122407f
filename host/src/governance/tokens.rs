//! Token counts and prices.
//!
//! Upstream usage is the truth when it is reported. Before the call (rate limits and
//! budget reservations) and when an upstream reports nothing (llama.cpp streams), the
//! host counts with OpenAI's own BPE (`tiktoken-rs`, vocabularies compiled into the
//! binary): `cl100k_base` for the GPT-4/3.5 family, `o200k_base` for every other model.
//! For non-OpenAI models that is an approximation (Llama, Claude and Gemini tokenizers
//! differ by roughly ±15% on English text), which is why such counts are marked
//! `estimated` in the ledger.
//!
//! Message framing follows OpenAI's published recipe: 3 tokens per message, 1 more for
//! a `name`, 3 to prime the answer. An image counts as 85 tokens at `detail: low` and
//! 765 otherwise (one 512×512 high-detail tile plus the base), since its pixels are not
//! known before the provider fetches it.

use tiktoken_rs::CoreBPE;

use crate::canonical::{ChatChunk, ChatRequest, ChatResponse, ContentPart, Usage};
use crate::config::Deployment;

fn bpe_for(model: &str) -> &'static CoreBPE {
    use tiktoken_rs::tokenizer::{Tokenizer, get_tokenizer};
    match get_tokenizer(model) {
        Some(Tokenizer::Cl100kBase) => tiktoken_rs::cl100k_base_singleton(),
        _ => tiktoken_rs::o200k_base_singleton(),
    }
}

/// Builds the default vocabulary now (≈100 ms, ~55 MiB). Not called at start-up: with
/// the byte bound tried first most gateways never need it (benchmarks call it).
pub fn warm() {
    let _ = tiktoken_rs::o200k_base_singleton().count_ordinary("warm");
}

/// Tokens in `text` for `model`'s tokenizer.
pub fn count_text(model: &str, text: &str) -> u32 {
    if text.is_empty() {
        return 0;
    }
    u32::try_from(bpe_for(model).count_ordinary(text)).unwrap_or(u32::MAX)
}

fn part_tokens(bpe: &CoreBPE, p: &ContentPart) -> usize {
    match p {
        ContentPart::Text(t) => bpe.count_ordinary(t),
        ContentPart::Image(i) if i.detail.as_deref() == Some("low") => 85,
        ContentPart::Image(_) => 765,
        ContentPart::Other(o) => bpe.count_ordinary(o),
    }
}

/// Prompt tokens of a request, as the provider will count them (see the module doc).
pub fn count_request(model: &str, req: &ChatRequest) -> u32 {
    let bpe = bpe_for(model);
    let mut n = 3usize;
    for m in &req.messages {
        n += 3;
        n += m.content.iter().map(|p| part_tokens(bpe, p)).sum::<usize>();
        if let Some(name) = &m.name {
            n += 1 + bpe.count_ordinary(name);
        }
        for c in &m.tool_calls {
            n += 3 + bpe.count_ordinary(&c.name) + bpe.count_ordinary(&c.arguments);
        }
    }
    for t in &req.tools {
        n += 8 + bpe.count_ordinary(&t.name) + bpe.count_ordinary(&t.parameters);
        n += t
            .description
            .as_deref()
            .map_or(0, |d| bpe.count_ordinary(d));
    }
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// An upper bound of `count_request` that costs no tokenizing: the same framing with
/// every text's byte length in place of its token count (a token is at least one byte).
pub fn upper_bound(req: &ChatRequest) -> u32 {
    let part = |p: &ContentPart| match p {
        ContentPart::Text(t) => t.len(),
        ContentPart::Image(i) if i.detail.as_deref() == Some("low") => 85,
        ContentPart::Image(_) => 765,
        ContentPart::Other(o) => o.len(),
    };
    let mut n = 3usize;
    for m in &req.messages {
        n += 3 + m.content.iter().map(part).sum::<usize>();
        n += m.name.as_ref().map_or(0, |name| 1 + name.len());
        n += m
            .tool_calls
            .iter()
            .map(|c| 3 + c.name.len() + c.arguments.len())
            .sum::<usize>();
    }
    for t in &req.tools {
        n += 8 + t.name.len() + t.parameters.len();
        n += t.description.as_ref().map_or(0, String::len);
    }
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Output tokens of a complete response, counted (for upstreams that report none).
pub fn count_response(model: &str, resp: &ChatResponse) -> u32 {
    let bpe = bpe_for(model);
    let n: usize = resp
        .choices
        .iter()
        .map(|c| {
            c.message
                .content
                .iter()
                .map(|p| part_tokens(bpe, p))
                .sum::<usize>()
                + c.message
                    .reasoning
                    .as_deref()
                    .map_or(0, |r| bpe.count_ordinary(r))
                + c.message
                    .tool_calls
                    .iter()
                    .map(|t| bpe.count_ordinary(&t.name) + bpe.count_ordinary(&t.arguments))
                    .sum::<usize>()
        })
        .sum();
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Output tokens carried by one streamed chunk.
pub fn count_chunk(model: &str, chunk: &ChatChunk) -> u32 {
    let mut n = 0;
    for d in &chunk.choices {
        n += d.content.as_deref().map_or(0, |t| count_text(model, t));
        n += d.reasoning.as_deref().map_or(0, |t| count_text(model, t));
        for t in &d.tool_calls {
            n += t.name.as_deref().map_or(0, |t| count_text(model, t));
            n += count_text(model, &t.arguments);
        }
    }
    n
}

/// A deployment's prices in pico-dollars per token (USD per million tokens × 10⁶), so
/// that costs are integer arithmetic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Prices {
    pub input: u64,
    pub output: u64,
}

impl Prices {
    pub fn of(d: &Deployment) -> Prices {
        let pico = |usd_per_mtok: f64| (usd_per_mtok * 1e6).round() as u64;
        Prices {
            input: pico(d.input_price),
            output: pico(d.output_price),
        }
    }

    pub fn is_free(&self) -> bool {
        self.input == 0 && self.output == 0
    }

    /// Micro-dollars for these counts, rounded up (a budget never undercounts).
    pub fn cost(&self, prompt: u64, completion: u64) -> i64 {
        let pico = u128::from(prompt) * u128::from(self.input)
            + u128::from(completion) * u128::from(self.output);
        i64::try_from(pico.div_ceil(1_000_000)).unwrap_or(i64::MAX)
    }

    /// The dearer of each price.
    pub fn max(self, other: Prices) -> Prices {
        Prices {
            input: self.input.max(other.input),
            output: self.output.max(other.output),
        }
    }
}

/// Usage as billed, and whether the host counted it itself.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counted {
    pub prompt: u32,
    pub completion: u32,
    pub cached: u32,
    pub reasoning: u32,
    pub estimated: bool,
}

impl Counted {
    pub fn reported(u: &Usage) -> Counted {
        Counted {
            prompt: u.prompt_tokens,
            completion: u.completion_tokens,
            cached: u.cached_tokens,
            reasoning: u.reasoning_tokens,
            estimated: false,
        }
    }

    pub fn total(&self) -> u64 {
        u64::from(self.prompt) + u64::from(self.completion)
    }

    /// The usage record a client gets when the upstream sent none.
    pub fn to_usage(self) -> Usage {
        Usage {
            prompt_tokens: self.prompt,
            completion_tokens: self.completion,
            cached_tokens: self.cached,
            cache_creation_tokens: 0,
            reasoning_tokens: self.reasoning,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canonical::{Message, Role, Sampling};

    fn req(text: &str) -> ChatRequest {
        ChatRequest {
            model: "m".into(),
            messages: vec![Message {
                role: Role::User,
                content: vec![ContentPart::Text(text.into())],
                name: None,
                tool_calls: vec![],
                tool_call_id: None,
                reasoning: None,
            }],
            tools: vec![],
            tool_choice: None,
            parallel_tool_calls: None,
            response_format: None,
            sampling: Sampling {
                temperature: None,
                top_p: None,
                max_tokens: None,
                stop: vec![],
                presence_penalty: None,
                frequency_penalty: None,
                seed: None,
                n: None,
                reasoning_effort: None,
            },
            stream: false,
            user: None,
            extra: String::new(),
        }
    }

    #[test]
    fn counts_match_openais_tokenizer() {
        // "hello world" is two tokens in both vocabularies; the framing adds 3 + 3.
        assert_eq!(count_text("gpt-4o", "hello world"), 2);
        assert_eq!(count_text("gpt-4", "hello world"), 2);
        assert_eq!(count_request("gpt-4o", &req("hello world")), 8);
        assert_eq!(count_text("llama", ""), 0);
    }

    #[test]
    fn the_byte_bound_is_never_below_the_count() {
        for text in [
            "hello world",
            "日本語のテキストと絵文字 🚀🚀🚀",
            "fn main() { println!(\"{}\", 1 + 2); }",
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "\u{0}\u{1}\u{7f}",
        ] {
            let r = req(text);
            assert!(upper_bound(&r) >= count_request("gpt-4o", &r), "{text}");
            assert!(upper_bound(&r) >= count_request("gpt-4", &r), "{text}");
        }
        assert_eq!(upper_bound(&req("hi")), 8);
    }

    #[test]
    fn costs_are_integer_micro_dollars_rounded_up() {
        let p = Prices {
            input: 150_000,
            output: 600_000,
        };
        // 1,000 × $0.15/M + 1,000 × $0.60/M = $0.00075 = 750 µ$.
        assert_eq!(p.cost(1000, 1000), 750);
        // One input token: 0.15 µ$, rounded up to 1.
        assert_eq!(p.cost(1, 0), 1);
        assert_eq!(Prices::default().cost(1 << 30, 1 << 30), 0);
    }
}
