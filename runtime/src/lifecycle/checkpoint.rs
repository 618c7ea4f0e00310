//! `checkpoint` and `restore` through CRIU (`criu/`), as runc does them:
//! the same requests, external mounts, namespaces, cgroups, notifications
//! and `descriptors.json` in the image directory, so that an image either
//! runtime wrote restores with the other.
//!
//! Checkpoint: CRIU freezes the container's cgroup, dumps its processes,
//! and (without `--leave-running` or `--pre-dump`) kills them; berth then
//! deletes the container as `delete --force` does. On failure CRIU thaws
//! the container and it runs on.
//!
//! Restore: the container is claimed, recorded and given its cgroup as by
//! `create`; then `criu swrk` is put in that cgroup and restores the
//! processes into it, as children of berth (`rst_sibling`), from the
//! rootfs bind-mounted at `STATE/ID/criu-root` (CRIU needs a mount point).
//! The hooks run at CRIU's `setup-namespaces`, the state is recorded at
//! `post-restore`, a terminal's master goes to the console socket at
//! `orphan-pts-master`. On failure every piece is undone.

use crate::cgroups::{self};
use crate::criu::{self, Notify, Opts, ReqType, Swrk};
use crate::error::{Error, Result, SysCtx};
use crate::lifecycle::container::{new_record, plan_cgroup, CreateOpts, Runtime};
use crate::process;
use crate::process::namespaces::Plan;
use crate::process::tty::Console;
use crate::spec::{self, Bundle};
use crate::state::{self, Record, Status};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use oci_spec::runtime::LinuxNamespaceType;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

/// The file in the image directory naming the init's stdio as it was
/// (runc's name and format: a JSON array of /proc/PID/fd/N link targets).
const DESCRIPTORS: &str = "descriptors.json";

/// What CRIU's options both commands share.
#[derive(Default, Clone)]
pub struct CriuFlags {
    pub image_path: PathBuf,
    pub work_path: Option<PathBuf>,
    pub tcp_established: bool,
    pub ext_unix_sk: bool,
    pub shell_job: bool,
    pub file_locks: bool,
    pub auto_dedup: bool,
    pub lazy_pages: bool,
    pub manage_cgroups_mode: String,
    /// `--empty-ns`: namespaces made empty (only `network`).
    pub empty_ns: Vec<String>,
}

/// Options of `checkpoint`.
#[derive(Default, Clone)]
pub struct CheckpointOpts {
    pub criu: CriuFlags,
    /// `--parent-path`, relative to the image path.
    pub parent_path: Option<String>,
    pub leave_running: bool,
    pub pre_dump: bool,
    /// `--page-server ADDRESS:PORT`.
    pub page_server: Option<String>,
    /// `--status-fd`: gets a NUL when the lazy-pages server is ready.
    pub status_fd: Option<i32>,
}

/// Options of `restore`: those of `create` (`foreground`: not `--detach`)
/// and CRIU's.
#[derive(Default, Clone)]
pub struct RestoreOpts {
    pub create: CreateOpts,
    pub criu: CriuFlags,
}

/// The `empty_ns` mask: the network namespace always (neither runc nor
/// berth has network state of its own to restore), plus `--empty-ns`.
fn empty_ns(names: &[String]) -> Result<u32> {
    for n in names {
        if n != "network" {
            return Err(Error::Other(format!("namespace {n:?} is not supported")));
        }
    }
    Ok(libc::CLONE_NEWNET as u32)
}

/// CRIU's configuration file: the `org.criu.config` annotation (empty:
/// none), else /etc/criu/runc.conf, which runc names too.
fn config_file(bundle: &Bundle) -> Option<String> {
    match bundle
        .spec
        .annotations()
        .as_ref()
        .and_then(|a| a.get("org.criu.config"))
    {
        Some(f) if f.is_empty() => None,
        Some(f) => Some(f.clone()),
        None => Some("/etc/criu/runc.conf".into()),
    }
}

fn mkdir_0700(p: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(p)
        .map_err(|e| Error::io("cannot create", p, e))
}

fn open_dir(p: &Path, what: &'static str) -> Result<OwnedFd> {
    std::fs::File::open(p)
        .and_then(|f| {
            if f.metadata()?.is_dir() {
                Ok(OwnedFd::from(f))
            } else {
                Err(std::io::Error::from_raw_os_error(libc::ENOTDIR))
            }
        })
        .map_err(|e| Error::io(what, p, e))
}

/// The image and work directories (opened: CRIU reads them through
/// /proc/BERTH/fd) and the log CRIU writes in the work directory.
struct Dirs {
    images: OwnedFd,
    work: Option<OwnedFd>,
    log: PathBuf,
}

impl Dirs {
    fn open(f: &CriuFlags, create: bool, log: &str) -> Result<Dirs> {
        if create {
            mkdir_0700(&f.image_path)?;
        }
        let what = if create {
            "invalid directory to save checkpoint"
        } else {
            "invalid directory to restore checkpoint"
        };
        let images = open_dir(&f.image_path, what)?;
        let work = match &f.work_path {
            Some(w) => {
                mkdir_0700(w)?;
                Some(open_dir(w, "invalid --work-path")?)
            }
            None => None,
        };
        let log = f.work_path.as_ref().unwrap_or(&f.image_path).join(log);
        Ok(Dirs { images, work, log })
    }

    fn opts(&self, f: &CriuFlags, log_file: &'static str) -> Result<Opts> {
        Ok(Opts {
            images_dir_fd: self.images.as_raw_fd(),
            work_dir_fd: self.work.as_ref().map(|w| w.as_raw_fd()),
            log_file,
            tcp_established: f.tcp_established,
            ext_unix_sk: f.ext_unix_sk,
            shell_job: f.shell_job,
            file_locks: f.file_locks,
            auto_dedup: f.auto_dedup,
            lazy_pages: f.lazy_pages,
            manage_cgroups_mode: criu::cg_mode(&f.manage_cgroups_mode)?,
            empty_ns: empty_ns(&f.empty_ns)?,
            ..Default::default()
        })
    }
}

/// A config's bind mounts: (destination, source made absolute against
/// the bundle).
fn bind_mounts(bundle: &Bundle) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for m in bundle.spec.mounts().iter().flatten() {
        let opts = m.options().clone().unwrap_or_default();
        let bind =
            m.typ().as_deref() == Some("bind") || opts.iter().any(|o| o == "bind" || o == "rbind");
        if !bind {
            continue;
        }
        let src = m.source().clone().unwrap_or_default();
        let src = if src.is_absolute() {
            src
        } else {
            bundle.dir.join(src)
        };
        out.push((
            m.destination().to_string_lossy().into_owned(),
            src.to_string_lossy().into_owned(),
        ));
    }
    out
}

/// The device nodes a container gets: runc's defaults and linux.devices
/// (mounts when bind-mounted, as in a user namespace; CRIU ignores a key
/// that names no mount).
fn device_paths(bundle: &Bundle) -> Vec<String> {
    let mut out: Vec<String> = [
        "/dev/null",
        "/dev/zero",
        "/dev/full",
        "/dev/tty",
        "/dev/urandom",
        "/dev/random",
    ]
    .map(String::from)
    .to_vec();
    let linux = bundle.spec.linux().as_ref();
    for d in linux
        .and_then(|l| l.devices().as_ref())
        .into_iter()
        .flatten()
    {
        out.push(d.path().to_string_lossy().into_owned());
    }
    out
}

/// The path of a namespace the config joins, for CRIU's name of its type.
fn joined_namespaces(bundle: &Bundle) -> Vec<(&'static str, PathBuf)> {
    let linux = bundle.spec.linux().as_ref();
    let mut out = Vec::new();
    for n in linux
        .and_then(|l| l.namespaces().as_ref())
        .into_iter()
        .flatten()
    {
        let Some(p) = n.path() else { continue };
        let name = match n.typ() {
            LinuxNamespaceType::Network => "net",
            LinuxNamespaceType::Pid => "pid",
            LinuxNamespaceType::Ipc => "ipc",
            LinuxNamespaceType::Uts => "uts",
            LinuxNamespaceType::Mount => "mnt",
            LinuxNamespaceType::User => "user",
            LinuxNamespaceType::Cgroup => "cgroup",
            LinuxNamespaceType::Time => "time",
        };
        out.push((name, p.clone()));
    }
    out
}

/// CRIU's key of an external namespace: `extRootNetNS`, `extRootPidNS`.
fn ext_key(name: &str) -> &'static str {
    if name == "net" {
        "extRootNetNS"
    } else {
        "extRootPidNS"
    }
}

impl Runtime {
    /// `checkpoint`: dumps a running (or paused) container's processes into
    /// the image directory. Unless `leave_running` or `pre_dump`, the
    /// container is gone afterwards.
    pub fn checkpoint(&self, id: &str, o: &CheckpointOpts) -> Result<()> {
        let lock = self.store.lock(id)?;
        let rec = self.store.load(id)?;
        let status = self.store.status(&rec);
        if !matches!(status, Status::Running | Status::Paused) {
            return Err(Error::Other(format!(
                "Container cannot be checkpointed in {status} state"
            )));
        }
        let bundle = spec::load_bundle(&rec.bundle)?;
        let f = &o.criu;
        let mut page_server = None;
        if let Some(ps) = &o.page_server {
            let (addr, port) = ps
                .rsplit_once(':')
                .filter(|(a, p)| !a.is_empty() && !p.is_empty())
                .ok_or_else(|| {
                    Error::Other("Use --page-server ADDRESS:PORT to specify page server".into())
                })?;
            let port = port
                .parse::<u16>()
                .map_err(|_| Error::Other("Invalid port number".into()))?;
            let addr = addr.trim_start_matches('[').trim_end_matches(']');
            page_server = Some((addr.to_string(), i32::from(port)));
        }
        // Checked before anything is written.
        criu::cg_mode(&f.manage_cgroups_mode)?;
        empty_ns(&f.empty_ns)?;
        if let Some(p) = &o.parent_path {
            if Path::new(p).is_absolute() {
                return Err(Error::Other("--parent-path must be relative".into()));
            }
            let real = f.image_path.join(p);
            if !real.is_dir() {
                return Err(Error::Other(format!(
                    "invalid --parent-path: {}: not a directory",
                    real.display()
                )));
            }
        }
        let dirs = Dirs::open(f, true, "dump.log")?;
        let mut opts = dirs.opts(f, "dump.log")?;
        opts.pid = Some(rec.pid);
        opts.root = Some(rec.rootfs.clone());
        opts.leave_running = o.leave_running;
        opts.page_server = page_server;
        opts.config_file = config_file(&bundle);
        opts.freeze_cgroup = rec
            .freezer
            .as_ref()
            .and_then(|f| f.parent())
            .map(Path::to_path_buf);
        if let Some(p) = &o.parent_path {
            opts.parent_img = Some(p.clone());
            opts.track_mem = true;
        }
        opts.track_mem |= o.pre_dump;
        for (name, path) in joined_namespaces(&bundle) {
            if name == "net" || name == "pid" {
                let st = nix::sys::stat::stat(&path)
                    .ctx(|| format!("stat namespace {}", path.display()))?;
                opts.external
                    .push(format!("{name}[{}]:{}", st.st_ino, ext_key(name)));
            }
        }
        if !o.pre_dump {
            for (dest, _) in bind_mounts(&bundle) {
                opts.ext_mnt.push((dest.clone(), dest));
            }
            // A masked file is /dev/null bound over it (a directory is a
            // read-only tmpfs, which CRIU dumps itself).
            let linux = bundle.spec.linux().as_ref();
            for p in linux
                .and_then(|l| l.masked_paths().as_ref())
                .into_iter()
                .flatten()
            {
                let inside = format!("/proc/{}/root{}", rec.pid, p);
                if std::fs::metadata(&inside).is_ok_and(|m| !m.is_dir()) {
                    opts.ext_mnt.push((p.clone(), "/dev/null".into()));
                }
            }
            for d in device_paths(&bundle) {
                opts.ext_mnt.push((d.clone(), d));
            }
            let fds: Vec<String> = (0..3)
                .map(|n| {
                    std::fs::read_link(format!("/proc/{}/fd/{n}", rec.pid))
                        .map(|p| p.to_string_lossy().into_owned())
                        .unwrap_or_else(|_| "/dev/null".into())
                })
                .collect();
            let path = f.image_path.join(DESCRIPTORS);
            std::fs::write(&path, serde_json::to_vec(&fds).expect("strings"))
                .map_err(|e| Error::io("cannot write", &path, e))?;
        }
        let kind = if o.pre_dump {
            ReqType::PreDump
        } else {
            ReqType::Dump
        };
        crate::error::debug(|| format!("checkpoint {id}: criu {kind:?} of {}", rec.pid));
        let status_fd = o.status_fd;
        Swrk::start(&[], [None, None, None])?.call(kind, &opts, &dirs.log, |n| {
            status_ready(&n, status_fd);
            Ok(())
        })?;
        if !(o.leave_running || o.pre_dump) {
            // CRIU killed the processes: the container goes as with
            // `delete --force` (cgroups, state, poststop hooks).
            drop(lock);
            self.delete(id, true)?;
        }
        Ok(())
    }

    /// `restore`: a new container `o.create.id` from the bundle's config
    /// and the checkpoint in the image directory. Returns the exit status
    /// in the foreground (the container is deleted then), else 0.
    pub fn restore(&self, o: &RestoreOpts) -> Result<i32> {
        let c = &o.create;
        state::validate_id(&c.id)?;
        let bundle = spec::load_bundle(&c.bundle)?;
        let f = &o.criu;
        criu::cg_mode(&f.manage_cgroups_mode)?;
        empty_ns(&f.empty_ns)?;
        // The image directory is checked before the ID is claimed.
        let dirs = Dirs::open(f, false, "restore.log")?;
        let path = f.image_path.join(DESCRIPTORS);
        let stdio: Vec<String> = std::fs::read(&path)
            .map_err(|e| Error::io("not a checkpoint: cannot read", &path, e))
            .and_then(|b| {
                serde_json::from_slice(&b).map_err(|e| Error::Config {
                    path: path.clone(),
                    msg: format!("not a checkpoint's descriptors: {e}"),
                })
            })?;
        if joined_namespaces(&bundle)
            .iter()
            .any(|(n, _)| *n == "cgroup")
        {
            return Err(Error::invalid(
                "linux.namespaces",
                "CRIU cannot restore into an existing cgroup namespace",
            ));
        }
        let linux = bundle.spec.linux().as_ref();
        let ns = Plan::new(linux.and_then(|l| l.namespaces().as_deref()).unwrap_or(&[]))?;
        let terminal = bundle
            .spec
            .process()
            .as_ref()
            .and_then(|p| p.terminal())
            .unwrap_or(false);
        let console = Console::open(c.console_socket.as_deref(), terminal, !c.foreground)?;
        let (cgroup, shared_parent) = plan_cgroup(c, linux)?;
        let (dir, lock) = self.store.claim(&c.id)?;
        let mut rec = new_record(c, &bundle, &cgroup, shared_parent, &ns);
        let root = dir.join("criu-root");
        let restored = self.store.save(&rec).and_then(|_| {
            self.restore_in(
                o, &bundle, &cgroup, &dirs, &stdio, &root, &console, &mut rec,
            )
        });
        if root.exists() {
            let _ = umount2(&root, MntFlags::MNT_DETACH);
            let _ = std::fs::remove_dir(&root);
        }
        let restored = restored.and_then(|()| {
            if let Some(p) = &c.pid_file {
                process::write_pid_file(p, rec.pid)?;
            }
            Ok(())
        });
        if let Err(e) = restored {
            // CRIU kills what it restored when it fails; after it, the
            // init (and its pid namespace) goes. The cgroup is emptied
            // only when berth made it: another container may share it.
            if rec.pid > 0 {
                process::kill_and_reap(rec.pid, true);
            }
            if !rec.own_pidns && !rec.cgroups.is_empty() {
                cgroups::kill_all(&rec.leaves);
            }
            self.cleanup(&rec);
            return Err(e);
        }
        drop(lock);
        if !c.foreground {
            return Ok(0);
        }
        let set = process::forwarded_signals();
        process::block(&set);
        let code = match console.master()? {
            Some(m) => crate::process::tty::relay(rec.pid, &m, &set),
            None => process::wait_forwarding(rec.pid, &set),
        };
        let _ = self.delete(&c.id, true);
        Ok(code)
    }

    /// The part of `restore` after the claim; `rec` gets the pid.
    #[allow(clippy::too_many_arguments)]
    fn restore_in(
        &self,
        o: &RestoreOpts,
        bundle: &Bundle,
        cgroup: &cgroups::Cgroup,
        dirs: &Dirs,
        stdio: &[String],
        root: &Path,
        console: &Console,
        rec: &mut Record,
    ) -> Result<()> {
        let c = &o.create;
        let linux = bundle.spec.linux().as_ref();
        let res = linux.and_then(|l| l.resources().as_ref());
        cgroup.create(res)?;
        std::fs::create_dir(root).map_err(|e| Error::io("cannot create", root, e))?;
        mount(
            Some(&bundle.rootfs),
            root,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .ctx(|| format!("bind {} for criu", bundle.rootfs.display()))?;
        make_mount_points(bundle)?;

        let mut opts = dirs.opts(&o.criu, "restore.log")?;
        opts.root = Some(root.to_path_buf());
        opts.rst_sibling = true;
        opts.evasive_devices = true;
        opts.config_file = config_file(bundle);
        opts.ext_mnt = bind_mounts(bundle);
        if linux
            .and_then(|l| l.masked_paths().as_ref())
            .is_some_and(|m| !m.is_empty())
        {
            opts.ext_mnt.push(("/dev/null".into(), "/dev/null".into()));
        }
        for d in device_paths(bundle) {
            opts.ext_mnt.push((d.clone(), d));
        }
        // The init's stdio that were pipes are CRIU's (berth's) stdio.
        for (n, s) in stdio.iter().enumerate().take(3) {
            if s.contains("pipe:") {
                opts.inherit_fd.push((s.clone(), n as i32));
            }
        }
        let mut extra = Vec::new();
        for (name, path) in joined_namespaces(bundle) {
            if name == "net" || name == "pid" {
                let f = std::fs::File::open(&path).map_err(|e| {
                    Error::io("the namespace to restore into is missing:", &path, e)
                })?;
                opts.inherit_fd
                    .push((ext_key(name).into(), 4 + extra.len() as i32));
                extra.push(OwnedFd::from(f));
            } else {
                opts.join_ns
                    .push((name.into(), path.to_string_lossy().into_owned()));
            }
        }
        let raw: Vec<i32> = extra.iter().map(|f| f.as_raw_fd()).collect();
        let swrk = Swrk::start(&raw, [None, None, None])?;
        drop(extra);
        let criu_pid = swrk.pid();
        // CRIU restores into its own cgroup: the container's.
        let placed = cgroup.place(
            process::Cloned {
                pid: criu_pid,
                in_cgroup: false,
            },
            &c.id,
            res,
            None,
            linux,
            bundle.spec.annotations().as_ref(),
        );
        let placed = match placed {
            Ok(p) => p,
            Err(e) => {
                swrk.abort();
                return Err(e);
            }
        };
        if let Some(leaf) = &placed {
            rec.freezer = Some(leaf.join("cgroup.freeze"));
            rec.leaves = vec![leaf.clone()];
        }
        opts.cg_root = cgroup_roots(criu_pid);
        let hooks = bundle.spec.hooks().clone();
        let store = &self.store;
        let done = swrk.call(ReqType::Restore, &opts, &dirs.log, |n: Notify| {
            match n.script.as_str() {
                "setup-namespaces" => {
                    let mut r = rec.clone();
                    r.pid = n.pid;
                    let doc = || state::state_doc(&r, Status::Creating).to_string();
                    let h = hooks.as_ref();
                    crate::hooks::run_all("prestart", h.and_then(|h| h.prestart().as_ref()), doc)?;
                    crate::hooks::run_all(
                        "createRuntime",
                        h.and_then(|h| h.create_runtime().as_ref()),
                        doc,
                    )?;
                }
                "post-restore" => {
                    rec.pid = n.pid;
                    rec.pid_start = process::proc_stat(n.pid).map_or(0, |s| s.1);
                    rec.created = crate::util::rfc3339_now();
                    store.save(rec)?;
                }
                "orphan-pts-master" => {
                    let (Some(fd), Some(sock)) = (&n.fd, &console.child) else {
                        return Err(Error::Other(
                            "criu sent a terminal but there is no console socket".into(),
                        ));
                    };
                    crate::process::channel::send_with_fd(sock, b"/dev/ptmx", fd)
                        .ctx(|| "send the pty master to the console socket".into())?;
                }
                _ => {}
            }
            Ok(())
        })?;
        if let Some(pid) = done.restored_pid.filter(|p| *p > 0 && rec.pid == 0) {
            rec.pid = pid;
            rec.pid_start = process::proc_stat(pid).map_or(0, |s| s.1);
        }
        if rec.pid <= 0 {
            return Err(Error::Other("criu restored no process".into()));
        }
        if !c.rootless {
            if let Some(rules) = crate::cgroups::devices::rules(linux)? {
                cgroup.restrict_devices(placed.as_deref(), &rules)?;
            }
        }
        self.store.save(rec)?;
        crate::error::debug(|| format!("restore {}: init {} restored", c.id, rec.pid));
        Ok(())
    }
}

/// `--status-fd` of a lazy-pages checkpoint: a NUL once CRIU says so.
fn status_ready(n: &Notify, fd: Option<i32>) {
    if n.script == "status-ready" {
        if let Some(fd) = fd {
            // SAFETY: the caller handed this fd to berth for this write.
            let f = unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(fd) };
            let _ = std::io::Write::write_all(&mut &f, &[0]);
        }
    }
}

/// CRIU's `cg_root`s: each hierarchy of /proc/PID/cgroup (the container's
/// cgroup, where CRIU was put) as (controllers, path).
fn cgroup_roots(pid: i32) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let mut p = l.splitn(3, ':');
            let (_, ctrl, path) = (p.next()?, p.next()?, p.next()?);
            Some((ctrl.to_string(), path.to_string()))
        })
        .collect()
}

/// Makes the mount points of the config's mounts in the rootfs, as create
/// would (CRIU mounts on them but does not make them), except below a
/// tmpfs mount, whose content CRIU restores itself.
fn make_mount_points(bundle: &Bundle) -> Result<()> {
    use crate::fs::resolve::{mkdir_all_in_root, mkfile_in_root};
    let mounts: Vec<_> = bundle.spec.mounts().iter().flatten().collect();
    let tmpfs: Vec<&Path> = mounts
        .iter()
        .filter(|m| m.typ().as_deref() == Some("tmpfs"))
        .map(|m| m.destination().as_path())
        .collect();
    let rootfd = open_dir(&bundle.rootfs, "cannot open rootfs")?;
    let binds = bind_mounts(bundle);
    for m in &mounts {
        let dest = m.destination();
        if m.typ().as_deref() == Some("cgroup")
            || tmpfs.iter().any(|t| dest != *t && dest.starts_with(t))
        {
            continue;
        }
        // A bind mount of a file needs a file to mount on.
        let src_is_file = binds.iter().any(|(d, src)| {
            Path::new(d) == dest && std::fs::metadata(src).is_ok_and(|md| !md.is_dir())
        });
        let made = if src_is_file {
            mkfile_in_root(&rootfd, dest)
        } else {
            mkdir_all_in_root(&rootfd, dest)
        };
        made.ctx(|| format!("create the mount point {} for criu", dest.display()))?;
    }
    Ok(())
}
