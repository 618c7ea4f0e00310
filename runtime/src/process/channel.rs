//! The one socketpair between berth and the container init, and its small
//! typed message set. SOCK_SEQPACKET keeps message boundaries, so each
//! message is one datagram: a tag byte and a UTF-8 payload.

use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
use nix::sys::socket::{ControlMessage, ControlMessageOwned, MsgFlags};
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
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
    /// Init (or exec child) to parent: the seccomp notify listener fd
    /// rides along (SCM_RIGHTS); hand it to the agent, then send Go.
    Seccomp,
    /// Init (or exec child) to parent: something was left out and is
    /// worth a warning (berth logs it and goes on).
    Warning(String),
    /// Init to parent: setting up failed (the init exits after it).
    Error(String),
}

/// One end of the pair; `fd` holds the last fd received with a message.
pub struct Channel(UnixStream, Option<OwnedFd>);

/// A connected pair (parent end, child end), both close-on-exec.
pub fn pair() -> nix::Result<(Channel, Channel)> {
    let (a, b): (OwnedFd, OwnedFd) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )?;
    Ok((
        Channel(UnixStream::from(a), None),
        Channel(UnixStream::from(b), None),
    ))
}

impl Channel {
    pub fn send(&mut self, m: &Msg) -> std::io::Result<()> {
        self.0.write_all(&Self::encode(m))
    }

    /// Sends `m` with `fd` attached.
    pub fn send_fd(&mut self, m: &Msg, fd: &impl AsRawFd) -> std::io::Result<()> {
        Ok(send_with_fd(&self.0, &Self::encode(m), fd)?)
    }

    /// The fd that came with the last message, if any.
    pub fn take_fd(&mut self) -> Option<OwnedFd> {
        self.1.take()
    }

    fn encode(m: &Msg) -> Vec<u8> {
        let mut buf = Vec::with_capacity(64);
        match m {
            Msg::Go => buf.push(b'G'),
            Msg::Ready => buf.push(b'R'),
            Msg::Hooks => buf.push(b'H'),
            Msg::Seccomp => buf.push(b'S'),
            Msg::Warning(s) | Msg::Error(s) => {
                buf.push(if matches!(m, Msg::Warning(_)) {
                    b'W'
                } else {
                    b'E'
                });
                buf.extend_from_slice(&s.as_bytes()[..s.len().min(4000)]);
            }
        }
        buf
    }

    /// Receives one message; `None` when the peer closed (or died).
    pub fn recv(&mut self) -> std::io::Result<Option<Msg>> {
        let mut buf = [0u8; 4096];
        let n = loop {
            match recv_with_fd(&self.0, &mut buf) {
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
                Ok((n, fd)) => {
                    if fd.is_some() {
                        self.1 = fd;
                    }
                    break n;
                }
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
            b'S' => Msg::Seccomp,
            b'W' => Msg::Warning(body),
            _ => Msg::Error(body),
        }))
    }
}

/// Sends `bytes` with one fd attached (SCM_RIGHTS) on a unix socket: the
/// socketpair's `Seccomp` message, the pty master to --console-socket, the
/// seccomp listener to its agent.
pub(crate) fn send_with_fd(
    sock: &impl AsRawFd,
    bytes: &[u8],
    fd: &impl AsRawFd,
) -> nix::Result<()> {
    let fds = [fd.as_raw_fd()];
    nix::sys::socket::sendmsg::<()>(
        sock.as_raw_fd(),
        &[std::io::IoSlice::new(bytes)],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )?;
    Ok(())
}

/// Receives one message into `buf`: its length and the fd that came with
/// it, if any (close-on-exec).
pub(crate) fn recv_with_fd(
    sock: &impl AsRawFd,
    buf: &mut [u8],
) -> nix::Result<(usize, Option<OwnedFd>)> {
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let mut iov = [std::io::IoSliceMut::new(buf)];
    let m = nix::sys::socket::recvmsg::<()>(
        sock.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )?;
    let mut fd = None;
    for c in m.cmsgs()? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            for f in fds {
                // SAFETY: the kernel just installed this fd for us; it has
                // no other owner.
                fd = Some(unsafe { OwnedFd::from_raw_fd(f) });
            }
        }
    }
    Ok((m.bytes, fd))
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
            Msg::Warning("left out: y".into()),
            Msg::Error("boom: x".into()),
        ] {
            a.send(&m).unwrap();
            assert_eq!(b.recv().unwrap(), Some(m));
            assert!(b.take_fd().is_none());
        }
        let f = std::fs::File::open("/dev/null").unwrap();
        a.send_fd(&Msg::Seccomp, &f).unwrap();
        assert_eq!(b.recv().unwrap(), Some(Msg::Seccomp));
        assert!(b.take_fd().is_some());
        drop(a);
        assert_eq!(b.recv().unwrap(), None);
    }
}
