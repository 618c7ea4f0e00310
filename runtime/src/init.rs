//! The container init: the one process `create` clones. It finishes the
//! isolation from inside (namespaces it joins, rootfs, hostname, rlimits,
//! user, capabilities), tells berth it is ready, then waits on the start
//! socket and execs the user program when `start` connects.
//!
//! It runs in a forked copy of the single-threaded berth process, so it may
//! allocate; it never returns into berth's code.

use crate::cgroups::Cgroup;
use crate::channel::{Channel, Msg};
use crate::error::{Error, Result, SysCtx};
use crate::mounts;
use crate::namespaces::Plan;
use crate::spec::Bundle;
use nix::sys::stat::Mode;
use oci_spec::runtime::{Capability, PosixRlimitType};
use std::ffi::CString;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

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
}

/// Entry point in the child; never returns.
pub(crate) fn run(mut a: Args) -> ! {
    // SAFETY: closes this process's copy of berth's lock fd, which nothing
    // in the init uses; the parent keeps its own.
    unsafe { libc::close(a.lock_fd) };
    let prog = match setup(&mut a).and_then(|mut p| {
        send_notify_fd(&mut a.chan, &mut p)?;
        Ok(p)
    }) {
        Ok(p) => p,
        Err(e) => {
            let _ = a.chan.send(&Msg::Error(e.to_string()));
            // SAFETY: _exit ends the forked child without running the
            // parent's atexit handlers or destructors.
            unsafe { libc::_exit(1) }
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
/// berth reads EOF once the exec worked), runs the startContainer hooks
/// and execs; a failure goes back as `Error`.
fn wait_go_and_exec(
    mut chan: Channel,
    prog: &Prog,
    hooks: Option<&Vec<oci_spec::runtime::Hook>>,
    state: &Option<serde_json::Value>,
) -> ! {
    if !matches!(chan.recv(), Ok(Some(Msg::Go))) {
        // SAFETY: berth went away; end without running its handlers.
        unsafe { libc::_exit(1) }
    }
    let err = match crate::hooks::run_all("startContainer", hooks, || hook_state(state, "created"))
    {
        Err(e) => e,
        Ok(()) => exec(prog),
    };
    let _ = chan.send(&Msg::Error(err.to_string()));
    // SAFETY: as above.
    unsafe { libc::_exit(127) }
}

/// What to exec once started.
pub(crate) struct Prog {
    pub(crate) path: CString,
    argv: Vec<CString>,
    envp: Vec<CString>,
    /// The seccomp filter still to load right before execve.
    seccomp: Option<crate::seccomp::Filter>,
    /// The seccomp notify listener, for berth to pass to the agent.
    notify_fd: Option<std::os::fd::OwnedFd>,
}

/// Hands the seccomp listener fd (if any) to berth over the socketpair and
/// waits until berth has passed it to the agent.
pub(crate) fn send_notify_fd(chan: &mut Channel, prog: &mut Prog) -> Result<()> {
    let Some(fd) = prog.notify_fd.take() else {
        return Ok(());
    };
    chan.send_fd(&Msg::Seccomp, &fd)
        .map_err(|e| Error::Init(format!("send seccomp fd: {e}")))?;
    drop(fd);
    match chan.recv() {
        Ok(Some(Msg::Go)) => Ok(()),
        // SAFETY: berth reports the failure; just end.
        _ => unsafe { libc::_exit(1) },
    }
}

fn cstr(s: &str) -> Result<CString> {
    CString::new(s).map_err(|_| Error::invalid("process", format!("{s:?} contains a NUL byte")))
}

fn setup(a: &mut Args) -> Result<Prog> {
    let spec = &a.bundle.spec;
    let process = spec.process().as_ref().expect("validated");
    nix::sys::stat::umask(Mode::empty());
    // Signals blocked by `run` must not stay blocked in the container.
    let _ = nix::sys::signal::sigprocmask(
        nix::sys::signal::SigmaskHow::SIG_SETMASK,
        Some(&nix::sys::signal::SigSet::empty()),
        None,
    );
    match a.chan.recv() {
        Ok(Some(Msg::Go)) => {}
        // berth went away: nothing to report to.
        // SAFETY: see run().
        _ => unsafe { libc::_exit(1) },
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

    // Create-phase hooks, once the mounts are made and before pivot_root:
    // prestart and createRuntime by berth (runtime namespace), then
    // createContainer here (container namespaces).
    let hooks = spec.hooks().as_ref();
    let has = |v: Option<&Vec<oci_spec::runtime::Hook>>| v.is_some_and(|v| !v.is_empty());
    let parent_hooks =
        hooks.is_some_and(|h| has(h.prestart().as_ref()) || has(h.create_runtime().as_ref()));
    let chan = &mut a.chan;
    let state = &a.state;
    let mut before_pivot = || -> Result<()> {
        if parent_hooks {
            chan.send(&Msg::Hooks)
                .map_err(|e| Error::Init(format!("hooks: {e}")))?;
            match chan.recv() {
                Ok(Some(Msg::Go)) => {}
                // SAFETY: berth reports the hook failure; just end.
                _ => unsafe { libc::_exit(1) },
            }
        }
        crate::hooks::run_all(
            "createContainer",
            hooks.and_then(|h| h.create_container().as_ref()),
            || hook_state(state, "creating"),
        )
    };
    if a.ns.new_mount {
        let ctx = mounts::RootfsCtx {
            spec,
            bundle: &a.bundle.dir,
            rootfs: &a.bundle.rootfs,
            cgroup: a.cgroup,
            in_userns: a.ns.new_user
                || a.ns
                    .join
                    .iter()
                    .any(|(f, _)| *f == nix::sched::CloneFlags::CLONE_NEWUSER),
            new_cgroupns: a.ns.new_cgroup,
        };
        mounts::prepare_rootfs(&ctx, a.no_pivot, &mut before_pivot)?;
    } else {
        before_pivot()?;
    }
    if process.terminal().unwrap_or(false) {
        setup_console(a.console.take(), true)?;
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
    if a.ns.new_mount {
        mounts::mask_and_readonly(spec)?;
        if spec
            .root()
            .as_ref()
            .is_some_and(|r| r.readonly().unwrap_or(false))
        {
            remount_root_ro()?;
        }
    }
    finish_process(process, spec.linux().as_ref(), a.preserve_fds)
}

/// The last steps for the container's program, shared by `create` and
/// `exec`: rlimits, the program looked up (a missing one fails the
/// command), personality/ioPriority/scheduler, LSM exec labels, seccomp
/// (see `seccomp.rs` for when it is loaded), user and capabilities, umask,
/// cwd (checked to be inside the root), no_new_privs, and every fd above
/// stdio and the preserved ones made close-on-exec.
pub(crate) fn finish_process(
    process: &oci_spec::runtime::Process,
    linux: Option<&oci_spec::runtime::Linux>,
    preserve_fds: u32,
) -> Result<Prog> {
    let mut filter = match linux.and_then(|l| l.seccomp().as_ref()) {
        Some(s) => Some(crate::seccomp::build(s)?),
        None => None,
    };
    for rl in process.rlimits().iter().flatten() {
        let res = rlimit_resource(rl.typ());
        // SAFETY: setrlimit reads the struct we pass by reference.
        let r = unsafe {
            libc::setrlimit(
                res as _,
                &libc::rlimit {
                    rlim_cur: rl.soft(),
                    rlim_max: rl.hard(),
                },
            )
        };
        nix::errno::Errno::result(r).ctx(|| {
            format!(
                "process.rlimits {}: soft {} hard {}",
                rl.typ(),
                rl.soft(),
                rl.hard()
            )
        })?;
    }

    // The program, looked up now so a missing one fails `create`.
    let args = process.args().as_ref().expect("validated");
    let env: Vec<&str> = process.env().iter().flatten().map(String::as_str).collect();
    let path = lookup(&args[0], &env)?;
    let mut prog = Prog {
        path: cstr(&path.to_string_lossy())?,
        argv: args.iter().map(|s| cstr(s)).collect::<Result<_>>()?,
        envp: env.iter().map(|s| cstr(s)).collect::<Result<_>>()?,
        seccomp: None,
        notify_fd: None,
    };

    crate::security::apply_process_attrs(process, linux)?;
    crate::security::apply_exec_labels(process)?;
    let nnp = process.no_new_privileges().unwrap_or(false);
    if !nnp {
        // Without no_new_privs, loading needs CAP_SYS_ADMIN: load now.
        if let Some(f) = filter.take() {
            prog.notify_fd = f.load()?;
        }
    }
    set_user_and_caps(process)?;
    let umask = process.user().umask().unwrap_or(0o022);
    nix::sys::stat::umask(Mode::from_bits_truncate(umask));
    let cwd = process.cwd();
    nix::unistd::chdir(cwd).ctx(|| format!("process.cwd {}", cwd.display()))?;
    // CVE-2024-21626: a cwd reached through a leaked fd lies outside the
    // root, and getcwd(2) then fails (or says "(unreachable)").
    match std::env::current_dir() {
        Ok(p) if p.is_absolute() => {}
        _ => {
            return Err(Error::invalid(
                "process.cwd",
                format!("{}: outside the container's root", cwd.display()),
            ))
        }
    }
    if nnp {
        // SAFETY: prctl with integer arguments only.
        let r = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
        nix::errno::Errno::result(r).ctx(|| "no_new_privs".into())?;
    }
    match filter {
        // The listener must reach berth before `create` returns.
        Some(f) if f.notify => prog.notify_fd = f.load()?,
        f => prog.seccomp = f,
    }
    cloexec_from(3 + preserve_fds);
    Ok(prog)
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

/// A pty for `process.terminal`: the master goes to the console socket
/// (SCM_RIGHTS, as runc sends it), the slave becomes stdio and the
/// controlling terminal, and is bound over /dev/console.
pub(crate) fn setup_console(console: Option<UnixStream>, bind_console: bool) -> Result<()> {
    use nix::pty::{grantpt, posix_openpt, ptsname_r, unlockpt};
    let sock =
        console.ok_or_else(|| Error::Other("process.terminal needs --console-socket".into()))?;
    let master = posix_openpt(
        nix::fcntl::OFlag::O_RDWR | nix::fcntl::OFlag::O_NOCTTY | nix::fcntl::OFlag::O_CLOEXEC,
    )
    .ctx(|| "open /dev/ptmx".into())?;
    grantpt(&master).ctx(|| "grantpt".into())?;
    unlockpt(&master).ctx(|| "unlockpt".into())?;
    let name = ptsname_r(&master).ctx(|| "ptsname".into())?;
    let slave = nix::fcntl::open(
        name.as_str(),
        nix::fcntl::OFlag::O_RDWR | nix::fcntl::OFlag::O_NOCTTY,
        Mode::empty(),
    )
    .ctx(|| format!("open {name}"))?;
    // The pty goes over /dev/console fd to fd (the init only; exec leaves
    // it): a fresh file replaces whatever the image had (CVE-2025-52565).
    if bind_console {
        bind_dev_console(&slave)?;
    }
    crate::channel::send_with_fd(&sock, name.as_bytes(), &master)
        .ctx(|| "send pty master to --console-socket".into())?;
    drop(master);
    for fd in 0..3 {
        // SAFETY: dup2 onto the stdio fds, which the init owns; the old
        // descriptors are closed atomically and nothing else refers to them.
        let r = unsafe { libc::dup2(slave.as_raw_fd(), fd) };
        nix::errno::Errno::result(r).ctx(|| "dup2 pty".into())?;
    }
    // SAFETY: TIOCSCTTY takes an int argument; fd 0 is the pty slave.
    let r = unsafe { libc::ioctl(0, libc::TIOCSCTTY, 0) };
    nix::errno::Errno::result(r).ctx(|| "TIOCSCTTY".into())?;
    Ok(())
}

fn bind_dev_console(slave: &impl AsRawFd) -> Result<()> {
    let root = nix::fcntl::open(
        "/",
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| "open /".into())?;
    let target = crate::resolve::fresh_file_in_root(&root, Path::new("/dev/console"))
        .ctx(|| "create /dev/console".into())?;
    let tree = crate::newmount::clone_tree(slave.as_raw_fd(), c"", false)?;
    crate::newmount::move_onto(&tree, &target)?;
    Ok(())
}

fn rlimit_resource(t: PosixRlimitType) -> libc::__rlimit_resource_t {
    use PosixRlimitType::*;
    match t {
        RlimitCpu => libc::RLIMIT_CPU,
        RlimitFsize => libc::RLIMIT_FSIZE,
        RlimitData => libc::RLIMIT_DATA,
        RlimitStack => libc::RLIMIT_STACK,
        RlimitCore => libc::RLIMIT_CORE,
        RlimitRss => libc::RLIMIT_RSS,
        RlimitNproc => libc::RLIMIT_NPROC,
        RlimitNofile => libc::RLIMIT_NOFILE,
        RlimitMemlock => libc::RLIMIT_MEMLOCK,
        RlimitAs => libc::RLIMIT_AS,
        RlimitLocks => libc::RLIMIT_LOCKS,
        RlimitSigpending => libc::RLIMIT_SIGPENDING,
        RlimitMsgqueue => libc::RLIMIT_MSGQUEUE,
        RlimitNice => libc::RLIMIT_NICE,
        RlimitRtprio => libc::RLIMIT_RTPRIO,
        RlimitRttime => libc::RLIMIT_RTTIME,
    }
}

/// execvp-style lookup of `prog` in the PATH of the process env.
fn lookup(prog: &str, env: &[&str]) -> Result<PathBuf> {
    let executable = |p: &Path| {
        nix::unistd::access(p, nix::unistd::AccessFlags::X_OK).is_ok()
            && std::fs::metadata(p).is_ok_and(|m| m.is_file())
    };
    if prog.contains('/') {
        let p = PathBuf::from(prog);
        return if executable(&p) {
            Ok(p)
        } else {
            Err(Error::Init(format!(
                "exec: {prog:?}: no such executable file"
            )))
        };
    }
    let path = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    path.split(':')
        .map(|d| Path::new(if d.is_empty() { "." } else { d }).join(prog))
        .find(|p| executable(p))
        .ok_or_else(|| {
            Error::Init(format!(
                "exec: {prog:?}: executable file not found in $PATH"
            ))
        })
}

fn to_caps(set: &Option<std::collections::HashSet<Capability>>) -> Result<caps::CapsHashSet> {
    set.iter()
        .flatten()
        .map(|c| {
            let name = format!("CAP_{c}");
            name.parse::<caps::Capability>().map_err(|_| {
                Error::invalid("process.capabilities", format!("unknown capability {name}"))
            })
        })
        .collect()
}

/// User, groups and the five capability sets (config.md "User",
/// "capabilities"): the bounding set is cut while still root, ids change
/// with PR_SET_KEEPCAPS, then the other sets are set exactly.
fn set_user_and_caps(process: &oci_spec::runtime::Process) -> Result<()> {
    use caps::CapSet;
    let user = process.user();
    let c = process.capabilities().as_ref();
    let sets = match c {
        Some(c) => Some((
            to_caps(c.bounding())?,
            to_caps(c.effective())?,
            to_caps(c.permitted())?,
            to_caps(c.inheritable())?,
            to_caps(c.ambient())?,
        )),
        None => None,
    };
    let ce = |e: caps::errors::CapsError| Error::Other(format!("capabilities: {e}"));
    if let Some((bounding, ..)) = &sets {
        // Dropping a capability the set lacks already is a no-op: one
        // prctl per capability, and a read only if it failed (a capability
        // this kernel does not know is not in the set).
        for cap in caps::all() {
            if !bounding.contains(&cap) {
                if let Err(e) = caps::drop(None, CapSet::Bounding, cap) {
                    if caps::has_cap(None, CapSet::Bounding, cap).unwrap_or(false) {
                        return Err(ce(e));
                    }
                }
            }
        }
    }
    // SAFETY: prctl with integer arguments only.
    unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) };
    let gids: Vec<nix::unistd::Gid> = user
        .additional_gids()
        .iter()
        .flatten()
        .map(|g| nix::unistd::Gid::from_raw(*g))
        .collect();
    match nix::unistd::setgroups(&gids) {
        // setgroups is denied in some user namespaces; with no
        // additional gids asked for, that is fine.
        Err(nix::errno::Errno::EPERM) if gids.is_empty() => {}
        r => r.ctx(|| "process.user.additionalGids: setgroups".into())?,
    }
    let (uid, gid) = (user.uid(), user.gid());
    nix::unistd::setresgid(gid.into(), gid.into(), gid.into())
        .ctx(|| format!("process.user.gid {gid}: setresgid"))?;
    nix::unistd::setresuid(uid.into(), uid.into(), uid.into())
        .ctx(|| format!("process.user.uid {uid}: setresuid"))?;
    // SAFETY: prctl with integer arguments only.
    unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 0, 0, 0, 0) };
    if let Some((_, effective, permitted, inheritable, ambient)) = sets {
        // Effective first: it must stay a subset of permitted at each step.
        caps::set(None, CapSet::Effective, &effective).map_err(ce)?;
        caps::set(None, CapSet::Permitted, &permitted).map_err(ce)?;
        caps::set(None, CapSet::Inheritable, &inheritable).map_err(ce)?;
        caps::clear(None, CapSet::Ambient).map_err(ce)?;
        for cap in ambient {
            caps::raise(None, CapSet::Ambient, cap).map_err(ce)?;
        }
    }
    Ok(())
}

/// The state document as the init sees it: its own pid, `status`.
fn hook_state(base: &Option<serde_json::Value>, status: &str) -> String {
    let mut s = base.clone().unwrap_or_default();
    s["pid"] = std::process::id().into();
    s["status"] = status.into();
    s.to_string()
}

/// Blocks until `start` connects and says go, runs the startContainer
/// hooks, then execs the program.
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
        if let Err(e) =
            crate::hooks::run_all("startContainer", hooks, || hook_state(state, "created"))
        {
            let _ = write!(conn, "{e}");
            // SAFETY: see run().
            unsafe { libc::_exit(1) }
        }
        // The connection is close-on-exec: `start` reads EOF on success.
        let err = exec(prog);
        let _ = write!(conn, "{err}");
        // SAFETY: see run().
        unsafe { libc::_exit(127) }
    }
}

/// Loads a pending seccomp filter and execve(2)s the program; returns only
/// on failure.
pub(crate) fn exec(prog: &Prog) -> Error {
    let argv: Vec<&std::ffi::CStr> = prog.argv.iter().map(|c| c.as_c_str()).collect();
    let envp: Vec<&std::ffi::CStr> = prog.envp.iter().map(|c| c.as_c_str()).collect();
    if let Some(f) = &prog.seccomp {
        if let Err(e) = f.load() {
            return e;
        }
    }
    let e = nix::unistd::execve(&prog.path, &argv, &envp).unwrap_err();
    Error::Other(format!("exec {:?}: {e}", prog.path))
}

/// Marks every fd above the stdio and the preserved ones close-on-exec.
pub(crate) fn cloexec_from(first: u32) {
    // SAFETY: close_range only changes fd flags.
    unsafe { libc::close_range(first, u32::MAX, libc::CLOSE_RANGE_CLOEXEC as _) };
}
