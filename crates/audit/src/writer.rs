//! The audit writer: one thread owns the file and commits records in groups.
//!
//! Rule: a caller's record is acknowledged only after the batch holding it was written and
//! `sync_data`'d (group commit: whatever queued while the previous batch synced goes in the next
//! one, up to [`MAX_BATCH`]). A record nobody waits for (a queued call outcome) is written at
//! once but synced with the next batch someone waits for, or at the next idle tick, checkpoint
//! or rotation, whichever comes first: a batch of such records alone costs a `write`, not an
//! `fdatasync` (issue #16).
//!
//! Group commit window: when the previous synced batch had more than one waiter (callers are
//! arriving faster than the disk syncs), the writer lingers after the first record of the next
//! batch for half the previous sync's duration (at most [`MAX_LINGER`]) so more records share
//! one `fdatasync`, as PostgreSQL's `commit_delay` does. A lone caller never waits for it.
//!
//! The queue is bounded by a semaphore; a full queue makes callers wait, never drops. Every
//! [`AuditOptions::checkpoint_every`] records or [`AuditOptions::checkpoint_interval`] a signed
//! checkpoint is appended and synced to the checkpoint file (after syncing what it names).
//!
//! Failure mode (fail closed): a write or sync error fails the whole batch, logs one error and
//! marks the log failed, so [`super::AuditLog::record`] refuses at once. The writer retries every
//! [`AuditOptions::retry_interval`]: reopen, cut anything past the last durable byte, verify the
//! tail, append an `audit_gap` record naming the outage window and the refused count, and resume.
//! After a failed `fsync` the page cache is not trusted (PostgreSQL's 2018 lesson), hence the
//! reopen-and-verify instead of a second `fsync`.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use super::chain::AuditKey;
use super::index::Index;
use super::verify::{inspect_tail, Checkpoint};
use super::{now_rfc3339, AuditDecision, AuditError, AuditEvent, AuditOptions, Receipt};

/// Most records committed by one write + sync.
pub const MAX_BATCH: usize = 1024;
/// Longest group commit window (module header).
pub const MAX_LINGER: Duration = Duration::from_micros(500);
/// Bytes read from the end of the log to find where to resume.
const TAIL_WINDOW: u64 = 1 << 20;

/// State shared between the writer and [`super::AuditLog`].
#[derive(Debug, Default)]
pub struct Shared {
    /// The log cannot be written; record calls are refused.
    pub failed: AtomicBool,
    /// Records refused while failed (for the `audit_gap` record).
    pub refused: AtomicU64,
    /// Why the log failed (for errors returned to callers).
    pub failure: Mutex<Option<String>>,
    /// Offsets of durable records, for readers.
    pub index: RwLock<Index>,
}

impl Shared {
    /// The error returned to callers while the log at `path` is failed.
    pub fn unavailable(&self, path: &std::path::Path) -> AuditError {
        AuditError::Unavailable {
            path: path.to_path_buf(),
            reason: self
                .failure
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone()
                .unwrap_or_default(),
        }
    }
}

/// One queued record, or a barrier (`None`) acknowledged once everything queued before it is
/// durable. Without `ack` nobody waits: the record is written, and synced with the next batch
/// that has a waiter (see the module rule).
pub struct Submission {
    pub event: Option<AuditEvent>,
    pub ack: Option<tokio::sync::oneshot::Sender<Result<Receipt, AuditError>>>,
    /// Released when the writer takes the record (bounded queue).
    pub _permit: tokio::sync::OwnedSemaphorePermit,
}

pub struct Writer {
    options: AuditOptions,
    key: AuditKey,
    shared: Arc<Shared>,
    file: Option<File>,
    next_seq: u64,
    prev_chain: String,
    /// Length of the file's complete records: synced, except the last `unsynced` records
    /// (written, synced with the next waited-for batch).
    durable_len: u64,
    since_checkpoint: u64,
    /// Records written since the last `sync_data` (no waiter asked for one yet).
    unsynced: u64,
    /// The group commit window for the next batch (module header).
    linger: Duration,
    last_checkpoint: Instant,
    failed_at: Option<(String, Instant)>,
    last_retry: Instant,
    /// When the current file was started (for time-based rotation).
    file_started: Instant,
}

fn io_error(options: &AuditOptions, source: std::io::Error) -> AuditError {
    AuditError::Io {
        path: options.path.clone(),
        source,
    }
}

impl Writer {
    /// Open the log, repair a torn tail (appending a `recovery` record) and verify the last record.
    pub fn open(
        options: AuditOptions,
        key: AuditKey,
        shared: Arc<Shared>,
    ) -> Result<Self, AuditError> {
        if let Some(parent) = options.path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| io_error(&options, e))?;
        }
        let mut writer = Self {
            options,
            key,
            shared,
            file: None,
            next_seq: 1,
            prev_chain: String::new(),
            durable_len: 0,
            since_checkpoint: 0,
            unsynced: 0,
            linger: Duration::ZERO,
            last_checkpoint: Instant::now(),
            failed_at: None,
            last_retry: Instant::now(),
            file_started: Instant::now(),
        };
        let torn = writer.reopen()?;
        if writer.durable_len == 0 {
            // An empty file after a rotation (or a crash right after one): continue the chain
            // of the newest rotated file.
            if let Some(last) = super::verify::rotated_files(&writer.options.path)
                .map_err(|e| io_error(&writer.options, e))?
                .last()
            {
                let bytes = std::fs::read(last).map_err(|e| io_error(&writer.options, e))?;
                let tail =
                    inspect_tail(&writer.key, &bytes).map_err(|failure| AuditError::Tail {
                        path: last.clone(),
                        failure,
                    })?;
                writer.next_seq = tail.last_seq + 1;
                writer.prev_chain = tail.last_chain;
                let name = last.file_name().map(|n| n.to_string_lossy().into_owned());
                writer.commit_events(vec![writer.rotation_record(name)])?;
            }
        }
        if torn > 0 {
            tracing::warn!(path = %writer.options.path.display(), bytes = torn, "audit log had a torn last line; truncated");
            let mut event = AuditEvent::new(
                "recovery",
                "runtime.audit",
                AuditDecision::Allowed,
                "torn_tail_truncated",
            );
            event.detail = Some(serde_json::json!({ "truncatedBytes": torn }).into());
            writer.commit_events(vec![event])?;
        }
        Ok(writer)
    }

    /// (Re)open the file, cut bytes past the last durable record, verify the tail. Returns the
    /// number of torn bytes cut.
    fn reopen(&mut self) -> Result<usize, AuditError> {
        self.file = None;
        let path = &self.options.path;
        let mut options = OpenOptions::new();
        options.create(true).read(true).append(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(path).map_err(|e| io_error(&self.options, e))?;
        let mut len = file
            .metadata()
            .map_err(|e| io_error(&self.options, e))?
            .len();
        let resumed = self.failed_at.is_some();
        if resumed && len > self.durable_len {
            // Bytes of the failed batch: their callers were refused, so they never happened.
            file.set_len(self.durable_len)
                .and_then(|_| file.sync_all())
                .map_err(|e| io_error(&self.options, e))?;
            len = self.durable_len;
        }
        let start = len.saturating_sub(TAIL_WINDOW);
        let mut tail = Vec::new();
        file.seek(SeekFrom::Start(start))
            .and_then(|_| file.read_to_end(&mut tail))
            .map_err(|e| io_error(&self.options, e))?;
        // A window that starts mid-log starts mid-line: skip to the first full line.
        let skip = if start > 0 {
            tail.iter()
                .position(|&b| b == b'\n')
                .map_or(tail.len(), |i| i + 1)
        } else {
            0
        };
        let found = inspect_tail(&self.key, &tail[skip..]).map_err(|failure| AuditError::Tail {
            path: path.clone(),
            failure,
        })?;
        let good_len = start + skip as u64 + found.good_len;
        // A rotation that renamed the file but failed to start the new one leaves it empty:
        // the chain continues from the state we hold.
        let found = if resumed && good_len == 0 && self.next_seq > 1 {
            super::verify::Tail {
                last_seq: self.next_seq - 1,
                last_chain: self.prev_chain.clone(),
                ..found
            }
        } else {
            found
        };
        if resumed && found.last_seq + 1 != self.next_seq {
            // Durable records disappeared while we were failing: do not paper over it.
            return Err(AuditError::Tail {
                path: path.clone(),
                failure: super::verify::VerifyFailure {
                    seq: found.last_seq + 1,
                    reason: super::verify::Reason::Truncated {
                        last: found.last_seq,
                        checkpoint: self.next_seq.saturating_sub(1),
                    },
                },
            });
        }
        let cut = len - good_len;
        if cut > 0 {
            file.set_len(good_len)
                .and_then(|_| file.sync_all())
                .map_err(|e| io_error(&self.options, e))?;
        }
        let mut index = self.shared.index.write().unwrap_or_else(|p| p.into_inner());
        if index.end() != good_len {
            *index = Index::build(&mut file, good_len).map_err(|e| io_error(&self.options, e))?;
        }
        drop(index);
        self.next_seq = found.last_seq + 1;
        self.prev_chain = found.last_chain;
        self.durable_len = good_len;
        self.file = Some(file);
        Ok(cut as usize)
    }

    /// Seal, write and sync `events` as one batch. On error nothing of the batch counts.
    fn commit_events(&mut self, events: Vec<AuditEvent>) -> Result<Vec<Receipt>, AuditError> {
        self.write_events(events, true)
    }

    /// Seal and write `events` as one batch, and `sync_data` (covering any earlier unsynced
    /// batch too) when `sync`. On error nothing of the batch counts.
    fn write_events(
        &mut self,
        events: Vec<AuditEvent>,
        sync: bool,
    ) -> Result<Vec<Receipt>, AuditError> {
        let mut buffer = Vec::with_capacity(events.len() * 512);
        let mut receipts = Vec::with_capacity(events.len());
        let mut line_lens = Vec::with_capacity(events.len());
        let first_seq = self.next_seq;
        let mut seq = self.next_seq;
        let count = events.len() as u64;
        // One scratch buffer for every record's text; each line is sealed straight into the
        // batch, chained to the receipt before it.
        let mut body = Vec::with_capacity(1024);
        for mut event in events {
            event.seq = Some(seq);
            event.chain = None;
            body.clear();
            serde_json::to_writer(&mut body, &event)
                .map_err(|e| io_error(&self.options, std::io::Error::other(e)))?;
            let escaped = super::sanitize::escape_controls(&body);
            let prev = receipts
                .last()
                .map_or(&self.prev_chain, |r: &Receipt| &r.chain);
            let start = buffer.len();
            let chain = self.key.seal_into(prev, &escaped, &mut buffer);
            line_lens.push((buffer.len() - start) as u64);
            receipts.push(Receipt { seq, chain });
            seq += 1;
        }
        let chain = receipts
            .last()
            .map_or_else(|| self.prev_chain.clone(), |r| r.chain.clone());
        let file = self.file.as_mut().ok_or_else(|| {
            io_error(
                &self.options,
                std::io::Error::other("audit file is not open"),
            )
        })?;
        file.write_all(&buffer)
            .map_err(|e| io_error(&self.options, e))?;
        if sync && self.options.durable {
            file.sync_data().map_err(|e| io_error(&self.options, e))?;
            self.unsynced = 0;
        } else if self.options.durable {
            self.unsynced += count;
        }
        self.shared
            .index
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .extend(first_seq, self.durable_len, &line_lens);
        self.next_seq = seq;
        self.prev_chain = chain;
        self.durable_len += buffer.len() as u64;
        self.since_checkpoint += count;
        Ok(receipts)
    }

    /// `sync_data` records written without a sync (see the module rule).
    fn sync_pending(&mut self) -> Result<(), AuditError> {
        if self.unsynced == 0 {
            return Ok(());
        }
        let file = self.file.as_mut().ok_or_else(|| {
            io_error(
                &self.options,
                std::io::Error::other("audit file is not open"),
            )
        })?;
        file.sync_data().map_err(|e| io_error(&self.options, e))?;
        self.unsynced = 0;
        Ok(())
    }

    /// [`Self::sync_pending`]; a failure puts the log in the failed state.
    fn sync_pending_or_fail(&mut self) -> bool {
        match self.sync_pending() {
            Ok(()) => true,
            Err(error) => {
                self.enter_failed(&error);
                false
            }
        }
    }

    /// The first record of a rotated-to file: names and chains to the previous file's end.
    fn rotation_record(&self, previous_file: Option<String>) -> AuditEvent {
        let mut event = AuditEvent::new(
            "rotation",
            "runtime.audit",
            AuditDecision::Allowed,
            "rotation",
        );
        event.detail = Some(
            serde_json::json!({
                "previousFile": previous_file,
                "previousLastSeq": self.next_seq - 1,
                "previousChain": self.prev_chain,
            })
            .into(),
        );
        event
    }

    /// Rotate when the current file is big or old enough: rename it to
    /// `<name>.<20-digit first seq>`, start a new file whose first record is a `rotation` record
    /// chained to the last one, then apply retention. Called between batches, so every record
    /// of the old file is durable.
    fn rotate_if_due(&mut self) {
        if self.failed_at.is_some() || self.durable_len == 0 {
            return;
        }
        let by_size = self
            .options
            .rotate_bytes
            .is_some_and(|limit| self.durable_len >= limit);
        let by_age = self
            .options
            .rotate_interval
            .is_some_and(|every| self.file_started.elapsed() >= every);
        if !(by_size || by_age) || !self.sync_pending_or_fail() {
            return;
        }
        if let Err(error) = self.rotate() {
            self.enter_failed(&error);
        }
    }

    fn rotate(&mut self) -> Result<(), AuditError> {
        let first_seq = self
            .shared
            .index
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .first_seq();
        let mut rotated = self.options.path.clone().into_os_string();
        rotated.push(format!(".{first_seq:020}"));
        let rotated = std::path::PathBuf::from(rotated);
        std::fs::rename(&self.options.path, &rotated).map_err(|e| io_error(&self.options, e))?;
        let mut options = OpenOptions::new();
        options.create(true).read(true).append(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file = options
            .open(&self.options.path)
            .map_err(|e| io_error(&self.options, e))?;
        if let Some(dir) = self.options.path.parent() {
            // Make the rename and the new name durable.
            if let Ok(dir) = File::open(dir) {
                let _ = dir.sync_all();
            }
        }
        self.file = Some(file);
        self.durable_len = 0;
        self.file_started = Instant::now();
        *self.shared.index.write().unwrap_or_else(|p| p.into_inner()) = Index::default();
        let name = rotated
            .file_name()
            .map(|n| n.to_string_lossy().into_owned());
        self.commit_events(vec![self.rotation_record(name)])?;
        tracing::info!(rotated = %rotated.display(), "audit log rotated");
        self.apply_retention();
        Ok(())
    }

    /// Remove rotated files beyond the configured count or age (oldest first). Failures are
    /// logged; they never stop the log.
    fn apply_retention(&self) {
        if self.options.retain_files.is_none() && self.options.retain_age.is_none() {
            return;
        }
        let files = match super::verify::rotated_files(&self.options.path) {
            Ok(files) => files,
            Err(e) => {
                tracing::error!("audit retention: cannot list rotated files: {e}");
                return;
            }
        };
        let excess = self
            .options
            .retain_files
            .map_or(0, |keep| files.len().saturating_sub(keep));
        for (i, file) in files.iter().enumerate() {
            let too_old = self.options.retain_age.is_some_and(|age| {
                std::fs::metadata(file)
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|m| m.elapsed().ok())
                    .is_some_and(|elapsed| elapsed > age)
            });
            if i < excess || too_old {
                match std::fs::remove_file(file) {
                    Ok(()) => {
                        tracing::info!(file = %file.display(), "audit retention removed a rotated file")
                    }
                    Err(e) => tracing::error!(file = %file.display(), "audit retention: {e}"),
                }
            }
        }
    }

    fn enter_failed(&mut self, error: &AuditError) {
        // Written but never synced: the `audit_gap` record counts them as possibly lost.
        let unsynced = std::mem::take(&mut self.unsynced);
        self.shared.refused.fetch_add(unsynced, Ordering::SeqCst);
        if self.failed_at.is_none() {
            tracing::error!(
                "AUDIT LOG FAILED, refusing calls that need a record until it recovers: {error}"
            );
            self.failed_at = Some((now_rfc3339(), Instant::now()));
            self.last_retry = Instant::now();
        }
        *self
            .shared
            .failure
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(error.to_string());
        self.shared.failed.store(true, Ordering::SeqCst);
        self.file = None;
    }

    fn try_recover(&mut self) {
        let Some((since, began)) = self.failed_at.clone() else {
            return;
        };
        if self.last_retry.elapsed() < self.options.retry_interval {
            return;
        }
        self.last_retry = Instant::now();
        let attempt =
            self.reopen().and_then(|_| {
                let mut gap = AuditEvent::new(
                    "audit_gap",
                    "runtime.audit",
                    AuditDecision::Error,
                    "audit_unavailable",
                );
                gap.detail = Some(serde_json::json!({
                "from": since,
                "to": now_rfc3339(),
                "durationMs": began.elapsed().as_millis() as u64,
                "refusedRecords": self.shared.refused.load(Ordering::SeqCst),
                "error": self.shared.failure.lock().unwrap_or_else(|p| p.into_inner()).clone(),
            }).into());
                if self.durable_len == 0 && self.next_seq > 1 {
                    let rotation = self.rotation_record(None);
                    self.commit_events(vec![rotation, gap])
                } else {
                    self.commit_events(vec![gap])
                }
            });
        match attempt {
            Ok(_) => {
                tracing::warn!(since = %since, "audit log recovered; an audit_gap record covers the outage");
                self.failed_at = None;
                self.shared.refused.store(0, Ordering::SeqCst);
                *self
                    .shared
                    .failure
                    .lock()
                    .unwrap_or_else(|p| p.into_inner()) = None;
                self.shared.failed.store(false, Ordering::SeqCst);
            }
            Err(error) => {
                tracing::debug!("audit log still failing: {error}");
                self.file = None;
            }
        }
    }

    fn checkpoint_if_due(&mut self, force: bool) {
        if self.since_checkpoint == 0 || self.failed_at.is_some() {
            return;
        }
        let due = force
            || self.since_checkpoint >= self.options.checkpoint_every
            || self.last_checkpoint.elapsed() >= self.options.checkpoint_interval;
        // A checkpoint never names a record that is not on disk.
        if !due || !self.sync_pending_or_fail() {
            return;
        }
        let mark = Checkpoint::signed(
            &self.key,
            self.next_seq - 1,
            &self.prev_chain,
            now_rfc3339(),
        );
        let written = serde_json::to_vec(&mark)
            .map_err(std::io::Error::other)
            .and_then(|mut line| {
                line.push(b'\n');
                let mut options = OpenOptions::new();
                options.create(true).append(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
                let mut file = options.open(&self.options.checkpoint_path)?;
                file.write_all(&line)?;
                file.sync_data()
            });
        match written {
            Ok(()) => {
                self.since_checkpoint = 0;
                self.last_checkpoint = Instant::now();
            }
            // The records themselves are durable; the next checkpoint retries.
            Err(e) => {
                tracing::error!(path = %self.options.checkpoint_path.display(), "audit checkpoint not written: {e}")
            }
        }
    }

    /// Serve the queue until every [`super::AuditLog`] handle is gone.
    pub fn run(mut self, queue: Receiver<Submission>) {
        let tick = self.options.retry_interval.min(Duration::from_millis(500));
        loop {
            let first = match queue.recv_timeout(tick) {
                Ok(first) => first,
                Err(RecvTimeoutError::Timeout) => {
                    self.sync_pending_or_fail();
                    self.try_recover();
                    self.checkpoint_if_due(false);
                    self.rotate_if_due();
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => break,
            };
            let mut batch = vec![first];
            let until = Instant::now() + self.linger;
            while batch.len() < MAX_BATCH.min(self.options.max_batch.max(1)) {
                let next = match queue.try_recv() {
                    Ok(next) => Some(next),
                    Err(_) => {
                        let left = until.saturating_duration_since(Instant::now());
                        if left.is_zero() {
                            None
                        } else {
                            queue.recv_timeout(left).ok()
                        }
                    }
                };
                match next {
                    Some(next) => batch.push(next),
                    None => break,
                }
            }
            self.try_recover();
            // Move the events out; the permits drop here, freeing queue slots.
            let mut events = Vec::with_capacity(batch.len());
            let mut acks = Vec::with_capacity(batch.len());
            for submission in batch {
                let position = submission.event.map(|event| {
                    events.push(event);
                    events.len() - 1
                });
                acks.push((submission.ack, position));
            }
            let refused = events.len() as u64;
            let waiters = acks.iter().filter(|(ack, _)| ack.is_some()).count();
            let started = Instant::now();
            let outcome = if self.failed_at.is_some() {
                Err(self.unavailable())
            } else if events.is_empty() {
                self.sync_pending().map(|()| Vec::new())
            } else {
                self.write_events(events, waiters > 0)
            };
            if waiters > 0 {
                self.linger = if waiters > 1 && self.options.durable {
                    (started.elapsed() / 2).min(MAX_LINGER)
                } else {
                    Duration::ZERO
                };
            }
            match outcome {
                Ok(receipts) => {
                    for (ack, position) in acks {
                        let Some(ack) = ack else { continue };
                        let receipt = match position {
                            Some(i) => receipts[i].clone(),
                            // A barrier: everything before it is durable.
                            None => Receipt {
                                seq: self.next_seq - 1,
                                chain: self.prev_chain.clone(),
                            },
                        };
                        let _ = ack.send(Ok(receipt));
                    }
                    self.checkpoint_if_due(false);
                    self.rotate_if_due();
                }
                Err(error) => {
                    if self.failed_at.is_none() {
                        self.enter_failed(&error);
                    }
                    self.shared.refused.fetch_add(refused, Ordering::SeqCst);
                    for (ack, _) in acks {
                        if let Some(ack) = ack {
                            let _ = ack.send(Err(self.unavailable()));
                        }
                    }
                }
            }
        }
        self.sync_pending_or_fail();
        self.checkpoint_if_due(true);
    }

    fn unavailable(&self) -> AuditError {
        self.shared.unavailable(&self.options.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer on `<dir>/audit/audit.log` sealing with a fixed key.
    fn fixed_key_writer(dir: &std::path::Path) -> (Writer, AuditOptions) {
        let options = AuditOptions::new(dir.join("audit/audit.log"), dir.join("audit.key"));
        let key = AuditKey::from_bytes(&[7; 32]);
        let writer = Writer::open(options.clone(), key, Arc::new(Shared::default())).unwrap();
        (writer, options)
    }

    /// Records keep their exact bytes whatever the queue or serialiser does: a fixed pair of
    /// records (every optional field set, a control character to escape) sealed with a fixed
    /// key is this text, byte for byte, chain included.
    #[test]
    fn a_fixed_batch_is_written_as_these_exact_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let (mut writer, options) = fixed_key_writer(dir.path());
        let mut intent = AuditEvent::new(
            "tool_execution_intent",
            "tickets:getTicket",
            AuditDecision::Allowed,
            "allowed",
        );
        intent.timestamp = "2026-12-03T15:00:00.123456789Z".into();
        intent.principal = Some("alice".into());
        intent.lineage = Some(serde_json::json!({"actor": "agent-1"}));
        intent.agent_profile = Some("support".into());
        intent.service_id = Some("tickets".into());
        intent.target_base_url = Some("http://127.0.0.1:9000".into());
        intent.method = Some("GET".into());
        intent.path = Some("/tickets/{id}".into());
        intent.request_size = Some(0);
        intent.token_hash = Some("0123456789abcdef".into());
        intent.arguments = Some(serde_json::json!({"pathArgs": ["1\u{85}"], "flags": {}}));
        intent.request_id = Some("req-1".into());
        intent.detail = Some(serde_json::json!({
            "ruleId": null,
            "steps": [{"rule": "policy_deny", "outcome": "pass", "detail": "no deny pattern matches"}],
        }).into());
        let mut outcome = AuditEvent::new(
            "tool_execution",
            "tickets:getTicket",
            AuditDecision::Allowed,
            "allowed",
        );
        outcome.timestamp = "2026-12-03T15:00:00.223456789Z".into();
        outcome.final_origin = Some("http://127.0.0.1:9000".into());
        outcome.status_code = Some(200);
        outcome.latency_ms = Some(3);
        outcome.retry_count = Some(1);
        outcome.request_id = Some("req-1".into());
        let receipts = writer.commit_events(vec![intent, outcome]).unwrap();
        let text = std::fs::read_to_string(&options.path).unwrap();
        assert_eq!(text, GOLDEN, "the record bytes changed");
        assert_eq!(receipts.len(), 2);
        assert_eq!((receipts[0].seq, receipts[1].seq), (1, 2));
        assert!(text.lines().nth(1).unwrap().contains(&receipts[1].chain));
    }

    /// A record nobody waits for is written at once but synced later: the count of unsynced
    /// records goes up, and the next waited-for batch, checkpoint or idle tick brings it back to
    /// zero before anything names those records.
    #[test]
    fn unwaited_records_are_written_now_and_synced_before_a_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let (mut writer, options) = fixed_key_writer(dir.path());
        let event = || AuditEvent::new("tool_execution", "t:x", AuditDecision::Allowed, "allowed");
        writer.write_events(vec![event(), event()], false).unwrap();
        assert_eq!(writer.unsynced, 2);
        let text = std::fs::read_to_string(&options.path).unwrap();
        assert_eq!(text.lines().count(), 2, "written at once");
        writer.write_events(vec![event()], true).unwrap();
        assert_eq!(
            writer.unsynced, 0,
            "a waited-for batch syncs what came before it"
        );
        writer.write_events(vec![event()], false).unwrap();
        writer.checkpoint_if_due(true);
        assert_eq!(
            writer.unsynced, 0,
            "a checkpoint never names an unsynced record"
        );
        assert!(options.checkpoint_path.exists());
    }

    /// Written by the writer as of issue #16's baseline (`6bb08e3`); change it only together with
    /// a deliberate, documented change of the record format.
    const GOLDEN: &str = concat!(
        r#"{"seq":1,"timestamp":"2026-12-03T15:00:00.123456789Z","eventType":"tool_execution_intent","principal":"alice","lineage":{"actor":"agent-1"},"agentProfile":"support","toolId":"tickets:getTicket","serviceId":"tickets","targetBaseUrl":"http://127.0.0.1:9000","decision":"allowed","reasonCode":"allowed","method":"GET","path":"/tickets/{id}","requestSize":0,"tokenHash":"0123456789abcdef","arguments":{"pathArgs":["1\u0085"],"flags":{}},"requestId":"req-1","detail":{"ruleId":null,"steps":[{"rule":"policy_deny","outcome":"pass","detail":"no deny pattern matches"}]},"chain":"0aa35992dabd8927227d94b754b3a0b673cdcc404d7ee3f89bdacf4cdc9227a7"}"#,
        "\n",
        r#"{"seq":2,"timestamp":"2026-12-03T15:00:00.223456789Z","eventType":"tool_execution","toolId":"tickets:getTicket","finalOrigin":"http://127.0.0.1:9000","decision":"allowed","reasonCode":"allowed","statusCode":200,"latencyMs":3,"retryCount":1,"requestId":"req-1","chain":"a3122d738a4d6d70a5ba95b5e6b66ed1eb73addfb44ee83b89f24a0a33739dcb"}"#,
        "\n",
    );
}
