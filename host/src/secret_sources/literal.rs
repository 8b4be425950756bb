//! `literal`: `value` is the secret itself. For development; anything else is preferable,
//! since the secret then lives in the config file.

use super::SourceError;

/// The literal value.
pub fn read(value: &str) -> Result<String, SourceError> {
    if value.is_empty() {
        return Err(SourceError::LiteralEmpty);
    }
    Ok(value.to_owned())
}

/// The `literal` source.
pub struct Literal;

impl super::SecretSource for Literal {
    fn resolve<'a>(
        &'a self,
        request: super::SecretRequest<'a>,
    ) -> futures_util::future::BoxFuture<'a, Result<crate::redact::SecretValue, SourceError>> {
        Box::pin(async move { super::checked(read(super::reference(request.secret, "literal")?)?) })
    }
}
