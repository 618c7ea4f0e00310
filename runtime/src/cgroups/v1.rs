//! cgroup v1 limits (legacy and hybrid hosts): `linux.resources` written to
//! each hierarchy that has the controller, under v1's file names.

use super::limits::limit;
use super::{write, Hierarchy};
use crate::error::Result;
use oci_spec::runtime::LinuxResources;
use std::path::Path;

pub(super) fn apply_v1(h: &Hierarchy, d: &Path, res: &LinuxResources) -> Result<()> {
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
