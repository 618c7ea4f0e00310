//! IPv4 subnets: parsing, overlap, the host's routes, free subnets.

use crate::error::{Error, Result};
use std::net::Ipv4Addr;

/// An IPv4 subnet `a.b.c.d/N`, kept as its network address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subnet {
    pub addr: Ipv4Addr,
    pub prefix: u8,
}

impl Subnet {
    /// Parses `a.b.c.d/N` (N from 8 to 30: room for a gateway and one
    /// container); host bits must be zero.
    pub fn parse(s: &str) -> Result<Subnet> {
        let bad = |why: &str| Error::Other(format!("subnet {s:?}: {why}"));
        let (a, p) = s.split_once('/').ok_or_else(|| bad("expected a.b.c.d/N"))?;
        if a.contains(':') {
            return Err(bad("IPv6 subnets are not supported"));
        }
        let addr: Ipv4Addr = a.parse().map_err(|_| bad("not an IPv4 address"))?;
        let prefix: u8 = p
            .parse()
            .map_err(|_| bad("the prefix length is not a number"))?;
        if !(8..=30).contains(&prefix) {
            return Err(bad("the prefix length must be from 8 to 30"));
        }
        let n = Subnet { addr, prefix };
        if n.network() != u32::from(addr) {
            return Err(bad(&format!(
                "host bits are set (the subnet is {}/{prefix})",
                Ipv4Addr::from(n.network())
            )));
        }
        Ok(n)
    }

    fn mask(&self) -> u32 {
        mask(self.prefix)
    }

    pub fn network(&self) -> u32 {
        u32::from(self.addr) & self.mask()
    }

    fn broadcast(&self) -> u32 {
        self.network() | !self.mask()
    }

    /// Whether the two share any address.
    pub fn overlaps(&self, o: &Subnet) -> bool {
        let m = mask(self.prefix.min(o.prefix));
        self.network() & m == o.network() & m
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == self.network()
    }

    /// The N-th address (1 = the first after the network address), if it
    /// is a host address of the subnet.
    pub fn host(&self, n: u32) -> Option<Ipv4Addr> {
        let a = self.network().checked_add(n)?;
        (n > 0 && a < self.broadcast()).then(|| Ipv4Addr::from(a))
    }

    /// The gateway: the first host address.
    pub fn gateway(&self) -> Ipv4Addr {
        self.host(1).expect("a /30 or larger has hosts")
    }
}

impl std::fmt::Display for Subnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", Ipv4Addr::from(self.network()), self.prefix)
    }
}

fn mask(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix))
    }
}

/// A route of this network namespace's main table: (device, destination).
/// The default route is left out.
pub fn host_routes() -> Vec<(String, Subnet)> {
    let text = std::fs::read_to_string("/proc/net/route").unwrap_or_default();
    parse_routes(&text)
}

/// /proc/net/route: Iface, Destination, ..., Mask, each address the
/// kernel's in-memory (network order) bytes printed as a native integer.
fn parse_routes(text: &str) -> Vec<(String, Subnet)> {
    let addr = |s: &str| {
        u32::from_str_radix(s, 16)
            .ok()
            .map(|v| u32::from_be_bytes(v.to_ne_bytes()))
    };
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let dest = addr(f.get(1)?)?;
            let prefix = addr(f.get(7)?)?.leading_ones() as u8;
            (prefix > 0).then(|| {
                let addr = Ipv4Addr::from(dest & mask(prefix));
                (f[0].to_string(), Subnet { addr, prefix })
            })
        })
        .collect()
}

/// The first /24 of 10.89.0.0/16 that overlaps neither `taken` nor a
/// route of this network namespace.
pub fn free_subnet(taken: &[Subnet]) -> Result<Subnet> {
    let routes = host_routes();
    (0..=255u32)
        .map(|i| Subnet {
            addr: Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 89, 0, 0)) | i << 8),
            prefix: 24,
        })
        .find(|s| {
            !taken.iter().any(|t| t.overlaps(s)) && !routes.iter().any(|(_, r)| r.overlaps(s))
        })
        .ok_or_else(|| {
            Error::Other("no free subnet left in 10.89.0.0/16: give one with --subnet".to_string())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets() {
        let s = Subnet::parse("10.89.3.0/24").unwrap();
        assert_eq!(s.to_string(), "10.89.3.0/24");
        assert_eq!(s.gateway(), Ipv4Addr::new(10, 89, 3, 1));
        assert_eq!(s.host(254), Some(Ipv4Addr::new(10, 89, 3, 254)));
        assert_eq!(s.host(255), None);
        assert!(s.contains(Ipv4Addr::new(10, 89, 3, 77)));
        assert!(s.overlaps(&Subnet::parse("10.89.0.0/16").unwrap()));
        assert!(!s.overlaps(&Subnet::parse("10.89.4.0/24").unwrap()));
        for bad in [
            "10.89.3.1/24",
            "10.89.3.0",
            "10.89.3.0/31",
            "fd00::/64",
            "x/24",
        ] {
            assert!(Subnet::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn routes() {
        let text =
            "Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\tMTU\tWindow\tIRTT\n\
            eth0\t00000000\t0102000A\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
            eth0\t0002000A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
            br0\t0000590A\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n";
        let r = parse_routes(text);
        assert_eq!(
            r,
            vec![
                ("eth0".to_string(), Subnet::parse("10.0.2.0/24").unwrap()),
                ("br0".to_string(), Subnet::parse("10.89.0.0/16").unwrap()),
            ]
        );
    }
}
