//! `wasi:io/streams` and `wasi:io/poll` for plugins, replacing wasmtime-wasi's sync
//! versions.
//!
//! Why: wasmtime-wasi's sync bindings run every *blocking* stream call (the one
//! `println!`, Python's `print` and `console.log` use) and every poll through
//! `Handle::block_on` on the current tokio runtime. Plugin calls run on tokio workers,
//! where `block_on` panics ("Cannot start a runtime from within a runtime") and the
//! client's connection died with the worker's task.
//!
//! A plugin has no I/O that could make it wait: its only streams are the captured
//! stdout/stderr, which are always ready. So on a runtime thread each blocking call is
//! polled exactly once; if it would really wait (a guest sleeping on a clock pollable,
//! say), the guest traps instead of parking a worker. Off a runtime (the CLI, plain
//! threads in tests) wasmtime-wasi's own implementation runs unchanged.

use std::future::Future;
use std::task::{Context, Poll, Waker};

use wasmtime::component::{HasData, Linker, Resource, ResourceTable};
use wasmtime_wasi::WasiView;
use wasmtime_wasi::p2::bindings::sync::io::{poll, streams};
use wasmtime_wasi::p2::{DynPollable, StreamError, StreamResult};
use wasmtime_wasi_io::bindings::wasi::io::poll as async_poll;
use wasmtime_wasi_io::bindings::wasi::io::streams::{
    HostInputStream as AsyncInput, HostOutputStream as AsyncOutput,
};

use super::store::StoreData;

/// The message a guest's trap carries when it tried to wait for I/O.
const WOULD_BLOCK: &str = "the plugin tried to block on I/O; plugins may not wait";

/// The view of a store these bindings need: its resource table.
pub(crate) struct GuestIo<'a>(&'a mut ResourceTable);

struct HasGuestIo;

impl HasData for HasGuestIo {
    type Data<'a> = GuestIo<'a>;
}

/// Links these implementations over the ones `add_to_linker_sync` defined.
pub(crate) fn shadow_wasi_io(linker: &mut Linker<StoreData>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    poll::add_to_linker::<StoreData, HasGuestIo>(linker, |s| GuestIo(s.ctx().table))?;
    streams::add_to_linker::<StoreData, HasGuestIo>(linker, |s| GuestIo(s.ctx().table))?;
    linker.allow_shadowing(false);
    Ok(())
}

fn on_runtime() -> bool {
    tokio::runtime::Handle::try_current().is_ok()
}

/// Polls `f` once: `Some` if it finished without waiting.
fn now_or_never<F: Future>(f: F) -> Option<F::Output> {
    let mut f = std::pin::pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => Some(v),
        Poll::Pending => None,
    }
}

fn would_block() -> wasmtime::Error {
    wasmtime::format_err!(WOULD_BLOCK)
}

/// Runs a blocking stream operation without blocking (see the module doc).
fn stream_op<T>(f: impl Future<Output = StreamResult<T>>) -> StreamResult<T> {
    now_or_never(f).unwrap_or_else(|| Err(StreamError::Trap(would_block())))
}

/// Runs a blocking poll operation without blocking (see the module doc).
fn poll_op<T>(f: impl Future<Output = wasmtime::Result<T>>) -> wasmtime::Result<T> {
    now_or_never(f).unwrap_or_else(|| Err(would_block()))
}

impl streams::Host for GuestIo<'_> {
    fn convert_stream_error(&mut self, err: StreamError) -> wasmtime::Result<streams::StreamError> {
        streams::Host::convert_stream_error(self.0, err)
    }
}

type Out = Resource<streams::OutputStream>;
type In = Resource<streams::InputStream>;

impl streams::HostOutputStream for GuestIo<'_> {
    fn drop(&mut self, s: Out) -> wasmtime::Result<()> {
        if !on_runtime() {
            return streams::HostOutputStream::drop(self.0, s);
        }
        // Dropping waits for the stream's background flush; captured output has none.
        poll_op(AsyncOutput::drop(self.0, s))
    }

    fn check_write(&mut self, s: Out) -> StreamResult<u64> {
        streams::HostOutputStream::check_write(self.0, s)
    }

    fn write(&mut self, s: Out, bytes: Vec<u8>) -> StreamResult<()> {
        streams::HostOutputStream::write(self.0, s, bytes)
    }

    fn blocking_write_and_flush(&mut self, s: Out, bytes: Vec<u8>) -> StreamResult<()> {
        if !on_runtime() {
            return streams::HostOutputStream::blocking_write_and_flush(self.0, s, bytes);
        }
        stream_op(AsyncOutput::blocking_write_and_flush(self.0, s, bytes))
    }

    fn blocking_write_zeroes_and_flush(&mut self, s: Out, len: u64) -> StreamResult<()> {
        if !on_runtime() {
            return streams::HostOutputStream::blocking_write_zeroes_and_flush(self.0, s, len);
        }
        stream_op(AsyncOutput::blocking_write_zeroes_and_flush(self.0, s, len))
    }

    fn subscribe(&mut self, s: Out) -> wasmtime::Result<Resource<DynPollable>> {
        streams::HostOutputStream::subscribe(self.0, s)
    }

    fn write_zeroes(&mut self, s: Out, len: u64) -> StreamResult<()> {
        streams::HostOutputStream::write_zeroes(self.0, s, len)
    }

    fn flush(&mut self, s: Out) -> StreamResult<()> {
        streams::HostOutputStream::flush(self.0, s)
    }

    fn blocking_flush(&mut self, s: Out) -> StreamResult<()> {
        if !on_runtime() {
            return streams::HostOutputStream::blocking_flush(self.0, s);
        }
        let borrowed = Resource::new_borrow(s.rep());
        stream_op(AsyncOutput::blocking_flush(self.0, borrowed))
    }

    fn splice(&mut self, dst: Out, src: In, len: u64) -> StreamResult<u64> {
        streams::HostOutputStream::splice(self.0, dst, src, len)
    }

    fn blocking_splice(&mut self, dst: Out, src: In, len: u64) -> StreamResult<u64> {
        if !on_runtime() {
            return streams::HostOutputStream::blocking_splice(self.0, dst, src, len);
        }
        stream_op(AsyncOutput::blocking_splice(self.0, dst, src, len))
    }
}

impl streams::HostInputStream for GuestIo<'_> {
    fn drop(&mut self, s: In) -> wasmtime::Result<()> {
        if !on_runtime() {
            return streams::HostInputStream::drop(self.0, s);
        }
        poll_op(AsyncInput::drop(self.0, s))
    }

    fn read(&mut self, s: In, len: u64) -> StreamResult<Vec<u8>> {
        streams::HostInputStream::read(self.0, s, len)
    }

    fn blocking_read(&mut self, s: In, len: u64) -> StreamResult<Vec<u8>> {
        if !on_runtime() {
            return streams::HostInputStream::blocking_read(self.0, s, len);
        }
        stream_op(AsyncInput::blocking_read(self.0, s, len))
    }

    fn skip(&mut self, s: In, len: u64) -> StreamResult<u64> {
        streams::HostInputStream::skip(self.0, s, len)
    }

    fn blocking_skip(&mut self, s: In, len: u64) -> StreamResult<u64> {
        if !on_runtime() {
            return streams::HostInputStream::blocking_skip(self.0, s, len);
        }
        stream_op(AsyncInput::blocking_skip(self.0, s, len))
    }

    fn subscribe(&mut self, s: In) -> wasmtime::Result<Resource<DynPollable>> {
        streams::HostInputStream::subscribe(self.0, s)
    }
}

impl poll::Host for GuestIo<'_> {
    fn poll(&mut self, list: Vec<Resource<DynPollable>>) -> wasmtime::Result<Vec<u32>> {
        if !on_runtime() {
            return poll::Host::poll(self.0, list);
        }
        poll_op(async_poll::Host::poll(self.0, list))
    }
}

impl poll::HostPollable for GuestIo<'_> {
    fn ready(&mut self, p: Resource<DynPollable>) -> wasmtime::Result<bool> {
        if !on_runtime() {
            return poll::HostPollable::ready(self.0, p);
        }
        poll_op(async_poll::HostPollable::ready(self.0, p))
    }

    fn block(&mut self, p: Resource<DynPollable>) -> wasmtime::Result<()> {
        if !on_runtime() {
            return poll::HostPollable::block(self.0, p);
        }
        poll_op(async_poll::HostPollable::block(self.0, p))
    }

    fn drop(&mut self, p: Resource<DynPollable>) -> wasmtime::Result<()> {
        poll::HostPollable::drop(self.0, p)
    }
}
