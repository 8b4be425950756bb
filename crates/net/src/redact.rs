//! Redaction shared by every stage: what a log line, an error or a `Debug` may show of a
//! credential-bearing value. A leaf: it imports nothing from the crate.
//!
//! | value | shown as | why |
//! |---|---|---|
//! | a URL (`redact_url`) | `scheme://host[:port]/path` | userinfo, query and fragment may carry a token |
//! | a secret ([`SecretValue`]) | `SecretValue(<redacted>)` in `Debug`; no `Display` | the value only ever goes onto a request, through [`SecretValue::expose`] |
//!
//! Default: redact. A value that is not wrapped cannot reach a message by accident only if
//! the types above are the only way it travels, so resolved credentials and tokens are
//! `SecretValue`s from the moment they are read.

use url::{Position, Url};

/// `scheme://host[:port]/path`: the URL without userinfo, query and fragment.
pub fn redact_url(url: &Url) -> String {
    format!(
        "{}://{}",
        url.scheme(),
        &url[Position::BeforeHost..Position::AfterPath]
    )
}

/// A resolved secret value (a credential, a token). Its `Debug` never shows the value.
#[derive(Clone)]
pub struct SecretValue(String);

impl SecretValue {
    /// Wrap a value obtained from a secret source or a token endpoint.
    pub fn new(value: String) -> Self {
        Self(value)
    }

    /// The value, for applying to a request only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretValue(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_value_debug_is_redacted() {
        assert_eq!(
            format!("{:?}", SecretValue::new("canary".into())),
            "SecretValue(<redacted>)"
        );
    }

    #[test]
    fn urls_lose_userinfo_query_and_fragment() {
        let url = Url::parse("https://user:pw@api.example:8443/v1/doc?token=abc#frag").unwrap();
        assert_eq!(redact_url(&url), "https://api.example:8443/v1/doc");
    }
}
