//! Idmapped mounts (config.md "POSIX-platform Mounts" `uidMappings`,
//! `gidMappings`; options `idmap`, `ridmap`): the parent makes each one
//! before the clone, as a detached copy of the source
//! (open_tree(OPEN_TREE_CLONE)) with MOUNT_ATTR_IDMAP set from a user
//! namespace that has the mount's mapping; the init inherits the fds and
//! moves the trees onto their destinations (`rootfs/`).
//!
//! The mapping reads like a user namespace's: a file owned by
//! `containerID + n` on disk is seen as `hostID + n` through the mount, so
//! with the container's own mapping files owned by 0 on disk belong to the
//! container's root.
//!
//! The user namespace comes from a short-lived helper process, cloned
//! only when a config has such a mount (no thread is involved).

use crate::error::{Error, Result, SysCtx};
use crate::fs::newmount;
use crate::process;
use crate::rootfs::parse_options;
use nix::mount::MsFlags;
use oci_spec::runtime::{LinuxIdMapping, Spec};
use std::os::fd::OwnedFd;
use std::path::Path;

/// An idmapped tree per mount index that asks for one.
pub(crate) type Trees = Vec<(usize, OwnedFd)>;

/// A user namespace with the given mappings, as an fd (user_namespaces(7)).
fn userns(uids: &[LinuxIdMapping], gids: &[LinuxIdMapping]) -> Result<OwnedFd> {
    let (r, w) = nix::unistd::pipe().ctx(|| "pipe".into())?;
    let c = process::clone3(libc::CLONE_NEWUSER as u64, None)
        .ctx(|| "clone a user namespace for an idmapped mount".into())?;
    if c.pid == 0 {
        // Only holds the namespace until berth has opened it.
        drop(w);
        let _ = nix::unistd::read(&r, &mut [0u8; 1]);
        process::exit_child(0);
    }
    drop(r);
    let res = (|| {
        process::write_id_map(c.pid, "uid_map", "mounts[].uidMappings", uids)?;
        process::write_id_map(c.pid, "gid_map", "mounts[].gidMappings", gids)?;
        let p = format!("/proc/{}/ns/user", c.pid);
        nix::fcntl::open(
            p.as_str(),
            nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .ctx(|| format!("open {p}"))
    })();
    drop(w);
    process::kill_and_reap(c.pid, true);
    res
}

/// The idmapped trees of `spec`'s mounts (bundle-relative sources are
/// taken from `bundle`). Checked beforehand by `rootfs::check`.
pub(crate) fn prepare(spec: &Spec, bundle: &Path) -> Result<Trees> {
    let mut trees = Vec::new();
    // One user namespace per distinct mapping.
    let mut made: Vec<(Vec<LinuxIdMapping>, Vec<LinuxIdMapping>, OwnedFd)> = Vec::new();
    let linux = spec.linux().as_ref();
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        let o = parse_options(m.options().as_deref().unwrap_or(&[]));
        if o.idmap.is_none() && m.uid_mappings().is_none() {
            continue;
        }
        let field = format!("mounts[{i}] {}", m.destination().display());
        let pick = |own: &Option<Vec<LinuxIdMapping>>, ns: Option<&Vec<LinuxIdMapping>>| {
            own.clone().or_else(|| ns.cloned()).unwrap_or_default()
        };
        let uids = pick(
            m.uid_mappings(),
            linux.and_then(|l| l.uid_mappings().as_ref()),
        );
        let gids = pick(
            m.gid_mappings(),
            linux.and_then(|l| l.gid_mappings().as_ref()),
        );
        let pos = match made.iter().position(|(u, g, _)| *u == uids && *g == gids) {
            Some(p) => p,
            None => {
                let fd = userns(&uids, &gids).map_err(|e| Error::Other(format!("{field}: {e}")))?;
                made.push((uids, gids, fd));
                made.len() - 1
            }
        };
        let source = m.source().clone().unwrap_or_default();
        let source = if source.is_relative() {
            bundle.join(source)
        } else {
            source
        };
        let rec = o.flags.contains(MsFlags::MS_REC);
        let path = std::ffi::CString::new(source.as_os_str().as_encoded_bytes())
            .map_err(|_| Error::invalid(&field, "source contains a NUL byte"))?;
        let tree = newmount::clone_tree(libc::AT_FDCWD, &path, rec)
            .map_err(|e| Error::Other(format!("{field}: {}: {e}", source.display())))?;
        let recursive = o.idmap == Some(true);
        newmount::setattr(
            &tree,
            newmount::attr::IDMAP,
            0,
            Some(&made[pos].2),
            recursive,
        )
        .map_err(|e| {
            Error::Other(format!(
                "{field}: idmap {} (does its filesystem support idmapped mounts?): {e}",
                source.display()
            ))
        })?;
        trees.push((i, tree));
    }
    Ok(trees)
}
