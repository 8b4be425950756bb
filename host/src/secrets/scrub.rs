//! Scrubbing upstream responses that echo a credential.
//!
//! Rule: a caller is never entitled to the upstream credential the runtime applied on its
//! behalf, so every echo of an applied value in the upstream's answer is replaced with
//! `[REDACTED]` before it reaches the caller, whatever the status (an API that answers
//! `401 invalid key abc123` is the common case).
//!
//! | form of the echo | handled by |
//! |---|---|
//! | as resolved | byte search |
//! | base64 (standard and URL-safe, padded or not: HTTP basic, tokens in JSON) | byte search |
//! | percent-encoded (the query and cookie forms `upstream::request` sends) | byte search |
//! | JSON-escaped (`\"`, `\\`, `\/`, control escapes) | byte search |
//! | inside any JSON string, whatever its escapes (`\u0074oken`) | the string is decoded, scrubbed and re-encoded; the rest of the document is kept byte for byte |
//! | `Content-Encoding: gzip`, `x-gzip`, `deflate` (stacked too) | decoded first (at most `maxResponseBytes` decoded), then as above; the caller gets the decoded body |
//! | any other `Content-Encoding` (`br`, `zstd`, ...) | refused: 502 `upstream_encoding_refused` |
//! | still present after JSON-unescaping or percent-decoding the scrubbed body (escaped echo outside a JSON string) | refused: 502 `upstream_credential_echo` |
//!
//! Longer forms are replaced first so that one form containing another is removed whole.
//! Cost: one `memmem` pass per form over the body; nothing is copied when nothing matches.
//! Not covered: encodings an upstream would have to invent for the purpose (hex, rot13,
//! base64 of a longer string that contains the value at an unaligned offset).

use std::io::Read as _;

use base64::Engine as _;
use bytes::Bytes;
use memchr::memmem;
use percent_encoding::utf8_percent_encode;

use super::{AppliedCredentials, COMPONENT, COOKIE_VALUE};

/// What an echoed credential is replaced with.
pub const REDACTED: &[u8] = b"[REDACTED]";

/// Why a credentialed response cannot be given to the caller.
#[derive(Debug, thiserror::Error)]
pub enum ScrubError {
    /// A `Content-Encoding` this host does not decode; the body cannot be checked.
    #[error("upstream response uses content-encoding {coding}, which is not decoded (gzip, deflate and identity are); a credentialed response that cannot be scrubbed is withheld")]
    UnsupportedEncoding {
        /// The coding's name when it is a registered one, else `an unknown coding`.
        coding: &'static str,
    },
    /// The body does not decode as its `Content-Encoding` says.
    #[error("upstream response is not valid {coding} data")]
    Corrupt {
        /// `gzip` or `deflate`.
        coding: &'static str,
    },
    /// The decoded body is larger than `maxResponseBytes`.
    #[error("upstream response exceeds the {limit}-byte limit once decoded")]
    TooLarge {
        /// `maxResponseBytes`.
        limit: u64,
    },
    /// The body still holds an applied credential in an escaped form that cannot be removed.
    #[error("upstream response echoes the applied credential in an encoded form that cannot be scrubbed; response withheld")]
    Echo,
}

impl ScrubError {
    /// The reason code reported to callers and audit.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::UnsupportedEncoding { .. } | Self::Corrupt { .. } => "upstream_encoding_refused",
            Self::TooLarge { .. } => "upstream_response_too_large",
            Self::Echo => "upstream_credential_echo",
        }
    }
}

/// The byte strings to look for, longest first.
fn needles(creds: &AppliedCredentials) -> Vec<Vec<u8>> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    let mut out: Vec<Vec<u8>> = Vec::new();
    for value in &creds.values {
        let raw = value.expose();
        if raw.is_empty() {
            continue;
        }
        out.push(raw.as_bytes().to_vec());
        for engine in [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD] {
            out.push(engine.encode(raw).into_bytes());
        }
        // The forms `upstream::request` puts on the wire for query parameters and cookies.
        for set in [COMPONENT, COOKIE_VALUE] {
            out.push(utf8_percent_encode(raw, set).to_string().into_bytes());
        }
        // What common JSON serialisers write for it (PHP and others also escape `/`).
        let json = serde_json::to_string(raw).unwrap_or_default();
        let json = json
            .get(1..json.len().saturating_sub(1))
            .unwrap_or_default();
        out.push(json.as_bytes().to_vec());
        out.push(json.replace('/', "\\/").into_bytes());
    }
    out.retain(|n| !n.is_empty());
    out.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
    out.dedup();
    out
}

/// `bytes` with every needle replaced, or `None` when nothing matched.
fn replace_all(bytes: &[u8], needles: &[Vec<u8>]) -> Option<Vec<u8>> {
    let mut current: Option<Vec<u8>> = None;
    for needle in needles {
        let finder = memmem::Finder::new(needle);
        let haystack = current.as_deref().unwrap_or(bytes);
        if finder.find(haystack).is_none() {
            continue;
        }
        let mut out = Vec::with_capacity(haystack.len());
        let mut rest = 0;
        for at in finder.find_iter(haystack) {
            // find_iter yields non-overlapping matches left to right.
            out.extend_from_slice(&haystack[rest..at]);
            out.extend_from_slice(REDACTED);
            rest = at + needle.len();
        }
        out.extend_from_slice(&haystack[rest..]);
        current = Some(out);
    }
    current
}

/// `body` with every applied credential replaced by [`REDACTED`]: the byte forms, then every
/// escaped JSON string that decodes to something holding one.
pub fn scrub(body: Bytes, creds: &AppliedCredentials) -> Bytes {
    if creds.values.is_empty() || body.is_empty() {
        return body;
    }
    let needles = needles(creds);
    let body = match replace_all(&body, &needles) {
        Some(out) => Bytes::from(out),
        None => body,
    };
    match scrub_json_strings(&body, &needles) {
        Some(out) => Bytes::from(out),
        None => body,
    }
}

/// A header value the caller will see, scrubbed the same way.
pub fn scrub_text(text: String, creds: &AppliedCredentials) -> String {
    if creds.values.is_empty() {
        return text;
    }
    match replace_all(text.as_bytes(), &needles(creds)) {
        Some(out) => String::from_utf8_lossy(&out).into_owned(),
        None => text,
    }
}

/// The whole rule for a credentialed response: decode its `Content-Encoding`, scrub, and
/// refuse what still holds a credential in an escaped form. Returns the body the caller may
/// see (decoded when it was encoded).
pub fn scrub_response(
    body: Bytes,
    content_encoding: Option<&str>,
    creds: &AppliedCredentials,
    limit: u64,
) -> Result<Bytes, ScrubError> {
    if creds.values.is_empty() {
        return Ok(body);
    }
    let body = match content_encoding {
        Some(codings) => decode(body, codings, limit)?,
        None => body,
    };
    let body = scrub(body, creds);
    if still_echoes(&body, creds) {
        return Err(ScrubError::Echo);
    }
    Ok(body)
}

/// Rewrite each escaped JSON string of a valid JSON `body` whose decoded text holds a needle.
fn scrub_json_strings(body: &[u8], needles: &[Vec<u8>]) -> Option<Vec<u8>> {
    if !body.contains(&b'\\') || serde_json::from_slice::<serde::de::IgnoredAny>(body).is_err() {
        return None;
    }
    let mut out: Option<Vec<u8>> = None;
    let mut copied = 0;
    let mut i = 0;
    // In a valid document every `"` outside a string opens one.
    while i < body.len() {
        if body[i] != b'"' {
            i += 1;
            continue;
        }
        let start = i;
        let mut escaped = false;
        i += 1;
        while i < body.len() && body[i] != b'"' {
            if body[i] == b'\\' {
                escaped = true;
                i += 1;
            }
            i += 1;
        }
        let end = i.min(body.len() - 1);
        i += 1;
        if !escaped {
            continue;
        }
        let Ok(text) = serde_json::from_slice::<String>(&body[start..=end]) else {
            continue;
        };
        let Some(clean) = replace_all(text.as_bytes(), needles) else {
            continue;
        };
        let clean = String::from_utf8_lossy(&clean);
        let out = out.get_or_insert_with(|| Vec::with_capacity(body.len()));
        out.extend_from_slice(&body[copied..start]);
        out.extend_from_slice(serde_json::to_string(&clean).unwrap_or_default().as_bytes());
        copied = end + 1;
    }
    let mut out = out?;
    out.extend_from_slice(&body[copied..]);
    Some(out)
}

/// Whether the raw value (or its base64) is still visible once JSON escapes are undone or
/// percent-encoding is decoded.
fn still_echoes(body: &[u8], creds: &AppliedCredentials) -> bool {
    let has_backslash = body.contains(&b'\\');
    let has_percent = body.contains(&b'%');
    if !has_backslash && !has_percent {
        return false;
    }
    let needles = needles(creds);
    let visible = |view: &[u8]| needles.iter().any(|n| memmem::find(view, n).is_some());
    (has_backslash && visible(&unescape_lenient(body)))
        || (has_percent && visible(&percent_encoding::percent_decode(body).collect::<Vec<u8>>()))
}

/// JSON-style unescaping that never fails: `\uXXXX` (and surrogate pairs) become the character,
/// `\x` becomes `x` for any other `x`.
fn unescape_lenient(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len());
    let mut i = 0;
    let hex4 = |at: usize| -> Option<u32> {
        let digits = std::str::from_utf8(body.get(at..at + 4)?).ok()?;
        u32::from_str_radix(digits, 16).ok()
    };
    while i < body.len() {
        if body[i] != b'\\' || i + 1 >= body.len() {
            out.push(body[i]);
            i += 1;
            continue;
        }
        let c = body[i + 1];
        let simple = match c {
            b'n' => Some(b'\n'),
            b't' => Some(b'\t'),
            b'r' => Some(b'\r'),
            b'b' => Some(8),
            b'f' => Some(12),
            b'u' => None,
            other => Some(other),
        };
        if let Some(byte) = simple {
            out.push(byte);
            i += 2;
            continue;
        }
        let Some(unit) = hex4(i + 2) else {
            out.push(c);
            i += 2;
            continue;
        };
        let mut used = 6;
        let mut code = unit;
        if (0xD800..0xDC00).contains(&unit) && body.get(i + 6..i + 8) == Some(b"\\u") {
            if let Some(low @ 0xDC00..0xE000) = hex4(i + 8) {
                code = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00);
                used = 12;
            }
        }
        let ch = char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER);
        out.extend_from_slice(ch.encode_utf8(&mut [0; 4]).as_bytes());
        i += used;
    }
    out
}

/// Undo `Content-Encoding` (codings listed in the order applied), at most `limit` bytes out.
fn decode(body: Bytes, codings: &str, limit: u64) -> Result<Bytes, ScrubError> {
    let list: Vec<String> = codings
        .split(',')
        .map(|c| c.trim().to_ascii_lowercase())
        .filter(|c| !c.is_empty())
        .collect();
    let mut current = body;
    for coding in list.iter().rev() {
        current = match coding.as_str() {
            "identity" => current,
            "gzip" | "x-gzip" => inflate(flate2::read::MultiGzDecoder::new(&current[..]), limit)
                .map_err(|e| e.unwrap_or(ScrubError::Corrupt { coding: "gzip" }))?,
            // RFC 9110 `deflate` is zlib-wrapped; some servers send raw deflate.
            "deflate" => inflate(flate2::read::ZlibDecoder::new(&current[..]), limit)
                .or_else(|e| match e {
                    Some(too_large) => Err(Some(too_large)),
                    None => inflate(flate2::read::DeflateDecoder::new(&current[..]), limit),
                })
                .map_err(|e| e.unwrap_or(ScrubError::Corrupt { coding: "deflate" }))?,
            other => {
                let coding = match other {
                    "br" => "br",
                    "zstd" => "zstd",
                    "compress" | "x-compress" => "compress",
                    _ => "an unknown coding",
                };
                return Err(ScrubError::UnsupportedEncoding { coding });
            }
        };
    }
    Ok(current)
}

/// Read a decoder to the end; `Err(None)` for corrupt data, `Err(Some(TooLarge))` past `limit`.
fn inflate(reader: impl std::io::Read, limit: u64) -> Result<Bytes, Option<ScrubError>> {
    let mut out = Vec::new();
    reader
        .take(limit.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(|_| None)?;
    if out.len() as u64 > limit {
        return Err(Some(ScrubError::TooLarge { limit }));
    }
    Ok(Bytes::from(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::SecretValue;
    use std::io::Write as _;

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

    #[test]
    fn json_escaped_echoes_are_replaced_whatever_the_escape() {
        let c = creds(&["to/ken\"x"]);
        let body = br#"{"a":"to\/ken\"x","b":"\u0074o/ken\u0022x","k\u0074o/ken\"x":1,"n":1.50}"#;
        let out = scrub(Bytes::from_static(body), &c);
        let text = std::str::from_utf8(&out).unwrap();
        assert!(!text.contains("ken"), "{text}");
        let value: serde_json::Value = serde_json::from_str(text).unwrap();
        assert_eq!(value["a"], "[REDACTED]");
        assert_eq!(value["b"], "[REDACTED]");
        assert!(
            text.ends_with(r#""n":1.50}"#),
            "rest kept byte for byte: {text}"
        );
    }

    #[test]
    fn an_escaped_echo_outside_json_is_refused() {
        let c = creds(&["token"]);
        let body = Bytes::from_static(br"not json: \u0074oken");
        let err = scrub_response(body, None, &c, 1 << 20).unwrap_err();
        assert_eq!(err.reason(), "upstream_credential_echo");
        let body = Bytes::from_static(b"not json: %74oken");
        assert!(scrub_response(body, None, &c, 1 << 20).is_err());
    }

    #[test]
    fn compressed_echoes_are_decoded_then_scrubbed_and_bounded() {
        let c = creds(&["token"]);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b"{\"echo\":\"token\"}").unwrap();
        let gz = Bytes::from(gz.finish().unwrap());
        let out = scrub_response(gz.clone(), Some("gzip"), &c, 1 << 20).unwrap();
        assert_eq!(&out[..], br#"{"echo":"[REDACTED]"}"#);
        let err = scrub_response(gz, Some("gzip"), &c, 4).unwrap_err();
        assert_eq!(err.reason(), "upstream_response_too_large");
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        z.write_all(b"token").unwrap();
        let z = Bytes::from(z.finish().unwrap());
        assert_eq!(
            &scrub_response(z, Some("deflate"), &c, 1 << 20).unwrap()[..],
            REDACTED
        );
        for coding in ["br", "zstd", "token-like-unknown"] {
            let err =
                scrub_response(Bytes::from_static(b"x"), Some(coding), &c, 1 << 20).unwrap_err();
            assert_eq!(err.reason(), "upstream_encoding_refused");
            assert!(!err.to_string().contains("token-like"), "{err}");
        }
        let err =
            scrub_response(Bytes::from_static(b"junk"), Some("gzip"), &c, 1 << 20).unwrap_err();
        assert_eq!(err.reason(), "upstream_encoding_refused");
    }
}
