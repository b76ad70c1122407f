//! Captured guest stdout/stderr: bounded in memory, logged under the plugin's name when
//! the instance ends. Writes past the bound are dropped silently rather than failing,
//! because a failing write makes Rust's `println!` panic and would turn chatty logging
//! into a plugin fault.

use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use bytes::Bytes;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

#[derive(Default)]
struct Buffer {
    bytes: Vec<u8>,
    dropped: usize,
}

/// One captured stream. Clones share the buffer (one for the WASI context, one kept
/// by the store to drain it).
#[derive(Clone)]
pub(crate) struct Captured {
    inner: Arc<Mutex<Buffer>>,
    cap: usize,
}

impl Captured {
    pub(crate) fn new(cap: usize) -> Self {
        Captured {
            inner: Arc::default(),
            cap,
        }
    }

    fn push(&self, data: &[u8]) {
        // Only this instance's thread writes, so the lock is never contended.
        let mut buf = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let room = self.cap.saturating_sub(buf.bytes.len());
        let take = room.min(data.len());
        buf.bytes.extend_from_slice(&data[..take]);
        buf.dropped += data.len() - take;
    }

    /// Takes what was captured and how many bytes were dropped.
    pub(crate) fn take(&self) -> (Vec<u8>, usize) {
        let mut buf = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        (
            std::mem::take(&mut buf.bytes),
            std::mem::take(&mut buf.dropped),
        )
    }
}

impl IsTerminal for Captured {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for Captured {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl OutputStream for Captured {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.push(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 << 10)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for Captured {
    async fn ready(&mut self) {}
}

impl tokio::io::AsyncWrite for Captured {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.push(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_past_the_cap_is_dropped_and_counted_not_failed() {
        let mut c = Captured::new(8);
        assert!(OutputStream::write(&mut c, Bytes::from_static(b"hello ")).is_ok());
        assert!(OutputStream::write(&mut c, Bytes::from_static(b"world")).is_ok());
        assert!(
            OutputStream::check_write(&mut c).is_ok_and(|n| n > 0),
            "writes keep succeeding"
        );
        assert_eq!(c.take(), (b"hello wo".to_vec(), 3));
        assert_eq!(c.take(), (Vec::new(), 0), "taking empties the buffer");
    }
}
