//! `portcullis plugin new`: every kind's scaffolded crate builds as a WebAssembly component and
//! its own unit tests pass natively, exactly as an author would run them.
//!
//! Slow (it compiles the SDK and the crates with cargo), so it shares the guest target dir with
//! the `portcullis-test-artifacts` build script (`$CARGO_TARGET_DIR/wasm-guests`), which has
//! already compiled the SDK and its dependencies for the example plugins. Needs the
//! `wasm32-wasip2` target (`rustup target add wasm32-wasip2`; the build script says so).

use std::path::{Path, PathBuf};
use std::process::Command;

use portcullis::plugins_scaffold::{scaffold, ScaffoldKind, SdkDependency};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .unwrap()
}

fn cargo(dir: &Path, args: &[&str], target_dir: &Path) {
    let output = Command::new(env!("CARGO"))
        .args(args)
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", target_dir)
        .output()
        .expect("cargo runs");
    assert!(
        output.status.success(),
        "cargo {args:?} in {} failed:\n{}",
        dir.display(),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn scaffolded_plugins_of_every_kind_build_as_components_and_pass_their_tests() {
    let work = tempfile::tempdir().unwrap();
    let sdk = SdkDependency::Path(repo_root().join("sdk"));
    let guests = Path::new(portcullis_test_artifacts::GUEST_TARGET_DIR);
    for kind in ScaffoldKind::ALL {
        let name = format!("scaffold-{kind}");
        let dir = work.path().join(&name);
        scaffold(kind, &name, &dir, &sdk).unwrap();

        cargo(
            &dir,
            &["build", "--release", "--target", "wasm32-wasip2"],
            guests,
        );
        let wasm = guests
            .join("wasm32-wasip2/release")
            .join(format!("{}.wasm", name.replace('-', "_")));
        let bytes = std::fs::read(&wasm).unwrap();
        // A component (layer 1), not a core module: `\0asm`, version 0x0d, layer 0x01.
        assert_eq!(
            &bytes[..8],
            b"\0asm\x0d\x00\x01\x00",
            "{} is not a component",
            wasm.display()
        );
        let exports = format!("portcullis:plugin/{kind}@0.1.0");
        assert!(
            bytes
                .windows(exports.len())
                .any(|window| window == exports.as_bytes()),
            "{} does not export {exports}",
            wasm.display()
        );

        cargo(&dir, &["test", "--quiet"], &guests.join("scaffold-native"));
    }
}
