//! Handing memory the runtime has freed back to the operating system.
//!
//! | rule | default | failure mode |
//! |---|---|---|
//! | after a snapshot is built and swapped in (start, every rebuild), one forced collect runs off the async workers | on | none: collecting is advisory and frees nothing still in use |
//! | a tokio worker about to park (nothing left to run) collects, at most once per [`PARK_COLLECT_INTERVAL`] per worker | on in `portcullis serve` (the binary installs [`on_worker_park`]) | as above |
//!
//! Why: the binary's allocator is mimalloc (`main.rs`). It keeps freed pages committed until
//! its purge delay (1 s) has passed *and* the thread owning them allocates again, so a thread
//! that goes quiet keeps its garbage resident. A catalog build parses the whole OpenAPI tree
//! and frees most of it: an idle runtime kept about 80 MiB of it after building GitHub's
//! catalog with three plugins, and a burst of requests left another 30-40 MiB on the workers
//! that served it (`bench/memory.sh`, docs/performance.md). Shortening the purge delay for the
//! whole process returns it too, but cost 10-20% more CPU per tool call (pages decommitted and
//! recommitted under load); a collect when a worker runs out of work, rate-limited like the
//! purge delay itself, costs nothing measurable on the call path.
//!
//! A forced `mi_collect` frees the calling thread's empty pages and purges every arena's free
//! ranges program-wide. Under another global allocator (the test binaries use the system one)
//! it only tidies mimalloc's own, unused heap.

use std::cell::Cell;
use std::time::{Duration, Instant};

/// The least time between two collects of one worker (mimalloc's own purge delay).
pub const PARK_COLLECT_INTERVAL: Duration = Duration::from_secs(1);

/// Return the memory freed by a build to the OS (see the module header).
pub(crate) async fn release_after_build() {
    let _ = tokio::task::spawn_blocking(collect).await;
}

/// The tokio `on_thread_park` hook: collect this worker's freed pages when it has not done so
/// for [`PARK_COLLECT_INTERVAL`]. Cheap when it does nothing (one clock read).
pub fn on_worker_park() {
    thread_local! {
        static LAST_COLLECT: Cell<Option<Instant>> = const { Cell::new(None) };
    }
    let now = Instant::now();
    let due = LAST_COLLECT
        .get()
        .is_none_or(|last| now.duration_since(last) >= PARK_COLLECT_INTERVAL);
    if due {
        LAST_COLLECT.set(Some(now));
        collect();
    }
}

#[allow(unsafe_code)]
fn collect() {
    // SAFETY: `mi_collect` takes no pointers and may be called from any thread at any time;
    // it only releases pages that hold no live allocation.
    unsafe { libmimalloc_sys::mi_collect(true) }
}
