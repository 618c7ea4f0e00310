//! `update`: new resource limits for a running container, as runc takes
//! them: a `linux.resources` JSON document (`--resources FILE`, `-` for
//! stdin) with runc's flags applied on top.

use crate::error::{Error, Result};
use crate::lifecycle::container::Runtime;
use crate::state::Status;
use crate::util::{parse_size, read_file_or_stdin};
use oci_spec::runtime::LinuxResources;
use serde_json::{json, Value};
use std::path::PathBuf;

/// `update`'s options, runc's flags. Sizes are text (`64m`, `-1`).
#[derive(Default, Clone, Debug)]
pub struct UpdateOpts {
    /// A runtime-spec `linux.resources` JSON file; `-` for stdin.
    pub resources: Option<PathBuf>,
    pub memory: Option<String>,
    pub memory_reservation: Option<String>,
    pub memory_swap: Option<String>,
    pub cpu_shares: Option<u64>,
    pub cpu_quota: Option<i64>,
    pub cpu_period: Option<u64>,
    pub cpu_rt_period: Option<u64>,
    pub cpu_rt_runtime: Option<i64>,
    pub cpuset_cpus: Option<String>,
    pub cpuset_mems: Option<String>,
    pub pids_limit: Option<i64>,
    pub blkio_weight: Option<u16>,
}

/// A size flag: bytes, `64m`, or `-1` for unlimited.
fn size(flag: &str, s: &str) -> Result<i64> {
    if s == "-1" {
        return Ok(-1);
    }
    parse_size(s).map_err(|e| Error::invalid(flag, e.to_string()))
}

impl UpdateOpts {
    /// The resources to apply: the `--resources` document, then each flag
    /// given on top of it.
    pub fn resources(&self) -> Result<LinuxResources> {
        let mut r: Value = match &self.resources {
            Some(p) => {
                serde_json::from_slice(&read_file_or_stdin(p)?).map_err(|e| Error::Config {
                    path: p.clone(),
                    msg: format!("invalid resources JSON: {e}"),
                })?
            }
            None => json!({}),
        };
        let mut flags: Vec<(&str, &str, Value)> = Vec::new();
        for (flag, key, v) in [
            ("--memory", "limit", &self.memory),
            (
                "--memory-reservation",
                "reservation",
                &self.memory_reservation,
            ),
            ("--memory-swap", "swap", &self.memory_swap),
        ] {
            if let Some(v) = v {
                flags.push(("memory", key, json!(size(flag, v)?)));
            }
        }
        let cpu: [(&str, Option<Value>); 7] = [
            ("shares", self.cpu_shares.map(Value::from)),
            ("quota", self.cpu_quota.map(Value::from)),
            ("period", self.cpu_period.map(Value::from)),
            ("realtimePeriod", self.cpu_rt_period.map(Value::from)),
            ("realtimeRuntime", self.cpu_rt_runtime.map(Value::from)),
            ("cpus", self.cpuset_cpus.clone().map(Value::from)),
            ("mems", self.cpuset_mems.clone().map(Value::from)),
        ];
        flags.extend(cpu.into_iter().filter_map(|(k, v)| Some(("cpu", k, v?))));
        if let Some(v) = self.pids_limit {
            flags.push(("pids", "limit", json!(v)));
        }
        if let Some(v) = self.blkio_weight {
            flags.push(("blockIO", "weight", json!(v)));
        }
        for (section, key, v) in flags {
            if !r.get(section).is_some_and(Value::is_object) {
                r[section] = json!({});
            }
            r[section][key] = v;
        }
        serde_json::from_value(r).map_err(|e| Error::invalid("resources", e.to_string()))
    }
}

impl Runtime {
    /// `update`: applies new resource limits to a container's cgroup.
    pub fn update(&self, id: &str, o: &UpdateOpts) -> Result<()> {
        let res = o.resources()?;
        self.update_resources(id, &res)
    }

    pub(crate) fn update_resources(&self, id: &str, res: &LinuxResources) -> Result<()> {
        let (rec, cg) = self.cgroup_of(id)?;
        if self.store.status(&rec) == Status::Stopped {
            return Err(Error::NotRunning);
        }
        if let Some(unit) = &rec.unit {
            // systemd's view first (it would restore its own on a reload),
            // then the files, exactly; what is refused is refused before
            // systemd writes anything.
            cg.check(res)?;
            let props = crate::cgroups::systemd::resource_properties(res)?;
            crate::cgroups::systemd::Bus::connect(rec.user_unit)?.set(unit, props)?;
        }
        cg.apply(res)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_go_on_top_of_the_document() {
        let dir = std::env::temp_dir().join(format!("berth-update-{}", std::process::id()));
        std::fs::write(
            &dir,
            r#"{"memory":{"limit":1000,"reservation":5},"pids":{"limit":3}}"#,
        )
        .unwrap();
        let o = UpdateOpts {
            resources: Some(dir.clone()),
            memory: Some("64m".into()),
            memory_swap: Some("-1".into()),
            cpu_quota: Some(-1),
            cpuset_cpus: Some("0".into()),
            ..Default::default()
        };
        let r = o.resources().unwrap();
        std::fs::remove_file(&dir).unwrap();
        let m = r.memory().as_ref().unwrap();
        assert_eq!(m.limit(), Some(64 << 20));
        assert_eq!(m.reservation(), Some(5));
        assert_eq!(m.swap(), Some(-1));
        assert_eq!(r.pids().as_ref().unwrap().limit(), 3);
        let c = r.cpu().as_ref().unwrap();
        assert_eq!(c.quota(), Some(-1));
        assert_eq!(c.cpus().as_deref(), Some("0"));
        let bad = UpdateOpts {
            memory: Some("lots".into()),
            ..Default::default()
        };
        assert!(bad
            .resources()
            .unwrap_err()
            .to_string()
            .contains("--memory"));
    }
}
