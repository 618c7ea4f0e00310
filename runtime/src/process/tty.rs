//! Terminals of container processes. [`Console`] connects a terminal
//! process to whoever takes its pty master: the caller's --console-socket,
//! or berth itself in the foreground. Then [`relay`], the foreground relay
//! of `run` and `exec` without --console-socket: berth holds the pty master
//! and copies between it and its own stdio, with the caller's terminal in
//! raw mode (restored on exit), the window size copied at start and on
//! SIGWINCH, and other signals forwarded to the container. No thread: one
//! poll(2) loop.

use crate::error::{Error, Result, SysCtx};
use crate::process::{pidfd_open, pidfd_signal};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::termios;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

/// Where the pty master of a terminal process goes.
#[derive(Default)]
pub(crate) struct Console {
    /// The child's end: the --console-socket connection, or one end of a
    /// socketpair when berth relays the terminal itself.
    pub child: Option<UnixStream>,
    /// berth's end of that socketpair.
    relay: Option<UnixStream>,
}

impl Console {
    /// With `socket`, a connection to it; without one, for a `terminal`
    /// process, a socketpair whose other end berth keeps to relay the pty;
    /// nothing otherwise. As runc: a detached terminal process needs a
    /// socket, and a socket is only for one.
    pub(crate) fn open(socket: Option<&Path>, terminal: bool, detached: bool) -> Result<Console> {
        if terminal && socket.is_none() && detached {
            return Err(Error::Other(
                "cannot allocate tty if berth will detach without setting console socket".into(),
            ));
        }
        if socket.is_some() && !(terminal && detached) {
            return Err(Error::Other(
                "cannot use console socket if berth will not detach or allocate tty".into(),
            ));
        }
        match socket {
            Some(p) => Ok(Console {
                child: Some(
                    UnixStream::connect(p)
                        .map_err(|e| Error::io("cannot connect to --console-socket", p, e))?,
                ),
                relay: None,
            }),
            None if terminal => {
                let (ours, theirs) =
                    UnixStream::pair().map_err(|e| Error::io("socketpair", "console", e))?;
                Ok(Console {
                    child: Some(theirs),
                    relay: Some(ours),
                })
            }
            None => Ok(Console::default()),
        }
    }

    /// The pty master the child sent, when berth relays the terminal.
    pub(crate) fn master(&self) -> Result<Option<OwnedFd>> {
        let Some(sock) = &self.relay else {
            return Ok(None);
        };
        let mut buf = [0u8; 256];
        crate::process::channel::recv_with_fd(sock, &mut buf)
            .ctx(|| "receive the pty master".into())?
            .1
            .map(Some)
            .ok_or_else(|| Error::Init("no pty master received".into()))
    }
}

fn copy_winsize(from: BorrowedFd, to: BorrowedFd) {
    // SAFETY: winsize is plain old data; all-zero is a valid value.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ/TIOCSWINSZ read/write a winsize through a valid pointer.
    unsafe {
        if libc::ioctl(from.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) == 0 {
            libc::ioctl(to.as_raw_fd(), libc::TIOCSWINSZ, &ws);
        }
    }
}

/// Writes all of `buf` to `fd` (blocking).
fn write_all(fd: BorrowedFd, mut buf: &[u8]) {
    while !buf.is_empty() {
        match nix::unistd::write(fd, buf) {
            Ok(0) => return,
            Ok(n) => buf = &buf[n..],
            Err(nix::errno::Errno::EINTR) | Err(nix::errno::Errno::EAGAIN) => continue,
            Err(_) => return,
        }
    }
}

/// Relays until the container `pid` exits; returns its exit status.
pub(crate) fn relay(pid: i32, master: &OwnedFd, set: &SigSet) -> i32 {
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    let (inp, out) = (stdin.as_fd(), stdout.as_fd());
    let saved = termios::tcgetattr(inp).ok();
    if let Some(t) = &saved {
        let mut raw = t.clone();
        termios::cfmakeraw(&mut raw);
        let _ = termios::tcsetattr(inp, termios::SetArg::TCSANOW, &raw);
    }
    copy_winsize(inp, master.as_fd());
    let sfd = SignalFd::with_flags(set, SfdFlags::SFD_CLOEXEC).ok();
    let pfd = pidfd_open(pid);
    let mut buf = [0u8; 16384];
    let mut stdin_open = true;
    loop {
        let mut fds = vec![PollFd::new(master.as_fd(), PollFlags::POLLIN)];
        if let Some(p) = &pfd {
            fds.push(PollFd::new(p.as_fd(), PollFlags::POLLIN));
        }
        if let Some(s) = &sfd {
            fds.push(PollFd::new(s.as_fd(), PollFlags::POLLIN));
        }
        if stdin_open {
            fds.push(PollFd::new(inp, PollFlags::POLLIN));
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => break,
            Ok(_) => {}
        }
        let ready = |i: usize| {
            fds.get(i)
                .and_then(|f| f.revents())
                .is_some_and(|r| !r.is_empty())
        };
        let (m_ready, p_ready) = (ready(0), pfd.is_some() && ready(1));
        let s_idx = 1 + usize::from(pfd.is_some());
        let s_ready = sfd.is_some() && ready(s_idx);
        let i_ready = stdin_open && ready(s_idx + usize::from(sfd.is_some()));
        if m_ready {
            match nix::unistd::read(master, &mut buf) {
                Ok(n) if n > 0 => write_all(out, &buf[..n]),
                // EIO: every slave fd is closed (the container exited).
                _ => break,
            }
        }
        if i_ready {
            match nix::unistd::read(inp, &mut buf) {
                Ok(n) if n > 0 => write_all(master.as_fd(), &buf[..n]),
                _ => stdin_open = false,
            }
        }
        if s_ready {
            if let Some(Ok(Some(si))) = sfd.as_ref().map(|s| s.read_signal()) {
                match Signal::try_from(si.ssi_signo as i32) {
                    Ok(Signal::SIGWINCH) => copy_winsize(inp, master.as_fd()),
                    Ok(sig) => {
                        if let Some(p) = &pfd {
                            let _ = pidfd_signal(p, sig);
                        }
                    }
                    Err(_) => {}
                }
            }
        }
        if p_ready && !m_ready {
            break;
        }
    }
    if let Some(t) = &saved {
        let _ = termios::tcsetattr(inp, termios::SetArg::TCSANOW, t);
    }
    crate::process::reap(pid)
}
