//! The fd-based mount API (open_tree, move_mount, fsopen/fsmount,
//! mount_setattr; Linux 5.2+, mount_setattr 5.12+): mounts made from one fd
//! onto another, with no path resolved by the kernel at mount time.

use crate::error::{Result, SysCtx};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// `struct mount_attr` of mount_setattr(2).
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// MOUNT_ATTR_* (include/uapi/linux/mount.h).
pub(crate) mod attr {
    pub const RDONLY: u64 = 0x1;
    pub const NOSUID: u64 = 0x2;
    pub const NODEV: u64 = 0x4;
    pub const NOEXEC: u64 = 0x8;
    /// The access-time field: RELATIME (0), NOATIME or STRICTATIME.
    pub const ATIME: u64 = 0x70;
    pub const RELATIME: u64 = 0x0;
    pub const NOATIME: u64 = 0x10;
    pub const STRICTATIME: u64 = 0x20;
    pub const NODIRATIME: u64 = 0x80;
    pub const IDMAP: u64 = 0x10_0000;
    pub const NOSYMFOLLOW: u64 = 0x20_0000;
}
pub(crate) const MOUNT_ATTR_RDONLY: u64 = attr::RDONLY;
/// What masks and readonlyPaths get: read-only, nosuid, nodev, noexec.
pub(crate) const MOUNT_ATTR_LOCKED_DOWN: u64 =
    attr::RDONLY | attr::NOSUID | attr::NODEV | attr::NOEXEC;
const OPEN_TREE_CLONE: libc::c_uint = 1;
const AT_RECURSIVE: libc::c_uint = 0x8000;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;
const MOVE_MOUNT_T_EMPTY_PATH: libc::c_uint = 0x40;
const FSOPEN_CLOEXEC: libc::c_uint = 1;
const FSCONFIG_CMD_CREATE: libc::c_uint = 6;
const FSMOUNT_CLOEXEC: libc::c_uint = 1;

fn owned(r: libc::c_long, what: &str) -> Result<OwnedFd> {
    let fd = nix::errno::Errno::result(r).ctx(|| what.into())?;
    // SAFETY: the syscall returned a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// A detached copy (bind) of the mount at `path` relative to `dirfd`
/// (`""` for the fd itself); with `recursive`, its submounts too. The copy
/// is made a slave: a clone of a shared mount is otherwise a peer of the
/// original, and what a container mounts on it would propagate back to
/// the host (a cgroup v2 host's `/` is shared).
pub(crate) fn clone_tree(dirfd: i32, path: &std::ffi::CStr, recursive: bool) -> Result<OwnedFd> {
    let mut flags = OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint;
    if path.is_empty() {
        flags |= libc::AT_EMPTY_PATH as libc::c_uint;
    }
    if recursive {
        flags |= AT_RECURSIVE;
    }
    // SAFETY: open_tree(dirfd, path, flags) with a NUL-terminated path.
    let r = unsafe { libc::syscall(libc::SYS_open_tree, dirfd, path.as_ptr(), flags) };
    let tree = owned(r, "open_tree")?;
    mount_setattr(&tree, 0, 0, libc::MS_SLAVE, None, recursive)?;
    Ok(tree)
}

/// Sets mount attributes (MOUNT_ATTR_*) on the mount `fd` refers to.
pub(crate) fn set_attr(fd: &OwnedFd, set: u64, recursive: bool) -> Result<()> {
    setattr(fd, set, 0, None, recursive)
}

/// mount_setattr(2) on the mount `fd` refers to (and with `recursive`
/// every mount below it): `set` and `clr` MOUNT_ATTR_* bits, and with
/// `userns` an idmapping (MOUNT_ATTR_IDMAP in `set`).
pub(crate) fn setattr(
    fd: &impl AsRawFd,
    set: u64,
    clr: u64,
    userns: Option<&OwnedFd>,
    recursive: bool,
) -> Result<()> {
    mount_setattr(fd, set, clr, 0, userns, recursive)
}

/// mount_setattr(2) with a propagation type (MS_SLAVE, MS_PRIVATE, ...;
/// 0 leaves it).
fn mount_setattr(
    fd: &impl AsRawFd,
    set: u64,
    clr: u64,
    propagation: u64,
    userns: Option<&OwnedFd>,
    recursive: bool,
) -> Result<()> {
    let attr = MountAttr {
        attr_set: set,
        attr_clr: clr,
        propagation,
        userns_fd: userns.map_or(0, |u| u.as_raw_fd() as u64),
    };
    let mut flags = libc::AT_EMPTY_PATH as libc::c_uint;
    if recursive {
        flags |= AT_RECURSIVE;
    }
    // SAFETY: mount_setattr(fd, "", flags, &attr, sizeof attr); attr
    // outlives the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            flags,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    nix::errno::Errno::result(r).ctx(|| "mount_setattr".into())?;
    Ok(())
}

/// Attaches the detached mount `tree` on top of what `target` refers to.
pub(crate) fn move_onto(tree: &OwnedFd, target: &OwnedFd) -> Result<()> {
    // SAFETY: move_mount(from_fd, "", to_fd, "", flags); both fds are ours.
    let r = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            c"".as_ptr(),
            target.as_raw_fd(),
            c"".as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
        )
    };
    nix::errno::Errno::result(r).ctx(|| "move_mount".into())?;
    Ok(())
}

/// A new, detached, read-only empty tmpfs.
pub(crate) fn empty_ro_tmpfs() -> Result<OwnedFd> {
    // SAFETY: fsopen("tmpfs", FSOPEN_CLOEXEC).
    let fs = owned(
        unsafe { libc::syscall(libc::SYS_fsopen, c"tmpfs".as_ptr(), FSOPEN_CLOEXEC) },
        "fsopen tmpfs",
    )?;
    // SAFETY: fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0).
    let r = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            FSCONFIG_CMD_CREATE,
            std::ptr::null::<libc::c_char>(),
            std::ptr::null::<libc::c_void>(),
            0,
        )
    };
    nix::errno::Errno::result(r).ctx(|| "fsconfig tmpfs".into())?;
    // SAFETY: fsmount(fs, FSMOUNT_CLOEXEC, attrs).
    let r = unsafe {
        libc::syscall(
            libc::SYS_fsmount,
            fs.as_raw_fd(),
            FSMOUNT_CLOEXEC,
            MOUNT_ATTR_LOCKED_DOWN,
        )
    };
    owned(r, "fsmount tmpfs")
}
