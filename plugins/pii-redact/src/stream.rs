//! Redaction of a streamed response, where one email address or card number can arrive
//! split over several chunks, through the SDK's hold-back (`switchyard_sdk::filter::hold`):
//! this module only says how much of the held text is final and redacts what is released.

use switchyard_sdk::filter::hold::{HeldStream, TextPolicy};

use crate::detect::{Kinds, redact};

/// The most text held back for one choice. A spaced IBAN is 42 characters and an email
/// address rarely passes 64; past this bound text is released even mid-token, so a
/// pathological token (a long base64 blob) cannot stall the stream.
const MAX_HOLD: usize = 128;

/// What the stream looks for: the configured kinds.
pub(crate) struct Pii(Kinds);

impl TextPolicy for Pii {
    fn safe_cut(&self, held: &str) -> usize {
        safe_cut(held)
    }

    fn release(&mut self, text: String) -> String {
        clean(text, self.0)
    }
}

/// The stream filter for `kinds`.
pub(crate) fn redactor(kinds: Kinds) -> HeldStream<Pii> {
    HeldStream::new(Pii(kinds))
}

fn clean(text: String, kinds: Kinds) -> String {
    match redact(&text, kinds) {
        Some((redacted, _)) => redacted,
        None => text,
    }
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
    if b.len() - cut > MAX_HOLD {
        cut = b.len() - MAX_HOLD;
        while !text.is_char_boundary(cut) {
            cut += 1;
        }
    }
    cut
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_sdk::filter::{ChatChunk, ChoiceDelta, ChunkVerdict, StreamFilter};
    use switchyard_sdk::types::FinishReason;

    fn chunk(text: &str, finish: bool) -> ChatChunk {
        ChatChunk {
            id: "c".into(),
            model: "m".into(),
            created: 1,
            choices: vec![ChoiceDelta {
                index: 0,
                role: None,
                content: Some(text.into()),
                reasoning: None,
                tool_calls: vec![],
                finish_reason: finish.then_some(FinishReason::Stop),
            }],
            usage: None,
        }
    }

    /// What the client sees of `parts` streamed through the redactor.
    fn streamed(parts: &[&str]) -> String {
        let mut s = redactor(Kinds::all());
        let mut verdicts: Vec<ChunkVerdict> = parts
            .iter()
            .enumerate()
            .map(|(i, p)| s.on_chunk(chunk(p, i + 1 == parts.len())).unwrap())
            .collect();
        verdicts.push(s.finish().unwrap());
        let mut seen = String::new();
        for v in verdicts {
            let ChunkVerdict::Emit(chunks) = v else {
                panic!("redaction never denies")
            };
            for d in chunks.iter().flat_map(|c| &c.choices) {
                seen.push_str(d.content.as_deref().unwrap_or(""));
            }
        }
        seen
    }

    const TEXT: &str = "Mail jo.doe@example.com or call +1 (415) 555-0132; card 4111 1111 1111 \
                        1111, IBAN DE89 3704 0044 0532 0130 00, SSN 123-45-6789. Not a card: \
                        4111 1111 1111 1112. Wide ４１１１ １１１１ １１１１ １１１１, hidden \
                        ann\u{200B}.lee@exa\u{200D}mple.org, lower gb82 west 1234 5698 7654 32.";

    #[test]
    fn streamed_redaction_equals_one_shot_for_every_split() {
        let whole = clean(TEXT.to_owned(), Kinds::all());
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
