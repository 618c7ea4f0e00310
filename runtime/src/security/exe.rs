//! CVE-2019-5736: a container process must not be able to write berth's
//! executable.
//!
//! `create`, `run` and `exec` leave a berth process inside the container
//! until its execve(2), and a container program whose interpreter is
//! `/proc/self/exe` even runs berth's binary there. Through
//! `/proc/<pid>/exe` the container can then open the binary, and once the
//! process has exited (no more ETXTBSY) write to it: the host's next berth
//! call would run the attacker's code.
//!
//! Defence: before those commands do anything, berth re-executes itself
//! from a read-only bind mount of its own binary. The mount is detached
//! (`open_tree(OPEN_TREE_CLONE)`, made read-only with `mount_setattr`): it
//! appears in no mount table, and any open of `/proc/<pid>/exe` for
//! writing fails with EROFS. This costs one execve(2), not a copy of the
//! binary (the fallback, for kernels without the new mount API, is a
//! sealed memfd copy). A binary that already runs from a read-only mount
//! (or sealed memfd) is not re-executed.

use crate::error::{Error, Result, SysCtx};
use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};

/// `exe` (the running binary) cannot be written through
/// `/proc/self/exe`: it is on a read-only mount or a memfd sealed against
/// writes.
fn is_protected(exe: &std::fs::File) -> bool {
    nix::sys::statvfs::fstatvfs(exe)
        .is_ok_and(|s| s.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY))
        || {
            // SAFETY: F_GET_SEALS on an fd we own; integer result.
            let seals = unsafe { libc::fcntl(exe.as_raw_fd(), libc::F_GET_SEALS) };
            seals > 0 && seals & libc::F_SEAL_WRITE != 0
        }
}

/// Re-executes berth (same argv and environment) from a read-only view of
/// its binary unless it already runs from one. Returns only on failure, or
/// at once when already protected.
pub fn ensure_protected() -> Result<()> {
    let exe = std::fs::File::open("/proc/self/exe")
        .map_err(|e| Error::io("open", "/proc/self/exe", e))?;
    if is_protected(&exe) {
        return Ok(());
    }
    let fd = ro_clone(&exe).or_else(|_| sealed_copy(&exe))?;
    let args: Vec<CString> = std::env::args_os()
        .map(|a| CString::new(std::os::unix::ffi::OsStringExt::into_vec(a)))
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| Error::Other("argument with a NUL byte".into()))?;
    let env: Vec<CString> = std::env::vars_os()
        .map(|(k, v)| {
            let mut b = std::os::unix::ffi::OsStringExt::into_vec(k);
            b.push(b'=');
            b.extend(std::os::unix::ffi::OsStringExt::into_vec(v));
            CString::new(b)
        })
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| Error::Other("environment with a NUL byte".into()))?;
    let e = nix::unistd::fexecve(&fd, &args, &env).unwrap_err();
    Err(Error::sys("re-execute berth from a read-only view", e))
}

/// A detached read-only bind mount of the running binary.
fn ro_clone(exe: &std::fs::File) -> Result<OwnedFd> {
    use crate::fs::newmount::{clone_tree, set_attr, MOUNT_ATTR_RDONLY};
    let fd = clone_tree(exe.as_raw_fd(), c"", false)?;
    set_attr(&fd, MOUNT_ATTR_RDONLY, false)?;
    Ok(fd)
}

/// A memfd copy of the binary, sealed against every change.
fn sealed_copy(exe: &std::fs::File) -> Result<OwnedFd> {
    let mut src = exe;
    let fd = nix::sys::memfd::memfd_create(
        c"berth",
        nix::sys::memfd::MFdFlags::MFD_CLOEXEC | nix::sys::memfd::MFdFlags::MFD_ALLOW_SEALING,
    )
    .ctx(|| "memfd_create".into())?;
    let mut dst = std::fs::File::from(fd);
    std::io::copy(&mut src, &mut dst).map_err(|e| Error::io("copy", "/proc/self/exe", e))?;
    let seals = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
    // SAFETY: F_ADD_SEALS on our memfd; integer argument.
    let r = unsafe { libc::fcntl(dst.as_raw_fd(), libc::F_ADD_SEALS, seals) };
    nix::errno::Errno::result(r).ctx(|| "seal memfd".into())?;
    Ok(OwnedFd::from(dst))
}
