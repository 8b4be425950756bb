//! Which upstream redirects are followed, and where they may lead.
//!
//! Redirects are followed by hand (both clients are built with `Policy::none()`), one hop at
//! a time, so every hop is decided here with the whole chain in view.
//!
//! | situation | outcome |
//! |---|---|
//! | request carries credentials | never followed: the 3xx is returned to the caller |
//! | `Location` missing or not a URL | not followed: the 3xx is returned |
//! | more than 5 hops, a non-http(s) scheme, or https→http anywhere in the chain | 502 `upstream_redirect_blocked` |
//! | same origin as the tool's server (or the http→https upgrade of it on default ports) | followed, same client |
//! | another origin not in `sources.<id>.redirects.allowOrigins` (default: empty) | not followed: the 3xx is returned |
//! | another origin, allowed, but a 307/308 that would re-send a request body | not followed: the 3xx is returned |
//! | another origin, allowed, resolving to a loopback, private, CGNAT, link-local, unspecified or reserved address of another class than the first hop's peer | 502 `upstream_redirect_blocked`, nothing sent there |
//! | another origin, allowed, public (or same class as the first hop) | followed with a one-off client pinned to the addresses just checked (no second DNS lookup) |
//!
//! Cross-origin hops never carry the caller's `Authorization`, `Cookie` or
//! `Proxy-Authorization` headers. 301/302 turn a POST into a body-less GET and 303 turns
//! anything but HEAD into one, as browsers do.

use url::{Origin, Url};

#[cfg(test)]
use crate::net::parse_origin;

/// Redirect hops one attempt may follow.
pub(crate) const MAX_REDIRECTS: usize = 5;

pub use crate::net::address::{classify, AddressClass};

/// Why a redirect from the chain `previous` (oldest first) to `next` is refused outright, or
/// `None` when the other rules decide.
pub(crate) fn refusal(previous: &[Url], next: &Url) -> Option<&'static str> {
    if previous.len() > MAX_REDIRECTS {
        return Some("too many redirects");
    }
    let downgrade = previous.iter().any(|u| u.scheme() == "https");
    match next.scheme() {
        "https" => None,
        "http" if downgrade => Some("redirect from https to http refused"),
        "http" => None,
        _ => Some("redirect to a non-http scheme refused"),
    }
}

/// Whether `next` is the tool's own origin `first`, or its http→https upgrade on default ports.
pub(crate) fn same_origin(first: &Url, next: &Url) -> bool {
    if first.origin() == next.origin() {
        return true;
    }
    first.scheme() == "http"
        && next.scheme() == "https"
        && first.host() == next.host()
        && first.port().is_none()
        && next.port().is_none()
}

/// Whether an operator allowed redirects to `next`'s origin.
pub(crate) fn allowed(allow: &[Origin], next: &Url) -> bool {
    let origin = next.origin();
    allow.contains(&origin)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn https_to_http_redirect_is_refused() {
        assert!(refusal(&[u("https://a.example/x")], &u("http://a.example/x")).is_some());
        let chain = [u("http://a.example/"), u("https://a.example/")];
        assert!(refusal(&chain, &u("http://b.example/")).is_some());
    }

    #[test]
    fn sixth_redirect_and_non_http_schemes_are_refused() {
        let five: Vec<Url> = (0..5)
            .map(|i| u(&format!("http://a.example/{i}")))
            .collect();
        assert!(refusal(&five, &u("http://a.example/next")).is_none());
        let six: Vec<Url> = (0..6)
            .map(|i| u(&format!("http://a.example/{i}")))
            .collect();
        assert!(refusal(&six, &u("http://a.example/next")).is_some());
        assert!(refusal(&[u("http://a.example/")], &u("file:///etc/passwd")).is_some());
    }

    #[test]
    fn same_origin_is_scheme_host_and_port_with_the_default_port_upgrade() {
        assert!(same_origin(
            &u("http://a.example/x"),
            &u("http://a.example/y")
        ));
        assert!(same_origin(
            &u("http://a.example/"),
            &u("https://a.example/")
        ));
        assert!(!same_origin(
            &u("http://a.example:8080/"),
            &u("https://a.example:8443/")
        ));
        assert!(!same_origin(
            &u("http://127.0.0.1:1/"),
            &u("http://127.0.0.1:2/")
        ));
        assert!(!same_origin(
            &u("https://a.example/"),
            &u("https://b.example/")
        ));
        assert!(!same_origin(
            &u("https://a.example/"),
            &u("http://a.example/")
        ));
    }

    #[test]
    fn allow_origins_entries_must_be_bare_origins() {
        assert!(parse_origin("https://cdn.example.com").is_ok());
        assert!(parse_origin("http://127.0.0.1:8080/").is_ok());
        for bad in [
            "cdn.example.com",
            "ftp://cdn.example.com",
            "https://cdn.example.com/path",
            "https://u@cdn.example.com",
            "https://cdn.example.com?x",
            "https://cdn.example.com#x",
        ] {
            assert!(parse_origin(bad).is_err(), "{bad}");
        }
        let allow = [parse_origin("https://cdn.example.com").unwrap()];
        assert!(allowed(&allow, &u("https://cdn.example.com:443/a?b")));
        assert!(!allowed(&allow, &u("https://cdn.example.com:8443/")));
        assert!(!allowed(&allow, &u("http://cdn.example.com/")));
    }
}
