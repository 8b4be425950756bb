//! The decrypted secrets file: `KEY=value` lines.
//!
//! - Blank lines and lines starting with `#` (after leading spaces) are ignored.
//! - `KEY` is made of ASCII letters, digits, `_`, `.` and `-`; spaces around it are trimmed.
//! - The value is everything after the first `=`, verbatim (no quotes, no escapes, no trimming
//!   other than a trailing `\r`), so any header-safe value can be stored as is.
//! - A key defined twice is an error: the file is ambiguous, and a silent "last wins" hides mistakes.
//!
//! Errors name the line number, never the line's content (it may be a secret).

use std::collections::HashMap;

use zeroize::Zeroizing;

/// Secret values by key; zeroed when dropped.
pub type Secrets = HashMap<String, Zeroizing<String>>;

/// Parse the decrypted file.
pub fn parse(text: &str) -> Result<Secrets, String> {
    let mut secrets = Secrets::new();
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        let line = line.strip_suffix('\r').unwrap_or(line);
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let (key, value) = trimmed
            .split_once('=')
            .ok_or_else(|| format!("line {number}: expected KEY=value"))?;
        let key = key.trim();
        if !is_key(key) {
            return Err(format!(
                "line {number}: the key must be ASCII letters, digits, '_', '.' or '-'"
            ));
        }
        if secrets
            .insert(key.to_owned(), Zeroizing::new(value.to_owned()))
            .is_some()
        {
            return Err(format!("line {number}: key `{key}` is defined twice"));
        }
    }
    Ok(secrets)
}

/// Whether `key` is a valid key (and so a valid reference).
pub fn is_key(key: &str) -> bool {
    !key.is_empty()
        && key
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'_' | b'.' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_values_comments_and_blank_lines() {
        let secrets =
            parse("# comment\n\nDB_PASSWORD=p@ss=word \r\n  api.token = abc\nEMPTY=\n").unwrap();
        assert_eq!(secrets["DB_PASSWORD"].as_str(), "p@ss=word ");
        assert_eq!(secrets["api.token"].as_str(), " abc");
        assert_eq!(secrets["EMPTY"].as_str(), "");
        assert_eq!(secrets.len(), 3);
    }

    #[test]
    fn malformed_lines_name_the_line_not_the_content() {
        let error = parse("A=1\nsupersecretwithoutequals\n").unwrap_err();
        assert_eq!(error, "line 2: expected KEY=value");
        assert!(!error.contains("supersecret"));
        assert!(parse("bad key=1").unwrap_err().starts_with("line 1:"));
    }

    #[test]
    fn duplicate_keys_are_refused() {
        assert_eq!(
            parse("A=1\nA=2\n").unwrap_err(),
            "line 2: key `A` is defined twice"
        );
    }
}
