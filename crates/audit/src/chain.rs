//! Tamper evidence: the keyed hash chain over audit lines, and the key that drives it.
//!
//! Rule: every line is `{"seq":N,...,"chain":"<64 hex>"}` where
//! `chain = hex(HMAC-SHA256(key, prev_chain || body))`, `body` is the exact line bytes with the
//! `,"chain":"..."` member removed, and `prev_chain` is the hex chain of the previous line (the
//! empty string for the first line of a log). The chain is computed over the bytes as written,
//! never over a re-serialisation, so any flipped bit changes the MAC or breaks the line shape.
//! Checkpoints are MAC'd the same way with the `checkpoint:` domain prefix.
//!
//! Key: 32 random bytes in a file outside the audit directory (default `<state root>/audit.key`),
//! created 0600 when missing. Failure mode: an unreadable key, a key shorter than 32 bytes or a
//! key inside the audit directory refuses start; a reader without the key cannot forge records.

use std::fmt;
use std::path::{Path, PathBuf};

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// Length of the random key created when the key file is missing.
pub const KEY_LEN: usize = 32;
const SUFFIX_HEAD: &[u8] = b",\"chain\":\"";
const HEX_LEN: usize = 64;
/// `,"chain":"` + 64 hex + `"}`.
const SUFFIX_LEN: usize = SUFFIX_HEAD.len() + HEX_LEN + 2;

/// The HMAC key. `Debug` never shows the bytes.
#[derive(Clone)]
pub struct AuditKey(Vec<u8>);

impl fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AuditKey(<redacted>)")
    }
}

/// The key file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Reading, creating or generating failed.
    #[error("audit key {path}: {reason}")]
    Io {
        /// The key file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The key would sit next to the records it protects.
    #[error("audit key {key} is inside the audit directory {dir}; keep it elsewhere")]
    InsideAuditDir {
        /// The key file.
        key: PathBuf,
        /// The audit directory.
        dir: PathBuf,
    },
}

impl AuditKey {
    /// A key from raw bytes (tests and tools).
    pub fn from_bytes(bytes: &[u8]) -> Self {
        Self(bytes.to_vec())
    }

    /// Load the key, creating it (0600, 32 random bytes) when missing. Refuses a key file
    /// inside `audit_dir`.
    pub fn load_or_create(path: &Path, audit_dir: &Path) -> Result<Self, KeyError> {
        let io = |reason: String| KeyError::Io {
            path: path.to_owned(),
            reason,
        };
        let key_dir = path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(key_dir).map_err(|e| io(e.to_string()))?;
        let key_dir = key_dir.canonicalize().map_err(|e| io(e.to_string()))?;
        if let Ok(audit_dir) = audit_dir.canonicalize() {
            if key_dir.starts_with(&audit_dir) {
                return Err(KeyError::InsideAuditDir {
                    key: path.to_owned(),
                    dir: audit_dir,
                });
            }
        }
        match std::fs::read(path) {
            Ok(bytes) if bytes.len() >= KEY_LEN => return Ok(Self(bytes)),
            Ok(bytes) => {
                return Err(io(format!(
                    "{} bytes; need at least {KEY_LEN}",
                    bytes.len()
                )))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(e.to_string())),
        }
        let mut bytes = vec![0u8; KEY_LEN];
        getrandom::fill(&mut bytes).map_err(|e| io(format!("no randomness: {e}")))?;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let written = options.open(path).and_then(|mut file| {
            use std::io::Write;
            file.write_all(&bytes)?;
            file.sync_all()
        });
        match written {
            Ok(()) => Ok(Self(bytes)),
            // Another process created it first: use theirs.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Self::load(path),
            Err(e) => Err(io(e.to_string())),
        }
    }

    /// Load an existing key (verification).
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        let bytes = std::fs::read(path).map_err(|e| KeyError::Io {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        if bytes.len() < KEY_LEN {
            return Err(KeyError::Io {
                path: path.to_owned(),
                reason: format!("{} bytes; need at least {KEY_LEN}", bytes.len()),
            });
        }
        Ok(Self(bytes))
    }

    /// `hex(HMAC(key, parts...))`.
    pub fn mac_hex(&self, parts: &[&[u8]]) -> String {
        // HMAC accepts keys of any length, so this cannot fail.
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        for part in parts {
            mac.update(part);
        }
        hex::encode(mac.finalize().into_bytes())
    }

    /// Seal a serialised record (`{...}` without a chain) into a line ending in `\n`.
    pub fn seal(&self, prev_chain: &str, body: &[u8]) -> (Vec<u8>, String) {
        let mut line = Vec::with_capacity(body.len() + SUFFIX_LEN + 1);
        let chain = self.seal_into(prev_chain, body, &mut line);
        (line, chain)
    }

    /// [`Self::seal`], appending the line to `out` (a batch being built); returns the chain.
    pub fn seal_into(&self, prev_chain: &str, body: &[u8], out: &mut Vec<u8>) -> String {
        let chain = self.mac_hex(&[prev_chain.as_bytes(), body]);
        let open = body.strip_suffix(b"}").unwrap_or(body);
        out.reserve(open.len() + SUFFIX_LEN + 1);
        out.extend_from_slice(open);
        out.extend_from_slice(SUFFIX_HEAD);
        out.extend_from_slice(chain.as_bytes());
        out.extend_from_slice(b"\"}\n");
        chain
    }
}

/// A line split into the body the MAC covers and the chain it claims.
pub struct Unsealed<'a> {
    /// The record without its chain member.
    pub body: Vec<u8>,
    /// The claimed chain (64 hex characters).
    pub chain: &'a str,
}

/// Split a line (without its newline); `None` when it does not end in a chain member.
pub fn unseal(line: &[u8]) -> Option<Unsealed<'_>> {
    if line.len() < SUFFIX_LEN + 1 || !line.ends_with(b"\"}") {
        return None;
    }
    let start = line.len() - SUFFIX_LEN;
    if &line[start..start + SUFFIX_HEAD.len()] != SUFFIX_HEAD {
        return None;
    }
    let chain = std::str::from_utf8(&line[start + SUFFIX_HEAD.len()..line.len() - 2]).ok()?;
    if !chain.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut body = line[..start].to_vec();
    body.push(b'}');
    Some(Unsealed { body, chain })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231_case_2() {
        let key = AuditKey::from_bytes(b"Jefe");
        assert_eq!(
            key.mac_hex(&[b"what do ya want ", b"for nothing?"]),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn sealed_line_unseals_to_the_same_body_and_chain() {
        let key = AuditKey::from_bytes(&[7; 32]);
        let (line, chain) = key.seal("", br#"{"seq":1,"a":"b"}"#);
        assert!(line.ends_with(b"\"}\n"));
        let unsealed = unseal(&line[..line.len() - 1]).unwrap();
        assert_eq!(unsealed.body, br#"{"seq":1,"a":"b"}"#);
        assert_eq!(unsealed.chain, chain);
    }

    #[test]
    fn key_debug_is_redacted_and_key_inside_audit_dir_is_refused() {
        assert_eq!(
            format!("{:?}", AuditKey::from_bytes(b"secret")),
            "AuditKey(<redacted>)"
        );
        let dir = tempfile::tempdir().unwrap();
        let err = AuditKey::load_or_create(&dir.path().join("k/audit.key"), dir.path());
        assert!(
            matches!(err, Err(KeyError::InsideAuditDir { .. })),
            "{err:?}"
        );
        let audit_dir = dir.path().join("audit");
        std::fs::create_dir_all(&audit_dir).unwrap();
        let key_path = dir.path().join("audit.key");
        let key = AuditKey::load_or_create(&key_path, &audit_dir).unwrap();
        assert_eq!(key.0.len(), KEY_LEN);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&key_path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert_eq!(AuditKey::load(&key_path).unwrap().0, key.0);
    }
}
