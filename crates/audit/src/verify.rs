//! Verification of an audit log against its key and checkpoints.
//!
//! Rule: records carry contiguous `seq` from 1 and each `chain` must equal the HMAC of the
//! previous chain and the record's own bytes (see [`super::chain`]). Every checkpoint must carry
//! a valid MAC and match the record with its `seq`; a checkpoint beyond the last record means the
//! tail was cut. The first failure is reported with the sequence number the bad record should
//! have had, so a flipped bit in the `seq` digits still names the right record.
//!
//! Failure mode: verification never modifies anything; the server's start-up tail repair lives
//! in [`inspect_tail`] and only truncates a final line that has no newline (a torn write).

use std::path::Path;

use super::chain::{unseal, AuditKey};

/// Why a record (or the log as a whole) does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Reason {
    /// The line is not a sealed JSON record (bytes altered or inserted).
    #[error("line is not a sealed record (altered bytes or a foreign line)")]
    Malformed,
    /// A different sequence number than expected.
    #[error("expected seq {expected}, found {found}: a record was deleted, inserted or reordered")]
    Sequence {
        /// What should come next.
        expected: u64,
        /// What came.
        found: u64,
    },
    /// The MAC does not match.
    #[error("chain mismatch: the record was altered or does not follow the previous one")]
    Chain,
    /// A checkpoint's MAC does not match.
    #[error("checkpoint line {line} is not authentic")]
    CheckpointForged {
        /// 1-based line in the checkpoint file.
        line: usize,
    },
    /// A checkpoint names a different chain for this seq.
    #[error("record differs from the checkpoint taken at this seq")]
    CheckpointMismatch,
    /// The checkpoints name records that are no longer there.
    #[error("log ends at seq {last} but a checkpoint exists for seq {checkpoint}: tail truncated")]
    Truncated {
        /// Last record present.
        last: u64,
        /// Highest checkpointed seq.
        checkpoint: u64,
    },
    /// A rotated file between two others is missing.
    #[error("file {file} starts after seq {resumes_after} but the previous file ends at seq {last}: a rotated file is missing")]
    MissingFile {
        /// The file that does not follow.
        file: String,
        /// Last seq of the previous file.
        last: u64,
        /// What the file's rotation record says came before it.
        resumes_after: u64,
    },
    /// The last line has no newline (a crash mid-write; the server truncates it on start).
    #[error("torn last line ({bytes} bytes without a newline)")]
    TornTail {
        /// Length of the partial line.
        bytes: usize,
    },
}

/// The first bad record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("first bad record: seq {seq}: {reason}")]
pub struct VerifyFailure {
    /// The sequence number the bad record has (or should have had).
    pub seq: u64,
    /// Why.
    pub reason: Reason,
}

/// A log that verified.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// Records checked.
    pub records: u64,
    /// Last seq (0 when empty).
    pub last_seq: u64,
    /// Last chain ("" when empty).
    pub last_chain: String,
    /// Checkpoints checked.
    pub checkpoints: usize,
    /// First seq present (above 1 when older rotated files were removed by retention).
    pub first_seq: u64,
    /// Files checked (the rotated set plus the current file).
    pub files: usize,
}

/// One checkpoint line: `{"seq":N,"chain":"..","at":"..","mac":".."}`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Checkpoint {
    /// Last record covered.
    pub seq: u64,
    /// That record's chain.
    pub chain: String,
    /// When it was taken.
    pub at: String,
    /// `hex(HMAC(key, "checkpoint:" || seq || ":" || chain || ":" || at))`.
    #[serde(default)]
    pub mac: String,
}

impl Checkpoint {
    /// A checkpoint with its MAC.
    pub fn signed(key: &AuditKey, seq: u64, chain: &str, at: String) -> Self {
        let mac = Self::mac(key, seq, chain, &at);
        Self {
            seq,
            chain: chain.to_owned(),
            at,
            mac,
        }
    }

    fn mac(key: &AuditKey, seq: u64, chain: &str, at: &str) -> String {
        key.mac_hex(&[
            b"checkpoint:",
            seq.to_string().as_bytes(),
            b":",
            chain.as_bytes(),
            b":",
            at.as_bytes(),
        ])
    }

    fn authentic(&self, key: &AuditKey) -> bool {
        Self::mac(key, self.seq, &self.chain, &self.at) == self.mac
    }
}

/// Walks records in order, checking each against the previous one.
pub struct ChainCursor<'k> {
    key: &'k AuditKey,
    /// Chain of the last good record.
    pub prev: String,
    /// Seq of the last good record.
    pub last_seq: u64,
}

impl<'k> ChainCursor<'k> {
    /// Start after `last_seq` whose chain is `prev` (`0`, `""` for a fresh log).
    pub fn new(key: &'k AuditKey, last_seq: u64, prev: String) -> Self {
        Self {
            key,
            prev,
            last_seq,
        }
    }

    /// Check the next line (without newline); on success it becomes the previous record.
    pub fn step(&mut self, line: &[u8]) -> Result<(), VerifyFailure> {
        let expected = self.last_seq + 1;
        let fail = |reason| VerifyFailure {
            seq: expected,
            reason,
        };
        let unsealed = unseal(line).ok_or_else(|| fail(Reason::Malformed))?;
        let found = record_seq(&unsealed.body).ok_or_else(|| fail(Reason::Malformed))?;
        if found != expected {
            return Err(fail(Reason::Sequence { expected, found }));
        }
        if self.key.mac_hex(&[self.prev.as_bytes(), &unsealed.body]) != unsealed.chain {
            return Err(fail(Reason::Chain));
        }
        self.prev = unsealed.chain.to_owned();
        self.last_seq = expected;
        Ok(())
    }
}

fn record_seq(body: &[u8]) -> Option<u64> {
    #[derive(serde::Deserialize)]
    struct Seq {
        seq: u64,
    }
    serde_json::from_slice::<Seq>(body).ok().map(|s| s.seq)
}

/// `(previousLastSeq, previousChain)` when `body` is a `rotation` record: the first record of a
/// rotated-to file, chained to the previous file's last record.
pub fn rotation_origin(body: &[u8]) -> Option<(u64, String)> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Origin {
        previous_last_seq: u64,
        previous_chain: String,
    }
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Record {
        event_type: String,
        detail: Option<Origin>,
    }
    let record: Record = serde_json::from_slice(body).ok()?;
    let origin = record.detail.filter(|_| record.event_type == "rotation")?;
    Some((origin.previous_last_seq, origin.previous_chain))
}

fn origin_of_line(line: &[u8]) -> Option<(u64, String)> {
    rotation_origin(&unseal(line)?.body)
}

/// Verify a whole log and (when given) its checkpoint file.
pub fn verify(
    key: &AuditKey,
    log: &[u8],
    checkpoints: Option<&[u8]>,
) -> Result<VerifyReport, VerifyFailure> {
    verify_set(key, &[("log", log)], checkpoints)
}

/// Verify a rotated set, oldest file first, the current file last. The chain runs across files:
/// each file after the first must start with the `rotation` record that continues the previous
/// file (a missing middle file is reported as [`Reason::MissingFile`]). The oldest file may
/// start with a `rotation` record (older files removed by retention); the chain then starts
/// from what it names, which the record's own MAC vouches for. Checkpoints below the first
/// present record are skipped; only the current file may end in a torn line.
pub fn verify_set(
    key: &AuditKey,
    logs: &[(&str, &[u8])],
    checkpoints: Option<&[u8]>,
) -> Result<VerifyReport, VerifyFailure> {
    let mut marks = Vec::new();
    for (i, line) in checkpoints
        .unwrap_or_default()
        .split(|&b| b == b'\n')
        .enumerate()
        .filter(|(_, l)| !l.is_empty())
    {
        let forged = VerifyFailure {
            seq: 0,
            reason: Reason::CheckpointForged { line: i + 1 },
        };
        let mark: Checkpoint = serde_json::from_slice(line).map_err(|_| forged.clone())?;
        if !mark.authentic(key) {
            return Err(forged);
        }
        marks.push(mark);
    }
    marks.sort_by_key(|m| m.seq);
    let mut cursor = ChainCursor::new(key, 0, String::new());
    let mut first_seq = None;
    let mut next_mark = marks.iter().peekable();
    let mut torn = 0;
    for (position, (name, log)) in logs.iter().enumerate() {
        let (complete, torn_here) = split_torn(log);
        if torn_here > 0 && position + 1 < logs.len() {
            return Err(VerifyFailure {
                seq: cursor.last_seq + 1,
                reason: Reason::TornTail { bytes: torn_here },
            });
        }
        torn = torn_here;
        for (i, line) in complete
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .enumerate()
        {
            if i == 0 {
                if let Some((last, chain)) = origin_of_line(line) {
                    if first_seq.is_none() {
                        cursor = ChainCursor::new(key, last, chain);
                    } else if last != cursor.last_seq {
                        return Err(VerifyFailure {
                            seq: cursor.last_seq + 1,
                            reason: Reason::MissingFile {
                                file: (*name).to_owned(),
                                last: cursor.last_seq,
                                resumes_after: last,
                            },
                        });
                    }
                }
            }
            cursor.step(line)?;
            if first_seq.is_none() {
                first_seq = Some(cursor.last_seq);
                // Checkpoints of records removed by retention cannot be checked.
                while next_mark.next_if(|m| m.seq < cursor.last_seq).is_some() {}
            }
            while let Some(mark) = next_mark.next_if(|m| m.seq <= cursor.last_seq) {
                if mark.seq == cursor.last_seq && mark.chain != cursor.prev {
                    return Err(VerifyFailure {
                        seq: mark.seq,
                        reason: Reason::CheckpointMismatch,
                    });
                }
            }
        }
    }
    if let Some(mark) = marks.last().filter(|m| m.seq > cursor.last_seq) {
        return Err(VerifyFailure {
            seq: cursor.last_seq + 1,
            reason: Reason::Truncated {
                last: cursor.last_seq,
                checkpoint: mark.seq,
            },
        });
    }
    if torn > 0 {
        return Err(VerifyFailure {
            seq: cursor.last_seq + 1,
            reason: Reason::TornTail { bytes: torn },
        });
    }
    let first_seq = first_seq.unwrap_or(0);
    Ok(VerifyReport {
        records: if first_seq == 0 {
            0
        } else {
            cursor.last_seq + 1 - first_seq
        },
        last_seq: cursor.last_seq,
        last_chain: cursor.prev,
        checkpoints: marks.len(),
        first_seq,
        files: logs.len(),
    })
}

/// Rotated files of the log at `path` (`<name>.<20-digit first seq>`), oldest first.
pub fn rotated_files(path: &Path) -> std::io::Result<Vec<std::path::PathBuf>> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Ok(Vec::new());
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let prefix = format!("{}.", name.to_string_lossy());
    let mut files: Vec<_> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .and_then(|n| n.strip_prefix(&prefix).map(str::to_owned))
                    .is_some_and(|rest| {
                        rest.len() == 20 && rest.bytes().all(|b| b.is_ascii_digit())
                    })
            })
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e),
    };
    files.sort();
    Ok(files)
}

/// Read the rotated set and the current file and [`verify_set`] them; a missing checkpoint file
/// counts as no checkpoints.
pub fn verify_files(
    key: &AuditKey,
    log: &Path,
    checkpoints: &Path,
) -> Result<Result<VerifyReport, VerifyFailure>, std::io::Error> {
    let mut paths = rotated_files(log)?;
    paths.push(log.to_owned());
    let mut contents = Vec::with_capacity(paths.len());
    for path in &paths {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        contents.push((name, std::fs::read(path)?));
    }
    let logs: Vec<(&str, &[u8])> = contents
        .iter()
        .map(|(name, bytes)| (name.as_str(), bytes.as_slice()))
        .collect();
    let marks = match std::fs::read(checkpoints) {
        Ok(bytes) => Some(bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e),
    };
    Ok(verify_set(key, &logs, marks.as_deref()))
}

/// `(complete lines, length of a final partial line)`.
fn split_torn(log: &[u8]) -> (&[u8], usize) {
    match log.iter().rposition(|&b| b == b'\n') {
        Some(i) => (&log[..=i], log.len() - i - 1),
        None => (&[], log.len()),
    }
}

/// The state a writer resumes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tail {
    /// Bytes of complete lines (truncate the file to this).
    pub good_len: u64,
    /// Bytes after the last newline (a torn write) that must be cut.
    pub torn_bytes: usize,
    /// Last seq (0 for an empty log).
    pub last_seq: u64,
    /// Last chain ("" for an empty log).
    pub last_chain: String,
}

/// Find where to resume: cut a torn last line and verify the last complete record against the
/// one before it. Only the tail is read, so start-up cost does not grow with the log.
pub fn inspect_tail(key: &AuditKey, log: &[u8]) -> Result<Tail, VerifyFailure> {
    let (complete, torn_bytes) = split_torn(log);
    let mut lines = complete
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .rev();
    let Some(last) = lines.next() else {
        return Ok(Tail {
            good_len: 0,
            torn_bytes,
            last_seq: 0,
            last_chain: String::new(),
        });
    };
    let (prev_seq, prev_chain) = match lines.next() {
        Some(prev) => {
            let unsealed = unseal(prev).ok_or(VerifyFailure {
                seq: 0,
                reason: Reason::Malformed,
            })?;
            let seq = record_seq(&unsealed.body).ok_or(VerifyFailure {
                seq: 0,
                reason: Reason::Malformed,
            })?;
            (seq, unsealed.chain.to_owned())
        }
        // The only line of a rotated-to file: it names what came before it.
        None => origin_of_line(last).unwrap_or((0, String::new())),
    };
    let mut cursor = ChainCursor::new(key, prev_seq, prev_chain);
    cursor.step(last)?;
    Ok(Tail {
        good_len: complete.len() as u64,
        torn_bytes,
        last_seq: cursor.last_seq,
        last_chain: cursor.prev,
    })
}
