//! Secret sources: turn a reference from `secrets.<key>.value` into a credential value.
//!
//! Every error fails the tool call closed (502 `credential_unavailable`); the variant and message
//! go to the audit record and the operator's log, never to the caller. Never put the secret value
//! (or part of it) in an error message.

use std::fmt;
use std::marker::PhantomData;

use crate::bindings::secret_source::exports::portcullis::plugin::secret_source as wit;
use crate::plugin::{self, Plugin, RequestContext};

/// A secret source plugin.
pub trait SecretSource: Plugin {
    /// Resolve one reference. The value must be non-empty, at most 16 KiB and contain no CR, LF or
    /// NUL (it is written into HTTP headers); the host refuses anything else.
    fn resolve(&self, request: &SecretRequest) -> Result<String, SecretError>;
}

/// What the host asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecretRequest {
    /// The opaque reference from the config (`"value"` of a `type: "plugin"` secret).
    pub reference: String,
    /// The service whose tool is being called (`tickets`).
    pub service: String,
    /// The security scheme being satisfied (`apiKey`).
    pub scheme: String,
    /// The tool being called (`tickets:createTicket`).
    pub tool_id: String,
    /// Who is asking.
    pub context: RequestContext,
}

impl SecretRequest {
    /// A request for `reference` with empty request facts; handy in tests.
    pub fn for_reference(reference: &str) -> Self {
        Self {
            reference: reference.to_owned(),
            ..Self::default()
        }
    }
}

/// Why there is no value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretError {
    /// The reference names nothing this source holds.
    NotFound(String),
    /// The source holds it but refuses to release it for this request.
    Denied(String),
    /// The backing store could not be reached or read; retrying later may help.
    Unavailable(String),
    /// The reference is malformed for this source.
    InvalidReference(String),
}

impl fmt::Display for SecretError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotFound(message) => write!(f, "not found: {message}"),
            Self::Denied(message) => write!(f, "denied: {message}"),
            Self::Unavailable(message) => write!(f, "unavailable: {message}"),
            Self::InvalidReference(message) => write!(f, "invalid reference: {message}"),
        }
    }
}

impl std::error::Error for SecretError {}

impl From<wit::SecretRequest> for SecretRequest {
    fn from(request: wit::SecretRequest) -> Self {
        Self {
            reference: request.reference,
            service: request.service,
            scheme: request.scheme,
            tool_id: request.tool_id,
            context: request.context.into(),
        }
    }
}

impl From<SecretError> for wit::SecretError {
    fn from(error: SecretError) -> Self {
        match error {
            SecretError::NotFound(message) => Self::NotFound(message),
            SecretError::Denied(message) => Self::Denied(message),
            SecretError::Unavailable(message) => Self::Unavailable(message),
            SecretError::InvalidReference(message) => Self::InvalidReference(message),
        }
    }
}

/// The adapter the export macro hands to wit-bindgen. Not public API.
#[doc(hidden)]
pub struct SecretSourceExport<P>(PhantomData<P>);

impl<P: SecretSource> crate::lifecycle::Lifecycle for SecretSourceExport<P> {
    type Plugin = P;
    const KIND: crate::lifecycle::Kind = crate::lifecycle::Kind::SecretSource;
}

impl<P: SecretSource> wit::Guest for SecretSourceExport<P> {
    fn resolve(request: wit::SecretRequest) -> Result<String, wit::SecretError> {
        let request = SecretRequest::from(request);
        plugin::with_instance(|plugin: &P| plugin.resolve(&request))
            .unwrap_or_else(|| Err(SecretError::Unavailable(plugin::NOT_INITIALISED.to_owned())))
            .map_err(Into::into)
    }
}

/// Export a [`SecretSource`] as this crate's component. Call it once, at the crate root:
///
/// ```ignore
/// portcullis_sdk::export_secret_source!(MySource);
/// ```
#[macro_export]
macro_rules! export_secret_source {
    ($plugin:ty) => {
        $crate::__export_plugin!(
            $crate::secret::SecretSourceExport<$plugin>,
            secret_source,
            export_secret_source_kind
        );
    };
}
