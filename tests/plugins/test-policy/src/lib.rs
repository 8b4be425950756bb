//! A policy evaluator whose verdict is chosen by the tool id (ASCII case-insensitive): `...deny...` denies,
//! `...approve...` requires approval, `...trap...` panics, `...loop...` spins forever, anything
//! else is allowed. `config.denyAll: true` denies everything.

wit_bindgen::generate!({ world: "policy-evaluator-plugin", path: "../../../wit/portcullis-plugin@0.1.0" });

use exports::portcullis::plugin::lifecycle::Guest as Lifecycle;
use exports::portcullis::plugin::policy_evaluator::{Decision, Guest as Evaluator, PolicyInput};
use portcullis::plugin::types::{InitError, PluginKind, PluginMetadata};

static mut DENY_ALL: bool = false;

struct Plugin;

impl Lifecycle for Plugin {
    fn metadata() -> PluginMetadata {
        PluginMetadata {
            name: "test-policy".into(),
            version: "0.1.0".into(),
            kind: PluginKind::PolicyEvaluator,
            description: "host test fixture: verdict chosen by the tool id".into(),
            config_schema: "{}".into(),
        }
    }

    fn init(config: String) -> Result<(), InitError> {
        // SAFETY: single-threaded guest, written before any read.
        unsafe { DENY_ALL = config.replace(' ', "").contains("\"denyAll\":true") };
        Ok(())
    }
}

impl Evaluator for Plugin {
    fn evaluate(input: PolicyInput) -> Result<Decision, String> {
        // SAFETY: see `init`.
        if unsafe { DENY_ALL } {
            return Ok(Decision::Deny("denyAll is set".into()));
        }
        let id = input.tool.id.to_ascii_lowercase();
        if id.contains("deny") {
            Ok(Decision::Deny(format!("{id} is denied by test-policy")))
        } else if id.contains("approve") {
            Ok(Decision::RequireApproval(format!("{id} needs a human")))
        } else if id.contains("trap") {
            panic!("policy trap");
        } else if id.contains("loop") {
            let mut n: u64 = 0;
            loop {
                n = std::hint::black_box(n.wrapping_add(1));
            }
        } else if id.contains("longreason") {
            Ok(Decision::Deny("r".repeat(100_000)))
        } else {
            Ok(Decision::Allow)
        }
    }
}

export!(Plugin);
