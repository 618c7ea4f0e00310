//! The container init: the one process `create` clones. It finishes the
//! isolation from inside (namespaces it joins, rootfs, hostname, rlimits,
//! user, capabilities), tells berth it is ready, then waits on the start
//! socket and execs the user program when `start` connects.
//!
//! Its parent side is `spawn.rs`; the steps it shares with `exec` (user,
//! capabilities, seccomp, the execve) are in `child.rs`. It runs in a
//! forked copy of the single-threaded berth process, so it may allocate; it
//! never returns into berth's code.

use crate::cgroups::Cgroup;
use crate::error::{Error, Result, SysCtx};
use crate::launch::child::{self, Prog};
use crate::process::channel::{Channel, Msg};
use crate::process::exit_child;
use crate::process::namespaces::Plan;
use crate::rootfs;
use crate::spec::Bundle;
use nix::sys::stat::Mode;
use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};

pub(crate) struct Args<'a> {
    pub bundle: &'a Bundle,
    pub ns: &'a Plan,
    pub cgroup: &'a Cgroup,
    pub chan: Channel,
    /// The start socket; `None` for `run`, whose init waits for `Go` on
    /// the socketpair instead.
    pub listener: Option<UnixListener>,
    pub console: Option<UnixStream>,
    pub no_pivot: bool,
    /// Keep berth's session keyring instead of joining a new one.
    pub no_new_keyring: bool,
    /// fds 3..3+N stay open in the container (`--preserve-fds`).
    pub preserve_fds: u32,
    /// The state document hooks get (the init fills in its pid); only
    /// built when the config has hooks.
    pub state: Option<serde_json::Value>,
    /// berth's lock on the state directory, closed first thing.
    pub lock_fd: std::os::fd::RawFd,
    /// Idmapped mounts the parent made (see `idmap.rs`).
    pub idmapped: crate::rootfs::idmap::Trees,
    /// Bind sources the parent opened for a new user namespace.
    pub bind_sources: Vec<(usize, std::os::fd::OwnedFd)>,
}

/// Entry point in the child; never returns.
pub(crate) fn run(mut a: Args) -> ! {
    // SAFETY: closes this process's copy of berth's lock fd, which nothing
    // in the init uses; the parent keeps its own.
    unsafe { libc::close(a.lock_fd) };
    let prog = match setup(&mut a).and_then(|mut p| {
        p.send_warnings(&mut a.chan);
        child::send_notify_fd(&mut a.chan, &mut p)?;
        Ok(p)
    }) {
        Ok(p) => p,
        Err(e) => {
            let _ = a.chan.send(&Msg::Error(e.to_string()));
            exit_child(1)
        }
    };
    let _ = a.chan.send(&Msg::Ready);
    let hooks = a
        .bundle
        .spec
        .hooks()
        .as_ref()
        .and_then(|h| h.start_container().as_ref());
    match &a.listener {
        Some(l) => {
            drop(a.chan);
            wait_start_and_exec(l, &prog, hooks, &a.state)
        }
        None => wait_go_and_exec(a.chan, &prog, hooks, &a.state),
    }
}

/// `run`: waits for `Go` on the socketpair (which is close-on-exec, so
/// berth reads EOF once the exec worked), loads a pending seccomp filter,
/// runs the startContainer hooks and execs; a failure goes back as `Error`.
fn wait_go_and_exec(
    mut chan: Channel,
    prog: &Prog,
    hooks: Option<&Vec<oci_spec::runtime::Hook>>,
    state: &Option<serde_json::Value>,
) -> ! {
    if !matches!(chan.recv(), Ok(Some(Msg::Go))) {
        // berth went away.
        exit_child(1)
    }
    // The startContainer hooks run under the container's seccomp filter.
    let err = match child::load_seccomp(prog).and_then(|()| {
        crate::hooks::run_all("startContainer", hooks, || hook_state(state, "created"))
    }) {
        Err(e) => e,
        Ok(()) => child::execve(prog),
    };
    let _ = chan.send(&Msg::Error(err.to_string()));
    exit_child(127)
}

fn setup(a: &mut Args) -> Result<Prog> {
    let spec = &a.bundle.spec;
    let process = spec.process().as_ref().expect("validated");
    nix::sys::stat::umask(Mode::empty());
    // Signals blocked by `run` must not stay blocked in the container.
    crate::process::unblock_all();
    match a.chan.recv() {
        Ok(Some(Msg::Go)) => {}
        // berth went away: nothing to report to.
        _ => exit_child(1),
    }
    if a.ns.new_user {
        // Become the namespace's root if it is mapped, so created files are
        // owned by it; the namespace's capabilities are ours either way.
        let _ = nix::unistd::setresgid(0.into(), 0.into(), 0.into());
        let _ = nix::unistd::setresuid(0.into(), 0.into(), 0.into());
    }
    for (flag, path) in &a.ns.join {
        let f = std::fs::File::open(path).map_err(|e| Error::io("open namespace", path, e))?;
        nix::sched::setns(&f, *flag).ctx(|| format!("setns {}", path.display()))?;
    }
    // Where systemd put the init (the cgroup mount's source).
    let placed = match a.cgroup.unit {
        Some(_) => Some(a.cgroup.as_placed()?),
        None => None,
    };
    let cgroup = placed.as_ref().unwrap_or(a.cgroup);
    if a.ns.new_cgroup {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWCGROUP)
            .ctx(|| "unshare cgroup namespace".into())?;
    }
    nix::unistd::setsid().ctx(|| "setsid".into())?;
    if !a.no_new_keyring {
        // A fresh anonymous session keyring, so the container cannot reach
        // the host's keys (runc does the same unless --no-new-keyring).
        // SAFETY: keyctl with integer arguments and a NULL name.
        let r = unsafe {
            libc::syscall(
                libc::SYS_keyctl,
                1, /* KEYCTL_JOIN_SESSION_KEYRING */
                0usize,
            )
        };
        if r < 0 && nix::errno::Errno::last() != nix::errno::Errno::ENOSYS {
            return Err(Error::sys(
                "join a new session keyring",
                nix::errno::Errno::last(),
            ));
        }
    }

    if a.ns.clone_flags & libc::CLONE_NEWNET as u64 != 0 {
        loopback_up()?;
    }

    // Create-phase hooks, once the mounts are made and before pivot_root:
    // prestart and createRuntime by berth (runtime namespace), then
    // createContainer here (container namespaces).
    let hooks = spec.hooks().as_ref();
    let has = |v: Option<&Vec<oci_spec::runtime::Hook>>| v.is_some_and(|v| !v.is_empty());
    let parent_hooks =
        hooks.is_some_and(|h| has(h.prestart().as_ref()) || has(h.create_runtime().as_ref()));
    let chan = &mut a.chan;
    let state = &a.state;
    let rootfs_dir = &a.bundle.rootfs;
    let mut before_pivot = || -> Result<()> {
        if parent_hooks {
            chan.send(&Msg::Hooks)
                .map_err(|e| Error::Init(format!("hooks: {e}")))?;
            match chan.recv() {
                Ok(Some(Msg::Go)) => {}
                // berth reports the hook failure; just end.
                _ => exit_child(1),
            }
        }
        let create_container = hooks.and_then(|h| h.create_container().as_ref());
        if has(create_container) {
            // In the rootfs, as runc runs them: a hook's relative paths are
            // the container's.
            nix::unistd::chdir(rootfs_dir.as_path()).ctx(|| "chdir rootfs".into())?;
        }
        crate::hooks::run_all("createContainer", create_container, || {
            hook_state(state, "creating")
        })
    };
    // A mount namespace of its own, new or joined by path: the rootfs is
    // set up in it (as runc and crun do in a joined one; the rootfs path
    // is resolved there).
    if !a.ns.shared_mount {
        let ctx = rootfs::RootfsCtx {
            spec,
            bundle: &a.bundle.dir,
            rootfs: &a.bundle.rootfs,
            cgroup,
            // Berth itself in one (rootless images, rootless podman)
            // counts too: mknod and v1 cgroup mounts are out of reach.
            in_userns: a.ns.in_userns() || crate::process::rootless::in_user_namespace(),
            new_cgroupns: a.ns.new_cgroup,
            idmapped: &a.idmapped,
            bind_sources: &a.bind_sources,
        };
        rootfs::prepare_rootfs(&ctx, a.no_pivot, &mut before_pivot)?;
        // No fd of the host's tree stays open in the container.
        a.bind_sources.clear();
        reopen_dev_null()?;
    } else {
        before_pivot()?;
        // As runc: no pivot_root without a mount namespace of its own.
        let r = &a.bundle.rootfs;
        nix::unistd::chroot(r).ctx(|| format!("chroot {}", r.display()))?;
        nix::unistd::chdir("/").ctx(|| "chdir /".into())?;
    }
    if process.terminal().unwrap_or(false) {
        child::setup_console(a.console.take(), true, process.console_size().as_ref())?;
    }
    if let Some(h) = spec.hostname().as_deref().filter(|h| !h.is_empty()) {
        nix::unistd::sethostname(h).ctx(|| format!("sethostname {h:?}"))?;
    }
    if let Some(d) = spec.domainname().as_deref().filter(|h| !h.is_empty()) {
        // SAFETY: the pointer and length describe `d`, which outlives the call.
        let r = unsafe { libc::setdomainname(d.as_ptr().cast(), d.len()) };
        nix::errno::Errno::result(r).ctx(|| format!("setdomainname {d:?}"))?;
    }
    crate::security::apply_sysctl(spec.linux().as_ref())?;
    // Masks and read-only paths last: sysctl writes go through /proc/sys.
    if !a.ns.shared_mount {
        rootfs::mask_and_readonly(spec)?;
        if spec
            .root()
            .as_ref()
            .is_some_and(|r| r.readonly().unwrap_or(false))
        {
            remount_root_ro()?;
        }
        rootfs::apply_root_propagation(spec)?;
    }
    child::finish_process(process, spec.linux().as_ref(), a.preserve_fds)
}

/// A new network namespace gets its loopback up, as runc does it (the
/// "loopback" network runc gives every new one): 127.0.0.1 works inside.
fn loopback_up() -> Result<()> {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    // SAFETY: socket(2) with constant arguments; the fd is owned below.
    let raw = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    let raw = nix::errno::Errno::result(raw).ctx(|| "socket for the loopback".into())?;
    // SAFETY: raw is a new fd that nothing else owns.
    let sock = unsafe { OwnedFd::from_raw_fd(raw) };
    // SAFETY: ifreq is plain old data; all zeroes is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, c) in req.ifr_name.iter_mut().zip(b"lo") {
        *d = *c as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS/SIOCSIFFLAGS read and write the ifreq passed by
    // pointer, which lives across both calls; the union's flags member is
    // the one these requests use.
    let r = unsafe {
        let r = libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req);
        if r == 0 {
            req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
            libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req)
        } else {
            r
        }
    };
    nix::errno::Errno::result(r).ctx(|| "bring the loopback up".into())?;
    Ok(())
}

/// Stdio that is the host's /dev/null becomes the container's own
/// /dev/null, as runc does it (reOpenDevNull): the process then holds no
/// file of a mount outside its namespace, which CRIU could not dump.
fn reopen_dev_null() -> Result<()> {
    use nix::sys::stat::{fstat, stat, SFlag};
    let Ok(null) = stat("/dev/null") else {
        return Ok(());
    };
    if SFlag::from_bits_truncate(null.st_mode) & SFlag::S_IFMT != SFlag::S_IFCHR {
        return Ok(());
    }
    for fd in 0..3 {
        // SAFETY: 0..3 are this process's stdio for the duration of the call.
        let b = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
        let Ok(st) = fstat(b) else { continue };
        if st.st_rdev == null.st_rdev
            && SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFCHR
            && (st.st_dev, st.st_ino) != (null.st_dev, null.st_ino)
        {
            let f = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open("/dev/null")
                .map_err(|e| Error::io("cannot open", "/dev/null", e))?;
            // SAFETY: dup2 onto a stdio fd from an fd we own; integer result.
            let r = unsafe { libc::dup2(std::os::fd::AsRawFd::as_raw_fd(&f), fd) };
            nix::errno::Errno::result(r).ctx(|| format!("reopen /dev/null as fd {fd}"))?;
        }
    }
    Ok(())
}

fn remount_root_ro() -> Result<()> {
    let flags = nix::mount::MsFlags::MS_BIND
        | nix::mount::MsFlags::MS_REMOUNT
        | nix::mount::MsFlags::MS_RDONLY;
    let st = nix::sys::statvfs::statvfs("/").ctx(|| "statvfs /".into())?;
    use nix::mount::MsFlags as M;
    use nix::sys::statvfs::FsFlags as F;
    let mut keep = M::empty();
    for (f, m) in [
        (F::ST_NOSUID, M::MS_NOSUID),
        (F::ST_NODEV, M::MS_NODEV),
        (F::ST_NOEXEC, M::MS_NOEXEC),
    ] {
        if st.flags().contains(f) {
            keep |= m;
        }
    }
    nix::mount::mount(None::<&str>, "/", None::<&str>, flags | keep, None::<&str>)
        .ctx(|| "remount / read-only".into())
}

/// The state document as the init sees it: its own pid, `status`.
fn hook_state(base: &Option<serde_json::Value>, status: &str) -> String {
    let mut s = base.clone().unwrap_or_default();
    s["pid"] = std::process::id().into();
    s["status"] = status.into();
    s.to_string()
}

/// Blocks until `start` connects and says go, loads a pending seccomp
/// filter, runs the startContainer hooks, then execs the program.
fn wait_start_and_exec(
    listener: &UnixListener,
    prog: &Prog,
    hooks: Option<&Vec<oci_spec::runtime::Hook>>,
    state: &Option<serde_json::Value>,
) -> ! {
    loop {
        let Ok((mut conn, _)) = listener.accept() else {
            continue;
        };
        let mut b = [0u8; 1];
        if !matches!(conn.read(&mut b), Ok(1) if b[0] == b'S') {
            continue;
        }
        // The startContainer hooks run under the container's seccomp filter.
        if let Err(e) = child::load_seccomp(prog).and_then(|()| {
            crate::hooks::run_all("startContainer", hooks, || hook_state(state, "created"))
        }) {
            let _ = write!(conn, "{e}");
            exit_child(1)
        }
        // The connection is close-on-exec: `start` reads EOF on success.
        let err = child::execve(prog);
        let _ = write!(conn, "{err}");
        exit_child(127)
    }
}
