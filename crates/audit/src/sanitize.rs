//! Control characters never reach the audit file or a terminal raw.
//!
//! Rule: a serialised record is passed through [`escape_controls`] before it is sealed, and
//! `audit tail` passes every line through it again before printing (a file edited by hand may
//! hold anything). JSON already escapes U+0000..U+001F inside strings; this also escapes DEL
//! (U+007F), the C1 controls U+0080..U+009F (U+009B is a one-byte CSI on some terminals) and
//! the line/paragraph separators U+2028/U+2029 as `\uXXXX`. Those characters can only occur
//! inside JSON strings (structural bytes are ASCII), so the result is valid JSON that decodes to
//! the same values, is one line, and cannot forge a second record or an ANSI sequence.

use std::borrow::Cow;

/// Escape raw control characters in a JSON line (see the module rule).
pub fn escape_controls(line: &[u8]) -> Cow<'_, [u8]> {
    let needs = |i: usize| -> Option<(usize, u32)> {
        let b = line[i];
        match b {
            0x00..=0x1f | 0x7f => Some((1, u32::from(b))),
            0xc2 if matches!(line.get(i + 1), Some(0x80..=0x9f)) => {
                Some((2, u32::from(line[i + 1])))
            }
            0xe2 if line.get(i + 1) == Some(&0x80)
                && matches!(line.get(i + 2), Some(0xa8 | 0xa9)) =>
            {
                Some((3, 0x2000 + u32::from(line[i + 2] - 0x80)))
            }
            _ => None,
        }
    };
    if !(0..line.len()).any(|i| needs(i).is_some()) {
        return Cow::Borrowed(line);
    }
    let mut out = Vec::with_capacity(line.len() + 16);
    let mut i = 0;
    while i < line.len() {
        match needs(i) {
            Some((width, code)) => {
                out.extend_from_slice(format!("\\u{code:04x}").as_bytes());
                i += width;
            }
            None => {
                out.push(line[i]);
                i += 1;
            }
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_become_json_escapes_that_decode_to_the_same_text() {
        let value = "a\u{7f}b\u{9b}31mc\u{2028}d\u{2029}é€";
        let json = serde_json::to_vec(&serde_json::json!({ "v": value })).unwrap();
        let escaped = escape_controls(&json);
        assert!(escaped.iter().all(|&b| b >= 0x20 && b != 0x7f));
        let text = std::str::from_utf8(&escaped).unwrap();
        assert!(!text.contains('\u{9b}') && !text.contains('\u{2028}'));
        assert!(text.contains("\\u007f") && text.contains("\\u009b") && text.contains("\\u2028"));
        let back: serde_json::Value = serde_json::from_slice(&escaped).unwrap();
        assert_eq!(back["v"], value);
        let plain = br#"{"v":"plain \u001b ok"}"#;
        assert!(matches!(escape_controls(plain), Cow::Borrowed(_)));
        assert_eq!(&*escape_controls(b"x\n\x1b[2J"), b"x\\u000a\\u001b[2J");
    }
}
