//! Applying resolved secrets to a request, per requirement type.
//!
//! | requirement | applied as |
//! |---|---|
//! | `http` + `bearer` | `Authorization: Bearer <value>` |
//! | `http` + `basic` | `Authorization: Basic base64(<value>)`; the value is `user:password` |
//! | `apiKey` in `header` / `query` / `cookie` | that header, query parameter or cookie |
//! | `oauth2`, `openIdConnect` | `Authorization: Bearer <access token>` from an `oauth2` secret |
//!
//! Two requirements writing the same target with different values fail the alternative.

use base64::Engine as _;
use http::{HeaderName, HeaderValue};
use percent_encoding::{AsciiSet, CONTROLS, NON_ALPHANUMERIC};

use super::SecretValue;
use crate::catalog::AuthRequirement;

/// How the upstream request encodes path arguments, query and cookie names and query
/// values ([`crate::upstream::request`]); [`super::scrub`] looks for a credential in these
/// encodings too. Everything outside RFC 3986 `unreserved` (`ALPHA DIGIT - . _ ~`) is encoded.
pub(crate) const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Bytes that would end or split a cookie value (RFC 6265 `cookie-octet` complement, plus `%`).
pub(crate) const COOKIE_VALUE: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b',')
    .add(b';')
    .add(b'\\')
    .add(b'%')
    .add(0x7f);

/// Credentials to apply, produced by the secrets stage. `Debug` shows names only.
#[derive(Clone, Default)]
pub struct AppliedCredentials {
    /// Headers set on the request (replacing caller headers of the same name).
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// Query parameters (replacing caller query flags of the same name).
    pub query: Vec<(String, String)>,
    /// Cookies (replacing caller cookie flags of the same name).
    pub cookies: Vec<(String, String)>,
    /// The raw secret values behind the above, so echoes of them can be scrubbed from the
    /// upstream's response ([`crate::secrets::scrub`]).
    pub values: Vec<SecretValue>,
}

impl AppliedCredentials {
    /// True when no credential of any kind is applied.
    pub fn is_empty(&self) -> bool {
        self.headers.is_empty() && self.query.is_empty() && self.cookies.is_empty()
    }
}

impl std::fmt::Debug for AppliedCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppliedCredentials")
            .field(
                "headers",
                &self
                    .headers
                    .iter()
                    .map(|(n, _)| n.as_str())
                    .collect::<Vec<_>>(),
            )
            .field(
                "query",
                &self
                    .query
                    .iter()
                    .map(|(n, _)| n.as_str())
                    .collect::<Vec<_>>(),
            )
            .field(
                "cookies",
                &self
                    .cookies
                    .iter()
                    .map(|(n, _)| n.as_str())
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// Accumulates the credentials of one alternative.
#[derive(Debug, Default)]
pub struct Applier {
    creds: AppliedCredentials,
}

impl Applier {
    /// Apply one requirement's value.
    pub fn apply(
        &mut self,
        requirement: &AuthRequirement,
        value: &SecretValue,
    ) -> Result<(), String> {
        let scheme = requirement.scheme.to_ascii_lowercase();
        self.creds.values.push(value.clone());
        match (
            requirement.kind.as_str(),
            scheme.as_str(),
            requirement.location.as_str(),
        ) {
            ("http", "bearer", _) => {
                self.header("authorization", format!("Bearer {}", value.expose()))
            }
            ("http", "basic", _) => {
                let encoded = base64::engine::general_purpose::STANDARD.encode(value.expose());
                self.header("authorization", format!("Basic {encoded}"))
            }
            ("apiKey", _, "header") => {
                self.header(&requirement.param_name, value.expose().to_owned())
            }
            ("apiKey", _, "query") => Self::set(
                &mut self.creds.query,
                &requirement.param_name,
                value.expose(),
                "query parameter",
            ),
            ("apiKey", _, "cookie") => Self::set(
                &mut self.creds.cookies,
                &requirement.param_name,
                value.expose(),
                "cookie",
            ),
            // The value is an access token from an `oauth2` secret (checked by the resolver).
            ("oauth2" | "openIdConnect", _, _) => {
                self.header("authorization", format!("Bearer {}", value.expose()))
            }
            (kind, scheme, location) => Err(format!(
                "unsupported security scheme type={kind} scheme={scheme} in={location}"
            )),
        }
    }

    fn header(&mut self, name: &str, value: String) -> Result<(), String> {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("invalid header name {name:?}"))?;
        let mut value = HeaderValue::try_from(value)
            .map_err(|_| format!("value for header {name} is not a valid header value"))?;
        value.set_sensitive(true);
        if let Some((_, existing)) = self.creds.headers.iter().find(|(n, _)| *n == name) {
            return if *existing == value {
                Ok(())
            } else {
                Err(format!("conflicting header auth target {name}"))
            };
        }
        self.creds.headers.push((name, value));
        Ok(())
    }

    fn set(
        target: &mut Vec<(String, String)>,
        name: &str,
        value: &str,
        what: &str,
    ) -> Result<(), String> {
        if let Some((_, existing)) = target.iter().find(|(n, _)| n == name) {
            return if existing == value {
                Ok(())
            } else {
                Err(format!("conflicting {what} auth target {name}"))
            };
        }
        target.push((name.to_owned(), value.to_owned()));
        Ok(())
    }

    /// The credentials accumulated so far.
    pub fn finish(self) -> AppliedCredentials {
        self.creds
    }
}
