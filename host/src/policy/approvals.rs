//! Approval grants: the opt-in, stronger form of approval (`policy.approvals.mode: grant`).
//!
//! | rule | default |
//! |---|---|
//! | a grant is issued through `POST /v1/approvals` by a caller holding the approver scope | scope `approve` |
//! | it is bound to (principal, tool id, SHA-256 of the canonical arguments) and expires | 300 s |
//! | it is used by exactly one execution: taking it is atomic, a second execution finds nothing | single-use |
//! | an approver cannot approve a call for themself | forbidden |
//! | at most [`MAX_OUTSTANDING`] unexpired grants exist; more are refused, never evicted | 10,000 |
//!
//! In grant mode the request's `approval: true` flag is not enough, and no other caller-supplied
//! field (argument, header) is ever read as approval. Grants live in memory: a restart drops
//! every outstanding grant, which fails closed (the call needs a new approval).
//!
//! Canonical arguments ([`canonical_arguments`]): path arguments and flag values as strings
//! (a number and its text are the same call), flags by name, and the body as JSON when it is
//! JSON (so the base64 and plain-JSON forms of one body agree) or as `bodyBase64` otherwise.
//! The digest is SHA-256 over the JSON text with object keys sorted at every level.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use base64::Engine as _;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::config::{ApprovalMode, Config};

/// Most unexpired grants held at once.
pub const MAX_OUTSTANDING: usize = 10_000;

/// Default approver scope.
pub const DEFAULT_APPROVER_SCOPE: &str = "approve";

/// Default grant lifetime.
pub const DEFAULT_TTL: Duration = Duration::from_secs(300);

/// Approval settings resolved from `policy.approvals`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalSettings {
    /// `flag` or `grant`.
    pub mode: ApprovalMode,
    /// The scope an approver must hold.
    pub approver_scope: String,
    /// Grant lifetime.
    pub ttl: Duration,
    /// Whether an approver may approve their own call.
    pub forbid_self_approval: bool,
}

impl Default for ApprovalSettings {
    fn default() -> Self {
        Self {
            mode: ApprovalMode::Flag,
            approver_scope: DEFAULT_APPROVER_SCOPE.into(),
            ttl: DEFAULT_TTL,
            forbid_self_approval: true,
        }
    }
}

impl ApprovalSettings {
    /// The settings of a config, defaults filled in.
    pub fn from_config(config: &Config) -> Self {
        let defaults = Self::default();
        let Some(a) = config.policy.as_ref().and_then(|p| p.approvals.as_ref()) else {
            return defaults;
        };
        Self {
            mode: a.mode.unwrap_or(defaults.mode),
            approver_scope: a.approver_scope.clone().unwrap_or(defaults.approver_scope),
            ttl: a.ttl_seconds.map_or(defaults.ttl, Duration::from_secs),
            forbid_self_approval: a
                .forbid_self_approval
                .unwrap_or(defaults.forbid_self_approval),
        }
    }

    /// Whether grants (not the flag) give approval.
    pub fn grants(&self) -> bool {
        self.mode == ApprovalMode::Grant
    }
}

/// What a grant is bound to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GrantKey {
    /// The principal who may execute.
    pub principal: String,
    /// The tool.
    pub tool_id: String,
    /// SHA-256 (hex) of the canonical arguments.
    pub arguments_sha256: String,
}

/// An issued grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// Random id, for audit correlation.
    pub id: String,
    /// When it stops being usable.
    pub expires_at: SystemTime,
    expires: Instant,
}

/// Why a grant was not issued.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GrantError {
    /// The approver asked for a grant for themself while that is forbidden.
    #[error("an approver cannot approve their own call")]
    SelfApproval,
    /// Too many grants are outstanding.
    #[error("too many outstanding approval grants ({MAX_OUTSTANDING}); retry later")]
    Full,
}

/// The runtime's outstanding grants (kept across snapshot swaps).
#[derive(Debug, Default)]
pub struct ApprovalStore {
    grants: Mutex<HashMap<GrantKey, Vec<Grant>>>,
}

impl ApprovalStore {
    /// Issue a grant for `key`, approved by `approver`.
    pub fn issue(
        &self,
        settings: &ApprovalSettings,
        approver: &str,
        key: GrantKey,
    ) -> Result<Grant, GrantError> {
        if settings.forbid_self_approval && approver == key.principal {
            return Err(GrantError::SelfApproval);
        }
        let now = Instant::now();
        let mut grants = self.lock();
        grants.retain(|_, list| {
            list.retain(|g| g.expires > now);
            !list.is_empty()
        });
        if grants.values().map(Vec::len).sum::<usize>() >= MAX_OUTSTANDING {
            return Err(GrantError::Full);
        }
        let grant = Grant {
            id: uuid::Uuid::new_v4().to_string(),
            expires_at: SystemTime::now() + settings.ttl,
            expires: now + settings.ttl,
        };
        grants.entry(key).or_default().push(grant.clone());
        Ok(grant)
    }

    /// Take an unexpired grant for `key`: the one call that gets it may run, any other finds
    /// nothing. Atomic under the store's lock.
    pub fn take(&self, key: &GrantKey) -> Option<Grant> {
        let now = Instant::now();
        let mut grants = self.lock();
        let list = grants.get_mut(key)?;
        list.retain(|g| g.expires > now);
        let grant = (!list.is_empty()).then(|| list.remove(0));
        if list.is_empty() {
            grants.remove(key);
        }
        grant
    }

    /// Withdraw the grant `id` (its issue could not be audited).
    pub fn revoke(&self, key: &GrantKey, id: &str) {
        let mut grants = self.lock();
        if let Some(list) = grants.get_mut(key) {
            list.retain(|g| g.id != id);
            if list.is_empty() {
                grants.remove(key);
            }
        }
    }

    /// The grant [`Self::take`] would return, left in place (for explain).
    pub fn peek(&self, key: &GrantKey) -> Option<Grant> {
        let now = Instant::now();
        self.lock()
            .get(key)?
            .iter()
            .find(|g| g.expires > now)
            .cloned()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<GrantKey, Vec<Grant>>> {
        // A panic while holding the lock cannot leave a grant half-taken (each operation is
        // one map update), so a poisoned lock is still consistent.
        self.grants.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The canonical arguments of a call (see the module header).
pub fn canonical_arguments(
    path_args: &[String],
    flags: &BTreeMap<String, String>,
    body: Option<&[u8]>,
) -> Value {
    let mut out = serde_json::Map::new();
    match body.filter(|b| !b.is_empty()) {
        None => {
            out.insert("body".into(), Value::Null);
        }
        Some(bytes) => match serde_json::from_slice::<Value>(bytes) {
            Ok(json) => {
                out.insert("body".into(), json);
            }
            Err(_) => {
                let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
                out.insert("bodyBase64".into(), Value::String(encoded));
            }
        },
    }
    out.insert(
        "flags".into(),
        flags
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect::<serde_json::Map<_, _>>()
            .into(),
    );
    out.insert(
        "pathArgs".into(),
        path_args.iter().cloned().map(Value::String).collect(),
    );
    Value::Object(out)
}

/// JSON text with object keys sorted at every level.
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push('{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(item, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// SHA-256 (hex) of the canonical JSON of `arguments`.
pub fn arguments_digest(arguments: &Value) -> String {
    hex::encode(Sha256::digest(canonical_json(arguments).as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(principal: &str, digest: &str) -> GrantKey {
        GrantKey {
            principal: principal.into(),
            tool_id: "t:x".into(),
            arguments_sha256: digest.into(),
        }
    }

    #[test]
    fn a_grant_is_taken_once_and_only_by_its_exact_key() {
        let store = ApprovalStore::default();
        let settings = ApprovalSettings::default();
        store.issue(&settings, "boss", key("alice", "d1")).unwrap();
        assert!(store.peek(&key("alice", "d1")).is_some(), "peek leaves it");
        assert!(store.take(&key("bob", "d1")).is_none(), "other principal");
        assert!(store.take(&key("alice", "d2")).is_none(), "other arguments");
        assert!(store.take(&key("alice", "d1")).is_some());
        assert!(store.take(&key("alice", "d1")).is_none(), "single use");
    }

    #[test]
    fn expired_grants_are_never_taken() {
        let store = ApprovalStore::default();
        let settings = ApprovalSettings {
            ttl: Duration::ZERO,
            ..Default::default()
        };
        store.issue(&settings, "boss", key("alice", "d")).unwrap();
        assert!(store.take(&key("alice", "d")).is_none());
    }

    #[test]
    fn self_approval_is_refused_unless_allowed() {
        let store = ApprovalStore::default();
        let forbid = ApprovalSettings::default();
        assert_eq!(
            store.issue(&forbid, "alice", key("alice", "d")),
            Err(GrantError::SelfApproval)
        );
        let allow = ApprovalSettings {
            forbid_self_approval: false,
            ..Default::default()
        };
        assert!(store.issue(&allow, "alice", key("alice", "d")).is_ok());
    }

    #[test]
    fn canonical_form_ignores_key_order_and_body_encoding() {
        let flags: BTreeMap<String, String> = [("b".into(), "2".into()), ("a".into(), "1".into())]
            .into_iter()
            .collect();
        let one = canonical_arguments(
            &["x".into()],
            &flags,
            Some(br#"{"z":1,"a":[1,{"q":2,"p":3}]}"#),
        );
        let two = canonical_arguments(
            &["x".into()],
            &flags,
            Some(br#"{"a":[1,{"p":3,"q":2}],"z":1}"#),
        );
        assert_eq!(arguments_digest(&one), arguments_digest(&two));
        assert_eq!(
            canonical_json(&one),
            r#"{"body":{"a":[1,{"p":3,"q":2}],"z":1},"flags":{"a":"1","b":"2"},"pathArgs":["x"]}"#
        );
        let other = canonical_arguments(&["y".into()], &flags, Some(br#"{"z":1}"#));
        assert_ne!(arguments_digest(&one), arguments_digest(&other));
        let binary = canonical_arguments(&[], &BTreeMap::new(), Some(&[0xff, 0]));
        assert_eq!(binary["bodyBase64"], "/wA=");
    }
}
