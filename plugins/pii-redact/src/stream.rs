//! Redaction of a streamed response, where one email address or card number can arrive
//! split over several chunks, through the SDK's hold-back (`switchyard_sdk::filter::hold`):
//! this module says how much of the held text is final and redacts what is released.
//!
//! Two finds can be longer than a hold: a private key block (kilobytes, over many lines)
//! and a key-like token longer than [`MAX_SECRET_HOLD`]. Once one is cut by a release,
//! the rest of it is dropped from the following releases ([`Skip`]), so the stream shows
//! one placeholder (for a block, what the whole text would; for an over-long token, its
//! start is redacted even if the whole would not have matched: over-redacting beats
//! leaking).

use switchyard_sdk::filter::hold::{HeldStream, Slot, TextPolicy};

use crate::detect::{Kind, Rules, apply, find};
use crate::secrets;

/// The most text held back for one choice. A spaced IBAN is 42 characters and an email
/// address rarely passes 64; past this bound text is released even mid-token, so a
/// long run without spaces (base64, or Chinese, which has no spaces) cannot stall the
/// stream.
const MAX_HOLD: usize = 128;

/// The bound when a held token starts like a key or a JWT (after any non-token byte:
/// `KEY=sk-...`, `"eyJ...`) or a key block begins: the SDK's own bound, so that such a
/// token up to 4 KB is scanned whole. A longer one is released at once and redacted
/// from its start, and the rest of it dropped as it arrives (see [`Skip`]).
const MAX_SECRET_HOLD: usize = switchyard_sdk::filter::hold::MAX_HOLD;

/// What is left of a find that the last release cut off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Skip {
    /// Inside a private key block: drop up to its `-----END`.
    KeyBlock,
    /// Past `-----END`: drop up to the `-----` that closes that line.
    KeyEndLine,
    /// Inside a key or token: drop its remaining token bytes.
    Token,
}

/// What the stream looks for, and what is left to drop, per choice and field.
pub(crate) struct Pii {
    rules: Rules,
    skipping: Vec<(Slot, Skip)>,
}

impl TextPolicy for Pii {
    fn safe_cut(&self, held: &str) -> usize {
        safe_cut(held)
    }

    fn release_at(&mut self, at: Slot, text: String) -> String {
        let skip = self
            .skipping
            .iter()
            .position(|(s, _)| *s == at)
            .map(|i| self.skipping.swap_remove(i).1);
        let (out, left) = clean(&text, skip, &self.rules);
        if let Some(left) = left {
            self.skipping.push((at, left));
        }
        out
    }
}

/// The stream filter for `rules`.
pub(crate) fn redactor(rules: Rules) -> HeldStream<Pii> {
    HeldStream::new(Pii {
        rules,
        skipping: Vec::new(),
    })
}

/// One release: the rest of a cut-off find dropped first, then the text redacted.
/// Returns what the client sees, and what is left to drop from the next release.
fn clean(text: &str, mut skip: Option<Skip>, rules: &Rules) -> (String, Option<Skip>) {
    let b = text.as_bytes();
    let mut from = 0;
    while let Some(s) = skip {
        let (to, next) = match s {
            Skip::KeyBlock => match secrets::find(b, b"-----END", from) {
                Some(at) => (at + 8, Some(Skip::KeyEndLine)),
                None => return (String::new(), skip),
            },
            Skip::KeyEndLine => match secrets::find(b, b"-----", from) {
                Some(at) => (at + 5, None),
                None => return (String::new(), skip),
            },
            Skip::Token => {
                let mut to = from;
                // Token bytes, and dots between them (a JWT's segments).
                while to < b.len()
                    && (secrets::is_token(b[to])
                        || (b[to] == b'.' && b.get(to + 1).is_some_and(|c| secrets::is_token(*c))))
                {
                    to += 1;
                }
                if to == b.len() {
                    return (String::new(), skip);
                }
                (to, None)
            }
        };
        from = to;
        skip = next;
    }
    let text = &text[from..];
    let tb = text.as_bytes();
    let mut spans = find(text, rules.kinds);
    // A release that ends inside a run of token bytes (and a JWT's dots) longer than
    // any word was cut by the hold's bound: if the run started like a key or a JWT, it is
    // one too long to hold whole. Redact what arrived of it and drop the rest;
    // over-redacting beats leaking.
    let run = tb
        .iter()
        .rposition(|c| !(secrets::is_token(*c) || *c == b'.'))
        .map_or(0, |p| p + 1);
    if tb.len() - run >= MAX_HOLD {
        let starts = secrets::Survey::of(&tb[run..]).token_starts;
        let covered = spans.last().is_some_and(|s| s.end == tb.len());
        if let Some(&first) = starts.first()
            && !covered
        {
            let start = run + first;
            let kind = if tb[start] == b'e' {
                Kind::Jwt
            } else {
                Kind::ApiKey
            };
            if rules.kinds.contains(kind) {
                spans.retain(|s| s.end <= start);
                spans.push(crate::detect::Span {
                    start,
                    end: tb.len(),
                    kind,
                });
            }
        }
    }
    // A find that touches the end of the release was cut off by the hold's bound (or
    // the text ends there, and nothing follows to drop).
    let left = spans
        .last()
        .filter(|s| s.end == text.len())
        .and_then(|s| match s.kind {
            Kind::PrivateKey => {
                let closed = secrets::header_end(tb, s.start)
                    .and_then(|h| secrets::pem_end(tb, h))
                    .is_some();
                (!closed).then_some(Skip::KeyBlock)
            }
            Kind::ApiKey | Kind::Jwt => Some(Skip::Token),
            _ => None,
        });
    if spans.is_empty() {
        return (text.to_owned(), left);
    }
    (apply(text, &spans, rules).0, left)
}

/// Bytes of a pattern's spaced groups (card digits, IBAN characters, phone punctuation).
fn is_group(c: u8) -> bool {
    c.is_ascii_digit() || c.is_ascii_uppercase() || b"()+-.".contains(&c)
}

/// Bytes a group may start or end with: those of [`is_group`], lower-case letters (an IBAN
/// in any case) and any non-ASCII byte (full-width digits, which the scanners fold).
fn may_join(c: u8) -> bool {
    is_group(c) || c.is_ascii_lowercase() || !c.is_ascii()
}

/// Whether a whole token could be a middle group of one spaced number: all group bytes
/// (cards, phones, upper-case IBANs), up to four letters or digits (an IBAN group in any
/// case), or anything with non-ASCII characters (full-width digits). Ordinary prose
/// rarely strings many such tokens together, and the hold is bounded anyway.
fn group_token(t: &[u8]) -> bool {
    t.iter().all(|c| is_group(*c))
        || (t.len() <= 4 && t.iter().all(u8::is_ascii_alphanumeric))
        || !t.is_ascii()
}

/// How much of `text` is final: no match can cross the returned position, whatever text
/// arrives next. That is the start of the last token (an email address has no spaces),
/// moved back over earlier tokens while they could be groups of one spaced number
/// (`4111 1111 ...`, `DE89 3704 ...`, `+1 (415) 555 ...`). The cut always follows
/// whitespace, so text on either side is scanned with the same context as the whole.
pub(crate) fn safe_cut(text: &str) -> usize {
    let b = text.as_bytes();
    let after_space = |end: usize| {
        b[..end]
            .iter()
            .rposition(u8::is_ascii_whitespace)
            .map_or(0, |p| p + 1)
    };
    let mut cut = after_space(b.len());
    // Only a single plain space joins groups; a newline, a tab or two spaces never do.
    while cut >= 2 && b[cut - 1] == b' ' && b.get(cut).is_none_or(|c| may_join(*c)) {
        let space = cut - 1;
        let prev = after_space(space);
        if prev == space || !may_join(b[space - 1]) {
            break;
        }
        cut = prev;
        // A token that cannot be a middle group can only be where a match starts.
        if !group_token(&b[prev..space]) {
            break;
        }
    }
    // A key block's header is several words: hold from `-----BEGIN` until the header
    // line is complete, so it is never released in pieces the scanner cannot recognise.
    if let Some(begin) = text.rfind("-----BEGIN")
        && begin < cut
        && !text[begin..].contains('\n')
        && secrets::header_end(b, begin).is_none()
    {
        cut = begin;
    }
    // A key or token may start after any non-token byte (`KEY=sk-...`, `"eyJ...`), and a
    // key block may arrive without real line breaks (JSON's `\n`): hold those longer.
    let held = &b[cut..];
    let limit = if !secrets::Survey::of(held).token_starts.is_empty()
        || secrets::find(held, b"-----BEGIN", 0).is_some()
    {
        MAX_SECRET_HOLD
    } else {
        MAX_HOLD
    };
    if b.len() - cut > limit {
        if limit == MAX_SECRET_HOLD {
            // A key-like run longer than the hold: release all of it now, so that the
            // release holds the run's start and redacts it whole (see `clean`); what
            // follows of the run is dropped as it arrives.
            return b.len();
        }
        cut = b.len() - limit;
        while !text.is_char_boundary(cut) {
            cut += 1;
        }
    }
    cut
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_sdk::testing::stream_through;

    /// What the client sees of `parts` streamed through the redactor.
    fn streamed(parts: &[&str]) -> String {
        let (seen, denied) = stream_through(&mut redactor(Rules::all()), parts);
        assert!(denied.is_none(), "redaction never denies");
        seen
    }

    const TEXT: &str = "Mail jo.doe@example.com or call +1 (415) 555-0132; card 4111 1111 1111 \
                        1111, IBAN DE89 3704 0044 0532 0130 00, SSN 123-45-6789. Not a card: \
                        4111 1111 1111 1112. Wide ４１１１ １１１１ １１１１ １１１１, hidden \
                        ann\u{200B}.lee@exa\u{200D}mple.org, lower gb82 west 1234 5698 7654 32, \
                        key sk-ant-api03-AbCdEf0123456789AbCdEf0123456789-xyzAA and \
                        ghp_0123456789abcdefghijABCDEFGHIJ012345; a task-force is no key.";

    /// Finds longer than the general hold: a 2 KB JWT, a private key block over many
    /// lines, and keys beside ordinary words.
    fn long_text() -> String {
        let line = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj";
        let body = vec![line; 24].join("\n");
        let payload =
            "eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiYWRtaW4iOnRydWV9".repeat(30);
        format!(
            "Use sk-proj-AbCdEf0123456789_AbCdEf0123456789wxyz or AKIAIOSFODNN7EXAMPLE. \
             Block:\n-----BEGIN RSA PRIVATE KEY-----\n{body}\n-----END RSA PRIVATE KEY-----\n\
             then eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.{payload}.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U. \
             Half -----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIIrYSSNQFaA2Hwf1duRSxKtLYX5CB04fSeQ6tF1aY"
        )
    }

    fn chunked(text: &str, size: usize) -> Vec<&str> {
        let mut parts = Vec::new();
        let mut at = 0;
        while at < text.len() {
            let mut end = (at + size).min(text.len());
            while !text.is_char_boundary(end) {
                end += 1;
            }
            parts.push(&text[at..end]);
            at = end;
        }
        parts
    }

    /// Keys that do not start a word, a key block with JSON's escaped line breaks, and a
    /// JWT longer than any hold: whatever the chunking, none of it reaches the client.
    #[test]
    fn secrets_inside_words_escaped_key_blocks_and_huge_tokens_never_stream_out() {
        let key = format!("sk-proj-{}", "AbCdEf0123456789_".repeat(9));
        let jwt = format!(
            "eyJhbGciOiJIUzI1NiJ9.{}.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
            "eyJzdWIiOiIxMjM0NTY3ODkwIn0".repeat(12)
        );
        let body = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj".repeat(25);
        let huge = format!("eyJhbGciOiJIUzI1NiJ9.{}.sig0123456789", "QUJD".repeat(1500));
        let texts = [
            format!("export OPENAI_API_KEY={key}\nnext line"),
            format!("{{\"token\": \"{jwt}\"}}"),
            format!(
                "{{\"private_key\": \"-----BEGIN PRIVATE KEY-----\\n{body}\\n-----END PRIVATE KEY-----\\n\"}}"
            ),
            format!("a token {huge} and more"),
        ];
        for text in &texts {
            let whole = clean(text, None, &Rules::all()).0;
            for size in [1, 4, 16, 100] {
                let seen = streamed(&chunked(text, size));
                for secret in [&key[10..60], &jwt[30..80], &body[..50], &huge[30..80]] {
                    assert!(!seen.contains(secret), "chunks of {size} leaked: {seen}");
                }
                if !text.contains(&huge) {
                    assert_eq!(seen, whole, "chunks of {size}");
                }
            }
        }
    }

    #[test]
    fn long_secrets_stream_like_one_shot_for_every_split() {
        let text = long_text();
        let whole = clean(&text, None, &Rules::all()).0;
        assert_eq!(
            whole,
            "Use [REDACTED:API_KEY] or [REDACTED:API_KEY]. Block:\n[REDACTED:PRIVATE_KEY]\n\
             then [REDACTED:JWT]. Half [REDACTED:PRIVATE_KEY]"
        );
        let cuts: Vec<usize> = (1..text.len()).step_by(7).collect();
        for &cut in &cuts {
            assert_eq!(
                streamed(&[&text[..cut], &text[cut..]]),
                whole,
                "split at {cut}"
            );
        }
        // Many small chunks, as a model streams: every token of the key arrives alone.
        for size in [1, 3, 16, 100] {
            let parts: Vec<&str> = text
                .as_bytes()
                .chunks(size)
                .map(|c| std::str::from_utf8(c).unwrap())
                .collect();
            assert_eq!(streamed(&parts), whole, "chunks of {size}");
        }
    }

    #[test]
    fn streamed_redaction_equals_one_shot_for_every_split() {
        let whole = clean(TEXT, None, &Rules::all()).0;
        assert!(whole.contains("[REDACTED:EMAIL]") && whole.contains("4111 1111 1111 1112"));
        assert!(
            !whole.contains('１') && !whole.contains("ann") && !whole.contains("west"),
            "{whole}"
        );
        let cuts: Vec<usize> = (1..TEXT.len())
            .filter(|&i| TEXT.is_char_boundary(i))
            .collect();
        for &cut in &cuts {
            assert_eq!(
                streamed(&[&TEXT[..cut], &TEXT[cut..]]),
                whole,
                "split at {cut}"
            );
        }
        // Three chunks, cuts a character or three apart (a token arriving in pieces).
        for (n, &a) in cuts.iter().enumerate() {
            for b in [cuts.get(n + 1), cuts.get(n + 3)]
                .into_iter()
                .flatten()
                .copied()
            {
                let parts = [&TEXT[..a], &TEXT[a..b], &TEXT[b..]];
                assert_eq!(streamed(&parts), whole, "split at {a} and {b}");
            }
        }
    }
}
