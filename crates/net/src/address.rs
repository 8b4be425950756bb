//! Which network an address belongs to, for the rules that keep a fetch whose target someone
//! else chose (an upstream redirect, a URL found in a discovery document) out of the runtime's
//! own networks.
//!
//! | class | ranges |
//! |---|---|
//! | loopback | 127.0.0.0/8, ::1 |
//! | private | 10/8, 172.16/12, 192.168/16, 100.64/10 (CGNAT), fc00::/7 |
//! | link-local | 169.254/16 (cloud metadata), fe80::/10 |
//! | unspecified | 0.0.0.0/8, :: |
//! | reserved | multicast, broadcast, 240/4 |
//! | public | everything else |
//!
//! IPv4-mapped, IPv4-compatible, NAT64 and 6to4 IPv6 forms are classified by the IPv4 address
//! they carry, so an IPv6 spelling never launders an internal address. The rule the callers
//! share: a target may be public, or of the same class as the address the operator configured.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// What kind of network an address belongs to. A target someone else chose may be
/// [`AddressClass::Public`], or of the same class as the address the operator configured.
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

#[cfg(test)]
mod tests {
    use super::*;

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
            let url = url::Url::parse(&format!("http://{host}/")).unwrap();
            let ip: IpAddr = match url.host() {
                Some(url::Host::Ipv4(v4)) => v4.into(),
                Some(url::Host::Ipv6(v6)) => v6.into(),
                other => panic!("{host}: {other:?}"),
            };
            assert_eq!(classify(ip), AddressClass::Loopback, "{host}");
        }
    }
}
