//! The systemd cgroup driver (`--systemd-cgroup`), as runc's: the
//! container's cgroup is a transient scope unit systemd makes on the system
//! bus (StartTransientUnit with the init's pid, `Delegate=yes`), limits as
//! unit properties where systemd has them. `cgroups/` writes what it has
//! not (the unified map, hugetlb, exactness) and berth's eBPF device
//! program to the unit's cgroup directly, as for cgroupfs.
//!
//! `linux.cgroupsPath` is `SLICE:PREFIX:NAME`: the unit `PREFIX-NAME.scope`
//! in `SLICE` (empty: `system.slice`; `-`: the root slice), or, for a NAME
//! ending in `.slice`, that slice itself. Rootless, the unit is the
//! calling user's, made by its user manager over the user bus (systemd
//! delegates `user@UID.service` to the user; empty SLICE: `user.slice`
//! there), as runc's rootless systemd driver does. The conversation happens after
//! the clone, before the init is released, on one blocking socket (no
//! thread), to the manager's private socket where berth may use it.
//!
//! The folder: this file plans the unit from `linux.cgroupsPath`;
//! `properties` turns `linux.resources`, device rules and annotations into
//! unit properties; `bus` is the D-Bus conversation with the manager;
//! `wire` the little of the D-Bus protocol it needs.

mod bus;
mod properties;
mod wire;

pub use bus::{available, Bus};
pub use properties::{
    annotation_properties, device_properties, resource_properties, Property, Value,
};

use crate::error::{Error, Result};
use std::path::PathBuf;

/// Where a container goes: its unit and that unit's cgroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unit {
    /// `system.slice`, `kubepods-burstable.slice`, ... (`-.slice`: root).
    pub slice: String,
    /// `PREFIX-NAME.scope`, or `NAME.slice`.
    pub name: String,
    /// The unit's cgroup, relative to the cgroup2 mount.
    pub cgroup: PathBuf,
    /// The calling user's manager's unit (rootless), not the system's.
    pub user: bool,
}

impl Unit {
    pub fn is_slice(&self) -> bool {
        self.name.ends_with(".slice")
    }
}

fn bad(path: &str, why: &str) -> Error {
    Error::invalid(
        "linux.cgroupsPath",
        format!("{path:?}: {why} (with --systemd-cgroup it is SLICE:PREFIX:NAME)"),
    )
}

/// A unit name part systemd accepts (unit_name_is_valid's alphabet).
fn valid_part(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b":-_.\\@".contains(&b))
}

/// The cgroup path of a slice: systemd nests `a-b-c.slice` as
/// `a.slice/a-b.slice/a-b-c.slice`; `-.slice` is the root.
pub fn slice_path(slice: &str) -> std::result::Result<PathBuf, String> {
    let Some(stem) = slice.strip_suffix(".slice") else {
        return Err(format!("slice {slice:?} does not end in .slice"));
    };
    if stem == "-" {
        return Ok(PathBuf::new());
    }
    if !valid_part(stem) || stem.starts_with('-') || stem.ends_with('-') || stem.contains("--") {
        return Err(format!("slice {slice:?} is not a valid slice name"));
    }
    let mut p = PathBuf::new();
    let mut prefix = String::new();
    for part in stem.split('-') {
        if !prefix.is_empty() {
            prefix.push('-');
        }
        prefix.push_str(part);
        p.push(format!("{prefix}.slice"));
    }
    Ok(p)
}

/// Parses `linux.cgroupsPath` for the systemd driver (empty: berth's
/// default `system.slice:berth:ID`, as runc's is `:runc:ID`). `user`: for
/// the calling user's manager, whose slices live in its own cgroup
/// (`user.slice/user-UID.slice/user@UID.service`), `user.slice` the default.
pub fn plan(cgroups_path: &str, id: &str, user: bool) -> Result<Unit> {
    let top = if user { "user.slice" } else { "system.slice" };
    let default = format!("{top}:berth:{id}");
    let path = if cgroups_path.is_empty() {
        default.as_str()
    } else {
        cgroups_path
    };
    let parts: Vec<&str> = path.split(':').collect();
    let [slice, prefix, name] = parts[..] else {
        return Err(bad(path, "not three fields separated by ':'"));
    };
    let slice = if slice.is_empty() { top } else { slice };
    let parent = slice_path(slice).map_err(|e| bad(path, &e))?;
    if name.is_empty() || !valid_part(name) {
        return Err(bad(
            path,
            "NAME is empty or has characters a unit name cannot",
        ));
    }
    let unit = if name.ends_with(".slice") {
        // A slice of its own, below SLICE (the prefix is not used).
        let own = slice_path(name).map_err(|e| bad(path, &e))?;
        if !own.starts_with(&parent) || own == parent {
            return Err(bad(path, &format!("{name} is not below {slice}")));
        }
        name.to_string()
    } else {
        if !prefix.is_empty() && !valid_part(prefix) {
            return Err(bad(path, "PREFIX has characters a unit name cannot"));
        }
        if prefix.is_empty() {
            format!("{name}.scope")
        } else {
            format!("{prefix}-{name}.scope")
        }
    };
    let cgroup = if unit.ends_with(".slice") {
        slice_path(&unit).map_err(|e| bad(path, &e))?
    } else {
        parent.join(&unit)
    };
    let cgroup = if user {
        let uid = crate::process::rootless::host_uid();
        PathBuf::from(format!("user.slice/user-{uid}.slice/user@{uid}.service")).join(cgroup)
    } else {
        cgroup
    };
    Ok(Unit {
        slice: slice.to_string(),
        name: unit,
        cgroup,
        user,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_slices() {
        let u = plan("", "c1", false).unwrap();
        assert_eq!(u.name, "berth-c1.scope");
        assert_eq!(u.cgroup, PathBuf::from("system.slice/berth-c1.scope"));
        let u = plan(
            "kubepods-burstable-pod1.slice:cri-containerd:abc",
            "x",
            false,
        )
        .unwrap();
        assert_eq!(u.name, "cri-containerd-abc.scope");
        assert_eq!(
            u.cgroup,
            PathBuf::from("kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice/cri-containerd-abc.scope")
        );
        let u = plan(":runc:y", "y", false).unwrap();
        assert_eq!(
            (u.slice.as_str(), u.name.as_str()),
            ("system.slice", "runc-y.scope")
        );
        let u = plan("-.slice::z", "z", false).unwrap();
        assert_eq!(u.cgroup, PathBuf::from("z.scope"));
        let u = plan("kubepods.slice::kubepods-besteffort.slice", "p", false).unwrap();
        assert!(u.is_slice());
        assert_eq!(
            u.cgroup,
            PathBuf::from("kubepods.slice/kubepods-besteffort.slice")
        );
        // The user's manager: its slices are below user@UID.service.
        let u = plan("", "c2", true).unwrap();
        let uid = crate::process::rootless::host_uid();
        assert_eq!(
            (u.slice.as_str(), u.name.as_str()),
            ("user.slice", "berth-c2.scope")
        );
        assert_eq!(
            u.cgroup,
            PathBuf::from(format!(
                "user.slice/user-{uid}.slice/user@{uid}.service/user.slice/berth-c2.scope"
            ))
        );
        for bad in [
            "/abs/path",
            "a:b",
            "a:b:c:d",
            "x.scope:p:n",
            "system.slice:p:",
            "a--b.slice:p:n",
            "s.slice:p:n/m",
        ] {
            let e = plan(bad, "i", false).unwrap_err().to_string();
            assert!(
                e.contains("linux.cgroupsPath") && e.contains(bad),
                "{bad}: {e}"
            );
        }
    }
}
