//! `env`: `value` names an environment variable of the runtime process.
//!
//! Rule: unset, empty or non-UTF-8 is an error — never an empty credential (the reference
//! implementation sent `Authorization: Bearer ` for an unset variable).

use super::SourceError;

/// The variable's value.
pub fn read(name: &str) -> Result<String, SourceError> {
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => Ok(v),
        Ok(_) => Err(SourceError::EnvEmpty(name.to_owned())),
        Err(_) => Err(SourceError::EnvUnset(name.to_owned())),
    }
}

/// Why `name` cannot be resolved right now, if it cannot (for load-time checks).
pub fn problem(name: &str) -> Option<SourceError> {
    read(name).err()
}
