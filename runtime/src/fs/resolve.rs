//! Path resolution inside a root directory that cannot be escaped.
//!
//! Every path inside a container rootfs is resolved with openat2(2)
//! `RESOLVE_IN_ROOT` against a directory fd of the rootfs: `..` and absolute
//! symlinks are clamped at the rootfs, so a rootfs whose `/mnt` links to `/`
//! yields the rootfs itself, never the host's `/` (runtime-spec config.md:
//! "the runtime MUST ... resolve mount destinations relative to the root").
//! Missing directories are created one component at a time through the fd of
//! their already-resolved parent.

use nix::errno::Errno;
use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::Mode;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Component, Path};

fn how(flags: OFlag) -> OpenHow {
    OpenHow::new()
        .flags(flags | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS)
}

/// The components of `path` relative to the root, without `.` and `/`.
/// `..` is kept: the kernel clamps it at the root.
fn rel(path: &Path) -> Vec<&std::ffi::OsStr> {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s),
            Component::ParentDir => Some(std::ffi::OsStr::new("..")),
            _ => None,
        })
        .collect()
}

fn join(parts: &[&std::ffi::OsStr]) -> std::path::PathBuf {
    if parts.is_empty() {
        return ".".into();
    }
    parts.iter().collect()
}

/// Opens `path` inside `root` with `flags` (O_PATH for mount targets).
pub fn open_in_root<Fd: AsFd>(root: Fd, path: &Path, flags: OFlag) -> nix::Result<OwnedFd> {
    openat2(root, &join(&rel(path)), how(flags))
}

/// Resolves `path` inside `root` as a directory, creating what is missing
/// (mode 0755), and returns an O_PATH fd of it. A dangling symlink on the
/// way is followed (inside the root, at most 40 times) and its target made.
pub fn mkdir_all_in_root<Fd: AsFd>(root: Fd, path: &Path) -> nix::Result<OwnedFd> {
    let root = root.as_fd();
    let dir_flags = OFlag::O_PATH | OFlag::O_DIRECTORY;
    let mut parts: Vec<std::ffi::OsString> = rel(path).into_iter().map(Into::into).collect();
    let refs =
        |p: &[std::ffi::OsString]| join(&p.iter().map(|s| s.as_os_str()).collect::<Vec<_>>());
    // Fast path: it usually exists.
    match openat2(root, &refs(&parts), how(dir_flags)) {
        Ok(fd) => return Ok(fd),
        Err(Errno::ENOENT) => {}
        Err(e) => return Err(e),
    }
    let (mut links, mut i, mut made) = (0, 0, false);
    let mut cur = openat2(root, ".", how(dir_flags))?;
    while i < parts.len() {
        match openat2(root, &refs(&parts[..=i]), how(dir_flags)) {
            Ok(fd) => {
                cur = fd;
                i += 1;
                made = false;
            }
            Err(Errno::ENOENT) if !made => match nix::fcntl::readlinkat(&cur, parts[i].as_os_str())
            {
                Ok(target) => {
                    links += 1;
                    if links > 40 {
                        return Err(Errno::ELOOP);
                    }
                    let t = Path::new(&target);
                    let mut next: Vec<std::ffi::OsString> = if t.is_absolute() {
                        Vec::new()
                    } else {
                        parts[..i].to_vec()
                    };
                    next.extend(rel(t).into_iter().map(Into::into));
                    next.extend_from_slice(&parts[i + 1..]);
                    parts = next;
                    i = 0;
                    cur = openat2(root, ".", how(dir_flags))?;
                }
                Err(_) => {
                    // A plain name inside the resolved parent: mkdirat
                    // cannot follow anything.
                    match nix::sys::stat::mkdirat(
                        &cur,
                        parts[i].as_os_str(),
                        Mode::from_bits_truncate(0o755),
                    ) {
                        Ok(()) | Err(Errno::EEXIST) => made = true,
                        Err(e) => return Err(e),
                    }
                }
            },
            Err(e) => return Err(e),
        }
    }
    Ok(cur)
}

/// The parent of `path` inside `root` (created if missing) as a real
/// directory fd to create in, and the last component.
fn parent_dir<Fd: AsFd>(root: Fd, path: &Path) -> nix::Result<(OwnedFd, std::ffi::OsString)> {
    let parts = rel(path);
    let (last, dir) = parts.split_last().ok_or(Errno::EINVAL)?;
    let parent = mkdir_all_in_root(root, &join(dir))?;
    let pdir = openat2(
        &parent,
        ".",
        OpenHow::new().flags(OFlag::O_DIRECTORY | OFlag::O_CLOEXEC),
    )?;
    Ok((pdir, (*last).to_owned()))
}

/// Resolves `path` inside `root` as a file, creating an empty one (and its
/// parents) if missing, and returns an O_PATH fd of it.
pub fn mkfile_in_root<Fd: AsFd>(root: Fd, path: &Path) -> nix::Result<OwnedFd> {
    let root = root.as_fd();
    match open_in_root(root, path, OFlag::O_PATH) {
        Ok(fd) => return Ok(fd),
        Err(Errno::ENOENT) => {}
        Err(e) => return Err(e),
    }
    let (pdir, last) = parent_dir(root, path)?;
    let f = nix::fcntl::openat(
        &pdir,
        last.as_os_str(),
        OFlag::O_CREAT | OFlag::O_WRONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o644),
    );
    match f {
        Ok(_) | Err(Errno::EEXIST) => {}
        Err(e) => return Err(e),
    }
    open_in_root(root, path, OFlag::O_PATH)
}

/// Resolves `path`'s parent inside `root` (creating it) and makes sure the
/// last component is a fresh regular file: a symlink, device or fifo there
/// is removed first, never followed. For mount targets the runtime
/// itself fills (device binds, /dev/console): an image's `/dev/null ->
/// /proc/sys/kernel/core_pattern` must not redirect them (CVE-2025-52565).
pub fn fresh_file_in_root<Fd: AsFd>(root: Fd, path: &Path) -> nix::Result<OwnedFd> {
    let (pdir, last) = parent_dir(root, path)?;
    let last = last.as_os_str();
    let nofollow = nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW;
    match nix::sys::stat::fstatat(&pdir, last, nofollow) {
        Ok(st) if st.st_mode & libc::S_IFMT == libc::S_IFREG => {}
        Ok(st) if st.st_mode & libc::S_IFMT == libc::S_IFDIR => return Err(Errno::EISDIR),
        Ok(_) => nix::unistd::unlinkat(&pdir, last, nix::unistd::UnlinkatFlags::NoRemoveDir)?,
        Err(Errno::ENOENT) => {}
        Err(e) => return Err(e),
    }
    match nix::fcntl::openat(
        &pdir,
        last,
        OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o644),
    ) {
        Ok(_) | Err(Errno::EEXIST) => {}
        Err(e) => return Err(e),
    }
    nix::fcntl::openat(
        &pdir,
        last,
        OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn symlinks_stay_inside() {
        let t = std::env::temp_dir().join(format!("berth-resolve-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&t);
        std::fs::create_dir_all(t.join("root/etc")).unwrap();
        std::fs::create_dir_all(t.join("outside")).unwrap();
        symlink("/", t.join("root/mnt")).unwrap();
        symlink("../../outside", t.join("root/up")).unwrap();
        let root = nix::fcntl::open(
            &t.join("root"),
            OFlag::O_PATH | OFlag::O_DIRECTORY,
            Mode::empty(),
        )
        .unwrap();
        // /mnt -> / resolves to the root itself; creating below it stays inside.
        mkdir_all_in_root(&root, Path::new("/mnt/x/y")).unwrap();
        assert!(t.join("root/x/y").is_dir());
        // up -> ../../outside is clamped to <root>/outside, made there.
        mkdir_all_in_root(&root, Path::new("/up/z")).unwrap();
        assert!(t.join("root/outside/z").is_dir());
        assert!(!t.join("outside/z").exists());
        mkfile_in_root(&root, Path::new("/mnt/etc/f")).unwrap();
        assert!(t.join("root/etc/f").is_file());
        mkdir_all_in_root(&root, Path::new("/../../a")).unwrap();
        assert!(t.join("root/a").is_dir());
        // A symlink where a fresh file is wanted is replaced, not followed.
        std::fs::write(t.join("outside/target"), "host").unwrap();
        std::fs::create_dir_all(t.join("root/dev")).unwrap();
        symlink(t.join("outside/target"), t.join("root/dev/console")).unwrap();
        fresh_file_in_root(&root, Path::new("/dev/console")).unwrap();
        assert!(std::fs::symlink_metadata(t.join("root/dev/console"))
            .unwrap()
            .is_file());
        assert_eq!(
            std::fs::read_to_string(t.join("outside/target")).unwrap(),
            "host"
        );
        std::fs::remove_dir_all(&t).unwrap();
    }
}
