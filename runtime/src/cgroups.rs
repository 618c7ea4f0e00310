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

use crate::error::{Error, Result};
use oci_spec::runtime::LinuxResources;
use std::io::ErrorKind;
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
    fn has(&self, c: &str) -> bool {
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
fn own_cgroup(own: &str, h: &Hierarchy) -> PathBuf {
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
fn host_dir(h: &Hierarchy, cg: &Path) -> PathBuf {
    let rel = cg.strip_prefix(&h.mount_root).unwrap_or(cg);
    let rel = rel.strip_prefix("/").unwrap_or(rel);
    h.mount.join(rel)
}

/// Splits `cgroupsPath` into (absolute?, components), refusing `..`.
fn parse_path(path: &str) -> Result<(bool, Vec<&str>)> {
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

/// The container's cgroup, one directory per hierarchy.
pub struct Cgroup {
    /// (hierarchy, leaf directory) pairs.
    pub dirs: Vec<(Hierarchy, PathBuf)>,
    unified: bool,
    /// The systemd driver's unit: systemd makes the directory (after the
    /// clone, around the init's pid) instead of berth.
    pub unit: Option<crate::systemd::Unit>,
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
    pub fn systemd(layout: &Layout, unit: crate::systemd::Unit) -> Result<Cgroup> {
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
    pub fn create(
        &self,
        res: Option<&LinuxResources>,
        devices: Option<&[crate::devices::Rule]>,
    ) -> Result<()> {
        if self.unit.is_some() {
            // systemd makes it once the init exists (`place`).
            return Ok(());
        }
        let extra = needed_v2(res);
        for (h, leaf) in &self.dirs {
            // On a hybrid host the cgroup2 hierarchy holds only what the
            // config needs of it (hugetlb, the unified map's controllers).
            if h.v2 && (self.unified || !extra.is_empty()) {
                let defaults = if self.unified { DEFAULT_V2 } else { &[] };
                enable_controllers(&h.mount, leaf, defaults, &extra)?;
            }
            mkdir_all(leaf, h)?;
        }
        if let Some(res) = res {
            self.apply(res)?;
        }
        if let Some(rules) = devices {
            for (h, leaf) in &self.dirs {
                if h.v2 && self.unified {
                    crate::devices::apply_v2(leaf, rules)?;
                } else if !h.v2 && h.has("devices") {
                    crate::devices::apply_v1(leaf, rules)?;
                }
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
        devices: Option<&[crate::devices::Rule]>,
        annotations: Option<&std::collections::HashMap<String, String>>,
    ) -> Result<Option<PathBuf>> {
        let Some(unit) = &self.unit else {
            self.add(child)?;
            return Ok(None);
        };
        use crate::systemd;
        let mut props = match res {
            Some(r) => systemd::resource_properties(r)?,
            None => Vec::new(),
        };
        if let Some(rules) = devices {
            props.extend(systemd::device_properties(rules));
        }
        props.extend(systemd::annotation_properties(annotations)?);
        let bus = systemd::Bus::connect(unit.user)?;
        let rel = bus.start(unit, id, child.pid, props)?;
        let (h, _) = &self.dirs[0];
        let dir = h.mount.join(rel);
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
        if let Some(rules) = devices {
            crate::devices::apply_v2(&dir, rules)?;
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

fn write(dir: &Path, file: &str, val: &str) -> Result<()> {
    let p = dir.join(file);
    std::fs::write(&p, val).map_err(|e| {
        Error::Other(format!(
            "cgroup: cannot write {val:?} to {}: {e}",
            p.display()
        ))
    })
}

fn mkdir_all(leaf: &Path, h: &Hierarchy) -> Result<()> {
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

fn mkdir_walk(leaf: &Path, h: &Hierarchy) -> Result<()> {
    // Walk down from the mount so cpuset dirs can inherit cpus and mems.
    let rel = leaf.strip_prefix(&h.mount).unwrap_or(leaf);
    let mut d = h.mount.clone();
    for c in rel.components() {
        let parent = d.clone();
        d.push(c);
        match std::fs::create_dir(&d) {
            Ok(()) => {
                if h.has("cpuset") {
                    for f in ["cpuset.cpus", "cpuset.mems"] {
                        let v = std::fs::read_to_string(parent.join(f)).unwrap_or_default();
                        write(&d, f, v.trim())?;
                    }
                }
            }
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
            Err(e) => return Err(Error::io("cannot create cgroup", &d, e)),
        }
    }
    Ok(())
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

/// The first section of `res` that asks for a limit (device rules aside),
/// by its config name.
fn limits_asked(res: &LinuxResources) -> Option<&'static str> {
    let m = res.memory().as_ref();
    let c = res.cpu().as_ref();
    let b = res.block_io().as_ref();
    let any = |v: &[bool]| v.iter().any(|x| *x);
    [
        (
            "memory",
            m.is_some_and(|m| {
                any(&[
                    m.limit().is_some(),
                    m.reservation().is_some(),
                    m.swap().is_some(),
                    m.kernel().is_some(),
                    m.kernel_tcp().is_some(),
                    m.swappiness().is_some(),
                    m.disable_oom_killer().is_some(),
                ])
            }),
        ),
        (
            "cpu",
            c.is_some_and(|c| {
                any(&[
                    c.shares().is_some(),
                    c.quota().is_some(),
                    c.period().is_some(),
                    c.realtime_runtime().is_some(),
                    c.realtime_period().is_some(),
                    c.cpus().as_ref().is_some_and(|s| !s.is_empty()),
                    c.mems().as_ref().is_some_and(|s| !s.is_empty()),
                    c.idle().is_some(),
                ])
            }),
        ),
        ("pids", res.pids().is_some()),
        (
            "blockIO",
            b.is_some_and(|b| {
                b.weight().is_some()
                    || b.leaf_weight().is_some()
                    || [
                        b.throttle_read_bps_device().as_ref(),
                        b.throttle_write_bps_device().as_ref(),
                        b.throttle_read_iops_device().as_ref(),
                        b.throttle_write_iops_device().as_ref(),
                    ]
                    .iter()
                    .any(|v| v.is_some_and(|v| !v.is_empty()))
                    || b.weight_device().as_ref().is_some_and(|v| !v.is_empty())
            }),
        ),
        (
            "hugepageLimits",
            res.hugepage_limits()
                .as_ref()
                .is_some_and(|v| !v.is_empty()),
        ),
        ("network", res.network().is_some()),
        ("rdma", res.rdma().as_ref().is_some_and(|v| !v.is_empty())),
        (
            "unified",
            res.unified().as_ref().is_some_and(|v| !v.is_empty()),
        ),
    ]
    .into_iter()
    .find(|(_, asked)| *asked)
    .map(|(name, _)| name)
}

/// The controllers berth enables for every container on a unified host.
const DEFAULT_V2: &[&str] = &["cpu", "cpuset", "memory", "pids", "io", "hugetlb", "rdma"];

/// cgroup2 controllers the config needs by name: hugetlb for
/// hugepageLimits, rdma, and those the `unified` map's keys start with.
fn needed_v2(res: Option<&LinuxResources>) -> Vec<String> {
    let mut v = Vec::new();
    let Some(res) = res else { return v };
    if res
        .hugepage_limits()
        .as_ref()
        .is_some_and(|l| !l.is_empty())
    {
        v.push("hugetlb".to_string());
    }
    if res.rdma().as_ref().is_some_and(|r| !r.is_empty()) {
        v.push("rdma".to_string());
    }
    for k in res.unified().iter().flatten().map(|(k, _)| k) {
        if let Some((c, _)) = k.split_once('.') {
            if c != "cgroup" && !v.iter().any(|x| x == c) {
                v.push(c.to_string());
            }
        }
    }
    v
}

/// Enables controllers in every ancestor's `cgroup.subtree_control` down to
/// the leaf's parent: of `defaults`, those the host has; every one of
/// `needed` (an error naming it where the host lacks it).
fn enable_controllers(
    mount: &Path,
    leaf: &Path,
    defaults: &[&str],
    needed: &[String],
) -> Result<()> {
    let rel = leaf.strip_prefix(mount).unwrap_or(leaf);
    let mut d = mount.to_path_buf();
    let comps: Vec<_> = rel.components().collect();
    for (i, c) in comps.iter().enumerate() {
        let avail = std::fs::read_to_string(d.join("cgroup.controllers")).unwrap_or_default();
        let have = std::fs::read_to_string(d.join("cgroup.subtree_control")).unwrap_or_default();
        let has = |list: &str, c: &str| list.split_whitespace().any(|a| a == c);
        if let Some(n) = needed.iter().find(|n| !has(&avail, n)) {
            return Err(Error::invalid(
                "linux.resources",
                format!(
                    "the {n} cgroup controller is not available in {} (it has: {})",
                    d.display(),
                    avail.trim()
                ),
            ));
        }
        let want: Vec<String> = defaults
            .iter()
            .copied()
            .chain(needed.iter().map(String::as_str))
            .filter(|c| has(&avail, c) && !has(&have, c))
            .map(|c| format!("+{c}"))
            .collect();
        if !want.is_empty() {
            match write(&d, "cgroup.subtree_control", &want.join(" ")) {
                // Above a subtree delegated to a rootless user, the
                // defaults are whatever the delegation enabled.
                Err(Error::Io { err, .. })
                    if err.kind() == ErrorKind::PermissionDenied
                        && !want.iter().any(|w| needed.iter().any(|n| w[1..] == **n)) => {}
                r => r?,
            }
        }
        d.push(c);
        if i + 1 < comps.len() {
            match std::fs::create_dir(&d) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
                Err(e) => return Err(Error::io("cannot create cgroup", &d, e)),
            }
        }
    }
    Ok(())
}

/// Whether controller `c` acts on directory `d` of hierarchy `h` (v1: the
/// hierarchy has it; v2: it is enabled for the directory).
fn controls(h: &Hierarchy, d: &Path, c: &str) -> bool {
    if h.v2 {
        read_list(d, "cgroup.controllers").iter().any(|x| x == c)
    } else {
        h.has(c)
    }
}

/// hugepageLimits in one hierarchy, if it has the hugetlb controller:
/// reservation limits where the kernel has them (`rsvd`), else usage
/// limits (config-linux.md "Huge page limits"). Returns whether it did.
fn hugetlb(h: &Hierarchy, d: &Path, res: &LinuxResources) -> Result<bool> {
    let Some(limits) = res.hugepage_limits().as_ref().filter(|l| !l.is_empty()) else {
        return Ok(false);
    };
    if !controls(h, d, "hugetlb") {
        return Ok(false);
    }
    for l in limits {
        let size = l.page_size();
        let (rsvd, plain) = if h.v2 {
            (
                format!("hugetlb.{size}.rsvd.max"),
                format!("hugetlb.{size}.max"),
            )
        } else {
            (
                format!("hugetlb.{size}.rsvd.limit_in_bytes"),
                format!("hugetlb.{size}.limit_in_bytes"),
            )
        };
        let file = if d.join(&rsvd).exists() { rsvd } else { plain };
        if !d.join(&file).exists() {
            return Err(Error::invalid(
                "linux.resources.hugepageLimits",
                format!("pageSize {size}: this host has no such huge page size"),
            ));
        }
        write(d, &file, &l.limit().to_string())?;
    }
    Ok(true)
}

/// linux.resources.rdma in one hierarchy, if it has the rdma controller.
fn rdma(h: &Hierarchy, d: &Path, res: &LinuxResources) -> Result<bool> {
    let Some(devs) = res.rdma().as_ref().filter(|r| !r.is_empty()) else {
        return Ok(false);
    };
    if !controls(h, d, "rdma") {
        return Ok(false);
    }
    for (dev, r) in devs {
        let n = |v: Option<u32>| v.map_or("max".to_string(), |v| v.to_string());
        let line = format!(
            "{dev} hca_handle={} hca_object={}",
            n(r.hca_handles()),
            n(r.hca_objects())
        );
        write(d, "rdma.max", &line)
            .map_err(|e| Error::invalid(format!("linux.resources.rdma.{dev}"), e.to_string()))?;
    }
    Ok(true)
}

/// The `unified` map (config-linux.md "Unified"): each key a file of the
/// container's cgroup2 directory, written as given. Keys are plain file
/// names; the controllers they need were enabled at create.
fn unified_map(d: &Path, res: &LinuxResources) -> Result<()> {
    let Some(map) = res.unified().as_ref() else {
        return Ok(());
    };
    let mut keys: Vec<_> = map.iter().collect();
    keys.sort();
    for (k, v) in keys {
        let field = format!("linux.resources.unified.{k}");
        if k.is_empty() || k.contains('/') || k.starts_with('.') {
            return Err(Error::invalid(field, "not a cgroup file name"));
        }
        if !d.join(k).exists() {
            return Err(Error::invalid(
                field,
                format!(
                    "{} has no such file (is its controller enabled?)",
                    d.display()
                ),
            ));
        }
        write(d, k, v).map_err(|e| Error::invalid(field, e.to_string()))?;
    }
    Ok(())
}

fn read_list(d: &Path, f: &str) -> Vec<String> {
    std::fs::read_to_string(d.join(f))
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

fn limit(v: i64) -> String {
    if v < 0 {
        "max".into()
    } else {
        v.to_string()
    }
}

/// `memory.checkBeforeUpdate`: a limit below the current usage is refused
/// (cgroup v2 would OOM-kill instead, where v1 refuses by itself).
fn check_memory_v2(d: &Path, res: &LinuxResources) -> Result<()> {
    let Some(m) = res.memory() else { return Ok(()) };
    if let (Some(l), Some(true)) = (m.limit(), m.check_before_update()) {
        let current = read_list(d, "memory.current")
            .first()
            .and_then(|c| c.parse::<i64>().ok())
            .unwrap_or(0);
        if l >= 0 && l < current {
            return Err(Error::invalid(
                "linux.resources.memory.limit",
                format!("{l} is below the current usage {current} (checkBeforeUpdate)"),
            ));
        }
    }
    Ok(())
}

fn apply_v2(d: &Path, res: &LinuxResources) -> Result<()> {
    check_memory_v2(d, res)?;
    if let Some(m) = res.memory() {
        if let Some(l) = m.limit() {
            write(d, "memory.max", &limit(l))?;
        }
        if let Some(r) = m.reservation() {
            write(d, "memory.low", &limit(r))?;
        }
        if let Some(s) = m.swap() {
            // The spec's swap is memory+swap; cgroup2 limits swap alone.
            let v = match (s, m.limit()) {
                (-1, _) => "max".to_string(),
                (s, Some(l)) if l >= 0 => (s - l).max(0).to_string(),
                (s, _) => s.to_string(),
            };
            if d.join("memory.swap.max").exists() {
                write(d, "memory.swap.max", &v)?;
            }
        }
    }
    if let Some(c) = res.cpu() {
        if let Some(shares) = c.shares().filter(|s| *s > 0) {
            // runc's conversion of the [2, 262144] shares range to [1, 10000].
            let w = 1 + (shares.clamp(2, 262_144) - 2) * 9999 / 262_142;
            write(d, "cpu.weight", &w.to_string())?;
        }
        if c.quota().is_some() || c.period().is_some() {
            let q = c
                .quota()
                .filter(|q| *q > 0)
                .map_or("max".to_string(), |q| q.to_string());
            let p = c.period().unwrap_or(100_000);
            write(d, "cpu.max", &format!("{q} {p}"))?;
        }
        if let Some(cpus) = c.cpus().as_deref().filter(|s| !s.is_empty()) {
            write(d, "cpuset.cpus", cpus)?;
        }
        if let Some(mems) = c.mems().as_deref().filter(|s| !s.is_empty()) {
            write(d, "cpuset.mems", mems)?;
        }
    }
    if let Some(p) = res.pids() {
        if p.limit() != 0 {
            write(d, "pids.max", &limit(p.limit()))?;
        }
    }
    Ok(())
}

fn apply_v1(h: &Hierarchy, d: &Path, res: &LinuxResources) -> Result<()> {
    if h.has("memory") {
        if let Some(m) = res.memory() {
            if let Some(l) = m.limit() {
                // Raise memsw first when it would be below the new limit.
                if let Some(s) = m.swap().filter(|s| *s == -1 || *s >= l.max(0)) {
                    let _ = write(d, "memory.memsw.limit_in_bytes", &s.to_string());
                }
                write(d, "memory.limit_in_bytes", &l.to_string())?;
            }
            if let Some(s) = m.swap() {
                if d.join("memory.memsw.limit_in_bytes").exists() {
                    write(d, "memory.memsw.limit_in_bytes", &s.to_string())?;
                }
            }
            if let Some(r) = m.reservation() {
                write(d, "memory.soft_limit_in_bytes", &r.to_string())?;
            }
        }
    }
    if let Some(c) = res.cpu() {
        if h.has("cpu") {
            if let Some(s) = c.shares().filter(|s| *s > 0) {
                write(d, "cpu.shares", &s.to_string())?;
            }
            if let Some(p) = c.period().filter(|p| *p > 0) {
                write(d, "cpu.cfs_period_us", &p.to_string())?;
            }
            if let Some(q) = c.quota().filter(|q| *q != 0) {
                write(d, "cpu.cfs_quota_us", &q.to_string())?;
            }
        }
        if h.has("cpuset") {
            if let Some(cpus) = c.cpus().as_deref().filter(|s| !s.is_empty()) {
                write(d, "cpuset.cpus", cpus)?;
            }
            if let Some(mems) = c.mems().as_deref().filter(|s| !s.is_empty()) {
                write(d, "cpuset.mems", mems)?;
            }
        }
    }
    if h.has("pids") {
        if let Some(p) = res.pids() {
            if p.limit() != 0 {
                write(d, "pids.max", &limit(p.limit()))?;
            }
        }
    }
    Ok(())
}

/// Pids in the container's cgroup (every hierarchy holds the same ones).
pub fn procs(leaves: &[PathBuf]) -> Vec<i32> {
    leaves
        .iter()
        .find_map(|d| std::fs::read_to_string(d.join("cgroup.procs")).ok())
        .map(|s| s.lines().filter_map(|l| l.trim().parse().ok()).collect())
        .unwrap_or_default()
}

/// Whether the freezer file recorded at create says frozen.
pub fn frozen(freezer: Option<&Path>) -> bool {
    freezer
        .and_then(|f| std::fs::read_to_string(f).ok())
        .is_some_and(|s| matches!(s.trim(), "FROZEN" | "1"))
}

/// SIGKILLs every process in the container's cgroup and waits (up to about
/// a second) until it is empty. These processes are the container's: berth
/// started them.
pub fn kill_all(leaves: &[PathBuf]) {
    for _ in 0..200 {
        let pids = procs(leaves);
        if pids.is_empty() {
            return;
        }
        for p in pids {
            let _ =
                nix::sys::signal::kill(nix::unistd::Pid::from_raw(p), nix::sys::signal::SIGKILL);
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// Removes the directories berth created, leaf first (retrying while the
/// last processes leave). Idempotent: missing directories are fine.
pub fn remove(cgroups: &[Vec<PathBuf>]) -> Result<()> {
    for chain in cgroups {
        for (i, d) in chain.iter().enumerate() {
            let mut tries = 0;
            loop {
                match std::fs::remove_dir(d) {
                    Ok(()) => break,
                    Err(e) if e.kind() == ErrorKind::NotFound => break,
                    // A parent that another container now uses stays.
                    Err(_) if i > 0 => break,
                    Err(e) if tries < 100 => {
                        let _ = e;
                        tries += 1;
                        std::thread::sleep(std::time::Duration::from_millis(10));
                    }
                    Err(e) => return Err(Error::io("cannot remove cgroup", d, e)),
                }
            }
        }
    }
    Ok(())
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
