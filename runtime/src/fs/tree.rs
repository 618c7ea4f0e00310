//! Copying a directory tree between two directory fds (for `tmpcopyup`):
//! owners, modes, symlinks, device nodes and fifos kept; nothing is
//! resolved by path and no symlink is followed.

use nix::errno::Errno;
use nix::fcntl::{openat, readlinkat, AtFlags, OFlag};
use nix::sys::stat::{fchmod, fstatat, mkdirat, mknodat, Mode, SFlag};
use nix::unistd::{fchown, fchownat, symlinkat, Gid, Uid};
use std::ffi::OsStr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

fn dir(at: BorrowedFd, name: &OsStr) -> nix::Result<OwnedFd> {
    openat(
        at,
        name,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
}

fn names(d: BorrowedFd) -> nix::Result<Vec<std::ffi::OsString>> {
    let mut it = nix::dir::Dir::from_fd(openat(
        d,
        ".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?)?;
    let mut v = Vec::new();
    for e in it.iter() {
        let n = e?.file_name().to_bytes().to_vec();
        if n != b"." && n != b".." {
            v.push(OsStr::from_bytes(&n).to_os_string());
        }
    }
    Ok(v)
}

/// Copies the contents of directory `src` into directory `dst`, and the
/// owner and mode of `src` onto `dst`.
pub fn copy(src: &OwnedFd, dst: &OwnedFd) -> nix::Result<()> {
    let st = nix::sys::stat::fstat(src)?;
    fchown(
        dst,
        Some(Uid::from_raw(st.st_uid)),
        Some(Gid::from_raw(st.st_gid)),
    )?;
    fchmod(dst, Mode::from_bits_truncate(st.st_mode & 0o7777))?;
    for name in names(src.as_fd())? {
        let n = name.as_os_str();
        let st = fstatat(src, n, AtFlags::AT_SYMLINK_NOFOLLOW)?;
        let mode = Mode::from_bits_truncate(st.st_mode & 0o7777);
        let owner = |at: BorrowedFd| {
            fchownat(
                at,
                n,
                Some(Uid::from_raw(st.st_uid)),
                Some(Gid::from_raw(st.st_gid)),
                AtFlags::AT_SYMLINK_NOFOLLOW,
            )
        };
        match st.st_mode & libc::S_IFMT {
            libc::S_IFDIR => {
                match mkdirat(dst, n, Mode::from_bits_truncate(0o700)) {
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(e) => return Err(e),
                }
                copy(&dir(src.as_fd(), n)?, &dir(dst.as_fd(), n)?)?;
            }
            libc::S_IFREG => {
                let from = openat(
                    src,
                    n,
                    OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )?;
                let to = openat(
                    dst,
                    n,
                    OFlag::O_WRONLY
                        | OFlag::O_CREAT
                        | OFlag::O_EXCL
                        | OFlag::O_NOFOLLOW
                        | OFlag::O_CLOEXEC,
                    Mode::from_bits_truncate(0o600),
                )?;
                let (mut r, mut w) = (std::fs::File::from(from), std::fs::File::from(to));
                std::io::copy(&mut r, &mut w)
                    .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))?;
                fchown(
                    &w,
                    Some(Uid::from_raw(st.st_uid)),
                    Some(Gid::from_raw(st.st_gid)),
                )?;
                fchmod(&w, mode)?;
            }
            libc::S_IFLNK => {
                symlinkat(readlinkat(src, n)?.as_os_str(), dst, n)?;
                owner(dst.as_fd())?;
            }
            kind => {
                mknodat(dst, n, SFlag::from_bits_truncate(kind), mode, st.st_rdev)?;
                owner(dst.as_fd())?;
            }
        }
    }
    Ok(())
}
