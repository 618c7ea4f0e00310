//! One `mounts` entry made inside the rootfs: resolved in the root,
//! refused over procfs files, bind flags remounted, and the `cgroup` mount.

use super::{fdpath, open_dir, parse_options, Opts, RootfsCtx};
use crate::error::{Error, Result, SysCtx};
use crate::fs::resolve::{mkdir_all_in_root, mkfile_in_root, open_in_root};
use nix::fcntl::OFlag;
use nix::mount::{mount, MsFlags};
use oci_spec::runtime::Mount;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

/// `root_proc`: the resolved host path of the rootfs's `/proc`. Returns
/// whether the mount is still to be made read-only (a read-only tmpfs is
/// mounted writable so that mounts and device nodes can go below it, as
/// runc does; `prepare_rootfs` remounts it once they are made).
pub(super) fn mount_one(
    ctx: &RootfsCtx,
    root: &OwnedFd,
    root_proc: &Path,
    m: &Mount,
    tree: Option<&OwnedFd>,
) -> Result<bool> {
    let o = parse_options(m.options().as_deref().unwrap_or(&[]));
    let typ = m.typ().as_deref().unwrap_or("");
    let dest = m.destination();
    if typ == "cgroup" || typ == "cgroup2" {
        return mount_cgroup(ctx, root, dest, &o).map(|()| false);
    }
    let bind = o.flags.contains(MsFlags::MS_BIND);
    if !bind && matches!(typ, "proc" | "sysfs") {
        ordinary_directory(root, dest, typ)?;
    }
    let source = m.source().clone().unwrap_or_default();
    let source = if bind && source.is_relative() {
        ctx.bundle.join(source)
    } else {
        source
    };
    // A tree berth cloned before the namespaces (idmapped, or a bind
    // source the namespace's root could not reach) says what it is itself.
    let source_dir = match tree {
        Some(t) => {
            nix::sys::stat::fstat(t).is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFDIR)
        }
        None => source.is_dir(),
    };
    let target = if bind && !source_dir {
        if tree.is_none() && !source.exists() {
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
    check_proc_destination(root_proc, &target, typ, bind.then_some(source.as_path()))?;
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
    let mut ro_later = false;
    if bind {
        match tree {
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
        let later_ro = below.is_none() && typ == "tmpfs" && o.flags.contains(MsFlags::MS_RDONLY);
        let flags = if below.is_some() || later_ro {
            o.flags & !MsFlags::MS_RDONLY
        } else {
            o.flags
        };
        ro_later = later_ro;
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
    Ok(ro_later)
}

/// The procfs files a mount may cover (lxcfs-style overlays), as runc
/// allows them; anything else under /proc is refused.
pub(super) const PROC_ALLOWED: &[&str] = &[
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
pub(super) fn check_proc_destination(
    root_proc: &Path,
    target: &OwnedFd,
    typ: &str,
    bind_source: Option<&Path>,
) -> Result<()> {
    let t = std::fs::read_link(fdpath(target)).map_err(|e| Error::io("readlink", "target", e))?;
    let Ok(rel) = t.strip_prefix(root_proc) else {
        return Ok(());
    };
    let rel = rel.to_string_lossy();
    let ok = if rel.is_empty() {
        // A bind of a procfs (the host's /proc, for a container sharing
        // the host's pid namespace, as rootless podman --pid=host makes)
        // is a procfs on /proc too (runc alike).
        typ == "proc"
            || bind_source.is_some_and(|s| {
                nix::sys::statfs::statfs(s)
                    .is_ok_and(|f| f.filesystem_type() == nix::sys::statfs::PROC_SUPER_MAGIC)
            })
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

/// Makes a tmpfs that `mount_one` left writable read-only, once what goes
/// below it is made.
pub(super) fn remount_ro(root: &OwnedFd, m: &Mount) -> Result<()> {
    let o = parse_options(m.options().as_deref().unwrap_or(&[]));
    let data = o.data.join(",");
    let data = (!data.is_empty()).then_some(data.as_str());
    let target =
        open_in_root(root, m.destination(), OFlag::O_PATH).ctx(|| "reopen target".into())?;
    mount(
        None::<&str>,
        &fdpath(&target),
        None::<&str>,
        MsFlags::MS_REMOUNT | o.flags,
        data,
    )
    .ctx(|| "remount read-only".into())
}

/// procfs and sysfs go only on a plain directory of the rootfs (or where
/// nothing is yet): a rootfs whose `/proc` is a symlink elsewhere would get
/// its procfs there, and what berth later writes or masks under the
/// container's `/proc` would miss it (CVE-2023-28642). runc's refusal and
/// wording.
fn ordinary_directory(root: &OwnedFd, dest: &Path, typ: &str) -> Result<()> {
    let fd = match open_in_root(root, dest, OFlag::O_PATH | OFlag::O_NOFOLLOW) {
        Ok(fd) => fd,
        Err(nix::errno::Errno::ENOENT) => return Ok(()),
        Err(e) => return Err(e).ctx(|| format!("resolve {} in rootfs", dest.display())),
    };
    let st = nix::sys::stat::fstat(&fd).ctx(|| format!("stat {}", dest.display()))?;
    if st.st_mode & libc::S_IFMT != libc::S_IFDIR {
        return Err(Error::Other(format!(
            "filesystem {typ:?} must be mounted on ordinary directory"
        )));
    }
    Ok(())
}

/// Remounts a bind mount with `flags`; in a user namespace the flags the
/// kernel locked on the source (nosuid, nodev, ...) must be kept.
pub(super) fn remount_bind(target: &Path, flags: MsFlags) -> Result<()> {
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
pub(super) fn mount_cgroup(ctx: &RootfsCtx, root: &OwnedFd, dest: &Path, o: &Opts) -> Result<()> {
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
