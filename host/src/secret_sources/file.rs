//! `file`: `value` is a path (relative paths are relative to the runtime's working directory).
//!
//! | rule | default | failure (that call only: 502 `credential_unavailable`) |
//! |---|---|---|
//! | read once per resolution, so a rotated file is picked up on the next call | — | — |
//! | symlinks are resolved first (Kubernetes secret mounts are symlink chains), then the target is opened with `O_NOFOLLOW`, so it cannot be swapped for a link between the check and the open | — | missing, dangling or looping link |
//! | opened with `O_NONBLOCK` and must be a regular file (`fstat` after the open): a FIFO, socket or device never blocks a thread | — | `is not a regular file` |
//! | size | 64 KiB | `is larger than` |
//! | the read runs on the blocking pool under a deadline, never on the async workers | 2 s | `could not be read within` |
//! | exactly one trailing `\n` or `\r\n` is trimmed; empty (after trimming) is an error | — | `produced an empty value` |
//! | group- or world-readable file | — | a warning at load (`portcullis check`, snapshot build), the call still works |
//!
//! Errors name the path and the I/O error kind, never the contents.

use std::fs::File;
use std::io::Read as _;
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _};
use std::path::PathBuf;
use std::time::Duration;

use rustix::fs::OFlags;

use super::{finish, SourceError};

/// Cap on a secret file: a credential is small, and a wrong path must not read a huge file.
pub const MAX_FILE_BYTES: u64 = 64 * 1024;

/// Longest a resolution waits for the file (a hung network mount must not hang the call).
pub const READ_TIMEOUT: Duration = Duration::from_secs(2);

/// The `file` source.
pub struct SecretFile;

impl super::SecretSource for SecretFile {
    fn resolve<'a>(
        &'a self,
        request: super::SecretRequest<'a>,
    ) -> futures_util::future::BoxFuture<'a, Result<crate::redact::SecretValue, SourceError>> {
        Box::pin(
            async move { super::checked(read(super::reference(request.secret, "file")?).await?) },
        )
    }
}

/// The file's trimmed contents, read off the async workers under [`READ_TIMEOUT`].
pub async fn read(path: &str) -> Result<String, SourceError> {
    let owned = path.to_owned();
    let task = tokio::task::spawn_blocking(move || read_blocking(&owned));
    match tokio::time::timeout(READ_TIMEOUT, task).await {
        Ok(Ok(result)) => result,
        Ok(Err(_)) => Err(SourceError::File {
            path: path.to_owned(),
            kind: std::io::ErrorKind::Other,
        }),
        Err(_) => Err(SourceError::FileTimeout {
            path: path.to_owned(),
            timeout: READ_TIMEOUT,
        }),
    }
}

/// Open (symlinks resolved, then `O_NOFOLLOW | O_NONBLOCK`), require a regular file, read
/// at most [`MAX_FILE_BYTES`]. Never blocks on a FIFO or device.
fn read_blocking(path: &str) -> Result<String, SourceError> {
    let io = |e: std::io::Error| SourceError::File {
        path: path.to_owned(),
        kind: e.kind(),
    };
    let (file, size) = open_regular(path)?;
    if size > MAX_FILE_BYTES {
        return Err(too_large(path));
    }
    let mut bytes = Vec::with_capacity(size as usize);
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(too_large(path));
    }
    finish(bytes, || format!("secret file {path}"))
}

fn too_large(path: &str) -> SourceError {
    SourceError::FileTooLarge {
        path: path.to_owned(),
        limit: MAX_FILE_BYTES,
    }
}

/// The opened regular file and its size.
fn open_regular(path: &str) -> Result<(File, u64), SourceError> {
    let io = |e: std::io::Error| SourceError::File {
        path: path.to_owned(),
        kind: e.kind(),
    };
    let target: PathBuf = std::fs::canonicalize(path).map_err(io)?;
    let flags = OFlags::NONBLOCK | OFlags::NOFOLLOW | OFlags::NOCTTY;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(flags.bits() as i32)
        .open(&target)
        .map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    if !meta.file_type().is_file() {
        return Err(SourceError::FileNotRegular {
            path: path.to_owned(),
        });
    }
    Ok((file, meta.len()))
}

/// Why `path` cannot be read right now, if it cannot (for load-time checks; reads the file,
/// never blocks on a FIFO).
pub fn problem(path: &str) -> Option<SourceError> {
    read_blocking(path).err()
}

/// A load-time warning when the file (after symlinks) can be read by its group or by anyone.
pub fn loose_permissions(path: &str) -> Option<String> {
    let (file, _) = open_regular(path).ok()?;
    let mode = file.metadata().ok()?.mode() & 0o777;
    (mode & 0o044 != 0).then(|| {
        format!(
            "secret file {path} is readable by its group or by everyone (mode {mode:03o}); chmod 600 it"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    #[tokio::test]
    async fn a_fifo_is_refused_at_once_and_never_blocks() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        let started = std::time::Instant::now();
        let err = read(fifo.to_str().unwrap()).await.unwrap_err();
        assert!(matches!(err, SourceError::FileNotRegular { .. }), "{err}");
        assert!(started.elapsed() < READ_TIMEOUT, "{:?}", started.elapsed());
        assert!(problem(fifo.to_str().unwrap()).is_some());
    }

    #[tokio::test]
    async fn a_symlinked_secret_like_a_kubernetes_mount_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("..2026_data");
        std::fs::create_dir(&data).unwrap();
        std::fs::write(data.join("token"), "tok\n").unwrap();
        std::os::unix::fs::symlink(&data, dir.path().join("..data")).unwrap();
        let link = dir.path().join("token");
        std::os::unix::fs::symlink("..data/token", &link).unwrap();
        assert_eq!(read(link.to_str().unwrap()).await.unwrap(), "tok");
        // A link to something that is not a regular file is still refused.
        let to_dir = dir.path().join("dir-link");
        std::os::unix::fs::symlink(&data, &to_dir).unwrap();
        let err = read(to_dir.to_str().unwrap()).await.unwrap_err();
        assert!(matches!(err, SourceError::FileNotRegular { .. }), "{err}");
    }

    #[tokio::test]
    async fn oversized_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'x'; MAX_FILE_BYTES as usize + 1]).unwrap();
        let err = read(big.to_str().unwrap()).await.unwrap_err();
        assert!(matches!(err, SourceError::FileTooLarge { .. }), "{err}");
    }

    #[test]
    fn group_or_world_readable_files_are_warned_about() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "tok").unwrap();
        let p = path.to_str().unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(loose_permissions(p), None);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let warning = loose_permissions(p).unwrap();
        assert!(warning.contains("644"), "{warning}");
    }
}
