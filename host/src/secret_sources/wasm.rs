//! `plugin`: the WebAssembly adapter of the secret slot, a secret-source component as a
//! [`SecretSource`].
//!
//! | step | rule |
//! |---|---|
//! | request → WIT `secret-request` | `value` is the reference; service, scheme, tool id, request id and principal are passed as context |
//! | WIT value → [`SecretValue`] | the plugin host has already checked it (non-empty, at most 16 KiB, no CR/LF/NUL) |
//! | guest error | [`SourceError::PluginRefused`]: the caller learns only that the plugin refused; its message goes to the log |
//! | host-observed failure | [`SourceError::Plugin`] (trap, timeout, busy, memory, invalid value), stated as the plugin host words it |

use std::sync::Arc;

use futures_util::future::BoxFuture;

use super::{SecretRequest, SecretSource, SourceError};
use crate::plugins::wit::{RequestContext, SecretRequest as WitSecretRequest};
use crate::plugins::{CallErrorKind, LoadedPlugin, PluginError};
use crate::redact::SecretValue;

/// A secret-source plugin in the resolver's plugin slot.
#[derive(Debug, Clone)]
pub struct WasmSecretSource(pub Arc<LoadedPlugin>);

impl SecretSource for WasmSecretSource {
    fn resolve<'a>(
        &'a self,
        request: SecretRequest<'a>,
    ) -> BoxFuture<'a, Result<SecretValue, SourceError>> {
        Box::pin(async move {
            let wit = WitSecretRequest {
                reference: request.secret.value.clone().unwrap_or_default(),
                service: request.service.to_owned(),
                scheme: request.scheme.to_owned(),
                tool_id: request.tool_id.to_owned(),
                context: RequestContext {
                    request_id: request.call.request_id.clone(),
                    principal: request.call.principal.clone(),
                },
            };
            match self.0.resolve_secret_async(wit).await {
                Ok(value) => Ok(SecretValue::new(value)),
                Err(error) => {
                    tracing::warn!(tool = %request.tool_id, "{error}");
                    Err(source_error(error))
                }
            }
        })
    }
}

/// What the caller may learn of a plugin's failure: not the guest's own message.
fn source_error(error: PluginError) -> SourceError {
    match error {
        PluginError::Call {
            plugin,
            kind: CallErrorKind::Guest(_),
        } => SourceError::PluginRefused(plugin),
        other => SourceError::Plugin(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_guest_error_is_stated_without_its_message() {
        let error = source_error(PluginError::call(
            "vault",
            CallErrorKind::Guest("not-found: canary-guest-text".into()),
        ));
        assert_eq!(
            error.to_string(),
            "plugin \"vault\" could not resolve the secret"
        );
    }

    #[test]
    fn host_observed_failures_keep_the_plugin_hosts_wording_and_code() {
        let timeout = PluginError::call("vault", CallErrorKind::Timeout(250));
        let expected = timeout.to_string();
        let SourceError::Plugin(error) = source_error(timeout) else {
            panic!("a timeout is a host-observed failure")
        };
        assert_eq!(error.code(), "plugin_timeout");
        assert_eq!(error.to_string(), expected);
    }
}
