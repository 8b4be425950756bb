//! Scrubbing upstream responses that echo a credential.
//!
//! Rule: a caller is never entitled to the upstream credential the runtime applied on its
//! behalf, so every occurrence of an applied value in the upstream's response body — as
//! resolved, base64-encoded (HTTP basic) or percent-encoded (query, cookie) — is replaced with
//! `[REDACTED]` before the body reaches the caller, whatever the status (an API that answers
//! `401 invalid key abc123` is the common case). Longer forms are replaced first so that one
//! form containing another is removed whole. Cost: one `memmem` pass per form over the body;
//! nothing is copied when nothing matches.

use base64::Engine as _;
use bytes::Bytes;
use memchr::memmem;
use percent_encoding::utf8_percent_encode;

use crate::upstream::request::{COMPONENT, COOKIE_VALUE};
use crate::upstream::AppliedCredentials;

/// What an echoed credential is replaced with.
pub const REDACTED: &[u8] = b"[REDACTED]";

/// The byte strings to look for, longest first.
fn needles(creds: &AppliedCredentials) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = Vec::new();
    for value in &creds.values {
        let raw = value.expose();
        if raw.is_empty() {
            continue;
        }
        out.push(raw.as_bytes().to_vec());
        out.push(
            base64::engine::general_purpose::STANDARD
                .encode(raw)
                .into_bytes(),
        );
        // The forms `upstream::request` puts on the wire for query parameters and cookies.
        for set in [COMPONENT, COOKIE_VALUE] {
            out.push(utf8_percent_encode(raw, set).to_string().into_bytes());
        }
    }
    out.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
    out.dedup();
    out
}

/// `body` with every applied credential replaced by [`REDACTED`].
pub fn scrub(body: Bytes, creds: &AppliedCredentials) -> Bytes {
    if creds.values.is_empty() || body.is_empty() {
        return body;
    }
    let mut current = body;
    for needle in needles(creds) {
        let finder = memmem::Finder::new(&needle);
        if finder.find(&current).is_none() {
            continue;
        }
        let mut out = Vec::with_capacity(current.len());
        let mut rest = 0;
        for at in finder.find_iter(&current) {
            // find_iter yields non-overlapping matches left to right.
            out.extend_from_slice(&current[rest..at]);
            out.extend_from_slice(REDACTED);
            rest = at + needle.len();
        }
        out.extend_from_slice(&current[rest..]);
        current = Bytes::from(out);
    }
    current
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::SecretValue;

    fn creds(values: &[&str]) -> AppliedCredentials {
        AppliedCredentials {
            values: values
                .iter()
                .map(|v| SecretValue::new((*v).into()))
                .collect(),
            ..AppliedCredentials::default()
        }
    }

    #[test]
    fn every_form_of_an_applied_value_is_replaced() {
        let c = creds(&["user:pa ss"]);
        let body = Bytes::from_static(
            b"{\"error\":\"bad key user:pa ss\",\"basic\":\"dXNlcjpwYSBzcw==\",\"q\":\"user%3Apa%20ss\"}",
        );
        let out = scrub(body, &c);
        assert_eq!(
            &out[..],
            b"{\"error\":\"bad key [REDACTED]\",\"basic\":\"[REDACTED]\",\"q\":\"[REDACTED]\"}"
        );
    }

    #[test]
    fn bodies_without_a_match_are_returned_untouched() {
        let body = Bytes::from_static(b"nothing to see");
        let out = scrub(body.clone(), &creds(&["CANARY"]));
        assert_eq!(out.as_ptr(), body.as_ptr(), "no copy when nothing matches");
        let out = scrub(body.clone(), &creds(&[]));
        assert_eq!(out, body);
    }

    #[test]
    fn repeated_and_adjacent_echoes_are_all_replaced() {
        let out = scrub(
            Bytes::from_static(b"CANARYCANARY x CANARY"),
            &creds(&["CANARY"]),
        );
        assert_eq!(&out[..], b"[REDACTED][REDACTED] x [REDACTED]");
    }
}
