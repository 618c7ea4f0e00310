//! File-tree helpers shared by unpacking, flattening, overlay mounts and
//! garbage collection: every operation relative to a directory fd, never
//! following a symlink.

use nix::errno::Errno;
use nix::fcntl::{openat, AtFlags, OFlag};
use nix::sys::stat::Mode;
use nix::sys::time::TimeSpec;
use nix::unistd::{fchownat, unlinkat, Gid, Uid, UnlinkatFlags};
use std::ffi::{CString, OsStr, OsString};
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Removes `name` in `dir` whatever it is (a directory with its contents),
/// never following symlinks. Missing is fine.
pub fn remove_any(dir: BorrowedFd, name: &OsStr) -> nix::Result<()> {
    match unlinkat(dir, name, UnlinkatFlags::NoRemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => Ok(()),
        // An empty directory goes at once; only a full one is walked.
        Err(Errno::EISDIR) | Err(Errno::EPERM) => {
            match unlinkat(dir, name, UnlinkatFlags::RemoveDir) {
                Ok(()) | Err(Errno::ENOENT) => Ok(()),
                Err(Errno::ENOTEMPTY) | Err(Errno::EEXIST) => {
                    let sub = openat(
                        dir,
                        name,
                        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                        Mode::empty(),
                    )?;
                    clear_dir(sub.as_fd())?;
                    unlinkat(dir, name, UnlinkatFlags::RemoveDir)
                }
                Err(e) => Err(e),
            }
        }
        Err(e) => Err(e),
    }
}

/// Removes everything inside the directory `dir`.
pub fn clear_dir(dir: BorrowedFd) -> nix::Result<()> {
    let names = list_dir(dir)?;
    for n in names {
        remove_any(dir, &n)?;
    }
    Ok(())
}

/// Names in a directory (without `.` and `..`).
pub fn list_dir(dir: BorrowedFd) -> nix::Result<Vec<OsString>> {
    let fd = openat(
        dir,
        ".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let mut d = nix::dir::Dir::from_fd(fd)?;
    let mut v = Vec::new();
    for e in d.iter() {
        let e = e?;
        let n = e.file_name().to_bytes();
        if n != b"." && n != b".." {
            v.push(OsStr::from_bytes(n).to_os_string());
        }
    }
    Ok(v)
}

/// Creates `name` in `dir` as a new private file (never through a symlink,
/// never an existing file), to be written and then given its metadata.
pub fn create_new(dir: BorrowedFd, name: &OsStr) -> nix::Result<File> {
    let flags =
        OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    openat(dir, name, flags, Mode::from_bits_truncate(0o600)).map(File::from)
}

/// Sets an extended attribute on an open file or directory.
pub fn set_xattr(fd: BorrowedFd, name: &str, value: &[u8]) -> nix::Result<()> {
    let n = CString::new(name).map_err(|_| Errno::EINVAL)?;
    // SAFETY: fd is open; name is NUL-terminated; value/len describe a live slice.
    let r = unsafe {
        libc::fsetxattr(
            fd.as_raw_fd(),
            n.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    Errno::result(r).map(drop)
}

/// Whether an xattr name is overlay metadata, which a layer must not carry.
pub fn is_overlay_xattr(name: &str) -> bool {
    name.starts_with("trusted.overlay.") || name.starts_with("user.overlay.")
}

/// Owner, mode (not for symlinks) and times of `name` in `dir`, never
/// following a symlink.
pub fn set_meta_at(
    dir: BorrowedFd,
    name: &OsStr,
    uid: u32,
    gid: u32,
    mode: Option<u32>,
    t: [TimeSpec; 2],
) -> nix::Result<()> {
    fchownat(
        dir,
        name,
        Some(Uid::from_raw(uid)),
        Some(Gid::from_raw(gid)),
        AtFlags::AT_SYMLINK_NOFOLLOW,
    )?;
    if let Some(m) = mode {
        // Only for device nodes and fifos: FollowSymlink is what fchmodat
        // supports, and the name was just made by mknodat, not a symlink.
        nix::sys::stat::fchmodat(
            dir,
            name,
            Mode::from_bits_truncate(m & 0o7777),
            nix::sys::stat::FchmodatFlags::FollowSymlink,
        )?;
    }
    nix::sys::stat::utimensat(
        dir,
        name,
        &t[0],
        &t[1],
        nix::sys::stat::UtimensatFlags::NoFollowSymlink,
    )
}

/// Removes a directory tree (fd-based, never following symlinks).
pub fn remove_tree(p: &Path) {
    if let (Some(parent), Some(name)) = (p.parent(), p.file_name()) {
        if let Ok(d) = nix::fcntl::open(
            parent,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        ) {
            let _ = remove_any(d.as_fd(), name);
        }
    }
}

/// The xattrs of an open file or directory, overlay metadata left out.
pub fn xattrs(fd: BorrowedFd) -> Vec<(String, Vec<u8>)> {
    let mut names = vec![0u8; 4096];
    // SAFETY: fd is open; the buffer and its length are valid.
    let n = unsafe { libc::flistxattr(fd.as_raw_fd(), names.as_mut_ptr().cast(), names.len()) };
    if n <= 0 {
        return Vec::new();
    }
    names.truncate(n as usize);
    let mut out = Vec::new();
    for name in names.split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let s = String::from_utf8_lossy(name).into_owned();
        if is_overlay_xattr(&s) {
            continue;
        }
        let Ok(c) = CString::new(name) else { continue };
        let mut val = vec![0u8; 65536];
        // SAFETY: fd is open; c is NUL-terminated; buffer valid.
        let m = unsafe {
            libc::fgetxattr(
                fd.as_raw_fd(),
                c.as_ptr(),
                val.as_mut_ptr().cast(),
                val.len(),
            )
        };
        if m >= 0 {
            val.truncate(m as usize);
            out.push((s, val));
        }
    }
    out
}

/// Writes `v` as pretty JSON to `tmp`, then renames it to `path`: a reader
/// sees the old file or the new one, never half of one.
pub fn write_json(path: &Path, tmp: &Path, v: &impl serde::Serialize) -> crate::Result<()> {
    std::fs::write(tmp, serde_json::to_vec_pretty(v).expect("serializes"))
        .and_then(|()| std::fs::rename(tmp, path))
        .map_err(|e| crate::Error::io("cannot write", path, e))
}
