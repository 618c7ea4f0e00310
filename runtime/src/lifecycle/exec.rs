//! `exec`: a new process in a running container. It joins every namespace
//! of the container (the user namespace first, all in one setns(2) on a
//! pidfd of the container init; the pid namespace by berth before the
//! clone, as setns only moves children into a pid namespace) and its cgroup
//! (`CLONE_INTO_CGROUP` on cgroup v2), then takes the process's
//! capabilities, rlimits, user, no_new_privs and cwd and execs.
//!
//! The exec'd process is made non-dumpable until its execve, so a container
//! process cannot open `/proc/PID/exe` of the berth copy that is joining
//! the container (CVE-2019-5736).

use crate::cgroups::{Cgroup, Layout};
use crate::error::{Error, Result, SysCtx};
use crate::launch::child;
use crate::lifecycle::container::Runtime;
use crate::process;
use crate::process::channel::{self, Msg};
use crate::process::tty::Console;
use crate::state::Status;
use nix::sched::CloneFlags;
use oci_spec::runtime::{Capability, LinuxNamespaceType, Process};
use std::collections::HashSet;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::str::FromStr;

/// `exec` options (runc's flags).
#[derive(Default, Clone)]
pub struct ExecOpts {
    pub id: String,
    /// `-p FILE`: a runtime-spec process JSON (`-` for stdin).
    pub process: Option<PathBuf>,
    pub args: Vec<String>,
    pub detach: bool,
    pub tty: bool,
    pub console_socket: Option<PathBuf>,
    pub cwd: Option<PathBuf>,
    pub env: Vec<String>,
    /// `UID[:GID]`.
    pub user: Option<String>,
    pub additional_gids: Vec<u32>,
    pub caps: Vec<String>,
    pub no_new_privs: bool,
    pub pid_file: Option<PathBuf>,
    pub preserve_fds: u32,
    pub apparmor: Option<String>,
    pub process_label: Option<String>,
    /// `--ignore-paused`: exec into a paused container (the process stays
    /// frozen with it until `resume`).
    pub ignore_paused: bool,
    /// `--cgroup [CONTROLLER[,CONTROLLER]:]SUB`: run in an existing
    /// sub-cgroup of the container's, in the hierarchies of those
    /// controllers (all without a prefix); a later one wins.
    pub sub_cgroups: Vec<String>,
}

/// The container's cgroup with `--cgroup` applied: each hierarchy's
/// directory, or the existing sub-cgroup asked for in it.
fn with_sub_cgroups(cg: Cgroup, subs: &[String]) -> Result<Cgroup> {
    // (Each SUB is below the container's own directory, not below an
    // earlier --cgroup's.)
    if subs.iter().all(|s| s.is_empty()) {
        return Ok(cg);
    }
    let mut dirs = cg.dirs.clone();
    for s in subs.iter().filter(|s| !s.is_empty()) {
        let (ctrls, sub) = match s.split_once(':') {
            Some((c, p)) => (Some(c.split(',').collect::<Vec<_>>()), p),
            None => (None, s.as_str()),
        };
        let rel = std::path::Path::new(sub);
        let plain = rel
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)));
        if sub.is_empty() || !plain {
            return Err(Error::invalid(
                "--cgroup",
                format!("{s:?}: a path below the container's cgroup, without .."),
            ));
        }
        let mut matched = false;
        for ((h, leaf), (_, own)) in dirs.iter_mut().zip(&cg.dirs) {
            let wanted = match &ctrls {
                None => true,
                Some(cs) => cs
                    .iter()
                    .any(|c| h.controllers.iter().any(|x| x == c) || (h.v2 && c.is_empty())),
            };
            if !wanted {
                continue;
            }
            let d = own.join(rel);
            if !d.is_dir() {
                return Err(Error::invalid(
                    "--cgroup",
                    format!("{s:?}: {} does not exist", d.display()),
                ));
            }
            *leaf = d;
            matched = true;
        }
        if !matched {
            return Err(Error::invalid(
                "--cgroup",
                format!("{s:?}: the container has no such controller"),
            ));
        }
    }
    let mut cg = cg;
    cg.dirs = dirs;
    Ok(cg)
}

fn ns_file(t: LinuxNamespaceType) -> &'static str {
    match t {
        LinuxNamespaceType::Mount => "mnt",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Network => "net",
        LinuxNamespaceType::Time => "time",
    }
}

/// The process to exec: `-p FILE`, or the container's process with the
/// command line flags applied (as runc builds it).
fn build_process(o: &ExecOpts, base: &Process) -> Result<Process> {
    if let Some(p) = &o.process {
        let data = crate::util::read_file_or_stdin(p)?;
        let bad = |e: serde_json::Error| Error::Config {
            path: p.clone(),
            msg: format!("invalid process: {e}"),
        };
        let mut v: serde_json::Value = serde_json::from_slice(&data).map_err(bad)?;
        // A process without `user` runs as the container's user (runc).
        if let Some(m) = v.as_object_mut().filter(|m| !m.contains_key("user")) {
            m.insert(
                "user".into(),
                serde_json::to_value(base.user()).map_err(bad)?,
            );
        }
        let mut pr: Process = serde_json::from_value(v).map_err(bad)?;
        if o.tty {
            pr.set_terminal(Some(true));
        }
        return check(pr);
    }
    let mut pr = base.clone();
    if o.args.is_empty() {
        return Err(Error::Other(
            "exec: no command given (and no --process)".into(),
        ));
    }
    pr.set_args(Some(o.args.clone()));
    pr.set_terminal(Some(o.tty));
    let mut env = pr.env().clone().unwrap_or_default();
    env.extend(o.env.iter().cloned());
    pr.set_env(Some(env));
    if let Some(c) = &o.cwd {
        pr.set_cwd(c.clone());
    }
    if let Some(u) = &o.user {
        let (uid, gid) = match u.split_once(':') {
            Some((a, b)) => (a, Some(b)),
            None => (u.as_str(), None),
        };
        let n = |s: &str| {
            s.parse::<u32>()
                .map_err(|_| Error::invalid("--user", format!("{u:?}: use UID[:GID]")))
        };
        pr.user_mut().set_uid(n(uid)?);
        pr.user_mut().set_gid(gid.map(n).transpose()?.unwrap_or(0));
    }
    if !o.additional_gids.is_empty() {
        pr.user_mut()
            .set_additional_gids(Some(o.additional_gids.clone()));
    }
    if !o.caps.is_empty() {
        let mut caps = pr.capabilities().clone().unwrap_or_default();
        for c in &o.caps {
            let name = c.to_ascii_uppercase();
            let name = name.strip_prefix("CAP_").unwrap_or(&name).to_string();
            let cap = Capability::from_str(&name)
                .map_err(|_| Error::invalid("--cap", format!("unknown capability {c}")))?;
            for set in [
                caps.bounding().clone(),
                caps.effective().clone(),
                caps.permitted().clone(),
            ]
            .iter()
            .enumerate()
            {
                let mut v: HashSet<Capability> = set.1.clone().unwrap_or_default();
                v.insert(cap);
                match set.0 {
                    0 => caps.set_bounding(Some(v)),
                    1 => caps.set_effective(Some(v)),
                    _ => caps.set_permitted(Some(v)),
                };
            }
        }
        pr.set_capabilities(Some(caps));
    }
    if o.no_new_privs {
        pr.set_no_new_privileges(Some(true));
    }
    if let Some(a) = &o.apparmor {
        pr.set_apparmor_profile(Some(a.clone()));
    }
    if let Some(l) = &o.process_label {
        pr.set_selinux_label(Some(l.clone()));
    }
    check(pr)
}

fn check(pr: Process) -> Result<Process> {
    if pr.args().as_ref().is_none_or(|a| a.is_empty()) {
        return Err(Error::invalid(
            "process.args",
            "must name the program to run",
        ));
    }
    if !pr.cwd().is_absolute() {
        return Err(Error::invalid(
            "process.cwd",
            format!("{}: must be absolute", pr.cwd().display()),
        ));
    }
    crate::security::check_lsm(Some(&pr), None)?;
    Ok(pr)
}

impl Runtime {
    /// `exec`. Returns the process's exit status in the foreground, 0 when
    /// detached.
    pub fn exec(&self, o: &ExecOpts) -> Result<i32> {
        let rec = self.store.load(&o.id)?;
        match self.store.status(&rec) {
            Status::Running | Status::Created => {}
            Status::Paused if o.ignore_paused => {}
            Status::Paused => {
                return Err(Error::Other(
                    "cannot exec in a paused container (use --ignore-paused to override)".into(),
                ))
            }
            Status::Stopped | Status::Creating => {
                return Err(Error::Other("cannot exec in a stopped container".into()))
            }
        }
        let cfg_path = rec.bundle.join("config.json");
        let data = std::fs::read(&cfg_path).map_err(|e| Error::io("cannot read", &cfg_path, e))?;
        let spec = crate::spec::parse(&data).map_err(|msg| Error::Config {
            path: cfg_path.clone(),
            msg,
        })?;
        let base = spec.process().clone().unwrap_or_default();
        let process = build_process(o, &base)?;
        let mut console = Console::open(
            o.console_socket.as_deref(),
            process.terminal().unwrap_or(false),
            o.detach,
        )?;

        // Namespaces: those the config lists, joined through the init.
        let pidfd = rec.pidfd().ok_or(Error::NotRunning)?;
        let mut flags = CloneFlags::empty();
        let mut join_pid = false;
        for ns in spec
            .linux()
            .as_ref()
            .and_then(|l| l.namespaces().as_deref())
            .unwrap_or(&[])
        {
            let t = ns.typ();
            // Only what differs from ours (a shared namespace needs no join).
            let theirs = std::fs::metadata(format!("/proc/{}/ns/{}", rec.pid, ns_file(t)));
            let ours = std::fs::metadata(format!("/proc/self/ns/{}", ns_file(t)));
            use std::os::unix::fs::MetadataExt;
            if let (Ok(a), Ok(b)) = (theirs, ours) {
                if a.ino() == b.ino() && a.dev() == b.dev() {
                    continue;
                }
            }
            if t == LinuxNamespaceType::Pid {
                join_pid = true;
            } else {
                flags |= CloneFlags::from_bits_truncate(t as i32 as libc::c_int);
            }
        }
        let layout = Layout::detect()?;
        let cgroup = with_sub_cgroups(Cgroup::from_leaves(&layout, &rec.leaves), &o.sub_cgroups)?;
        let cg_fd = cgroup.clone_into_fd()?;
        // Without privilege the container's pid namespace can be joined
        // only from inside its user namespace, which berth's owner may
        // enter: both at once, here (the child then joins the rest).
        let mut early = CloneFlags::empty();
        if flags.contains(CloneFlags::CLONE_NEWUSER) && !nix::unistd::geteuid().is_root() {
            early |= CloneFlags::CLONE_NEWUSER;
            flags.remove(CloneFlags::CLONE_NEWUSER);
        }
        if join_pid {
            early |= CloneFlags::CLONE_NEWPID;
        }
        if !early.is_empty() {
            nix::sched::setns(&pidfd, early).ctx(|| "join the container's pid namespace".into())?;
        }
        // Signals to forward are blocked before the clone; the child unblocks.
        let set = process::forwarded_signals();
        if !o.detach {
            process::block(&set);
        }
        let (mut parent, mut child) = channel::pair().ctx(|| "socketpair".into())?;
        // SAFETY: PR_SET_DUMPABLE with integer arguments; inherited by the child.
        unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
        let child_of = process::clone3(0, cg_fd.as_ref()).ctx(|| "clone exec process".into())?;
        let pid = child_of.pid;
        if pid == 0 {
            drop(parent);
            let err = exec_child(
                &mut child,
                &pidfd,
                flags,
                &process,
                spec.linux().as_ref(),
                console.child.take(),
                o.preserve_fds,
            );
            let _ = child.send(&Msg::Error(err.to_string()));
            process::exit_child(255)
        }
        drop(child);
        crate::error::debug(|| format!("exec {}: process {pid} cloned", o.id));
        let setup = (|| -> Result<()> {
            cgroup.add(child_of)?;
            parent
                .send(&Msg::Go)
                .map_err(|e| Error::Init(format!("cannot release exec: {e}")))?;
            // EOF means the execve succeeded (the socket is close-on-exec).
            loop {
                match parent.recv() {
                    Ok(None) => return Ok(()),
                    Ok(Some(Msg::Seccomp)) => {
                        let state = self.store.state_json(&rec);
                        crate::security::seccomp::forward(&mut parent, &spec, pid, state, "exec")?;
                    }
                    Ok(Some(Msg::Warning(w))) => crate::error::warn(&w),
                    Ok(Some(Msg::Error(m))) => return Err(Error::Init(m)),
                    Ok(Some(_)) | Err(_) => {
                        return Err(Error::Init("exec process failed during set-up".into()))
                    }
                }
            }
        })();
        if let Err(e) = setup {
            process::kill_and_reap(pid, true);
            return Err(e);
        }
        crate::error::debug(|| format!("exec {}: process {pid} exec'd", o.id));
        let master = console.master()?;
        if let Some(f) = &o.pid_file {
            process::write_pid_file(f, pid)?;
        }
        if o.detach {
            return Ok(0);
        }
        Ok(match master {
            Some(m) => crate::process::tty::relay(pid, &m, &set),
            None => process::wait_forwarding(pid, &set),
        })
    }
}

/// In the cloned child: wait for Go, join, set up, exec. Returns the error
/// if anything fails.
fn exec_child(
    chan: &mut channel::Channel,
    pidfd: &OwnedFd,
    flags: CloneFlags,
    process: &Process,
    linux: Option<&oci_spec::runtime::Linux>,
    console: Option<UnixStream>,
    preserve_fds: u32,
) -> Error {
    let run = || -> Result<std::convert::Infallible> {
        process::unblock_all();
        match chan.recv() {
            Ok(Some(Msg::Go)) => {}
            // berth went away; end the child.
            _ => process::exit_child(255),
        }
        if !flags.is_empty() {
            nix::sched::setns(pidfd, flags).ctx(|| "join the container's namespaces".into())?;
        }
        if process.terminal().unwrap_or(false) {
            nix::unistd::setsid().ctx(|| "setsid".into())?;
            child::setup_console(console, false, process.console_size().as_ref())?;
        }
        let mut prog = child::finish_process(process, linux, preserve_fds)?;
        prog.send_warnings(chan);
        child::send_notify_fd(chan, &mut prog)?;
        Err(child::exec(&prog))
    };
    match run() {
        Err(e) => e,
        Ok(never) => match never {},
    }
}
