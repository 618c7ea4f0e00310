//! `berth image unpack`: a flattened plain rootfs (as `umoci unpack` gives),
//! made by applying the store's layer directories in order: a 0/0 character
//! device deletes the path below it, an opaque directory empties what lower
//! layers put there (before the layer's own entries, whatever their tar
//! order was), everything else is copied with owner, mode, times, xattrs
//! and hardlinks kept. All through directory fds, never following symlinks.

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::fsutil::{clear_dir, create_new, list_dir, remove_any, set_meta_at, set_xattr, xattrs};
use crate::store::{ImageRec, Store};
use nix::errno::Errno;
use nix::fcntl::{openat, AtFlags, OFlag};
use nix::sys::stat::{fstatat, mkdirat, mknodat, FileStat, Mode, SFlag};
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Uid};
use std::collections::HashMap;
use std::ffi::OsString;
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use std::path::Path;

fn dir_flags() -> OFlag {
    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC
}

/// Whether a layer directory is opaque: its overlay marker, `trusted.*`
/// or (a rootless store's) `user.*`; layers never carry a forged one
/// (unpack drops both from tars).
fn opaque(fd: BorrowedFd) -> bool {
    [c"trusted.overlay.opaque", c"user.overlay.opaque"]
        .iter()
        .any(|name| {
            let mut v = [0u8; 2];
            // SAFETY: fd is open; the name is NUL-terminated; buffer valid.
            let n = unsafe {
                libc::fgetxattr(
                    fd.as_raw_fd(),
                    name.as_ptr(),
                    v.as_mut_ptr().cast(),
                    v.len(),
                )
            };
            n == 1 && v[0] == b'y'
        })
}

fn copy_meta(src: BorrowedFd, dst: BorrowedFd, st: &FileStat) -> nix::Result<()> {
    nix::unistd::fchown(
        dst,
        Some(Uid::from_raw(st.st_uid)),
        Some(Gid::from_raw(st.st_gid)),
    )?;
    nix::sys::stat::fchmod(dst, Mode::from_bits_truncate(st.st_mode & 0o7777))?;
    for (k, v) in xattrs(src) {
        set_xattr(dst, &k, &v)?;
    }
    nix::sys::stat::futimens(
        dst,
        &TimeSpec::new(st.st_atime, st.st_atime_nsec),
        &TimeSpec::new(st.st_mtime, st.st_mtime_nsec),
    )
}

/// Hardlinked files seen in the current layer: inode -> (dir fd, name).
type Links = HashMap<(u64, u64), (OwnedFd, OsString)>;

fn apply(src: BorrowedFd, dst: BorrowedFd, links: &mut Links, path: &Path) -> Result<()> {
    let names = list_dir(src).map_err(|e| Error::sys(format!("list {}", path.display()), e))?;
    for name in names {
        let p = path.join(&name);
        let e = |op: &'static str| {
            let p = p.clone();
            move |err: Errno| Error::sys(format!("{op} {}", p.display()), err)
        };
        let st = fstatat(src, name.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW).map_err(e("stat"))?;
        let kind = st.st_mode & libc::S_IFMT;
        let times = [
            TimeSpec::new(st.st_atime, st.st_atime_nsec),
            TimeSpec::new(st.st_mtime, st.st_mtime_nsec),
        ];
        match kind {
            libc::S_IFCHR if st.st_rdev == 0 => remove_any(dst, &name).map_err(e("whiteout"))?,
            libc::S_IFDIR => {
                let existing = fstatat(dst, name.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW).ok();
                let is_dir = existing.is_some_and(|s| s.st_mode & libc::S_IFMT == libc::S_IFDIR);
                if !is_dir {
                    remove_any(dst, &name).map_err(e("replace"))?;
                    mkdirat(dst, name.as_os_str(), Mode::from_bits_truncate(0o700))
                        .map_err(e("mkdir"))?;
                }
                let s =
                    openat(src, name.as_os_str(), dir_flags(), Mode::empty()).map_err(e("open"))?;
                let d =
                    openat(dst, name.as_os_str(), dir_flags(), Mode::empty()).map_err(e("open"))?;
                if is_dir && opaque(s.as_fd()) {
                    clear_dir(d.as_fd()).map_err(e("clear opaque dir"))?;
                }
                apply(s.as_fd(), d.as_fd(), links, &p)?;
                copy_meta(s.as_fd(), d.as_fd(), &st).map_err(e("metadata"))?;
            }
            libc::S_IFREG => {
                remove_any(dst, &name).map_err(e("replace"))?;
                let key = (st.st_dev, st.st_ino);
                if st.st_nlink > 1 {
                    if let Some((ldir, lname)) = links.get(&key) {
                        nix::unistd::linkat(
                            ldir,
                            lname.as_os_str(),
                            dst,
                            name.as_os_str(),
                            AtFlags::empty(),
                        )
                        .map_err(e("link"))?;
                        continue;
                    }
                }
                let s = openat(
                    src,
                    name.as_os_str(),
                    OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )
                .map_err(e("open"))?;
                let mut d = create_new(dst, &name).map_err(e("create"))?;
                let mut s = File::from(s);
                std::io::copy(&mut s, &mut d).map_err(|x| Error::io("copy", &p, x))?;
                copy_meta(s.as_fd(), d.as_fd(), &st).map_err(e("metadata"))?;
                if st.st_nlink > 1 {
                    let dd = openat(dst, ".", dir_flags(), Mode::empty()).map_err(e("open"))?;
                    links.insert(key, (dd, name.clone()));
                }
            }
            libc::S_IFLNK => {
                let target =
                    nix::fcntl::readlinkat(src, name.as_os_str()).map_err(e("readlink"))?;
                remove_any(dst, &name).map_err(e("replace"))?;
                nix::unistd::symlinkat(target.as_os_str(), dst, name.as_os_str())
                    .map_err(e("symlink"))?;
                set_meta_at(dst, &name, st.st_uid, st.st_gid, None, times)
                    .map_err(e("metadata"))?;
            }
            _ => {
                let k = SFlag::from_bits_truncate(kind);
                remove_any(dst, &name).map_err(e("replace"))?;
                mknodat(
                    dst,
                    name.as_os_str(),
                    k,
                    Mode::from_bits_truncate(st.st_mode & 0o7777),
                    st.st_rdev,
                )
                .map_err(e("mknod"))?;
                set_meta_at(dst, &name, st.st_uid, st.st_gid, Some(st.st_mode), times)
                    .map_err(e("metadata"))?;
            }
        }
    }
    Ok(())
}

/// Writes the flattened rootfs of `image` to `dest` (created; must be empty).
pub fn unpack(store: &Store, image: &ImageRec, dest: &Path) -> Result<()> {
    std::fs::create_dir_all(dest).map_err(|e| Error::io("cannot create", dest, e))?;
    let d = nix::fcntl::open(dest, dir_flags(), Mode::empty())
        .map_err(|e| Error::sys(format!("open {}", dest.display()), e))?;
    if !list_dir(d.as_fd())
        .map_err(|e| Error::sys("list", e))?
        .is_empty()
    {
        return Err(Error::Other(format!("{}: not empty", dest.display())));
    }
    for l in &image.layers {
        let dir = store.layer_dir(&Digest::parse(&l.chain_id)?);
        let s = nix::fcntl::open(&dir, dir_flags(), Mode::empty()).map_err(|e| {
            Error::sys(
                format!("layer {} (import the image again)", dir.display()),
                e,
            )
        })?;
        apply(s.as_fd(), d.as_fd(), &mut Links::new(), Path::new("/"))?;
    }
    Ok(())
}
