//! Which address a request came from, for throttling: the TCP peer, or, when that peer is a
//! proxy we trust (`--trusted-proxy`), the address it reports in `X-Forwarded-For`.
//!
//! Only trusted proxies are believed: anyone else could write any `X-Forwarded-For` and so
//! escape their own throttle or lock out somebody else's address. The header is read from
//! the right (the entry our own proxy appended) to the left, skipping further trusted
//! proxies; the first address not trusted is the client.

use axum::http::HeaderMap;
use ipnet::IpNet;
use std::net::IpAddr;
use std::sync::Arc;

/// Most `X-Forwarded-For` entries read (a longer chain is cut, never parsed whole).
const MAX_FORWARDED_HOPS: usize = 16;

/// The proxies (CIDR blocks) whose `X-Forwarded-For` is believed.
#[derive(Clone, Debug, Default)]
pub struct TrustedProxies(Arc<Vec<IpNet>>);

/// A `--trusted-proxy` value that is not an address or a CIDR block.
#[derive(Debug, thiserror::Error)]
#[error("trusted proxy {0:?}: expected an address or a CIDR block such as 10.0.0.0/8")]
pub struct BadProxy(pub String);

impl TrustedProxies {
    /// Parses addresses (`10.0.0.5`) and CIDR blocks (`10.0.0.0/8`, `fd00::/8`).
    pub fn parse<'a>(entries: impl IntoIterator<Item = &'a str>) -> Result<Self, BadProxy> {
        let mut nets = Vec::new();
        for entry in entries.into_iter().map(str::trim).filter(|e| !e.is_empty()) {
            let net = entry
                .parse::<IpNet>()
                .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| BadProxy(entry.chars().take(64).collect()))?;
            nets.push(net);
        }
        Ok(TrustedProxies(Arc::new(nets)))
    }

    /// Whether `address` is one of the trusted proxies.
    pub fn trusts(&self, address: IpAddr) -> bool {
        let address = canonical(address);
        self.0.iter().any(|net| net.contains(&address))
    }

    /// The client's address: `peer` itself unless it is a trusted proxy, else the rightmost
    /// untrusted address of `X-Forwarded-For` (or the leftmost entry when every one is
    /// trusted). A malformed entry ends the walk at the last trusted hop.
    pub fn client_address(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = canonical(peer);
        if !self.trusts(peer) {
            return peer;
        }
        let mut client = peer;
        // Several headers count as one comma-separated list, in order.
        let entries: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .collect();
        for entry in entries.iter().rev().take(MAX_FORWARDED_HOPS) {
            let Some(address) = parse_forwarded(entry) else {
                break;
            };
            client = canonical(address);
            if !self.trusts(client) {
                break;
            }
        }
        client
    }
}

/// An `X-Forwarded-For` entry: an address, possibly bracketed or with a port.
fn parse_forwarded(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    if let Ok(address) = entry.parse::<IpAddr>() {
        return Some(address);
    }
    if let Ok(socket) = entry.parse::<std::net::SocketAddr>() {
        return Some(socket.ip());
    }
    entry
        .strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
        .and_then(|inner| inner.parse().ok())
}

/// IPv4-mapped IPv6 addresses (`::ffff:10.0.0.1`) as the IPv4 address they are.
fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for value in values {
            map.append("x-forwarded-for", value.parse().unwrap());
        }
        map
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        let none = TrustedProxies::default();
        assert_eq!(
            none.client_address(ip("203.0.113.9"), &headers(&["1.2.3.4"])),
            ip("203.0.113.9")
        );
        let proxies = TrustedProxies::parse(["10.0.0.0/8"]).unwrap();
        assert_eq!(
            proxies.client_address(ip("192.0.2.1"), &headers(&["1.2.3.4"])),
            ip("192.0.2.1")
        );
    }

    #[test]
    fn a_trusted_proxy_is_believed_from_the_right() {
        let proxies = TrustedProxies::parse(["10.0.0.0/8", "192.168.1.1"]).unwrap();
        // The client put a fake entry first; our proxies appended the real one after it.
        let forwarded = headers(&["6.6.6.6, 198.51.100.7", "192.168.1.1"]);
        assert_eq!(
            proxies.client_address(ip("10.1.2.3"), &forwarded),
            ip("198.51.100.7")
        );
        // Every hop trusted: the leftmost one is the best we know.
        assert_eq!(
            proxies.client_address(ip("10.1.2.3"), &headers(&["10.9.9.9"])),
            ip("10.9.9.9")
        );
        // No header: the proxy itself.
        assert_eq!(
            proxies.client_address(ip("10.1.2.3"), &HeaderMap::new()),
            ip("10.1.2.3")
        );
    }

    #[test]
    fn odd_entries_are_read_or_stop_the_walk() {
        let proxies = TrustedProxies::parse(["::1", "127.0.0.1"]).unwrap();
        assert_eq!(
            proxies.client_address(ip("::ffff:127.0.0.1"), &headers(&["[2001:db8::1]"])),
            ip("2001:db8::1")
        );
        assert_eq!(
            proxies.client_address(ip("127.0.0.1"), &headers(&["198.51.100.7:4711"])),
            ip("198.51.100.7")
        );
        assert_eq!(
            proxies.client_address(ip("127.0.0.1"), &headers(&["unknown"])),
            ip("127.0.0.1")
        );
    }

    #[test]
    fn bad_entries_are_refused_by_name() {
        let error = TrustedProxies::parse(["10.0.0.0/33"]).unwrap_err();
        assert!(error.to_string().contains("10.0.0.0/33"), "{error}");
        assert!(TrustedProxies::parse(["", " "]).unwrap().0.is_empty());
    }
}
