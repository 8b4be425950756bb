//! The module graph is a DAG that follows the pipeline (issue #15, item 2): every `crate::<top>`
//! reference in `host/src` may only point to a module earlier in [`ORDER`]. Between crates
//! (`portcullis-net`, `-audit`, `-config`, `-plugin-host`, `-catalog`, then `portcullis`) Cargo
//! enforces the same rule; this test holds the modules inside the `portcullis` crate to it.
//!
//! | rule | a violation means |
//! |---|---|
//! | a module imports only from earlier tiers | a later stage's type or function is used by an earlier one: move the shared piece into a leaf or the earlier module, or let the later module implement a trait the earlier one defines (as `mcp` implements `catalog::McpLister`) |
//! | modules of the top tier may import each other, never both ways | a two-way import at the top |
//! | every top-level module is in [`ORDER`] | a new module: add it to [`ORDER`] and to the "Leaves and the one-way rule" section of `docs/architecture.md` |
//! | every [`PENDING`] edge still exists | an allowance is stale: delete it |
//!
//! Read from the source text (comments and string literals left out), so `use crate::{a, b}`
//! groups and paths written inline (`crate::a::f()`) both count; doc links do not.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The pipeline order of top-level modules, one tier per entry; an edge may only point to an
/// earlier tier. The first tier are the leaves, the last the doors and tools at the top.
const ORDER: &[&[&str]] = &[
    // The crates below this one, re-exported under their module names (`crate::config` is
    // `portcullis_config`); Cargo holds their own order, and none of them can name this crate.
    &["net", "redact", "audit", "config", "plugins", "catalog"],
    &["authn"],
    &["authz"],
    &["policy"],
    &["secret_sources"],
    &["oauth"],
    &["secrets"],
    &["upstream"],
    &["mcp"],
    &["call"],
    // The composition root: every capability's settings (the HTTP edge's too,
    // `app::server_settings`) and the runtime and its snapshots, for every door above.
    &["app"],
    &["server"],
    &["cli", "dev", "fuzzing", "plugins_scaffold"],
];

/// Edges allowed to point right while a change is in flight, each with the change that removes
/// it. Empty on main.
const PENDING: &[(&str, &str, &str)] = &[];

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|x| x == "rs") {
            out.push(path);
        }
    }
}

/// The source with comments removed and string and char literals blanked (newlines kept).
fn code_only(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < b.len() {
        let rest = &text[i..];
        if rest.starts_with("//") {
            i += rest.find('\n').unwrap_or(rest.len());
        } else if rest.starts_with("/*") {
            let end = rest.find("*/").map_or(rest.len(), |e| e + 2);
            out.extend(rest[..end].chars().filter(|&c| c == '\n'));
            i += end;
        } else if let Some(len) = literal_len(rest) {
            out.extend(rest[..len].chars().filter(|&c| c == '\n'));
            out.push_str("\"\"");
            i += len;
        } else {
            let c = rest.chars().next().expect("non-empty");
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

/// The length of the string, raw string or char literal `s` starts with, if any.
fn literal_len(s: &str) -> Option<usize> {
    let raw = s.strip_prefix("br").or_else(|| s.strip_prefix('r'));
    if let Some(after) = raw {
        let hashes = after.bytes().take_while(|&c| c == b'#').count();
        if after.as_bytes().get(hashes) == Some(&b'"') {
            let close = format!("\"{}", "#".repeat(hashes));
            let start = s.len() - after.len() + hashes + 1;
            return Some(start + s[start..].find(&close)? + close.len());
        }
    }
    let body = s.strip_prefix('b').unwrap_or(s);
    let prefix = s.len() - body.len();
    match body.as_bytes().first()? {
        b'"' => {
            let mut j = 1;
            while j < body.len() {
                match body.as_bytes()[j] {
                    b'\\' => j += 2,
                    b'"' => return Some(prefix + j + 1),
                    _ => j += 1,
                }
            }
            None
        }
        // A char literal (`'x'`, `'\n'`, `'"'`), not a lifetime (`'a`).
        b'\'' if body.as_bytes().get(1) == Some(&b'\\') => {
            Some(prefix + 3 + body.get(3..)?.find('\'')? + 1)
        }
        b'\'' => {
            let c = body[1..].chars().next()?;
            let end = 1 + c.len_utf8();
            (body.as_bytes().get(end) == Some(&b'\'')).then_some(prefix + end + 1)
        }
        _ => None,
    }
}

fn ident_at(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..end]
}

/// The top-level module names each `crate::` path in `code` starts with.
fn crate_refs(code: &str) -> Vec<String> {
    let mut names = Vec::new();
    for (at, _) in code.match_indices("crate::") {
        let before = code[..at].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$') {
            continue;
        }
        let rest = code[at + "crate::".len()..].trim_start();
        if let Some(group) = rest.strip_prefix('{') {
            // `crate::{a::X, b, c::{d, e}}`: the first name of each item at depth 1.
            let mut depth = 1;
            let mut item_start = true;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 1 => break,
                    '}' => depth -= 1,
                    ',' if depth == 1 => item_start = true,
                    c if item_start && depth == 1 && !c.is_whitespace() => {
                        item_start = false;
                        names.push(ident_at(&group[i..]).to_owned());
                    }
                    _ => {}
                }
            }
        } else {
            names.push(ident_at(rest).to_owned());
        }
    }
    names.retain(|n| !n.is_empty() && n != "self");
    names
}

fn tier(module: &str) -> Option<usize> {
    ORDER.iter().position(|tier| tier.contains(&module))
}

/// `(from, to)` top-level modules, with the files the edge appears in.
type Edges = BTreeMap<(String, String), BTreeSet<String>>;

/// Every top-level module, and every edge between two of them.
fn edges() -> (BTreeSet<String>, Edges) {
    let src = src_dir();
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut modules = BTreeSet::new();
    let mut edges = Edges::new();
    for path in files {
        let rel = path.strip_prefix(&src).expect("under src");
        let first = rel.components().next().expect("a component");
        let top = first.as_os_str().to_string_lossy();
        let top = top.trim_end_matches(".rs").to_owned();
        if top == "lib" || top == "main" {
            continue;
        }
        modules.insert(top.clone());
        let text = std::fs::read_to_string(&path).expect("readable source");
        for target in crate_refs(&code_only(&text)) {
            if target != top {
                edges
                    .entry((top.clone(), target))
                    .or_default()
                    .insert(format!("host/src/{}", rel.display()));
            }
        }
    }
    (modules, edges)
}

/// Every rule of the module header, as a list of what breaks it.
fn violations() -> Vec<String> {
    let (modules, edges) = edges();
    violations_in(&modules, &edges)
}

/// [`violations`] of a given graph.
fn violations_in(modules: &BTreeSet<String>, edges: &Edges) -> Vec<String> {
    let mut problems = Vec::new();
    for module in modules {
        if tier(module).is_none() {
            problems.push(format!(
                "top-level module `{module}` is not in ORDER: add it to ORDER in \
                 host/tests/it/module_graph.rs and to \"Leaves and the one-way rule\" in \
                 docs/architecture.md"
            ));
        }
    }
    for ((from, to), files) in edges {
        let files = files.iter().cloned().collect::<Vec<_>>().join(", ");
        let (Some(a), Some(b)) = (tier(from), tier(to)) else {
            if modules.contains(to.as_str()) || tier(to).is_some() {
                continue; // reported above as a module missing from ORDER
            }
            problems.push(format!(
                "{files}: `crate::{to}` is neither a top-level module nor a crate re-exported \
                 under ORDER's first tier; name the module that holds it"
            ));
            continue;
        };
        if PENDING.iter().any(|(f, t, _)| f == from && t == to) {
            continue;
        }
        if b > a {
            problems.push(format!(
                "{files}: `{from}` (tier {a}) imports `{to}` (tier {b}); an edge may only point \
                 to an earlier tier of ORDER. Move the shared piece into a leaf or into \
                 `{from}`'s side, or let `{to}` implement a trait `{from}` defines"
            ));
        } else if b == a && edges.contains_key(&(to.clone(), from.clone())) {
            problems.push(format!(
                "{files}: `{from}` and `{to}` import each other; modules of one tier may \
                 import each other in one direction only"
            ));
        }
    }
    for (from, to, why) in PENDING {
        if !edges.contains_key(&(from.to_string(), to.to_string())) {
            problems.push(format!(
                "PENDING allows `{from}` -> `{to}` ({why}), but no such edge is left: delete \
                 the entry"
            ));
        }
    }
    problems
}

#[test]
fn top_level_modules_import_only_earlier_stages() {
    let problems = violations();
    assert!(
        problems.is_empty(),
        "the module graph breaks the one-way rule (see host/tests/it/module_graph.rs):\n{}",
        problems.join("\n")
    );
}

#[test]
fn a_back_edge_from_the_composition_root_to_a_door_is_reported() {
    let (modules, edges) = edges();
    for (from, to) in [("app", "server"), ("call", "app"), ("policy", "app")] {
        let mut with_back_edge = edges.clone();
        with_back_edge
            .entry((from.to_owned(), to.to_owned()))
            .or_default()
            .insert("host/src/example.rs".to_owned());
        let problems = violations_in(&modules, &with_back_edge);
        assert!(
            problems
                .iter()
                .any(|p| p.contains(&format!("`{from}` (tier"))
                    && p.contains(&format!("imports `{to}`"))),
            "{from} -> {to} not reported: {problems:?}"
        );
    }
}

#[test]
fn crate_paths_are_read_from_groups_and_inline_paths_but_not_comments_or_strings() {
    let code = code_only(
        "use crate::{net::client, redact, catalog::{A, B}};\n\
         // crate::server in a comment\n\
         /* crate::app */ let s = \"crate::mcp\"; let q = '\"';\n\
         let x = crate::audit::f(); macro($crate::cli); pub(crate) fn g() {}\n\
         let r = r#\"crate::call\"#;",
    );
    assert_eq!(
        crate_refs(&code),
        ["net", "redact", "catalog", "audit"],
        "{code}"
    );
}

/// `host/src/lib.rs` lines that make something public without saying who needs it: every
/// `pub mod` and `pub use` there ends with a `// <who>` comment (the binary, `tests/it`,
/// `benches`, `fuzz`), so the public surface stays a list someone chose (issue #15, item 4).
fn unexplained_public_items(lib_rs: &str) -> Vec<String> {
    lib_rs
        .lines()
        .enumerate()
        .filter(|(_, line)| line.starts_with("pub mod ") || line.starts_with("pub use "))
        .filter(|(_, line)| {
            line.split_once("//")
                .is_none_or(|(_, why)| why.trim().is_empty())
        })
        .map(|(i, line)| {
            format!(
                "host/src/lib.rs:{}: `{line}` is public without a reason. Declare it \
                 `pub(crate)` and re-export by name (`pub use module::Item; // who`) only what \
                 main.rs, tests/it, benches or fuzz use; or, if one of them needs the whole \
                 module, say which after it: `{line} // tests/it/x.rs: Y`",
                i + 1
            )
        })
        .collect()
}

#[test]
fn every_public_module_of_lib_rs_says_who_needs_it() {
    let lib_rs = std::fs::read_to_string(src_dir().join("lib.rs")).expect("lib.rs");
    let problems = unexplained_public_items(&lib_rs);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn a_public_module_without_a_reason_is_reported() {
    let lib_rs = "pub mod app; // binary\npub mod fresh;\npub(crate) mod inner;\n\
                  pub use a::b; //\npub use c::d; // benches/x.rs\n";
    let problems = unexplained_public_items(lib_rs);
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(
        problems[0].starts_with("host/src/lib.rs:2: `pub mod fresh;`"),
        "{problems:?}"
    );
    assert!(
        problems[1].starts_with("host/src/lib.rs:4: `pub use a::b; //`"),
        "{problems:?}"
    );
}
