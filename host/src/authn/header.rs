//! Extracting the bearer token from a request (RFC 6750 section 2.1).
//!
//! Rule: exactly one `Authorization` header, scheme `Bearer` compared case-insensitively
//! (RFC 9110 section 11.1), exactly one space, then a non-empty token of b64token characters.
//! Default: no header means "no credentials" (401 without an `error` attribute). Failure mode:
//! two headers are `invalid_request` (400); any other shape is `invalid_token` (401). Query and
//! body tokens are never read. The token is wrapped in [`BearerToken`], whose `Debug` redacts.

use http::HeaderMap;
use sha2::Digest as _;

/// A raw bearer token. Never logged: `Debug` shows only a short hash prefix.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct BearerToken(String);

impl BearerToken {
    /// Wrap a token value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The token, for validation only.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// First 12 hex digits of sha256(token): enough to correlate, useless to replay.
    pub fn fingerprint(&self) -> String {
        let digest = sha2::Sha256::digest(self.0.as_bytes());
        hex::encode(&digest[..6])
    }
}

impl std::fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BearerToken(sha256:{}…)", self.fingerprint())
    }
}

/// What the `Authorization` header holds.
#[derive(Debug, PartialEq, Eq)]
pub enum Credentials {
    /// No `Authorization` header.
    None,
    /// A well-formed bearer token.
    Bearer(BearerToken),
    /// Present but not a usable bearer credential.
    Malformed,
    /// More than one `Authorization` header.
    Ambiguous,
}

fn is_b64token(token: &str) -> bool {
    let body = token.trim_end_matches('=');
    !body.is_empty()
        && body.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
        })
}

/// Read the caller's credentials from the request headers.
pub fn credentials(headers: &HeaderMap) -> Credentials {
    let mut values = headers.get_all(http::header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Credentials::None;
    };
    if values.next().is_some() {
        return Credentials::Ambiguous;
    }
    let Ok(value) = value.to_str() else {
        return Credentials::Malformed;
    };
    let Some((scheme, token)) = value.split_once(' ') else {
        return Credentials::Malformed;
    };
    if !scheme.eq_ignore_ascii_case("bearer") || !is_b64token(token) {
        return Credentials::Malformed;
    }
    Credentials::Bearer(BearerToken::new(token))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(http::header::AUTHORIZATION, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn scheme_is_case_insensitive_and_needs_exactly_one_space() {
        assert!(matches!(
            credentials(&with(&["bearer abc.def"])),
            Credentials::Bearer(_)
        ));
        assert!(matches!(
            credentials(&with(&["BEARER abc"])),
            Credentials::Bearer(_)
        ));
        for bad in [
            "Bearer  abc",
            "Bearer\tabc",
            "Bearerabc",
            "Token abc",
            "Basic YWI6Yw==",
            "Bearer ",
            "Bearer a b",
        ] {
            assert_eq!(
                credentials(&with(&[bad])),
                Credentials::Malformed,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn two_headers_are_ambiguous_and_none_is_none() {
        assert_eq!(
            credentials(&with(&["Bearer a", "Bearer b"])),
            Credentials::Ambiguous
        );
        assert_eq!(credentials(&HeaderMap::new()), Credentials::None);
    }

    #[test]
    fn debug_never_shows_the_token() {
        let t = BearerToken::new("super-secret-token");
        assert!(!format!("{t:?}").contains("super-secret"));
    }
}
