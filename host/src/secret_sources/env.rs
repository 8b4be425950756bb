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

/// The `env` source.
pub struct Env;

impl super::SecretSource for Env {
    fn resolve<'a>(
        &'a self,
        request: super::SecretRequest<'a>,
    ) -> futures_util::future::BoxFuture<'a, Result<crate::redact::SecretValue, SourceError>> {
        Box::pin(async move { super::checked(read(super::reference(request.secret, "env")?)?) })
    }
}

/// Why `name` cannot be resolved right now, if it cannot (for load-time checks).
pub fn problem(name: &str) -> Option<SourceError> {
    read(name).err()
}
