//! Opt-in pinning of OpenAPI documents fetched by URL (`sources.<id>.pin: true`): a changed
//! document does not change the catalog until an operator accepts it.
//!
//! | situation at a build | tools built from | event (once) |
//! |---|---|---|
//! | first fetch | the fetched document, now pinned | `pinned` |
//! | fetched digest = pin | the fetched document | — (`accepted` once after `portcullis openapi accept`) |
//! | fetched digest ≠ pin | **the last accepted document** (the catalog keeps its tools), with a warning on the source | `changed` with the digests and a diff, once per new digest |
//!
//! Files under the directory the runtime gives ([`super::BuildOptions::document_pins`],
//! `<stateDir>/openapi-pins`), per source `<sha256 of the id>`: `.json` (the record),
//! `.accepted` (the accepted document's bytes), `.pending` (the changed one, waiting). Each is
//! written to a temporary file (mode 0600), fsynced and renamed. Failure mode: fail closed. A
//! record or accepted document that cannot be read, or whose digest does not match, and a
//! write that fails, fail the source with the path; a build without the directory (the CLI's
//! one-shot commands) does not pin.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// The directory under the instance state dir that holds document pins.
pub const DOCUMENT_PIN_DIR: &str = "openapi-pins";

/// A source's pin record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Record {
    source_id: String,
    /// The URL the document was fetched from.
    uri: String,
    /// `sha256:<hex>` of the accepted document's bytes.
    digest: String,
    /// RFC 3339 time it was accepted.
    at: String,
    /// Accepted by the CLI and not yet audited.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    unannounced: bool,
    /// The digest of the changed document waiting in `.pending`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pending: Option<String>,
}

/// What a build did to a document pin, for the audit log.
#[derive(Debug, Clone, PartialEq)]
pub struct DocumentPinEvent {
    /// The source.
    pub source_id: String,
    /// `pinned`, `changed` or `accepted`.
    pub kind: &'static str,
    /// `sourceId`, `uri`, `digest` and, for a change, `pinnedDigest`, `changes`.
    pub detail: Value,
}

/// A pinned document checked: the bytes to build from, the event and the warning, if any.
pub(crate) struct Checked {
    pub(crate) bytes: Vec<u8>,
    pub(crate) event: Option<DocumentPinEvent>,
    pub(crate) warning: Option<String>,
}

fn digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

fn base(dir: &Path, source_id: &str) -> PathBuf {
    dir.join(hex::encode(Sha256::digest(source_id.as_bytes())))
}

/// The record file of a source (watched: an accept rebuilds the catalog).
pub fn record_file(dir: &Path, source_id: &str) -> PathBuf {
    base(dir, source_id).with_extension("json")
}

/// Check `fetched` (from `uri`) against the pin of `source_id` under `dir`.
pub(crate) fn check(
    dir: &Path,
    source_id: &str,
    uri: &str,
    fetched: Vec<u8>,
) -> Result<Checked, String> {
    let base = base(dir, source_id);
    let (record_path, accepted_path, pending_path) = (
        base.with_extension("json"),
        base.with_extension("accepted"),
        base.with_extension("pending"),
    );
    let fetched_digest = digest(&fetched);
    let event = |kind, detail: Value| {
        let mut detail = detail;
        detail["sourceId"] = source_id.into();
        detail["uri"] = uri.into();
        Some(DocumentPinEvent {
            source_id: source_id.to_owned(),
            kind,
            detail,
        })
    };
    let Some(mut record) = read_record(&record_path, source_id)? else {
        write(&accepted_path, &fetched)?;
        let record = Record {
            source_id: source_id.to_owned(),
            uri: uri.to_owned(),
            digest: fetched_digest.clone(),
            at: now(),
            unannounced: false,
            pending: None,
        };
        write_record(&record_path, &record)?;
        return Ok(Checked {
            bytes: fetched,
            event: event("pinned", json!({"digest": fetched_digest})),
            warning: None,
        });
    };
    if record.digest == fetched_digest {
        let announce = std::mem::take(&mut record.unannounced);
        let reverted = record.pending.take().is_some();
        if announce || reverted {
            write_record(&record_path, &record)?;
            let _ = std::fs::remove_file(&pending_path);
        }
        return Ok(Checked {
            bytes: fetched,
            event: announce
                .then(|| event("accepted", json!({"digest": fetched_digest})))
                .flatten(),
            warning: None,
        });
    }
    // Changed: build from the accepted document, which must be the one the record names.
    let accepted = std::fs::read(&accepted_path).map_err(|e| {
        format!(
            "the accepted document of pinned source {source_id:?} ({}) cannot be read: {e}",
            accepted_path.display()
        )
    })?;
    if digest(&accepted) != record.digest {
        return Err(format!(
            "the accepted document of pinned source {source_id:?} ({}) does not match its pin {}",
            accepted_path.display(),
            record.digest
        ));
    }
    let warning = format!(
        "the document at {uri} changed since it was pinned ({} -> {fetched_digest}); the catalog keeps the accepted document until an operator accepts the new one: portcullis openapi accept {source_id}",
        record.digest
    );
    let mut changed = None;
    if record.pending.as_deref() != Some(fetched_digest.as_str()) {
        let (changes, omitted) = match (
            super::openapi::parse_tree(&accepted),
            super::openapi::parse_tree(&fetched),
        ) {
            (Ok(before), Ok(after)) => super::pin_diff::diff(&before, &after),
            _ => (Vec::new(), 0),
        };
        write(&pending_path, &fetched)?;
        record.pending = Some(fetched_digest.clone());
        write_record(&record_path, &record)?;
        let mut detail =
            json!({"digest": fetched_digest, "pinnedDigest": record.digest, "changes": changes});
        if omitted > 0 {
            detail["omittedChanges"] = omitted.into();
        }
        changed = event("changed", detail);
    }
    Ok(Checked {
        bytes: accepted,
        event: changed,
        warning: Some(warning),
    })
}

/// `portcullis openapi accept`: make the waiting document of `source_id` the accepted one.
/// Returns the previous and the new digest, or `None` when nothing is waiting.
pub fn accept(dir: &Path, source_id: &str) -> Result<Option<(String, String)>, String> {
    let base = base(dir, source_id);
    let record_path = base.with_extension("json");
    let mut record = read_record(&record_path, source_id)?.ok_or_else(|| {
        format!(
            "no document pin recorded for source {source_id:?} in {} (is `pin: true` set, and has a runtime with this state directory built it?)",
            dir.display()
        )
    })?;
    let Some(pending) = record.pending.take() else {
        return Ok(None);
    };
    let pending_path = base.with_extension("pending");
    let bytes =
        std::fs::read(&pending_path).map_err(|e| format!("{}: {e}", pending_path.display()))?;
    if digest(&bytes) != pending {
        return Err(format!(
            "{} does not match the waiting digest {pending}; let the runtime fetch the document again",
            pending_path.display()
        ));
    }
    write(&base.with_extension("accepted"), &bytes)?;
    let previous = std::mem::replace(&mut record.digest, pending.clone());
    record.unannounced = true;
    record.at = now();
    write_record(&record_path, &record)?;
    let _ = std::fs::remove_file(&pending_path);
    Ok(Some((previous, pending)))
}

fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn read_record(path: &Path, source_id: &str) -> Result<Option<Record>, String> {
    let unreadable = |why: String| {
        format!(
            "the document pin of source {source_id:?} ({}) cannot be read ({why}); fix or remove it (removing it pins the next fetch)",
            path.display()
        )
    };
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(unreadable(e.to_string())),
    };
    let record: Record = serde_json::from_slice(&bytes).map_err(|e| unreadable(e.to_string()))?;
    if record.source_id != source_id {
        return Err(unreadable(format!(
            "it holds the pin of source {:?}",
            record.source_id
        )));
    }
    Ok(Some(record))
}

fn write_record(path: &Path, record: &Record) -> Result<(), String> {
    write(path, &serde_json::to_vec_pretty(record).unwrap_or_default())
}

/// tmp (0600) + fsync + rename + fsync of the directory.
fn write(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    let result = (|| {
        std::fs::create_dir_all(dir)?;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(|e| format!("document pin {} cannot be written: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_document_keeps_the_accepted_one_until_accepted() {
        let dir = tempfile::tempdir().unwrap();
        let dir = dir.path();
        let v1 = br#"{"openapi":"3.0.3","info":{"title":"A","version":"1"},"paths":{}}"#.to_vec();
        let v2 = br#"{"openapi":"3.0.3","info":{"title":"A","version":"2"},"paths":{}}"#.to_vec();
        let first = check(dir, "api", "https://x/o.json", v1.clone()).unwrap();
        assert_eq!(first.event.unwrap().kind, "pinned");
        let changed = check(dir, "api", "https://x/o.json", v2.clone()).unwrap();
        assert_eq!(changed.bytes, v1, "the accepted document is built");
        let event = changed.event.unwrap();
        assert_eq!(event.kind, "changed");
        assert_eq!(
            event.detail["changes"],
            json!([{"path": "/info/version", "before": "1", "after": "2"}])
        );
        assert!(changed
            .warning
            .unwrap()
            .contains("portcullis openapi accept api"));
        // Once per change.
        assert!(check(dir, "api", "https://x/o.json", v2.clone())
            .unwrap()
            .event
            .is_none());
        let (old, new) = accept(dir, "api").unwrap().unwrap();
        assert_eq!((old, new.clone()), (digest(&v1), digest(&v2)));
        assert_eq!(accept(dir, "api").unwrap(), None, "nothing left waiting");
        let served = check(dir, "api", "https://x/o.json", v2.clone()).unwrap();
        assert_eq!(served.bytes, v2);
        assert_eq!(served.event.unwrap().kind, "accepted");
        assert!(check(dir, "api", "https://x/o.json", v2)
            .unwrap()
            .event
            .is_none());
    }

    #[test]
    fn a_tampered_accepted_document_or_record_fails_closed() {
        let dir = tempfile::tempdir().unwrap();
        let dir = dir.path();
        check(dir, "api", "https://x/o.json", b"{}".to_vec()).unwrap();
        std::fs::write(base(dir, "api").with_extension("accepted"), b"{\"x\":1}").unwrap();
        let err = check(dir, "api", "https://x/o.json", b"[]".to_vec())
            .err()
            .unwrap();
        assert!(err.contains("does not match its pin"), "{err}");
        std::fs::write(record_file(dir, "api"), b"nope").unwrap();
        let err = check(dir, "api", "https://x/o.json", b"{}".to_vec())
            .err()
            .unwrap();
        assert!(err.contains("cannot be read"), "{err}");
    }
}
