//! Builds the guest workspaces (`plugins/`, `tests/plugins/`) for wasm32-wasip2 and writes
//! `artifacts.rs` (a constant per component) into `OUT_DIR`; see `src/lib.rs` for the rules.

use std::env;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "wasm32-wasip2";
/// The guest workspaces, relative to the repository root.
const WORKSPACES: [&str; 2] = ["plugins", "tests/plugins"];

fn main() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest_dir.join("../..").canonicalize().unwrap();
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").unwrap());
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let target_dir = guest_target_dir(&out_dir);

    println!("cargo:rerun-if-env-changed=PORTCULLIS_WASM_TARGET_DIR");
    for shared in ["sdk", "wit"] {
        println!("cargo:rerun-if-changed={}", root.join(shared).display());
    }
    require_target();

    let mut constants = String::new();
    let mut all = String::from(
        "/// Every guest component: (crate name, path).\npub const ALL: &[(&str, &str)] = &[\n",
    );
    for workspace in WORKSPACES {
        let dir = root.join(workspace);
        for file in ["Cargo.toml", "Cargo.lock"] {
            println!("cargo:rerun-if-changed={}", dir.join(file).display());
        }
        let status = Command::new(&cargo)
            .args(["build", "--release", "--locked", "--target", TARGET])
            .current_dir(&dir)
            .env("CARGO_TARGET_DIR", &target_dir)
            // The outer build's flags and clippy's wrapper are for the host crates, not the guests
            // (and would make every guest build differ from the shell scripts' and rebuild).
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .env_remove("RUSTC_WORKSPACE_WRAPPER")
            .status()
            .unwrap_or_else(|e| {
                panic!("cannot run cargo for the guests in {}: {e}", dir.display())
            });
        assert!(
            status.success(),
            "building the guest workspace {} for {TARGET} failed (cargo output above)",
            dir.display()
        );
        for name in members(&dir) {
            println!("cargo:rerun-if-changed={}", dir.join(&name).display());
            let file = format!("{}.wasm", name.replace('-', "_"));
            let built = target_dir.join(TARGET).join("release").join(&file);
            let copy = out_dir.join(&file);
            std::fs::copy(&built, &copy).unwrap_or_else(|e| {
                panic!(
                    "guest {name}: cannot copy {} to {}: {e}",
                    built.display(),
                    copy.display()
                )
            });
            let path = copy.to_str().expect("OUT_DIR is UTF-8");
            let constant = name.replace('-', "_").to_uppercase();
            writeln!(constants, "/// `{workspace}/{name}`, built for {TARGET}.").unwrap();
            writeln!(constants, "pub const {constant}: &str = {path:?};").unwrap();
            writeln!(all, "    ({name:?}, {constant}),").unwrap();
        }
    }
    all.push_str("];\n");
    let target_dir_text = target_dir.to_str().expect("target dir is UTF-8");
    writeln!(
        constants,
        "/// The target dir the guests build in (shared with `plugins/build` and the scaffold test).\npub const GUEST_TARGET_DIR: &str = {target_dir_text:?};\n{all}"
    )
    .unwrap();
    std::fs::write(out_dir.join("artifacts.rs"), constants).unwrap();
}

/// `$PORTCULLIS_WASM_TARGET_DIR`, else `wasm-guests` inside the outer target dir (the first
/// ancestor of `OUT_DIR` that cargo tagged with `CACHEDIR.TAG`): a different directory than the
/// outer build's, so the nested cargo never waits on the lock the outer one holds.
fn guest_target_dir(out_dir: &Path) -> PathBuf {
    if let Some(dir) = env::var_os("PORTCULLIS_WASM_TARGET_DIR") {
        return PathBuf::from(dir);
    }
    let target = out_dir
        .ancestors()
        .find(|dir| dir.join("CACHEDIR.TAG").is_file())
        .or_else(|| out_dir.ancestors().nth(4))
        .expect("OUT_DIR is <target>/<profile>/build/<pkg>/out");
    target.join("wasm-guests")
}

/// Fails with the fix when the wasm32-wasip2 standard library is not installed.
fn require_target() {
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let libdir = Command::new(rustc)
        .args(["--print", "target-libdir", "--target", TARGET])
        .output()
        .ok()
        .filter(|output| output.status.success())
        .map(|output| PathBuf::from(String::from_utf8_lossy(&output.stdout).trim()));
    if !libdir.is_some_and(|dir| dir.is_dir()) {
        panic!(
            "the {TARGET} Rust target is missing; the host's tests load guest components built \
             for it. Add it with: rustup target add {TARGET}"
        );
    }
}

/// The package names of a guest workspace's members (`members = [...]` in its Cargo.toml, each
/// directory named as its package, as in both guest workspaces).
fn members(workspace: &Path) -> Vec<String> {
    let manifest = std::fs::read_to_string(workspace.join("Cargo.toml")).unwrap();
    let line = manifest
        .lines()
        .find(|line| line.trim_start().starts_with("members"))
        .unwrap_or_else(|| panic!("no members line in {}/Cargo.toml", workspace.display()));
    let list = line.split_once('=').unwrap().1;
    let members: Vec<String> = list
        .split('"')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect();
    for name in &members {
        let package = std::fs::read_to_string(workspace.join(name).join("Cargo.toml")).unwrap();
        assert!(
            package.contains(&format!("name = \"{name}\"")),
            "guest {}/{name}: the package must be named as its directory",
            workspace.display()
        );
    }
    members
}
