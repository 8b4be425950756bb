//! Policy decision cost per request, without evaluator plugins: the whole pipeline
//! ([`PolicySet::evaluate`]) for one call, including the step list it returns.
//!
//! Cases, against a realistic policy (12 deny patterns, 8 approval patterns, a curated tool set
//! of 6 allow patterns; ids of the GitHub-catalog shape):
//!
//! - `allow/discover`: every rule evaluated, none matches (the common case);
//! - `allow/curated`: the same through the curated tool set;
//! - `deny/policy_deny`: refused at step 2;
//! - `deny/approval_required`: refused at the last step;
//! - `allow/grant`: grant mode, a grant issued and taken per iteration (includes the SHA-256
//!   of the canonical arguments).
//!
//! ```sh
//! cargo bench -p portcullis --bench policy
//! ```

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};

// Measure with the allocator the `portcullis` binary uses.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use portcullis::catalog::Tool;
use portcullis::config::{Config, Mode};
use portcullis::policy::approvals::{arguments_digest, GrantKey};
use portcullis::policy::{Approval, ApprovalStore, Call, Decision, PolicySet};

fn policy(grant_mode: bool) -> PolicySet {
    let mut config = serde_json::json!({
        "mode": {"default": "discover"},
        "policy": {
            "deny": ["github:actions/delete*", "github:repos/delete", "github:orgs/delete*",
                     "github:admin/**", "github:enterprise-admin/**", "github:*/remove-*",
                     "github:users/delete*", "github:apps/delete*", "github:gists/delete",
                     "github:migrations/**", "github:billing/**", "github:secret-scanning/**"],
            "approvalRequired": ["github:repos/update*", "github:repos/transfer", "github:orgs/update*",
                                 "github:teams/*", "github:actions/set-*", "github:pulls/merge",
                                 "github:git/delete-ref", "github:issues/lock"]
        },
        "curation": {"toolSets": {"reader": {"allow": ["github:repos/get*", "github:repos/list*",
            "github:issues/get*", "github:issues/list*", "github:pulls/get", "github:pulls/list*"],
            "deny": ["**"]}}},
        "agents": {"profiles": {"reader": {"mode": "curated", "toolSet": "reader"}}}
    });
    if grant_mode {
        config["policy"]["approvals"] = serde_json::json!({"mode": "grant"});
    }
    let config: Config = serde_json::from_value(config).unwrap();
    PolicySet::compile(&config).unwrap()
}

fn tool(id: &str) -> Tool {
    Tool {
        id: id.into(),
        service_id: "github".into(),
        ..Tool::default()
    }
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let flag = policy(false);
    let arguments = serde_json::json!({"body": null, "flags": {"per_page": "30"}, "pathArgs": ["octo", "hello"]});
    let mut group = c.benchmark_group("policy");
    let mut case =
        |name: &str, policy: &PolicySet, id: &str, mode: Option<Mode>, expect_allow: bool| {
            let tool = tool(id);
            let call = Call {
                tool: &tool,
                mode,
                agent_profile: mode.map(|_| "reader"),
                principal: Some("alice"),
                scopes: &[],
                request_id: "bench",
                arguments: &arguments,
            };
            let decision = runtime.block_on(policy.evaluate(&call, Approval::Flag(false)));
            assert_eq!(decision.decision == Decision::Allow, expect_allow, "{name}");
            group.bench_function(name, |b| {
                b.iter(|| {
                    runtime.block_on(policy.evaluate(black_box(&call), Approval::Flag(false)))
                })
            });
        };
    case("allow/discover", &flag, "github:repos/get", None, true);
    case(
        "allow/curated",
        &flag,
        "github:repos/list-for-org",
        Some(Mode::Curated),
        true,
    );
    case(
        "deny/policy_deny",
        &flag,
        "github:repos/delete",
        None,
        false,
    );
    case(
        "deny/approval_required",
        &flag,
        "github:pulls/merge",
        None,
        false,
    );

    let granted = policy(true);
    let store = ApprovalStore::default();
    let merge = tool("github:pulls/merge");
    let key = GrantKey {
        principal: "alice".into(),
        tool_id: merge.id.clone(),
        arguments_sha256: arguments_digest(&arguments),
    };
    let call = Call {
        tool: &merge,
        mode: None,
        agent_profile: None,
        principal: Some("alice"),
        scopes: &[],
        request_id: "bench",
        arguments: &arguments,
    };
    group.bench_function("allow/grant", |b| {
        b.iter(|| {
            store
                .issue(granted.approvals(), "bob", key.clone())
                .unwrap();
            let approval = Approval::Grant {
                store: &store,
                consume: true,
            };
            let explained = runtime.block_on(granted.evaluate(black_box(&call), approval));
            assert_eq!(explained.decision, Decision::Allow);
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
