//! Server URL resolution for tools.
//!
//! | rule | behaviour |
//! |---|---|
//! | precedence | operation `servers` if non-empty, else path-item, else document |
//! | `{var}` | replaced by `variables.<var>.default`; a missing default (or an undeclared variable) is an error for the source |
//! | values (the default and every `enum` value) | never contain `\ ? # @ % [ ]`, whitespace, control or non-ASCII characters (URL delimiters, or characters the parser rewrites); a value in the host part (before the first `/` after `scheme://`) is only letters, digits, `-`, `.` and `_`, except that it may start the path with `/` (eBay's `https://api.ebay.com{basePath}` with `/sell/v1`); a value in the path never forms a `.` or `..` segment |
//! | resolved host | when a variable is in the host part, the parsed URL's host and port must equal the text the template and values spell (so `2130706433`, `0x7f.1` or an IDNA rewrite cannot turn into another host) |
//! | relative URL | resolved against the spec URL when the spec is remote; kept as written for local files |
//! | no servers | a remote spec falls back to its origin (`scheme://host[:port]`); a local spec keeps an empty list |
//!
//! Failure mode: an unsafe value in the first server (the one calls go to) fails the source
//! with [`ServerError`], naming the server template and the variable; an alternative server
//! with one is left out of the tool's list with a warning.

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
    /// A default or enum value that could change the URL's structure or host.
    #[error("server {url:?}: {which} of variable {name:?} is refused: {why}")]
    UnsafeDefault {
        /// The server template.
        url: String,
        /// The variable.
        name: String,
        /// `default` or `enum value <v>`.
        which: String,
        /// Which rule it breaks.
        why: String,
    },
    /// An unterminated `{`.
    #[error("server {0:?}: unterminated '{{' in URL template")]
    Unterminated(String),
}

/// Substitute variables and resolve relative URLs for one list of servers.
pub fn resolve(servers: &[Server], spec_url: Option<&Url>) -> Result<Vec<String>, ServerError> {
    let mut out = Vec::with_capacity(servers.len());
    for (i, server) in servers.iter().enumerate() {
        let url = match substitute(server) {
            Ok(url) => url,
            // Calls go to the first server; an unsafe alternative is left out, not fatal.
            Err(e @ ServerError::UnsafeDefault { .. }) if i > 0 => {
                tracing::warn!("alternative server left out: {e}");
                continue;
            }
            Err(e) => return Err(e),
        };
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
    let mut host_variable: Option<&str> = None;
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
        let variable = server.variables.get(name).ok_or_else(missing)?;
        let value = variable
            .default
            .as_ref()
            .and_then(as_text)
            .ok_or_else(missing)?;
        let in_authority = authority_open(template, template.len() - rest.len() + open);
        let unsafe_value = |which: String, why: &str| ServerError::UnsafeDefault {
            url: template.to_owned(),
            name: name.to_owned(),
            which,
            why: why.to_owned(),
        };
        check_value(&value, in_authority).map_err(|why| unsafe_value("default".into(), why))?;
        for allowed in variable.values.iter().flatten() {
            let text = as_text(allowed).unwrap_or_default();
            check_value(&text, in_authority)
                .map_err(|why| unsafe_value(format!("enum value {text:?}"), why))?;
        }
        if in_authority {
            host_variable.get_or_insert(name);
        }
        out.push_str(&value);
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    if let Some(name) = host_variable {
        if !host_is_as_spelled(&out) {
            return Err(ServerError::UnsafeDefault {
                url: template.to_owned(),
                name: name.to_owned(),
                which: "default".into(),
                why: "the resolved URL does not parse to the host the template and value spell"
                    .into(),
            });
        }
    }
    Ok(out)
}

/// A variable value as text (the spec says string; numbers are accepted and printed).
fn as_text(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Why a value may not be substituted, if it may not.
fn check_value(value: &str, in_authority: bool) -> Result<(), &'static str> {
    if value
        .chars()
        .any(|c| !c.is_ascii() || c.is_ascii_control() || c.is_ascii_whitespace())
    {
        return Err("it contains whitespace, a control or a non-ASCII character");
    }
    if value.contains(['\\', '?', '#', '@', '%', '[', ']']) {
        return Err("it contains one of \\ ? # @ % [ ], which delimit or rewrite a URL");
    }
    let path = match value.strip_prefix('/') {
        Some(path) => path,
        None if in_authority => {
            let host_safe = value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
            if !host_safe {
                return Err("in the host part a value may only hold letters, digits, '-', '.' and '_', or start the path with '/'");
            }
            return Ok(());
        }
        None => value,
    };
    if path.split('/').any(|s| s == "." || s == "..") {
        return Err("it forms a '.' or '..' path segment, which URL parsing removes");
    }
    Ok(())
}

/// Whether the parsed URL's host and port are exactly what `resolved` spells.
fn host_is_as_spelled(resolved: &str) -> bool {
    let Ok(url) = Url::parse(resolved) else {
        return false;
    };
    let Some(start) = resolved.find("://").map(|i| i + 3) else {
        return false;
    };
    let end = resolved[start..]
        .find(['/', '?', '#'])
        .map_or(resolved.len(), |i| start + i);
    let authority = &resolved[start..end];
    let host_port = authority.rsplit('@').next().unwrap_or(authority);
    let (host, port) = match host_port.rfind(':') {
        Some(i) if !host_port[i..].contains(']') => (&host_port[..i], Some(&host_port[i + 1..])),
        _ => (host_port, None),
    };
    let host_ok = url
        .host_str()
        .is_some_and(|h| !h.is_empty() && h.eq_ignore_ascii_case(host));
    let port_ok = match port.filter(|p| !p.is_empty()) {
        Some(p) => p.parse::<u16>().ok() == url.port_or_known_default(),
        None => url.port().is_none(),
    };
    host_ok && port_ok
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
        for bad in [
            "evil.com/",
            "a@evil.com",
            "x?y",
            "a b",
            "x#",
            "/x?",
            "evil.com\\\\",
            "evil.com%2f",
            "evil.com:80",
            "[::1]",
            "a\\t",
            "évil",
        ] {
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
    fn a_backslash_default_cannot_move_the_request_to_another_host() {
        // `https://good.example\@evil.example` parses (WHATWG) with host evil.example.
        let s = servers(
            r#"[{"url":"https://api.example.com{v}/x","variables":{"v":{"default":"\\@evil.example"}}}]"#,
        );
        let err = resolve(&s, None).unwrap_err();
        assert!(matches!(err, ServerError::UnsafeDefault { .. }), "{err}");
        assert!(err.to_string().contains("\"v\""), "{err}");
        let s =
            servers(r#"[{"url":"https://{h}/x","variables":{"h":{"default":"evil.example\\"}}}]"#);
        assert!(resolve(&s, None).is_err());
    }

    #[test]
    fn unsafe_enum_values_are_refused_like_defaults() {
        let s = servers(
            r#"[{"url":"https://{region}.example.com","variables":{"region":{"default":"eu","enum":["eu","x.evil.com/"]}}}]"#,
        );
        let err = resolve(&s, None).unwrap_err();
        assert!(err.to_string().contains("enum value"), "{err}");
    }

    #[test]
    fn a_whole_host_variable_and_a_numeric_host_spelling() {
        let s = servers(
            r#"[{"url":"https://{h}:{p}/v1","variables":{"h":{"default":"api.example.com"},"p":{"default":"8443"}}}]"#,
        );
        assert_eq!(
            resolve(&s, None).unwrap(),
            ["https://api.example.com:8443/v1"]
        );
        // The parser turns this into 127.0.0.1: not the host the value spells.
        let s = servers(r#"[{"url":"http://{h}/","variables":{"h":{"default":"0x7f.1"}}}]"#);
        assert!(resolve(&s, None).is_err());
    }

    #[test]
    fn an_unsafe_alternative_server_is_left_out_and_the_first_kept() {
        let s = servers(
            r#"[{"url":"https://api.example.com"},{"url":"https://{a}.example.com","variables":{"a":{"default":"{a}"}}}]"#,
        );
        assert_eq!(resolve(&s, None).unwrap(), ["https://api.example.com"]);
    }

    #[test]
    fn path_values_may_not_form_dot_segments() {
        let s = servers(r#"[{"url":"https://h/{p}/x","variables":{"p":{"default":"a/.."}}}]"#);
        assert!(resolve(&s, None).is_err());
        // A leading '/' in the host part may start the path, never empty the host.
        let s =
            servers(r#"[{"url":"https://{v}.example.com","variables":{"v":{"default":"/x"}}}]"#);
        assert!(resolve(&s, None).is_err());
    }

    #[test]
    fn path_defaults_may_contain_slashes_but_never_move_the_host() {
        let s = servers(
            r#"[{"url":"https://api.ebay.com{basePath}","variables":{"basePath":{"default":"/sell/v1"}}}]"#,
        );
        assert_eq!(resolve(&s, None).unwrap(), ["https://api.ebay.com/sell/v1"]);
        let s = servers(r#"[{"url":"https://h/{p}/x","variables":{"p":{"default":"a/b:c"}}}]"#);
        assert_eq!(resolve(&s, None).unwrap(), ["https://h/a/b:c/x"]);
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
