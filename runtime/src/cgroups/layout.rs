//! The host's cgroup hierarchies (from /proc/self/mountinfo), berth's own
//! cgroup in each, and `linux.cgroupsPath` parsed (runc's rules for
//! relative and absolute paths).

use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// One mounted cgroup hierarchy.
#[derive(Clone, Debug)]
pub struct Hierarchy {
    /// Where it is mounted on the host.
    pub mount: PathBuf,
    /// The path inside the hierarchy that is mounted there ("/" usually).
    pub mount_root: PathBuf,
    /// v1 controllers (and `name=` options); empty for cgroup2.
    pub controllers: Vec<String>,
    pub v2: bool,
}

impl Hierarchy {
    /// The directory name to use under a container's cgroup mount.
    pub fn name(&self) -> String {
        if self.v2 {
            "unified".into()
        } else {
            self.controllers
                .iter()
                .map(|c| c.strip_prefix("name=").unwrap_or(c))
                .collect::<Vec<_>>()
                .join(",")
        }
    }
    pub(super) fn has(&self, c: &str) -> bool {
        self.controllers.iter().any(|x| x == c)
    }
}

/// The host's cgroup layout.
#[derive(Clone, Debug)]
pub struct Layout {
    pub hierarchies: Vec<Hierarchy>,
}

impl Layout {
    /// Reads the layout from /proc/self/mountinfo.
    pub fn detect() -> Result<Layout> {
        let hierarchies = crate::fs::mountinfo::read()?
            .into_iter()
            .filter_map(|m| {
                let v2 = match m.fstype.as_str() {
                    "cgroup2" => true,
                    "cgroup" => false,
                    _ => return None,
                };
                let controllers = if v2 {
                    Vec::new()
                } else {
                    let skip = ["noprefix", "clone_children", "xattr", "cpuset_v2_mode"];
                    m.super_options
                        .split(',')
                        .filter(|o| !matches!(*o, "rw" | "ro") && !o.starts_with("release_agent"))
                        .filter(|o| !skip.contains(o))
                        .map(str::to_string)
                        .collect()
                };
                Some(Hierarchy {
                    mount: m.mount_point,
                    mount_root: m.root,
                    controllers,
                    v2,
                })
            })
            .collect();
        Ok(Layout { hierarchies })
    }

    /// A host with only cgroup2 mounted.
    pub fn unified(&self) -> bool {
        !self.hierarchies.is_empty() && self.hierarchies.iter().all(|h| h.v2)
    }
}

/// berth's own cgroup in a hierarchy, from /proc/self/cgroup.
pub(super) fn own_cgroup(own: &str, h: &Hierarchy) -> PathBuf {
    for line in own.lines() {
        let mut f = line.splitn(3, ':');
        let (_, ctrls, path) = (f.next(), f.next().unwrap_or(""), f.next().unwrap_or("/"));
        let matches = if h.v2 {
            ctrls.is_empty()
        } else {
            let set: Vec<&str> = ctrls.split(',').collect();
            !ctrls.is_empty() && h.controllers.iter().all(|c| set.contains(&c.as_str()))
        };
        if matches {
            return PathBuf::from(path);
        }
    }
    PathBuf::from("/")
}

/// The host directory of cgroup path `cg` (absolute within the hierarchy).
pub(super) fn host_dir(h: &Hierarchy, cg: &Path) -> PathBuf {
    let rel = cg.strip_prefix(&h.mount_root).unwrap_or(cg);
    let rel = rel.strip_prefix("/").unwrap_or(rel);
    h.mount.join(rel)
}

/// Splits `cgroupsPath` into (absolute?, components), refusing `..`.
pub(super) fn parse_path(path: &str) -> Result<(bool, Vec<&str>)> {
    let comps: Vec<&str> = path
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    if comps.contains(&"..") {
        return Err(Error::invalid(
            "linux.cgroupsPath",
            format!("{path:?} contains .."),
        ));
    }
    if path.contains(':') && !path.starts_with('/') {
        return Err(Error::invalid(
            "linux.cgroupsPath",
            format!("{path:?} looks like a systemd slice:prefix:name path; --systemd-cgroup is not supported yet"),
        ));
    }
    if comps.is_empty() {
        return Err(Error::invalid(
            "linux.cgroupsPath",
            format!("{path:?} names no cgroup"),
        ));
    }
    Ok((path.starts_with('/'), comps))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert!(parse_path("../x").is_err());
        assert!(parse_path("/").is_err());
        assert_eq!(parse_path("/a/b").unwrap(), (true, vec!["a", "b"]));
        assert_eq!(parse_path("a//b/").unwrap(), (false, vec!["a", "b"]));
    }

    #[test]
    fn own_cgroup_lines() {
        let own = "4:memory:/x/y\n3:cpu,cpuacct:/c\n0::/u\n";
        let h = |c: &[&str], v2| Hierarchy {
            mount: "/sys/fs/cgroup/m".into(),
            mount_root: "/".into(),
            controllers: c.iter().map(|s| s.to_string()).collect(),
            v2,
        };
        assert_eq!(
            own_cgroup(own, &h(&["memory"], false)),
            PathBuf::from("/x/y")
        );
        assert_eq!(
            own_cgroup(own, &h(&["cpu", "cpuacct"], false)),
            PathBuf::from("/c")
        );
        assert_eq!(own_cgroup(own, &h(&[], true)), PathBuf::from("/u"));
    }
}
