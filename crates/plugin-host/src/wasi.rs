//! WASI 0.2 imports that could hold the host past a call's budget or make it allocate far beyond
//! the plugin's `limits.memoryMiB`, replaced (linker shadowing) by bounded versions.
//!
//! Epoch deadlines interrupt guest code only: a guest parked in a host import (a
//! `std::thread::sleep`, a `poll` on a far `subscribe-duration`) is out of their reach. So every
//! import that can wait does so against the call's deadline (`CallState` holds it) and then
//! traps with a [`HostLimit`] that the call reports by name.
//!
//! | import | rule | on hit |
//! |---|---|---|
//! | `wasi:io/poll` `poll`, `pollable.block` | waits at most until the call's deadline | trap: `waited in wasi:io/poll past its budget of N ms` |
//! | `wasi:io/poll` `poll` list | at most [`Budget::resources`] entries | trap: `polled N pollables at once, more than its limit of M` |
//! | `wasi:io/streams` `blocking-*` (read, skip, write-and-flush, write-zeroes-and-flush, flush, splice) | wait for readiness at most until the deadline | trap: `waited in wasi:io/streams past its budget of N ms` |
//! | `wasi:random` `get-random-bytes`, `get-insecure-random-bytes` | at most [`Budget::random_max`] bytes per call (`memoryMiB`/4, at most 1 MiB) | trap: `asked wasi:random for N bytes, more than its limit of M` |
//! | live WASI resources (pollables, streams, ...) | at most [`Budget::resources`] (`memoryMiB` × 256, 1024..=16384), host table and component handles | trap: `held more than N WASI resources at once` |
//!
//! While a call waits in one of these imports it gives back its slot of the process-wide CPU gate
//! (`engine.rs`), so sleeping plugins never keep other plugins' guest code from running; it takes
//! the slot again (within the deadline) before guest code resumes.
//!
//! Left as wasmtime-wasi implements them: filesystem calls on granted (read-only) directories,
//! which block on the disk; sockets and name lookups are denied by the context (`grants.rs`).

use std::future::Future;
use std::sync::Arc;
use std::task::Poll;
use std::time::Instant;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wasmtime::component::{HasData, Linker, Resource, ResourceTable};
use wasmtime_wasi::p2::bindings::io::{poll as async_poll, streams as async_streams};
use wasmtime_wasi::p2::bindings::random::{insecure, random};
use wasmtime_wasi::p2::bindings::sync::io::{poll, streams};
use wasmtime_wasi::p2::{DynPollable, StreamError, StreamResult};
use wasmtime_wasi::random::WasiRandomCtx;
use wasmtime_wasi::runtime::in_tokio;

use super::state::CallState;

/// Most random bytes one `get-random-bytes` call may ask for, whatever the memory limit.
pub const RANDOM_MAX: u64 = 1 << 20;
/// Live WASI resources per MiB of `limits.memoryMiB`.
pub const RESOURCES_PER_MIB: usize = 256;
/// Fewest live WASI resources any plugin may hold.
pub const RESOURCES_MIN: usize = 1024;
/// Most live WASI resources any plugin may hold.
pub const RESOURCES_MAX: usize = 16_384;

/// A host-side limit a guest ran into; the call traps with it and reports it by name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostLimit {
    /// The guest waited in a WASI import until its budget was spent.
    #[error("waited in {what} past its budget of {budget_ms} ms")]
    Waited {
        /// The interface (`wasi:io/poll`).
        what: &'static str,
        /// The call's budget.
        budget_ms: u64,
    },
    /// A random-bytes request larger than the plugin's limit.
    #[error("asked wasi:random for {asked} bytes, more than its limit of {max}")]
    Random {
        /// Bytes asked for.
        asked: u64,
        /// The limit.
        max: u64,
    },
    /// A `poll` list longer than the plugin's resource limit.
    #[error("polled {asked} pollables at once, more than its limit of {max}")]
    PollList {
        /// List length.
        asked: usize,
        /// The limit.
        max: usize,
    },
}

/// One call's budget for host waits and allocations.
#[derive(Debug)]
pub struct Budget {
    /// Host waits end here.
    pub deadline: Instant,
    /// The budget's length, for messages.
    pub budget_ms: u64,
    /// Largest `get-random-bytes` request.
    pub random_max: u64,
    /// Live WASI resources allowed.
    pub resources: usize,
    /// The CPU gate's slot held while guest code may run (async callers only).
    pub(crate) cpu: Option<OwnedSemaphorePermit>,
    /// The gate `cpu` came from.
    pub(crate) cpu_gate: Option<Arc<Semaphore>>,
}

impl Budget {
    /// The budget of a plugin with `memory_bytes` of linear memory (deadline set by `arm`).
    pub fn new(memory_bytes: usize) -> Self {
        let mib = memory_bytes >> 20;
        Self {
            deadline: Instant::now(),
            budget_ms: 0,
            random_max: ((memory_bytes / 4) as u64).min(RANDOM_MAX),
            resources: (mib * RESOURCES_PER_MIB).clamp(RESOURCES_MIN, RESOURCES_MAX),
            cpu: None,
            cpu_gate: None,
        }
    }

    /// Wait for `fut` until the deadline, without holding a CPU slot meanwhile.
    fn wait<F: Future>(&mut self, what: &'static str, fut: F) -> Result<F::Output, HostLimit> {
        self.idle(fut).ok_or(HostLimit::Waited {
            what,
            budget_ms: self.budget_ms,
        })
    }

    /// Run `fut` to its end or the deadline (`None`). A `fut` that is not ready at once runs
    /// without the call's CPU slot, which is taken again (within the deadline) afterwards.
    pub(crate) fn idle<F: Future>(&mut self, fut: F) -> Option<F::Output> {
        let deadline = tokio::time::Instant::from_std(self.deadline);
        let held = self.cpu.take();
        let gate = self.cpu_gate.clone();
        let (out, cpu) = in_tokio(async move {
            let mut fut = std::pin::pin!(fut);
            let first = std::future::poll_fn(|cx| Poll::Ready(fut.as_mut().poll(cx))).await;
            if let Poll::Ready(out) = first {
                return Some((out, held));
            }
            let had_slot = held.is_some();
            drop(held);
            let out = tokio::time::timeout_at(deadline, fut).await.ok()?;
            let cpu = match gate.filter(|_| had_slot) {
                Some(gate) => Some(
                    tokio::time::timeout_at(deadline, gate.acquire_owned())
                        .await
                        .ok()?
                        .ok()?,
                ),
                None => None,
            };
            Some((out, cpu))
        })?;
        self.cpu = cpu;
        Some(out)
    }

    fn random(&self, asked: u64) -> Result<(), HostLimit> {
        if asked > self.random_max {
            return Err(HostLimit::Random {
                asked,
                max: self.random_max,
            });
        }
        Ok(())
    }
}

/// The store data the bounded imports see.
pub struct Bounded<'a> {
    table: &'a mut ResourceTable,
    random: &'a mut WasiRandomCtx,
    budget: &'a mut Budget,
}

impl<'a> Bounded<'a> {
    /// A view of one call's table, random context and budget.
    pub fn new(
        table: &'a mut ResourceTable,
        random: &'a mut WasiRandomCtx,
        budget: &'a mut Budget,
    ) -> Self {
        Self {
            table,
            random,
            budget,
        }
    }
}

struct HasBounded;

impl HasData for HasBounded {
    type Data<'a> = Bounded<'a>;
}

/// Replace the unbounded WASI imports in `linker` (after `add_to_linker_sync`).
pub(crate) fn shadow(linker: &mut Linker<CallState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    poll::add_to_linker::<CallState, HasBounded>(linker, CallState::bounded)?;
    streams::add_to_linker::<CallState, HasBounded>(linker, CallState::bounded)?;
    random::add_to_linker::<CallState, HasBounded>(linker, CallState::bounded)?;
    insecure::add_to_linker::<CallState, HasBounded>(linker, CallState::bounded)?;
    linker.allow_shadowing(false);
    Ok(())
}

const POLL: &str = "wasi:io/poll";
const STREAMS: &str = "wasi:io/streams";

fn stream_limit(limit: HostLimit) -> StreamError {
    StreamError::Trap(limit.into())
}

impl poll::Host for Bounded<'_> {
    fn poll(&mut self, pollables: Vec<Resource<DynPollable>>) -> wasmtime::Result<Vec<u32>> {
        if pollables.len() > self.budget.resources {
            return Err(HostLimit::PollList {
                asked: pollables.len(),
                max: self.budget.resources,
            }
            .into());
        }
        let table = &mut *self.table;
        let ready = self
            .budget
            .wait(POLL, async_poll::Host::poll(table, pollables))?;
        ready
    }
}

impl poll::HostPollable for Bounded<'_> {
    fn ready(&mut self, pollable: Resource<DynPollable>) -> wasmtime::Result<bool> {
        poll::HostPollable::ready(&mut *self.table, pollable)
    }

    fn block(&mut self, pollable: Resource<DynPollable>) -> wasmtime::Result<()> {
        let table = &mut *self.table;
        self.budget
            .wait(POLL, async_poll::HostPollable::block(table, pollable))?
    }

    fn drop(&mut self, pollable: Resource<DynPollable>) -> wasmtime::Result<()> {
        poll::HostPollable::drop(&mut *self.table, pollable)
    }
}

impl streams::Host for Bounded<'_> {
    fn convert_stream_error(&mut self, err: StreamError) -> wasmtime::Result<streams::StreamError> {
        streams::Host::convert_stream_error(&mut *self.table, err)
    }
}

type In = Resource<wasmtime_wasi::p2::DynInputStream>;
type Out = Resource<wasmtime_wasi::p2::DynOutputStream>;

impl streams::HostInputStream for Bounded<'_> {
    fn drop(&mut self, stream: In) -> wasmtime::Result<()> {
        streams::HostInputStream::drop(&mut *self.table, stream)
    }

    fn read(&mut self, stream: In, len: u64) -> StreamResult<Vec<u8>> {
        streams::HostInputStream::read(&mut *self.table, stream, len)
    }

    fn blocking_read(&mut self, stream: In, len: u64) -> StreamResult<Vec<u8>> {
        let table = &mut *self.table;
        let fut = async_streams::HostInputStream::blocking_read(table, stream, len);
        self.budget.wait(STREAMS, fut).map_err(stream_limit)?
    }

    fn skip(&mut self, stream: In, len: u64) -> StreamResult<u64> {
        streams::HostInputStream::skip(&mut *self.table, stream, len)
    }

    fn blocking_skip(&mut self, stream: In, len: u64) -> StreamResult<u64> {
        let table = &mut *self.table;
        let fut = async_streams::HostInputStream::blocking_skip(table, stream, len);
        self.budget.wait(STREAMS, fut).map_err(stream_limit)?
    }

    fn subscribe(&mut self, stream: In) -> wasmtime::Result<Resource<DynPollable>> {
        streams::HostInputStream::subscribe(&mut *self.table, stream)
    }
}

impl streams::HostOutputStream for Bounded<'_> {
    fn drop(&mut self, stream: Out) -> wasmtime::Result<()> {
        streams::HostOutputStream::drop(&mut *self.table, stream)
    }

    fn check_write(&mut self, stream: Out) -> StreamResult<u64> {
        streams::HostOutputStream::check_write(&mut *self.table, stream)
    }

    fn write(&mut self, stream: Out, bytes: Vec<u8>) -> StreamResult<()> {
        streams::HostOutputStream::write(&mut *self.table, stream, bytes)
    }

    fn blocking_write_and_flush(&mut self, stream: Out, bytes: Vec<u8>) -> StreamResult<()> {
        let table = &mut *self.table;
        let fut = async_streams::HostOutputStream::blocking_write_and_flush(table, stream, bytes);
        self.budget.wait(STREAMS, fut).map_err(stream_limit)?
    }

    fn blocking_write_zeroes_and_flush(&mut self, stream: Out, len: u64) -> StreamResult<()> {
        let table = &mut *self.table;
        let fut =
            async_streams::HostOutputStream::blocking_write_zeroes_and_flush(table, stream, len);
        self.budget.wait(STREAMS, fut).map_err(stream_limit)?
    }

    fn subscribe(&mut self, stream: Out) -> wasmtime::Result<Resource<DynPollable>> {
        streams::HostOutputStream::subscribe(&mut *self.table, stream)
    }

    fn write_zeroes(&mut self, stream: Out, len: u64) -> StreamResult<()> {
        streams::HostOutputStream::write_zeroes(&mut *self.table, stream, len)
    }

    fn flush(&mut self, stream: Out) -> StreamResult<()> {
        streams::HostOutputStream::flush(&mut *self.table, stream)
    }

    fn blocking_flush(&mut self, stream: Out) -> StreamResult<()> {
        let table = &mut *self.table;
        let fut = async_streams::HostOutputStream::blocking_flush(table, stream);
        self.budget.wait(STREAMS, fut).map_err(stream_limit)?
    }

    fn splice(&mut self, dst: Out, src: In, len: u64) -> StreamResult<u64> {
        streams::HostOutputStream::splice(&mut *self.table, dst, src, len)
    }

    fn blocking_splice(&mut self, dst: Out, src: In, len: u64) -> StreamResult<u64> {
        let table = &mut *self.table;
        let fut = async_streams::HostOutputStream::blocking_splice(table, dst, src, len);
        self.budget.wait(STREAMS, fut).map_err(stream_limit)?
    }
}

impl random::Host for Bounded<'_> {
    fn get_random_bytes(&mut self, len: u64) -> wasmtime::Result<Vec<u8>> {
        self.budget.random(len)?;
        random::Host::get_random_bytes(&mut *self.random, len)
    }

    fn get_random_u64(&mut self) -> wasmtime::Result<u64> {
        random::Host::get_random_u64(&mut *self.random)
    }
}

impl insecure::Host for Bounded<'_> {
    fn get_insecure_random_bytes(&mut self, len: u64) -> wasmtime::Result<Vec<u8>> {
        self.budget.random(len)?;
        insecure::Host::get_insecure_random_bytes(&mut *self.random, len)
    }

    fn get_insecure_random_u64(&mut self) -> wasmtime::Result<u64> {
        insecure::Host::get_insecure_random_u64(&mut *self.random)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_follow_the_memory_limit_within_bounds() {
        let small = Budget::new(4 << 20);
        assert_eq!(small.random_max, 1 << 20);
        assert_eq!(small.resources, RESOURCES_MIN);
        let tiny = Budget::new(1 << 20);
        assert_eq!(tiny.random_max, 256 << 10);
        let big = Budget::new(256 << 20);
        assert_eq!(big.random_max, RANDOM_MAX);
        assert_eq!(big.resources, RESOURCES_MAX);
        assert_eq!(Budget::new(16 << 20).resources, 4096);
        assert!(small.random(1 << 20).is_ok());
        assert_eq!(
            small.random(64 << 20).unwrap_err().to_string(),
            "asked wasi:random for 67108864 bytes, more than its limit of 1048576"
        );
    }
}
