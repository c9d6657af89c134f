//! Where agents' callbacks may go.
//!
//! An agent names the URL its decision webhooks are sent to. Without a check, anyone holding an
//! agent key could make the server send requests into its own network (cloud metadata services,
//! admin interfaces on loopback, databases on private addresses): server-side request forgery.
//! So by default a callback must reach a public address. Submission refuses a URL whose host is
//! a non-public IP address or `localhost`; delivery resolves host names itself and connects only
//! to the public addresses among the answers, so a name that resolves (or is re-pointed) to a
//! private address is refused at the moment it would be used. `--allow-private-callbacks` turns
//! this off for agents inside the same private network (and for tests on loopback).
//!
//! Notification channels are configured by admins and are not restricted.

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// Whether `ip` is an address on the public internet: not loopback, private, shared (CGNAT),
/// link-local, unique-local, multicast, documentation, benchmarking or otherwise reserved.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => {
            // An IPv4 address written as IPv6 is judged as itself.
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public_v4(v4);
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00 // unique local fc00::/7
                || (first & 0xffc0) == 0xfe80 // link-local fe80::/10
                || (first & 0xffc0) == 0xfec0 // site-local fec0::/10 (deprecated)
                || (first == 0x2001 && v6.segments()[1] == 0x0db8) // documentation
                || (first == 0x0064 && v6.segments()[1] == 0xff9b) // NAT64, embeds IPv4
                || v6.segments()[..6] == [0, 0, 0, 0, 0, 0]) // IPv4-compatible ::a.b.c.d
        }
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0 // "this network"
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (18..20).contains(&b)) // benchmarking
        || a >= 240) // reserved
}

/// Why this server refuses a callback URL: unless private callbacks are allowed, a host that is
/// a non-public IP address or a loopback name. `None` for every other URL (host names are
/// checked when delivering, see [`callback_client`]). Asked when an agent submits the URL and
/// again before each delivery, for URLs stored earlier.
pub fn refused_callback(url: &url::Url, allow_private: bool) -> Option<String> {
    if allow_private {
        return None;
    }
    match url.host()? {
        url::Host::Ipv4(ip) if !is_public(IpAddr::V4(ip)) => Some(format!(
            "must reach a public address; {ip} is private, loopback or reserved"
        )),
        url::Host::Ipv6(ip) if !is_public(IpAddr::V6(ip)) => Some(format!(
            "must reach a public address; {ip} is private, loopback or reserved"
        )),
        url::Host::Domain(name) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            (name == "localhost" || name.ends_with(".localhost"))
                .then(|| format!("must reach a public address, not {name}"))
        }
        _ => None,
    }
}

/// Resolves host names like the system does, then keeps only the public addresses.
struct PublicAddressesOnly;

impl Resolve for PublicAddressesOnly {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let all: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let public = public_only(&all);
            if public.is_empty() {
                return Err(format!(
                    "callback host {host} resolves to no public address (callbacks must be \
                     public unless the server runs with --allow-private-callbacks)"
                )
                .into());
            }
            let addrs: Addrs = Box::new(public.into_iter());
            Ok(addrs)
        })
    }
}

/// The public addresses among `resolved`, in their order.
fn public_only(resolved: &[SocketAddr]) -> Vec<SocketAddr> {
    resolved
        .iter()
        .copied()
        .filter(|a| is_public(a.ip()))
        .collect()
}

/// The client agents' callbacks are sent with: 10 s timeout, no redirects (a redirect could send
/// the signed body somewhere the agent did not name, or to a private address), and unless
/// `allow_private`, connections to public addresses only.
pub fn callback_client(allow_private: bool) -> reqwest::Client {
    let builder = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent("Countersign-Webhooks/1");
    let builder = if allow_private {
        builder
    } else {
        builder.dns_resolver(Arc::new(PublicAddressesOnly))
    };
    builder.build().expect("HTTP client builds")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn only_public_addresses_are_public() {
        for private in [
            "127.0.0.1",
            "127.8.9.10",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.255",
            "0.0.0.0",
            "0.1.2.3",
            "255.255.255.255",
            "224.0.0.1",
            "192.0.0.8",
            "192.0.2.1",
            "198.18.0.1",
            "203.0.113.5",
            "240.0.0.1",
            "::1",
            "::",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "ff02::1",
            "2001:db8::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::127.0.0.1",
            "64:ff9b::a00:1",
        ] {
            assert!(!is_public(ip(private)), "{private} is not public");
        }
        for public in [
            "1.1.1.1",
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "192.0.1.1",
            "198.20.0.1",
            "93.184.216.34",
            "2606:4700:4700::1111",
            "2a00:1450:4001::200e",
            "::ffff:8.8.8.8",
        ] {
            assert!(is_public(ip(public)), "{public} is public");
        }
    }

    #[test]
    fn callback_urls_naming_private_hosts_are_refused() {
        let refused = |u: &str| refused_callback(&url::Url::parse(u).unwrap(), false);
        for bad in [
            "http://127.0.0.1:8080/hook",
            "https://10.0.0.5/hook",
            "http://[::1]/hook",
            "http://[::ffff:192.168.0.1]/hook",
            "http://169.254.169.254/latest/meta-data/",
            "http://localhost:9000/hook",
            "http://LocalHost./hook",
            "http://agent.localhost/hook",
            "http://0x7f000001/hook",
            "http://2130706433/hook",
        ] {
            assert!(refused(bad).is_some(), "{bad} is refused");
        }
        for good in [
            "https://agent.example/hook",
            "https://8.8.8.8/hook",
            "https://[2606:4700:4700::1111]/hook",
            "https://localhost.example.com/hook",
        ] {
            assert_eq!(refused(good), None, "{good} is allowed");
        }
        let allowed = url::Url::parse("http://127.0.0.1:8080/hook").unwrap();
        assert_eq!(
            refused_callback(&allowed, true),
            None,
            "a server that allows private callbacks refuses none"
        );
    }

    #[test]
    fn resolved_addresses_keep_only_the_public_ones() {
        let addrs: Vec<SocketAddr> = [
            "127.0.0.1:0",
            "93.184.216.34:0",
            "[fe80::1]:0",
            "[2606:4700::1]:0",
        ]
        .iter()
        .map(|a| a.parse().unwrap())
        .collect();
        assert_eq!(public_only(&addrs), [addrs[1], addrs[3]]);
        assert!(public_only(&addrs[..1]).is_empty());
    }
}
