//! cgroup v2 (unified) limits: controllers enabled down the tree, the
//! `unified` map written as given, and `linux.resources` converted to
//! cgroup2's files (cpu.weight from shares, memory.swap.max from the
//! spec's memory+swap, `max` for unlimited).

use super::limits::{limit, read_list};
use super::write;
use crate::error::{Error, Result};
use oci_spec::runtime::LinuxResources;
use std::io::ErrorKind;
use std::path::Path;

/// The controllers berth enables for every container on a unified host.
pub(super) const DEFAULT_V2: &[&str] =
    &["cpu", "cpuset", "memory", "pids", "io", "hugetlb", "rdma"];

/// cgroup2 controllers the config needs by name: hugetlb for
/// hugepageLimits, rdma, and those the `unified` map's keys start with.
pub(super) fn needed_v2(res: Option<&LinuxResources>) -> Vec<String> {
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
pub(super) fn enable_controllers(
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

/// The `unified` map (config-linux.md "Unified"): each key a file of the
/// container's cgroup2 directory, written as given. Keys are plain file
/// names; the controllers they need were enabled at create.
pub(super) fn unified_map(d: &Path, res: &LinuxResources) -> Result<()> {
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

/// `memory.checkBeforeUpdate`: a limit below the current usage is refused
/// (cgroup v2 would OOM-kill instead, where v1 refuses by itself).
pub(super) fn check_memory_v2(d: &Path, res: &LinuxResources) -> Result<()> {
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

pub(super) fn apply_v2(d: &Path, res: &LinuxResources) -> Result<()> {
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
