//! Hold-back for streamed text: the machinery every response filter that looks for
//! patterns needs, because a pattern (an e-mail address, a banned phrase) can arrive
//! split over several chunks.
//!
//! Per choice, and separately for answer and reasoning text, [`HeldStream`] keeps the tail
//! that could still grow into a match and releases only the text before it. What to look
//! for is a [`TextPolicy`]: it sees everything held after each chunk (and may deny the
//! stream), says how much of it is final, and may rewrite what is released. The tail is
//! released when its choice finishes and when the stream ends.
//!
//! The guarantees, for any policy: no text reaches the client before the policy has seen
//! it together with everything that could complete a match in it; at most
//! [`MAX_HOLD`] bytes per choice and field are ever held (so a policy that never lets go
//! cannot stall a stream); a chunk whose only text is held back is dropped rather than
//! sent empty, and usage, roles, tool calls and finish reasons pass through in order.
//!
//! ```ignore
//! struct NoSecrets;
//! impl TextPolicy for NoSecrets {
//!     fn inspect(&mut self, held: &str, complete: bool) -> Result<(), Denial> { ... }
//!     fn safe_cut(&self, held: &str) -> usize { held.len().saturating_sub(15) }
//! }
//! // in `Filter::open_stream`:
//! Box::new(HeldStream::new(NoSecrets))
//! ```

use super::{ChatChunk, ChoiceDelta, ChunkVerdict, Denial, PluginError, StreamFilter};

/// The most text held for one choice and field, whatever the policy says.
pub const MAX_HOLD: usize = 4096;

/// What a streaming filter looks for and does with the text it releases.
pub trait TextPolicy: 'static {
    /// Sees all the text held for one choice's field (the unreleased tail plus what just
    /// arrived); a denial ends the stream with that error. `complete` is set when no more
    /// text will follow (the choice finished or the stream ended), so a match touching
    /// the end of `held` is final (`zeus` at the end may yet become `zeuses`).
    fn inspect(&mut self, held: &str, complete: bool) -> Result<(), Denial> {
        let _ = (held, complete);
        Ok(())
    }

    /// How many leading bytes of `held` are final: no match can cross that position,
    /// whatever text arrives next. Must be a char boundary (others are moved forward).
    fn safe_cut(&self, held: &str) -> usize;

    /// The released text as the client should see it (e.g. redacted).
    fn release(&mut self, text: String) -> String {
        text
    }

    /// [`TextPolicy::release`] for a policy that keeps state between releases (one that
    /// is inside a multi-line match, say): `at` says which choice and field the text
    /// continues, since those are released independently.
    fn release_at(&mut self, at: Slot, text: String) -> String {
        let _ = at;
        self.release(text)
    }
}

/// One held text: a choice's answer or its reasoning.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slot {
    pub index: u32,
    pub reasoning: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Field {
    Content,
    Reasoning,
}

fn slot_of(index: u32, field: Field) -> Slot {
    Slot {
        index,
        reasoning: field == Field::Reasoning,
    }
}

struct Held {
    index: u32,
    field: Field,
    text: String,
}

/// A stream filter applying a [`TextPolicy`] with bounded hold-back.
pub struct HeldStream<P> {
    policy: P,
    held: Vec<Held>,
    /// Identity of the latest chunk, for the chunk that `finish` emits.
    last: Option<(String, String, u64)>,
}

impl<P: TextPolicy> HeldStream<P> {
    pub fn new(policy: P) -> HeldStream<P> {
        HeldStream {
            policy,
            held: Vec::new(),
            last: None,
        }
    }

    pub fn policy(&self) -> &P {
        &self.policy
    }

    fn slot(&mut self, index: u32, field: Field) -> usize {
        match self
            .held
            .iter()
            .position(|h| h.index == index && h.field == field)
        {
            Some(pos) => pos,
            None => {
                self.held.push(Held {
                    index,
                    field,
                    text: String::new(),
                });
                self.held.len() - 1
            }
        }
    }

    /// Appends `text`, lets the policy look, and returns what can be released now.
    fn push(&mut self, index: u32, field: Field, text: &str) -> Result<String, Denial> {
        let pos = self.slot(index, field);
        let buf = &mut self.held[pos].text;
        buf.push_str(text);
        self.policy.inspect(buf, false)?;
        let mut cut = self.policy.safe_cut(buf).min(buf.len());
        cut = cut.max(buf.len().saturating_sub(MAX_HOLD));
        while !buf.is_char_boundary(cut) {
            cut += 1;
        }
        let ready: String = buf.drain(..cut).collect();
        Ok(self.policy.release_at(slot_of(index, field), ready))
    }

    /// Everything held for `index` (or for every choice), inspected and released, as
    /// deltas.
    fn flush(&mut self, index: Option<u32>) -> Result<Vec<ChoiceDelta>, Denial> {
        let mut deltas: Vec<ChoiceDelta> = Vec::new();
        let mut held = std::mem::take(&mut self.held);
        held.sort_by_key(|h| h.index);
        for h in held {
            if index.is_some_and(|i| i != h.index) {
                self.held.push(h);
                continue;
            }
            if h.text.is_empty() {
                continue;
            }
            self.policy.inspect(&h.text, true)?;
            let text = self.policy.release_at(slot_of(h.index, h.field), h.text);
            let pos = match deltas.iter().position(|d| d.index == h.index) {
                Some(pos) => pos,
                None => {
                    deltas.push(text_delta(h.index));
                    deltas.len() - 1
                }
            };
            match h.field {
                Field::Content => deltas[pos].content = Some(text),
                Field::Reasoning => deltas[pos].reasoning = Some(text),
            }
        }
        Ok(deltas)
    }

    /// One choice's delta: its text goes through the hold-back; a finishing choice's
    /// whole tail is added to `flushed`. `None` when nothing is left of it.
    fn delta(
        &mut self,
        mut d: ChoiceDelta,
        flushed: &mut Vec<ChoiceDelta>,
    ) -> Result<Option<ChoiceDelta>, Denial> {
        let finishing = d.finish_reason.is_some();
        let had_text = !is_empty_text(&d);
        for field in [Field::Content, Field::Reasoning] {
            let slot = match field {
                Field::Content => &mut d.content,
                Field::Reasoning => &mut d.reasoning,
            };
            let Some(text) = slot.take() else { continue };
            if finishing {
                let pos = self.slot(d.index, field);
                self.held[pos].text.push_str(&text);
                continue;
            }
            let out = self.push(d.index, field, &text)?;
            // An empty text sent as such (the role chunk's `""`) stays as it was.
            if !out.is_empty() || text.is_empty() {
                *slot = Some(out);
            }
        }
        if finishing {
            flushed.extend(self.flush(Some(d.index))?);
        }
        let gone = had_text && is_empty_text(&d) && d.role.is_none() && d.tool_calls.is_empty();
        Ok((finishing || !gone).then_some(d))
    }

    fn chunk(&mut self, chunk: ChatChunk) -> Result<Vec<ChatChunk>, Denial> {
        self.last = Some((chunk.id.clone(), chunk.model.clone(), chunk.created));
        let had_choices = !chunk.choices.is_empty();
        let mut flushed = Vec::new();
        let mut choices = Vec::with_capacity(chunk.choices.len());
        for d in chunk.choices {
            if let Some(d) = self.delta(d, &mut flushed)? {
                choices.push(d);
            }
        }
        let mut out = Vec::with_capacity(2);
        if !flushed.is_empty() {
            // The held tail of a finishing choice goes out before the chunk that ends it.
            out.push(ChatChunk {
                id: chunk.id.clone(),
                model: chunk.model.clone(),
                created: chunk.created,
                choices: flushed,
                usage: None,
            });
        }
        // A chunk whose only text is now held back is dropped rather than sent empty.
        if !(had_choices && choices.is_empty() && chunk.usage.is_none()) {
            out.push(ChatChunk { choices, ..chunk });
        }
        Ok(out)
    }

    fn end(&mut self) -> Result<Vec<ChatChunk>, Denial> {
        let choices = self.flush(None)?;
        if choices.is_empty() {
            return Ok(Vec::new());
        }
        let (id, model, created) = self.last.take().unwrap_or_default();
        Ok(vec![ChatChunk {
            id,
            model,
            created,
            choices,
            usage: None,
        }])
    }
}

fn verdict(r: Result<Vec<ChatChunk>, Denial>) -> ChunkVerdict {
    match r {
        Ok(chunks) => ChunkVerdict::Emit(chunks),
        Err(denial) => ChunkVerdict::Deny(denial),
    }
}

impl<P: TextPolicy> StreamFilter for HeldStream<P> {
    fn on_chunk(&mut self, chunk: ChatChunk) -> Result<ChunkVerdict, PluginError> {
        Ok(verdict(self.chunk(chunk)))
    }

    fn finish(&mut self) -> Result<ChunkVerdict, PluginError> {
        Ok(verdict(self.end()))
    }
}

fn text_delta(index: u32) -> ChoiceDelta {
    ChoiceDelta {
        index,
        role: None,
        content: None,
        reasoning: None,
        tool_calls: Vec::new(),
        finish_reason: None,
    }
}

/// Whether the delta carries no answer or reasoning text.
fn is_empty_text(d: &ChoiceDelta) -> bool {
    d.content.as_deref().is_none_or(str::is_empty)
        && d.reasoning.as_deref().is_none_or(str::is_empty)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Holds back the last 3 bytes, denies "bad", upper-cases what it releases.
    struct Shout;

    impl TextPolicy for Shout {
        fn inspect(&mut self, held: &str, _complete: bool) -> Result<(), Denial> {
            match held.contains("bad") {
                true => Err(Denial {
                    status: 400,
                    code: "bad".into(),
                    message: "bad".into(),
                }),
                false => Ok(()),
            }
        }
        fn safe_cut(&self, held: &str) -> usize {
            held.len().saturating_sub(2)
        }
        fn release(&mut self, text: String) -> String {
            text.to_uppercase()
        }
    }

    use crate::testing::text_chunk as chunk;

    fn text_of(v: &ChunkVerdict) -> String {
        match v {
            ChunkVerdict::Emit(chunks) => chunks
                .iter()
                .flat_map(|c| &c.choices)
                .filter_map(|d| d.content.clone())
                .collect(),
            ChunkVerdict::Deny(d) => format!("<deny {}>", d.code),
        }
    }

    /// Streams `parts` and returns what the client would see, chunk by chunk.
    fn stream(parts: &[&str]) -> Vec<String> {
        let mut s = HeldStream::new(Shout);
        let mut out: Vec<String> = parts
            .iter()
            .enumerate()
            .map(|(i, p)| text_of(&s.on_chunk(chunk(p, i + 1 == parts.len())).unwrap()))
            .collect();
        out.push(text_of(&s.finish().unwrap()));
        out
    }

    #[test]
    fn text_is_released_behind_the_hold_and_flushed_at_the_end() {
        assert_eq!(
            stream(&["hello", " world", "!"]),
            ["HEL", "LO WOR", "LD!", ""]
        );
    }

    #[test]
    fn a_match_split_over_chunks_is_caught_before_any_of_it_is_released() {
        let out = stream(&["all fine b", "a", "d news"]);
        assert_eq!(out[0], "ALL FINE");
        assert_eq!(out[1], " ", "`ba` is held: it could become `bad`");
        assert_eq!(out[2], "<deny bad>");
    }

    #[test]
    fn every_split_of_a_text_is_released_whole_or_denied_as_one_shot_would() {
        let text = "a good day, not a bad one";
        for cut in 1..text.len() {
            let out = stream(&[&text[..cut], &text[cut..]]).concat();
            assert!(out.ends_with("<deny bad>"), "split at {cut}: {out}");
            assert!(!out.contains("BAD"), "split at {cut}: {out}");
        }
        let clean = "a good day";
        for cut in 1..clean.len() {
            assert_eq!(
                stream(&[&clean[..cut], &clean[cut..]]).concat(),
                "A GOOD DAY"
            );
        }
    }

    #[test]
    fn the_hold_is_bounded_whatever_the_policy_says() {
        struct Never;
        impl TextPolicy for Never {
            fn safe_cut(&self, _: &str) -> usize {
                0
            }
        }
        let mut s = HeldStream::new(Never);
        let long = "é".repeat(MAX_HOLD);
        let v = s.on_chunk(chunk(&long, false)).unwrap();
        let released = text_of(&v);
        assert!(
            released.len() >= long.len() - MAX_HOLD - 1,
            "{}",
            released.len()
        );
        assert!(long.starts_with(&released), "cut on a char boundary");
    }
}
