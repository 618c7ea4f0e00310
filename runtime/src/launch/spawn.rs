//! The parent side of `create` (the child side is `init.rs`): the cgroups
//! made and limited, the start socket bound, the one clone of the init,
//! then the message loop over the socketpair until the init is `Ready`:
//! id maps, cgroup membership and oom_score_adj written before `Go`, the
//! prestart and createRuntime hooks run on `Hooks`, the seccomp listener
//! passed on on `Seccomp`.

use crate::cgroups::Cgroup;
use crate::error::{Error, Result, SysCtx};
use crate::launch::init;
use crate::process;
use crate::process::channel::{self, Channel, Msg};
use crate::process::namespaces::Plan;
use crate::spec::Bundle;
use crate::state::{self, Record, Status, START_SOCK};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

/// A short path to `name` inside `dir` through /proc/self/fd, so unix
/// socket addresses fit in sun_path whatever the length of `--root`.
pub(crate) fn short_path(dir: &impl AsRawFd, name: &str) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}/{name}", dir.as_raw_fd()))
}

const CLONE_NEWTIME: libc::c_int = process::CLONE_NEWTIME as libc::c_int;

/// Makes berth's next child be born in a new time namespace with the
/// config's `timeOffsets` (time_namespaces(7): offsets can only be written
/// before a process enters it). Returns berth's own time namespace, to go
/// back to once the init is cloned.
fn enter_new_time_ns(spec: &oci_spec::runtime::Spec) -> Result<std::os::fd::OwnedFd> {
    let own = nix::fcntl::open(
        "/proc/self/ns/time",
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .ctx(|| "open /proc/self/ns/time".into())?;
    nix::sched::unshare(nix::sched::CloneFlags::from_bits_retain(CLONE_NEWTIME))
        .ctx(|| "unshare time namespace".into())?;
    let offsets = spec
        .linux()
        .as_ref()
        .and_then(|l| l.time_offsets().as_ref());
    let mut text = String::new();
    for (clock, o) in offsets.into_iter().flatten() {
        let secs = o.secs().unwrap_or(0);
        let nanos = o.nanosecs().unwrap_or(0);
        text.push_str(&format!("{clock} {secs} {nanos}\n"));
    }
    if !text.is_empty() {
        // After unshare(2), this file is the offsets of the new namespace.
        std::fs::write("/proc/self/timens_offsets", &text).map_err(|e| {
            Error::invalid(
                "linux.timeOffsets",
                format!("{}: {e}", text.trim().replace('\n', ", ")),
            )
        })?;
    }
    Ok(own)
}

/// Everything the parent needs to bring up one container init.
pub(crate) struct Spawn<'a> {
    pub bundle: &'a Bundle,
    pub ns: &'a Plan,
    pub cgroup: &'a Cgroup,
    /// The record as saved before the clone (pid 0).
    pub rec: &'a Record,
    /// The container's state directory (where the start socket goes).
    pub dir: &'a Path,
    /// The state directory's lock fd: the init closes its copy at once,
    /// so a SIGKILLed create cannot leave the lock held by it.
    pub lock: RawFd,
    /// The init's end of the console (`process.terminal`).
    pub console: Option<UnixStream>,
    /// `run`: no start socket; the init waits for a second `Go` on the
    /// socketpair, which is returned for `run` to send it.
    pub immediate: bool,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub preserve_fds: u32,
    /// `linux.intelRdt` and the resctrl mount to apply it under.
    pub rdt: Option<(&'a Path, &'a oci_spec::runtime::LinuxIntelRdt)>,
    /// Rootless: no device cgroup (a user can neither make device nodes
    /// nor load the eBPF program; what it can reach is what the host's
    /// file permissions give it), id maps through newuidmap/newgidmap.
    pub rootless: bool,
}

/// A container init that is set up and waiting to be started.
pub(crate) struct Spawned {
    pub pid: i32,
    /// Its start time (see [`process::alive`]).
    pub start: u64,
    /// `run`'s end of the socketpair (see [`Spawn::immediate`]).
    pub chan: Option<Channel>,
    /// The cgroup systemd made (the systemd driver).
    pub leaf: Option<PathBuf>,
}

impl Spawn<'_> {
    /// Clones the init and drives it to Ready. On failure the init is
    /// killed and reaped; the caller removes cgroups and state.
    pub(crate) fn run(mut self) -> Result<Spawned> {
        let spec = &self.bundle.spec;
        let console = self.console.take();
        let res = spec.linux().as_ref().and_then(|l| l.resources().as_ref());
        let devices = match self.rootless {
            true => None,
            false => crate::cgroups::devices::rules(spec.linux().as_ref())?,
        };
        self.cgroup.create(res)?;
        crate::error::debug(|| {
            let first = self.rec.leaves.first().map(|l| l.display().to_string());
            format!(
                "create {}: cgroup made in {} hierarchies ({} ...), limits written",
                self.rec.id,
                self.rec.leaves.len(),
                first.unwrap_or_default()
            )
        });
        let listener = if self.immediate {
            None
        } else {
            let d = self.dir;
            let dirfd = std::fs::File::open(d).map_err(|e| Error::io("cannot open", d, e))?;
            Some(
                UnixListener::bind(short_path(&dirfd, START_SOCK))
                    .map_err(|e| Error::io("cannot listen on", d.join(START_SOCK), e))?,
            )
        };
        let idmapped = crate::rootfs::idmap::prepare(spec, &self.bundle.dir)?;
        let bind_sources = if self.ns.new_user {
            crate::rootfs::open_bind_sources(spec, &self.bundle.dir, &idmapped)
        } else {
            Vec::new()
        };
        let cg_fd = self.cgroup.clone_into_fd()?;
        if let Some(p) = &self.ns.join_pid {
            let f = std::fs::File::open(p).map_err(|e| Error::io("open namespace", p, e))?;
            nix::sched::setns(&f, nix::sched::CloneFlags::CLONE_NEWPID)
                .ctx(|| format!("setns {}", p.display()))?;
        }
        let (mut parent, child) = channel::pair().ctx(|| "socketpair".into())?;
        let own_time = if self.ns.new_time {
            Some(enter_new_time_ns(spec)?)
        } else {
            None
        };
        let cloned = process::clone3(self.ns.clone_flags, cg_fd.as_ref());
        if let Some(fd) = &own_time {
            // berth's later children (hooks) stay in berth's time namespace.
            if cloned.as_ref().is_ok_and(|c| c.pid != 0) {
                nix::sched::setns(fd, nix::sched::CloneFlags::from_bits_retain(CLONE_NEWTIME))
                    .ctx(|| "return to berth's time namespace".into())?;
            }
        }
        let cloned = cloned.ctx(|| "clone container init".into())?;
        if cloned.pid != 0 {
            crate::error::debug(|| format!("create {}: init {} cloned", self.rec.id, cloned.pid));
        }
        if cloned.pid == 0 {
            drop(parent);
            init::run(init::Args {
                bundle: self.bundle,
                ns: self.ns,
                cgroup: self.cgroup,
                chan: child,
                listener,
                console,
                no_pivot: self.no_pivot,
                no_new_keyring: self.no_new_keyring,
                lock_fd: self.lock,
                state: spec
                    .hooks()
                    .is_some()
                    .then(|| state::state_doc(self.rec, Status::Creating)),
                preserve_fds: self.preserve_fds,
                idmapped,
                bind_sources,
            });
        }
        drop(child);
        drop(listener);
        drop(console);
        drop(idmapped);
        drop(bind_sources);
        let pid = cloned.pid;
        let leaf = match self.drive(&mut parent, cloned, devices.as_deref()) {
            Ok(leaf) => leaf,
            Err(e) => {
                process::kill_and_reap(pid, true);
                return Err(e);
            }
        };
        Ok(Spawned {
            pid,
            start: process::proc_stat(pid).map(|s| s.1).unwrap_or(0),
            chan: self.immediate.then_some(parent),
            leaf,
        })
    }

    /// The container's network namespace: the one the config joins, or
    /// the init's new one.
    fn netns(&self, pid: i32) -> Result<std::os::fd::OwnedFd> {
        let joined = self
            .ns
            .join
            .iter()
            .find(|(f, _)| *f == nix::sched::CloneFlags::CLONE_NEWNET)
            .map(|(_, p)| p.clone());
        let p = joined.unwrap_or_else(|| PathBuf::from(format!("/proc/{pid}/ns/net")));
        nix::fcntl::open(
            &p,
            nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .ctx(|| format!("open {}", p.display()))
    }

    /// Releases the init and answers its messages until it is `Ready`.
    fn drive(
        &self,
        parent: &mut Channel,
        cloned: process::Cloned,
        devices: Option<&[crate::cgroups::devices::Rule]>,
    ) -> Result<Option<PathBuf>> {
        let spec = &self.bundle.spec;
        let pid = cloned.pid;
        if self.ns.new_user {
            let linux = spec.linux().as_ref().expect("validated");
            let maps = [
                ("uid_map", "linux.uidMappings", linux.uid_mappings()),
                ("gid_map", "linux.gidMappings", linux.gid_mappings()),
            ];
            if nix::unistd::geteuid().is_root() {
                for (file, field, m) in maps {
                    process::write_id_map(pid, file, field, m.as_deref().unwrap_or(&[]))?;
                }
            } else {
                let [(_, _, u), (_, _, g)] = maps;
                crate::process::rootless::write_maps(
                    pid,
                    u.as_deref().unwrap_or(&[]),
                    g.as_deref().unwrap_or(&[]),
                )?;
            }
        }
        let res = spec.linux().as_ref().and_then(|l| l.resources().as_ref());
        let leaf = self.cgroup.place(
            cloned,
            &self.rec.id,
            res,
            devices,
            spec.linux().as_ref(),
            spec.annotations().as_ref(),
        )?;
        if let Some((root, rdt)) = self.rdt {
            crate::cgroups::rdt::apply(root, rdt, &self.rec.id, pid)?;
        }
        if spec
            .linux()
            .as_ref()
            .and_then(|l| l.net_devices().as_ref())
            .is_some_and(|d| !d.is_empty())
        {
            crate::net::netdev::move_all(spec, &self.netns(pid)?)?;
        }
        if let Some(adj) = spec.process().as_ref().and_then(|p| p.oom_score_adj()) {
            std::fs::write(format!("/proc/{pid}/oom_score_adj"), adj.to_string())
                .map_err(|e| Error::invalid("process.oomScoreAdj", format!("{adj}: {e}")))?;
        }
        let go = |parent: &mut Channel| {
            parent
                .send(&Msg::Go)
                .map_err(|e| Error::Init(format!("cannot release init: {e}")))
        };
        // The state the hooks and the seccomp agent get: the init's pid.
        let creating = || {
            let mut r = self.rec.clone();
            r.pid = pid;
            state::state_doc(&r, Status::Creating)
        };
        go(parent)?;
        crate::error::debug(|| format!("create {}: init {pid} placed and released", self.rec.id));
        loop {
            match parent.recv() {
                Ok(Some(Msg::Ready)) => {
                    crate::error::debug(|| {
                        format!(
                            "create {}: init {pid}: rootfs made, process set up",
                            self.rec.id
                        )
                    });
                    // The rootfs is made: the device rules from now on.
                    if let Some(rules) = devices {
                        self.cgroup.restrict_devices(leaf.as_deref(), rules)?;
                        crate::error::debug(|| {
                            format!(
                                "create {}: {} device rules written",
                                self.rec.id,
                                rules.len()
                            )
                        });
                    }
                    return Ok(leaf);
                }
                Ok(Some(Msg::Hooks)) => {
                    let st = creating().to_string();
                    let h = spec.hooks().as_ref();
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
                    go(parent)?;
                }
                Ok(Some(Msg::Seccomp)) => {
                    crate::security::seccomp::forward(parent, spec, pid, creating(), "init")?;
                }
                Ok(Some(Msg::Warning(w))) => crate::error::warn(&w),
                Ok(Some(Msg::Error(m))) => return Err(Error::Init(m)),
                _ => return Err(Error::Init("exited during set-up".into())),
            }
        }
    }
}
