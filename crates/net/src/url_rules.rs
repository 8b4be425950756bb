//! URL rules that several capabilities' settings share.
//!
//! | rule | applies to | refused |
//! |---|---|---|
//! | [`https_or_loopback`] | every URL a credential or token is sent to: OAuth token and authorization endpoints, issuers, JWKS and introspection URLs, MCP servers | any scheme but `https`, except `http` to `localhost` or a loopback address |
//! | [`parse_origin`] | `sources.<id>.redirects.allowOrigins` entries | anything but `http(s)://host[:port]`: userinfo, path, query, fragment |
//!
//! Failure mode: the error is the message to show next to the config field; nothing is
//! normalized into acceptance. (The browser `Origin` rule of `server::edge` is stricter: it also
//! refuses wildcards and an empty port, and compares hosts case-insensitively; it stays there.)

use url::{Origin, Url};

/// The rule shared by every URL the runtime sends a credential or a token to (OAuth token and
/// authorization endpoints, issuers, MCP servers): `https`, or plain `http` to a loopback host
/// only. The error is the message to show next to the field.
pub fn https_or_loopback(raw: &str) -> Result<Url, String> {
    let parsed = Url::parse(raw).map_err(|e| format!("is not a URL: {e}"))?;
    let loopback = match parsed.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d == "localhost",
        None => false,
    };
    match parsed.scheme() {
        "https" => Ok(parsed),
        "http" if loopback => Ok(parsed),
        _ => Err("must be https (plain http is accepted for loopback hosts only)".to_owned()),
    }
}

/// Parse one `allowOrigins` entry: `scheme://host[:port]` with an http(s) scheme and nothing
/// else (no userinfo, path, query or fragment).
pub fn parse_origin(text: &str) -> Result<Origin, String> {
    let url = Url::parse(text).map_err(|e| format!("{text:?} is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("{text:?} must be an http or https origin"));
    }
    let bare = url.username().is_empty()
        && url.password().is_none()
        && url.path() == "/"
        && url.query().is_none()
        && url.fragment().is_none()
        && url.host().is_some();
    if !bare || text.trim_end_matches('/').contains(['?', '#', '@']) {
        return Err(format!(
            "{text:?} must be an origin `scheme://host[:port]` without userinfo, path, query or fragment"
        ));
    }
    Ok(url.origin())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_is_accepted_for_loopback_hosts_only() {
        assert!(https_or_loopback("https://idp.example/jwks").is_ok());
        assert!(https_or_loopback("http://localhost:8080/token").is_ok());
        assert!(https_or_loopback("http://[::1]:9/x").is_ok());
        assert!(https_or_loopback("http://idp.example/jwks").is_err());
        assert!(https_or_loopback("ftp://127.0.0.1/x").is_err());
        assert!(https_or_loopback("not a url").is_err());
    }
}
