//! The `deny-list` filter: refuses requests, and stops answers, that contain configured
//! keywords or match configured regular expressions.
//!
//! Plugin config (`[plugins.deny-list.config]`):
//!
//! ```toml
//! keywords = ["project zeus", "internal only"]   # case-insensitive
//! whole_words = true            # `zeus` does not match inside `zeuses` (default true)
//! patterns = ['(?i)\bpassw(or)?d\s*[:=]']        # regex-lite syntax
//! status = 400                  # 400 to 499
//! code = "content_policy_violation"
//! message = "This request was refused by the gateway's content policy."
//! scan = "both"                 # "request", "response" or "both"
//! stream_window = 256           # bytes a pattern match may span in a stream
//! ```
//!
//! Requests: the text of every message (any role: a client can write the history too)
//! and tool-call arguments. Answers: the text and reasoning of every choice; streamed
//! answers through the SDK's hold-back (`switchyard_sdk::filter::hold`), so nothing that
//! would be denied reaches the client, and a denied stream ends with an error event. The
//! client is told the configured message, never which rule matched; the log says which
//! (by its position in the config, never the text).
//!
//! Patterns use `regex-lite`: Perl-style syntax without Unicode classes (`\w` is ASCII),
//! compiled per request in a fresh instance in well under a millisecond for a short list.
//! In a stream a pattern match may span at most `stream_window` bytes; keywords are always
//! found, whatever the chunking.

// Tests may unwrap: a failed expectation is the point.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

use serde::Deserialize;
use switchyard_sdk::filter::hold::{HeldStream, TextPolicy};
use switchyard_sdk::filter::*;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Scan {
    Request,
    Response,
    #[default]
    Both,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Config {
    keywords: Vec<String>,
    whole_words: bool,
    patterns: Vec<String>,
    status: u16,
    code: String,
    message: String,
    scan: Scan,
    stream_window: usize,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            keywords: Vec::new(),
            whole_words: true,
            patterns: Vec::new(),
            status: 400,
            code: "content_policy_violation".into(),
            message: "This request was refused by the gateway's content policy.".into(),
            scan: Scan::Both,
            stream_window: 256,
        }
    }
}

/// The compiled rules.
struct Rules {
    /// Lower-cased, non-empty.
    keywords: Vec<String>,
    whole_words: bool,
    patterns: Vec<regex_lite::Regex>,
    denial: Denial,
    scan: Scan,
    stream_window: usize,
}

/// Which rule matched, for the log: `keywords[2]` or `patterns[0]`.
#[derive(Debug, PartialEq)]
struct Hit(&'static str, usize);

impl Rules {
    fn from_config(c: Config) -> Result<Rules, PluginError> {
        if !(400..=499).contains(&c.status) {
            return Err(switchyard_sdk::config_error("status", "must be 400 to 499"));
        }
        if c.keywords.iter().any(|k| k.trim().is_empty()) {
            return Err(switchyard_sdk::config_error(
                "keywords",
                "an empty keyword would match everything",
            ));
        }
        let patterns = c
            .patterns
            .iter()
            .enumerate()
            .map(|(i, p)| {
                regex_lite::Regex::new(p).map_err(|_| {
                    switchyard_sdk::config_error(
                        &format!("patterns[{i}]"),
                        "is not a valid regular expression",
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Rules {
            keywords: c.keywords.iter().map(|k| k.to_lowercase()).collect(),
            whole_words: c.whole_words,
            patterns,
            denial: Denial {
                status: c.status,
                code: c.code,
                message: c.message,
            },
            scan: c.scan,
            stream_window: c
                .stream_window
                .clamp(1, switchyard_sdk::filter::hold::MAX_HOLD),
        })
    }

    fn read() -> Result<Rules, PluginError> {
        Rules::from_config(switchyard_sdk::config()?)
    }

    /// The first rule `text` breaks. With `complete` unset, a match that touches the end
    /// of `text` does not count yet: more text may change it (`zeus` → `zeuses`).
    fn find(&self, text: &str, complete: bool) -> Option<Hit> {
        if !self.keywords.is_empty() {
            let lower = text.to_lowercase();
            for (i, k) in self.keywords.iter().enumerate() {
                for (at, _) in lower.match_indices(k.as_str()) {
                    let end = at + k.len();
                    if !complete && end == lower.len() {
                        continue;
                    }
                    if !self.whole_words
                        || (boundary_before(&lower, at) && boundary_after(&lower, end))
                    {
                        return Some(Hit("keywords", i));
                    }
                }
            }
        }
        for (i, p) in self.patterns.iter().enumerate() {
            if p.find_iter(text).any(|m| complete || m.end() < text.len()) {
                return Some(Hit("patterns", i));
            }
        }
        None
    }

    /// Bytes a stream must hold back so no keyword or pattern match is released before
    /// it is seen whole (and, for whole words, with the character after it).
    fn hold(&self) -> usize {
        let keyword = self.keywords.iter().map(String::len).max().unwrap_or(0) + 4;
        if self.patterns.is_empty() {
            keyword
        } else {
            keyword.max(self.stream_window)
        }
    }

    fn deny(&self, hit: &Hit, what: &str) -> Denial {
        switchyard_sdk::log(
            host::Level::Info,
            &format!("denied {what}: matched {}[{}]", hit.0, hit.1),
        );
        self.denial.clone()
    }
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

fn boundary_before(text: &str, at: usize) -> bool {
    text[..at].chars().next_back().is_none_or(|c| !is_word(c))
}

fn boundary_after(text: &str, end: usize) -> bool {
    text[end..].chars().next().is_none_or(|c| !is_word(c))
}

/// Every text of a request a client wrote, the history included.
fn request_texts(r: &ChatRequest) -> impl Iterator<Item = &str> {
    r.messages.iter().flat_map(|m| {
        m.content
            .iter()
            .filter_map(|p| match p {
                ContentPart::Text(t) => Some(t.as_str()),
                _ => None,
            })
            .chain(m.tool_calls.iter().map(|c| c.arguments.as_str()))
    })
}

struct Policy(Rules);

impl TextPolicy for Policy {
    fn inspect(&mut self, held: &str, complete: bool) -> Result<(), Denial> {
        match self.0.find(held, complete) {
            Some(hit) => Err(self.0.deny(&hit, "a streamed answer")),
            None => Ok(()),
        }
    }

    fn safe_cut(&self, held: &str) -> usize {
        held.len().saturating_sub(self.0.hold())
    }
}

/// Passes every chunk through: the config says answers are not scanned.
struct Open;

impl StreamFilter for Open {
    fn on_chunk(&mut self, chunk: ChatChunk) -> Result<ChunkVerdict, PluginError> {
        Ok(ChunkVerdict::Emit(vec![chunk]))
    }
}

/// A stream refused before its first chunk: the config is broken.
struct Broken(PluginError);

impl StreamFilter for Broken {
    fn on_chunk(&mut self, _: ChatChunk) -> Result<ChunkVerdict, PluginError> {
        Err(self.0.clone())
    }
}

#[derive(Default)]
struct DenyList;

impl Filter for DenyList {
    fn on_request(
        &mut self,
        _ctx: RequestContext,
        request: ChatRequest,
    ) -> Result<RequestOutcome, PluginError> {
        let rules = Rules::read()?;
        let hit = match rules.scan {
            Scan::Response => None,
            _ => request_texts(&request).find_map(|t| rules.find(t, true)),
        };
        Ok(RequestOutcome {
            verdict: match hit {
                Some(hit) => RequestVerdict::Deny(rules.deny(&hit, "a request")),
                None => RequestVerdict::Allow,
            },
            constraints: None,
        })
    }

    fn on_response(
        &mut self,
        _ctx: RequestContext,
        response: ChatResponse,
    ) -> Result<ResponseVerdict, PluginError> {
        let rules = Rules::read()?;
        if rules.scan == Scan::Request {
            return Ok(ResponseVerdict::Allow);
        }
        let hit = response.choices.iter().find_map(|c| {
            let m = &c.message;
            m.content
                .iter()
                .filter_map(|p| match p {
                    ContentPart::Text(t) => Some(t.as_str()),
                    _ => None,
                })
                .chain(m.reasoning.as_deref())
                .find_map(|t| rules.find(t, true))
        });
        Ok(match hit {
            Some(hit) => ResponseVerdict::Deny(rules.deny(&hit, "an answer")),
            None => ResponseVerdict::Allow,
        })
    }

    fn open_stream(&mut self, _ctx: RequestContext) -> Box<dyn StreamFilter> {
        match Rules::read() {
            Ok(rules) if rules.scan == Scan::Request => Box::new(Open),
            Ok(rules) => Box::new(HeldStream::new(Policy(rules))),
            Err(e) => Box::new(Broken(e)),
        }
    }
}

switchyard_sdk::export_filter!(DenyList);

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_sdk::parse_config;
    use switchyard_sdk::testing::{request, stream_through};

    fn rules(json: &str) -> Rules {
        Rules::from_config(parse_config(json).unwrap()).unwrap()
    }

    #[test]
    fn keywords_match_case_insensitively_as_whole_words() {
        let r = rules(r#"{"keywords": ["Project Zeus", "leak"]}"#);
        assert_eq!(
            r.find("about PROJECT ZEUS.", true),
            Some(Hit("keywords", 0))
        );
        assert_eq!(r.find("a leak!", true), Some(Hit("keywords", 1)));
        assert_eq!(r.find("the leaking tap", true), None);
        assert_eq!(r.find("project zeuses", true), None);
        let r = rules(r#"{"keywords": ["leak"], "whole_words": false}"#);
        assert_eq!(r.find("the leaking tap", true), Some(Hit("keywords", 0)));
    }

    #[test]
    fn a_match_at_the_end_waits_for_what_follows_unless_complete() {
        let r = rules(r#"{"keywords": ["zeus"], "patterns": ["secret-[0-9]+"]}"#);
        assert_eq!(r.find("project zeus", false), None);
        assert_eq!(r.find("project zeus", true), Some(Hit("keywords", 0)));
        assert_eq!(r.find("project zeus is", false), Some(Hit("keywords", 0)));
        assert_eq!(r.find("id secret-12", false), None);
        assert_eq!(r.find("id secret-12 ok", false), Some(Hit("patterns", 0)));
    }

    #[test]
    fn requests_are_refused_with_the_configured_denial_anywhere_in_the_history() {
        let r = rules(r#"{"keywords": ["zeus"], "status": 403, "code": "nope", "message": "No."}"#);
        let req = request(&[(Role::Assistant, "zeus said"), (Role::User, "go on")]);
        let hit = request_texts(&req).find_map(|t| r.find(t, true));
        assert_eq!(hit, Some(Hit("keywords", 0)));
        assert_eq!(r.denial.status, 403);
        assert_eq!(
            (r.denial.code.as_str(), r.denial.message.as_str()),
            ("nope", "No.")
        );
        let mut call = request(&[(Role::User, "run it")]);
        call.messages[0].tool_calls.push(ToolCall {
            id: "1".into(),
            name: "f".into(),
            arguments: r#"{"target": "Zeus"}"#.into(),
        });
        assert!(request_texts(&call).any(|t| r.find(t, true).is_some()));
    }

    /// What the client sees of `parts` streamed, and whether the stream was denied.
    fn stream(r: Rules, parts: &[&str]) -> (String, bool) {
        let (seen, denial) = stream_through(&mut HeldStream::new(Policy(r)), parts);
        (seen, denial.is_some())
    }

    #[test]
    fn streamed_answers_are_denied_at_every_split_before_the_keyword_is_released() {
        let text = "The plan is called Project Zeus and it starts soon.";
        for cut in 1..text.len() {
            let r = rules(r#"{"keywords": ["project zeus"]}"#);
            let (seen, denied) = stream(r, &[&text[..cut], &text[cut..]]);
            assert!(denied, "split at {cut}");
            assert!(
                !seen.to_lowercase().contains("project"),
                "split at {cut}: {seen}"
            );
        }
        let clean = "Zeuses and leaks are fine here.";
        for cut in 1..clean.len() {
            let r = rules(r#"{"keywords": ["zeus", "leak"]}"#);
            assert_eq!(
                stream(r, &[&clean[..cut], &clean[cut..]]),
                (clean.to_owned(), false)
            );
        }
    }

    #[test]
    fn config_errors_name_the_key() {
        let bad = |json: &str| match Rules::from_config(parse_config(json).unwrap()) {
            Err(e) => e.message,
            Ok(_) => panic!("{json} accepted"),
        };
        assert!(bad(r#"{"patterns": ["(unclosed"]}"#).contains("`patterns[0]`"));
        assert!(bad(r#"{"status": 500}"#).contains("`status`"));
        assert!(bad(r#"{"keywords": [" "]}"#).contains("`keywords`"));
        assert!(parse_config::<Config>(r#"{"keyword": ["x"]}"#).is_err());
        assert!(parse_config::<Config>(r#"{"scan": "everything"}"#).is_err());
    }
}
