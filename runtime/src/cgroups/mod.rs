//! Cgroups v1, v2 and hybrid hosts, written through cgroupfs directly.
//!
//! berth detects the layout from one read of /proc/self/mountinfo:
//! - unified: one cgroup2 mount at /sys/fs/cgroup; the container gets one
//!   directory and is cloned straight into it (`CLONE_INTO_CGROUP`);
//! - legacy/hybrid: one directory per mounted v1 hierarchy (plus the
//!   cgroup2 mount of a hybrid host, as runc does); the parent writes the
//!   init's pid to each `cgroup.procs` before releasing it.
//!
//! Relative `linux.cgroupsPath` values (and the default `berth/<id>`) are
//! taken relative to berth's own cgroup (on a unified host, to its parent,
//! which has no processes), absolute ones to the hierarchy root (runc's
//! rules). Only the directories berth creates are removed on delete.
//!
//! The folder: `layout` (hierarchies and paths), `limits` (what v1 and v2
//! share), `v1` and `v2` (each hierarchy's limit files), `procs` (the
//! processes in a container's cgroup, killing them, removal), `devices` (the
//! device cgroup: v1 rules or the v2 eBPF program), `rdt` (`intelRdt`
//! through resctrl), `systemd` (the systemd driver: units over D-Bus).

pub mod devices;
mod layout;
mod limits;
mod procs;
pub mod rdt;
pub mod systemd;
mod v1;
mod v2;

pub use layout::{Hierarchy, Layout};
pub use procs::{frozen, kill_all, procs, remove};

use crate::error::{Error, Result};
use layout::{host_dir, own_cgroup, parse_path};
use limits::{hugetlb, limits_asked, rdma};
use oci_spec::runtime::LinuxResources;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use v1::apply_v1;
use v2::{apply_v2, check_memory_v2, enable_controllers, needed_v2, unified_map, DEFAULT_V2};

/// The container's cgroup, one directory per hierarchy.
pub struct Cgroup {
    /// (hierarchy, leaf directory) pairs.
    pub dirs: Vec<(Hierarchy, PathBuf)>,
    unified: bool,
    /// The systemd driver's unit: systemd makes the directory (after the
    /// clone, around the init's pid) instead of berth.
    pub unit: Option<crate::cgroups::systemd::Unit>,
    /// Rootless without a cgroup of its own: the cgroups the container
    /// stays in (berth's caller's), for its `cgroup` mount only; never
    /// written, joined, frozen or removed.
    view: Vec<(Hierarchy, PathBuf)>,
}

impl Cgroup {
    /// Works out where the container's cgroup goes (nothing is created).
    pub fn plan(layout: &Layout, cgroups_path: &str) -> Result<Cgroup> {
        let (abs, comps) = parse_path(cgroups_path)?;
        let own = if abs {
            String::new()
        } else {
            std::fs::read_to_string("/proc/self/cgroup")
                .map_err(|e| Error::io("cannot read", "/proc/self/cgroup", e))?
        };
        let mut dirs = Vec::new();
        for h in &layout.hierarchies {
            let mut cg = if abs {
                PathBuf::from("/")
            } else if h.v2 && layout.unified() {
                // berth's own cgroup most likely has processes, so no
                // controllers can be enabled below it: use its parent (runc).
                let own = own_cgroup(&own, h);
                own.parent().map(Path::to_path_buf).unwrap_or(own)
            } else {
                own_cgroup(&own, h)
            };
            cg.extend(&comps);
            dirs.push((h.clone(), host_dir(h, &cg)));
        }
        if dirs.is_empty() {
            return Err(Error::Other("no cgroup hierarchy is mounted".into()));
        }
        Ok(Cgroup {
            dirs,
            unified: layout.unified(),
            unit: None,
            view: Vec::new(),
        })
    }

    /// The systemd driver's cgroup: the unit's directory in the cgroup2
    /// hierarchy. cgroup v2 only (as berth refuses hybrid and v1 hosts
    /// for this driver; runc's v1 systemd driver is not followed).
    pub fn systemd(layout: &Layout, unit: crate::cgroups::systemd::Unit) -> Result<Cgroup> {
        let h = match &layout.hierarchies[..] {
            [h] if h.v2 => h.clone(),
            _ => {
                return Err(Error::Other(
                    "--systemd-cgroup needs a cgroup v2 (unified) host; this one mounts cgroup v1 hierarchies (use the cgroupfs driver)".into(),
                ))
            }
        };
        let dir = h.mount.join(&unit.cgroup);
        Ok(Cgroup {
            dirs: vec![(h, dir)],
            unified: true,
            unit: Some(unit),
            view: Vec::new(),
        })
    }

    /// Rootless: the cgroup as far as this user may have it. Every
    /// directory writable (a cgroup v2 subtree delegated to the user): all
    /// of it. Otherwise none, which is an error when the config asks for
    /// limits, as runc has it.
    pub fn for_rootless(self, res: Option<&LinuxResources>) -> Result<Cgroup> {
        let Some((_, dir)) = self.dirs.iter().find(|(h, d)| !writable(h, d)) else {
            return Ok(self);
        };
        if let Some(what) = res.and_then(limits_asked) {
            return Err(Error::invalid(
                format!("linux.resources.{what}"),
                format!(
                    "rootless: no permission to create or join cgroup {} (limits need a cgroup v2 subtree delegated to this user); rootless needs no limits + no cgroup path when no permission is granted for cgroups",
                    dir.display()
                ),
            ));
        }
        let view = self.callers()?;
        Ok(Cgroup {
            dirs: Vec::new(),
            unified: self.unified,
            unit: None,
            view,
        })
    }

    /// What the container's `cgroup` mount shows: its own cgroup, or
    /// (rootless without one) the one it stays in.
    pub(crate) fn mount_dirs(&self) -> &[(Hierarchy, PathBuf)] {
        if self.dirs.is_empty() {
            &self.view
        } else {
            &self.dirs
        }
    }

    /// The cgroup of an existing container from its recorded leaves.
    pub fn from_leaves(layout: &Layout, leaves: &[PathBuf]) -> Cgroup {
        let dirs = leaves
            .iter()
            .filter_map(|l| {
                let h = layout
                    .hierarchies
                    .iter()
                    .filter(|h| l.starts_with(&h.mount))
                    .max_by_key(|h| h.mount.as_os_str().len())?;
                Some((h.clone(), l.clone()))
            })
            .collect();
        Cgroup {
            dirs,
            unified: layout.unified(),
            unit: None,
            view: Vec::new(),
        }
    }

    /// The directories that do not exist yet, leaf first per hierarchy: what
    /// `create` will make and `delete` will remove. Recorded before creating.
    /// With `shared_parent` (berth's default `berth/<id>`), the `berth`
    /// parent is recorded too even when another container made it: delete
    /// removes a parent only if it is empty, so the last one out removes it.
    pub fn to_create(&self, shared_parent: bool) -> Vec<Vec<PathBuf>> {
        self.dirs
            .iter()
            .map(|(h, leaf)| {
                let mut v = Vec::new();
                let mut d = leaf.as_path();
                while d != h.mount && !d.exists() {
                    v.push(d.to_path_buf());
                    match d.parent() {
                        Some(p) => d = p,
                        None => break,
                    }
                }
                if shared_parent && v.len() == 1 {
                    if let Some(p) = leaf.parent().filter(|p| *p != h.mount) {
                        v.push(p.to_path_buf());
                    }
                }
                v
            })
            .collect()
    }

    /// Creates the directories, writes the resource limits and sets up
    /// the device rules (v1 `devices.*` files, or a v2 eBPF program).
    pub fn create(&self, res: Option<&LinuxResources>) -> Result<()> {
        if self.unit.is_some() {
            // systemd makes it once the init exists (`place`).
            return Ok(());
        }
        let extra = needed_v2(res);
        let mut found = Vec::new();
        for (h, leaf) in &self.dirs {
            // On a hybrid host the cgroup2 hierarchy holds only what the
            // config needs of it (hugetlb, the unified map's controllers).
            if h.v2 && (self.unified || !extra.is_empty()) {
                let defaults = if self.unified { DEFAULT_V2 } else { &[] };
                enable_controllers(&h.mount, leaf, defaults, &extra)?;
            }
            if !mkdir_all(leaf, h)? {
                found.push((h, leaf));
            }
        }
        check_joinable(&found)?;
        if let Some(res) = res {
            self.apply(res)?;
        }
        Ok(())
    }

    /// Writes the device rules once the init has made the rootfs (its
    /// `linux.devices` nodes included, which the rules need not allow, as
    /// runc orders it): v1's devices files, or the v2 device program, in
    /// `placed` (the systemd unit's directory) when given.
    pub(crate) fn restrict_devices(
        &self,
        placed: Option<&Path>,
        rules: &[crate::cgroups::devices::Rule],
    ) -> Result<()> {
        if let Some(dir) = placed {
            return crate::cgroups::devices::apply_v2(dir, rules);
        }
        for (h, leaf) in &self.dirs {
            if h.v2 && self.unified {
                crate::cgroups::devices::apply_v2(leaf, rules)?;
            } else if !h.v2 && h.has("devices") {
                crate::cgroups::devices::apply_v1(leaf, rules)?;
            }
        }
        Ok(())
    }

    /// The unified-mode leaf, for `CLONE_INTO_CGROUP`.
    pub fn unified_dir(&self) -> Option<&Path> {
        if self.unified {
            self.dirs.first().map(|(_, d)| d.as_path())
        } else {
            None
        }
    }

    /// [`Cgroup::unified_dir`] of [`Cgroup::mount_dirs`].
    pub(crate) fn mount_unified_dir(&self) -> Option<&Path> {
        if self.unified {
            self.mount_dirs().first().map(|(_, d)| d.as_path())
        } else {
            None
        }
    }

    /// The file that freezes the container (pause/resume) and tells whether
    /// it is frozen: the first hierarchy with a freezer, v1 `freezer.state`
    /// or cgroup2's `cgroup.freeze`. Recorded at create, so `status` reads
    /// one file instead of probing every hierarchy.
    pub fn freezer(&self) -> Option<PathBuf> {
        self.dirs.iter().find_map(|(h, d)| {
            if h.v2 {
                Some(d.join("cgroup.freeze"))
            } else if h.has("freezer") {
                Some(d.join("freezer.state"))
            } else {
                None
            }
        })
    }

    /// On a unified host, an fd of the leaf for clone3's `CLONE_INTO_CGROUP`
    /// (the child is born in its cgroup: no cgroup.procs write).
    pub fn clone_into_fd(&self) -> Result<Option<std::os::fd::OwnedFd>> {
        use nix::fcntl::OFlag;
        if self.unit.is_some() {
            return Ok(None);
        }
        self.unified_dir()
            .map(|d| {
                nix::fcntl::open(
                    d,
                    OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                    nix::sys::stat::Mode::empty(),
                )
                .map_err(|e| Error::sys(format!("open cgroup {}", d.display()), e))
            })
            .transpose()
    }

    /// The calling process's own cgroup directory in each hierarchy.
    fn callers(&self) -> Result<Vec<(Hierarchy, PathBuf)>> {
        let own = std::fs::read_to_string("/proc/self/cgroup")
            .map_err(|e| Error::io("cannot read", "/proc/self/cgroup", e))?;
        Ok(self
            .dirs
            .iter()
            .map(|(h, _)| (h.clone(), host_dir(h, &own_cgroup(&own, h))))
            .collect())
    }

    /// The systemd driver's cgroup as the caller (the container init,
    /// placed) is in it: the unit's directory as systemd made it, which
    /// the plan only foresees (a user manager's tree is wherever that
    /// manager runs). Read from /proc/self/cgroup, so before a cgroup
    /// namespace of the caller's own.
    pub(crate) fn as_placed(&self) -> Result<Cgroup> {
        Ok(Cgroup {
            dirs: self.callers()?,
            unified: self.unified,
            unit: self.unit.clone(),
            view: Vec::new(),
        })
    }

    /// Puts the cloned init in its cgroup. cgroupfs: `add`. systemd: the
    /// transient unit started around its pid, then what systemd does not
    /// set written directly (the limits again, exactly; the unified map,
    /// hugetlb) and the device program attached. Returns the unit's
    /// directory as systemd made it.
    pub(crate) fn place(
        &self,
        child: crate::process::Cloned,
        id: &str,
        res: Option<&LinuxResources>,
        devices: Option<&[crate::cgroups::devices::Rule]>,
        linux: Option<&oci_spec::runtime::Linux>,
        annotations: Option<&std::collections::HashMap<String, String>>,
    ) -> Result<Option<PathBuf>> {
        let Some(unit) = &self.unit else {
            self.add(child)?;
            return Ok(None);
        };
        use crate::cgroups::systemd;
        let mut props = match res {
            Some(r) => systemd::resource_properties(r)?,
            None => Vec::new(),
        };
        if let Some(rules) = devices {
            // systemd's own device program is in force from the unit's
            // start: it lets the init make the linux.devices nodes
            // (mknod only), berth's program at Ready refuses the rest.
            let make = crate::cgroups::devices::with_mknod_of_nodes(rules, linux);
            props.extend(systemd::device_properties(&make));
        }
        props.extend(systemd::annotation_properties(annotations)?);
        let mut bus = systemd::Bus::connect(unit.user)?;
        bus.start(unit, id, child.pid, props)?;
        let (h, _) = &self.dirs[0];
        // Where systemd puts the unit (runc computes it the same way);
        // asked for only when it is not there.
        let mut dir = h.mount.join(&unit.cgroup);
        if !dir.is_dir() {
            dir = h.mount.join(bus.control_group(&unit.name)?);
        }
        if unit.is_slice() {
            write(&dir, "cgroup.procs", &child.pid.to_string())?;
        }
        // systemd enables the controllers it manages; those it does not
        // know (hugetlb, rdma, a `unified` key's) are berth's to enable on
        // the way down, as on cgroupfs.
        let extra = needed_v2(res);
        if !extra.is_empty() {
            enable_controllers(&h.mount, &dir, &[], &extra)?;
        }
        let placed = Cgroup {
            dirs: vec![(h.clone(), dir.clone())],
            unified: true,
            unit: None,
            view: Vec::new(),
        };
        if let Some(res) = res {
            placed.apply(res)?;
        }
        Ok(Some(dir))
    }

    /// Moves a child into every directory (v1 and hybrid hosts; on unified
    /// hosts only when clone3 could not place it there itself).
    pub(crate) fn add(&self, child: crate::process::Cloned) -> Result<()> {
        if child.in_cgroup {
            return Ok(());
        }
        for (_, d) in &self.dirs {
            write(d, "cgroup.procs", &child.pid.to_string())?;
        }
        Ok(())
    }

    /// The checks `apply` makes before it writes anything that could
    /// harm the container (checkBeforeUpdate), for a caller that has
    /// another writer go first (systemd).
    pub(crate) fn check(&self, res: &LinuxResources) -> Result<()> {
        for (h, d) in &self.dirs {
            if h.v2 && self.unified {
                check_memory_v2(d, res)?;
            }
        }
        Ok(())
    }

    /// Writes `linux.resources`: memory, cpu, cpuset and pids; hugetlb,
    /// rdma and the `unified` map wherever the host has them, each an
    /// error where no hierarchy can take it.
    pub fn apply(&self, res: &LinuxResources) -> Result<()> {
        let (mut huge, mut rdma_done, mut unified_done) = (false, false, false);
        for (h, d) in &self.dirs {
            if h.v2 && self.unified {
                apply_v2(d, res)?;
            } else if !h.v2 {
                apply_v1(h, d, res)?;
            }
            huge |= hugetlb(h, d, res)?;
            rdma_done |= rdma(h, d, res)?;
            if h.v2 {
                unified_map(d, res)?;
                unified_done = true;
            }
        }
        let asked = |v: Option<bool>| v.unwrap_or(false);
        let missing = |field: &str, what: &str| {
            Err(Error::invalid(field, format!("this host has no {what}")))
        };
        if asked(res.hugepage_limits().as_ref().map(|l| !l.is_empty())) && !huge {
            return missing(
                "linux.resources.hugepageLimits",
                "hugetlb cgroup controller",
            );
        }
        if asked(res.rdma().as_ref().map(|r| !r.is_empty())) && !rdma_done {
            return missing("linux.resources.rdma", "rdma cgroup controller");
        }
        if asked(res.unified().as_ref().map(|u| !u.is_empty())) && !unified_done {
            return missing("linux.resources.unified", "cgroup v2 hierarchy");
        }
        Ok(())
    }
}

/// The container's directories that were there before `create` (a
/// caller's explicit cgroupsPath): frozen, the init would freeze on joining
/// and `create` would wait for it for ever, so it is refused; with
/// processes in it, berth goes on with runc's warning. Directories berth
/// made cost nothing here.
fn check_joinable(found: &[(&Hierarchy, &PathBuf)]) -> Result<()> {
    for (h, leaf) in found {
        let (file, frozen) = if h.v2 {
            ("cgroup.freeze", "1")
        } else if h.has("freezer") {
            ("freezer.state", "FROZEN")
        } else {
            continue;
        };
        let state = std::fs::read_to_string(leaf.join(file)).unwrap_or_default();
        if state.trim() == frozen {
            return Err(Error::Other(format!(
                "container's cgroup unexpectedly frozen ({})",
                leaf.display()
            )));
        }
    }
    let leaves: Vec<PathBuf> = found.iter().map(|(_, d)| (*d).clone()).collect();
    let n = procs(&leaves).len();
    if n > 0 {
        crate::error::warn(&format!(
            "container's cgroup is not empty: {n} process(es) found"
        ));
    }
    Ok(())
}

fn write(dir: &Path, file: &str, val: &str) -> Result<()> {
    let p = dir.join(file);
    std::fs::write(&p, val).map_err(|e| {
        Error::Other(format!(
            "cgroup: cannot write {val:?} to {}: {e}",
            p.display()
        ))
    })
}

/// Makes `leaf` and what is missing above it; returns whether the leaf
/// itself was made (a leaf that was there may hold processes, or be
/// frozen).
fn mkdir_all(leaf: &Path, h: &Hierarchy) -> Result<bool> {
    // A concurrent delete may remove an empty shared parent between two
    // steps: walk again.
    let mut tries = 0;
    loop {
        match mkdir_walk(leaf, h) {
            Err(Error::Io { err, .. }) if err.kind() == ErrorKind::NotFound && tries < 5 => {
                tries += 1
            }
            r => return r,
        }
    }
}

fn mkdir_walk(leaf: &Path, h: &Hierarchy) -> Result<bool> {
    // Walk down from the mount so cpuset dirs can inherit cpus and mems.
    let rel = leaf.strip_prefix(&h.mount).unwrap_or(leaf);
    let mut d = h.mount.clone();
    let mut made = false;
    for c in rel.components() {
        let parent = d.clone();
        d.push(c);
        made = match std::fs::create_dir(&d) {
            Ok(()) => true,
            Err(e) if e.kind() == ErrorKind::AlreadyExists => false,
            Err(e) => return Err(Error::io("cannot create cgroup", &d, e)),
        };
        // v1 cpuset: a directory starts with no cpus and mems, and no
        // process can join it then (ENOSPC). Each one on the way down that
        // is empty, berth's or a pre-made parent's (a kubelet pod cgroup),
        // takes its parent's, as runc fills them.
        if h.has("cpuset") {
            for f in ["cpuset.cpus", "cpuset.mems"] {
                if !made {
                    let mine = std::fs::read_to_string(d.join(f)).unwrap_or_default();
                    if !mine.trim().is_empty() {
                        continue;
                    }
                }
                let v = std::fs::read_to_string(parent.join(f)).unwrap_or_default();
                write(&d, f, v.trim())?;
            }
        }
    }
    Ok(made)
}

/// Whether this process may create (or join) `leaf`: the leaf's
/// `cgroup.procs` if it exists, else its nearest existing ancestor, is
/// writable (access(2) with the caller's ids).
fn writable(h: &Hierarchy, leaf: &Path) -> bool {
    use nix::unistd::{access, AccessFlags};
    if leaf.exists() {
        return access(&leaf.join("cgroup.procs"), AccessFlags::W_OK).is_ok();
    }
    let mut d = leaf;
    while let Some(p) = d.parent() {
        if p.exists() {
            return p.starts_with(&h.mount) && access(p, AccessFlags::W_OK).is_ok();
        }
        d = p;
    }
    false
}
