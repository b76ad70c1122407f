//! Redaction of a streamed response, where one email address or card number can arrive
//! split over several chunks.
//!
//! Per choice, and separately for answer text and reasoning text, the filter keeps the
//! tail that could still grow into a match and releases only the text before it, redacted.
//! The tail is flushed when the choice finishes and when the stream ends.

use switchyard_sdk::filter::{ChatChunk, ChoiceDelta, ChunkVerdict, PluginError};

use crate::detect::{Kinds, redact};

/// The most text held back for one choice. A spaced IBAN is 42 characters and an email
/// address rarely passes 64; past this bound text is released even mid-token, so a
/// pathological token (a long base64 blob) cannot stall the stream.
const MAX_HOLD: usize = 128;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Field {
    Content,
    Reasoning,
}

struct Held {
    index: u32,
    field: Field,
    text: String,
}

pub(crate) struct Redactor {
    kinds: Kinds,
    held: Vec<Held>,
    /// Identity of the latest chunk, for the chunk that `finish` emits.
    last: Option<(String, String, u64)>,
}

impl Redactor {
    pub(crate) fn new(kinds: Kinds) -> Self {
        Redactor {
            kinds,
            held: Vec::new(),
            last: None,
        }
    }

    fn buffer(&mut self, index: u32, field: Field) -> &mut String {
        let pos = match self
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
        };
        &mut self.held[pos].text
    }

    /// Appends `text` and returns what can be released now, redacted.
    fn push(&mut self, index: u32, field: Field, text: &str) -> String {
        let kinds = self.kinds;
        let buf = self.buffer(index, field);
        buf.push_str(text);
        let cut = safe_cut(buf);
        let ready: String = buf.drain(..cut).collect();
        clean(ready, kinds)
    }

    /// Everything held for `index` (or for every choice), redacted, as flush deltas.
    fn flush(&mut self, index: Option<u32>) -> Vec<ChoiceDelta> {
        let kinds = self.kinds;
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
            let text = clean(h.text, kinds);
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
        deltas
    }

    pub(crate) fn on_chunk(&mut self, chunk: ChatChunk) -> Result<ChunkVerdict, PluginError> {
        self.last = Some((chunk.id.clone(), chunk.model.clone(), chunk.created));
        let had_choices = !chunk.choices.is_empty();
        let mut flushed = Vec::new();
        let choices: Vec<ChoiceDelta> = chunk
            .choices
            .into_iter()
            .filter_map(|d| self.delta(d, &mut flushed))
            .collect();
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
        Ok(ChunkVerdict::Emit(out))
    }

    /// One choice's delta: its text goes through the hold-back buffers; a finishing
    /// choice's whole buffer is added to `flushed`. `None` when nothing is left of it.
    fn delta(&mut self, mut d: ChoiceDelta, flushed: &mut Vec<ChoiceDelta>) -> Option<ChoiceDelta> {
        let finishing = d.finish_reason.is_some();
        let had_text = !is_empty_text(&d);
        for field in [Field::Content, Field::Reasoning] {
            let slot = match field {
                Field::Content => &mut d.content,
                Field::Reasoning => &mut d.reasoning,
            };
            let Some(text) = slot.take() else { continue };
            if finishing {
                self.buffer(d.index, field).push_str(&text);
                continue;
            }
            let out = self.push(d.index, field, &text);
            // An empty text sent as such (the role chunk's `""`) stays as it was.
            if !out.is_empty() || text.is_empty() {
                *slot = Some(out);
            }
        }
        if finishing {
            flushed.extend(self.flush(Some(d.index)));
        }
        let gone = had_text && is_empty_text(&d) && d.role.is_none() && d.tool_calls.is_empty();
        (finishing || !gone).then_some(d)
    }

    pub(crate) fn finish(&mut self) -> Result<ChunkVerdict, PluginError> {
        let choices = self.flush(None);
        if choices.is_empty() {
            return Ok(ChunkVerdict::Emit(Vec::new()));
        }
        let (id, model, created) = self.last.take().unwrap_or_default();
        Ok(ChunkVerdict::Emit(vec![ChatChunk {
            id,
            model,
            created,
            choices,
            usage: None,
        }]))
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
    while cut >= 2 && b[cut - 1] == b' ' && b.get(cut).is_none_or(|c| is_group(*c)) {
        let space = cut - 1;
        let prev = after_space(space);
        if prev == space || !is_group(b[space - 1]) {
            break;
        }
        cut = prev;
        // A token that is not all group bytes can only be where a match starts.
        if !b[prev..space].iter().all(|c| is_group(*c)) {
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
