//! What every backend shares about `linux.resources`: whether a config asks
//! for limits at all (rootless without a delegated cgroup refuses them),
//! whether a controller acts on a directory, hugepageLimits and rdma (the
//! same files in v1 and v2, but for their names), and value formatting.

use super::{write, Hierarchy};
use crate::error::{Error, Result};
use oci_spec::runtime::LinuxResources;
use std::path::Path;

/// The first section of `res` that asks for a limit (device rules aside),
/// by its config name.
pub(super) fn limits_asked(res: &LinuxResources) -> Option<&'static str> {
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

/// Whether controller `c` acts on directory `d` of hierarchy `h` (v1: the
/// hierarchy has it; v2: it is enabled for the directory).
pub(super) fn controls(h: &Hierarchy, d: &Path, c: &str) -> bool {
    if h.v2 {
        read_list(d, "cgroup.controllers").iter().any(|x| x == c)
    } else {
        h.has(c)
    }
}

/// hugepageLimits in one hierarchy, if it has the hugetlb controller:
/// reservation limits where the kernel has them (`rsvd`), else usage
/// limits (config-linux.md "Huge page limits"). Returns whether it did.
pub(super) fn hugetlb(h: &Hierarchy, d: &Path, res: &LinuxResources) -> Result<bool> {
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
pub(super) fn rdma(h: &Hierarchy, d: &Path, res: &LinuxResources) -> Result<bool> {
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

pub(super) fn read_list(d: &Path, f: &str) -> Vec<String> {
    std::fs::read_to_string(d.join(f))
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

pub(super) fn limit(v: i64) -> String {
    if v < 0 {
        "max".into()
    } else {
        v.to_string()
    }
}
