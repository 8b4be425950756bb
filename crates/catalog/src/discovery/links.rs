//! Links out of the two places discovery reads them: an `application/linkset+json` document
//! (RFC 9264, as RFC 9727 API catalogs and RFC 8631 `service-meta` documents use it) and
//! `Link` response headers (RFC 8288, as RFC 8631 service roots use them).
//!
//! | form | read as |
//! |---|---|
//! | `{"linkset": [{"href", "rel", "type"?}]}` (or `"links"`) | the open-cli reference's flat form: one link, `rel` a space-separated list |
//! | `{"linkset": [{"anchor", "<rel>": [{"href", "type"?}]}]}` | RFC 9264: one link per target object, the member name is the relation |
//! | `Link: <uri>; rel="a b"; type="..."` | RFC 8288: commas inside `<>` or quotes do not split; the first `rel` counts |
//!
//! Failure mode: a body that is not a JSON object with a `linkset` (or `links`) array is an
//! error; more than [`super::MAX_LINKS`] links is an error (not a truncation, so a catalog is
//! never half-read); entries of another shape are skipped. Targets are not resolved here.

use serde_json::Value;

use super::MAX_LINKS;

/// One link as written (target not yet resolved).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Link {
    /// Relation types, e.g. `item`, `service-desc`, or an extension URI.
    pub(crate) rels: Vec<String>,
    /// Target reference, possibly relative.
    pub(crate) href: String,
    /// The `type` hint, when given.
    pub(crate) media_type: Option<String>,
    /// The link context (RFC 9264 `anchor`), when given.
    pub(crate) anchor: Option<String>,
}

impl Link {
    pub(crate) fn has_rel(&self, rel: &str) -> bool {
        self.rels.iter().any(|r| r == rel)
    }
}

/// Why a linkset could not be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LinksError {
    /// Not JSON, or no `linkset` / `links` array.
    #[error("is not a linkset: {0}")]
    Shape(String),
    /// Over [`MAX_LINKS`].
    #[error("lists more than {MAX_LINKS} links")]
    TooMany,
}

/// Every link of a linkset document, in document order.
pub(crate) fn parse_linkset(body: &[u8]) -> Result<Vec<Link>, LinksError> {
    let doc: Value = serde_json::from_slice(body).map_err(|e| LinksError::Shape(e.to_string()))?;
    let array = |key| doc.get(key).and_then(Value::as_array);
    // The reference reads `links` when `linkset` is missing or empty.
    let entries = match (array("linkset"), array("links")) {
        (Some(set), Some(links)) if set.is_empty() => links,
        (Some(set), _) => set,
        (None, Some(links)) => links,
        (None, None) => {
            let shape = "expected an object with a `linkset` array";
            return Err(LinksError::Shape(shape.to_owned()));
        }
    };
    let mut links = Vec::new();
    for entry in entries {
        let Some(entry) = entry.as_object() else {
            continue;
        };
        let anchor = entry
            .get("anchor")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let text = |v: &Value, key: &str| v.get(key).and_then(Value::as_str).map(str::to_owned);
        if let Some(href) = entry.get("href").and_then(Value::as_str) {
            let rels = entry
                .get("rel")
                .and_then(Value::as_str)
                .map(|r| r.split_whitespace().map(str::to_owned).collect())
                .unwrap_or_default();
            links.push(Link {
                rels,
                href: href.to_owned(),
                media_type: entry.get("type").and_then(Value::as_str).map(str::to_owned),
                anchor,
            });
        } else {
            for (rel, targets) in entry {
                let Some(targets) = targets.as_array().filter(|_| rel != "anchor") else {
                    continue;
                };
                for target in targets {
                    let Some(href) = text(target, "href") else {
                        continue;
                    };
                    links.push(Link {
                        rels: vec![rel.clone()],
                        href,
                        media_type: text(target, "type"),
                        anchor: anchor.clone(),
                    });
                    if links.len() > MAX_LINKS {
                        return Err(LinksError::TooMany);
                    }
                }
            }
        }
        if links.len() > MAX_LINKS {
            return Err(LinksError::TooMany);
        }
    }
    Ok(links)
}

/// Every link of `Link` header values (one value per line, as the fetch keeps them).
pub(crate) fn parse_link_header(values: &str) -> Result<Vec<Link>, LinksError> {
    let mut links = Vec::new();
    for value in values.lines() {
        for segment in split_outside(value, ',') {
            let segment = segment.trim();
            let Some(rest) = segment.strip_prefix('<') else {
                continue;
            };
            let Some((href, params)) = rest.split_once('>') else {
                continue;
            };
            let mut link = Link {
                rels: Vec::new(),
                href: href.trim().to_owned(),
                media_type: None,
                anchor: None,
            };
            let mut seen_rel = false;
            for param in split_outside(params, ';') {
                let Some((name, value)) = param.split_once('=') else {
                    continue;
                };
                let value = value.trim().trim_matches('"');
                match name.trim().to_ascii_lowercase().as_str() {
                    "rel" if !seen_rel => {
                        seen_rel = true;
                        link.rels = value.split_whitespace().map(str::to_owned).collect();
                    }
                    "type" => link.media_type = Some(value.to_owned()),
                    "anchor" => link.anchor = Some(value.to_owned()),
                    _ => {}
                }
            }
            links.push(link);
            if links.len() > MAX_LINKS {
                return Err(LinksError::TooMany);
            }
        }
    }
    Ok(links)
}

/// Split on `sep` where it is outside double quotes and `<...>`.
fn split_outside(text: &str, sep: char) -> Vec<&str> {
    let (mut parts, mut start, mut quoted, mut angled) = (Vec::new(), 0, false, false);
    for (i, c) in text.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '<' if !quoted => angled = true,
            '>' if !quoted => angled = false,
            c if c == sep && !quoted && !angled => {
                parts.push(&text[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_and_rfc9264_linksets_give_the_same_links() {
        let flat = br#"{"linkset":[{"href":"https://api.example.com/v1","rel":"item"}]}"#;
        let rfc = br#"{"linkset":[{"anchor":"https://api.example.com/.well-known/api-catalog",
            "item":[{"href":"https://api.example.com/v1"}],
            "service-desc":[{"href":"/v1/openapi.yaml","type":"application/yaml"}]}]}"#;
        let a = parse_linkset(flat).unwrap();
        assert_eq!(a.len(), 1);
        assert!(a[0].has_rel("item") && a[0].href == "https://api.example.com/v1");
        let b = parse_linkset(rfc).unwrap();
        assert!(b
            .iter()
            .any(|l| l.has_rel("item") && l.href == "https://api.example.com/v1"));
        let desc = b.iter().find(|l| l.has_rel("service-desc")).unwrap();
        assert_eq!(desc.media_type.as_deref(), Some("application/yaml"));
        assert!(desc.anchor.is_some());
    }

    #[test]
    fn a_body_without_a_linkset_or_with_too_many_links_is_an_error() {
        assert!(matches!(
            parse_linkset(b"<html>"),
            Err(LinksError::Shape(_))
        ));
        assert!(matches!(
            parse_linkset(b"{\"x\":1}"),
            Err(LinksError::Shape(_))
        ));
        let many: Vec<_> = (0..=MAX_LINKS)
            .map(|i| serde_json::json!({"href": format!("/s{i}"), "rel": "item"}))
            .collect();
        let body = serde_json::to_vec(&serde_json::json!({ "linkset": many })).unwrap();
        assert!(matches!(parse_linkset(&body), Err(LinksError::TooMany)));
    }

    #[test]
    fn link_headers_split_outside_quotes_and_brackets() {
        let header = "<https://x.example/a,b>; rel=\"service-desc\"; type=\"application/openapi+json\", \
                      </meta>; rel=\"service-meta other\"; rel=\"ignored\"\n<../doc>; rel=service-doc";
        let links = parse_link_header(header).unwrap();
        assert_eq!(links.len(), 3);
        assert_eq!(links[0].href, "https://x.example/a,b");
        assert_eq!(
            links[0].media_type.as_deref(),
            Some("application/openapi+json")
        );
        assert_eq!(links[1].rels, ["service-meta", "other"]);
        assert!(links[2].has_rel("service-doc"));
    }
}
