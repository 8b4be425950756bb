//! Authorization envelope: which tools a caller may see and run.
//!
//! Rule: with runtime auth off, the envelope holds every tool (policy still applies). With
//! auth on, scopes `bundle:`, `profile:` and `tool:` define it; that arrives with token
//! validation. The envelope is computed per request from the caller, never cached as a decision.

use crate::authn::Caller;

/// The set of tools a caller may see and execute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Envelope {
    /// Every tool in the catalog.
    All,
}

impl Envelope {
    /// The envelope for a caller.
    pub fn for_caller(_caller: &Caller) -> Self {
        Self::All
    }

    /// Whether the caller may use `tool_id`.
    pub fn permits(&self, _tool_id: &str) -> bool {
        match self {
            Self::All => true,
        }
    }
}
