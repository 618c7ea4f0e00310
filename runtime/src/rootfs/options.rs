//! Mount options (config.md "Mounts", mount(8) names): parsed into flags,
//! propagation, recursive attributes, berth's own options and data, and
//! checked before `create` does anything.

use nix::mount::MsFlags;
use oci_spec::runtime::Spec;

/// Parsed mount options.
#[derive(Debug, PartialEq, Eq)]
pub struct Opts {
    pub flags: MsFlags,
    /// Propagation changes applied after the mount (MS_SHARED, ...).
    pub prop: MsFlags,
    /// Options passed to the filesystem as data (mode=755, size=...).
    pub data: Vec<String>,
    /// Recursive attributes (`rro`, `rnosuid`, ...): MOUNT_ATTR_* bits
    /// set and cleared on the mount and every submount (mount_setattr(2)
    /// with AT_RECURSIVE).
    pub rec_set: u64,
    pub rec_clr: u64,
    /// `idmap` (false) or `ridmap` (true).
    pub idmap: Option<bool>,
    /// `tmpcopyup`: the tmpfs starts with what was at its destination.
    pub tmpcopyup: bool,
}

/// Every option `parse_options` knows (what `features` reports).
pub const MOUNT_OPTIONS: &[&str] = &[
    "async",
    "atime",
    "bind",
    "defaults",
    "dev",
    "diratime",
    "dirsync",
    "exec",
    "idmap",
    "iversion",
    "lazytime",
    "loud",
    "mand",
    "noatime",
    "nodev",
    "nodiratime",
    "noexec",
    "noiversion",
    "nolazytime",
    "nomand",
    "norelatime",
    "nostrictatime",
    "nosuid",
    "nosymfollow",
    "private",
    "ratime",
    "rbind",
    "rdev",
    "rdiratime",
    "relatime",
    "remount",
    "rexec",
    "ridmap",
    "rnoatime",
    "rnodev",
    "rnodiratime",
    "rnoexec",
    "rnorelatime",
    "rnostrictatime",
    "rnosuid",
    "rnosymfollow",
    "ro",
    "rprivate",
    "rrelatime",
    "rro",
    "rrw",
    "rshared",
    "rslave",
    "rstrictatime",
    "rsuid",
    "rsymfollow",
    "runbindable",
    "rw",
    "shared",
    "silent",
    "slave",
    "strictatime",
    "suid",
    "symfollow",
    "sync",
    "tmpcopyup",
    "unbindable",
];

/// MS_NOSYMFOLLOW (Linux 5.10), which nix does not name.
pub(super) const MS_NOSYMFOLLOW: MsFlags = MsFlags::from_bits_retain(256);

/// The recursive option `name` as (set, clear) MOUNT_ATTR_* bits.
pub(super) fn recursive(name: &str) -> Option<(u64, u64)> {
    use crate::fs::newmount::attr::*;
    Some(match name {
        "rro" => (RDONLY, 0),
        "rrw" => (0, RDONLY),
        "rnosuid" => (NOSUID, 0),
        "rsuid" => (0, NOSUID),
        "rnodev" => (NODEV, 0),
        "rdev" => (0, NODEV),
        "rnoexec" => (NOEXEC, 0),
        "rexec" => (0, NOEXEC),
        "rnodiratime" => (NODIRATIME, 0),
        "rdiratime" => (0, NODIRATIME),
        "rnosymfollow" => (NOSYMFOLLOW, 0),
        "rsymfollow" => (0, NOSYMFOLLOW),
        // The access-time mode is one field: cleared, then set.
        "rnoatime" => (NOATIME, ATIME),
        "rstrictatime" | "rnorelatime" => (STRICTATIME, ATIME),
        "rrelatime" | "ratime" | "rnostrictatime" => (RELATIME, ATIME),
        _ => return None,
    })
}

/// Splits mount(8)-style options into flags, propagation, recursive
/// attributes, berth's own options and data.
pub fn parse_options(opts: &[String]) -> Opts {
    let mut o = Opts {
        flags: MsFlags::empty(),
        prop: MsFlags::empty(),
        data: Vec::new(),
        rec_set: 0,
        rec_clr: 0,
        idmap: None,
        tmpcopyup: false,
    };
    for opt in opts {
        let (set, clear) = match opt.as_str() {
            "defaults" => continue,
            "ro" => (MsFlags::MS_RDONLY, MsFlags::empty()),
            "rw" => (MsFlags::empty(), MsFlags::MS_RDONLY),
            "nosuid" => (MsFlags::MS_NOSUID, MsFlags::empty()),
            "suid" => (MsFlags::empty(), MsFlags::MS_NOSUID),
            "nodev" => (MsFlags::MS_NODEV, MsFlags::empty()),
            "dev" => (MsFlags::empty(), MsFlags::MS_NODEV),
            "noexec" => (MsFlags::MS_NOEXEC, MsFlags::empty()),
            "exec" => (MsFlags::empty(), MsFlags::MS_NOEXEC),
            "sync" => (MsFlags::MS_SYNCHRONOUS, MsFlags::empty()),
            "async" => (MsFlags::empty(), MsFlags::MS_SYNCHRONOUS),
            "dirsync" => (MsFlags::MS_DIRSYNC, MsFlags::empty()),
            "remount" => (MsFlags::MS_REMOUNT, MsFlags::empty()),
            "mand" => (MsFlags::MS_MANDLOCK, MsFlags::empty()),
            "nomand" => (MsFlags::empty(), MsFlags::MS_MANDLOCK),
            "atime" => (MsFlags::empty(), MsFlags::MS_NOATIME),
            "noatime" => (MsFlags::MS_NOATIME, MsFlags::empty()),
            "diratime" => (MsFlags::empty(), MsFlags::MS_NODIRATIME),
            "nodiratime" => (MsFlags::MS_NODIRATIME, MsFlags::empty()),
            "bind" => (MsFlags::MS_BIND, MsFlags::empty()),
            "rbind" => (MsFlags::MS_BIND | MsFlags::MS_REC, MsFlags::empty()),
            "relatime" => (MsFlags::MS_RELATIME, MsFlags::empty()),
            "norelatime" => (MsFlags::empty(), MsFlags::MS_RELATIME),
            "strictatime" => (MsFlags::MS_STRICTATIME, MsFlags::empty()),
            "nostrictatime" => (MsFlags::empty(), MsFlags::MS_STRICTATIME),
            "lazytime" => (MsFlags::MS_LAZYTIME, MsFlags::empty()),
            "nolazytime" => (MsFlags::empty(), MsFlags::MS_LAZYTIME),
            "iversion" => (MsFlags::MS_I_VERSION, MsFlags::empty()),
            "noiversion" => (MsFlags::empty(), MsFlags::MS_I_VERSION),
            "nosymfollow" => (MS_NOSYMFOLLOW, MsFlags::empty()),
            "symfollow" => (MsFlags::empty(), MS_NOSYMFOLLOW),
            "silent" => (MsFlags::MS_SILENT, MsFlags::empty()),
            "loud" => (MsFlags::empty(), MsFlags::MS_SILENT),
            "private" | "rprivate" | "shared" | "rshared" | "slave" | "rslave" | "unbindable"
            | "runbindable" => {
                o.prop |= propagation(opt).unwrap_or(MsFlags::empty());
                continue;
            }
            "tmpcopyup" => {
                o.tmpcopyup = true;
                continue;
            }
            "idmap" | "ridmap" => {
                o.idmap = Some(opt == "ridmap");
                continue;
            }
            other => {
                match recursive(other) {
                    Some((set, clr)) => {
                        o.rec_set = (o.rec_set & !clr) | set;
                        o.rec_clr = (o.rec_clr & !set) | clr;
                    }
                    None => o.data.push(opt.clone()),
                }
                continue;
            }
        };
        o.flags = (o.flags | set) & !clear;
    }
    o
}

/// Checks what `create` would only find out half way: options a mount
/// cannot honour (config.md "Linux mount options": an option berth does
/// not apply is an error, never silently dropped) and idmap settings.
pub fn check(spec: &Spec) -> std::result::Result<(), String> {
    let linux = spec.linux().as_ref();
    let userns_maps = linux
        .and_then(|l| l.uid_mappings().as_ref())
        .is_some_and(|m| !m.is_empty());
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        let field = format!("mounts[{i}] {}", m.destination().display());
        let o = parse_options(m.options().as_deref().unwrap_or(&[]));
        let typ = m.typ().as_deref().unwrap_or("");
        let bind = o.flags.contains(MsFlags::MS_BIND);
        // Filesystem data on a bind mount (`mode=755`) is what runc hands
        // to the kernel, which ignores it for binds: passed on, not refused.
        if o.tmpcopyup && typ != "tmpfs" {
            return Err(format!(
                "{field}: tmpcopyup is only for tmpfs mounts, not {typ:?}"
            ));
        }
        let (uids, gids) = (m.uid_mappings().as_ref(), m.gid_mappings().as_ref());
        if uids.is_some() != gids.is_some() {
            return Err(format!(
                "{field}: uidMappings and gidMappings must be given together"
            ));
        }
        if o.idmap.is_some() || uids.is_some() {
            if !bind {
                return Err(format!(
                    "{field}: idmapped mounts (idmap, ridmap, uidMappings) are only for bind mounts"
                ));
            }
            if uids.is_none() && !userns_maps {
                return Err(format!(
                    "{field}: idmap needs uidMappings and gidMappings, or a user namespace to take them from"
                ));
            }
        }
    }
    Ok(())
}

/// Propagation names as `rootfsPropagation` and mount options take them.
pub fn propagation(name: &str) -> Option<MsFlags> {
    let rec = MsFlags::MS_REC;
    Some(match name {
        "private" => MsFlags::MS_PRIVATE,
        "rprivate" => MsFlags::MS_PRIVATE | rec,
        "shared" => MsFlags::MS_SHARED,
        "rshared" => MsFlags::MS_SHARED | rec,
        "slave" => MsFlags::MS_SLAVE,
        "rslave" => MsFlags::MS_SLAVE | rec,
        "unbindable" => MsFlags::MS_UNBINDABLE,
        "runbindable" => MsFlags::MS_UNBINDABLE | rec,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn every_listed_option_is_known() {
        for o in MOUNT_OPTIONS {
            let p = parse_options(&[o.to_string()]);
            assert!(p.data.is_empty(), "{o} would be passed as filesystem data");
        }
        let p = parse_options(&s(&["rbind", "rro", "rnoatime", "ridmap", "tmpcopyup"]));
        assert_eq!(
            p.rec_set,
            crate::fs::newmount::attr::RDONLY | crate::fs::newmount::attr::NOATIME
        );
        assert_eq!(p.rec_clr, crate::fs::newmount::attr::ATIME);
        assert_eq!((p.idmap, p.tmpcopyup), (Some(true), true));
    }

    #[test]
    fn options() {
        let o = parse_options(&s(&[
            "nosuid",
            "noexec",
            "mode=755",
            "size=65536k",
            "ro",
            "rw",
        ]));
        assert_eq!(o.flags, MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC);
        assert_eq!(o.data, s(&["mode=755", "size=65536k"]));
        let o = parse_options(&s(&["rbind", "ro", "rprivate"]));
        assert_eq!(
            o.flags,
            MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_RDONLY
        );
        assert_eq!(o.prop, MsFlags::MS_PRIVATE | MsFlags::MS_REC);
        assert_eq!(
            propagation("rslave"),
            Some(MsFlags::MS_SLAVE | MsFlags::MS_REC)
        );
        assert_eq!(propagation("bogus"), None);
    }
}
