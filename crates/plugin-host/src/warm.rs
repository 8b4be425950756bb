//! Warm instances: fresh instances instantiated and `init`-ed ahead of the calls that will use
//! them, so a call pays only for the kind's function.
//!
//! Isolation is unchanged: a prepared instance is never shown a caller's data before its one
//! call, serves exactly that call, and is then dropped. What moves is *when* the work happens:
//!
//! | step | without prewarm | with prewarm |
//! |---|---|---|
//! | store, instantiate, `init(config)` | inside the call | on the plugin's worker thread, ahead of time |
//! | the kind's function (`resolve`, `evaluate`, `validate`) | inside the call | inside the call |
//! | drop the used store (decommit its memory) | inside the call | on the worker thread |
//!
//! Each plugin with `prewarm.instances > 0` gets one worker thread. It is woken when a call
//! leaves the queue below half full, and looks again 100 ms after each round; it drops the used
//! stores and refills the queue. It holds only a `Weak` reference, so it exits when the plugin is
//! unloaded (a reload or shutdown). A queued instance holds a pool slot (a permit of the
//! engine's semaphore); the worker only prepares one when a slot is free at once, so prewarming
//! never makes a caller wait. Instances older than `prewarm.maxAgeMs` are discarded instead of
//! used: that bounds how stale anything read in `init` (a rotated secrets file) can be. When the
//! queue is empty the call prepares its own instance, exactly as without prewarm.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::time::{Duration, Instant};

use super::instance::Prepared;
use super::load::LoadedPlugin;
use portcullis_config::PluginPrewarm;

/// Default `prewarm.instances`.
pub const DEFAULT_INSTANCES: u32 = 4;
/// Largest `prewarm.instances`.
pub const MAX_INSTANCES: u32 = 16;
/// Default `prewarm.maxAgeMs`.
pub const DEFAULT_MAX_AGE_MS: u64 = 5_000;
/// Largest `prewarm.maxAgeMs`.
pub const MAX_AGE_MS: u64 = 600_000;
/// After a failed prepare (say `init` cannot read its file), the worker waits this long, and for
/// a call, before trying again, so a broken plugin does not cost two `init`s per call nor any
/// work while idle.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(1);
/// Used instances waiting for the worker; past this the caller drops its own, so a worker that
/// falls behind under load cannot pile up stores (memory and pool slots).
const MAX_RETIRED: usize = 8;
/// How soon after a round the worker looks again for used instances to drop.
const SWEEP: Duration = Duration::from_millis(100);

#[derive(Default)]
struct Queues {
    /// Prepared instances, oldest first.
    ready: VecDeque<Prepared>,
    /// Used or stale instances for the worker to drop.
    retired: Vec<Prepared>,
}

/// One plugin's queue of prepared instances.
pub(crate) struct Warm {
    depth: usize,
    max_age: Duration,
    queues: Mutex<Queues>,
    /// Wakes the worker; dropped with the plugin, which ends the worker.
    worker: OnceLock<Sender<()>>,
    /// Whether the worker is in a round (dropping and preparing).
    busy: AtomicBool,
}

impl std::fmt::Debug for Warm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Warm")
            .field("depth", &self.depth)
            .field("max_age", &self.max_age)
            .field("ready", &self.ready())
            .finish()
    }
}

impl Warm {
    /// From `plugins.<name>.prewarm`, with defaults and caps.
    pub(crate) fn from_config(config: Option<&PluginPrewarm>) -> Self {
        let instances = config
            .and_then(|c| c.instances)
            .unwrap_or(DEFAULT_INSTANCES)
            .min(MAX_INSTANCES);
        let max_age_ms = config
            .and_then(|c| c.max_age_ms)
            .unwrap_or(DEFAULT_MAX_AGE_MS)
            .clamp(1, MAX_AGE_MS);
        Self {
            depth: instances as usize,
            max_age: Duration::from_millis(max_age_ms),
            queues: Mutex::new(Queues::default()),
            worker: OnceLock::new(),
            busy: AtomicBool::new(false),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Queues> {
        self.queues.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Start the worker of `plugin` (once; a no-op with `instances: 0`) and fill its queue.
    pub(crate) fn start(plugin: &Arc<LoadedPlugin>) {
        let warm = &plugin.warm;
        if warm.depth == 0 {
            return;
        }
        let (wake, inbox) = mpsc::channel();
        if warm.worker.set(wake.clone()).is_err() {
            return;
        }
        let weak = Arc::downgrade(plugin);
        let spawned = std::thread::Builder::new()
            .name(format!("warm-{}", plugin.name))
            .spawn(move || work(weak, inbox));
        match spawned {
            Ok(_) => {
                let _ = wake.send(());
            }
            // Calls then prepare their own instances.
            Err(e) => {
                tracing::warn!(plugin = %plugin.name, "cannot start the plugin's prewarm thread: {e}")
            }
        }
    }

    /// The newest prepared instance, if any is young enough; stale ones are retired.
    ///
    /// The worker is woken only when this leaves the queue below half full: a wake-up is a
    /// futex call plus an inter-processor interrupt (about 4-5 µs here), so it is paid by one
    /// call in `depth / 2` rather than by every call, and the worker then drops the used
    /// instances and refills in one go.
    pub(crate) fn take(&self) -> Option<Prepared> {
        let worker = self.worker.get()?;
        let mut queues = self.lock();
        // Oldest first: retire what is too old to use.
        while queues
            .ready
            .front()
            .is_some_and(|p| p.made.elapsed() > self.max_age)
        {
            let stale = queues.ready.pop_front().expect("checked");
            queues.retired.push(stale);
        }
        // Newest first: its memory is the likeliest to still be cached (no difference could be
        // told apart from this VM's noise), and the older ones age out at the front.
        let found = queues.ready.pop_back();
        let low = queues.ready.len() < self.depth.div_ceil(2);
        drop(queues);
        if low {
            let _ = worker.send(());
        }
        found
    }

    /// Leave a used instance for the worker to drop (on its next wake-up or sweep), or drop it
    /// here when there is no worker or too many are waiting.
    pub(crate) fn retire(&self, prepared: Prepared) {
        if self.worker.get().is_none() {
            return drop(prepared);
        }
        let mut queues = self.lock();
        if queues.retired.len() >= MAX_RETIRED {
            drop(queues);
            return drop(prepared);
        }
        queues.retired.push(prepared);
    }

    fn ready(&self) -> usize {
        self.lock().ready.len()
    }

    /// Whether used instances wait to be dropped or the queue is not full.
    fn has_work(&self) -> bool {
        let queues = self.lock();
        !queues.retired.is_empty() || queues.ready.len() < self.depth
    }

    /// Drop retired instances, then prepare instances until the queue is full, a pool slot is
    /// not free at once, or a prepare fails. Returns whether it failed.
    fn refill(&self, plugin: &LoadedPlugin) -> bool {
        self.busy.store(true, Ordering::Release);
        let failed = self.refill_round(plugin);
        self.busy.store(false, Ordering::Release);
        failed
    }

    fn refill_round(&self, plugin: &LoadedPlugin) -> bool {
        let retired = std::mem::take(&mut self.lock().retired);
        drop(retired);
        while self.ready() < self.depth {
            let Ok(permit) = plugin.engine.permits.clone().try_acquire_owned() else {
                return false;
            };
            match plugin.prepare("prewarm", plugin.limits.timeout) {
                Ok(mut prepared) => {
                    prepared.permit = Some(permit);
                    self.lock().ready.push_back(prepared);
                }
                Err(e) => {
                    tracing::debug!(plugin = %plugin.name, "prewarming an instance failed: {e}");
                    return true;
                }
            }
        }
        false
    }
}

/// The worker loop: exits when the plugin is gone (its sender dropped, or the `Weak` dead).
///
/// Calls do not wake the worker to drop what they used (only a queue running low does), so after
/// each round the worker looks again after [`SWEEP`]; used instances (and whatever a call left in
/// their memory) therefore live at most about that long. When a look finds nothing to do, the
/// worker sleeps until woken: an idle plugin costs no CPU.
fn work(plugin: Weak<LoadedPlugin>, inbox: Receiver<()>) {
    let mut failed_at: Option<Instant> = None;
    let mut sweeping = false;
    loop {
        let woken = if sweeping {
            match inbox.recv_timeout(SWEEP) {
                Ok(()) => true,
                Err(mpsc::RecvTimeoutError::Timeout) => false,
                Err(mpsc::RecvTimeoutError::Disconnected) => return,
            }
        } else {
            match inbox.recv() {
                Ok(()) => true,
                Err(_) => return,
            }
        };
        // Coalesce wake-ups that arrived while the last round ran.
        while inbox.try_recv().is_ok() {}
        let Some(plugin) = plugin.upgrade() else {
            return;
        };
        let warm = &plugin.warm;
        if !woken {
            // A timed look drops what calls left. It refills only if the last round worked:
            // a plugin whose `init` fails is retried on the next call, not on a timer.
            if failed_at.is_some() {
                drop(std::mem::take(&mut warm.lock().retired));
                sweeping = false;
                continue;
            }
            if !warm.has_work() {
                sweeping = false;
                continue;
            }
        }
        sweeping = true;
        if failed_at.is_some_and(|t| t.elapsed() < RETRY_AFTER_FAILURE) {
            drop(std::mem::take(&mut warm.lock().retired));
            continue;
        }
        failed_at = warm.refill(&plugin).then(Instant::now);
    }
}

impl LoadedPlugin {
    /// Prepared instances waiting for a call now (0 with `prewarm.instances: 0`).
    pub fn prewarmed(&self) -> usize {
        self.warm.ready()
    }

    /// Used instances waiting for the worker to drop them (for tests).
    #[doc(hidden)]
    pub fn prewarm_retired(&self) -> usize {
        self.warm.lock().retired.len()
    }

    /// Whether the prewarm worker is idle with at least half the queue ready, i.e. the next
    /// call takes a prepared instance and nothing runs beside it (for benchmarks).
    #[doc(hidden)]
    pub fn prewarm_settled(&self) -> bool {
        !self.warm.busy.load(Ordering::Acquire)
            && self.warm.ready() >= self.warm.depth.div_ceil(2).max(1)
    }
}
