//! On-disk cache of remote documents (contract 9.1).
//!
//! Layout: `<cache_dir>/<sha256(key)>.json` (metadata) and `.body`, each written to a temporary
//! file and renamed into place, so a crash never leaves a half-written entry. The key is
//! `GET:<url>`. An entry whose metadata is unreadable or whose body is missing, or does not
//! match the recorded sha256, is deleted and treated as absent (the refetch reports `refreshed`).
//! The cache only stores documents; the decision of when to use them lives in [`super::fetch`].

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Metadata stored next to a cached body.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Meta {
    /// Cache key.
    pub key: String,
    /// Document URL.
    pub url: String,
    /// `ETag` of the cached body.
    #[serde(default)]
    pub etag: Option<String>,
    /// `Last-Modified` of the cached body.
    #[serde(default)]
    pub last_modified: Option<String>,
    /// `Cache-Control` as received.
    #[serde(default)]
    pub cache_control: Option<String>,
    /// Unix seconds of the last fetch or revalidation.
    pub validated_at: i64,
    /// Unix seconds after which the entry must be revalidated (none = always revalidate).
    #[serde(default)]
    pub expires_at: Option<i64>,
    /// Status of the fetch that produced the body.
    pub status_code: u16,
    /// Hex sha256 of the body.
    pub body_sha256: String,
}

/// What a lookup found.
pub enum Lookup {
    /// A usable entry.
    Hit(Meta, Vec<u8>),
    /// Nothing cached.
    Absent,
    /// An entry existed but was damaged; it has been removed.
    Corrupt,
}

/// A cache directory.
pub struct Cache {
    dir: PathBuf,
}

impl Cache {
    /// A cache rooted at `dir` (created on first store).
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
        }
    }

    fn paths(&self, key: &str) -> (PathBuf, PathBuf) {
        let name = hex::encode(Sha256::digest(key.as_bytes()));
        (
            self.dir.join(format!("{name}.json")),
            self.dir.join(format!("{name}.body")),
        )
    }

    /// Read the entry for `key`.
    pub async fn load(&self, key: &str) -> Lookup {
        let (meta_path, body_path) = self.paths(key);
        let Ok(raw) = tokio::fs::read(&meta_path).await else {
            return Lookup::Absent;
        };
        let meta: Option<Meta> = serde_json::from_slice(&raw).ok();
        let body = tokio::fs::read(&body_path).await.ok();
        match (meta, body) {
            (Some(meta), Some(body))
                if meta.key == key && hex::encode(Sha256::digest(&body)) == meta.body_sha256 =>
            {
                Lookup::Hit(meta, body)
            }
            _ => {
                let _ = tokio::fs::remove_file(&meta_path).await;
                let _ = tokio::fs::remove_file(&body_path).await;
                Lookup::Corrupt
            }
        }
    }

    /// Store (or replace) the entry for `meta.key`. Body first, so metadata never points at a missing body.
    pub async fn store(&self, meta: &Meta, body: Option<&[u8]>) -> std::io::Result<()> {
        tokio::fs::create_dir_all(&self.dir).await?;
        let (meta_path, body_path) = self.paths(&meta.key);
        if let Some(body) = body {
            write_atomic(&body_path, body).await?;
        }
        let json = serde_json::to_vec_pretty(meta).map_err(std::io::Error::other)?;
        write_atomic(&meta_path, &json).await
    }
}

async fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".tmp{}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    tokio::fs::write(&tmp, bytes).await?;
    tokio::fs::rename(&tmp, path).await
}
