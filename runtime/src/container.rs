//! The lifecycle operations (runtime.md "Operations") as the CLI calls them.

use crate::cgroups::{self, Cgroup, Layout};
use crate::channel::{self, Msg};
use crate::error::{Error, Result, SysCtx};
use crate::init;
use crate::namespaces::Plan;
use crate::spec::{self, Bundle};
use crate::state::{self, Record, Status, Store, START_SOCK};
use crate::util;
use nix::sys::signal::Signal;
use nix::unistd::Pid;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

/// Options of `create` (and `run`).
#[derive(Default, Clone)]
pub struct CreateOpts {
    pub id: String,
    pub bundle: PathBuf,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub preserve_fds: u32,
    /// `run` in the foreground: the caller stays the init's parent.
    pub foreground: bool,
}

/// A short path to `name` inside `dir` through /proc/self/fd, so unix
/// socket addresses fit in sun_path whatever the length of `--root`.
fn short_path(dir: &impl AsRawFd, name: &str) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}/{name}", dir.as_raw_fd()))
}

/// clone3(2) flag (libc's constant is deprecated for overflowing c_int).
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

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
/// whether it was born in the cgroup given (else [`Cgroup::add`] moves it).
///
/// [`Cgroup::add`]: crate::cgroups::Cgroup::add
#[derive(Clone, Copy)]
pub(crate) struct Cloned {
    pub pid: i32,
    pub in_cgroup: bool,
}

/// clone3(2) without a new stack: returns twice, like fork(2). Where clone3
/// is missing (kernels before 5.3, or a seccomp filter answering ENOSYS to
/// it, as Docker's default profile does so that callers fall back), clone(2)
/// does the same without `CLONE_INTO_CGROUP`; `CLONE_NEWTIME`, which only
/// clone3 takes, then fails with EINVAL.
pub(crate) fn clone3(flags: u64, cgroup_fd: Option<&OwnedFd>) -> nix::Result<Cloned> {
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
            if flags & crate::namespaces::CLONE_NEWTIME != 0 {
                return Err(nix::errno::Errno::EINVAL);
            }
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

pub struct Runtime {
    pub store: Store,
}

impl Runtime {
    pub fn new(root: &Path) -> Result<Runtime> {
        Ok(Runtime {
            store: Store::open(root)?,
        })
    }

    /// `create`: sets the container up and leaves its init waiting for
    /// `start`. Returns the init's pid. On failure nothing is left behind.
    pub fn create(&self, o: &CreateOpts) -> Result<i32> {
        self.create_with_console(o, false).map(|(rec, ..)| rec.pid)
    }

    /// `create`, also returning the pty master when berth relays the
    /// terminal itself (`run` in the foreground without --console-socket).
    /// With `immediate` (`run`), the init gets no start socket: it waits
    /// for `Go` on the socketpair, returned here for `run` to send it.
    #[allow(clippy::type_complexity)]
    fn create_with_console(
        &self,
        o: &CreateOpts,
        immediate: bool,
    ) -> Result<(Record, Option<OwnedFd>, Option<channel::Channel>)> {
        state::validate_id(&o.id)?;
        let mut bundle = spec::load_bundle(&o.bundle)?;
        // Socket activation (sd_listen_fds): runc passes LISTEN_FDS fds on
        // and tells the container they are for its pid 1.
        let mut preserve = o.preserve_fds;
        if let Some(n) = std::env::var("LISTEN_FDS")
            .ok()
            .and_then(|v| v.parse::<u32>().ok())
            .filter(|n| *n > 0)
        {
            preserve = preserve.max(n);
            if let Some(p) = bundle.spec.process_mut() {
                let mut env = p.env().clone().unwrap_or_default();
                env.retain(|e| !e.starts_with("LISTEN_FDS=") && !e.starts_with("LISTEN_PID="));
                env.push(format!("LISTEN_FDS={n}"));
                env.push("LISTEN_PID=1".into());
                p.set_env(Some(env));
            }
        }
        let o = &CreateOpts {
            preserve_fds: preserve,
            ..o.clone()
        };
        let linux = bundle.spec.linux().as_ref();
        let ns = Plan::new(linux.and_then(|l| l.namespaces().as_deref()).unwrap_or(&[]))?;
        let process = bundle.spec.process().as_ref().expect("validated");
        let terminal = process.terminal().unwrap_or(false);
        if terminal && o.console_socket.is_none() && !o.foreground {
            return Err(Error::Other(
                "cannot allocate tty if berth will detach without setting console socket".into(),
            ));
        }
        if bundle
            .spec
            .hostname()
            .as_deref()
            .is_some_and(|h| !h.is_empty())
            && !ns.new_uts
            && !ns
                .join
                .iter()
                .any(|(f, _)| *f == nix::sched::CloneFlags::CLONE_NEWUTS)
        {
            return Err(Error::invalid(
                "hostname",
                "cannot set hostname without a private UTS namespace",
            ));
        }
        // In the foreground without --console-socket, berth itself takes the
        // pty master (over a socketpair) and relays it (see `run`).
        let mut relay = None;
        let console = match &o.console_socket {
            None if terminal => {
                let (ours, theirs) =
                    UnixStream::pair().map_err(|e| Error::io("socketpair", "console", e))?;
                relay = Some(ours);
                Some(theirs)
            }
            Some(p) => Some(
                UnixStream::connect(p)
                    .map_err(|e| Error::io("cannot connect to --console-socket", p, e))?,
            ),
            None => None,
        };
        let layout = Layout::detect()?;
        let cg_path = linux
            .and_then(|l| l.cgroups_path().as_ref())
            .map(|p| p.to_string_lossy().into_owned())
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| format!("berth/{}", o.id));
        let shared_parent = cg_path == format!("berth/{}", o.id);
        let cgroup = Cgroup::plan(&layout, &cg_path)?;

        let (_dir, lock) = self.store.claim(&o.id)?;
        let (secs, nanos) = util::now();
        let mut annotations = serde_json::Map::new();
        let mut ann: Vec<_> = bundle.spec.annotations().iter().flatten().collect();
        ann.sort();
        for (k, v) in ann {
            annotations.insert(k.clone(), v.clone().into());
        }
        let mut rec = Record {
            id: o.id.clone(),
            bundle: bundle.dir.clone(),
            rootfs: bundle.rootfs.clone(),
            created: util::rfc3339_nanos(secs, nanos),
            annotations,
            cgroups: cgroup.to_create(shared_parent),
            leaves: cgroup.dirs.iter().map(|(_, d)| d.clone()).collect(),
            freezer: cgroup.freezer(),
            own_pidns: ns.new_pid || ns.join_pid.is_some(),
            hooks: bundle.spec.hooks().clone(),
            ..Default::default()
        };
        let res = self.store.save(&rec).and_then(|_| {
            self.spawn(
                o,
                &bundle,
                &ns,
                &cgroup,
                console,
                &rec,
                lock.as_raw_fd(),
                immediate,
            )
        });
        match res {
            Ok((pid, start, chan)) => {
                rec.pid = pid;
                rec.pid_start = start;
                let saved = self.store.save(&rec).and_then(|_| match &o.pid_file {
                    Some(f) => write_pid_file(f, pid),
                    None => Ok(()),
                });
                let master = match (&relay, saved) {
                    (Some(sock), Ok(())) => recv_fd(sock).map(Some),
                    (_, r) => r.map(|_| None),
                };
                match master {
                    Ok(m) => Ok((rec, m, chan)),
                    Err(e) => {
                        kill_and_reap(pid, o.foreground);
                        self.cleanup(&rec);
                        Err(e)
                    }
                }
            }
            Err(e) => {
                self.cleanup(&rec);
                Err(e)
            }
        }
    }

    /// Clones the init and drives it to Ready. Returns (pid, start time).
    /// `lock` is the state directory's lock fd: the init closes its copy
    /// at once, so a SIGKILLed create cannot leave the lock held by it.
    #[allow(clippy::too_many_arguments)]
    fn spawn(
        &self,
        o: &CreateOpts,
        bundle: &Bundle,
        ns: &Plan,
        cgroup: &Cgroup,
        console: Option<UnixStream>,
        rec: &Record,
        lock: std::os::fd::RawFd,
        immediate: bool,
    ) -> Result<(i32, u64, Option<channel::Channel>)> {
        let dir = &self.store.dir(&rec.id);
        let res = bundle
            .spec
            .linux()
            .as_ref()
            .and_then(|l| l.resources().as_ref());
        let devices = crate::devices::rules(bundle.spec.linux().as_ref())?;
        cgroup.create(res, devices.as_deref())?;
        let listener = if immediate {
            None
        } else {
            let dirfd = std::fs::File::open(dir).map_err(|e| Error::io("cannot open", dir, e))?;
            Some(
                UnixListener::bind(short_path(&dirfd, START_SOCK))
                    .map_err(|e| Error::io("cannot listen on", dir.join(START_SOCK), e))?,
            )
        };
        let cg_fd = cgroup.clone_into_fd()?;
        if let Some(p) = &ns.join_pid {
            let f = std::fs::File::open(p).map_err(|e| Error::io("open namespace", p, e))?;
            nix::sched::setns(&f, nix::sched::CloneFlags::CLONE_NEWPID)
                .ctx(|| format!("setns {}", p.display()))?;
        }
        let (mut parent, child) = channel::pair().ctx(|| "socketpair".into())?;
        let child_of =
            clone3(ns.clone_flags, cg_fd.as_ref()).ctx(|| "clone container init".into())?;
        let pid = child_of.pid;
        if pid == 0 {
            drop(parent);
            init::run(init::Args {
                bundle,
                ns,
                cgroup,
                chan: child,
                listener,
                console,
                no_pivot: o.no_pivot,
                no_new_keyring: o.no_new_keyring,
                lock_fd: lock,
                state: bundle
                    .spec
                    .hooks()
                    .is_some()
                    .then(|| state::state_doc(rec, Status::Creating)),
                preserve_fds: o.preserve_fds,
            });
        }
        drop(child);
        drop(listener);
        drop(console);
        let mut setup = || -> Result<()> {
            if ns.new_user {
                let linux = bundle.spec.linux().as_ref().expect("validated");
                write_map(
                    pid,
                    "uid_map",
                    linux.uid_mappings().as_deref().unwrap_or(&[]),
                )?;
                write_map(
                    pid,
                    "gid_map",
                    linux.gid_mappings().as_deref().unwrap_or(&[]),
                )?;
            }
            cgroup.add(child_of)?;
            if let Some(adj) = bundle
                .spec
                .process()
                .as_ref()
                .and_then(|p| p.oom_score_adj())
            {
                std::fs::write(format!("/proc/{pid}/oom_score_adj"), adj.to_string())
                    .map_err(|e| Error::invalid("process.oomScoreAdj", format!("{adj}: {e}")))?;
            }
            parent
                .send(&Msg::Go)
                .map_err(|e| Error::Init(format!("cannot release init: {e}")))?;
            loop {
                match parent.recv() {
                    Ok(Some(Msg::Ready)) => return Ok(()),
                    Ok(Some(Msg::Hooks)) => {
                        let mut r = rec.clone();
                        r.pid = pid;
                        let st = state::state_doc(&r, Status::Creating).to_string();
                        let h = bundle.spec.hooks().as_ref();
                        crate::hooks::run_all(
                            "prestart",
                            h.and_then(|h| h.prestart().as_ref()),
                            || st.clone(),
                        )?;
                        crate::hooks::run_all(
                            "createRuntime",
                            h.and_then(|h| h.create_runtime().as_ref()),
                            || st,
                        )?;
                        parent
                            .send(&Msg::Go)
                            .map_err(|e| Error::Init(format!("cannot release init: {e}")))?;
                    }
                    Ok(Some(Msg::Seccomp)) => {
                        let mut r = rec.clone();
                        r.pid = pid;
                        let state = state::state_doc(&r, Status::Creating);
                        crate::seccomp::forward(&mut parent, &bundle.spec, pid, state, "init")?;
                    }
                    Ok(Some(Msg::Error(m))) => return Err(Error::Init(m)),
                    _ => return Err(Error::Init("exited during set-up".into())),
                }
            }
        };
        if let Err(e) = setup() {
            kill_and_reap(pid, true);
            return Err(e);
        }
        let start = state::proc_stat(pid).map(|s| s.1).unwrap_or(0);
        Ok((pid, start, immediate.then_some(parent)))
    }

    /// Removes what a create set up (idempotent).
    fn cleanup(&self, rec: &Record) {
        let _ = cgroups::remove(&rec.cgroups);
        let _ = self.store.remove(&rec.id);
    }

    /// `start`: releases a created container's init to exec the program.
    pub fn start(&self, id: &str) -> Result<()> {
        let rec = self.store.load(id)?;
        match self.store.status(&rec) {
            Status::Created => {}
            Status::Stopped => return Err(Error::StartStopped),
            Status::Creating => {
                return Err(Error::Other("container is still being created".into()))
            }
            Status::Running | Status::Paused => return Err(Error::AlreadyRunning),
        }
        self.release(&rec)
    }

    /// Connects to a created container's start socket and has its init
    /// exec the program, then runs the poststart hooks. `run` calls it
    /// with the record it just made (no reload, no status probe).
    fn release(&self, rec: &Record) -> Result<()> {
        let id = &rec.id;
        let dir = self.store.dir(id);
        let dirfd = std::fs::File::open(&dir).map_err(|e| Error::io("cannot open", &dir, e))?;
        let mut conn = UnixStream::connect(short_path(&dirfd, START_SOCK))
            .map_err(|e| Error::io("cannot reach container init at", dir.join(START_SOCK), e))?;
        // From now on the container counts as running.
        let _ = std::fs::remove_file(dir.join(START_SOCK));
        conn.write_all(b"S")
            .map_err(|e| Error::Init(format!("cannot start: {e}")))?;
        let mut msg = String::new();
        let _ = conn.read_to_string(&mut msg);
        if !msg.is_empty() {
            return Err(Error::Init(msg));
        }
        self.poststart(rec)
    }

    /// `run`'s start: the init created without a start socket waits for
    /// `Go` on the socketpair; EOF (close-on-exec) means the exec worked.
    fn release_now(&self, rec: &Record, mut chan: channel::Channel) -> Result<()> {
        chan.send(&Msg::Go)
            .map_err(|e| Error::Init(format!("cannot start: {e}")))?;
        match chan.recv() {
            Ok(None) => {}
            Ok(Some(Msg::Error(m))) => return Err(Error::Init(m)),
            _ => return Err(Error::Init("exited before exec".into())),
        }
        self.poststart(rec)
    }

    fn poststart(&self, rec: &Record) -> Result<()> {
        // poststart: a failure stops the container (runtime.md step 9).
        let poststart = rec.hooks.as_ref().and_then(|h| h.poststart().as_ref());
        if let Err(e) = crate::hooks::run_all("poststart", poststart, || {
            state::state_doc(rec, Status::Running).to_string()
        }) {
            stop(rec);
            return Err(e);
        }
        Ok(())
    }

    /// `state`: the runtime-spec state document.
    pub fn state(&self, id: &str) -> Result<serde_json::Value> {
        let rec = self.store.load(id)?;
        Ok(self.store.state_json(&rec))
    }

    /// `list`: the state of every container.
    pub fn list(&self) -> Result<Vec<serde_json::Value>> {
        let mut out = Vec::new();
        for id in self.store.ids()? {
            if let Ok(rec) = self.store.load(&id) {
                out.push(self.store.state_json(&rec));
            }
        }
        Ok(out)
    }

    /// `kill`: sends `sig` to the init, or with `all` to every process of
    /// the container's cgroup.
    pub fn kill(&self, id: &str, sig: Signal, all: bool) -> Result<()> {
        let rec = self.store.load(id)?;
        let status = self.store.status(&rec);
        if matches!(status, Status::Stopped | Status::Creating) {
            return Err(Error::NotRunning);
        }
        if all {
            for p in cgroups::procs(&rec.leaves) {
                let _ = nix::sys::signal::kill(Pid::from_raw(p), sig);
            }
            return Ok(());
        }
        let fd = pidfd_of(&rec).ok_or(Error::NotRunning)?;
        pidfd_signal(&fd, sig).ctx(|| format!("kill {sig}"))
    }

    /// `delete`: removes a stopped (or, with `force`, any) container.
    pub fn delete(&self, id: &str, force: bool) -> Result<()> {
        let _lock = self.store.lock(id)?;
        let rec = self.store.load(id)?;
        let status = self.store.status(&rec);
        match status {
            Status::Stopped | Status::Creating => {}
            // runc deletes a created container: it never ran the program.
            Status::Created => stop(&rec),
            s @ (Status::Running | Status::Paused) => {
                if !force {
                    return Err(Error::NotStopped {
                        id: id.into(),
                        status: s.to_string(),
                    });
                }
                if s == Status::Paused {
                    // A v1-frozen task cannot die until thawed.
                    stop_signal(&rec);
                    let _ = self.resume(id);
                }
                stop(&rec);
            }
        }
        // Without its own pid namespace the init's death does not end the
        // other processes: kill everything in its cgroup (as runc does).
        // A create that died half way (status creating, pid unknown) may
        // have left its init in the cgroup: that goes too.
        if !rec.own_pidns || status == Status::Creating {
            cgroups::kill_all(&rec.leaves);
        }
        cgroups::remove(&rec.cgroups)?;
        self.store.remove(id)?;
        // poststop failures are warnings only (runtime.md step 13).
        let poststop = rec.hooks.as_ref().and_then(|h| h.poststop().as_ref());
        if let Err(e) = crate::hooks::run_all("poststop", poststop, || {
            state::state_doc(&rec, Status::Stopped).to_string()
        }) {
            eprintln!("warning: {e}");
        }
        Ok(())
    }

    /// `run`: create + start; in the foreground, waits for the container,
    /// forwards signals to it, deletes it and returns its exit status
    /// (128+N for a signal).
    pub fn run(&self, o: &CreateOpts, keep: bool) -> Result<i32> {
        let (rec, master, chan) = self.create_with_console(o, true)?;
        let chan = chan.expect("immediate create returns the channel");
        let pid = rec.pid;
        if !o.foreground {
            if let Err(e) = self.release_now(&rec, chan) {
                let _ = self.delete(&o.id, true);
                return Err(e);
            }
            return Ok(0);
        }
        let set = forwarded_signals();
        let _ = nix::sys::signal::sigprocmask(
            nix::sys::signal::SigmaskHow::SIG_BLOCK,
            Some(&set),
            None,
        );
        if let Err(e) = self.release_now(&rec, chan) {
            let _ = self.delete(&o.id, true);
            return Err(e);
        }
        let code = match master {
            Some(m) => crate::tty::relay(pid, &m, &set),
            None => wait_forwarding(pid, &set),
        };
        if !keep {
            let _ = self.delete(&o.id, true);
        }
        Ok(code)
    }
}

/// The signals a foreground `run` or `exec` forwards to the container.
pub(crate) fn forwarded_signals() -> nix::sys::signal::SigSet {
    let mut set = nix::sys::signal::SigSet::empty();
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

/// Receives one fd sent with SCM_RIGHTS (the pty master from the init).
pub(crate) fn recv_fd(sock: &UnixStream) -> Result<OwnedFd> {
    let mut buf = [0u8; 256];
    channel::recv_with_fd(sock, &mut buf)
        .ctx(|| "receive the pty master".into())?
        .1
        .ok_or_else(|| Error::Init("no pty master received".into()))
}

/// Waits for the child `pid`, forwarding the signals in `set` to it.
pub(crate) fn wait_forwarding(pid: i32, set: &nix::sys::signal::SigSet) -> i32 {
    use nix::sys::signalfd::{SfdFlags, SignalFd};
    use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
    let sfd = SignalFd::with_flags(set, SfdFlags::SFD_CLOEXEC).ok();
    let pfd = pidfd_open(pid);
    loop {
        if let (Some(sfd), Some(pfd)) = (&sfd, &pfd) {
            let mut fds = [
                nix::poll::PollFd::new(sfd.as_fd(), nix::poll::PollFlags::POLLIN),
                nix::poll::PollFd::new(pfd.as_fd(), nix::poll::PollFlags::POLLIN),
            ];
            let _ = nix::poll::poll(&mut fds, nix::poll::PollTimeout::NONE);
            if fds[0].revents().is_some_and(|r| !r.is_empty()) {
                if let Ok(Some(si)) = sfd.read_signal() {
                    if let Ok(sig) = Signal::try_from(si.ssi_signo as i32) {
                        let _ = pidfd_signal(pfd, sig);
                    }
                }
                continue;
            }
        }
        match waitpid(Pid::from_raw(pid), Some(WaitPidFlag::__WALL)) {
            Ok(WaitStatus::Exited(_, c)) => return c,
            Ok(WaitStatus::Signaled(_, s, _)) => return 128 + s as i32,
            Err(nix::errno::Errno::EINTR) => continue,
            Ok(_) => continue,
            Err(_) => return 255,
        }
    }
}

pub(crate) fn pidfd_open(pid: i32) -> Option<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    // SAFETY: a non-negative return is a fresh fd we own.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// A pidfd of the container init, if it is still the recorded process.
pub(crate) fn pidfd_of(rec: &Record) -> Option<OwnedFd> {
    let fd = pidfd_open(rec.pid)?;
    // Checked after opening: the pidfd pins the process we verified.
    state::alive(rec.pid, rec.pid_start).then_some(fd)
}

pub(crate) fn pidfd_signal(fd: &OwnedFd, sig: Signal) -> nix::Result<()> {
    // SAFETY: pidfd_send_signal with a valid pidfd, a signal number, no siginfo.
    let r = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            fd.as_raw_fd(),
            sig as i32,
            0usize,
            0,
        )
    };
    nix::errno::Errno::result(r).map(drop)
}

/// SIGKILLs the container init (if still the recorded process) and waits
/// for it to die. Other processes go with its pid namespace or are killed
/// through the cgroup by the caller.
fn stop_signal(rec: &Record) {
    if let Some(fd) = pidfd_of(rec) {
        let _ = pidfd_signal(&fd, Signal::SIGKILL);
    }
}

fn stop(rec: &Record) {
    if let Some(fd) = pidfd_of(rec) {
        let _ = pidfd_signal(&fd, Signal::SIGKILL);
        let mut p = [nix::poll::PollFd::new(
            fd.as_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        let _ = nix::poll::poll(&mut p, nix::poll::PollTimeout::from(10_000u16));
    }
}

pub(crate) fn kill_and_reap(pid: i32, is_child: bool) {
    let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
    if is_child {
        let _ = nix::sys::wait::waitpid(
            Pid::from_raw(pid),
            Some(nix::sys::wait::WaitPidFlag::__WALL),
        );
    }
}

/// Writes a uid_map or gid_map of the init (user_namespaces(7)).
fn write_map(pid: i32, file: &str, maps: &[oci_spec::runtime::LinuxIdMapping]) -> Result<()> {
    let s: String = maps
        .iter()
        .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
        .collect();
    let p = format!("/proc/{pid}/{file}");
    std::fs::write(&p, s).map_err(|e| {
        Error::invalid(
            format!(
                "linux.{}",
                if file == "uid_map" {
                    "uidMappings"
                } else {
                    "gidMappings"
                }
            ),
            format!("writing {p}: {e}"),
        )
    })
}

/// The pid file, written atomically; relative paths are taken from the cwd.
pub(crate) fn write_pid_file(path: &Path, pid: i32) -> Result<()> {
    let path = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(|e| Error::io("cwd", ".", e))?
            .join(path)
    };
    util::write_atomic(&path, pid.to_string().as_bytes())
}
