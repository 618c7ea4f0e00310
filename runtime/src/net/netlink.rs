//! A minimal rtnetlink client (rtnetlink(7)): link lookup, moving a link
//! to another network namespace under a new name, bringing it up, and
//! reading and adding its addresses. Enough for `linux.netDevices`; each
//! request waits for the kernel's answer on one socket.

use nix::errno::Errno;
use nix::sys::socket::{
    connect, socket, AddressFamily, NetlinkAddr, SockFlag, SockProtocol, SockType,
};
use std::os::fd::{AsFd, OwnedFd};

const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const RTM_NEWLINK: u16 = 16;
const RTM_GETLINK: u16 = 18;
const RTM_NEWADDR: u16 = 20;
const RTM_GETADDR: u16 = 22;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_ACK: u16 = 4;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;
const NLM_F_DUMP: u16 = 0x300;
const IFLA_IFNAME: u16 = 3;
const IFLA_NET_NS_FD: u16 = 28;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_BROADCAST: u16 = 4;
const IFA_FLAGS: u16 = 8;
const IFA_F_PERMANENT: u32 = 0x80;
const IFF_UP: u32 = 1;

/// An address of a link, as the kernel reported it.
#[derive(Debug, Clone)]
pub struct Addr {
    pub family: u8,
    pub prefixlen: u8,
    pub flags: u32,
    pub scope: u8,
    /// (attribute type, value): IFA_LOCAL, IFA_ADDRESS, IFA_BROADCAST.
    attrs: Vec<(u16, Vec<u8>)>,
}

impl Addr {
    /// Permanent (not from DHCP or SLAAC) and of global scope: what the
    /// spec asks to keep across the move.
    pub fn permanent_global(&self) -> bool {
        self.flags & IFA_F_PERMANENT != 0 && self.scope == 0
    }
}

fn attr(buf: &mut Vec<u8>, typ: u16, data: &[u8]) {
    let len = 4 + data.len();
    buf.extend_from_slice(&(len as u16).to_ne_bytes());
    buf.extend_from_slice(&typ.to_ne_bytes());
    buf.extend_from_slice(data);
    buf.resize(buf.len().next_multiple_of(4), 0);
}

/// (type, value) pairs of the attributes in `b`.
fn attrs(mut b: &[u8]) -> Vec<(u16, &[u8])> {
    let mut v = Vec::new();
    while b.len() >= 4 {
        let len = u16::from_ne_bytes([b[0], b[1]]) as usize;
        let typ = u16::from_ne_bytes([b[2], b[3]]);
        if len < 4 || len > b.len() {
            break;
        }
        v.push((typ, &b[4..len]));
        b = &b[len.next_multiple_of(4).min(b.len())..];
    }
    v
}

fn ifinfomsg(index: i32, flags: u32, change: u32) -> Vec<u8> {
    let mut b = vec![0u8; 16];
    b[4..8].copy_from_slice(&index.to_ne_bytes());
    b[8..12].copy_from_slice(&flags.to_ne_bytes());
    b[12..16].copy_from_slice(&change.to_ne_bytes());
    b
}

/// A route netlink socket of the network namespace it was made in.
pub struct Socket {
    fd: OwnedFd,
    seq: u32,
}

impl Socket {
    pub fn new() -> nix::Result<Socket> {
        let fd = socket(
            AddressFamily::Netlink,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::NetlinkRoute,
        )?;
        connect(
            std::os::fd::AsRawFd::as_raw_fd(&fd),
            &NetlinkAddr::new(0, 0),
        )?;
        Ok(Socket { fd, seq: 0 })
    }

    /// Sends one request; returns the payloads of the answers (a dump's
    /// messages), or the error the kernel acknowledged with.
    fn request(&mut self, typ: u16, flags: u16, body: &[u8]) -> nix::Result<Vec<Vec<u8>>> {
        self.seq += 1;
        let mut msg = Vec::with_capacity(16 + body.len());
        msg.extend_from_slice(&((16 + body.len()) as u32).to_ne_bytes());
        msg.extend_from_slice(&typ.to_ne_bytes());
        msg.extend_from_slice(&(flags | NLM_F_REQUEST).to_ne_bytes());
        msg.extend_from_slice(&self.seq.to_ne_bytes());
        msg.extend_from_slice(&0u32.to_ne_bytes());
        msg.extend_from_slice(body);
        nix::unistd::write(self.fd.as_fd(), &msg)?;
        let mut out = Vec::new();
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = nix::unistd::read(&self.fd, &mut buf)?;
            let mut b = &buf[..n];
            while b.len() >= 16 {
                let len = u32::from_ne_bytes([b[0], b[1], b[2], b[3]]) as usize;
                let t = u16::from_ne_bytes([b[4], b[5]]);
                if len < 16 || len > b.len() {
                    return Err(Errno::EBADMSG);
                }
                let payload = &b[16..len];
                match t {
                    NLMSG_DONE => return Ok(out),
                    NLMSG_ERROR => {
                        let code =
                            i32::from_ne_bytes([payload[0], payload[1], payload[2], payload[3]]);
                        return if code == 0 {
                            Ok(out)
                        } else {
                            Err(Errno::from_raw(-code))
                        };
                    }
                    _ => out.push(payload.to_vec()),
                }
                b = &b[len.next_multiple_of(4).min(b.len())..];
            }
            if flags & NLM_F_DUMP != NLM_F_DUMP && !out.is_empty() && flags & NLM_F_ACK == 0 {
                return Ok(out);
            }
        }
    }

    /// The index of link `name`.
    pub fn link_index(&mut self, name: &str) -> nix::Result<i32> {
        let mut body = ifinfomsg(0, 0, 0);
        attr(&mut body, IFLA_IFNAME, format!("{name}\0").as_bytes());
        let answers = self.request(RTM_GETLINK, 0, &body)?;
        let a = answers
            .first()
            .filter(|a| a.len() >= 8)
            .ok_or(Errno::ENODEV)?;
        Ok(i32::from_ne_bytes([a[4], a[5], a[6], a[7]]))
    }

    /// The name of link `index`.
    pub fn link_name(&mut self, index: i32) -> nix::Result<String> {
        let answers = self.request(RTM_GETLINK, 0, &ifinfomsg(index, 0, 0))?;
        let a = answers
            .first()
            .filter(|a| a.len() >= 16)
            .ok_or(Errno::ENODEV)?;
        attrs(&a[16..])
            .into_iter()
            .find(|(t, _)| *t == IFLA_IFNAME)
            .map(|(_, v)| {
                String::from_utf8_lossy(v)
                    .trim_end_matches('\0')
                    .to_string()
            })
            .ok_or(Errno::ENODEV)
    }

    /// The addresses of link `index`.
    pub fn addrs(&mut self, index: i32) -> nix::Result<Vec<Addr>> {
        let answers = self.request(RTM_GETADDR, NLM_F_DUMP, &[0u8; 8])?;
        let mut v = Vec::new();
        for a in answers.iter().filter(|a| a.len() >= 8) {
            let idx = i32::from_ne_bytes([a[4], a[5], a[6], a[7]]);
            if idx != index {
                continue;
            }
            let list = attrs(&a[8..]);
            let flags = list
                .iter()
                .find(|(t, v)| *t == IFA_FLAGS && v.len() == 4)
                .map_or(a[2] as u32, |(_, v)| {
                    u32::from_ne_bytes([v[0], v[1], v[2], v[3]])
                });
            v.push(Addr {
                family: a[0],
                prefixlen: a[1],
                flags,
                scope: a[3],
                attrs: list
                    .into_iter()
                    .filter(|(t, _)| matches!(*t, IFA_LOCAL | IFA_ADDRESS | IFA_BROADCAST))
                    .map(|(t, v)| (t, v.to_vec()))
                    .collect(),
            });
        }
        Ok(v)
    }

    /// Moves link `index` into the network namespace `netns`, named `name`
    /// there (a name ending in `%d` is a template the kernel fills in).
    pub fn move_link(&mut self, index: i32, netns: &impl AsFd, name: &str) -> nix::Result<()> {
        use std::os::fd::AsRawFd;
        let mut body = ifinfomsg(index, 0, 0);
        attr(
            &mut body,
            IFLA_NET_NS_FD,
            &(netns.as_fd().as_raw_fd() as u32).to_ne_bytes(),
        );
        attr(&mut body, IFLA_IFNAME, format!("{name}\0").as_bytes());
        self.request(RTM_NEWLINK, NLM_F_ACK, &body).map(drop)
    }

    /// Sets link `index` up.
    pub fn link_up(&mut self, index: i32) -> nix::Result<()> {
        self.request(RTM_NEWLINK, NLM_F_ACK, &ifinfomsg(index, IFF_UP, IFF_UP))
            .map(drop)
    }

    /// Adds `a` to link `index`.
    pub fn add_addr(&mut self, index: i32, a: &Addr) -> nix::Result<()> {
        let mut body = vec![a.family, a.prefixlen, (a.flags & 0xff) as u8, a.scope];
        body.extend_from_slice(&index.to_ne_bytes());
        for (t, v) in &a.attrs {
            attr(&mut body, *t, v);
        }
        attr(&mut body, IFA_FLAGS, &a.flags.to_ne_bytes());
        self.request(RTM_NEWADDR, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, &body)
            .map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_round_trip() {
        let mut b = Vec::new();
        attr(&mut b, IFLA_IFNAME, b"eth0\0");
        attr(&mut b, IFLA_NET_NS_FD, &7u32.to_ne_bytes());
        assert_eq!(b.len() % 4, 0);
        let a = attrs(&b);
        assert_eq!(a[0], (IFLA_IFNAME, &b"eth0\0"[..]));
        assert_eq!(a[1].0, IFLA_NET_NS_FD);
    }

    #[test]
    fn loopback_is_found() {
        let mut s = Socket::new().unwrap();
        let lo = s.link_index("lo").unwrap();
        assert_eq!(lo, 1);
        assert_eq!(s.link_name(lo).unwrap(), "lo");
        assert_eq!(s.link_index("no-such-link0"), Err(Errno::ENODEV));
        assert!(s
            .addrs(lo)
            .unwrap()
            .iter()
            .any(|a| a.family == libc::AF_INET as u8));
    }
}
