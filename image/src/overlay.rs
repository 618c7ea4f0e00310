//! A container rootfs as an overlay mount: the image's layer directories
//! (top first) as lower dirs, and a private upper and work dir per mount in
//! `mounts/<id>/` of the store. The record (`mount.json`) is written before
//! mounting so `umount` and `prune` know what is in use.
//!
//! The lower dir list goes through the new mount API's `lowerdir+` (one
//! fsconfig(2) call per layer, no length limit) where the kernel has it
//! (6.8+); otherwise through mount(2) options. When the absolute paths would
//! pass mount(2)'s one-page option limit, the mount directory gets `l/0`,
//! `l/1`, ... symlinks to the layers and the options name those, relative
//! to it (about 300 bytes for 100 layers).

use crate::digest::{hex, Digest};
use crate::error::{Error, Result};
use crate::fsutil::remove_tree;
use crate::store::{ImageRec, Store};
use nix::errno::Errno;
use serde::{Deserialize, Serialize};
use sha2::Digest as _;
use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

#[derive(Serialize, Deserialize)]
pub struct MountRec {
    pub target: PathBuf,
    pub image: String,
    /// Chain IDs of the layers in use.
    pub layers: Vec<String>,
}

fn mount_id(target: &Path) -> String {
    hex(&sha2::Sha256::digest(target.as_os_str().as_encoded_bytes()))[..24].to_string()
}

/// Records of every overlay mount in the store.
pub fn mounts(store: &Store) -> Vec<MountRec> {
    std::fs::read_dir(store.root.join("mounts"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| std::fs::read(e.path().join("mount.json")).ok())
        .filter_map(|d| serde_json::from_slice(&d).ok())
        .collect()
}

/// Mounts an overlay rootfs of `image` at `target` (created if missing).
/// `volatile`: the upper dir is thrown away after use, so the overlay
/// never syncs it (no flush of the store's file system at unmount).
pub fn mount(store: &Store, image: &ImageRec, target: &Path, volatile: bool) -> Result<()> {
    std::fs::create_dir_all(target).map_err(|e| Error::io("cannot create", target, e))?;
    let target = std::fs::canonicalize(target).map_err(|e| Error::io("mount target", target, e))?;
    let dir = store.root.join("mounts").join(mount_id(&target));
    if dir.exists() {
        return Err(Error::Other(format!(
            "{}: an image is mounted there already",
            target.display()
        )));
    }
    let (upper, work) = (dir.join("upper"), dir.join("work"));
    let res = (|| -> Result<()> {
        for d in [&upper, &work] {
            std::fs::create_dir_all(d).map_err(|e| Error::io("cannot create", d, e))?;
        }
        let rec = MountRec {
            target: target.clone(),
            image: image.name.clone(),
            layers: image.layers.iter().map(|l| l.chain_id.clone()).collect(),
        };
        std::fs::write(
            dir.join("mount.json"),
            serde_json::to_vec(&rec).expect("serializes"),
        )
        .map_err(|e| Error::io("cannot write", dir.join("mount.json"), e))?;
        let mut lowers = Vec::new();
        for l in image.layers.iter().rev() {
            let p = store.layer_dir(&Digest::parse(&l.chain_id)?);
            if !p.is_dir() {
                return Err(Error::Other(format!(
                    "layer {} is not unpacked (import the image again)",
                    l.chain_id
                )));
            }
            lowers.push(p);
        }
        mount_overlay(
            &dir,
            &lowers,
            &upper,
            &work,
            &target,
            store.rootless,
            volatile,
        )
    })();
    if res.is_err() {
        remove_tree(&dir);
    }
    res
}

/// `userxattr`: a rootless store's overlay, whose metadata is in
/// `user.overlay.*` (mountable in a user namespace, 5.11 and later).
fn mount_overlay(
    dir: &Path,
    lowers: &[PathBuf],
    upper: &Path,
    work: &Path,
    target: &Path,
    userxattr: bool,
    volatile: bool,
) -> Result<()> {
    match mount_new_api(lowers, upper, work, target, userxattr, volatile) {
        Ok(()) => return Ok(()),
        // No fsopen or no lowerdir+ (kernels before 6.8): mount(2) below.
        Err(Errno::ENOSYS) | Err(Errno::EINVAL) => {}
        Err(e) => {
            return Err(Error::sys(
                format!("mount overlay at {}", target.display()),
                e,
            ))
        }
    }
    let err = |e| Error::sys(format!("mount overlay at {}", target.display()), e);
    let mount = |data: &str| {
        nix::mount::mount(
            Some("overlay"),
            target,
            Some("overlay"),
            nix::mount::MsFlags::empty(),
            Some(data),
        )
    };
    let abs: Vec<String> = lowers
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let extra = format!(
        "{}{}",
        if userxattr { ",userxattr" } else { "" },
        if volatile { ",volatile" } else { "" }
    );
    let data = format!(
        "lowerdir={},upperdir={},workdir={}{extra}",
        abs.join(":"),
        upper.display(),
        work.display()
    );
    if data.len() < 4000 {
        return mount(&data).map_err(err);
    }
    // Short relative names: l/N -> layer, options relative to l/.
    let l = dir.join("l");
    std::fs::create_dir_all(&l).map_err(|e| Error::io("cannot create", &l, e))?;
    for (i, p) in lowers.iter().enumerate() {
        let link = l.join(i.to_string());
        std::os::unix::fs::symlink(p, &link).map_err(|e| Error::io("cannot create", &link, e))?;
    }
    let names: Vec<String> = (0..lowers.len()).map(|i| i.to_string()).collect();
    let data = format!(
        "lowerdir={},upperdir=../upper,workdir=../work{extra}",
        names.join(":")
    );
    if data.len() >= 4000 {
        return Err(Error::Other(format!(
            "{} layers are too many for one overlay mount",
            lowers.len()
        )));
    }
    let cwd = std::env::current_dir().map_err(|e| Error::io("cwd", ".", e))?;
    std::env::set_current_dir(&l).map_err(|e| Error::io("chdir", &l, e))?;
    let r = mount(&data);
    let _ = std::env::set_current_dir(cwd);
    r.map_err(err)
}

/// fsopen/fsconfig(lowerdir+)/fsmount/move_mount.
fn mount_new_api(
    lowers: &[PathBuf],
    upper: &Path,
    work: &Path,
    target: &Path,
    userxattr: bool,
    volatile: bool,
) -> nix::Result<()> {
    const FSOPEN_CLOEXEC: u32 = 1;
    const FSCONFIG_SET_FLAG: u32 = 0;
    const FSCONFIG_SET_STRING: u32 = 1;
    const FSCONFIG_CMD_CREATE: u32 = 6;
    const FSMOUNT_CLOEXEC: u32 = 1;
    const MOVE_MOUNT_F_EMPTY_PATH: u32 = 4;
    let name = c"overlay";
    // SAFETY: fsopen takes a NUL-terminated name and flags, returns an fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_fsopen, name.as_ptr(), FSOPEN_CLOEXEC) };
    let fs = Errno::result(fd).map(|fd| {
        // SAFETY: a fresh fd from fsopen, owned here.
        unsafe { OwnedFd::from_raw_fd(fd as i32) }
    })?;
    let set = |k: &str, v: &Path| -> nix::Result<()> {
        let k = CString::new(k).map_err(|_| Errno::EINVAL)?;
        let v = CString::new(v.as_os_str().as_encoded_bytes()).map_err(|_| Errno::EINVAL)?;
        // SAFETY: fsconfig with a valid fs context fd and NUL-terminated strings.
        let r = unsafe {
            libc::syscall(
                libc::SYS_fsconfig,
                fs.as_raw_fd(),
                FSCONFIG_SET_STRING,
                k.as_ptr(),
                v.as_ptr(),
                0,
            )
        };
        Errno::result(r).map(drop)
    };
    for l in lowers {
        set("lowerdir+", l)?;
    }
    set("upperdir", upper)?;
    set("workdir", work)?;
    let flag = |k: &std::ffi::CStr| {
        // SAFETY: fsconfig SET_FLAG with a valid fs context fd and a
        // NUL-terminated key, no value.
        let r = unsafe {
            libc::syscall(
                libc::SYS_fsconfig,
                fs.as_raw_fd(),
                FSCONFIG_SET_FLAG,
                k.as_ptr(),
                0usize,
                0,
            )
        };
        Errno::result(r).map(drop)
    };
    if userxattr {
        flag(c"userxattr")?;
    }
    if volatile {
        flag(c"volatile")?;
    }
    // SAFETY: fsconfig CMD_CREATE takes no key or value.
    let r = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            FSCONFIG_CMD_CREATE,
            0usize,
            0usize,
            0,
        )
    };
    Errno::result(r)?;
    // SAFETY: fsmount on a created context returns a new mount fd or -1.
    let m = unsafe { libc::syscall(libc::SYS_fsmount, fs.as_raw_fd(), FSMOUNT_CLOEXEC, 0) };
    let mnt = Errno::result(m).map(|fd| {
        // SAFETY: a fresh fd from fsmount, owned here.
        unsafe { OwnedFd::from_raw_fd(fd as i32) }
    })?;
    let t = CString::new(target.as_os_str().as_encoded_bytes()).map_err(|_| Errno::EINVAL)?;
    // SAFETY: move_mount of the detached mount fd onto an absolute target path.
    let r = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            mnt.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_FDCWD,
            t.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    Errno::result(r).map(drop)
}

/// Unmounts the overlay at `target` (a mount point, or a bundle directory
/// whose `rootfs` is one) and removes its upper and work dirs.
pub fn umount(store: &Store, target: &Path) -> Result<PathBuf> {
    let target = std::fs::canonicalize(target).map_err(|e| Error::io("umount", target, e))?;
    for t in [target.join("rootfs"), target.clone()] {
        let dir = store.root.join("mounts").join(mount_id(&t));
        if !dir.join("mount.json").exists() {
            continue;
        }
        match nix::mount::umount2(&t, nix::mount::MntFlags::empty()) {
            Ok(()) | Err(Errno::EINVAL) | Err(Errno::ENOENT) => {}
            Err(e) => return Err(Error::sys(format!("umount {}", t.display()), e)),
        }
        remove_tree(&dir);
        return Ok(t);
    }
    Err(Error::Other(format!(
        "{}: no image is mounted there",
        target.display()
    )))
}
