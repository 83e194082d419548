//! Who is calling, and which reverse proxies may say so.

use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;

/// Who is calling: recorded with sessions and security events, and what
/// the per-IP rate limits count by.
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    /// The client's IP address: the TCP peer's, or the one a trusted proxy
    /// forwarded (see [`TrustedProxies`]).
    pub ip: Option<String>,
    /// `User-Agent` header, truncated.
    pub user_agent: Option<String>,
}

/// The reverse proxies whose `X-Forwarded-For` is believed (SPEC §2
/// `TRUSTED_PROXIES`): IP addresses and CIDR blocks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// The proxies in `nets`.
    pub fn new(nets: Vec<IpNet>) -> Self {
        Self(nets)
    }

    /// One entry of the setting: an address (`10.0.0.7`, `::1`) or a block
    /// (`10.0.0.0/8`, `fd00::/8`); `None` if it is neither.
    pub fn parse_entry(entry: &str) -> Option<IpNet> {
        let entry = entry.trim();
        if entry.contains('/') {
            entry.parse::<IpNet>().ok().map(|net| net.trunc())
        } else {
            entry.parse::<IpAddr>().ok().map(IpNet::from)
        }
    }

    /// Whether no proxy is trusted (then `X-Forwarded-For` is never read).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `ip` is one of the trusted proxies (an IPv4-mapped IPv6
    /// address counts as its IPv4 address).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The client's address for a request whose TCP peer is `peer` and whose
    /// `X-Forwarded-For` headers are `forwarded` (in the order received).
    ///
    /// From an untrusted peer the header means nothing: the peer is the
    /// client. From a trusted proxy, the client is the rightmost address that
    /// is not itself a trusted proxy (what lies left of it was written by
    /// whoever the client is, and proves nothing); if every address is a
    /// trusted proxy, the leftmost. An entry that is not an address where the
    /// client should be leaves the peer as the client.
    pub fn client_ip<'a>(
        &self,
        peer: IpAddr,
        forwarded: impl IntoIterator<Item = &'a str>,
    ) -> IpAddr {
        let peer = peer.to_canonical();
        if !self.contains(peer) {
            return peer;
        }
        let hops: Vec<&str> = forwarded
            .into_iter()
            .flat_map(|value| value.split(','))
            .map(str::trim)
            .filter(|hop| !hop.is_empty())
            .collect();
        let mut leftmost = peer;
        for hop in hops.iter().rev() {
            let Some(ip) = parse_hop(hop) else {
                return peer;
            };
            if !self.contains(ip) {
                return ip;
            }
            leftmost = ip;
        }
        leftmost
    }
}

/// One address of `X-Forwarded-For`: `203.0.113.7`, `2001:db8::1`, or with
/// a port (`203.0.113.7:4711`, `[2001:db8::1]:4711`), as some proxies write.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim_matches('"');
    hop.parse::<IpAddr>()
        .or_else(|_| hop.parse::<SocketAddr>().map(|addr| addr.ip()))
        .or_else(|_| {
            hop.strip_prefix('[')
                .and_then(|rest| rest.strip_suffix(']'))
                .ok_or(())
                .and_then(|inner| inner.parse::<IpAddr>().map_err(|_| ()))
        })
        .ok()
        .map(|ip| ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxies(entries: &[&str]) -> TrustedProxies {
        TrustedProxies::new(
            entries
                .iter()
                .map(|e| TrustedProxies::parse_entry(e).unwrap())
                .collect(),
        )
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        let trusted = proxies(&["10.0.0.0/8"]);
        assert_eq!(
            trusted.client_ip(ip("203.0.113.9"), ["198.51.100.1"]),
            ip("203.0.113.9")
        );
        assert_eq!(
            TrustedProxies::default().client_ip(ip("127.0.0.1"), ["198.51.100.1"]),
            ip("127.0.0.1")
        );
    }

    #[test]
    fn the_rightmost_untrusted_address_is_the_client() {
        let trusted = proxies(&["10.0.0.0/8", "127.0.0.1"]);
        let peer = ip("127.0.0.1");
        // A forged first entry, the real client, then an inner proxy.
        assert_eq!(
            trusted.client_ip(peer, ["6.6.6.6, 198.51.100.1, 10.1.1.1"]),
            ip("198.51.100.1")
        );
        // Several headers count as one list, in order.
        assert_eq!(
            trusted.client_ip(peer, ["6.6.6.6", "198.51.100.2", "10.1.1.1"]),
            ip("198.51.100.2")
        );
        // Every hop trusted: the leftmost.
        assert_eq!(
            trusted.client_ip(peer, ["10.2.2.2, 10.1.1.1"]),
            ip("10.2.2.2")
        );
        // No header: the proxy itself.
        assert_eq!(trusted.client_ip(peer, []), peer);
        // Ports and brackets, IPv6 and IPv4-mapped forms.
        assert_eq!(
            trusted.client_ip(peer, ["198.51.100.3:4711"]),
            ip("198.51.100.3")
        );
        assert_eq!(
            trusted.client_ip(peer, ["[2001:db8::7]:4711"]),
            ip("2001:db8::7")
        );
        assert_eq!(trusted.client_ip(peer, ["2001:db8::8"]), ip("2001:db8::8"));
        assert_eq!(
            trusted.client_ip(ip("::ffff:127.0.0.1"), ["::ffff:198.51.100.4"]),
            ip("198.51.100.4")
        );
        // Garbage where the client should be: the peer, not a guess.
        assert_eq!(trusted.client_ip(peer, ["198.51.100.5, unknown"]), peer);
    }
}
