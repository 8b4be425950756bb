//! Server URL resolution for tools.
//!
//! | rule | behaviour |
//! |---|---|
//! | precedence | operation `servers` if non-empty, else path-item, else document |
//! | `{var}` | replaced by `variables.<var>.default`; a missing default (or an undeclared variable) is an error for the source |
//! | unsafe default | a default containing `? #` or whitespace is refused anywhere; inside the authority (before the first `/` after `scheme://`) `@` is refused and `/` only as the first character (e.g. eBay's `https://api.ebay.com{basePath}` with `/sell/v1`), so a default can never move the request to another host than the document shows |
//! | relative URL | resolved against the spec URL when the spec is remote; kept as written for local files |
//! | no servers | a remote spec falls back to its origin (`scheme://host[:port]`); a local spec keeps an empty list |

use url::Url;

use super::openapi::Server;

/// Why a server list was refused.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// A template variable has no default.
    #[error("server {url:?}: variable {name:?} has no default")]
    MissingDefault {
        /// The server template.
        url: String,
        /// The variable.
        name: String,
    },
    /// A default that would change the URL structure.
    #[error(
        "server {url:?}: default of variable {name:?} could change the URL's host (contains '?', '#', whitespace, or '@' or '/' inside the host part)"
    )]
    UnsafeDefault {
        /// The server template.
        url: String,
        /// The variable.
        name: String,
    },
    /// An unterminated `{`.
    #[error("server {0:?}: unterminated '{{' in URL template")]
    Unterminated(String),
}

/// Substitute variables and resolve relative URLs for one list of servers.
pub fn resolve(servers: &[Server], spec_url: Option<&Url>) -> Result<Vec<String>, ServerError> {
    let mut out = Vec::with_capacity(servers.len());
    for server in servers {
        let url = substitute(server)?;
        out.push(match spec_url {
            Some(base) if Url::parse(&url).is_err() => {
                base.join(&url).map(String::from).unwrap_or(url)
            }
            _ => url,
        });
    }
    Ok(out)
}

/// The document-level list, with the remote-origin fallback.
pub fn document_servers(
    servers: &[Server],
    spec_url: Option<&Url>,
) -> Result<Vec<String>, ServerError> {
    if servers.is_empty() {
        if let Some(base) = spec_url {
            return Ok(vec![base.origin().ascii_serialization()]);
        }
    }
    resolve(servers, spec_url)
}

fn substitute(server: &Server) -> Result<String, ServerError> {
    let template = server.url.as_str();
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let close = after
            .find('}')
            .ok_or_else(|| ServerError::Unterminated(template.to_owned()))?;
        let name = &after[..close];
        let missing = || ServerError::MissingDefault {
            url: template.to_owned(),
            name: name.to_owned(),
        };
        let value = match server
            .variables
            .get(name)
            .and_then(|v| v.default.as_ref())
            .ok_or_else(missing)?
        {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Number(n) => n.to_string(),
            _ => return Err(missing()),
        };
        let in_authority = authority_open(template, template.len() - rest.len() + open);
        // Inside the authority the value may only start the path (`/...`), never extend the
        // host and then start a path, and never introduce userinfo.
        let host_part = value.split('/').next().unwrap_or_default();
        let bad_in_authority = in_authority
            && (host_part.contains('@') || (value.contains('/') && !host_part.is_empty()));
        if bad_in_authority
            || value
                .chars()
                .any(|c| matches!(c, '?' | '#') || c.is_whitespace())
        {
            return Err(ServerError::UnsafeDefault {
                url: template.to_owned(),
                name: name.to_owned(),
            });
        }
        out.push_str(&value);
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Whether byte `at` of the template lies in the scheme or authority (no literal `/` yet after `://`).
fn authority_open(template: &str, at: usize) -> bool {
    match template.find("://") {
        Some(i) if at >= i + 3 => !template[i + 3..at].contains('/'),
        Some(_) => true,
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn servers(json: &str) -> Vec<Server> {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn variables_are_replaced_by_their_defaults() {
        let s = servers(
            r#"[{"url":"https://{region}.example.com:{port}/v1","variables":{"region":{"default":"eu"},"port":{"default":8443}}}]"#,
        );
        assert_eq!(
            resolve(&s, None).unwrap(),
            ["https://eu.example.com:8443/v1"]
        );
    }

    #[test]
    fn a_missing_default_is_an_error() {
        let s = servers(r#"[{"url":"https://{region}.example.com"}]"#);
        assert!(matches!(
            resolve(&s, None),
            Err(ServerError::MissingDefault { .. })
        ));
    }

    #[test]
    fn defaults_that_would_change_the_host_are_refused() {
        for bad in ["evil.com/", "a@evil.com", "x?y", "a b", "x#", "/x?"] {
            let json = format!(
                r#"[{{"url":"https://{{h}}.example.com","variables":{{"h":{{"default":"{bad}"}}}}}}]"#
            );
            assert!(
                matches!(
                    resolve(&servers(&json), None),
                    Err(ServerError::UnsafeDefault { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn path_defaults_may_contain_slashes_but_never_move_the_host() {
        let s = servers(
            r#"[{"url":"https://api.ebay.com{basePath}","variables":{"basePath":{"default":"/sell/v1"}}}]"#,
        );
        assert_eq!(resolve(&s, None).unwrap(), ["https://api.ebay.com/sell/v1"]);
        let s = servers(r#"[{"url":"https://h/{p}/x","variables":{"p":{"default":"a/b@c"}}}]"#);
        assert_eq!(resolve(&s, None).unwrap(), ["https://h/a/b@c/x"]);
        let s = servers(r#"[{"url":"https://{h}","variables":{"h":{"default":"x.com/evil"}}}]"#);
        assert!(matches!(
            resolve(&s, None),
            Err(ServerError::UnsafeDefault { .. })
        ));
    }

    #[test]
    fn relative_servers_resolve_against_a_remote_spec_and_stay_relative_locally() {
        let base = Url::parse("https://api.example.com/specs/openapi.json").unwrap();
        let s = servers(r#"[{"url":"/v2"}]"#);
        assert_eq!(
            resolve(&s, Some(&base)).unwrap(),
            ["https://api.example.com/v2"]
        );
        assert_eq!(resolve(&s, None).unwrap(), ["/v2"]);
    }

    #[test]
    fn a_remote_spec_without_servers_falls_back_to_its_origin() {
        let base = Url::parse("https://api.example.com:8443/specs/openapi.json").unwrap();
        assert_eq!(
            document_servers(&[], Some(&base)).unwrap(),
            ["https://api.example.com:8443"]
        );
        assert!(document_servers(&[], None).unwrap().is_empty());
    }
}
