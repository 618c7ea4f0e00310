//! runc's other commands: ps, pause, resume, events (stats) and features
//! (`update` is in `update.rs`).

use crate::cgroups::{self, Cgroup, Layout};
use crate::error::{Error, Result};
use crate::lifecycle::container::Runtime;
use crate::state::Status;
use serde_json::{json, Value};
use std::path::Path;

fn read(d: &Path, f: &str) -> Option<String> {
    std::fs::read_to_string(d.join(f))
        .ok()
        .map(|s| s.trim().to_string())
}

fn num(d: &Path, f: &str) -> u64 {
    read(d, f).and_then(|s| s.parse().ok()).unwrap_or(0)
}

/// `key value` lines (memory.stat, cpu.stat) as a map.
fn kv(d: &Path, f: &str) -> serde_json::Map<String, Value> {
    read(d, f)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(k, v)| (k.to_string(), json!(v.trim().parse::<u64>().unwrap_or(0))))
        .collect()
}

impl Runtime {
    pub(crate) fn cgroup_of(&self, id: &str) -> Result<(crate::state::Record, Cgroup)> {
        let rec = self.store.load(id)?;
        let layout = Layout::detect()?;
        let cg = Cgroup::from_leaves(&layout, &rec.leaves);
        Ok((rec, cg))
    }

    /// `ps`: the container's pids.
    pub fn pids(&self, id: &str) -> Result<Vec<i32>> {
        let rec = self.store.load(id)?;
        if rec.leaves.is_empty() && rec.pid > 0 {
            // Rootless without a cgroup: the processes of its pid
            // namespace (only its init if it shares berth's).
            return Ok(pid_namespace_members(rec.pid, rec.own_pidns));
        }
        Ok(cgroups::procs(&rec.leaves))
    }

    /// `pause`: freezes the container's cgroup (v1 freezer, v2 cgroup.freeze).
    pub fn pause(&self, id: &str) -> Result<()> {
        self.freeze(id, true)
    }

    /// `resume`: thaws a paused container.
    pub fn resume(&self, id: &str) -> Result<()> {
        self.freeze(id, false)
    }

    fn freeze(&self, id: &str, on: bool) -> Result<()> {
        let (rec, cg) = self.cgroup_of(id)?;
        match (self.store.status(&rec), on) {
            (Status::Running | Status::Created, true) => {}
            (Status::Paused, false) => {}
            (_, true) => return Err(Error::NotRunning),
            (_, false) => return Err(Error::Other("container not paused".into())),
        }
        if rec.leaves.is_empty() {
            return Err(Error::Other(
                "rootless: the container has no cgroup of its own (none is delegated to this user), so it cannot be frozen".into(),
            ));
        }
        let f = cg.freezer().ok_or_else(|| {
            Error::Other("no freezer: neither a v1 freezer nor cgroup2 is mounted".into())
        })?;
        let d = f.parent().unwrap_or(Path::new("/"));
        let v2 = f.ends_with("cgroup.freeze");
        // v1 may need the write repeated while tasks are still freezing.
        let (value, want) = match (v2, on) {
            (true, true) => ("1", "frozen 1"),
            (true, false) => ("0", "frozen 0"),
            (false, true) => ("FROZEN", "FROZEN"),
            (false, false) => ("THAWED", "THAWED"),
        };
        for _ in 0..1000 {
            std::fs::write(&f, value).map_err(|e| Error::io("cannot write", &f, e))?;
            let done = if v2 {
                read(d, "cgroup.events").is_some_and(|e| e.lines().any(|l| l == want))
            } else {
                read(d, "freezer.state").as_deref() == Some(want)
            };
            if done {
                return Ok(());
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        Err(Error::Other(format!(
            "{}: did not reach {want}",
            d.display()
        )))
    }

    /// How often the kernel's OOM killer has acted in the container's
    /// cgroup (v2 `memory.events`, v1 `memory.oom_control`: `oom_kill`),
    /// for the `events` stream. Readable once the container stopped, while
    /// its cgroup is there (until `delete`).
    pub fn oom_kills(&self, id: &str) -> Result<u64> {
        let (_, cg) = self.cgroup_of(id)?;
        for (h, d) in &cg.dirs {
            let file = if h.v2 && cg.unified_dir().is_some() {
                "memory.events"
            } else if h.controllers.iter().any(|c| c == "memory") {
                "memory.oom_control"
            } else {
                continue;
            };
            return Ok(kv(d, file)
                .get("oom_kill")
                .and_then(Value::as_u64)
                .unwrap_or(0));
        }
        Ok(0)
    }

    /// One `events --stats` record, in runc's shape.
    pub fn stats(&self, id: &str) -> Result<Value> {
        let (rec, cg) = self.cgroup_of(id)?;
        if self.store.status(&rec) == Status::Stopped {
            return Err(Error::NotRunning);
        }
        let mut cpu = json!({"usage": {"total": 0, "kernel": 0, "user": 0}, "throttling": {}});
        let mut memory = json!({"usage": {}, "raw": {}});
        let mut pids = json!({});
        for (h, d) in &cg.dirs {
            let has = |c: &str| h.controllers.iter().any(|x| x == c);
            if h.v2 && cg.unified_dir().is_some() {
                let st = kv(d, "cpu.stat");
                let us = |k: &str| st.get(k).and_then(Value::as_u64).unwrap_or(0) * 1000;
                cpu["usage"] = json!({"total": us("usage_usec"), "kernel": us("system_usec"), "user": us("user_usec")});
                cpu["throttling"] = json!({"periods": us("nr_periods") / 1000, "throttled_periods": us("nr_throttled") / 1000, "throttled_time": us("throttled_usec")});
                let limit = read(d, "memory.max")
                    .and_then(|s| s.parse::<u64>().ok())
                    .unwrap_or(u64::MAX);
                memory["usage"] = json!({"usage": num(d, "memory.current"), "max": num(d, "memory.peak"), "limit": limit, "failcnt": 0});
                memory["raw"] = Value::Object(kv(d, "memory.stat"));
                let plimit = read(d, "pids.max")
                    .and_then(|s| s.parse::<u64>().ok())
                    .unwrap_or(0);
                pids = json!({"current": num(d, "pids.current"), "limit": plimit});
            } else {
                if has("cpuacct") {
                    let st = kv(d, "cpuacct.stat");
                    // USER_HZ ticks to nanoseconds.
                    let ns = |k: &str| st.get(k).and_then(Value::as_u64).unwrap_or(0) * 10_000_000;
                    let percpu: Vec<u64> = read(d, "cpuacct.usage_percpu")
                        .unwrap_or_default()
                        .split_whitespace()
                        .filter_map(|x| x.parse().ok())
                        .collect();
                    cpu["usage"] = json!({"total": num(d, "cpuacct.usage"), "percpu": percpu, "kernel": ns("system"), "user": ns("user")});
                }
                if has("cpu") {
                    let st = kv(d, "cpu.stat");
                    cpu["throttling"] = json!({"periods": st.get("nr_periods"), "throttled_periods": st.get("nr_throttled"), "throttled_time": st.get("throttled_time")});
                }
                if has("memory") {
                    memory["usage"] = json!({"usage": num(d, "memory.usage_in_bytes"), "max": num(d, "memory.max_usage_in_bytes"), "limit": num(d, "memory.limit_in_bytes"), "failcnt": num(d, "memory.failcnt")});
                    memory["raw"] = Value::Object(kv(d, "memory.stat"));
                }
                if has("pids") {
                    let plimit = read(d, "pids.max")
                        .and_then(|s| s.parse::<u64>().ok())
                        .unwrap_or(0);
                    pids = json!({"current": num(d, "pids.current"), "limit": plimit});
                }
            }
        }
        Ok(
            json!({"type": "stats", "id": id, "data": {"cpu": cpu, "memory": memory, "pids": pids, "blkio": {}, "hugetlb": {}}}),
        )
    }
}

/// Whether this host has cgroup controller `c` (v1 or v2).
fn host_has_controller(c: &str) -> bool {
    let Ok(layout) = Layout::detect() else {
        return false;
    };
    layout.hierarchies.iter().any(|h| {
        if h.v2 {
            std::fs::read_to_string(h.mount.join("cgroup.controllers"))
                .is_ok_and(|s| s.split_whitespace().any(|x| x == c))
        } else {
            h.controllers.iter().any(|x| x == c)
        }
    })
}

/// `features` (features.md): what this berth supports, truthfully for
/// this build and this host.
pub fn features() -> Value {
    // In the kernel's order (CAP_CHOWN first), as runc lists them: the
    // crate's set is a HashSet, whose order changes from call to call.
    let mut caps: Vec<caps::Capability> = caps::all().into_iter().collect();
    caps.sort_by_key(|c| c.index());
    let caps: Vec<String> = caps.iter().map(|c| c.to_string()).collect();
    let resctrl = crate::cgroups::rdt::mount_point().ok().flatten();
    let monitoring = resctrl
        .as_ref()
        .is_some_and(|r| r.join("mon_groups").is_dir());
    json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": crate::SPEC_VERSION,
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": crate::rootfs::MOUNT_OPTIONS,
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"],
            "capabilities": caps,
            "cgroup": {"v1": true, "v2": true,
                "systemd": crate::cgroups::systemd::available() && Layout::detect().is_ok_and(|l| l.unified()),
                // The user's manager, as the system's: where systemd runs.
                "systemdUser": crate::cgroups::systemd::available() && Layout::detect().is_ok_and(|l| l.unified()),
                "rdma": host_has_controller("rdma")},
            "seccomp": crate::security::seccomp::features(),
            // Labels are applied only where the host has the LSM enabled.
            "apparmor": {"enabled": crate::security::apparmor_enabled()},
            "selinux": {"enabled": crate::security::selinux_enabled()},
            "intelRdt": {"enabled": resctrl.is_some(), "schemata": resctrl.is_some(),
                "monitoring": monitoring},
            "memoryPolicy": {
                "modes": ["MPOL_DEFAULT", "MPOL_BIND", "MPOL_INTERLEAVE", "MPOL_WEIGHTED_INTERLEAVE",
                    "MPOL_PREFERRED", "MPOL_PREFERRED_MANY", "MPOL_LOCAL"],
                "flags": ["MPOL_F_NUMA_BALANCING", "MPOL_F_RELATIVE_NODES", "MPOL_F_STATIC_NODES"]
            },
            "mountExtensions": {"idmap": {"enabled": true}},
            "netDevices": {"enabled": true}
        },
        "annotations": {
            "io.github.berth.version": env!("CARGO_PKG_VERSION"),
            "io.github.berth.libseccomp.version": crate::security::seccomp::libseccomp_version(),
            // runc's key: checkpoint and restore work (CRIU is in $PATH).
            "org.opencontainers.runc.checkpoint.enabled":
                if crate::criu::find().is_some() { "true" } else { "false" },
            // crun's leniency, not runc's failure at mount time.
            "io.github.berth.selinux.mountLabel": if crate::security::selinux_enabled() {
                "applied to tmpfs, devpts and mqueue mounts"
            } else {
                "ignored: SELinux is not enabled on this host"
            }
        }
    })
}

/// The processes in `init`'s pid namespace, found through /proc (for a
/// container without a cgroup): `init` alone when it has no namespace of
/// its own.
fn pid_namespace_members(init: i32, own_pidns: bool) -> Vec<i32> {
    let ns = |p: &str| std::fs::read_link(format!("/proc/{p}/ns/pid")).ok();
    let Some(theirs) = ns(&init.to_string()) else {
        return Vec::new();
    };
    if !own_pidns {
        return vec![init];
    }
    let mut v: Vec<i32> = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|p| ns(&p.to_string()).as_ref() == Some(&theirs))
        .collect();
    v.sort_unstable();
    v
}
