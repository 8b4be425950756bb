//! Tool-id patterns used by `policy.deny`, `policy.approvalRequired` and curated tool sets.
//!
//! Grammar (anchored at both ends, byte-exact, case-sensitive):
//!
//! | token | matches |
//! |---|---|
//! | `**` | any run of bytes, separators included, possibly empty |
//! | `*`  | any run of bytes within one segment: never crosses `:` or `/` |
//! | anything else | itself |
//!
//! So `tickets:*` matches `tickets:listTickets` but not `tickets:get:/t/{id}`;
//! `tickets:**` matches both, and `**` matches every tool. An invalid pattern (empty, `***`,
//! whitespace or control characters) is a config error at load; it is never silently treated as
//! an exact match.

use std::fmt;

/// A compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    source: String,
    tokens: Vec<Token>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Literal(Vec<u8>),
    Star,
    DoubleStar,
}

/// Why a pattern was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternError {
    /// The offending pattern.
    pub pattern: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl fmt::Display for PatternError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid pattern {:?}: {}", self.pattern, self.reason)
    }
}

impl std::error::Error for PatternError {}

fn is_separator(b: u8) -> bool {
    b == b':' || b == b'/'
}

impl Pattern {
    /// Compile a pattern, refusing anything outside the grammar.
    pub fn parse(pattern: &str) -> Result<Self, PatternError> {
        let fail = |reason| PatternError {
            pattern: pattern.to_owned(),
            reason,
        };
        if pattern.is_empty() {
            return Err(fail("pattern is empty"));
        }
        if pattern.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(fail("pattern contains whitespace or control characters"));
        }
        let bytes = pattern.as_bytes();
        let mut tokens = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'*' {
                let run = bytes[i..].iter().take_while(|&&b| b == b'*').count();
                match run {
                    1 => tokens.push(Token::Star),
                    2 => tokens.push(Token::DoubleStar),
                    _ => return Err(fail("more than two '*' in a row")),
                }
                i += run;
            } else {
                let len = bytes[i..].iter().take_while(|&&b| b != b'*').count();
                tokens.push(Token::Literal(bytes[i..i + len].to_vec()));
                i += len;
            }
        }
        Ok(Self {
            source: pattern.to_owned(),
            tokens,
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether `id` matches the whole pattern.
    pub fn matches(&self, id: &str) -> bool {
        matches_from(&self.tokens, id.as_bytes())
    }
}

/// Backtracking matcher; patterns and ids are short, and each `*` tries at most one segment.
fn matches_from(tokens: &[Token], input: &[u8]) -> bool {
    match tokens.split_first() {
        None => input.is_empty(),
        Some((Token::Literal(lit), rest)) => {
            input.starts_with(lit) && matches_from(rest, &input[lit.len()..])
        }
        Some((Token::Star, rest)) => {
            let segment_end = input
                .iter()
                .position(|&b| is_separator(b))
                .unwrap_or(input.len());
            (0..=segment_end).any(|n| matches_from(rest, &input[n..]))
        }
        Some((Token::DoubleStar, rest)) => {
            (0..=input.len()).any(|n| matches_from(rest, &input[n..]))
        }
    }
}

/// Whether any pattern in the list matches.
pub fn any_matches(patterns: &[Pattern], id: &str) -> bool {
    patterns.iter().any(|p| p.matches(id))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, id: &str) -> bool {
        Pattern::parse(p).unwrap().matches(id)
    }

    #[test]
    fn star_stays_within_one_segment() {
        assert!(m("tickets:*", "tickets:listTickets"));
        assert!(!m("tickets:*", "tickets:get:/t/{id}"));
        assert!(!m("github:*", "github:repos/get"));
        assert!(m("github:repos/*", "github:repos/get"));
        assert!(m("github.*", "github.delete_repo"));
        assert!(
            !m("github.*", "githubX.read"),
            "'.' is a literal, not a wildcard"
        );
    }

    #[test]
    fn double_star_crosses_separators() {
        assert!(m("**", "anything:at/all"));
        assert!(m("tickets:**", "tickets:get:/t/{id}"));
        assert!(m("**:delete*", "svc:deleteRepo"));
    }

    #[test]
    fn patterns_are_anchored_and_byte_exact() {
        assert!(!m("tickets:list", "tickets:listTickets"));
        assert!(!m("list*", "tickets:listTickets"));
        assert!(!m("Tickets:*", "tickets:list"));
        assert!(!m("tickets:ａ*", "tickets:a"), "no Unicode normalisation");
        assert!(m("a*b", "ab"));
    }

    #[test]
    fn invalid_patterns_are_refused() {
        for bad in ["", "***", "a b", "tickets:*\n", "x\u{0}"] {
            assert!(Pattern::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }
}
