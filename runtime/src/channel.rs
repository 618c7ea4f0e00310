//! The one socketpair between berth and the container init, and its small
//! typed message set. SOCK_SEQPACKET keeps message boundaries, so each
//! message is one datagram: a tag byte and a UTF-8 payload.

use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;

#[derive(Debug, PartialEq, Eq)]
pub enum Msg {
    /// Parent to init: id maps and cgroups are in place, go on.
    Go,
    /// Init to parent: set up and waiting for `start`.
    Ready,
    /// Init to parent: mounts are made, pivot_root is next; run the
    /// prestart and createRuntime hooks, then send Go.
    Hooks,
    /// Init to parent: setting up failed (the init exits after it).
    Error(String),
}

pub struct Channel(UnixStream);

/// A connected pair (parent end, child end), both close-on-exec.
pub fn pair() -> nix::Result<(Channel, Channel)> {
    let (a, b): (OwnedFd, OwnedFd) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )?;
    Ok((Channel(UnixStream::from(a)), Channel(UnixStream::from(b))))
}

impl Channel {
    pub fn send(&mut self, m: &Msg) -> std::io::Result<()> {
        let mut buf = Vec::with_capacity(64);
        match m {
            Msg::Go => buf.push(b'G'),
            Msg::Ready => buf.push(b'R'),
            Msg::Hooks => buf.push(b'H'),
            Msg::Error(s) => {
                buf.push(b'E');
                buf.extend_from_slice(&s.as_bytes()[..s.len().min(4000)]);
            }
        }
        self.0.write_all(&buf)
    }

    /// Receives one message; `None` when the peer closed (or died).
    pub fn recv(&mut self) -> std::io::Result<Option<Msg>> {
        let mut buf = [0u8; 4096];
        let n = loop {
            match self.0.read(&mut buf) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                r => break r?,
            }
        };
        if n == 0 {
            return Ok(None);
        }
        let body = String::from_utf8_lossy(&buf[1..n]).into_owned();
        Ok(Some(match buf[0] {
            b'G' => Msg::Go,
            b'R' => Msg::Ready,
            b'H' => Msg::Hooks,
            _ => Msg::Error(body),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let (mut a, mut b) = pair().unwrap();
        for m in [
            Msg::Go,
            Msg::Ready,
            Msg::Hooks,
            Msg::Error("boom: x".into()),
        ] {
            a.send(&m).unwrap();
            assert_eq!(b.recv().unwrap(), Some(m));
        }
        drop(a);
        assert_eq!(b.recv().unwrap(), None);
    }
}
