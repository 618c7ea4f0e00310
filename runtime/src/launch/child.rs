//! What every container process does between its clone and execve(2),
//! shared by the init (`init.rs`, for `create`) and `exec`: the console,
//! rlimits, the program looked up, personality/ioPriority/scheduler, LSM
//! exec labels, seccomp, user and capabilities, umask, cwd, no_new_privs,
//! fds closed on exec, and the execve itself.
//!
//! It runs in a forked copy of the single-threaded berth process, so it may
//! allocate; it never returns into berth's code.

use crate::error::{strerror, Error, Result, SysCtx};
use crate::process::channel::{Channel, Msg};
use nix::sys::stat::Mode;
use oci_spec::runtime::PosixRlimitType;
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
    seccomp: Option<crate::security::seccomp::Filter>,
    /// The seccomp notify listener, for berth to pass to the agent.
    notify_fd: Option<std::os::fd::OwnedFd>,
    /// What could not be applied and is only worth a warning (config.md:
    /// capabilities that cannot be granted), for berth to log.
    pub(crate) warnings: Vec<String>,
}

impl Prog {
    /// Sends the warnings to berth (which logs them) over the socketpair.
    pub(crate) fn send_warnings(&mut self, chan: &mut Channel) {
        for w in self.warnings.drain(..) {
            let _ = chan.send(&Msg::Warning(w));
        }
    }
}

/// Hands the seccomp listener fd (if any) to berth over the socketpair and
/// waits until berth has passed it to the agent.
pub(crate) fn send_notify_fd(chan: &mut Channel, prog: &mut Prog) -> Result<()> {
    let Some(fd) = prog.notify_fd.take() else {
        return Ok(());
    };
    chan.send_fd(&Msg::Seccomp, &fd)
        .map_err(|e| Error::Other(format!("send seccomp fd: {e}")))?;
    drop(fd);
    match chan.recv() {
        Ok(Some(Msg::Go)) => Ok(()),
        // berth reports the failure; just end.
        _ => crate::process::exit_child(1),
    }
}

/// Gives the process's pty (its stdio, made by berth) to its uid before the
/// user changes, so that a non-root user can use its own terminal, as runc
/// does: the group stays (devpts's tty group), /dev/null and what the uid
/// owns already are left, and a refusal (an owner not mapped in a user
/// namespace) leaves the fd as it is. Stdio berth was handed (a caller's
/// terminal or pipes) is never touched.
fn pty_to_user(uid: u32) {
    let null = nix::sys::stat::makedev(1, 3);
    for fd in 0..3 {
        // SAFETY: fds 0-2 stay open for the call (berth's startup fills
        // closed ones with /dev/null).
        let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
        let Ok(st) = nix::sys::stat::fstat(fd) else {
            continue;
        };
        let is_char = st.st_mode & libc::S_IFMT == libc::S_IFCHR;
        if st.st_uid == uid || (is_char && st.st_rdev == null) {
            continue;
        }
        let _ = nix::unistd::fchown(fd, Some(nix::unistd::Uid::from_raw(uid)), None);
    }
}

/// A failed chdir(2) to `cwd`, in runc's wording.
fn cwd_failed(cwd: &Path, e: nix::errno::Errno) -> Error {
    Error::Other(format!(
        "chdir to cwd ({:?}) set in config.json failed: {}",
        cwd.display().to_string(),
        strerror(e)
    ))
}

/// The cwd just entered must lie inside the root (CVE-2024-21626: a cwd
/// reached through a leaked fd is outside it, and getcwd(2) then fails or
/// says "(unreachable)"). runc's wording.
fn verify_cwd(cwd: &Path) -> Result<()> {
    if !matches!(std::env::current_dir(), Ok(p) if p.is_absolute()) {
        return Err(Error::invalid(
            "process.cwd",
            format!(
                "{}: current working directory is outside of container mount namespace root -- possible container breakout detected",
                cwd.display()
            ),
        ));
    }
    Ok(())
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
        Some(s) => Some(crate::security::seccomp::build(s)?),
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
        warnings: Vec::new(),
    };

    crate::security::apply_process_attrs(process, linux)?;
    crate::security::apply_memory_policy(linux)?;
    crate::security::apply_exec_labels(process)?;
    let nnp = process.no_new_privileges().unwrap_or(false);
    let cwd = process.cwd();
    // Without no_new_privs, loading the filter needs CAP_SYS_ADMIN: it is
    // loaded now, before the user and capabilities change. The cwd check
    // comes first: it must not depend on syscalls the profile may deny.
    let early = !nnp && filter.is_some();
    // The cwd is entered before the user changes (a directory only root
    // may enter, like /root for a non-root user, works), and again as the
    // user where root was refused (a volume only that user may enter): as
    // runc does. With the filter loaded early, only before.
    let retry_as_user = match nix::unistd::chdir(cwd) {
        Ok(()) => {
            verify_cwd(cwd)?;
            false
        }
        Err(nix::errno::Errno::EACCES | nix::errno::Errno::EPERM) if !early => true,
        Err(e) => return Err(cwd_failed(cwd, e)),
    };
    if early {
        if let Some(f) = filter.take() {
            prog.notify_fd = f.load()?;
        }
    }
    if process.terminal().unwrap_or(false) {
        pty_to_user(process.user().uid());
    }
    crate::security::caps::set_user_and_caps(process, &mut prog.warnings)?;
    let umask = process.user().umask().unwrap_or(0o022);
    nix::sys::stat::umask(Mode::from_bits_truncate(umask));
    if retry_as_user {
        nix::unistd::chdir(cwd).map_err(|e| cwd_failed(cwd, e))?;
        verify_cwd(cwd)?;
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
pub(crate) fn setup_console(
    console: Option<UnixStream>,
    bind_console: bool,
    size: Option<&oci_spec::runtime::Box>,
) -> Result<()> {
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
    // process.consoleSize (config.md): the pty's size from the start.
    if let Some(b) = size.filter(|b| b.height() > 0 && b.width() > 0) {
        let ws = libc::winsize {
            ws_row: b.height().min(u16::MAX as u64) as u16,
            ws_col: b.width().min(u16::MAX as u64) as u16,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ reads a winsize from a valid pointer; the fd
        // is the pty master just opened.
        let r = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
        nix::errno::Errno::result(r).ctx(|| "process.consoleSize".into())?;
    }
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
    // The message names the master as runc names it: the file it was
    // opened from (/dev/ptmx), not the slave.
    crate::process::channel::send_with_fd(&sock, b"/dev/ptmx", &master)
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
    let target = crate::fs::resolve::fresh_file_in_root(&root, Path::new("/dev/console"))
        .ctx(|| "create /dev/console".into())?;
    let tree = crate::fs::newmount::clone_tree(slave.as_raw_fd(), c"", false)?;
    crate::fs::newmount::move_onto(&tree, &target)?;
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

/// Whether `p` is an executable regular file, or why not: Go's
/// `exec.LookPath` checks, whose wording runc reports and podman and Docker
/// map to exit codes ("no such file or directory" 127, "permission denied"
/// 126).
fn executable(p: &Path) -> std::result::Result<(), String> {
    use nix::unistd::{faccessat, AccessFlags};
    let m = match nix::sys::stat::stat(p) {
        Ok(m) => m,
        Err(e) => return Err(format!("stat {}: {}", p.display(), strerror(e))),
    };
    if m.st_mode & libc::S_IFMT == libc::S_IFDIR {
        return Err(strerror(nix::errno::Errno::EISDIR));
    }
    let flags = nix::fcntl::AtFlags::AT_EACCESS;
    match faccessat(nix::fcntl::AT_FDCWD, p, AccessFlags::X_OK, flags) {
        Ok(()) => Ok(()),
        // No faccessat2, or a seccomp profile denying it: the mode bits.
        Err(nix::errno::Errno::ENOSYS | nix::errno::Errno::EPERM) if m.st_mode & 0o111 != 0 => {
            Ok(())
        }
        Err(nix::errno::Errno::ENOSYS | nix::errno::Errno::EPERM) => {
            Err(strerror(nix::errno::Errno::EACCES))
        }
        Err(e) => Err(strerror(e)),
    }
}

/// execvp-style lookup of `prog` in the PATH of the process env, with
/// runc's error messages.
fn lookup(prog: &str, env: &[&str]) -> Result<PathBuf> {
    if prog.contains('/') {
        let p = PathBuf::from(prog);
        return match executable(&p) {
            Ok(()) => Ok(p),
            Err(why) => Err(Error::Other(format!("exec: {prog:?}: {why}"))),
        };
    }
    let path = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    path.split(':')
        .map(|d| Path::new(if d.is_empty() { "." } else { d }).join(prog))
        .find(|p| executable(p).is_ok())
        .ok_or_else(|| {
            Error::Other(format!(
                "exec: {prog:?}: executable file not found in $PATH"
            ))
        })
}

/// Loads a pending seccomp filter and execve(2)s the program; returns only
/// on failure.
pub(crate) fn exec(prog: &Prog) -> Error {
    if let Err(e) = load_seccomp(prog) {
        return e;
    }
    execve(prog)
}

/// Loads the seccomp filter still pending (with noNewPrivileges), so that
/// what runs next, the startContainer hooks included, runs under it.
pub(crate) fn load_seccomp(prog: &Prog) -> Result<()> {
    match &prog.seccomp {
        Some(f) => f.load().map(|_| ()),
        None => Ok(()),
    }
}

/// An ignored signal stays ignored across execve: berth ignores SIGPIPE
/// (main.rs), and its caller may have ignored others. The program gets
/// each signal's default as under runc, whose Go runtime handles them
/// (and execve resets a handled signal), but for those Go leaves as it
/// found them: SIGHUP and SIGINT (nohup), and 32 and 33, which the C
/// library keeps for itself. Else `yes | head` in a container never ends.
fn default_signals() {
    for sig in 1..=64 {
        if matches!(
            sig,
            libc::SIGKILL | libc::SIGSTOP | libc::SIGHUP | libc::SIGINT | 32 | 33
        ) {
            continue;
        }
        // SAFETY: sets a signal's disposition to the default; no handler
        // is installed, and an invalid number only fails with EINVAL.
        unsafe { libc::signal(sig, libc::SIG_DFL) };
    }
}

/// execve(2)s the program; returns only on failure.
pub(crate) fn execve(prog: &Prog) -> Error {
    let argv: Vec<&std::ffi::CStr> = prog.argv.iter().map(|c| c.as_c_str()).collect();
    let envp: Vec<&std::ffi::CStr> = prog.envp.iter().map(|c| c.as_c_str()).collect();
    default_signals();
    let e = nix::unistd::execve(&prog.path, &argv, &envp).unwrap_err();
    Error::Other(format!(
        "exec {}: {}",
        prog.path.to_string_lossy(),
        strerror(e)
    ))
}

pub(crate) fn cloexec_from(first: u32) {
    // SAFETY: close_range only changes fd flags.
    unsafe { libc::close_range(first, u32::MAX, libc::CLOSE_RANGE_CLOEXEC as _) };
}
