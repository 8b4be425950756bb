//! `docs/architecture.md` names every top-level module of every workspace crate, so a newcomer
//! finds each one from the doc. Generic over the root workspace's members (read from the root
//! `Cargo.toml`), so it keeps holding when crates are split or added.
//!
//! A top-level module is `<crate>/src/<name>.rs` (other than `lib.rs` and `main.rs`) or a
//! directory `<crate>/src/<name>/` with a `mod.rs`; the doc names it as `` `<name>.rs` `` or
//! `` `<name>/` `` in backticks (a path inside the directory, `` `<name>/x.rs` ``, counts too).

use std::path::{Path, PathBuf};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .unwrap()
}

/// The member directories of the root workspace: the `members = [...]` list (one line or
/// several), with a trailing `/*` expanded to every subdirectory holding a `Cargo.toml`.
fn workspace_members(root: &Path) -> Vec<PathBuf> {
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    let start = manifest
        .find("\nmembers")
        .expect("the root Cargo.toml lists its workspace members");
    let list = &manifest[start..];
    let list = &list[list.find('[').unwrap() + 1..list.find(']').unwrap()];
    let mut members = Vec::new();
    for pattern in list.split('"').skip(1).step_by(2) {
        match pattern.strip_suffix("/*") {
            Some(parent) => {
                for entry in std::fs::read_dir(root.join(parent)).unwrap() {
                    let dir = entry.unwrap().path();
                    if dir.join("Cargo.toml").is_file() {
                        members.push(dir);
                    }
                }
            }
            None => members.push(root.join(pattern)),
        }
    }
    members
}

/// `(name, what the doc must contain)` for each top-level module of the crate in `member`.
fn top_level_modules(member: &Path) -> Vec<(String, String)> {
    let mut modules = Vec::new();
    let Ok(entries) = std::fs::read_dir(member.join("src")) else {
        return modules;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if path.is_dir() && path.join("mod.rs").is_file() {
            modules.push((name.clone(), format!("`{name}/")));
        } else if let Some(stem) = name.strip_suffix(".rs") {
            if stem != "lib" && stem != "main" {
                modules.push((stem.to_owned(), format!("`{name}`")));
            }
        }
    }
    modules
}

#[test]
fn architecture_doc_names_every_top_level_module_of_every_workspace_crate() {
    let root = repo_root();
    let doc = std::fs::read_to_string(root.join("docs/architecture.md")).unwrap();
    let members = workspace_members(&root);
    assert!(
        members.iter().any(|m| m.ends_with("host")),
        "the member list read from the root Cargo.toml looks wrong: {members:?}"
    );
    let mut missing = Vec::new();
    for member in &members {
        for (name, named_as) in top_level_modules(member) {
            if !doc.contains(&named_as) {
                let crate_dir = member.strip_prefix(&root).unwrap_or(member);
                let hint = if named_as.ends_with('/') {
                    format!("{named_as}`")
                } else {
                    named_as
                };
                missing.push(format!(
                    "{}/src: module `{name}` (name it as {hint})",
                    crate_dir.display()
                ));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "docs/architecture.md does not name these top-level modules; add a row (or a mention in \
         backticks, e.g. `authn/` for a directory or `authz.rs` for a file) to the module table \
         of the crate's section:\n  {}",
        missing.join("\n  ")
    );
}
