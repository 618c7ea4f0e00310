//! Process primitives, a leaf of the crate: clone3(2) (with its clone(2)
//! fallback), pidfds, kill-and-reap, waiting with signal forwarding,
//! `/proc/PID/stat` start times, id maps of a new user namespace, pid
//! files. Nothing here knows about containers.

use crate::error::{Error, Result};
use nix::sys::signal::{SigSet, Signal};
use nix::unistd::Pid;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

/// clone3(2) flag (libc's constant is deprecated for overflowing c_int).
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;
/// CLONE_NEWTIME (time_namespaces(7)), which libc does not name.
pub const CLONE_NEWTIME: u64 = 0x80;

#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// A child made by [`clone3`]: its pid in the parent (0 in the child), and
/// whether it was born in the cgroup given (else the caller moves it).
#[derive(Clone, Copy)]
pub struct Cloned {
    pub pid: i32,
    pub in_cgroup: bool,
}

/// clone3(2) without a new stack: returns twice, like fork(2). Where clone3
/// is missing (kernels before 5.3, or a seccomp filter answering ENOSYS to
/// it, as Docker's default profile does so that callers fall back), clone(2)
/// does the same without `CLONE_INTO_CGROUP` (callers make time namespaces
/// with unshare(2) first, as clone(2) cannot).
pub fn clone3(flags: u64, cgroup_fd: Option<&OwnedFd>) -> nix::Result<Cloned> {
    let mut args = CloneArgs {
        flags,
        exit_signal: libc::SIGCHLD as u64,
        ..Default::default()
    };
    if let Some(fd) = cgroup_fd {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = fd.as_raw_fd() as u64;
    }
    // SAFETY: berth is single-threaded here (no thread is started before the
    // clone), so the child is a consistent copy; a zero stack makes clone3
    // behave like fork. The struct outlives the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match nix::errno::Errno::result(r) {
        Ok(pid) => Ok(Cloned {
            pid: pid as i32,
            in_cgroup: cgroup_fd.is_some(),
        }),
        Err(nix::errno::Errno::ENOSYS) => {
            // SAFETY: as above; clone(2) with a zero stack pointer and no
            // CLONE_VM, CLONE_SETTLS or tid pointers behaves like fork.
            let r =
                unsafe { libc::syscall(libc::SYS_clone, flags | libc::SIGCHLD as u64, 0, 0, 0, 0) };
            nix::errno::Errno::result(r).map(|pid| Cloned {
                pid: pid as i32,
                in_cgroup: false,
            })
        }
        Err(e) => Err(e),
    }
}

/// Ends a forked child at once, without running the parent's atexit
/// handlers or destructors (it never returns into berth's code).
pub fn exit_child(code: i32) -> ! {
    // SAFETY: _exit(2) ends the process; nothing is left to run.
    unsafe { libc::_exit(code) }
}

/// The signals a foreground `run` or `exec` forwards to the container.
pub fn forwarded_signals() -> SigSet {
    let mut set = SigSet::empty();
    for s in [
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGQUIT,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
        Signal::SIGWINCH,
    ] {
        set.add(s);
    }
    set
}

/// Blocks `set` in this process (the signals a foreground berth forwards).
pub fn block(set: &SigSet) {
    let _ = nix::sys::signal::sigprocmask(nix::sys::signal::SigmaskHow::SIG_BLOCK, Some(set), None);
}

/// Unblocks every signal (a child must not keep berth's mask).
pub fn unblock_all() {
    let _ = nix::sys::signal::sigprocmask(
        nix::sys::signal::SigmaskHow::SIG_SETMASK,
        Some(&SigSet::empty()),
        None,
    );
}

/// Reaps the child `pid`: its exit status, 128+N when killed by signal N.
pub fn reap(pid: i32) -> i32 {
    use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
    loop {
        match waitpid(Pid::from_raw(pid), Some(WaitPidFlag::__WALL)) {
            Ok(WaitStatus::Exited(_, c)) => return c,
            Ok(WaitStatus::Signaled(_, s, _)) => return 128 + s as i32,
            Err(nix::errno::Errno::EINTR) | Ok(_) => continue,
            Err(_) => return 255,
        }
    }
}

/// Waits for the child `pid`, forwarding the signals in `set` to it.
pub fn wait_forwarding(pid: i32, set: &SigSet) -> i32 {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use nix::sys::signalfd::{SfdFlags, SignalFd};
    let sfd = SignalFd::with_flags(set, SfdFlags::SFD_CLOEXEC).ok();
    let pfd = pidfd_open(pid);
    if let (Some(sfd), Some(pfd)) = (&sfd, &pfd) {
        loop {
            let mut fds = [
                PollFd::new(sfd.as_fd(), PollFlags::POLLIN),
                PollFd::new(pfd.as_fd(), PollFlags::POLLIN),
            ];
            if let Err(nix::errno::Errno::EINTR) = poll(&mut fds, PollTimeout::NONE) {
                continue;
            }
            if fds[1].revents().is_some_and(|r| !r.is_empty()) {
                break;
            }
            if let Ok(Some(si)) = sfd.read_signal() {
                if let Ok(sig) = Signal::try_from(si.ssi_signo as i32) {
                    let _ = pidfd_signal(pfd, sig);
                }
            }
        }
    }
    reap(pid)
}

/// A pidfd of `pid` (pidfd_open(2)), if it exists.
pub fn pidfd_open(pid: i32) -> Option<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    // SAFETY: a non-negative return is a fresh fd we own.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Sends `sig` to the process of a pidfd.
pub fn pidfd_signal(fd: &OwnedFd, sig: Signal) -> nix::Result<()> {
    pidfd_send(fd, sig as i32)
}

/// pidfd_send_signal(2) of signal number `sig`; 0 only checks that the
/// process is there.
pub fn pidfd_send(fd: &OwnedFd, sig: i32) -> nix::Result<()> {
    // SAFETY: pidfd_send_signal with a valid pidfd, a signal number, no siginfo.
    let r = unsafe { libc::syscall(libc::SYS_pidfd_send_signal, fd.as_raw_fd(), sig, 0usize, 0) };
    nix::errno::Errno::result(r).map(drop)
}

/// SIGKILLs the process of a pidfd and waits up to `ms` for it to die.
pub fn kill_and_wait(fd: &OwnedFd, ms: u16) {
    let _ = pidfd_signal(fd, Signal::SIGKILL);
    let mut p = [nix::poll::PollFd::new(
        fd.as_fd(),
        nix::poll::PollFlags::POLLIN,
    )];
    let _ = nix::poll::poll(&mut p, nix::poll::PollTimeout::from(ms));
}

/// SIGKILLs `pid` and, when it is our child, reaps it.
pub fn kill_and_reap(pid: i32, is_child: bool) {
    let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
    if is_child {
        let _ = nix::sys::wait::waitpid(
            Pid::from_raw(pid),
            Some(nix::sys::wait::WaitPidFlag::__WALL),
        );
    }
}

/// Reads (state char, start time) of a process from /proc/PID/stat.
pub fn proc_stat(pid: i32) -> Option<(u8, u64)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: split after the last ')'.
    let rest = &s[s.rfind(')')? + 2..];
    let mut f = rest.split(' ');
    let state = f.next()?.bytes().next()?;
    // rest starts at field 3 (state); starttime is field 22.
    let start = f.nth(18)?.parse().ok()?;
    Some((state, start))
}

/// Whether `pid` is alive and is the process that started at `start`.
pub fn alive(pid: i32, start: u64) -> bool {
    matches!(proc_stat(pid), Some((st, t)) if t == start && st != b'Z' && st != b'X')
}

/// Writes a uid_map or gid_map of `pid` (user_namespaces(7)); `field`
/// names the config field in the error.
pub fn write_id_map(
    pid: i32,
    file: &str,
    field: &str,
    maps: &[oci_spec::runtime::LinuxIdMapping],
) -> Result<()> {
    let s: String = maps
        .iter()
        .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
        .collect();
    let p = format!("/proc/{pid}/{file}");
    std::fs::write(&p, s).map_err(|e| Error::invalid(field, format!("writing {p}: {e}")))
}

/// The pid file, written atomically; relative paths are taken from the cwd.
pub fn write_pid_file(path: &Path, pid: i32) -> Result<()> {
    let path = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(|e| Error::io("cwd", ".", e))?
            .join(path)
    };
    crate::util::write_atomic(&path, pid.to_string().as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_stat() {
        let (st, start) = proc_stat(std::process::id() as i32).unwrap();
        assert!(st == b'R' || st == b'S');
        assert!(alive(std::process::id() as i32, start));
        assert!(!alive(std::process::id() as i32, start + 1));
    }
}
