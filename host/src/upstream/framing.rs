//! Splits an upstream stream body into events: server-sent events (`data:` lines, events
//! separated by a blank line, LF or CRLF) or newline-delimited JSON.
//!
//! Written here rather than taken from `eventsource-stream` because the gateway needs to
//! decode from its own byte buffer with hard size limits, and TCP reads split events
//! anywhere (CRLF pairs included): the decoder keeps partial lines across pushes.

use bytes::BytesMut;

/// One framed event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Event {
    /// The SSE `event:` field.
    pub event: Option<String>,
    /// `data:` lines joined with `\n` (SSE), or one line (NDJSON).
    pub data: Vec<u8>,
}

/// How events are framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    Sse,
    Ndjson,
}

/// A line or event grew past the limit: the upstream is broken or hostile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("upstream stream event exceeds {0} bytes")]
pub struct TooLarge(pub usize);

/// Incremental decoder. Feed bytes with `push`, collect events; call `finish` at EOF.
#[derive(Debug)]
pub struct Decoder {
    framing: Framing,
    buf: BytesMut,
    /// Where to resume scanning for a newline in `buf`.
    scanned: usize,
    /// The SSE event being assembled.
    pending: Event,
    has_data: bool,
    max_event: usize,
}

impl Decoder {
    pub fn new(framing: Framing, max_event: usize) -> Self {
        Decoder {
            framing,
            buf: BytesMut::new(),
            scanned: 0,
            pending: Event::default(),
            has_data: false,
            max_event,
        }
    }

    /// Adds bytes and appends every completed event to `out`.
    pub fn push(&mut self, bytes: &[u8], out: &mut Vec<Event>) -> Result<(), TooLarge> {
        self.buf.extend_from_slice(bytes);
        while let Some(pos) = self.buf[self.scanned..].iter().position(|b| *b == b'\n') {
            let end = self.scanned + pos;
            let mut line = self.buf.split_to(end + 1);
            self.scanned = 0;
            line.truncate(end);
            if line.last() == Some(&b'\r') {
                line.truncate(line.len() - 1);
            }
            self.line(&line, out)?;
        }
        self.scanned = self.buf.len();
        // A lone trailing CR might be the first half of a CRLF split across reads; it is
        // handled when the LF arrives. Anything else past the limit is an error.
        if self.buf.len() > self.max_event || self.pending.data.len() > self.max_event {
            return Err(TooLarge(self.max_event));
        }
        Ok(())
    }

    /// The body ended: emits a final event that was not terminated by a blank line.
    pub fn finish(&mut self, out: &mut Vec<Event>) -> Result<(), TooLarge> {
        if !self.buf.is_empty() {
            let mut line = std::mem::take(&mut self.buf);
            if line.last() == Some(&b'\r') {
                line.truncate(line.len() - 1);
            }
            self.scanned = 0;
            self.line(&line, out)?;
        }
        if self.framing == Framing::Sse {
            self.dispatch(out);
        }
        Ok(())
    }

    fn line(&mut self, line: &[u8], out: &mut Vec<Event>) -> Result<(), TooLarge> {
        match self.framing {
            Framing::Ndjson => {
                if !line.iter().all(u8::is_ascii_whitespace) {
                    out.push(Event {
                        event: None,
                        data: line.to_vec(),
                    });
                }
            }
            Framing::Sse => {
                if line.is_empty() {
                    self.dispatch(out);
                    return Ok(());
                }
                if line[0] == b':' {
                    return Ok(()); // comment / keep-alive
                }
                let (field, value) = match line.iter().position(|b| *b == b':') {
                    Some(i) => {
                        let v = &line[i + 1..];
                        (&line[..i], v.strip_prefix(b" ").unwrap_or(v))
                    }
                    None => (line, &b""[..]),
                };
                match field {
                    b"data" => {
                        if self.has_data {
                            self.pending.data.push(b'\n');
                        }
                        self.pending.data.extend_from_slice(value);
                        self.has_data = true;
                        if self.pending.data.len() > self.max_event {
                            return Err(TooLarge(self.max_event));
                        }
                    }
                    b"event" => {
                        self.pending.event = Some(String::from_utf8_lossy(value).into_owned())
                    }
                    _ => {} // id, retry and unknown fields do not matter here
                }
            }
        }
        Ok(())
    }

    fn dispatch(&mut self, out: &mut Vec<Event>) {
        if self.has_data {
            out.push(std::mem::take(&mut self.pending));
        } else {
            self.pending = Event::default();
        }
        self.has_data = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(framing: Framing, chunks: &[&[u8]]) -> Vec<Event> {
        let mut d = Decoder::new(framing, 1 << 20);
        let mut out = Vec::new();
        for c in chunks {
            d.push(c, &mut out).unwrap();
        }
        d.finish(&mut out).unwrap();
        out
    }

    const OPENAI: &[u8] = b"data: {\"a\":1}\n\n: keep-alive\n\ndata: {\"b\":2}\n\ndata: [DONE]\n\n";
    const ANTHROPIC: &[u8] = b"event: message_start\r\ndata: {\"type\":\"message_start\"}\r\n\r\nevent: ping\r\ndata: {}\r\n\r\nevent: content_block_delta\r\ndata: {\"t\":\"x\"}\r\n\r\n";
    const MULTILINE: &[u8] = b"data: line one\ndata: line two\nid: 7\n\ndata:nospace\n\n";

    #[test]
    fn decodes_sse_with_comments_event_names_and_multiline_data() {
        let ev = decode_all(Framing::Sse, &[OPENAI]);
        assert_eq!(
            ev.iter().map(|e| e.data.as_slice()).collect::<Vec<_>>(),
            [&b"{\"a\":1}"[..], b"{\"b\":2}", b"[DONE]"]
        );
        let ev = decode_all(Framing::Sse, &[ANTHROPIC]);
        assert_eq!(ev.len(), 3);
        assert_eq!(ev[0].event.as_deref(), Some("message_start"));
        assert_eq!(ev[2].data, b"{\"t\":\"x\"}");
        let ev = decode_all(Framing::Sse, &[MULTILINE]);
        assert_eq!(ev[0].data, b"line one\nline two");
        assert_eq!(ev[1].data, b"nospace");
    }

    #[test]
    fn every_byte_split_decodes_to_the_same_events() {
        for (framing, stream) in [
            (Framing::Sse, OPENAI),
            (Framing::Sse, ANTHROPIC),
            (Framing::Sse, MULTILINE),
            (Framing::Ndjson, &b"{\"a\":1}\r\n\n{\"b\":2}\n{\"c\":3}"[..]),
        ] {
            let whole = decode_all(framing, &[stream]);
            assert!(!whole.is_empty());
            for i in 0..=stream.len() {
                for j in i..=stream.len() {
                    let split = decode_all(framing, &[&stream[..i], &stream[i..j], &stream[j..]]);
                    assert_eq!(split, whole, "split at {i},{j}");
                }
            }
            let bytewise: Vec<&[u8]> = stream.chunks(1).collect();
            assert_eq!(decode_all(framing, &bytewise), whole);
        }
    }

    #[test]
    fn unterminated_final_event_is_emitted_at_eof() {
        let ev = decode_all(Framing::Sse, &[b"data: tail"]);
        assert_eq!(
            ev,
            [Event {
                event: None,
                data: b"tail".to_vec()
            }]
        );
    }

    #[test]
    fn oversized_events_are_refused() {
        let mut d = Decoder::new(Framing::Sse, 16);
        let mut out = Vec::new();
        assert!(d.push(b"data: 0123456789abcdefghij", &mut out).is_err());
        let mut d = Decoder::new(Framing::Sse, 16);
        assert!(
            d.push(b"data: 0123456789\ndata: 0123456789\n", &mut out)
                .is_err()
        );
    }
}
