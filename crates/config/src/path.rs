//! JSON paths as reported in diagnostics: `sources.tickets.uri`, `policy.deny[2]`, `$` for the root.
//!
//! Keys that are not plain identifiers (a `.` in `secrets["pets.oauth"]`, spaces, quotes) are
//! written in bracket form so every reported path can be read back unambiguously.

use std::fmt;

/// One step of a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// An object key.
    Key(String),
    /// An array index.
    Index(usize),
}

/// A location inside a config document.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JsonPath(pub Vec<Segment>);

impl JsonPath {
    /// The document root (`$`).
    pub fn root() -> Self {
        Self(Vec::new())
    }

    /// Build a path from dotted keys, e.g. `JsonPath::of(&["runtime", "mode"])`.
    pub fn of(keys: &[&str]) -> Self {
        Self(keys.iter().map(|k| Segment::Key((*k).to_owned())).collect())
    }

    /// This path extended by an object key.
    pub fn key(&self, key: &str) -> Self {
        let mut next = self.0.clone();
        next.push(Segment::Key(key.to_owned()));
        Self(next)
    }

    /// This path extended by an array index.
    pub fn index(&self, index: usize) -> Self {
        let mut next = self.0.clone();
        next.push(Segment::Index(index));
        Self(next)
    }

    /// The value at this path inside `doc`, if present.
    pub fn lookup<'a>(&self, doc: &'a serde_json::Value) -> Option<&'a serde_json::Value> {
        self.0.iter().try_fold(doc, |value, segment| match segment {
            Segment::Key(k) => value.get(k.as_str()),
            Segment::Index(i) => value.get(*i),
        })
    }
}

fn is_plain(key: &str) -> bool {
    !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '$')
}

impl fmt::Display for JsonPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("$");
        }
        for (i, segment) in self.0.iter().enumerate() {
            match segment {
                Segment::Key(k) if is_plain(k) => {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    f.write_str(k)?;
                }
                Segment::Key(k) => {
                    if i == 0 {
                        f.write_str("$")?;
                    }
                    // serde_json string encoding escapes quotes and control characters.
                    let quoted = serde_json::to_string(k).map_err(|_| fmt::Error)?;
                    write!(f, "[{quoted}]")?;
                }
                Segment::Index(n) => {
                    if i == 0 {
                        f.write_str("$")?;
                    }
                    write!(f, "[{n}]")?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_render_dotted_with_brackets_for_odd_keys_and_indexes() {
        assert_eq!(JsonPath::root().to_string(), "$");
        assert_eq!(
            JsonPath::of(&["sources", "tickets", "uri"]).to_string(),
            "sources.tickets.uri"
        );
        let p = JsonPath::of(&["secrets", "pets.oauth"]).key("type");
        assert_eq!(p.to_string(), r#"secrets["pets.oauth"].type"#);
        assert_eq!(
            JsonPath::of(&["policy", "deny"]).index(2).to_string(),
            "policy.deny[2]"
        );
    }
}
