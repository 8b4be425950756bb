//! Paths of the guest WebAssembly components the host's tests and benches load, compiled from
//! source by this crate's `build.rs` (the pattern of wasmtime's `crates/test-programs/artifacts`).
//!
//! | rule | detail |
//! |------|--------|
//! | what is built | every member of the `plugins/` and `tests/plugins/` guest workspaces, `cargo build --release --locked --target wasm32-wasip2` (what `plugins/build` and `tests/plugins/build` do; a wasm32-wasip2 `cdylib` is already a component) |
//! | where | `<target dir>/wasm-guests` (`$PORTCULLIS_WASM_TARGET_DIR` overrides), outside the outer build's lock, shared with the shell scripts and the scaffold test; the `.wasm` files are then copied into `OUT_DIR` |
//! | when | only when a crate depending on this one is built: it is a dev-dependency of `portcullis`, so `cargo build -p portcullis` never compiles a guest; rebuilt when a guest's sources, `sdk/` or `wit/` change |
//! | failure | the build fails with cargo's output; a missing `wasm32-wasip2` target says how to add it |
//!
//! Use [`ALL`] to look a component up by crate name, or the per-crate constants
//! (`TEST_SECRET`, `AGE_SECRETS`, ...).

include!(concat!(env!("OUT_DIR"), "/artifacts.rs"));

/// The component built from guest crate `crate_name` (`test-secret`, `age-secrets`, ...), or `None`
/// when no guest crate has that name.
pub fn component(crate_name: &str) -> Option<&'static str> {
    ALL.iter()
        .find(|(name, _)| *name == crate_name)
        .map(|(_, path)| *path)
}
