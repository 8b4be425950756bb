//! Authorization envelope: which tools a caller may see and run.
//!
//! Rule (open-cli contract 3.4, envelope version `1.0`): with runtime auth off the envelope
//! holds every tool (policy still applies). With auth on it is computed from the caller's
//! scopes, per request, against the current catalog — never cached as a decision:
//!
//! | scope | grants |
//! |---|---|
//! | `bundle:<serviceId>` | every tool whose `serviceId` equals the suffix (not the alias) |
//! | `profile:<name>` | unknown profile: nothing; profile not curated: every tool; else its tool set |
//! | `tool:<toolId>` | that tool, if it exists (an explicit grant) |
//!
//! Explicit grants intersect the bundle/profile union when both exist; either alone is the
//! envelope; no scopes is the empty envelope (an empty catalog, and 403 on execution). Tools
//! removed by `managed_deny` or `policy.deny` are never in it. Matching is byte-exact and
//! whole-string: no case folding, Unicode normalisation or wildcards (`tool:*` grants nothing).
//! Scopes with other prefixes (`openid`, ...) are ignored. Prefixes are configurable
//! (`scopePrefixes`).

use std::collections::HashSet;

use crate::authn::{Authenticator, Caller};
use crate::catalog::{Catalog, Tool};

/// What the envelope needs from the policy: profile tool sets and the deny lists. Implemented by
/// `policy::PolicySet`; a trait so that `authz` (step 4) does not import `policy` (step 5).
pub trait ToolRules {
    /// Whether profile `profile` grants `tool_id`: `None` for an unknown profile, `Some(true)`
    /// when the profile is not curated or its tool set allows the tool.
    fn profile_grants(&self, profile: &str, tool_id: &str) -> Option<bool>;
    /// Whether `managed_deny` or `policy.deny` removes `tool_id`.
    fn denies(&self, tool_id: &str) -> bool;
}

/// The set of tools a caller may see and execute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Envelope {
    /// Every tool in the catalog (runtime auth is off).
    All,
    /// Exactly these tool ids.
    Tools(HashSet<String>),
}

/// A caller's scopes, split by envelope prefix.
struct Grants<'a> {
    bundles: HashSet<&'a str>,
    profiles: Vec<&'a str>,
    explicit: HashSet<&'a str>,
}

impl<'a> Grants<'a> {
    fn parse(scopes: &'a [String], prefixes: &[String; 3]) -> Self {
        let [bundle, profile, tool] = prefixes;
        let mut grants = Self {
            bundles: HashSet::new(),
            profiles: Vec::new(),
            explicit: HashSet::new(),
        };
        for scope in scopes {
            if let Some(s) = scope.strip_prefix(bundle.as_str()) {
                grants.bundles.insert(s);
            } else if let Some(p) = scope.strip_prefix(profile.as_str()) {
                grants.profiles.push(p);
            } else if let Some(t) = scope.strip_prefix(tool.as_str()) {
                grants.explicit.insert(t);
            }
        }
        grants
    }

    fn grants(&self, tool: &Tool, policy: &impl ToolRules) -> bool {
        let has_union = !self.bundles.is_empty() || !self.profiles.is_empty();
        let in_union = || {
            self.bundles.contains(tool.service_id.as_str())
                || self
                    .profiles
                    .iter()
                    .any(|p| policy.profile_grants(p, &tool.id) == Some(true))
        };
        let in_explicit = self.explicit.contains(tool.id.as_str());
        let granted = match (has_union, !self.explicit.is_empty()) {
            (true, true) => in_explicit && in_union(),
            (true, false) => in_union(),
            (false, true) => in_explicit,
            (false, false) => false,
        };
        granted && !policy.denies(&tool.id)
    }
}

/// Whether `caller` may use `tool` (execution: one tool, no catalog walk).
pub fn grants(
    caller: &Caller,
    authenticator: &Authenticator,
    tool: &Tool,
    policy: &impl ToolRules,
) -> bool {
    !authenticator.required()
        || Grants::parse(&caller.scopes, &authenticator.prefixes()).grants(tool, policy)
}

impl Envelope {
    /// The envelope for a caller of a runtime whose auth is `authenticator`.
    pub fn for_caller(
        caller: &Caller,
        authenticator: &Authenticator,
        catalog: &Catalog,
        policy: &impl ToolRules,
    ) -> Self {
        if !authenticator.required() {
            return Self::All;
        }
        let prefixes = authenticator.prefixes();
        let grants = Grants::parse(&caller.scopes, &prefixes);
        let tools = catalog
            .tools
            .iter()
            .filter(|t| grants.grants(t, policy))
            .map(|t| t.id.clone())
            .collect();
        Self::Tools(tools)
    }

    /// Whether the caller may use `tool_id`.
    pub fn permits(&self, tool_id: &str) -> bool {
        match self {
            Self::All => true,
            Self::Tools(ids) => ids.contains(tool_id),
        }
    }

    /// The catalog as this caller may see it: only permitted tools, services that keep a tool,
    /// workflows whose steps are all permitted, and every view filtered the same way. `None`
    /// when the envelope is everything (serve the catalog as is).
    pub fn filter(&self, catalog: &Catalog) -> Option<Catalog> {
        let Self::Tools(_) = self else { return None };
        let mut out = Catalog {
            catalog_version: catalog.catalog_version.clone(),
            generated_at: catalog.generated_at.clone(),
            source_fingerprint: catalog.source_fingerprint.clone(),
            sources: catalog.sources.clone(),
            ..Catalog::default()
        };
        out.tools = catalog
            .tools
            .iter()
            .filter(|t| self.permits(&t.id))
            .cloned()
            .collect();
        let services: HashSet<&str> = out.tools.iter().map(|t| t.service_id.as_str()).collect();
        out.services = catalog
            .services
            .iter()
            .filter(|s| services.contains(s.id.as_str()))
            .cloned()
            .collect();
        out.workflows = catalog
            .workflows
            .iter()
            .filter(|w| w.steps.iter().all(|s| self.permits(&s.tool_id)))
            .cloned()
            .collect();
        out.effective_views = catalog
            .effective_views
            .iter()
            .map(|v| crate::catalog::EffectiveView {
                name: v.name.clone(),
                mode: v.mode.clone(),
                tools: v
                    .tools
                    .iter()
                    .filter(|t| self.permits(&t.id))
                    .cloned()
                    .collect(),
            })
            .collect();
        Some(out)
    }
}
