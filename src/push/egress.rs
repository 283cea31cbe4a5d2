//! Where server-side requests (httpcb pushes) may go: the guard against request forgery.
//!
//! The callback URL is chosen by the customer's app, so without a guard any customer could
//! make callbackd POST to its own loopback interface, the private network it runs in, or a
//! cloud metadata endpoint (169.254.169.254). [`EgressPolicy`] refuses loopback, private,
//! shared (CGNAT), link-local, multicast, reserved and unspecified addresses, IPv4-mapped and
//! NAT64/6to4-embedded forms included, unless `[httpcb] allow` lets them through.
//!
//! The check that counts is made on the addresses actually connected to: the delivery client
//! resolves names through [`CheckedResolver`], which drops refused addresses before the
//! connector sees them, so a name cannot resolve to a public address for the check and to a
//! private one for the connect (DNS rebinding). Literal IP hosts never reach a resolver and
//! are checked by [`EgressPolicy::screen`] before the request is built. Creation checks the
//! same rules early ([`EgressPolicy::check_at_creation`]) so that the customer gets a 400.
//!
//! This module knows nothing about notifications; it only judges URLs and addresses.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use reqwest::Url;
use tokio::sync::Semaphore;

/// Name lookups that creation runs at once; beyond that, creation does not wait for DNS
/// (delivery checks again). Lookups run on tokio's blocking pool, which the group commit's
/// flush also needs, so customers must not be able to fill it with slow names.
const CREATION_LOOKUPS: usize = 8;

/// How long creation waits for a name lookup (slot included) before leaving the check to
/// delivery.
const CREATION_LOOKUP_TIMEOUT: Duration = Duration::from_secs(2);

/// One `[httpcb] allow` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowRule {
    /// A network (`10.0.0.0/8`, `::1/128`, or a bare address): its addresses may be
    /// connected to, whatever name led there.
    Network(Network),
    /// A URL prefix (`http://127.0.0.1:8081/hooks/`): URLs with the same scheme, host and
    /// port whose path starts with the prefix's path go anywhere their host resolves to.
    Prefix(Url),
}

impl FromStr for AllowRule {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        if text.contains("://") {
            let url = Url::parse(text).map_err(|err| format!("`{text}` is not a URL: {err}"))?;
            if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
                return Err(format!(
                    "`{text}`: a URL prefix must be http:// or https:// with a host"
                ));
            }
            return Ok(AllowRule::Prefix(url));
        }
        text.parse().map(AllowRule::Network)
    }
}

impl std::fmt::Display for AllowRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AllowRule::Network(network) => write!(f, "{network}"),
            AllowRule::Prefix(url) => write!(f, "{url}"),
        }
    }
}

/// An IP network: an address and a prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    base: IpAddr,
    len: u8,
}

impl Network {
    /// Whether `ip` (IPv4-mapped IPv6 read as IPv4) lies in the network.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.base, ip.to_canonical()) {
            (IpAddr::V4(base), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.len)).unwrap_or(0);
                u32::from(base) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(base), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.len))
                    .unwrap_or(0);
                u128::from(base) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for Network {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || {
            format!("`{text}` is neither a network (10.0.0.0/8, ::1/128, 127.0.0.1) nor a URL prefix (http://host:port/path)")
        };
        let (addr, len) = match text.split_once('/') {
            Some((addr, len)) => (addr, Some(len)),
            None => (text, None),
        };
        let base = addr.parse::<IpAddr>().map_err(|_| bad())?.to_canonical();
        let max = if base.is_ipv4() { 32 } else { 128 };
        let len = match len {
            Some(len) => len
                .parse::<u8>()
                .ok()
                .filter(|&l| l <= max)
                .ok_or_else(bad)?,
            None => max,
        };
        Ok(Network { base, len })
    }
}

impl std::fmt::Display for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.base, self.len)
    }
}

/// Why a callback URL is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Not an http(s) URL with a host.
    #[error("`{0}` is not an http:// or https:// URL with a host")]
    BadUrl(String),
    /// The host is, or resolves to, an address callbackd does not send to.
    #[error("`{host}` is {address}, an internal (loopback, private, link-local, multicast or unspecified) address; callbackd does not send requests there unless [httpcb] allow lists it")]
    Internal {
        /// The URL's host.
        host: String,
        /// The refused address.
        address: IpAddr,
    },
}

/// The rules for server-side requests. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct EgressPolicy {
    networks: Vec<Network>,
    prefixes: Vec<Url>,
    /// Bounds creation's name lookups (see [`CREATION_LOOKUPS`]).
    lookups: Semaphore,
}

/// How a URL may be reached, as [`EgressPolicy::screen`] decided it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// An allowed prefix: connect wherever the host resolves.
    Trusted,
    /// Everything else: connect only to addresses [`EgressPolicy::permits`].
    Checked,
}

impl EgressPolicy {
    /// A policy with these `[httpcb] allow` entries (none: only public addresses).
    pub fn new(allow: &[AllowRule]) -> EgressPolicy {
        let mut networks = Vec::new();
        let mut prefixes = Vec::new();
        for rule in allow {
            match rule {
                AllowRule::Network(network) => networks.push(*network),
                AllowRule::Prefix(url) => prefixes.push(url.clone()),
            }
        }
        EgressPolicy {
            networks,
            prefixes,
            lookups: Semaphore::new(CREATION_LOOKUPS),
        }
    }

    /// Whether a connection to `ip` is allowed: a public address, or one in an allowed
    /// network.
    pub fn permits(&self, ip: IpAddr) -> bool {
        !is_internal(ip) || self.networks.iter().any(|n| n.contains(ip))
    }

    /// Whether `url` starts with an allowed prefix (same scheme, host and port, path under
    /// the prefix's path). Parsed components are compared, not strings, so
    /// `http://127.0.0.1:80810/` or `http://127.0.0.1.evil.example/` do not pass as
    /// `http://127.0.0.1:8081`.
    fn trusts(&self, url: &Url) -> bool {
        self.prefixes.iter().any(|prefix| {
            prefix.scheme() == url.scheme()
                && prefix.host() == url.host()
                && prefix.port_or_known_default() == url.port_or_known_default()
                && url.path().starts_with(prefix.path())
        })
    }

    /// Decides how `url` may be reached without any lookup: refused if its host is a
    /// literal address that is not permitted (literal hosts never reach the resolver, so
    /// this is their connect-time check), else trusted or checked.
    ///
    /// # Errors
    /// A [`Refusal`] saying why.
    pub fn screen(&self, url: &str) -> Result<(Url, Route), Refusal> {
        let parsed = Url::parse(url).map_err(|_| Refusal::BadUrl(url.to_string()))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(Refusal::BadUrl(url.to_string()));
        }
        if self.trusts(&parsed) {
            return Ok((parsed, Route::Trusted));
        }
        if parsed.host().is_none() {
            return Err(Refusal::BadUrl(url.to_string()));
        }
        if let Some(address) = literal_host(&parsed).filter(|ip| !self.permits(*ip)) {
            return Err(Refusal::Internal {
                host: parsed.host_str().unwrap_or_default().to_string(),
                address,
            });
        }
        Ok((parsed, Route::Checked))
    }

    /// The creation-time check: [`EgressPolicy::screen`], then, for a name, a lookup whose
    /// addresses must all be permitted. A name that does not resolve (or not in time) is
    /// accepted: delivery resolves it again through [`CheckedResolver`], which is the check
    /// that cannot be got around.
    ///
    /// # Errors
    /// A [`Refusal`] saying why.
    pub async fn check_at_creation(&self, url: &str) -> Result<(), Refusal> {
        let (parsed, route) = self.screen(url)?;
        let name = parsed.host_str().unwrap_or_default();
        if route == Route::Trusted || literal_host(&parsed).is_some() {
            return Ok(());
        }
        let port = parsed.port_or_known_default().unwrap_or(80);
        let lookup = async {
            let _slot = self.lookups.acquire().await.ok()?;
            tokio::net::lookup_host((name, port)).await.ok()
        };
        let Ok(Some(addresses)) = tokio::time::timeout(CREATION_LOOKUP_TIMEOUT, lookup).await
        else {
            return Ok(());
        };
        for address in addresses {
            if !self.permits(address.ip()) {
                return Err(Refusal::Internal {
                    host: name.to_string(),
                    address: address.ip(),
                });
            }
        }
        Ok(())
    }
}

/// reqwest's name resolver for checked deliveries: the system resolver, with every address
/// the policy does not permit removed before the connector sees the list.
pub struct CheckedResolver {
    policy: Arc<EgressPolicy>,
}

impl CheckedResolver {
    /// A resolver that filters by `policy`.
    pub fn new(policy: Arc<EgressPolicy>) -> CheckedResolver {
        CheckedResolver { policy }
    }
}

impl reqwest::dns::Resolve for CheckedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        Box::pin(resolve_checked(
            self.policy.clone(),
            name.as_str().to_string(),
        ))
    }
}

/// Resolves `host` and keeps the permitted addresses; none left is a [`Refusal`].
async fn resolve_checked(
    policy: Arc<EgressPolicy>,
    host: String,
) -> Result<reqwest::dns::Addrs, Box<dyn std::error::Error + Send + Sync>> {
    // Port 0: reqwest puts the URL's port in afterwards.
    let resolved: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
    let permitted: Vec<SocketAddr> = resolved
        .iter()
        .copied()
        .filter(|address| policy.permits(address.ip()))
        .collect();
    if permitted.is_empty() {
        let address = resolved
            .first()
            .map(SocketAddr::ip)
            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        return Err(Box::new(Refusal::Internal { host, address }));
    }
    Ok(Box::new(permitted.into_iter()))
}

/// The URL's host when it is a literal address (`[::1]` without brackets). The URL parser
/// has already turned every numeric spelling (`0x7f.1`, `2130706433`) into dotted form.
fn literal_host(url: &Url) -> Option<IpAddr> {
    let host = url.host_str()?;
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()
}

/// Whether `ip` belongs to the machine itself or a non-public network: what a customer
/// must not make callbackd connect to.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip.to_canonical() {
        IpAddr::V4(ip) => is_internal_v4(ip),
        IpAddr::V6(ip) => is_internal_v6(ip),
    }
}

fn is_internal_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    ip.is_unspecified()
        || a == 0 // "this network"
        || ip.is_loopback()
        || ip.is_private()
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT), 100.64/10
        || ip.is_link_local() // 169.254/16, cloud metadata
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || ip.is_multicast()
        || a >= 240 // reserved and broadcast
}

fn is_internal_v6(ip: Ipv6Addr) -> bool {
    let segments = ip.segments();
    let bits = u128::from(ip);
    // An IPv4 address carried inside (NAT64 64:ff9b::/96, 6to4 2002::/16) is judged as IPv4.
    let embedded = |v4: u32| is_internal_v4(Ipv4Addr::from(v4));
    bits >> 32 == 0 // ::/96: unspecified, loopback, deprecated IPv4-compatible
        || (segments[0] & 0xfe00) == 0xfc00 // unique local
        || (segments[0] & 0xffc0) == 0xfe80 // link-local
        || (segments[0] & 0xffc0) == 0xfec0 // site-local (deprecated)
        || ip.is_multicast()
        || (bits >> 32 == 0x0064_ff9b_0000_0000_0000_0000 && embedded(bits as u32))
        || (segments[0] == 0x2002 && embedded((bits >> 80) as u32))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(allow: &[&str]) -> EgressPolicy {
        let rules: Vec<AllowRule> = allow.iter().map(|r| r.parse().unwrap()).collect();
        EgressPolicy::new(&rules)
    }

    #[test]
    fn internal_addresses_are_recognised_in_every_spelling() {
        for (ip, internal) in [
            ("127.0.0.1", true),
            ("127.255.0.9", true),
            ("10.0.0.1", true),
            ("172.16.5.4", true),
            ("172.32.0.1", false),
            ("192.168.1.1", true),
            ("100.64.0.1", true),
            ("169.254.169.254", true),
            ("0.0.0.0", true),
            ("224.0.0.1", true),
            ("255.255.255.255", true),
            ("8.8.8.8", false),
            ("93.184.216.34", false),
            ("::1", true),
            ("::", true),
            ("::ffff:127.0.0.1", true),
            ("::ffff:8.8.8.8", false),
            ("fd00::1", true),
            ("fe80::1", true),
            ("ff02::1", true),
            ("64:ff9b::a00:1", true),
            ("64:ff9b::808:808", false),
            ("2002:7f00:1::", true),
            ("2606:4700::1111", false),
        ] {
            let parsed: IpAddr = ip.parse().unwrap();
            assert_eq!(is_internal(parsed), internal, "{ip}");
        }
    }

    #[test]
    fn allow_rules_parse_networks_addresses_and_url_prefixes() {
        for (text, ok) in [
            ("10.0.0.0/8", true),
            ("127.0.0.1", true),
            ("::1/128", true),
            ("::/0", true),
            ("10.0.0.0/33", false),
            ("http://127.0.0.1:8081/hooks/", true),
            ("ftp://127.0.0.1/", false),
            ("localhost", false),
            ("", false),
        ] {
            assert_eq!(text.parse::<AllowRule>().is_ok(), ok, "{text}");
        }
    }

    #[test]
    fn the_default_policy_refuses_internal_literals_and_passes_names_to_the_resolver() {
        let policy = policy(&[]);
        for url in [
            "http://127.0.0.1:8080/",
            "http://10.0.0.1/",
            "http://[::1]/",
            "http://[::ffff:7f00:1]/",
            "http://169.254.169.254/latest",
            "http://0x7f.1/",
            "http://2130706433/",
        ] {
            assert!(
                matches!(policy.screen(url), Err(Refusal::Internal { .. })),
                "{url}"
            );
        }
        assert_eq!(
            policy.screen("http://example.com/").unwrap().1,
            Route::Checked
        );
        assert_eq!(policy.screen("http://8.8.8.8/").unwrap().1, Route::Checked);
        assert!(matches!(
            policy.screen("file:///etc/passwd"),
            Err(Refusal::BadUrl(_))
        ));
    }

    #[test]
    fn a_prefix_trusts_only_urls_with_its_scheme_host_port_and_path() {
        let policy = policy(&["http://127.0.0.1:8081/hooks/"]);
        assert_eq!(
            policy.screen("http://127.0.0.1:8081/hooks/a").unwrap().1,
            Route::Trusted
        );
        for url in [
            "http://127.0.0.1:8082/hooks/a",
            "http://127.0.0.1:8081/other",
            "https://127.0.0.1:8081/hooks/a",
        ] {
            assert!(policy.screen(url).is_err(), "{url}");
        }
        assert_eq!(
            policy
                .screen("http://127.0.0.1.evil.example:8081/hooks/")
                .unwrap()
                .1,
            Route::Checked,
            "a look-alike name is only checked, never trusted"
        );
    }

    #[test]
    fn an_allowed_network_lets_its_addresses_through() {
        let policy = policy(&["127.0.0.0/8", "fd00::/8"]);
        assert!(policy.permits("127.0.0.1".parse().unwrap()));
        assert!(policy.permits("::ffff:127.0.0.1".parse().unwrap()));
        assert!(policy.permits("fd12::1".parse().unwrap()));
        assert!(!policy.permits("10.0.0.1".parse().unwrap()));
        assert!(!policy.permits("::1".parse().unwrap()));
    }

    #[tokio::test]
    async fn creation_refuses_a_name_that_resolves_to_loopback() {
        let refused = policy(&[]).check_at_creation("http://localhost:9/").await;
        assert!(
            matches!(refused, Err(Refusal::Internal { .. })),
            "{refused:?}"
        );
        let allowed = policy(&["127.0.0.0/8", "::1"])
            .check_at_creation("http://localhost:9/")
            .await;
        assert_eq!(allowed, Ok(()));
    }
}
