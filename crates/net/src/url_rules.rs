//! URL rules that several capabilities' settings share.
//!
//! | rule | applies to | refused |
//! |---|---|---|
//! | [`https_or_loopback`] | every URL a credential or token is sent to: OAuth token and authorization endpoints, issuers, JWKS and introspection URLs, MCP servers | any scheme but `https`, except `http` to `localhost` or a loopback address |
//! | [`parse_origin`] | `sources.<id>.redirects.allowOrigins` entries | anything but `http(s)://host[:port]`: userinfo, path, query, fragment |
//! | [`BrowserOrigin::parse`] | `runtime.server.cors.allowedOrigins` (checked by the config rules) and the `Origin` header (matched by the HTTP edge, `server::edge`) | as `parse_origin`, and also wildcards, `null` and an empty port; hosts compare case-insensitively |
//!
//! Failure mode: the error is the message to show next to the config field; nothing is
//! normalized into acceptance. The browser rule lives here, not in the edge, because the config
//! rules (`app`) that refuse a bad `allowedOrigins` entry sit below the HTTP edge that matches it.

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

/// A browser origin: scheme, lowercase host, port (explicit or the scheme's default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrowserOrigin {
    scheme: String,
    host: String,
    port: u16,
}

impl BrowserOrigin {
    /// Parse an exact origin (`https://app.example.com`, `http://localhost:3000`); `None` for
    /// `null`, wildcards, paths, queries, credentials and non-http schemes.
    pub fn parse(raw: &str) -> Option<Self> {
        if raw.contains('*') {
            return None;
        }
        let url = url::Url::parse(raw).ok()?;
        let exact = matches!(url.scheme(), "http" | "https")
            && url.path() == "/"
            && url.query().is_none()
            && url.fragment().is_none()
            && url.username().is_empty()
            && url.password().is_none()
            && !raw.trim_end_matches('/').ends_with(':');
        Some(Self {
            scheme: url.scheme().to_owned(),
            host: url.host_str()?.to_ascii_lowercase(),
            port: url.port_or_known_default()?,
        })
        .filter(|_| exact)
    }

    /// The host, lowercase.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port, explicit or the scheme's default.
    pub fn port(&self) -> u16 {
        self.port
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn browser_origins_are_exact() {
        let o = BrowserOrigin::parse("https://App.Example.com").unwrap();
        assert_eq!(
            o,
            BrowserOrigin::parse("https://app.example.com:443/").unwrap()
        );
        assert_ne!(o, BrowserOrigin::parse("http://app.example.com").unwrap());
        for bad in [
            "null",
            "*",
            "https://*.example.com",
            "https://a.example.com/path",
            "https://u@a.example.com",
            "file:///etc",
            "https://a.example.com?x=1",
            "app.example.com",
        ] {
            assert!(BrowserOrigin::parse(bad).is_none(), "{bad}");
        }
    }

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
