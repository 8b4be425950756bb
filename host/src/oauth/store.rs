//! Where OAuth tokens live between calls.
//!
//! Rule: `tokenStorage: "instance"` (the default) keeps one file per cache key under
//! `<stateDir>/oauth/<sha256 of the key>.json`, mode 0600, written to a temporary file, fsynced
//! and renamed over the old one (then the directory is fsynced), so a crash leaves either the
//! old token or the new one, never a torn file. `tokenStorage: "memory"` keeps tokens in
//! process memory only. A rotated refresh token is saved here *before* the access token that
//! came with it is used ([`super::OAuthClients`]), so a crash cannot leave only a refresh token
//! the authorization server has already retired.
//!
//! A file that cannot be read or parsed is treated as absent (the token is fetched again); a
//! file that cannot be written is an error, because losing a rotated refresh token would force
//! a person to re-authorize.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// A token as stored. Times are milliseconds since the Unix epoch.
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredToken {
    /// The access token.
    pub access_token: String,
    /// When it expires.
    pub expires_at_ms: u64,
    /// When it should be replaced (shortly before `expires_at_ms`).
    pub refresh_at_ms: u64,
    /// The refresh token, when the server issued one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
}

impl std::fmt::Debug for StoredToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredToken")
            .field("expires_at_ms", &self.expires_at_ms)
            .field("has_refresh_token", &self.refresh_token.is_some())
            .finish_non_exhaustive()
    }
}

/// Which store a secret uses (`tokenStorage`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Storage {
    /// Files under the instance state dir.
    #[default]
    Instance,
    /// Process memory.
    Memory,
}

/// Why a token could not be saved.
#[derive(Debug, thiserror::Error)]
#[error("oauth token store {path}: {source}")]
pub struct StoreError {
    path: PathBuf,
    source: std::io::Error,
}

/// The instance's token stores.
#[derive(Debug)]
pub struct TokenStore {
    dir: Option<PathBuf>,
    memory: Mutex<HashMap<String, StoredToken>>,
}

impl TokenStore {
    /// Files under `dir` (normally `<stateDir>/oauth`); `None` keeps every token in memory.
    pub fn new(dir: Option<PathBuf>) -> Self {
        Self {
            dir,
            memory: Mutex::default(),
        }
    }

    fn file(&self, storage: Storage, key: &str) -> Option<PathBuf> {
        match storage {
            Storage::Instance => self.dir.as_ref().map(|d| d.join(format!("{key}.json"))),
            Storage::Memory => None,
        }
    }

    /// The stored token for `key` (a hex digest), if any.
    pub fn load(&self, storage: Storage, key: &str) -> Option<StoredToken> {
        match self.file(storage, key) {
            Some(path) => serde_json::from_slice(&std::fs::read(path).ok()?).ok(),
            None => self.memory().get(key).cloned(),
        }
    }

    /// Save `token` durably for `key`.
    pub fn save(&self, storage: Storage, key: &str, token: &StoredToken) -> Result<(), StoreError> {
        match self.file(storage, key) {
            Some(path) => write_atomically(&path, &serde_json::to_vec(token).unwrap_or_default())
                .map_err(|source| StoreError { path, source }),
            None => {
                self.memory().insert(key.to_owned(), token.clone());
                Ok(())
            }
        }
    }

    /// Forget the token for `key` (a refresh failed: it must not be tried again).
    pub fn remove(&self, storage: Storage, key: &str) {
        match self.file(storage, key) {
            Some(path) => {
                let _ = std::fs::remove_file(path);
            }
            None => {
                self.memory().remove(key);
            }
        }
    }

    fn memory(&self) -> std::sync::MutexGuard<'_, HashMap<String, StoredToken>> {
        self.memory.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// tmp (0600) + fsync + rename + fsync of the directory (also the MCP tool pins' writer).
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = path.with_extension(format!("tmp-{}", uuid::Uuid::new_v4().simple()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let result = (|| {
        let mut file = options.open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(access: &str) -> StoredToken {
        StoredToken {
            access_token: access.into(),
            expires_at_ms: 1,
            refresh_at_ms: 1,
            refresh_token: Some("CANARY-refresh".into()),
        }
    }

    #[test]
    fn instance_tokens_are_files_readable_only_by_the_owner() {
        let dir = tempfile::tempdir().unwrap();
        let store = TokenStore::new(Some(dir.path().join("oauth")));
        store.save(Storage::Instance, "abc", &token("one")).unwrap();
        store.save(Storage::Instance, "abc", &token("two")).unwrap();
        let path = dir.path().join("oauth/abc.json");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert_eq!(
            store.load(Storage::Instance, "abc").unwrap().access_token,
            "two"
        );
        let names: Vec<_> = std::fs::read_dir(dir.path().join("oauth"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["abc.json"], "no temporary file is left behind");
    }

    #[test]
    fn memory_tokens_never_touch_the_disk() {
        let dir = tempfile::tempdir().unwrap();
        let store = TokenStore::new(Some(dir.path().join("oauth")));
        store.save(Storage::Memory, "abc", &token("m")).unwrap();
        assert_eq!(
            store.load(Storage::Memory, "abc").unwrap().access_token,
            "m"
        );
        assert!(!dir.path().join("oauth").exists());
        store.remove(Storage::Memory, "abc");
        assert!(store.load(Storage::Memory, "abc").is_none());
    }

    #[test]
    fn debug_never_shows_a_token() {
        let printed = format!("{:?}", token("CANARY-access"));
        assert!(!printed.contains("CANARY"), "{printed}");
    }
}
