//! Prewarmed plugin instances (`plugins.<name>.prewarm`): prepared ahead of calls on a worker
//! thread, yet still one call per instance, never older than `maxAgeMs`, and gone with the plugin.

use super::support;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use portcullis::config::Config;
use portcullis::plugins::wit::{RequestContext, SecretRequest};
use portcullis::plugins::{LoadedPlugin, PluginSet};
use serde_json::{json, Value};
use support::plugin_component;

fn load(name: &str, prewarm: Value) -> (PluginSet, Arc<LoadedPlugin>) {
    let config: Config = serde_json::from_value(json!({
        "plugins": { name: { "path": plugin_component("test-secret"), "prewarm": prewarm } }
    }))
    .unwrap();
    let set = PluginSet::load(&config, Path::new("/")).unwrap();
    let plugin = set.get(name).unwrap().clone();
    (set, plugin)
}

fn request(reference: &str, request_id: &str) -> SecretRequest {
    SecretRequest {
        reference: reference.into(),
        service: String::new(),
        scheme: String::new(),
        tool_id: String::new(),
        context: RequestContext {
            request_id: request_id.into(),
            principal: None,
        },
    }
}

fn resolve(plugin: &LoadedPlugin, reference: &str) -> String {
    plugin
        .resolve_secret(&request(reference, "prewarm-test"))
        .unwrap()
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "timed out: {what}"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

#[test]
fn every_call_gets_an_instance_that_served_no_other_call() {
    for (name, prewarm) in [
        ("calls-off", json!({ "instances": 0 })),
        ("calls-two", json!({ "instances": 2 })),
        ("calls-default", json!({})),
    ] {
        let (_set, plugin) = load(name, prewarm);
        for _ in 0..20 {
            assert_eq!(resolve(&plugin, "calls"), "1", "{name}");
        }
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..10 {
                        assert_eq!(resolve(&plugin, "calls"), "1", "{name}, concurrent");
                    }
                });
            }
        });
    }
}

#[test]
fn the_queue_fills_in_the_background_and_a_call_uses_a_prepared_instance() {
    let (_set, plugin) = load("fills", json!({ "instances": 3 }));
    wait_for("three prepared instances", || plugin.prewarmed() == 3);
    std::thread::sleep(Duration::from_millis(30));
    let called_at = now_ms();
    let init_at: u64 = resolve(&plugin, "init-stamp").parse().unwrap();
    assert!(
        init_at + 20 <= called_at,
        "init ran ahead of the call: init {init_at}, call {called_at}"
    );
}

#[test]
fn instances_older_than_max_age_are_retired_unused() {
    let (_set, plugin) = load("ages", json!({ "instances": 2, "maxAgeMs": 50 }));
    wait_for("two prepared instances", || plugin.prewarmed() == 2);
    std::thread::sleep(Duration::from_millis(200));
    let called_at = now_ms();
    let init_at: u64 = resolve(&plugin, "init-stamp").parse().unwrap();
    assert!(
        init_at + 50 >= called_at,
        "a stale instance was used: init {init_at}, call {called_at}"
    );
    // The stale ones went to the worker, which prepares fresh ones.
    wait_for("a refilled queue", || plugin.prewarmed() == 2);
}

#[test]
fn used_instances_are_dropped_soon_even_when_no_call_follows() {
    let (_set, plugin) = load("sweeps", json!({ "instances": 4 }));
    wait_for("four prepared instances", || plugin.prewarmed() == 4);
    // One call leaves the queue more than half full, so it does not wake the worker.
    assert_eq!(resolve(&plugin, "literal:z"), "z");
    assert_eq!(plugin.prewarm_retired(), 1);
    wait_for("the used instance to be dropped", || {
        plugin.prewarm_retired() == 0 && plugin.prewarmed() == 4
    });
}

#[test]
fn without_prewarm_there_is_no_queue_and_no_worker() {
    let (_set, plugin) = load("cold", json!({ "instances": 0 }));
    assert_eq!(resolve(&plugin, "literal:x"), "x");
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(plugin.prewarmed(), 0);
    assert_eq!(warm_threads("warm-cold"), 0);
}

/// Threads of this process whose name starts with `prefix` (Linux keeps 15 bytes of a name).
fn warm_threads(prefix: &str) -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .filter(|comm| comm.trim_end().starts_with(prefix))
        .count()
}

#[test]
fn the_worker_thread_and_its_instances_go_with_the_plugin() {
    let (set, plugin) = load("dropme", json!({ "instances": 2 }));
    wait_for("two prepared instances", || plugin.prewarmed() == 2);
    assert_eq!(warm_threads("warm-dropme"), 1);
    assert_eq!(resolve(&plugin, "literal:y"), "y");
    drop(plugin);
    drop(set);
    wait_for("the worker to exit", || warm_threads("warm-dropme") == 0);
}

#[test]
fn prewarm_settings_out_of_range_are_config_errors_with_their_json_path() {
    let config = json!({
        "cli": "1.0.0", "mode": { "default": "discover" }, "runtime": {},
        "plugins": { "p": { "path": "p.wasm", "prewarm": { "instances": 17, "maxAgeMs": 0 } } }
    });
    let error = support::config_load_error(&config);
    for expected in ["plugins.p.prewarm.instances", "plugins.p.prewarm.maxAgeMs"] {
        assert!(error.contains(expected), "{expected} not in {error}");
    }
}

#[test]
fn a_plugin_whose_init_starts_failing_fails_closed_and_is_retried_on_calls_not_on_a_timer() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("fail-init");
    let config: Config = serde_json::from_value(json!({
        "plugins": { "flaky": {
            "path": plugin_component("test-secret"),
            "grants": { "files": [dir.path()] },
            "config": { "failIfExists": marker },
            "prewarm": { "instances": 2, "maxAgeMs": 50 }
        } }
    }))
    .unwrap();
    let set = PluginSet::load(&config, Path::new("/")).unwrap();
    let plugin = set.get("flaky").unwrap().clone();
    wait_for("two prepared instances", || plugin.prewarmed() == 2);

    // init now fails; the prepared instances age out, so the call runs init itself and fails.
    std::fs::write(&marker, "").unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let error = plugin
        .resolve_secret(&request("literal:v", ""))
        .unwrap_err()
        .to_string();
    assert!(error.contains("fail-init exists"), "{error}");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(plugin.prewarmed(), 0, "nothing prepared while init fails");

    // Fixed, but idle: no background retry (well past the 1 s back-off).
    std::fs::remove_file(&marker).unwrap();
    std::thread::sleep(Duration::from_millis(1_500));
    assert_eq!(plugin.prewarmed(), 0, "no retry on a timer");
    // The next call succeeds on its own instance and wakes the worker, which refills.
    assert_eq!(resolve(&plugin, "literal:v"), "v");
    wait_for("a refilled queue", || plugin.prewarmed() == 2);
}
