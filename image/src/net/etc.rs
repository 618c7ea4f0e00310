//! The container's /etc/resolv.conf, /etc/hosts and /etc/hostname, written
//! as podman writes them.

use crate::error::{Error, Result};
use std::net::{IpAddr, Ipv4Addr};

/// What the files say.
pub struct EtcOpts<'a> {
    pub hostname: &'a str,
    /// The container's name (its ID), a second name for its address.
    pub name: &'a str,
    /// The container's address and the network's gateway (bridge modes).
    pub addr: Option<(Ipv4Addr, Ipv4Addr)>,
    /// The network's DNS server (aardvark-dns on the gateway), first in
    /// resolv.conf.
    pub dns_server: Option<Ipv4Addr>,
    /// `--dns`: replaces the host's nameservers.
    pub dns: &'a [String],
    /// `--add-host HOST:IP`.
    pub add_hosts: &'a [String],
    /// The host's resolv.conf.
    pub host_resolv: &'a str,
}

/// Servers Docker and podman fall back to when the host has none a
/// container can reach.
const FALLBACK_DNS: [&str; 2] = ["8.8.8.8", "8.8.4.4"];

/// resolv.conf: the network's server, then `--dns` or the host's
/// nameservers that are not loopback addresses (unreachable from the
/// container), with the host's `search` and `options` lines.
pub fn resolv_conf(o: &EtcOpts) -> Result<String> {
    let mut servers: Vec<String> = Vec::new();
    if let Some(s) = o.dns_server {
        servers.push(s.to_string());
    }
    for d in o.dns {
        let ip: IpAddr = d
            .parse()
            .map_err(|_| Error::Other(format!("--dns {d:?}: not an IP address")))?;
        servers.push(ip.to_string());
    }
    let mut other = String::new();
    for l in o.host_resolv.lines() {
        let mut f = l.split_whitespace();
        match f.next() {
            Some("nameserver") if o.dns.is_empty() => {
                if let Some(ip) = f.next().and_then(|a| a.parse::<IpAddr>().ok()) {
                    if !ip.is_loopback() {
                        servers.push(ip.to_string());
                    }
                }
            }
            Some("search" | "options") => {
                other.push_str(l.trim());
                other.push('\n');
            }
            _ => {}
        }
    }
    if servers.is_empty() {
        servers.extend(FALLBACK_DNS.iter().map(|s| s.to_string()));
    }
    let mut out = other;
    for s in servers {
        out.push_str(&format!("nameserver {s}\n"));
    }
    Ok(out)
}

/// hosts: localhost, the container's address under its hostname and name,
/// the gateway as `host.containers.internal`, then `--add-host` entries.
pub fn hosts(o: &EtcOpts) -> Result<String> {
    let mut out = String::from("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
    for h in o.add_hosts {
        let (name, ip) = h
            .split_once(':')
            .ok_or_else(|| Error::Other(format!("--add-host {h:?}: use HOST:IP")))?;
        let ip: IpAddr = ip
            .parse()
            .map_err(|_| Error::Other(format!("--add-host {h:?}: {ip:?} is not an IP address")))?;
        if name.is_empty() || name.contains(char::is_whitespace) {
            return Err(Error::Other(format!("--add-host {h:?}: no host name")));
        }
        out.push_str(&format!("{ip}\t{name}\n"));
    }
    match o.addr {
        Some((ip, gw)) => {
            let names = if o.hostname == o.name {
                o.name.to_string()
            } else {
                format!("{} {}", o.hostname, o.name)
            };
            out.push_str(&format!("{ip}\t{names}\n{gw}\thost.containers.internal\n"));
        }
        None => out.push_str(&format!("127.0.1.1\t{}\n", o.hostname)),
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts<'a>(dns: &'a [String], add: &'a [String], host: &'a str) -> EtcOpts<'a> {
        EtcOpts {
            hostname: "web",
            name: "c1",
            addr: Some((Ipv4Addr::new(10, 89, 0, 2), Ipv4Addr::new(10, 89, 0, 1))),
            dns_server: None,
            dns,
            add_hosts: add,
            host_resolv: host,
        }
    }

    #[test]
    fn resolv() {
        let host =
            "# x\nsearch lan\nnameserver 127.0.0.53\nnameserver 192.168.1.1\noptions edns0\n";
        assert_eq!(
            resolv_conf(&opts(&[], &[], host)).unwrap(),
            "search lan\noptions edns0\nnameserver 192.168.1.1\n"
        );
        let dns = ["9.9.9.9".to_string()];
        let mut o = opts(&dns, &[], host);
        o.dns_server = Some(Ipv4Addr::new(10, 89, 0, 1));
        assert_eq!(
            resolv_conf(&o).unwrap(),
            "search lan\noptions edns0\nnameserver 10.89.0.1\nnameserver 9.9.9.9\n"
        );
        assert_eq!(
            resolv_conf(&opts(&[], &[], "nameserver 127.0.0.1\n")).unwrap(),
            "nameserver 8.8.8.8\nnameserver 8.8.4.4\n"
        );
        assert!(resolv_conf(&opts(&["x".into()], &[], "")).is_err());
    }

    #[test]
    fn hosts_file() {
        let add = ["db:10.1.2.3".to_string()];
        let h = hosts(&opts(&[], &add, "")).unwrap();
        assert!(
            h.contains("10.1.2.3\tdb\n10.89.0.2\tweb c1\n10.89.0.1\thost.containers.internal\n"),
            "{h}"
        );
        assert!(hosts(&opts(&[], &["db".into()], "")).is_err());
        assert!(hosts(&opts(&[], &["db:x".into()], "")).is_err());
    }
}
