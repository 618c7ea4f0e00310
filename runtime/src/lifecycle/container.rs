//! The lifecycle operations (runtime.md "Operations") as the CLI calls
//! them: create, start, state, list, kill, delete and run. The parent side
//! of create is `spawn.rs`; exec, ps, pause, update and events are in
//! `exec.rs` and `ops.rs`.

use crate::cgroups::{self, Cgroup, Layout};
use crate::error::{Error, Result, SysCtx};
use crate::launch::spawn::{short_path, Spawn};
use crate::process;
use crate::process::channel::{Channel, Msg};
use crate::process::namespaces::Plan;
use crate::process::tty::Console;
use crate::spec::{self, Bundle};
use crate::state::{self, Record, Status, Store, START_SOCK};
use crate::util;
use nix::sys::signal::Signal;
use nix::unistd::Pid;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
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
    /// `--systemd-cgroup`: the container's cgroup is a systemd unit.
    pub systemd_cgroup: bool,
    /// Without privilege (`--rootless`, resolved): the cgroup only where
    /// the user may have one, no device cgroup, id maps through the
    /// subordinate ranges.
    pub rootless: bool,
}

/// berth's runtime on one state root (`--root`).
pub struct Runtime {
    pub(crate) store: Store,
}

/// What `create` made: the record, and for `run` the pty master to relay
/// and the socketpair end that starts the program.
struct Created {
    rec: Record,
    master: Option<OwnedFd>,
    chan: Option<Channel>,
}

/// Socket activation (sd_listen_fds): runc passes LISTEN_FDS fds on and
/// tells the container they are for its pid 1. Returns how many fds after
/// stdio stay open.
fn listen_fds(bundle: &mut Bundle, preserve_fds: u32) -> u32 {
    let Some(n) = std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
        .filter(|n| *n > 0)
    else {
        return preserve_fds;
    };
    if let Some(p) = bundle.spec.process_mut() {
        let mut env = p.env().clone().unwrap_or_default();
        env.retain(|e| !e.starts_with("LISTEN_FDS=") && !e.starts_with("LISTEN_PID="));
        env.push(format!("LISTEN_FDS={n}"));
        env.push("LISTEN_PID=1".into());
        p.set_env(Some(env));
    }
    preserve_fds.max(n)
}

/// The config's annotations, sorted by key (as runc's state shows them).
fn sorted_annotations(bundle: &Bundle) -> serde_json::Map<String, serde_json::Value> {
    let mut ann: Vec<_> = bundle.spec.annotations().iter().flatten().collect();
    ann.sort();
    ann.into_iter()
        .map(|(k, v)| (k.clone(), v.clone().into()))
        .collect()
}

/// Stops the systemd driver's unit, if the container has one, and waits
/// until it is gone.
fn stop_unit(rec: &Record) -> Result<()> {
    let Some(unit) = &rec.unit else {
        return Ok(());
    };
    crate::cgroups::systemd::Bus::connect(rec.user_unit)?.stop(unit)
}

/// SIGKILLs the container init (if still the recorded process) and waits
/// for it to die. Other processes go with its pid namespace or are killed
/// through the cgroup by the caller.
fn stop(rec: &Record) {
    if let Some(fd) = rec.pidfd() {
        process::kill_and_wait(&fd, 10_000);
    }
}

/// Where the container's cgroup goes (nothing is created), and whether
/// berth's shared `berth/` parent is part of it.
pub(crate) fn plan_cgroup(
    o: &CreateOpts,
    linux: Option<&oci_spec::runtime::Linux>,
) -> Result<(Cgroup, bool)> {
    let layout = Layout::detect()?;
    let given = linux
        .and_then(|l| l.cgroups_path().as_ref())
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    let (cgroup, shared_parent) = if o.systemd_cgroup {
        let unit = crate::cgroups::systemd::plan(&given, &o.id, o.rootless)?;
        (Cgroup::systemd(&layout, unit)?, false)
    } else if given.is_empty() {
        (Cgroup::plan(&layout, &format!("berth/{}", o.id))?, true)
    } else {
        (Cgroup::plan(&layout, &given)?, false)
    };
    let cgroup = if o.rootless && !o.systemd_cgroup {
        cgroup.for_rootless(linux.and_then(|l| l.resources().as_ref()))?
    } else {
        cgroup
    };
    Ok((cgroup, shared_parent))
}

/// The record written before anything is set up (pid 0).
pub(crate) fn new_record(
    o: &CreateOpts,
    bundle: &Bundle,
    cgroup: &Cgroup,
    shared_parent: bool,
    ns: &Plan,
) -> Record {
    Record {
        id: o.id.clone(),
        bundle: bundle.dir.clone(),
        rootfs: bundle.rootfs.clone(),
        created: util::rfc3339_now(),
        annotations: sorted_annotations(bundle),
        cgroups: cgroup.to_create(shared_parent),
        leaves: cgroup.dirs.iter().map(|(_, d)| d.clone()).collect(),
        freezer: cgroup.freezer(),
        own_pidns: ns.new_pid || ns.join_pid.is_some(),
        unit: cgroup.unit.as_ref().map(|u| u.name.clone()),
        user_unit: cgroup.unit.as_ref().is_some_and(|u| u.user),
        hooks: bundle.spec.hooks().clone(),
        ..Default::default()
    }
}

impl Runtime {
    pub fn new(root: &Path) -> Result<Runtime> {
        Ok(Runtime {
            store: Store::open(root)?,
        })
    }

    /// Whether a container `id` exists (in any status).
    pub fn exists(&self, id: &str) -> bool {
        self.store.dir(id).exists()
    }

    /// `create`: sets the container up and leaves its init waiting for
    /// `start`. Returns the init's pid. On failure nothing is left behind.
    pub fn create(&self, o: &CreateOpts) -> Result<i32> {
        self.create_inner(o, false).map(|c| c.rec.pid)
    }

    /// `create`, also returning the pty master when berth relays the
    /// terminal itself (`run` in the foreground without --console-socket).
    /// With `immediate` (`run`), the init gets no start socket: it waits
    /// for `Go` on the socketpair, returned here for `run` to send it.
    fn create_inner(&self, o: &CreateOpts, immediate: bool) -> Result<Created> {
        state::validate_id(&o.id)?;
        let mut bundle = spec::load_bundle(&o.bundle)?;
        crate::error::debug(|| {
            format!(
                "create {}: config.json of {} loaded and valid",
                o.id,
                bundle.dir.display()
            )
        });
        let preserve_fds = listen_fds(&mut bundle, o.preserve_fds);
        let linux = bundle.spec.linux().as_ref();
        let ns = Plan::new(linux.and_then(|l| l.namespaces().as_deref()).unwrap_or(&[]))?;
        let process = bundle.spec.process().as_ref().expect("validated");
        if bundle
            .spec
            .hostname()
            .as_deref()
            .is_some_and(|h| !h.is_empty())
            && !ns.has_uts()
        {
            return Err(Error::invalid(
                "hostname",
                "cannot set hostname without a private UTS namespace",
            ));
        }
        // In the foreground without --console-socket, berth itself takes the
        // pty master (over a socketpair) and relays it (see `run`).
        let mut console = Console::open(
            o.console_socket.as_deref(),
            process.terminal().unwrap_or(false),
            !o.foreground,
        )?;
        let (cgroup, shared_parent) = plan_cgroup(o, linux)?;
        let rdt = match linux.and_then(|l| l.intel_rdt().as_ref()) {
            Some(r) => match crate::cgroups::rdt::mount_point()? {
                Some(root) => Some((root, r)),
                None => {
                    return Err(Error::invalid(
                        "linux.intelRdt",
                        "no resctrl filesystem is mounted (this host has no Intel RDT, or it is not mounted)",
                    ))
                }
            },
            None => None,
        };

        let (dir, lock) = self.store.claim(&o.id)?;
        crate::error::debug(|| {
            format!("create {}: state directory {} claimed", o.id, dir.display())
        });
        let mut rec = new_record(o, &bundle, &cgroup, shared_parent, &ns);
        rec.rdt = rdt
            .as_ref()
            .map(|(root, r)| crate::cgroups::rdt::planned(root, r, &o.id))
            .unwrap_or_default();
        let spawned = self.store.save(&rec).and_then(|_| {
            Spawn {
                bundle: &bundle,
                ns: &ns,
                cgroup: &cgroup,
                rec: &rec,
                dir: &dir,
                lock: lock.as_raw_fd(),
                console: console.child.take(),
                immediate,
                no_pivot: o.no_pivot,
                no_new_keyring: o.no_new_keyring,
                preserve_fds,
                rdt: rdt.as_ref().map(|(root, r)| (root.as_path(), *r)),
                rootless: o.rootless,
            }
            .run()
        });
        let spawned = match spawned {
            Ok(s) => s,
            Err(e) => {
                self.cleanup(&rec);
                return Err(e);
            }
        };
        rec.pid = spawned.pid;
        rec.pid_start = spawned.start;
        crate::error::debug(|| format!("create {}: init {} ready", o.id, rec.pid));
        if let Some(leaf) = spawned.leaf {
            // Where systemd put it.
            rec.freezer = Some(leaf.join("cgroup.freeze"));
            rec.leaves = vec![leaf];
        }
        let finish = || -> Result<Option<OwnedFd>> {
            self.store.save(&rec)?;
            if let Some(f) = &o.pid_file {
                process::write_pid_file(f, rec.pid)?;
            }
            console.master()
        };
        match finish() {
            Ok(master) => Ok(Created {
                rec,
                master,
                chan: spawned.chan,
            }),
            Err(e) => {
                process::kill_and_reap(rec.pid, o.foreground);
                self.cleanup(&rec);
                Err(e)
            }
        }
    }

    /// Removes what a create set up (idempotent).
    pub(crate) fn cleanup(&self, rec: &Record) {
        let _ = cgroups::remove(&rec.cgroups);
        let _ = stop_unit(rec);
        crate::cgroups::rdt::remove(&rec.rdt);
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
        crate::error::debug(|| format!("start {id}: init {} released", rec.pid));
        let mut msg = String::new();
        let _ = conn.read_to_string(&mut msg);
        if !msg.is_empty() {
            return Err(Error::Init(msg));
        }
        crate::error::debug(|| format!("start {id}: program exec'd"));
        self.poststart(rec)
    }

    /// `run`'s start: the init created without a start socket waits for
    /// `Go` on the socketpair; EOF (close-on-exec) means the exec worked.
    fn release_now(&self, rec: &Record, mut chan: Channel) -> Result<()> {
        chan.send(&Msg::Go)
            .map_err(|e| Error::Init(format!("cannot start: {e}")))?;
        match chan.recv() {
            Ok(None) => {}
            Ok(Some(Msg::Error(m))) => return Err(Error::Init(m)),
            _ => return Err(Error::Init("exited before exec".into())),
        }
        crate::error::debug(|| format!("start {}: program exec'd", rec.id));
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

    /// `kill`: `sig` to the init (or, with `all`, every process of the
    /// container's cgroup); `None` (signal 0) checks they are there.
    pub fn kill(&self, id: &str, sig: Option<Signal>, all: bool) -> Result<()> {
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
        let fd = rec.pidfd().ok_or(Error::NotRunning)?;
        let n = sig.map_or(0, |s| s as i32);
        process::pidfd_send(&fd, n).ctx(|| format!("kill {}", sig.map_or("0", |s| s.as_str())))
    }

    /// `delete`: removes a stopped (or, with `force`, any) container.
    pub fn delete(&self, id: &str, force: bool) -> Result<()> {
        // `delete --force` of a container that does not exist succeeds:
        // orchestrators call it to be sure one is gone (runc alike).
        let gone = |e: &Error| force && matches!(e, Error::NotExist);
        let _lock = match self.store.lock(id) {
            Err(e) if gone(&e) => return Ok(()),
            r => r?,
        };
        let rec = match self.store.load(id) {
            Err(e) if gone(&e) => return Ok(()),
            r => r?,
        };
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
                    if let Some(fd) = rec.pidfd() {
                        let _ = process::pidfd_signal(&fd, Signal::SIGKILL);
                    }
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
        stop_unit(&rec)?;
        crate::cgroups::rdt::remove(&rec.rdt);
        self.store.remove(id)?;
        // poststop failures are warnings only (runtime.md step 13).
        let poststop = rec.hooks.as_ref().and_then(|h| h.poststop().as_ref());
        crate::hooks::run_all_warn("poststop", poststop, || {
            state::state_doc(&rec, Status::Stopped).to_string()
        });
        Ok(())
    }

    /// `run`: create + start; in the foreground, waits for the container,
    /// forwards signals to it, deletes it and returns its exit status
    /// (128+N for a signal).
    pub fn run(&self, o: &CreateOpts, keep: bool) -> Result<i32> {
        let Created { rec, master, chan } = self.create_inner(o, true)?;
        let chan = chan.expect("immediate create returns the channel");
        let pid = rec.pid;
        if !o.foreground {
            if let Err(e) = self.release_now(&rec, chan) {
                let _ = self.delete(&o.id, true);
                return Err(e);
            }
            return Ok(0);
        }
        let set = process::forwarded_signals();
        process::block(&set);
        if let Err(e) = self.release_now(&rec, chan) {
            let _ = self.delete(&o.id, true);
            return Err(e);
        }
        let code = match master {
            Some(m) => crate::process::tty::relay(pid, &m, &set),
            None => process::wait_forwarding(pid, &set),
        };
        if !keep {
            let _ = self.delete(&o.id, true);
        }
        Ok(code)
    }
}
