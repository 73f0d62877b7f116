//! The SSRF guard: which addresses a webhook may reach.
//!
//! By default a callback URL may not point at loopback, private, link-local (including the
//! cloud metadata address 169.254.169.254), CGNAT, multicast, unspecified, reserved or
//! documentation addresses, nor at IPv4-mapped (or NAT64) IPv6 forms of them. The guard runs at
//! registration (the URL's host is resolved and every address checked; a host that does not
//! resolve is accepted, since name resolution is the network's state, not the request's, and
//! its deliveries fail and retry with that reason in the delivery log) and again at connect
//! time: [`GuardedResolver`] resolves, drops refused addresses, and hands only the checked ones
//! to the HTTP client, which connects to exactly those (no second lookup). IP-literal hosts
//! never reach a resolver, so the dispatcher checks them itself before sending.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use reqwest::Url;

/// An address range such as `127.0.0.0/8` or `fd00::/8`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn parse(text: &str) -> Result<Cidr, String> {
        let text = text.trim();
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("'{text}' is not an address range (like 10.0.0.0/8)"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("'{text}' has an invalid prefix length"))?,
            None => max,
        };
        Ok(Cidr { addr, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, canonical(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                prefix_match(&net.octets(), &ip.octets(), self.prefix)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                prefix_match(&net.octets(), &ip.octets(), self.prefix)
            }
            _ => false,
        }
    }
}

fn prefix_match(net: &[u8], ip: &[u8], prefix: u8) -> bool {
    let full = usize::from(prefix / 8);
    let rest = prefix % 8;
    if net[..full] != ip[..full] {
        return false;
    }
    if rest == 0 {
        return true;
    }
    let mask = 0xffu8 << (8 - rest);
    (net[full] & mask) == (ip[full] & mask)
}

/// IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`) as the IPv4 address they carry.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

fn v4_is_special(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // CGNAT 100.64.0.0/10
        || a >= 240 // reserved 240.0.0.0/4
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // benchmarking 198.18.0.0/15
}

fn v6_is_special(ip: Ipv6Addr) -> bool {
    let seg = ip.segments();
    if let Some(v4) = ip.to_ipv4_mapped() {
        return v4_is_special(v4);
    }
    // NAT64 (64:ff9b::/96) and the deprecated IPv4-compatible form carry an IPv4 address.
    if seg[0] == 0x64 && seg[1] == 0xff9b && seg[2..6] == [0, 0, 0, 0] {
        let o = ip.octets();
        return v4_is_special(Ipv4Addr::new(o[12], o[13], o[14], o[15]));
    }
    if seg[..6] == [0, 0, 0, 0, 0, 0] {
        // ::, ::1 and ::a.b.c.d
        return true;
    }
    (seg[0] & 0xfe00) == 0xfc00 // unique local fc00::/7
        || (seg[0] & 0xffc0) == 0xfe80 // link-local fe80::/10
        || (seg[0] & 0xffc0) == 0xfec0 // site-local (deprecated)
        || (seg[0] & 0xff00) == 0xff00 // multicast
        || (seg[0] == 0x2001 && seg[1] == 0x0db8) // documentation
}

/// Whether `ip` is in a range webhooks may not reach by default.
pub fn is_special(ip: IpAddr) -> bool {
    match canonical(ip) {
        IpAddr::V4(v4) => v4_is_special(v4),
        IpAddr::V6(v6) => v6_is_special(v6),
    }
}

/// Which addresses webhooks may reach.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UrlPolicy {
    /// Allow every address, private ones included (`WAYBILL_WEBHOOK_ALLOW_PRIVATE=true`).
    pub allow_private: bool,
    /// Ranges allowed although special (`WAYBILL_WEBHOOK_ALLOW_CIDRS=127.0.0.0/8,...`).
    pub allow_cidrs: Vec<Cidr>,
}

/// Why a callback URL is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UrlRefusal {
    /// Not an absolute http(s) URL with a host.
    Invalid(String),
    /// The host is, or resolves to, an address the policy refuses.
    AddressNotAllowed(String),
}

impl UrlRefusal {
    pub fn message(&self) -> &str {
        match self {
            UrlRefusal::Invalid(m) | UrlRefusal::AddressNotAllowed(m) => m,
        }
    }
}

/// Longest callback URL accepted.
pub const MAX_URL_LEN: usize = 2048;

impl UrlPolicy {
    /// Reads `allow_private` and a comma-separated list of ranges.
    pub fn new(allow_private: bool, cidrs: &str) -> Result<UrlPolicy, String> {
        let allow_cidrs = cidrs
            .split(',')
            .filter(|c| !c.trim().is_empty())
            .map(Cidr::parse)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(UrlPolicy {
            allow_private,
            allow_cidrs,
        })
    }

    /// A policy that allows everything (tests, internal receivers).
    pub fn allow_all() -> UrlPolicy {
        UrlPolicy {
            allow_private: true,
            allow_cidrs: Vec::new(),
        }
    }

    pub fn permits(&self, ip: IpAddr) -> bool {
        self.allow_private || !is_special(ip) || self.allow_cidrs.iter().any(|c| c.contains(ip))
    }

    /// Parses a callback URL and checks its syntax (absolute http or https, a host, no
    /// credentials), without resolving it.
    pub fn parse_url(url: &str) -> Result<Url, UrlRefusal> {
        if url.chars().count() > MAX_URL_LEN {
            return Err(UrlRefusal::Invalid(format!(
                "the callback URL must be at most {MAX_URL_LEN} characters long"
            )));
        }
        let parsed = Url::parse(url)
            .map_err(|e| UrlRefusal::Invalid(format!("the callback URL is not valid: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(UrlRefusal::Invalid(
                "the callback URL must use http or https".into(),
            ));
        }
        if parsed.host().is_none() {
            return Err(UrlRefusal::Invalid("the callback URL needs a host".into()));
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(UrlRefusal::Invalid(
                "the callback URL must not carry credentials; use callback.auth".into(),
            ));
        }
        Ok(parsed)
    }

    /// The IP a URL's host is written as, if it is an IP literal.
    pub fn literal_ip(url: &Url) -> Option<IpAddr> {
        match url.host()? {
            url::Host::Ipv4(v4) => Some(IpAddr::V4(v4)),
            url::Host::Ipv6(v6) => Some(IpAddr::V6(v6)),
            url::Host::Domain(_) => None,
        }
    }

    /// Registration check: the URL is well formed and every address its host resolves to is
    /// permitted. A host that does not resolve now is accepted (see the module's doc).
    pub async fn check_url(&self, url: &str) -> Result<Url, UrlRefusal> {
        let parsed = Self::parse_url(url)?;
        let refused = |ip: IpAddr| {
            UrlRefusal::AddressNotAllowed(format!(
                "the callback URL points at {ip}, an address webhooks may not reach (loopback, private, link-local or reserved)"
            ))
        };
        if let Some(ip) = Self::literal_ip(&parsed) {
            return if self.permits(ip) {
                Ok(parsed)
            } else {
                Err(refused(ip))
            };
        }
        let host = parsed.host_str().unwrap_or_default().to_owned();
        let port = parsed.port_or_known_default().unwrap_or(80);
        let addrs: Vec<SocketAddr> = match tokio::net::lookup_host((host.as_str(), port)).await {
            Ok(addrs) => addrs.collect(),
            Err(e) => {
                tracing::info!(%host, error = %e, "a callback host does not resolve (yet); accepted");
                Vec::new()
            }
        };
        if let Some(bad) = addrs.iter().find(|a| !self.permits(a.ip())) {
            return Err(refused(bad.ip()));
        }
        Ok(parsed)
    }
}

/// A DNS resolver for the webhook HTTP client that returns only permitted addresses, so the
/// client connects to an address that was checked (no second lookup, no rebinding window).
pub struct GuardedResolver {
    pub policy: Arc<UrlPolicy>,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.policy.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let allowed: Vec<SocketAddr> = addrs.filter(|a| policy.permits(a.ip())).collect();
            if allowed.is_empty() {
                return Err(format!("'{host}' resolves to no address webhooks may reach").into());
            }
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn refuses_special_ranges() {
        for bad in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.255",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a00:1",
        ] {
            assert!(is_special(ip(bad)), "{bad} should be refused");
            assert!(!UrlPolicy::default().permits(ip(bad)));
        }
        for good in [
            "93.184.216.34",
            "100.128.0.1",
            "2606:4700::1",
            "::ffff:8.8.8.8",
        ] {
            assert!(!is_special(ip(good)), "{good} should be allowed");
        }
    }

    #[test]
    fn allow_lists_open_ranges() {
        let policy = UrlPolicy::new(false, "127.0.0.0/8, fd00::/8").unwrap();
        assert!(policy.permits(ip("127.0.0.2")));
        assert!(policy.permits(ip("::ffff:127.0.0.1")));
        assert!(policy.permits(ip("fd12::1")));
        assert!(!policy.permits(ip("10.0.0.1")));
        assert!(UrlPolicy::new(false, "10.0.0.0/33").is_err());
        assert!(UrlPolicy::new(false, "nope").is_err());
        assert!(UrlPolicy::allow_all().permits(ip("10.0.0.1")));
    }
}
