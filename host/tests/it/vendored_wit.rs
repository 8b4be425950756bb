//! The SDK vendors the WIT it binds (`sdk/wit/portcullis-plugin@<version>/`) so the published
//! crate builds on its own; the repository's `wit/portcullis-plugin@<version>/` stays the one
//! source of truth, which the host binds. This test holds every vendored version byte for byte to
//! its canonical directory: same file names, same contents. It lives with the host's tests because
//! it needs the repository checkout (the SDK's published package has no `../wit`).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

/// `file name -> bytes` of the `.wit` files directly in `dir`.
fn wit_files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let entries = fs::read_dir(dir).unwrap_or_else(|error| panic!("{}: {error}", dir.display()));
    entries
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "wit"))
        .map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, fs::read(&path).unwrap())
        })
        .collect()
}

/// The vendored package directories: `sdk/wit/portcullis-plugin@*`.
fn vendored_versions(sdk_wit: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = fs::read_dir(sdk_wit)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_dir())
        .collect();
    dirs.sort();
    dirs
}

#[test]
fn vendored_wit_is_identical_to_the_canonical_wit() {
    let sdk = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sdk");
    let versions = vendored_versions(&sdk.join("wit"));
    assert!(
        !versions.is_empty(),
        "sdk/wit/ vendors no WIT package directory (portcullis-plugin@<version>)"
    );
    for vendored in versions {
        let name = vendored.file_name().unwrap().to_string_lossy().into_owned();
        let canonical = sdk.join("../wit").join(&name);
        let resync = format!(
            "resync the SDK's copy from the canonical WIT: \
             rm sdk/wit/{name}/*.wit && cp wit/{name}/*.wit sdk/wit/{name}/"
        );
        assert!(
            canonical.is_dir(),
            "sdk/wit/{name} has no canonical wit/{name}; the SDK must bind a package the host has"
        );
        let (vendored, canonical) = (wit_files(&vendored), wit_files(&canonical));
        assert_eq!(
            vendored.keys().collect::<Vec<_>>(),
            canonical.keys().collect::<Vec<_>>(),
            "sdk/wit/{name} and wit/{name} hold different files; {resync}"
        );
        for (file, bytes) in &vendored {
            assert!(
                *bytes == canonical[file],
                "sdk/wit/{name}/{file} differs from wit/{name}/{file}; {resync}"
            );
        }
    }
}
