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

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use url::{Origin, Url};

#[cfg(test)]
use crate::net::parse_origin;

/// Redirect hops one attempt may follow.
pub(crate) const MAX_REDIRECTS: usize = 5;

/// What kind of network an address belongs to. A redirect may reach [`AddressClass::Public`]
/// addresses, or addresses of the same class as the server the call first reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressClass {
    /// Globally routable.
    Public,
    /// 127.0.0.0/8, ::1.
    Loopback,
    /// 10/8, 172.16/12, 192.168/16, 100.64/10 (CGNAT), fc00::/7.
    Private,
    /// 169.254/16 (cloud metadata lives here), fe80::/10.
    LinkLocal,
    /// 0.0.0.0/8, :: (reach the local host on most systems).
    Unspecified,
    /// Multicast, broadcast, 240/4 and other addresses no API lives at.
    Reserved,
}

impl AddressClass {
    /// Lower-case name used in messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::Public => "public",
            Self::Loopback => "loopback",
            Self::Private => "private",
            Self::LinkLocal => "link-local",
            Self::Unspecified => "unspecified",
            Self::Reserved => "reserved",
        }
    }
}

/// Classify an address; IPv4-mapped, IPv4-compatible, NAT64 and 6to4 IPv6 forms are classified
/// by the IPv4 address they carry.
pub fn classify(ip: IpAddr) -> AddressClass {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> AddressClass {
    let [a, b, ..] = ip.octets();
    match (a, b) {
        (0, _) => AddressClass::Unspecified,
        (127, _) => AddressClass::Loopback,
        (169, 254) => AddressClass::LinkLocal,
        (10, _) | (192, 168) => AddressClass::Private,
        (172, 16..=31) | (100, 64..=127) => AddressClass::Private,
        (224.., _) => AddressClass::Reserved,
        _ => AddressClass::Public,
    }
}

fn classify_v6(ip: Ipv6Addr) -> AddressClass {
    let s = ip.segments();
    if ip.is_unspecified() {
        return AddressClass::Unspecified;
    }
    if ip.is_loopback() {
        return AddressClass::Loopback;
    }
    // ::ffff:a.b.c.d (mapped) and ::a.b.c.d (compatible).
    if let Some(v4) = ip.to_ipv4() {
        return classify_v4(v4);
    }
    let embedded = |hi: u16, lo: u16| {
        let [a, b] = hi.to_be_bytes();
        let [c, d] = lo.to_be_bytes();
        classify_v4(Ipv4Addr::new(a, b, c, d))
    };
    match s[0] {
        // NAT64 well-known prefix 64:ff9b::/96.
        0x64 if s[1] == 0xff9b && s[2..6] == [0; 4] => embedded(s[6], s[7]),
        // 6to4: 2002:AABB:CCDD::/48 carries AA.BB.CC.DD.
        0x2002 => embedded(s[1], s[2]),
        x if x & 0xffc0 == 0xfe80 => AddressClass::LinkLocal,
        x if x & 0xfe00 == 0xfc00 => AddressClass::Private,
        x if x & 0xff00 == 0xff00 => AddressClass::Reserved,
        _ => AddressClass::Public,
    }
}

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

    fn class(s: &str) -> AddressClass {
        classify(s.parse().unwrap())
    }

    #[test]
    fn internal_ranges_and_their_ipv6_spellings_are_classified() {
        use AddressClass::*;
        for (ip, want) in [
            ("127.0.0.1", Loopback),
            ("::1", Loopback),
            ("10.1.2.3", Private),
            ("172.31.0.1", Private),
            ("192.168.1.1", Private),
            ("100.64.0.1", Private),
            ("fd00::1", Private),
            ("169.254.169.254", LinkLocal),
            ("fe80::1", LinkLocal),
            ("0.0.0.0", Unspecified),
            ("::", Unspecified),
            ("::ffff:169.254.169.254", LinkLocal),
            ("::ffff:127.0.0.1", Loopback),
            ("::127.0.0.1", Loopback),
            ("64:ff9b::a9fe:a9fe", LinkLocal),
            ("2002:a9fe:a9fe::1", LinkLocal),
            ("255.255.255.255", Reserved),
            ("ff02::1", Reserved),
            ("172.32.0.1", Public),
            ("100.128.0.1", Public),
            ("93.184.216.34", Public),
            ("2606:4700::1111", Public),
        ] {
            assert_eq!(class(ip), want, "{ip}");
        }
    }

    #[test]
    fn numeric_host_spellings_parse_to_the_address_they_mean() {
        // The URL parser normalises these; the redirect check classifies the parsed host.
        for host in ["2130706433", "0x7f.1", "127.1", "[::ffff:7f00:1]"] {
            let url = u(&format!("http://{host}/"));
            let ip: IpAddr = match url.host() {
                Some(url::Host::Ipv4(v4)) => v4.into(),
                Some(url::Host::Ipv6(v6)) => v6.into(),
                other => panic!("{host}: {other:?}"),
            };
            assert_eq!(classify(ip), AddressClass::Loopback, "{host}");
        }
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
