//! `file`: `value` is a path (relative paths are relative to the runtime's working directory).
//!
//! Rule: the file is read once per resolution, so a rotated file is picked up on the next
//! call; exactly one trailing `\n` or `\r\n` is trimmed; empty (after trimming) is an error.
//! Errors name the path and the I/O error kind, never the contents.

use super::{finish, SourceError};

/// Cap on a secret file: a credential is small, and a wrong path must not read a huge file.
pub const MAX_FILE_BYTES: u64 = 64 * 1024;

/// The file's trimmed contents.
pub fn read(path: &str) -> Result<String, SourceError> {
    use std::io::Read as _;
    let io = |e: std::io::Error| SourceError::File {
        path: path.to_owned(),
        kind: e.kind(),
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(SourceError::FileTooLarge {
            path: path.to_owned(),
            limit: MAX_FILE_BYTES,
        });
    }
    finish(bytes, || format!("secret file {path}"))
}

/// Why `path` cannot be read right now, if it cannot (for load-time checks; reads the file).
pub fn problem(path: &str) -> Option<SourceError> {
    read(path).err()
}
