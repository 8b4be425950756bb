//! Every value a plugin returns is checked before the host uses it. Wasmtime's sandbox keeps a
//! guest from reaching the host's memory; it says nothing about whether the *values* it returns
//! are sane, so the host enforces the contract written in the WIT.

use super::error::CallErrorKind;

/// Largest secret value (it is written into an HTTP header or query).
pub const SECRET_MAX: usize = 16 * 1024;
/// Largest policy reason, principal, scope or lineage entry.
pub const TEXT_MAX: usize = 1024;
/// Largest principal id.
pub const PRINCIPAL_MAX: usize = 256;
/// Most scopes an identity may carry.
pub const SCOPES_MAX: usize = 256;
/// Longest lineage.
pub const LINEAGE_MAX: usize = 16;
/// Guest error messages are cut to this many bytes before they are logged or audited.
pub const GUEST_MESSAGE_MAX: usize = 512;

fn invalid(message: impl Into<String>) -> CallErrorKind {
    CallErrorKind::InvalidReturn(message.into())
}

/// A secret value: non-empty, at most [`SECRET_MAX`] bytes, no CR, LF or NUL. The value is
/// never quoted in the error.
pub fn secret(value: &str) -> Result<(), CallErrorKind> {
    if value.is_empty() {
        return Err(invalid("the secret is empty"));
    }
    if value.len() > SECRET_MAX {
        return Err(invalid(format!(
            "the secret is {} bytes, more than {SECRET_MAX}",
            value.len()
        )));
    }
    if value.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0)) {
        return Err(invalid("the secret contains CR, LF or NUL"));
    }
    Ok(())
}

/// A policy reason or other operator-facing text: bounded and free of control characters.
pub fn text(what: &str, value: &str, max: usize) -> Result<(), CallErrorKind> {
    if value.len() > max {
        return Err(invalid(format!(
            "{what} is {} bytes, more than {max}",
            value.len()
        )));
    }
    if value.chars().any(char::is_control) {
        return Err(invalid(format!("{what} contains control characters")));
    }
    Ok(())
}

/// Cut a guest's own error message for logs and audit (never trusted to be short).
pub fn guest_message(message: &str) -> String {
    let mut end = message.len().min(GUEST_MESSAGE_MAX);
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    message[..end].escape_debug().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_must_be_header_safe_and_bounded() {
        assert!(secret("token").is_ok());
        assert!(secret("").is_err());
        assert!(secret("a\r\nX-Evil: 1").is_err());
        assert!(secret("a\0").is_err());
        assert!(secret(&"x".repeat(SECRET_MAX)).is_ok());
        let err = secret(&"x".repeat(SECRET_MAX + 1)).unwrap_err();
        assert!(!err.to_string().contains("xxx"), "{err}");
    }

    #[test]
    fn texts_are_bounded_and_without_controls() {
        assert!(text("reason", "fine", 10).is_ok());
        assert!(text("reason", "0123456789A", 10).is_err());
        assert!(text("reason", "line\nforged", 100).is_err());
        assert_eq!(guest_message("a\nb"), "a\\nb");
        assert_eq!(guest_message(&"é".repeat(400)).len(), 512);
    }
}
