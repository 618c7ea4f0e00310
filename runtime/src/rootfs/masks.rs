//! maskedPaths and readonlyPaths, after pivot_root.

use crate::error::{Error, Result, SysCtx};
use crate::fs::resolve::open_in_root;
use nix::fcntl::OFlag;
use nix::sys::stat::{makedev, Mode};
use oci_spec::runtime::Spec;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

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
