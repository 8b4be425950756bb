//! `portcullis audit tail`: print the last matching records, then optionally follow the file.
//!
//! Rule: reads the file, never the server (works when the server is down, needs read access to
//! the file). Records are printed as their NDJSON lines with control characters escaped
//! ([`super::sanitize`]), so a line can neither forge another line nor drive the terminal.
//! Lines that are not records are skipped (`audit verify` reports them). Following polls the
//! path: when its inode changes or it shrinks (rotated or recreated) the new file is read from
//! its start; a partial last line waits for its newline.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::time::Duration;

use super::{AuditEvent, AuditQuery};

/// How often `--follow` looks for new bytes.
pub const POLL: Duration = Duration::from_millis(200);

/// Print the last `lines` records of `path` that pass `query` to `out`.
pub fn last(
    path: &Path,
    query: &AuditQuery,
    lines: usize,
    out: &mut dyn Write,
) -> std::io::Result<u64> {
    let mut file = File::open(path)?;
    let len = file.metadata()?.len();
    let complete_end = complete_len(&mut file, len)?;
    let mut window = 1u64 << 20;
    loop {
        let start = complete_end.saturating_sub(window);
        let mut bytes = vec![0u8; (complete_end - start) as usize];
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(&mut bytes)?;
        // A window that starts mid-file starts mid-line.
        let skip = if start > 0 {
            bytes
                .iter()
                .position(|&b| b == b'\n')
                .map_or(bytes.len(), |i| i + 1)
        } else {
            0
        };
        let kept: Vec<&[u8]> = bytes[skip..]
            .split(|&b| b == b'\n')
            .filter(|line| matches(query, line))
            .collect();
        if kept.len() >= lines || start == 0 {
            for line in &kept[kept.len().saturating_sub(lines)..] {
                print_line(out, line)?;
            }
            return Ok(complete_end);
        }
        window = window.saturating_mul(4);
    }
}

/// Print the last `lines` records, then every new matching record until `stop` says so.
pub fn follow(
    path: &Path,
    query: &AuditQuery,
    lines: usize,
    out: &mut dyn Write,
    stop: &dyn Fn() -> bool,
) -> std::io::Result<()> {
    let mut position = last(path, query, lines, out)?;
    out.flush()?;
    let mut file = File::open(path)?;
    let mut identity = identity(&file)?;
    let mut pending = Vec::new();
    while !stop() {
        std::thread::sleep(POLL);
        if let Ok(current) = std::fs::metadata(path) {
            let replaced = file_id(&current) != identity || current.len() < position;
            if replaced {
                // Rotated or recreated: drain what the old file still had, then switch.
                drain(&mut file, &mut position, &mut pending, query, out)?;
                if let Ok(new) = File::open(path) {
                    file = new;
                    identity = self::identity(&file)?;
                    position = 0;
                    pending.clear();
                }
            }
        }
        drain(&mut file, &mut position, &mut pending, query, out)?;
        out.flush()?;
    }
    Ok(())
}

fn drain(
    file: &mut File,
    position: &mut u64,
    pending: &mut Vec<u8>,
    query: &AuditQuery,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    file.seek(SeekFrom::Start(*position))?;
    let read = file.read_to_end(pending)?;
    *position += read as u64;
    if let Some(end) = pending.iter().rposition(|&b| b == b'\n') {
        for line in pending[..end].split(|&b| b == b'\n') {
            if matches(query, line) {
                print_line(out, line)?;
            }
        }
        pending.drain(..=end);
    }
    Ok(())
}

fn matches(query: &AuditQuery, line: &[u8]) -> bool {
    !line.is_empty()
        && serde_json::from_slice::<AuditEvent>(line).is_ok_and(|event| query.keeps(&event))
}

fn print_line(out: &mut dyn Write, line: &[u8]) -> std::io::Result<()> {
    out.write_all(&super::sanitize::escape_controls(line))?;
    out.write_all(b"\n")
}

/// Length up to and including the last newline.
fn complete_len(file: &mut File, len: u64) -> std::io::Result<u64> {
    let mut end = len;
    let mut byte = [0u8; 1];
    while end > 0 {
        file.seek(SeekFrom::Start(end - 1))?;
        file.read_exact(&mut byte)?;
        if byte[0] == b'\n' {
            break;
        }
        end -= 1;
    }
    Ok(end)
}

fn identity(file: &File) -> std::io::Result<(u64, u64)> {
    Ok(file_id(&file.metadata()?))
}

#[cfg(unix)]
fn file_id(metadata: &std::fs::Metadata) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    (metadata.dev(), metadata.ino())
}

#[cfg(not(unix))]
fn file_id(metadata: &std::fs::Metadata) -> (u64, u64) {
    (
        0,
        metadata.created().map_or(0, |t| {
            t.duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64)
        }),
    )
}
