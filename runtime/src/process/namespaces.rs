//! Which namespaces a container gets (config-linux.md "Namespaces") and how:
//! new ones are created by the one clone3(2) of the init, except the cgroup
//! namespace, which the init unshares after it has joined its cgroups (so
//! that its cgroup is the namespace root). Namespaces given by `path` are
//! joined with setns(2) by the init, the user namespace first; a pid
//! namespace path is joined by berth just before the clone, as setns(2)
//! only moves the children of the caller into a pid namespace.

use crate::error::{Error, Result};
use crate::process::CLONE_NEWTIME;
use nix::sched::CloneFlags;
use oci_spec::runtime::{LinuxNamespace, LinuxNamespaceType};
use std::path::PathBuf;

#[derive(Debug, Default, Clone)]
pub struct Plan {
    /// New namespaces created by clone3.
    pub clone_flags: u64,
    /// The init unshares a cgroup namespace after joining its cgroup.
    pub new_cgroup: bool,
    pub new_user: bool,
    pub new_mount: bool,
    pub new_pid: bool,
    pub new_uts: bool,
    /// A new time namespace: berth unshares it before the clone (so its
    /// offsets can be written while no process is in it yet) and the init
    /// is born in it.
    pub new_time: bool,
    /// No mount namespace at all: the container shares berth's mount
    /// table and is only chroot(2)ed into its rootfs.
    pub shared_mount: bool,
    /// Namespaces the init joins, user first.
    pub join: Vec<(CloneFlags, PathBuf)>,
    /// A pid namespace berth joins before the clone.
    pub join_pid: Option<PathBuf>,
}

fn flag(t: LinuxNamespaceType) -> u64 {
    match t {
        LinuxNamespaceType::Mount => libc::CLONE_NEWNS as u64,
        LinuxNamespaceType::Cgroup => libc::CLONE_NEWCGROUP as u64,
        LinuxNamespaceType::Uts => libc::CLONE_NEWUTS as u64,
        LinuxNamespaceType::Ipc => libc::CLONE_NEWIPC as u64,
        LinuxNamespaceType::User => libc::CLONE_NEWUSER as u64,
        LinuxNamespaceType::Pid => libc::CLONE_NEWPID as u64,
        LinuxNamespaceType::Network => libc::CLONE_NEWNET as u64,
        LinuxNamespaceType::Time => CLONE_NEWTIME,
    }
}

impl Plan {
    /// Whether the container gets a UTS namespace of its own (new or joined).
    pub fn has_uts(&self) -> bool {
        self.new_uts
            || self
                .join
                .iter()
                .any(|(f, _)| *f == CloneFlags::CLONE_NEWUTS)
    }

    /// Whether the container's init is in a user namespace other than
    /// berth's (new or joined).
    pub fn in_userns(&self) -> bool {
        self.new_user
            || self
                .join
                .iter()
                .any(|(f, _)| *f == CloneFlags::CLONE_NEWUSER)
    }

    pub fn new(list: &[LinuxNamespace]) -> Result<Plan> {
        let mut p = Plan::default();
        let mut joined_mount = false;
        for ns in list {
            let t = ns.typ();
            match ns.path() {
                None => {
                    match t {
                        LinuxNamespaceType::Cgroup => p.new_cgroup = true,
                        LinuxNamespaceType::Time
                            if !std::path::Path::new("/proc/self/ns/time").exists() =>
                        {
                            return Err(Error::invalid(
                                "linux.namespaces",
                                "the kernel has no time namespaces",
                            ))
                        }
                        LinuxNamespaceType::Time => p.new_time = true,
                        _ => p.clone_flags |= flag(t),
                    }
                    p.new_user |= t == LinuxNamespaceType::User;
                    p.new_mount |= t == LinuxNamespaceType::Mount;
                    p.new_pid |= t == LinuxNamespaceType::Pid;
                    p.new_uts |= t == LinuxNamespaceType::Uts;
                }
                Some(path) => {
                    check_ns_file(t, path)?;
                    joined_mount |= t == LinuxNamespaceType::Mount;
                    let f = CloneFlags::from_bits_truncate(flag(t) as i32);
                    match t {
                        LinuxNamespaceType::Pid => p.join_pid = Some(path.clone()),
                        LinuxNamespaceType::User => p.join.insert(0, (f, path.clone())),
                        _ => p.join.push((f, path.clone())),
                    }
                }
            }
        }
        p.shared_mount = !p.new_mount && !joined_mount;
        Ok(p)
    }
}

/// A namespace path must be an nsfs file of the right type.
fn check_ns_file(t: LinuxNamespaceType, path: &std::path::Path) -> Result<()> {
    use std::os::fd::AsRawFd;
    let f = std::fs::File::open(path).map_err(|e| {
        Error::invalid(
            "linux.namespaces",
            format!("{t} path {}: {e}", path.display()),
        )
    })?;
    // SAFETY: NS_GET_NSTYPE takes no argument and only reads the fd.
    let got = unsafe {
        libc::ioctl(f.as_raw_fd(), 0xb703 /* NS_GET_NSTYPE */)
    };
    if got < 0 || got as u64 != flag(t) {
        return Err(Error::invalid(
            "linux.namespaces",
            format!("{t} path {} is not a {t} namespace", path.display()),
        ));
    }
    Ok(())
}
