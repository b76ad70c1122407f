//! The response body: either whole bytes, or a channel that a producer task fills event
//! by event. The streaming half also keeps the stream counters, because only the body
//! knows whether hyper drained it to the end or dropped it when the client went away.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use tokio::sync::mpsc;

use crate::StreamCounts;

/// One stream item: bytes to write, or an error that makes hyper abort the connection.
pub(crate) type Chunk = Result<Bytes, std::io::Error>;

/// Events queued ahead of the socket. Small, so that a producer notices a gone client
/// within a few events instead of after filling a large buffer.
const CHANNEL_DEPTH: usize = 4;

/// Counters behind [`crate::MockUpstream::stream_counts`].
#[derive(Debug, Default)]
pub(crate) struct StreamStats {
    started: AtomicU64,
    completed: AtomicU64,
    client_aborted: AtomicU64,
    /// Wakes `MockUpstream::wait_until` on any change (a counter or a recorded request).
    pub(crate) changed: tokio::sync::Notify,
}

impl StreamStats {
    pub(crate) fn snapshot(&self) -> StreamCounts {
        StreamCounts {
            started: self.started.load(Ordering::Acquire),
            completed: self.completed.load(Ordering::Acquire),
            client_aborted: self.client_aborted.load(Ordering::Acquire),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Progress {
    Running,
    /// The producer finished and hyper read everything.
    Completed,
    /// The producer broke the stream on purpose (`mock-stream-cut-N`).
    Cut,
}

pub(crate) struct Streaming {
    rx: mpsc::Receiver<Chunk>,
    stats: Arc<StreamStats>,
    progress: Progress,
    /// A cut held back for one poll; see `poll_frame`.
    cut: Option<std::io::Error>,
}

impl Drop for Streaming {
    fn drop(&mut self) {
        // hyper drops the body early only when the connection or stream went away.
        if self.progress == Progress::Running {
            self.stats.client_aborted.fetch_add(1, Ordering::AcqRel);
            self.stats.changed.notify_waiters();
        }
    }
}

pub(crate) enum MockBody {
    Full(Option<Bytes>),
    Stream(Streaming),
}

impl MockBody {
    pub(crate) fn full(bytes: impl Into<Bytes>) -> MockBody {
        MockBody::Full(Some(bytes.into()))
    }

    /// A streaming body and the sender its producer writes to; counts a started stream.
    pub(crate) fn channel(stats: Arc<StreamStats>) -> (MockBody, mpsc::Sender<Chunk>) {
        let (tx, rx) = mpsc::channel(CHANNEL_DEPTH);
        stats.started.fetch_add(1, Ordering::AcqRel);
        let body = MockBody::Stream(Streaming {
            rx,
            stats,
            progress: Progress::Running,
            cut: None,
        });
        (body, tx)
    }
}

impl Body for MockBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        match self.get_mut() {
            MockBody::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            MockBody::Stream(s) if s.cut.is_some() => Poll::Ready(s.cut.take().map(Err)),
            MockBody::Stream(s) => match s.rx.poll_recv(cx) {
                Poll::Pending => Poll::Pending,
                Poll::Ready(Some(Ok(b))) => Poll::Ready(Some(Ok(Frame::data(b)))),
                // hyper drops whatever it has buffered when a body errors, and it only
                // flushes when the body is pending. Returning Pending once (and waking at
                // once) lets the events before the cut reach the client first.
                Poll::Ready(Some(Err(e))) => {
                    s.progress = Progress::Cut;
                    s.cut = Some(e);
                    cx.waker().wake_by_ref();
                    Poll::Pending
                }
                Poll::Ready(None) => {
                    if s.progress == Progress::Running {
                        s.progress = Progress::Completed;
                        s.stats.completed.fetch_add(1, Ordering::AcqRel);
                        s.stats.changed.notify_waiters();
                    }
                    Poll::Ready(None)
                }
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            MockBody::Full(bytes) => bytes.is_none(),
            // Unknown until the producer drops its sender; polling to `None` is what
            // marks the stream completed.
            MockBody::Stream(_) => false,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            MockBody::Full(Some(b)) => SizeHint::with_exact(b.len() as u64),
            MockBody::Full(None) => SizeHint::with_exact(0),
            MockBody::Stream(_) => SizeHint::default(),
        }
    }
}
