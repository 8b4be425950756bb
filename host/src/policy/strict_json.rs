//! Strict JSON for what approval grants and policy bind to: the runtime must read a request the
//! way every upstream will, or an approval for one call can be spent on another.
//!
//! | rule | why | failure |
//! |---|---|---|
//! | no object has the same key twice | parsers disagree on which one wins (`{"to":"mallory","to":"alice"}`: serde keeps the last, many upstreams the first) | [`StrictJsonError::DuplicateKey`] |
//! | every number is one the runtime represents exactly (integers within 64 bits, decimals that are exactly the nearest `f64`) | otherwise two different amounts canonicalise to the same digest, and the audit shows a value that was never sent | [`StrictJsonError::InexactNumber`] |
//! | nesting at most [`MAX_DEPTH`] deep | bounded work and memory before anything is parsed for real | [`StrictJsonError::TooDeep`] |
//!
//! The check reads the bytes once as a stream of events (`json-event-parser`, which keeps the
//! raw text of numbers; serde_json without `arbitrary_precision` does not, and that feature
//! would change every `Value` in the process). Callers run it on the raw request and on a
//! decoded body before either is parsed into values.

use std::collections::HashSet;

use json_event_parser::{JsonEvent, SliceJsonParser};

/// Deepest nesting of arrays and objects accepted (serde_json's own limit is 128).
pub const MAX_DEPTH: usize = 128;

/// Why a JSON text is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StrictJsonError {
    /// Not JSON at all (the caller decides whether that is an error).
    #[error("not JSON: {0}")]
    Syntax(String),
    /// An object names a key twice.
    #[error("duplicate key {key:?} at {at}")]
    DuplicateKey {
        /// The key, as decoded.
        key: String,
        /// JSON path of the object.
        at: String,
    },
    /// A number the runtime would not represent exactly.
    #[error("number {text} at {at} cannot be represented exactly (integers must fit in 64 bits and decimals in a double); send it as a string")]
    InexactNumber {
        /// The number as written (cut to 40 characters).
        text: String,
        /// JSON path of the number.
        at: String,
    },
    /// Nested deeper than [`MAX_DEPTH`].
    #[error("nested deeper than {MAX_DEPTH} levels at {at}")]
    TooDeep {
        /// JSON path where the limit was passed.
        at: String,
    },
}

/// One open array or object.
enum Frame {
    Array(usize),
    Object {
        keys: HashSet<String>,
        key: Option<String>,
    },
}

/// Check `bytes` against every rule of the module header.
pub fn check(bytes: &[u8]) -> Result<(), StrictJsonError> {
    let mut parser = SliceJsonParser::new(bytes);
    let mut stack: Vec<Frame> = Vec::new();
    loop {
        let event = parser
            .parse_next()
            .map_err(|e| StrictJsonError::Syntax(e.to_string()))?;
        match event {
            JsonEvent::Eof => return Ok(()),
            JsonEvent::ObjectKey(key) => {
                if let Some(Frame::Object { keys, key: current }) = stack.last_mut() {
                    if !keys.insert(key.to_string()) {
                        let key = key.into_owned();
                        stack.pop();
                        return Err(StrictJsonError::DuplicateKey {
                            key,
                            at: path(&stack),
                        });
                    }
                    *current = Some(key.into_owned());
                }
            }
            JsonEvent::StartArray | JsonEvent::StartObject => {
                advance(&mut stack);
                if stack.len() >= MAX_DEPTH {
                    return Err(StrictJsonError::TooDeep { at: path(&stack) });
                }
                stack.push(match event {
                    JsonEvent::StartArray => Frame::Array(0),
                    _ => Frame::Object {
                        keys: HashSet::new(),
                        key: None,
                    },
                });
            }
            JsonEvent::EndArray | JsonEvent::EndObject => {
                stack.pop();
            }
            JsonEvent::Number(text) => {
                advance(&mut stack);
                if !exact(&text) {
                    return Err(StrictJsonError::InexactNumber {
                        text: text.chars().take(40).collect(),
                        at: path(&stack),
                    });
                }
            }
            JsonEvent::String(_) | JsonEvent::Boolean(_) | JsonEvent::Null => advance(&mut stack),
        }
    }
}

/// A value starts in the innermost array: move its index on (objects track keys instead).
fn advance(stack: &mut [Frame]) {
    if let Some(Frame::Array(next)) = stack.last_mut() {
        *next += 1;
    }
}

/// The JSON path of the value being read (`$`, `$.a[2].b`).
fn path(stack: &[Frame]) -> String {
    let mut out = String::from("$");
    for frame in stack {
        match frame {
            Frame::Array(next) => out.push_str(&format!("[{}]", next.saturating_sub(1))),
            Frame::Object { key: Some(key), .. } => {
                let plain = key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                if plain && !key.is_empty() {
                    out.push('.');
                    out.push_str(key);
                } else {
                    out.push_str(&format!("[{}]", serde_json::Value::from(key.as_str())));
                }
            }
            Frame::Object { key: None, .. } => {}
        }
    }
    out
}

/// Whether serde_json (without `arbitrary_precision`) holds the number `text` exactly.
fn exact(text: &str) -> bool {
    if !text.contains(['.', 'e', 'E']) {
        return text.parse::<i64>().is_ok() || text.parse::<u64>().is_ok();
    }
    let Ok(value) = text.parse::<f64>() else {
        return false;
    };
    // `{:e}` prints the shortest digits that read back as the same double.
    value.is_finite() && decimal(text) == decimal(&format!("{value:e}"))
}

/// A decimal number as (negative, significant digits, power of ten), zero as `(false, "", 0)`.
fn decimal(text: &str) -> Option<(bool, String, i64)> {
    let (negative, text) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (mantissa, exponent) = match text.split_once(['e', 'E']) {
        Some((m, e)) => (m, e.trim_start_matches('+').parse::<i64>().ok()?),
        None => (text, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let mut power = exponent.checked_sub(i64::try_from(frac.len()).ok()?)?;
    let digits = format!("{int}{frac}");
    let digits = digits.trim_start_matches('0');
    let significant = digits.trim_end_matches('0');
    power = power.checked_add(i64::try_from(digits.len() - significant.len()).ok()?)?;
    if significant.is_empty() {
        return Some((false, String::new(), 0));
    }
    Some((negative, significant.to_owned(), power))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_keys_are_refused_at_any_depth_with_their_path() {
        assert_eq!(
            check(br#"{"to":"mallory","amount":1,"to":"alice-savings"}"#),
            Err(StrictJsonError::DuplicateKey {
                key: "to".into(),
                at: "$".into()
            })
        );
        assert_eq!(
            check(br#"{"a":[1,{"x":1,"x":2}]}"#),
            Err(StrictJsonError::DuplicateKey {
                key: "x".into(),
                at: "$.a[1]".into()
            })
        );
        // Escapes decode to the same key: still a duplicate.
        assert!(check(br#"{"to":1,"t\u006f":2}"#).is_err());
        assert!(
            check(br#"{"a":{"k":1},"b":{"k":1}}"#).is_ok(),
            "same key in two objects"
        );
    }

    #[test]
    fn numbers_must_be_represented_exactly() {
        for ok in [
            "0",
            "-0",
            "1",
            "-9223372036854775808",
            "18446744073709551615",
            "1.5",
            "0.1",
            "1e2",
            "1E+2",
            "2.50",
            "-0.0",
            "1.7976931348623157e308",
            "5e-324",
            "123.456e-2",
        ] {
            assert_eq!(check(ok.as_bytes()), Ok(()), "{ok}");
        }
        for bad in [
            "18446744073709551616",
            "18446744073709551617",
            "-9223372036854775809",
            "0.10000000000000000000001",
            "9007199254740993.0",
            "1e400",
            "1e99999999999999999999",
        ] {
            assert!(
                matches!(
                    check(bad.as_bytes()),
                    Err(StrictJsonError::InexactNumber { .. })
                ),
                "{bad}"
            );
        }
        assert_eq!(
            check(br#"{"n":[1,2,18446744073709551617]}"#)
                .unwrap_err()
                .to_string()
                .split(" cannot")
                .next()
                .unwrap(),
            "number 18446744073709551617 at $.n[2]"
        );
    }

    #[test]
    fn nesting_is_bounded_and_syntax_errors_are_reported() {
        let deep = "[".repeat(MAX_DEPTH + 1) + &"]".repeat(MAX_DEPTH + 1);
        assert!(matches!(
            check(deep.as_bytes()),
            Err(StrictJsonError::TooDeep { .. })
        ));
        let fine = "[".repeat(MAX_DEPTH - 1) + &"]".repeat(MAX_DEPTH - 1);
        assert_eq!(check(fine.as_bytes()), Ok(()));
        assert!(matches!(check(b"{\"a\":"), Err(StrictJsonError::Syntax(_))));
        assert!(matches!(check(b"\xff"), Err(StrictJsonError::Syntax(_))));
    }
}
