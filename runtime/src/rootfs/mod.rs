//! The rootfs set-up the container init performs in its new mount
//! namespace: propagation, the rootfs bind, every `mounts` entry, devices,
//! then pivot_root(2), masks and read-only paths.
//!
//! The folder: `options` (mount options parsed and checked), this file
//! (the order of the set-up and pivot_root), `mount` (one `mounts` entry,
//! the `cgroup` mount, the /proc destination check), `devices` (device
//! nodes in /dev), `masks` (maskedPaths and readonlyPaths), `idmap`
//! (idmapped mount trees, made by the parent).

mod devices;
pub mod idmap;
mod masks;
mod mount;
mod options;

pub use masks::mask_and_readonly;
pub use options::*;

use crate::cgroups::Cgroup;
use crate::error::{Error, Result, SysCtx};
use devices::create_devices;
use mount::{mount_one, remount_ro};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::Mode;
use oci_spec::runtime::Spec;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

/// The magic-link path of an fd, to mount onto what it resolved to.
pub(super) fn fdpath(fd: &impl AsRawFd) -> PathBuf {
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
    /// Idmapped trees the parent made (`idmap`), by mount index.
    pub idmapped: &'a [(usize, OwnedFd)],
    /// Bind sources' trees the parent cloned (`open_bind_sources`), by
    /// mount index.
    pub bind_sources: &'a [(usize, OwnedFd)],
}

/// With a new user namespace, the init mounts as the namespace's root,
/// which cannot walk into a directory only the host's root may enter (the
/// kubelet's 0700 pod directories): berth clones every bind source's tree
/// before the clone (open_tree, detached, so the init can move it into the
/// container's mount namespace), as runc opens them first. A source berth
/// cannot clone is left to the init, which reports it; one with an
/// idmapped tree already has its tree.
pub fn open_bind_sources(
    spec: &Spec,
    bundle: &Path,
    idmapped: &[(usize, OwnedFd)],
) -> Vec<(usize, OwnedFd)> {
    let mut out = Vec::new();
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        let o = parse_options(m.options().as_deref().unwrap_or(&[]));
        if !o.flags.contains(MsFlags::MS_BIND) || idmapped.iter().any(|(n, _)| *n == i) {
            continue;
        }
        let Some(src) = m.source() else { continue };
        let src = if src.is_relative() {
            bundle.join(src)
        } else {
            src.clone()
        };
        let Ok(path) = std::ffi::CString::new(src.as_os_str().as_encoded_bytes()) else {
            continue;
        };
        let rec = o.flags.contains(MsFlags::MS_REC);
        if let Ok(tree) = crate::fs::newmount::clone_tree(libc::AT_FDCWD, &path, rec) {
            out.push((i, tree));
        }
    }
    out
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
    fn at(i: usize, m: &oci_spec::runtime::Mount) -> impl FnOnce(Error) -> Error + '_ {
        move |e| Error::Other(format!("mounts[{i}] {}: {e}", m.destination().display()))
    }
    let mut ro_later = Vec::new();
    for (i, m) in ctx.spec.mounts().iter().flatten().enumerate() {
        let tree = (ctx.idmapped.iter())
            .chain(ctx.bind_sources)
            .find(|(n, _)| *n == i)
            .map(|(_, t)| t);
        if mount_one(ctx, &root, &root_proc, m, tree).map_err(at(i, m))? {
            ro_later.push((i, m));
        }
    }
    create_devices(ctx, &root)?;
    // Read-only tmpfs mounts (a read-only /dev with /dev/pts below it) once
    // their submounts and device nodes are made, deepest first.
    for (i, m) in ro_later.into_iter().rev() {
        remount_ro(&root, m).map_err(at(i, m))?;
    }

    before_pivot()?;
    if no_pivot {
        hide_host_proc_and_sys(ctx.rootfs)?;
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

/// Without pivot_root the host's mounts stay in the container's mount
/// namespace, below its chroot. A whole procfs or sysfs there would let the
/// container mount a fresh, unmasked one (from a user namespace of its own,
/// the kernel allows it where such a mount is already fully visible): each
/// one outside the rootfs is detached, or covered by an empty tmpfs where
/// detaching is refused, as runc does. Deepest first.
fn hide_host_proc_and_sys(rootfs: &Path) -> Result<()> {
    let mut hosts: Vec<PathBuf> = crate::fs::mountinfo::read()?
        .into_iter()
        .filter(|m| matches!(m.fstype.as_str(), "proc" | "sysfs"))
        .filter(|m| m.root == Path::new("/") && !m.mount_point.starts_with(rootfs))
        .map(|m| m.mount_point)
        .collect();
    hosts.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for p in hosts {
        // A mount below one already detached is gone with it.
        match umount2(&p, MntFlags::MNT_DETACH) {
            Ok(()) | Err(Errno::ENOENT) => {}
            Err(Errno::EINVAL) | Err(Errno::EPERM) => mount(
                Some("tmpfs"),
                &p,
                Some("tmpfs"),
                MsFlags::MS_RDONLY,
                None::<&str>,
            )
            .ctx(|| format!("--no-pivot: cover the host's {}", p.display()))?,
            Err(e) => {
                return Err(e).ctx(|| format!("--no-pivot: detach the host's {}", p.display()))
            }
        }
    }
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

/// A directory fd of what an O_PATH fd refers to.
pub(super) fn open_dir(fd: &OwnedFd) -> Result<OwnedFd> {
    nix::fcntl::openat(
        fd,
        ".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| "open mount target".into())
}
