//! The pipeline, rule by rule and in combination (security cases P01-P12 that do not need a
//! server), with fault-injecting evaluators, and the property that deny dominates allow
//! whatever the order of rules and evaluators.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use proptest::prelude::*;

use super::*;
use crate::catalog::Tool;

fn config(json: serde_json::Value) -> Config {
    serde_json::from_value(json).unwrap()
}

fn tool(id: &str) -> Tool {
    Tool {
        id: id.into(),
        ..Tool::default()
    }
}

/// A fake evaluator: answers `verdict` after `delay`, or fails.
struct Fake {
    name: String,
    behaviour: Behaviour,
}

#[derive(Clone, Debug)]
enum Behaviour {
    Allow,
    Deny,
    Approval,
    /// A trap: the evaluator reports a failure.
    Trap,
    /// Sleeps far past any budget.
    Slow,
}

impl PolicyEvaluator for Fake {
    fn name(&self) -> &str {
        &self.name
    }

    fn evaluate<'a>(
        &'a self,
        _query: &'a PolicyQuery,
    ) -> BoxFuture<'a, Result<PolicyVerdict, String>> {
        Box::pin(async move {
            match self.behaviour {
                Behaviour::Allow => Ok(PolicyVerdict::Allow),
                Behaviour::Deny => Ok(PolicyVerdict::Deny(format!("{} says no", self.name))),
                Behaviour::Approval => Ok(PolicyVerdict::RequireApproval("ask a human".into())),
                Behaviour::Trap => Err("wasm trap: unreachable".into()),
                Behaviour::Slow => {
                    tokio::time::sleep(Duration::from_secs(30)).await;
                    Ok(PolicyVerdict::Allow)
                }
            }
        })
    }
}

fn fakes(list: &[(&str, Behaviour)]) -> Vec<Arc<dyn PolicyEvaluator>> {
    list.iter()
        .map(|(name, behaviour)| {
            Arc::new(Fake {
                name: (*name).into(),
                behaviour: behaviour.clone(),
            }) as Arc<dyn PolicyEvaluator>
        })
        .collect()
}

struct Ask<'a> {
    mode: Option<Mode>,
    profile: Option<&'a str>,
    approval: bool,
    scopes: &'a [String],
}

const PLAIN: Ask<'static> = Ask {
    mode: None,
    profile: None,
    approval: false,
    scopes: &[],
};

async fn decide_with(policy: &PolicySet, id: &str, ask: Ask<'_>) -> Explanation {
    let tool = tool(id);
    let arguments = serde_json::json!({});
    let call = Call {
        tool: &tool,
        mode: ask.mode,
        agent_profile: ask.profile,
        principal: Some("alice"),
        scopes: ask.scopes,
        request_id: "r1",
        arguments: &arguments,
    };
    policy.evaluate(&call, Approval::Flag(ask.approval)).await
}

async fn decide(policy: &PolicySet, id: &str) -> Decision {
    decide_with(policy, id, PLAIN).await.decision
}

fn deny(reason: &'static str, rule: &str) -> Decision {
    Decision::Deny {
        reason,
        rule: rule.into(),
    }
}

fn compiled(json: serde_json::Value) -> PolicySet {
    PolicySet::compile(&config(json)).unwrap()
}

#[tokio::test]
async fn managed_deny_comes_first_then_policy_deny_then_approval() {
    let mut c = config(serde_json::json!({
        "policy": {"deny": ["t:*"], "approvalRequired": ["t:*"]}
    }));
    c.policy.as_mut().unwrap().managed_deny = vec!["t:x".into()];
    let p = PolicySet::compile(&c).unwrap();
    assert_eq!(decide(&p, "t:x").await, deny("managed_deny", "t:x"));
    assert_eq!(decide(&p, "t:y").await, deny("policy_deny", "t:*"));
}

/// P02: approval-required wins over allow; deny wins over approval (the flag never lifts a deny).
#[tokio::test]
async fn p02_approval_flag_satisfies_approval_rules_but_never_deny() {
    let p = compiled(serde_json::json!({"policy": {"approvalRequired": ["t:a"], "deny": ["t:d"]}}));
    assert_eq!(decide(&p, "t:a").await, deny("approval_required", "t:a"));
    let approved = Ask {
        approval: true,
        ..PLAIN
    };
    assert_eq!(
        decide_with(&p, "t:a", approved).await.decision,
        Decision::Allow
    );
    let approved = Ask {
        approval: true,
        ..PLAIN
    };
    assert_eq!(
        decide_with(&p, "t:d", approved).await.decision,
        deny("policy_deny", "t:d")
    );
}

#[tokio::test]
async fn curated_profile_restricts_to_its_tool_set_and_a_request_cannot_widen_it() {
    let p = compiled(serde_json::json!({
        "mode": {"default": "curated"},
        "curation": {"toolSets": {"support": {"allow": ["t:read*"], "deny": ["**"]}}},
        "agents": {"profiles": {
            "support": {"mode": "curated", "toolSet": "support"},
            "admin": {"mode": "discover"}
        }, "defaultProfile": "support"}
    }));
    assert_eq!(decide(&p, "t:readOne").await, Decision::Allow);
    assert_eq!(decide(&p, "t:write").await, deny("curated_deny", "support"));
    // R08: asking for discover mode, or for a wider profile, is refused without a scope.
    let none: &[String] = &[];
    let discover_scope = ["mode:discover".to_owned()];
    let admin_scope = ["profile:admin".to_owned()];
    for (mode, profile, scopes, expected) in [
        (
            Some(Mode::Discover),
            None,
            none,
            deny("curated_deny", "request:mode=discover"),
        ),
        (
            None,
            Some("admin"),
            none,
            deny("curated_deny", "request:agentProfile=admin"),
        ),
        // Narrowing is always fine, and the scopes that grant a widening allow it.
        (
            Some(Mode::Curated),
            Some("support"),
            none,
            deny("curated_deny", "support"),
        ),
        (
            Some(Mode::Discover),
            None,
            &discover_scope[..],
            Decision::Allow,
        ),
        (None, Some("admin"), &admin_scope[..], Decision::Allow),
    ] {
        let ask = Ask {
            mode,
            profile,
            scopes,
            ..PLAIN
        };
        assert_eq!(decide_with(&p, "t:write", ask).await.decision, expected);
    }
}

/// P01: a curated allow that matches and a deny that matches: deny wins, whatever comes first.
#[tokio::test]
async fn p01_allow_listed_before_a_matching_deny_still_denies() {
    let p = compiled(serde_json::json!({
        "mode": {"default": "curated"},
        "policy": {"deny": ["svc:delete*"]},
        "curation": {"toolSets": {"ops": {"allow": ["svc:*"], "deny": ["svc:drop*"]}}},
        "agents": {"profiles": {"ops": {"mode": "curated", "toolSet": "ops"}}, "defaultProfile": "ops"}
    }));
    assert_eq!(decide(&p, "svc:list").await, Decision::Allow);
    assert_eq!(
        decide(&p, "svc:deleteAll").await,
        deny("policy_deny", "svc:delete*")
    );
    assert_eq!(
        decide(&p, "svc:dropTable").await,
        deny("curated_deny", "ops")
    );
}

/// P03: an empty allow-list with a closing deny denies everything; an empty set in curated
/// mode is the reference's "no restriction".
#[tokio::test]
async fn p03_empty_allow_list_with_deny_all_denies_everything() {
    let p = compiled(serde_json::json!({
        "mode": {"default": "curated"},
        "curation": {"toolSets": {"none": {"allow": [], "deny": ["**"]}}},
        "agents": {"profiles": {"none": {"mode": "curated", "toolSet": "none"}}, "defaultProfile": "none"}
    }));
    assert_eq!(decide(&p, "t:anything").await, deny("curated_deny", "none"));
}

/// P04: anchored patterns; `*` does not cross `:` or `/`.
#[tokio::test]
async fn p04_patterns_are_anchored_and_star_stays_in_its_segment() {
    let p = compiled(serde_json::json!({"policy": {"deny": ["github:*"]}}));
    assert_eq!(
        decide(&p, "github:deleteRepo").await,
        deny("policy_deny", "github:*")
    );
    assert_eq!(decide(&p, "githubX:read").await, Decision::Allow);
    assert_eq!(decide(&p, "github:get:/repos/{id}").await, Decision::Allow);
    assert_eq!(decide(&p, "x:github:deleteRepo").await, Decision::Allow);
}

/// P05: ids are compared byte-exact; no trimming, case folding or normalisation lets a
/// look-alike escape *or* inherit a rule.
#[tokio::test]
async fn p05_lookalike_tool_ids_do_not_match_each_other() {
    let p = compiled(serde_json::json!({"policy": {"approvalRequired": ["svc:deleteRepo"]}}));
    for id in [
        "svc:deleteRepo ",
        "svc:DeleteRepo",
        "svc:deleteRep\u{043e}",
        "svc:deleteRepo\n",
    ] {
        assert_eq!(decide(&p, id).await, Decision::Allow, "{id:?}");
    }
    assert_eq!(
        decide(&p, "svc:deleteRepo").await,
        deny("approval_required", "svc:deleteRepo")
    );
}

#[tokio::test]
async fn requires_approval_from_the_document_is_a_rule_of_its_own() {
    let p = compiled(serde_json::json!({}));
    let mut t = tool("t:x");
    t.safety.requires_approval = true;
    let arguments = serde_json::json!({});
    let call = Call {
        tool: &t,
        mode: None,
        agent_profile: None,
        principal: None,
        scopes: &[],
        request_id: "r",
        arguments: &arguments,
    };
    let explained = p.evaluate(&call, Approval::Flag(false)).await;
    assert_eq!(
        explained.decision,
        deny("approval_required", "x-cli-safety.requiresApproval")
    );
}

#[tokio::test]
async fn every_evaluated_step_is_listed_and_the_first_failure_ends_the_list() {
    let p = compiled(serde_json::json!({"policy": {"deny": ["t:d"], "approvalRequired": ["t:a"]}}))
        .with_evaluators(fakes(&[("opa", Behaviour::Allow)]));
    let allowed = decide_with(&p, "t:ok", PLAIN).await;
    let rules: Vec<_> = allowed.steps.iter().map(|s| s.rule.as_ref()).collect();
    assert_eq!(
        rules,
        [
            "managed_deny",
            "policy_deny",
            "curated",
            "plugin:opa",
            "approval"
        ]
    );
    assert!(allowed.steps.iter().all(|s| s.outcome == Outcome::Pass));
    let denied = decide_with(&p, "t:d", PLAIN).await;
    assert_eq!(denied.steps.len(), 2);
    assert_eq!(denied.steps[1].outcome, Outcome::Deny);
    let json = denied.to_json();
    assert_eq!(json["decision"], "deny");
    assert_eq!(json["reason"], "policy_deny");
    assert_eq!(json["rule"], "t:d");
}

/// P10: a trap, an overrun and an unknown answer are all denies with `policy_error`.
#[tokio::test]
async fn p10_failing_or_slow_evaluators_deny_with_policy_error() {
    for (behaviour, detail) in [
        (Behaviour::Trap, "wasm trap"),
        (Behaviour::Slow, "exceeded the policy budget of 20 ms"),
    ] {
        let p = compiled(serde_json::json!({"policy": {"pluginBudgetMs": 20}}))
            .with_evaluators(fakes(&[("ok", Behaviour::Allow), ("bad", behaviour)]));
        let started = std::time::Instant::now();
        let explained = decide_with(&p, "t:x", PLAIN).await;
        assert!(started.elapsed() < Duration::from_secs(2), "bounded wait");
        assert_eq!(explained.decision, deny("policy_error", "plugin:bad"));
        let step = explained
            .steps
            .iter()
            .find(|s| s.rule == "plugin:bad")
            .unwrap();
        assert_eq!(step.outcome, Outcome::Error);
        assert!(step.detail.contains(detail), "{}", step.detail);
    }
}

#[tokio::test]
async fn evaluator_deny_and_approval_requests_are_obeyed() {
    let p = compiled(serde_json::json!({}))
        .with_evaluators(fakes(&[("a", Behaviour::Allow), ("b", Behaviour::Deny)]));
    assert_eq!(decide(&p, "t:x").await, deny("plugin_deny", "plugin:b"));
    let p = compiled(serde_json::json!({})).with_evaluators(fakes(&[("a", Behaviour::Approval)]));
    assert_eq!(
        decide(&p, "t:x").await,
        deny("approval_required", "plugin:a")
    );
    let approved = Ask {
        approval: true,
        ..PLAIN
    };
    assert_eq!(
        decide_with(&p, "t:x", approved).await.decision,
        Decision::Allow
    );
}

/// A failure outranks a deny, so the reason does not depend on which evaluator answered first.
#[tokio::test]
async fn a_failure_outranks_a_deny_from_another_evaluator() {
    let p = compiled(serde_json::json!({}))
        .with_evaluators(fakes(&[("d", Behaviour::Deny), ("t", Behaviour::Trap)]));
    assert_eq!(decide(&p, "t:x").await, deny("policy_error", "plugin:t"));
}

/// Built-in denies are decided before any evaluator is asked.
#[tokio::test]
async fn evaluators_are_not_asked_when_a_rule_already_denied() {
    let p = compiled(serde_json::json!({"policy": {"deny": ["t:x"]}}))
        .with_evaluators(fakes(&[("slow", Behaviour::Slow)]));
    let started = std::time::Instant::now();
    assert_eq!(decide(&p, "t:x").await, deny("policy_deny", "t:x"));
    assert!(started.elapsed() < Duration::from_millis(40));
}

#[test]
fn plugin_budget_defaults_to_50_ms() {
    assert_eq!(
        compiled(serde_json::json!({})).plugin_budget,
        DEFAULT_PLUGIN_BUDGET
    );
    assert_eq!(DEFAULT_PLUGIN_BUDGET, Duration::from_millis(50));
}

fn behaviour() -> impl Strategy<Value = Behaviour> {
    prop_oneof![
        Just(Behaviour::Allow),
        Just(Behaviour::Deny),
        Just(Behaviour::Approval),
        Just(Behaviour::Trap),
    ]
}

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
        .block_on(future)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Deny dominates: whatever the order of deny, approval and tool-set patterns and of the
    /// evaluators, a call is allowed only when no deny pattern matches, no evaluator denies or
    /// fails, and the reason does not depend on the order.
    #[test]
    fn deny_dominates_allow_regardless_of_order(
        mut deny in proptest::collection::vec(prop_oneof![Just("t:x"), Just("t:*"), Just("u:*"), Just("**")], 0..4),
        mut approval in proptest::collection::vec(prop_oneof![Just("t:x"), Just("t:*"), Just("v:*")], 0..3),
        mut allow in proptest::collection::vec(prop_oneof![Just("t:x"), Just("t:*"), Just("w:*"), Just("**")], 0..3),
        mut plugins in proptest::collection::vec(behaviour(), 0..4),
        seed in any::<u64>(),
        approved in any::<bool>(),
    ) {
        let build = |deny: &[&str], approval: &[&str], allow: &[&str], plugins: &[Behaviour]| {
            let named: Vec<(String, Behaviour)> = plugins
                .iter()
                .enumerate()
                .map(|(i, b)| (format!("p{i}"), b.clone()))
                .collect();
            let refs: Vec<(&str, Behaviour)> = named.iter().map(|(n, b)| (n.as_str(), b.clone())).collect();
            compiled(serde_json::json!({
                "mode": {"default": "curated"},
                "policy": {"deny": deny, "approvalRequired": approval},
                "curation": {"toolSets": {"s": {"allow": allow}}},
                "agents": {"profiles": {"s": {"mode": "curated", "toolSet": "s"}}, "defaultProfile": "s"}
            }))
            .with_evaluators(fakes(&refs))
        };
        let ask = || Ask { approval: approved, ..PLAIN };
        let first = block_on(decide_with(&build(&deny, &approval, &allow, &plugins), "t:x", ask())).decision;
        // Same rules, every list reversed and rotated.
        let rotate = |n: usize| if n == 0 { 0 } else { (seed as usize) % n };
        deny.reverse();
        let n = deny.len();
        deny.rotate_left(rotate(n));
        approval.reverse();
        allow.reverse();
        plugins.reverse();
        let n = plugins.len();
        plugins.rotate_left(rotate(n));
        let second = block_on(decide_with(&build(&deny, &approval, &allow, &plugins), "t:x", ask())).decision;

        let reason = |d: &Decision| match d { Decision::Allow => "allowed", Decision::Deny { reason, .. } => reason };
        prop_assert_eq!(reason(&first), reason(&second));

        let denied_by_rule = deny.iter().any(|p| matches!(*p, "t:x" | "t:*" | "**"));
        let outside_allow = !allow.is_empty() && !allow.iter().any(|p| matches!(*p, "t:x" | "t:*" | "**"));
        let plugin_fails = plugins.iter().any(|b| matches!(b, Behaviour::Trap | Behaviour::Deny));
        let needs_approval = approval.iter().any(|p| matches!(*p, "t:x" | "t:*"))
            || plugins.iter().any(|b| matches!(b, Behaviour::Approval));
        let expect_allow = !denied_by_rule && !outside_allow && !plugin_fails && (!needs_approval || approved);
        prop_assert_eq!(first == Decision::Allow, expect_allow, "{:?}", first);
    }
}
