//! `-p [IP:][HOSTPORT:]CONTAINERPORT[/tcp|/udp]`: published ports, as
//! Docker and podman read them.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::net::Ipv4Addr;

/// One published range: `range` consecutive ports from `host_port` to
/// `container_port` (netavark's `PortMapping`). `host_port` 0 until a free
/// one is chosen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortMapping {
    pub host_ip: String,
    pub host_port: u16,
    pub container_port: u16,
    pub protocol: String,
    pub range: u16,
}

impl std::fmt::Display for PortMapping {
    /// `80/tcp -> 0.0.0.0:8080` per port, as `docker port` prints them.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ip = if self.host_ip.is_empty() {
            "0.0.0.0"
        } else {
            &self.host_ip
        };
        for i in 0..self.range {
            if i > 0 {
                writeln!(f)?;
            }
            write!(
                f,
                "{}/{} -> {ip}:{}",
                self.container_port + i,
                self.protocol,
                self.host_port + i
            )?;
        }
        Ok(())
    }
}

/// `N` or `N-M` (inclusive), ports 1..65535: (first, count).
fn port_range(s: &str, what: &str) -> std::result::Result<(u16, u16), String> {
    let num = |p: &str| match p.parse::<u16>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("{what} {p:?} is not a port (1-65535)")),
    };
    match s.split_once('-') {
        None => Ok((num(s)?, 1)),
        Some((a, b)) => {
            let (a, b) = (num(a)?, num(b)?);
            if b < a {
                return Err(format!("{what} range {s:?} ends before it starts"));
            }
            Ok((a, b - a + 1))
        }
    }
}

/// Parses one `-p` value.
pub fn parse(spec: &str) -> Result<Vec<PortMapping>> {
    parse_inner(spec).map_err(|why| Error::Other(format!("-p {spec:?}: {why}")))
}

fn parse_inner(spec: &str) -> std::result::Result<Vec<PortMapping>, String> {
    let (addr, protocol) = match spec.rsplit_once('/') {
        Some((a, p @ ("tcp" | "udp"))) => (a, p),
        Some((_, p)) => return Err(format!("protocol {p:?}: use tcp or udp")),
        None => (spec, "tcp"),
    };
    if addr.starts_with('[') {
        return Err("IPv6 host addresses are not supported".into());
    }
    let parts: Vec<&str> = addr.split(':').collect();
    let (ip, host, cont) = match parts.as_slice() {
        [c] => ("", "", *c),
        [h, c] => ("", *h, *c),
        [ip, h, c] => (*ip, *h, *c),
        _ => return Err("expected [IP:][HOSTPORT:]CONTAINERPORT[/tcp|/udp]".into()),
    };
    if !ip.is_empty() && ip.parse::<Ipv4Addr>().is_err() {
        return Err(format!("host address {ip:?} is not an IPv4 address"));
    }
    let (cport, n) = port_range(cont, "container port")?;
    let one = |host_port, container_port, range| PortMapping {
        host_ip: ip.to_string(),
        host_port,
        container_port,
        protocol: protocol.to_string(),
        range,
    };
    if host.is_empty() {
        // Each port gets a host port of its own, chosen later.
        return Ok((0..n).map(|i| one(0, cport + i, 1)).collect());
    }
    let (hport, m) = port_range(host, "host port")?;
    if m != n {
        return Err(format!(
            "{m} host ports for {n} container ports: the ranges must be as long"
        ));
    }
    if u32::from(hport) + u32::from(n) - 1 > 65535 || u32::from(cport) + u32::from(n) - 1 > 65535 {
        return Err("the range passes port 65535".into());
    }
    Ok(vec![one(hport, cport, n)])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Vec<(String, u16, u16, String, u16)> {
        parse(s)
            .unwrap()
            .into_iter()
            .map(|m| {
                (
                    m.host_ip,
                    m.host_port,
                    m.container_port,
                    m.protocol,
                    m.range,
                )
            })
            .collect()
    }

    #[test]
    fn forms() {
        let tcp = || "tcp".to_string();
        assert_eq!(p("8080:80"), vec![(String::new(), 8080, 80, tcp(), 1)]);
        assert_eq!(p("80"), vec![(String::new(), 0, 80, tcp(), 1)]);
        assert_eq!(
            p("127.0.0.1:8080:80/udp"),
            vec![("127.0.0.1".into(), 8080, 80, "udp".into(), 1)]
        );
        assert_eq!(
            p("127.0.0.1::80"),
            vec![("127.0.0.1".into(), 0, 80, tcp(), 1)]
        );
        assert_eq!(
            p("9000-9002:7000-7002"),
            vec![(String::new(), 9000, 7000, tcp(), 3)]
        );
        assert_eq!(p("81-82").len(), 2);
        let m = &parse("9000-9001:7000-7001").unwrap()[0];
        assert_eq!(
            m.to_string(),
            "7000/tcp -> 0.0.0.0:9000\n7001/tcp -> 0.0.0.0:9001"
        );
    }

    #[test]
    fn refused() {
        for bad in [
            "",
            "0",
            "70000",
            "a:80",
            "8080:80/sctp",
            "1.2.3:80:80",
            "90-80:80",
            "1-3:1-2",
            "[::1]:80:80",
            "1:2:3:4",
            "65535-65535:65534-65534x",
        ] {
            let e = parse(bad).unwrap_err().to_string();
            assert!(e.starts_with(&format!("-p {bad:?}: ")), "{e}");
        }
    }
}
