//! Reads the knobs that drive one answer out of a model name such as
//! `mock-slow-200ms+stream-cut-3`.
//!
//! Knobs live in the model name (not in a config file) so that a gateway test can pick a
//! behaviour per request through its ordinary routing, the way TensorZero's dummy provider
//! does; the `x-mock-behavior` header overrides them when the model name is fixed by routing.

use std::time::Duration;

/// The header that replaces the model name as the source of knobs.
pub(crate) const HEADER: &str = "x-mock-behavior";

/// Everything a request asked of the mock. Unknown names leave the defaults: an echo.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Behavior {
    /// Answer with this error status (400..=599) in the provider's error shape.
    pub status: Option<u16>,
    /// Wait this long before the response head.
    pub slow: Option<Duration>,
    /// When streaming, wait this long between the head and the first content event.
    pub ttft: Option<Duration>,
    /// When streaming, wait this long between content events (long-lived streams).
    pub gap: Option<Duration>,
    /// When streaming, break the body after this many content events.
    pub stream_cut: Option<usize>,
    /// Answer 200 with a body (or one stream event) that is not JSON.
    pub malformed: bool,
    /// Answer with one call to the request's first tool.
    pub tool_call: bool,
    /// Answer with this many lorem-ipsum words instead of the echo.
    pub words: Option<usize>,
    /// Repeat the credential the request carried: in the error body with `status-NNN`,
    /// or as a final error event instead of the stream's end. What careless providers do
    /// ("Incorrect API key provided: sk-..."), for testing that the gateway scrubs it.
    pub echo_key: bool,
    /// Report no token usage, in whole answers or streams (as llama.cpp's server
    /// streams do even with `include_usage`).
    pub no_usage: bool,
}

impl Behavior {
    /// Parses `+`-separated knobs, each with or without the `mock-` prefix.
    pub(crate) fn parse(spec: &str) -> Behavior {
        let mut b = Behavior::default();
        for knob in spec.split('+').map(str::trim) {
            let knob = knob.strip_prefix("mock-").unwrap_or(knob);
            b.apply(knob);
        }
        b
    }

    fn apply(&mut self, knob: &str) {
        if let Some(n) = knob.strip_prefix("status-") {
            // Only error statuses: a 2xx "error" would need a body shape no provider has.
            self.status = n.parse().ok().filter(|s| (400..=599).contains(s));
        } else if let Some(d) = knob.strip_prefix("slow-") {
            self.slow = duration(d);
        } else if let Some(d) = knob.strip_prefix("ttft-") {
            self.ttft = duration(d);
        } else if let Some(d) = knob.strip_prefix("gap-") {
            self.gap = duration(d);
        } else if let Some(n) = knob.strip_prefix("stream-cut-") {
            self.stream_cut = n.parse().ok();
        } else if let Some(n) = knob.strip_prefix("words-") {
            self.words = n.parse().ok();
        } else if knob == "malformed" {
            self.malformed = true;
        } else if knob == "tool-call" {
            self.tool_call = true;
        } else if knob == "echo-key" {
            self.echo_key = true;
        } else if knob == "no-usage" {
            self.no_usage = true;
        }
        // `echo` and any real model name fall through to the default answer.
    }
}

/// `250ms` or `2s`.
fn duration(s: &str) -> Option<Duration> {
    if let Some(ms) = s.strip_suffix("ms") {
        ms.parse().ok().map(Duration::from_millis)
    } else {
        s.strip_suffix('s')?.parse().ok().map(Duration::from_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_model_is_a_plain_echo() {
        assert_eq!(Behavior::parse("gpt-4o"), Behavior::default());
        assert_eq!(Behavior::parse("mock-echo"), Behavior::default());
    }

    #[test]
    fn knobs_combine_with_or_without_prefix() {
        let b = Behavior::parse("mock-slow-200ms+stream-cut-3+mock-tool-call+ttft-1s");
        assert_eq!(b.slow, Some(Duration::from_millis(200)));
        assert_eq!(b.ttft, Some(Duration::from_secs(1)));
        assert_eq!(
            Behavior::parse("mock-gap-20ms").gap,
            Some(Duration::from_millis(20))
        );
        assert_eq!(b.stream_cut, Some(3));
        assert!(b.tool_call);
        assert!(!b.malformed);
        assert!(Behavior::parse("mock-echo+no-usage").no_usage);
    }

    #[test]
    fn status_outside_error_range_is_ignored() {
        assert_eq!(Behavior::parse("mock-status-429").status, Some(429));
        assert_eq!(Behavior::parse("mock-status-200").status, None);
        assert_eq!(Behavior::parse("mock-status-abc").status, None);
    }

    #[test]
    fn words_and_malformed() {
        let b = Behavior::parse("mock-words-1000+malformed");
        assert_eq!(b.words, Some(1000));
        assert!(b.malformed);
    }
}
