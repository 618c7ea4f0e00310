//! Mount options (config.md "Mounts", mount(8) names) and the rootfs set-up
//! the container init performs in its new mount namespace: propagation, the
//! rootfs bind, every `mounts` entry, devices, then pivot_root(2).

use crate::cgroups::devices::DEFAULT_DEVICES;
use crate::cgroups::Cgroup;
use crate::error::{Error, Result, SysCtx};
use crate::fs::resolve::{mkdir_all_in_root, mkfile_in_root, open_in_root};
use nix::fcntl::OFlag;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::{makedev, mknodat, Mode, SFlag};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType, Mount, Spec};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

/// Parsed mount options.
#[derive(Debug, PartialEq, Eq)]
pub struct Opts {
    pub flags: MsFlags,
    /// Propagation changes applied after the mount (MS_SHARED, ...).
    pub prop: MsFlags,
    /// Options passed to the filesystem as data (mode=755, size=...).
    pub data: Vec<String>,
    /// Recursive attributes (`rro`, `rnosuid`, ...): MOUNT_ATTR_* bits
    /// set and cleared on the mount and every submount (mount_setattr(2)
    /// with AT_RECURSIVE).
    pub rec_set: u64,
    pub rec_clr: u64,
    /// `idmap` (false) or `ridmap` (true).
    pub idmap: Option<bool>,
    /// `tmpcopyup`: the tmpfs starts with what was at its destination.
    pub tmpcopyup: bool,
}

/// Every option `parse_options` knows (what `features` reports).
pub const MOUNT_OPTIONS: &[&str] = &[
    "async",
    "atime",
    "bind",
    "defaults",
    "dev",
    "diratime",
    "dirsync",
    "exec",
    "idmap",
    "iversion",
    "lazytime",
    "loud",
    "mand",
    "noatime",
    "nodev",
    "nodiratime",
    "noexec",
    "noiversion",
    "nolazytime",
    "nomand",
    "norelatime",
    "nostrictatime",
    "nosuid",
    "nosymfollow",
    "private",
    "ratime",
    "rbind",
    "rdev",
    "rdiratime",
    "relatime",
    "remount",
    "rexec",
    "ridmap",
    "rnoatime",
    "rnodev",
    "rnodiratime",
    "rnoexec",
    "rnorelatime",
    "rnostrictatime",
    "rnosuid",
    "rnosymfollow",
    "ro",
    "rprivate",
    "rrelatime",
    "rro",
    "rrw",
    "rshared",
    "rslave",
    "rstrictatime",
    "rsuid",
    "rsymfollow",
    "runbindable",
    "rw",
    "shared",
    "silent",
    "slave",
    "strictatime",
    "suid",
    "symfollow",
    "sync",
    "tmpcopyup",
    "unbindable",
];

/// MS_NOSYMFOLLOW (Linux 5.10), which nix does not name.
const MS_NOSYMFOLLOW: MsFlags = MsFlags::from_bits_retain(256);

/// The recursive option `name` as (set, clear) MOUNT_ATTR_* bits.
fn recursive(name: &str) -> Option<(u64, u64)> {
    use crate::fs::newmount::attr::*;
    Some(match name {
        "rro" => (RDONLY, 0),
        "rrw" => (0, RDONLY),
        "rnosuid" => (NOSUID, 0),
        "rsuid" => (0, NOSUID),
        "rnodev" => (NODEV, 0),
        "rdev" => (0, NODEV),
        "rnoexec" => (NOEXEC, 0),
        "rexec" => (0, NOEXEC),
        "rnodiratime" => (NODIRATIME, 0),
        "rdiratime" => (0, NODIRATIME),
        "rnosymfollow" => (NOSYMFOLLOW, 0),
        "rsymfollow" => (0, NOSYMFOLLOW),
        // The access-time mode is one field: cleared, then set.
        "rnoatime" => (NOATIME, ATIME),
        "rstrictatime" | "rnorelatime" => (STRICTATIME, ATIME),
        "rrelatime" | "ratime" | "rnostrictatime" => (RELATIME, ATIME),
        _ => return None,
    })
}

/// Splits mount(8)-style options into flags, propagation, recursive
/// attributes, berth's own options and data.
pub fn parse_options(opts: &[String]) -> Opts {
    let mut o = Opts {
        flags: MsFlags::empty(),
        prop: MsFlags::empty(),
        data: Vec::new(),
        rec_set: 0,
        rec_clr: 0,
        idmap: None,
        tmpcopyup: false,
    };
    for opt in opts {
        let (set, clear) = match opt.as_str() {
            "defaults" => continue,
            "ro" => (MsFlags::MS_RDONLY, MsFlags::empty()),
            "rw" => (MsFlags::empty(), MsFlags::MS_RDONLY),
            "nosuid" => (MsFlags::MS_NOSUID, MsFlags::empty()),
            "suid" => (MsFlags::empty(), MsFlags::MS_NOSUID),
            "nodev" => (MsFlags::MS_NODEV, MsFlags::empty()),
            "dev" => (MsFlags::empty(), MsFlags::MS_NODEV),
            "noexec" => (MsFlags::MS_NOEXEC, MsFlags::empty()),
            "exec" => (MsFlags::empty(), MsFlags::MS_NOEXEC),
            "sync" => (MsFlags::MS_SYNCHRONOUS, MsFlags::empty()),
            "async" => (MsFlags::empty(), MsFlags::MS_SYNCHRONOUS),
            "dirsync" => (MsFlags::MS_DIRSYNC, MsFlags::empty()),
            "remount" => (MsFlags::MS_REMOUNT, MsFlags::empty()),
            "mand" => (MsFlags::MS_MANDLOCK, MsFlags::empty()),
            "nomand" => (MsFlags::empty(), MsFlags::MS_MANDLOCK),
            "atime" => (MsFlags::empty(), MsFlags::MS_NOATIME),
            "noatime" => (MsFlags::MS_NOATIME, MsFlags::empty()),
            "diratime" => (MsFlags::empty(), MsFlags::MS_NODIRATIME),
            "nodiratime" => (MsFlags::MS_NODIRATIME, MsFlags::empty()),
            "bind" => (MsFlags::MS_BIND, MsFlags::empty()),
            "rbind" => (MsFlags::MS_BIND | MsFlags::MS_REC, MsFlags::empty()),
            "relatime" => (MsFlags::MS_RELATIME, MsFlags::empty()),
            "norelatime" => (MsFlags::empty(), MsFlags::MS_RELATIME),
            "strictatime" => (MsFlags::MS_STRICTATIME, MsFlags::empty()),
            "nostrictatime" => (MsFlags::empty(), MsFlags::MS_STRICTATIME),
            "lazytime" => (MsFlags::MS_LAZYTIME, MsFlags::empty()),
            "nolazytime" => (MsFlags::empty(), MsFlags::MS_LAZYTIME),
            "iversion" => (MsFlags::MS_I_VERSION, MsFlags::empty()),
            "noiversion" => (MsFlags::empty(), MsFlags::MS_I_VERSION),
            "nosymfollow" => (MS_NOSYMFOLLOW, MsFlags::empty()),
            "symfollow" => (MsFlags::empty(), MS_NOSYMFOLLOW),
            "silent" => (MsFlags::MS_SILENT, MsFlags::empty()),
            "loud" => (MsFlags::empty(), MsFlags::MS_SILENT),
            "private" | "rprivate" | "shared" | "rshared" | "slave" | "rslave" | "unbindable"
            | "runbindable" => {
                o.prop |= propagation(opt).unwrap_or(MsFlags::empty());
                continue;
            }
            "tmpcopyup" => {
                o.tmpcopyup = true;
                continue;
            }
            "idmap" | "ridmap" => {
                o.idmap = Some(opt == "ridmap");
                continue;
            }
            other => {
                match recursive(other) {
                    Some((set, clr)) => {
                        o.rec_set = (o.rec_set & !clr) | set;
                        o.rec_clr = (o.rec_clr & !set) | clr;
                    }
                    None => o.data.push(opt.clone()),
                }
                continue;
            }
        };
        o.flags = (o.flags | set) & !clear;
    }
    o
}

/// Checks what `create` would only find out half way: options a mount
/// cannot honour (config.md "Linux mount options": an option berth does
/// not apply is an error, never silently dropped) and idmap settings.
pub fn check(spec: &Spec) -> std::result::Result<(), String> {
    let linux = spec.linux().as_ref();
    let userns_maps = linux
        .and_then(|l| l.uid_mappings().as_ref())
        .is_some_and(|m| !m.is_empty());
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        let field = format!("mounts[{i}] {}", m.destination().display());
        let o = parse_options(m.options().as_deref().unwrap_or(&[]));
        let typ = m.typ().as_deref().unwrap_or("");
        let bind = o.flags.contains(MsFlags::MS_BIND);
        if bind {
            // A bind mount takes no filesystem data: the kernel would
            // ignore it, so it would silently not happen.
            if let Some(d) = o.data.first() {
                return Err(format!(
                    "{field}: option {d:?} is not supported for a bind mount"
                ));
            }
        }
        if o.tmpcopyup && typ != "tmpfs" {
            return Err(format!(
                "{field}: tmpcopyup is only for tmpfs mounts, not {typ:?}"
            ));
        }
        let (uids, gids) = (m.uid_mappings().as_ref(), m.gid_mappings().as_ref());
        if uids.is_some() != gids.is_some() {
            return Err(format!(
                "{field}: uidMappings and gidMappings must be given together"
            ));
        }
        if o.idmap.is_some() || uids.is_some() {
            if !bind {
                return Err(format!(
                    "{field}: idmapped mounts (idmap, ridmap, uidMappings) are only for bind mounts"
                ));
            }
            if uids.is_none() && !userns_maps {
                return Err(format!(
                    "{field}: idmap needs uidMappings and gidMappings, or a user namespace to take them from"
                ));
            }
        }
    }
    Ok(())
}

/// Propagation names as `rootfsPropagation` and mount options take them.
pub fn propagation(name: &str) -> Option<MsFlags> {
    let rec = MsFlags::MS_REC;
    Some(match name {
        "private" => MsFlags::MS_PRIVATE,
        "rprivate" => MsFlags::MS_PRIVATE | rec,
        "shared" => MsFlags::MS_SHARED,
        "rshared" => MsFlags::MS_SHARED | rec,
        "slave" => MsFlags::MS_SLAVE,
        "rslave" => MsFlags::MS_SLAVE | rec,
        "unbindable" => MsFlags::MS_UNBINDABLE,
        "runbindable" => MsFlags::MS_UNBINDABLE | rec,
        _ => return None,
    })
}

/// The magic-link path of an fd, to mount onto what it resolved to.
fn fdpath(fd: &impl AsRawFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// What the init needs to build the rootfs.
pub struct RootfsCtx<'a> {
    pub spec: &'a Spec,
    pub bundle: &'a Path,
    pub rootfs: &'a Path,
    pub cgroup: &'a Cgroup,
    pub in_userns: bool,
    pub new_cgroupns: bool,
    /// Idmapped trees the parent made (`idmap.rs`), by mount index.
    pub idmapped: &'a [(usize, OwnedFd)],
}

/// Builds the container's rootfs in the (new) mount namespace and pivots
/// into it. On return, `/` is the container's root.
/// `before_pivot` runs once the mounts are made (the create-phase hooks).
pub fn prepare_rootfs(
    ctx: &RootfsCtx,
    no_pivot: bool,
    before_pivot: &mut dyn FnMut() -> Result<()>,
) -> Result<()> {
    let linux = ctx.spec.linux().as_ref();
    let requested = match linux.and_then(|l| l.rootfs_propagation().as_deref()) {
        Some(p) => {
            Some(propagation(p).ok_or_else(|| Error::invalid("linux.rootfsPropagation", p))?)
        }
        None => None,
    };
    // Before the pivot, `/` takes the requested propagation (so that a
    // shared one keeps the host's peer groups, for bidirectional mounts),
    // by default rslave: our mounts never propagate to the host
    // (runtime-linux.md). An unbindable one would make the rootfs itself
    // unbindable: rprivate until after the pivot.
    let before = match requested {
        None => MsFlags::MS_SLAVE | MsFlags::MS_REC,
        Some(p) if p.contains(MsFlags::MS_UNBINDABLE) => MsFlags::MS_PRIVATE | MsFlags::MS_REC,
        Some(p) => p,
    };
    mount(None::<&str>, "/", None::<&str>, before, None::<&str>)
        .ctx(|| "set the propagation of /".into())?;
    // A shared parent mount of the rootfs would make the rootfs bind a peer
    // of the host's (its mounts would propagate out, and pivot_root(2)
    // refuses it): with a shared or non-recursive propagation (which
    // leaves the parent as the host has it) it is made private.
    if before.contains(MsFlags::MS_SHARED) || !before.contains(MsFlags::MS_REC) {
        private_parent(ctx.rootfs)?;
    }
    mount(
        Some(ctx.rootfs),
        ctx.rootfs,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .ctx(|| format!("bind rootfs {}", ctx.rootfs.display()))?;
    let root = nix::fcntl::open(
        ctx.rootfs,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| format!("open rootfs {}", ctx.rootfs.display()))?;

    let root_proc = std::fs::read_link(fdpath(&root))
        .map_err(|e| Error::io("readlink", ctx.rootfs, e))?
        .join("proc");
    for (i, m) in ctx.spec.mounts().iter().flatten().enumerate() {
        let tree = ctx.idmapped.iter().find(|(n, _)| *n == i).map(|(_, t)| t);
        mount_one(ctx, &root, &root_proc, m, tree)
            .map_err(|e| Error::Other(format!("mounts[{i}] {}: {e}", m.destination().display())))?;
    }
    create_devices(ctx, &root)?;

    before_pivot()?;
    if no_pivot {
        nix::unistd::chdir(ctx.rootfs).ctx(|| "chdir rootfs".into())?;
        mount(Some("."), "/", None::<&str>, MsFlags::MS_MOVE, None::<&str>)
            .ctx(|| "move rootfs to /".into())?;
        nix::unistd::chroot(".").ctx(|| "chroot".into())?;
    } else {
        pivot(&root)?;
    }
    nix::unistd::chdir("/").ctx(|| "chdir /".into())?;
    Ok(())
}

/// The container's root gets the requested `rootfsPropagation` once it
/// is `/` and every mount is made (masks and read-only paths are binds,
/// which an unbindable tree refuses); private it is already.
pub fn apply_root_propagation(spec: &Spec) -> Result<()> {
    let p = spec
        .linux()
        .as_ref()
        .and_then(|l| l.rootfs_propagation().as_deref())
        .and_then(propagation);
    if let Some(p) = p.filter(|p| !p.contains(MsFlags::MS_PRIVATE)) {
        mount(None::<&str>, "/", None::<&str>, p, None::<&str>)
            .ctx(|| "linux.rootfsPropagation: set the propagation of /".into())?;
    }
    Ok(())
}

/// Makes the mount the rootfs lies on private when it is shared (this
/// mount namespace's copy only): pivot_root(2) refuses a new root whose
/// parent mount is shared, and the rootfs bind must not propagate to the
/// host's peers.
fn private_parent(rootfs: &Path) -> Result<()> {
    let mounts = crate::fs::mountinfo::read()?;
    let rootfs = std::fs::canonicalize(rootfs).map_err(|e| Error::io("rootfs", rootfs, e))?;
    let Some(parent) = crate::fs::mountinfo::containing(&mounts, &rootfs).filter(|m| m.shared())
    else {
        return Ok(());
    };
    let p = &parent.mount_point;
    mount(
        None::<&str>,
        p,
        None::<&str>,
        MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .ctx(|| format!("make {} private", p.display()))
}

/// pivot_root(".", ".") inside the new root, then detach the old root that
/// is stacked on top of it (no put_old directory needed).
fn pivot(root: &OwnedFd) -> Result<()> {
    // The old root, to find it again once it is stacked on the new one:
    // "." after the pivot is the new root (mount(2) does not cross to the
    // mount on top), and making that rslave would cut every container
    // mount from its peers (bidirectional propagation).
    let old = nix::fcntl::open(
        "/",
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| "open /".into())?;
    nix::unistd::fchdir(root).ctx(|| "fchdir rootfs".into())?;
    nix::unistd::pivot_root(".", ".").ctx(|| "pivot_root".into())?;
    nix::unistd::fchdir(&old).ctx(|| "fchdir old root".into())?;
    // Keep the unmount of the old root from reaching the host.
    mount(
        None::<&str>,
        ".",
        None::<&str>,
        MsFlags::MS_SLAVE | MsFlags::MS_REC,
        None::<&str>,
    )
    .ctx(|| "make old root slave".into())?;
    umount2(".", MntFlags::MNT_DETACH).ctx(|| "detach old root".into())?;
    Ok(())
}

/// `root_proc`: the resolved host path of the rootfs's `/proc`.
fn mount_one(
    ctx: &RootfsCtx,
    root: &OwnedFd,
    root_proc: &Path,
    m: &Mount,
    idmapped: Option<&OwnedFd>,
) -> Result<()> {
    let o = parse_options(m.options().as_deref().unwrap_or(&[]));
    let typ = m.typ().as_deref().unwrap_or("");
    let dest = m.destination();
    if typ == "cgroup" || typ == "cgroup2" {
        return mount_cgroup(ctx, root, dest, &o);
    }
    let bind = o.flags.contains(MsFlags::MS_BIND);
    let source = m.source().clone().unwrap_or_default();
    let source = if bind && source.is_relative() {
        ctx.bundle.join(source)
    } else {
        source
    };
    let target = if bind && !source.is_dir() {
        if !source.exists() {
            return Err(Error::Other(format!(
                "bind source {} does not exist",
                source.display()
            )));
        }
        mkfile_in_root(root, dest)
    } else {
        mkdir_all_in_root(root, dest)
    }
    .ctx(|| "resolve destination in rootfs".into())?;
    check_proc_destination(root_proc, &target, typ)?;
    let mut data = o.data.join(",");
    // linux.mountLabel labels what the container's own filesystems hold.
    if let Some(label) = ctx
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.mount_label().as_deref())
    {
        if !bind
            && !label.is_empty()
            && matches!(typ, "tmpfs" | "devpts" | "mqueue")
            && crate::security::selinux_enabled()
        {
            let sep = if data.is_empty() { "" } else { "," };
            data = format!("{data}{sep}context=\"{label}\"");
        }
    }
    let data = (!data.is_empty()).then_some(data.as_str());
    let reopen = || open_in_root(root, dest, OFlag::O_PATH).ctx(|| "reopen target".into());
    if bind {
        match idmapped {
            Some(tree) => crate::fs::newmount::move_onto(tree, &target)?,
            None => mount(
                Some(&source),
                &fdpath(&target),
                None::<&str>,
                o.flags & (MsFlags::MS_BIND | MsFlags::MS_REC),
                None::<&str>,
            )
            .ctx(|| format!("bind {}", source.display()))?,
        }
        let extra = o.flags & !(MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_REMOUNT);
        if !extra.is_empty() {
            remount_bind(&fdpath(&reopen()?), extra)?;
        }
    } else {
        let src = if source.as_os_str().is_empty() {
            PathBuf::from(typ)
        } else {
            source
        };
        // tmpcopyup: what is at the destination now, to copy in.
        let below = if o.tmpcopyup {
            Some(open_dir(&target)?)
        } else {
            None
        };
        let flags = if below.is_some() {
            o.flags & !MsFlags::MS_RDONLY
        } else {
            o.flags
        };
        match mount(Some(&src), &fdpath(&target), Some(typ), flags, data) {
            Ok(()) => {}
            // sysfs belongs to a network namespace: in a user namespace
            // that does not own the container's (rootless with the host's
            // network), the host's /sys is bound read-only instead, as
            // rootless podman configures it.
            Err(nix::errno::Errno::EPERM) if typ == "sysfs" && ctx.in_userns => {
                mount(
                    Some("/sys"),
                    &fdpath(&target),
                    None::<&str>,
                    MsFlags::MS_BIND | MsFlags::MS_REC,
                    None::<&str>,
                )
                .ctx(|| "bind /sys for sysfs".into())?;
                remount_bind(&fdpath(&reopen()?), flags | MsFlags::MS_RDONLY)?;
            }
            Err(e) => return Err(e).ctx(|| format!("mount {typ}")),
        }
        if let Some(below) = below {
            let top = open_dir(&reopen()?)?;
            crate::fs::tree::copy(&below, &top).ctx(|| "tmpcopyup".into())?;
            if o.flags.contains(MsFlags::MS_RDONLY) {
                let f = MsFlags::MS_REMOUNT | o.flags;
                mount(None::<&str>, &fdpath(&reopen()?), None::<&str>, f, data)
                    .ctx(|| "remount read-only".into())?;
            }
        }
    }
    if o.rec_set != 0 || o.rec_clr != 0 {
        crate::fs::newmount::setattr(&reopen()?, o.rec_set, o.rec_clr, None, true)
            .map_err(|e| Error::Other(format!("recursive mount options: {e}")))?;
    }
    if !o.prop.is_empty() {
        mount(
            None::<&str>,
            &fdpath(&reopen()?),
            None::<&str>,
            o.prop,
            None::<&str>,
        )
        .ctx(|| "set propagation".into())?;
    }
    Ok(())
}

/// A directory fd of what an O_PATH fd refers to.
fn open_dir(fd: &OwnedFd) -> Result<OwnedFd> {
    nix::fcntl::openat(
        fd,
        ".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| "open mount target".into())
}

/// The procfs files a mount may cover (lxcfs-style overlays), as runc
/// allows them; anything else under /proc is refused.
const PROC_ALLOWED: &[&str] = &[
    "cpuinfo",
    "diskstats",
    "meminfo",
    "stat",
    "swaps",
    "uptime",
    "loadavg",
    "slabinfo",
    "net/dev",
    "sys/kernel/ns_last_pid",
];

/// Refuses a mount whose destination resolves into the container's /proc
/// (after symlinks): /proc itself takes only a `proc` mount, and below it
/// only [`PROC_ALLOWED`]. A mount over a procfs file would redirect what
/// berth or the container writes there (CVE-2025-52881).
fn check_proc_destination(root_proc: &Path, target: &OwnedFd, typ: &str) -> Result<()> {
    let t = std::fs::read_link(fdpath(target)).map_err(|e| Error::io("readlink", "target", e))?;
    let Ok(rel) = t.strip_prefix(root_proc) else {
        return Ok(());
    };
    let rel = rel.to_string_lossy();
    let ok = if rel.is_empty() {
        typ == "proc"
    } else {
        PROC_ALLOWED.contains(&rel.as_ref())
    };
    if ok {
        Ok(())
    } else {
        Err(Error::Other(format!(
            "destination resolves to /proc/{rel}: only a proc mount on /proc and {} may be mounted there",
            PROC_ALLOWED.join(", ")
        )))
    }
}

/// Remounts a bind mount with `flags`; in a user namespace the flags the
/// kernel locked on the source (nosuid, nodev, ...) must be kept.
fn remount_bind(target: &Path, flags: MsFlags) -> Result<()> {
    let base = MsFlags::MS_BIND | MsFlags::MS_REMOUNT;
    match mount(
        None::<&str>,
        target,
        None::<&str>,
        base | flags,
        None::<&str>,
    ) {
        Err(nix::errno::Errno::EPERM) => {
            let st = nix::sys::statvfs::statvfs(target).ctx(|| "statvfs".into())?;
            use nix::sys::statvfs::FsFlags as F;
            let mut locked = MsFlags::empty();
            for (f, m) in [
                (F::ST_NOSUID, MsFlags::MS_NOSUID),
                (F::ST_NODEV, MsFlags::MS_NODEV),
                (F::ST_NOEXEC, MsFlags::MS_NOEXEC),
                (F::ST_RDONLY, MsFlags::MS_RDONLY),
                (F::ST_NOATIME, MsFlags::MS_NOATIME),
                (F::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
                (F::ST_RELATIME, MsFlags::MS_RELATIME),
            ] {
                if st.flags().contains(f) {
                    locked |= m;
                }
            }
            mount(
                None::<&str>,
                target,
                None::<&str>,
                base | flags | locked,
                None::<&str>,
            )
            .ctx(|| "remount bind".into())
        }
        r => r.ctx(|| "remount bind".into()),
    }
}

/// The `cgroup` mount: cgroup2 on a unified host, otherwise a tmpfs with one
/// directory per hierarchy. With a cgroup namespace the real filesystems are
/// mounted (the namespace makes the container's cgroup their root); without
/// one, the container's own cgroup directories are bound.
fn mount_cgroup(ctx: &RootfsCtx, root: &OwnedFd, dest: &Path, o: &Opts) -> Result<()> {
    let flags = o.flags & !(MsFlags::MS_BIND | MsFlags::MS_REC);
    let target = mkdir_all_in_root(root, dest).ctx(|| "resolve destination in rootfs".into())?;
    if let Some(leaf) = ctx.cgroup.mount_unified_dir() {
        if ctx.new_cgroupns {
            // Read-only is the mount's, not the superblock's (which the
            // host has rw: asking for ro from a user namespace is EBUSY).
            match mount(
                Some("cgroup2"),
                &fdpath(&target),
                Some("cgroup2"),
                flags & !MsFlags::MS_RDONLY,
                None::<&str>,
            ) {
                Ok(()) => {
                    if flags.contains(MsFlags::MS_RDONLY) {
                        let t = open_in_root(root, dest, OFlag::O_PATH).ctx(|| "reopen".into())?;
                        remount_bind(&fdpath(&t), flags)?;
                    }
                    return Ok(());
                }
                // Some kernels refuse cgroup2 to a user namespace; the
                // namespace's root bound there is the same view (as runc
                // falls back).
                Err(nix::errno::Errno::EPERM | nix::errno::Errno::EBUSY) if ctx.in_userns => {}
                Err(e) => return Err(e).ctx(|| "mount cgroup2".into()),
            }
        }
        mount(
            Some(leaf),
            &fdpath(&target),
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .ctx(|| "bind cgroup".into())?;
        let t = open_in_root(root, dest, OFlag::O_PATH).ctx(|| "reopen".into())?;
        return remount_bind(&fdpath(&t), flags);
    }
    let tmp_flags = flags & !MsFlags::MS_RDONLY;
    mount(
        Some("tmpfs"),
        &fdpath(&target),
        Some("tmpfs"),
        tmp_flags,
        Some("mode=755"),
    )
    .ctx(|| "mount tmpfs for cgroups".into())?;
    for (h, leaf) in ctx.cgroup.mount_dirs() {
        let sub = dest.join(h.name());
        let t = mkdir_all_in_root(root, &sub).ctx(|| format!("mkdir {}", sub.display()))?;
        // cgroup v1 filesystems cannot be mounted in a user namespace.
        if ctx.new_cgroupns && (h.v2 || !ctx.in_userns) {
            let (fs, opts) = if h.v2 {
                ("cgroup2", String::new())
            } else {
                ("cgroup", h.controllers.join(","))
            };
            mount(
                Some("cgroup"),
                &fdpath(&t),
                Some(fs),
                flags & !MsFlags::MS_RDONLY,
                Some(opts.as_str()),
            )
            .ctx(|| format!("mount cgroup {}", h.name()))?;
            if flags.contains(MsFlags::MS_RDONLY) {
                let t = open_in_root(root, &sub, OFlag::O_PATH).ctx(|| "reopen".into())?;
                remount_bind(&fdpath(&t), flags)?;
            }
        } else {
            mount(
                Some(leaf),
                &fdpath(&t),
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
            .ctx(|| format!("bind cgroup {}", leaf.display()))?;
            let t = open_in_root(root, &sub, OFlag::O_PATH).ctx(|| "reopen".into())?;
            remount_bind(&fdpath(&t), flags)?;
        }
    }
    if flags.contains(MsFlags::MS_RDONLY) {
        let t = open_in_root(root, dest, OFlag::O_PATH).ctx(|| "reopen".into())?;
        mount(
            None::<&str>,
            &fdpath(&t),
            None::<&str>,
            MsFlags::MS_REMOUNT | tmp_flags | MsFlags::MS_RDONLY,
            Some("mode=755"),
        )
        .ctx(|| "remount cgroup tmpfs ro".into())?;
    }
    Ok(())
}

fn create_devices(ctx: &RootfsCtx, root: &OwnedFd) -> Result<()> {
    for &(path, major, minor) in DEFAULT_DEVICES {
        let node = Node {
            path: Path::new(path),
            kind: SFlag::S_IFCHR,
            major,
            minor,
            mode: 0o666,
            uid: None,
            gid: None,
        };
        make_device(ctx, root, &node)?;
    }
    let devs: &[LinuxDevice] = ctx
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.devices().as_deref())
        .unwrap_or(&[]);
    for d in devs {
        let kind = match d.typ() {
            LinuxDeviceType::C | LinuxDeviceType::U => SFlag::S_IFCHR,
            LinuxDeviceType::B => SFlag::S_IFBLK,
            LinuxDeviceType::P => SFlag::S_IFIFO,
            LinuxDeviceType::A => {
                return Err(Error::invalid(
                    "linux.devices",
                    format!("{}: type a is not a device", d.path().display()),
                ))
            }
        };
        if !d.path().starts_with("/dev") {
            return Err(Error::invalid(
                "linux.devices",
                format!("{} is not under /dev", d.path().display()),
            ));
        }
        let node = Node {
            path: d.path(),
            kind,
            major: d.major() as u64,
            minor: d.minor() as u64,
            mode: d.file_mode().unwrap_or(0o666),
            uid: d.uid(),
            gid: d.gid(),
        };
        make_device(ctx, root, &node)?;
    }
    let dev = mkdir_all_in_root(root, Path::new("/dev")).ctx(|| "resolve /dev".into())?;
    let dev = nix::fcntl::openat(
        &dev,
        ".",
        OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| "open /dev".into())?;
    for (target, name) in [
        ("/proc/self/fd", "fd"),
        ("/proc/self/fd/0", "stdin"),
        ("/proc/self/fd/1", "stdout"),
        ("/proc/self/fd/2", "stderr"),
    ] {
        match nix::unistd::symlinkat(target, &dev, name) {
            Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
            Err(e) => return Err(Error::sys(format!("symlink /dev/{name}"), e)),
        }
    }
    // /dev/ptmx must be the devpts instance's ptmx (devpts(5) newinstance).
    let _ = nix::unistd::unlinkat(&dev, "ptmx", nix::unistd::UnlinkatFlags::NoRemoveDir);
    nix::unistd::symlinkat("pts/ptmx", &dev, "ptmx").ctx(|| "symlink /dev/ptmx".into())?;
    Ok(())
}

/// A device node to create in the container's /dev.
struct Node<'a> {
    path: &'a Path,
    kind: SFlag,
    major: u64,
    minor: u64,
    mode: u32,
    uid: Option<u32>,
    gid: Option<u32>,
}

fn make_device(ctx: &RootfsCtx, root: &OwnedFd, node: &Node) -> Result<()> {
    let Node {
        path,
        kind,
        major,
        minor,
        mode,
        uid,
        gid,
    } = *node;
    if ctx.in_userns {
        // mknod(2) is not allowed in a user namespace: bind the host's node
        // onto a fresh file (whatever the image had there is replaced).
        let t = crate::fs::resolve::fresh_file_in_root(root, path)
            .ctx(|| format!("create {}", path.display()))?;
        return mount(
            Some(path),
            &fdpath(&t),
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .ctx(|| format!("bind device {}", path.display()));
    }
    let parent = path.parent().unwrap_or(Path::new("/dev"));
    let name = path
        .file_name()
        .ok_or_else(|| Error::invalid("linux.devices", path.display().to_string()))?;
    let dir = mkdir_all_in_root(root, parent).ctx(|| format!("resolve {}", parent.display()))?;
    let dir = nix::fcntl::openat(
        &dir,
        ".",
        OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| "open device dir".into())?;
    // Replace whatever is there (a file or a symlink is never followed).
    let _ = nix::unistd::unlinkat(&dir, name, nix::unistd::UnlinkatFlags::NoRemoveDir);
    mknodat(
        &dir,
        name,
        kind,
        Mode::from_bits_truncate(mode),
        makedev(major, minor),
    )
    .ctx(|| format!("mknod {}", path.display()))?;
    if uid.is_some() || gid.is_some() {
        nix::unistd::fchownat(
            &dir,
            name,
            uid.map(nix::unistd::Uid::from_raw),
            gid.map(nix::unistd::Gid::from_raw),
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .ctx(|| format!("chown {}", path.display()))?;
    }
    Ok(())
}

/// maskedPaths and readonlyPaths, after pivot_root. Every target is
/// resolved inside the root and opened without following a final symlink
/// (a symlink there is refused); the mounts are made fd to fd
/// (open_tree/fsmount + move_mount), so nothing is re-resolved by path.
/// Files are masked with the container's /dev/null, which berth has just
/// made, opened without following links and checked to be the null device
/// (an image whose /dev/null links to a procfs file would otherwise
/// expose that file where a mask was asked for: CVE-2025-31133).
pub fn mask_and_readonly(spec: &Spec) -> Result<()> {
    use crate::fs::newmount as nm;
    let Some(linux) = spec.linux() else {
        return Ok(());
    };
    let none = |v: &Option<Vec<String>>| v.as_ref().is_none_or(|v| v.is_empty());
    if none(linux.readonly_paths()) && none(linux.masked_paths()) {
        return Ok(());
    }
    let root = nix::fcntl::open(
        "/",
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| "open /".into())?;
    let dev_null = open_in_root(
        &root,
        Path::new("/dev/null"),
        OFlag::O_PATH | OFlag::O_NOFOLLOW,
    )
    .ctx(|| "open /dev/null".into())?;
    let st = nix::sys::stat::fstat(&dev_null).ctx(|| "fstat /dev/null".into())?;
    if st.st_mode & libc::S_IFMT != libc::S_IFCHR || st.st_rdev != makedev(1, 3) {
        return Err(Error::Other(
            "/dev/null in the container is not the null device".into(),
        ));
    }
    // The target and its type, or None when it does not exist.
    let target = |field: &str, p: &str| -> Result<Option<(OwnedFd, bool)>> {
        let fd = match open_in_root(&root, Path::new(p), OFlag::O_PATH | OFlag::O_NOFOLLOW) {
            Err(nix::errno::Errno::ENOENT) => return Ok(None),
            r => r.ctx(|| format!("{field} {p}"))?,
        };
        let st = nix::sys::stat::fstat(&fd).ctx(|| format!("{field} {p}"))?;
        match st.st_mode & libc::S_IFMT {
            libc::S_IFLNK => Err(Error::invalid(field, format!("{p} is a symlink"))),
            t => Ok(Some((fd, t == libc::S_IFDIR))),
        }
    };
    for p in linux.readonly_paths().iter().flatten() {
        let Some((fd, _)) = target("linux.readonlyPaths", p)? else {
            continue;
        };
        let ro = || -> Result<()> {
            let tree = nm::clone_tree(fd.as_raw_fd(), c"", true)?;
            nm::set_attr(&tree, nm::MOUNT_ATTR_LOCKED_DOWN, true)?;
            nm::move_onto(&tree, &fd)
        };
        ro().map_err(|e| Error::invalid("linux.readonlyPaths", format!("{p}: {e}")))?;
    }
    let mut empty_dir: Option<OwnedFd> = None;
    for p in linux.masked_paths().iter().flatten() {
        let Some((fd, dir)) = target("linux.maskedPaths", p)? else {
            continue;
        };
        let mut mask = || -> Result<()> {
            if !dir {
                return nm::move_onto(&nm::clone_tree(dev_null.as_raw_fd(), c"", false)?, &fd);
            }
            // Directories share one empty read-only tmpfs (Kubernetes masks
            // one path per CPU): the first gets it, the others a copy of
            // that mount (kernels before 6.15 clone only attached mounts).
            if let Some(first) = &empty_dir {
                return nm::move_onto(&nm::clone_tree(first.as_raw_fd(), c"", false)?, &fd);
            }
            nm::move_onto(&nm::empty_ro_tmpfs()?, &fd)?;
            let again = open_in_root(&root, Path::new(p), OFlag::O_PATH | OFlag::O_NOFOLLOW)
                .ctx(|| format!("reopen {p}"))?;
            empty_dir = Some(again);
            Ok(())
        };
        mask().map_err(|e| Error::invalid("linux.maskedPaths", format!("{p}: {e}")))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn every_listed_option_is_known() {
        for o in MOUNT_OPTIONS {
            let p = parse_options(&[o.to_string()]);
            assert!(p.data.is_empty(), "{o} would be passed as filesystem data");
        }
        let p = parse_options(&s(&["rbind", "rro", "rnoatime", "ridmap", "tmpcopyup"]));
        assert_eq!(
            p.rec_set,
            crate::fs::newmount::attr::RDONLY | crate::fs::newmount::attr::NOATIME
        );
        assert_eq!(p.rec_clr, crate::fs::newmount::attr::ATIME);
        assert_eq!((p.idmap, p.tmpcopyup), (Some(true), true));
    }

    #[test]
    fn options() {
        let o = parse_options(&s(&[
            "nosuid",
            "noexec",
            "mode=755",
            "size=65536k",
            "ro",
            "rw",
        ]));
        assert_eq!(o.flags, MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC);
        assert_eq!(o.data, s(&["mode=755", "size=65536k"]));
        let o = parse_options(&s(&["rbind", "ro", "rprivate"]));
        assert_eq!(
            o.flags,
            MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_RDONLY
        );
        assert_eq!(o.prop, MsFlags::MS_PRIVATE | MsFlags::MS_REC);
        assert_eq!(
            propagation("rslave"),
            Some(MsFlags::MS_SLAVE | MsFlags::MS_REC)
        );
        assert_eq!(propagation("bogus"), None);
    }
}
