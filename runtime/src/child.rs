//! What every container process does between its clone and execve(2),
//! shared by the init (`init.rs`, for `create`) and `exec`: the console,
//! rlimits, the program looked up, personality/ioPriority/scheduler, LSM
//! exec labels, seccomp, user and capabilities, umask, cwd, no_new_privs,
//! fds closed on exec, and the execve itself.
//!
//! It runs in a forked copy of the single-threaded berth process, so it may
//! allocate; it never returns into berth's code.

use crate::channel::{Channel, Msg};
use crate::error::{Error, Result, SysCtx};
use nix::sys::stat::Mode;
use oci_spec::runtime::{Capability, PosixRlimitType};
use std::ffi::CString;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

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
        // berth reports the failure; just end.
        _ => crate::process::exit_child(1),
    }
}

fn cstr(s: &str) -> Result<CString> {
    CString::new(s).map_err(|_| Error::invalid("process", format!("{s:?} contains a NUL byte")))
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
