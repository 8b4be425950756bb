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

use super::SecretValue;
use crate::catalog::AuthRequirement;
use crate::upstream::AppliedCredentials;

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
