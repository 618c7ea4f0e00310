//! Device nodes in the container's /dev: the default ones and
//! `linux.devices`, made with mknod or bound from the host where berth
//! cannot (a user namespace).

use super::{fdpath, RootfsCtx};
use crate::cgroups::devices::DEFAULT_DEVICES;
use crate::error::{Error, Result, SysCtx};
use crate::fs::resolve::mkdir_all_in_root;
use nix::fcntl::OFlag;
use nix::mount::{mount, MsFlags};
use nix::sys::stat::{makedev, mknodat, Mode, SFlag};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType};
use std::os::fd::OwnedFd;
use std::path::Path;

pub(super) fn create_devices(ctx: &RootfsCtx, root: &OwnedFd) -> Result<()> {
    for &(path, major, minor) in DEFAULT_DEVICES {
        let node = Node {
            path: Path::new(path),
            kind: SFlag::S_IFCHR,
            major,
            minor,
            mode: 0o666,
            uid: None,
            gid: None,
        };
        make_device(ctx, root, &node)?;
    }
    let devs: &[LinuxDevice] = ctx
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.devices().as_deref())
        .unwrap_or(&[]);
    for d in devs {
        let kind = match d.typ() {
            LinuxDeviceType::C | LinuxDeviceType::U => SFlag::S_IFCHR,
            LinuxDeviceType::B => SFlag::S_IFBLK,
            LinuxDeviceType::P => SFlag::S_IFIFO,
            LinuxDeviceType::A => {
                return Err(Error::invalid(
                    "linux.devices",
                    format!("{}: type a is not a device", d.path().display()),
                ))
            }
        };
        if !d.path().starts_with("/dev") {
            return Err(Error::invalid(
                "linux.devices",
                format!("{} is not under /dev", d.path().display()),
            ));
        }
        let node = Node {
            path: d.path(),
            kind,
            major: d.major() as u64,
            minor: d.minor() as u64,
            mode: d.file_mode().unwrap_or(0o666),
            uid: d.uid(),
            gid: d.gid(),
        };
        make_device(ctx, root, &node)?;
    }
    let dev = mkdir_all_in_root(root, Path::new("/dev")).ctx(|| "resolve /dev".into())?;
    let dev = nix::fcntl::openat(
        &dev,
        ".",
        OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| "open /dev".into())?;
    for (target, name) in [
        ("/proc/self/fd", "fd"),
        ("/proc/self/fd/0", "stdin"),
        ("/proc/self/fd/1", "stdout"),
        ("/proc/self/fd/2", "stderr"),
    ] {
        match nix::unistd::symlinkat(target, &dev, name) {
            Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
            Err(e) => return Err(Error::sys(format!("symlink /dev/{name}"), e)),
        }
    }
    // /dev/ptmx must be the devpts instance's ptmx (devpts(5) newinstance).
    let _ = nix::unistd::unlinkat(&dev, "ptmx", nix::unistd::UnlinkatFlags::NoRemoveDir);
    nix::unistd::symlinkat("pts/ptmx", &dev, "ptmx").ctx(|| "symlink /dev/ptmx".into())?;
    Ok(())
}

/// A device node to create in the container's /dev.
pub(super) struct Node<'a> {
    path: &'a Path,
    kind: SFlag,
    major: u64,
    minor: u64,
    mode: u32,
    uid: Option<u32>,
    gid: Option<u32>,
}

pub(super) fn make_device(ctx: &RootfsCtx, root: &OwnedFd, node: &Node) -> Result<()> {
    let Node {
        path,
        kind,
        major,
        minor,
        mode,
        uid,
        gid,
    } = *node;
    if ctx.in_userns {
        // mknod(2) is not allowed in a user namespace: bind the host's node
        // onto a fresh file (whatever the image had there is replaced).
        let t = crate::fs::resolve::fresh_file_in_root(root, path)
            .ctx(|| format!("create {}", path.display()))?;
        return mount(
            Some(path),
            &fdpath(&t),
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .ctx(|| format!("bind device {}", path.display()));
    }
    let parent = path.parent().unwrap_or(Path::new("/dev"));
    let name = path
        .file_name()
        .ok_or_else(|| Error::invalid("linux.devices", path.display().to_string()))?;
    let dir = mkdir_all_in_root(root, parent).ctx(|| format!("resolve {}", parent.display()))?;
    let dir = nix::fcntl::openat(
        &dir,
        ".",
        OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| "open device dir".into())?;
    // Replace whatever is there (a file or a symlink is never followed).
    let _ = nix::unistd::unlinkat(&dir, name, nix::unistd::UnlinkatFlags::NoRemoveDir);
    mknodat(
        &dir,
        name,
        kind,
        Mode::from_bits_truncate(mode),
        makedev(major, minor),
    )
    .ctx(|| format!("mknod {}", path.display()))?;
    if uid.is_some() || gid.is_some() {
        nix::unistd::fchownat(
            &dir,
            name,
            uid.map(nix::unistd::Uid::from_raw),
            gid.map(nix::unistd::Gid::from_raw),
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .ctx(|| format!("chown {}", path.display()))?;
    }
    Ok(())
}
