//! Where a URL that a remote discovery document chose may lead.
//!
//! The operator chose the source's own `uri`; every other URL discovery fetches (a linkset
//! `item`, a `service-desc`, a `service-meta`, an overlay it lists, and the `servers` of a
//! discovered OpenAPI document) was chosen by whoever serves those documents.
//!
//! | rule | refused with |
//! |---|---|
//! | scheme is `http` or `https` | "discovered URL ... must be http or https" |
//! | every address the host resolves to is public, or of the same class as the source's own URL (a loopback catalog may list loopback services; a public one may not list `169.254.169.254`, `10.0.0.5` or `localhost`) | "... resolves to a link-local address ..." |
//! | the fetch connects to the addresses just checked (no second DNS lookup) and follows redirects within the same origin only ([`Purpose::CatalogDiscovered`]) | the fetch error |
//!
//! Failure mode: a refused URL is never connected to; the error names the URL without
//! userinfo or query ([`redact_url`]).

use std::net::{IpAddr, SocketAddr};

use portcullis_net::address::{classify, AddressClass};
use portcullis_net::redact::redact_url;
use portcullis_net::{self as net, Purpose};
use url::{Host, Url};

use super::DiscoveryError;

/// The network class of the source's own URL (the first address it resolves to). A name that
/// does not resolve is treated as public: its own fetch then fails with the reason.
pub(crate) async fn own_class(url: &Url) -> AddressClass {
    match resolve(url).await {
        Ok(addrs) => addrs
            .first()
            .map_or(AddressClass::Public, |a| classify(a.ip())),
        Err(_) => AddressClass::Public,
    }
}

async fn resolve(url: &Url) -> Result<Vec<SocketAddr>, String> {
    let port = url.port_or_known_default().unwrap_or(80);
    match url.host() {
        Some(Host::Ipv4(ip)) => Ok(vec![SocketAddr::new(IpAddr::V4(ip), port)]),
        Some(Host::Ipv6(ip)) => Ok(vec![SocketAddr::new(IpAddr::V6(ip), port)]),
        Some(Host::Domain(name)) => tokio::net::lookup_host((name, port))
            .await
            .map(Iterator::collect)
            .map_err(|e| e.to_string()),
        None => Err("has no host".to_owned()),
    }
}

/// Check `url` against the rules above; the addresses it may be fetched from.
pub(crate) async fn check(url: &Url, own: AddressClass) -> Result<Vec<SocketAddr>, DiscoveryError> {
    let refused = |reason: String| DiscoveryError::Refused {
        url: redact_url(url),
        reason,
    };
    if !matches!(url.scheme(), "http" | "https") {
        return Err(refused("a discovered URL must be http or https".to_owned()));
    }
    let addrs = resolve(url)
        .await
        .map_err(|message| DiscoveryError::Resolve {
            url: redact_url(url),
            message,
        })?;
    if addrs.is_empty() {
        return Err(refused("resolves to no address".to_owned()));
    }
    for addr in &addrs {
        let class = classify(addr.ip());
        if class != AddressClass::Public && class != own {
            return Err(refused(format!(
                "resolves to a {} address ({}); a discovered URL may reach public addresses or \
                 the {} network of the source's own URL only",
                class.name(),
                addr.ip(),
                own.name()
            )));
        }
    }
    Ok(addrs)
}

/// A client for `url` that connects only to `addrs` (already checked) and stays on its origin.
pub(crate) fn client(url: &Url, addrs: &[SocketAddr]) -> Result<reqwest::Client, DiscoveryError> {
    let built = match url.host() {
        Some(Host::Domain(name)) => net::pinned_client(Purpose::CatalogDiscovered, name, addrs),
        _ => net::client(Purpose::CatalogDiscovered),
    };
    built.map_err(|e| DiscoveryError::Client(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn internal_addresses_are_refused_unless_the_source_is_in_the_same_network() {
        for (target, own, allowed) in [
            (
                "http://169.254.169.254/latest/meta-data",
                AddressClass::Public,
                false,
            ),
            ("http://169.254.169.254/", AddressClass::Loopback, false),
            ("http://10.0.0.5/openapi.json", AddressClass::Public, false),
            ("http://[::ffff:10.0.0.5]/x", AddressClass::Public, false),
            ("http://127.0.0.1:9/x", AddressClass::Public, false),
            ("http://127.0.0.1:9/x", AddressClass::Loopback, true),
            ("http://10.0.0.5/x", AddressClass::Private, true),
            ("http://93.184.216.34/x", AddressClass::Loopback, true),
        ] {
            let url = Url::parse(target).unwrap();
            assert_eq!(
                check(&url, own).await.is_ok(),
                allowed,
                "{target} from {own:?}"
            );
        }
    }

    #[tokio::test]
    async fn other_schemes_are_refused_and_the_message_hides_secrets() {
        let url = Url::parse("file:///etc/passwd").unwrap();
        assert!(check(&url, AddressClass::Loopback).await.is_err());
        let url = Url::parse("http://u:pw@169.254.169.254/x?token=CANARY").unwrap();
        let text = check(&url, AddressClass::Public)
            .await
            .unwrap_err()
            .to_string();
        assert!(!text.contains("CANARY") && !text.contains("pw"), "{text}");
        assert!(
            text.contains("169.254.169.254") && text.contains("link-local"),
            "{text}"
        );
    }
}
