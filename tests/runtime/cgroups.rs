//! Cgroups: limits seen by the container, paths, the cgroup namespace,
//! ps/pause/resume/update/events.

use crate::common::*;
use serde_json::json;

#[test]
fn cgroup_memory_limit_ooms() {
    let t = T::new("cgmem");
    let mut c = t.config(&["sh", "-c", "cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes; x=$(head -c 67108864 /dev/zero | tr '\\0' a); echo survived"]);
    c["linux"]["resources"]["memory"] = json!({"limit": 16 << 20, "swap": 16 << 20});
    let (code, out, _) = t.run(&c);
    assert_eq!(out.lines().next(), Some("16777216"), "{out}");
    assert!(
        !out.contains("survived"),
        "allocation past the limit survived: {out}"
    );
    assert_eq!(code, 137, "OOM kill ends the container with SIGKILL");
}

#[test]
fn cgroup_pids_limit_stops_forks() {
    let t = T::new("cgpids");
    let mut c = t.config(&["sh", "-c", "cat /sys/fs/cgroup/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids/pids.max; for i in 1 2 3 4 5 6 7 8 9 10 11 12; do sleep 5 & echo started $i; done"]);
    c["linux"]["resources"]["pids"] = json!({"limit": 6});
    let (_, out, err) = t.run(&c);
    assert_eq!(out.lines().next(), Some("6"), "{out}");
    // sh itself plus at most 5 sleeps: the 6th fork fails.
    let started = out.matches("started").count();
    assert_eq!(started, 5, "{out}");
    assert!(
        err.contains("can't fork") || err.contains("Resource temporarily unavailable"),
        "{err}"
    );
}

#[test]
fn cgroup_cpu_quota_shares_cpuset() {
    let t = T::new("cgcpu");
    let script = if unified() {
        "cat /sys/fs/cgroup/cpu.max /sys/fs/cgroup/cpu.weight /sys/fs/cgroup/cpuset.cpus"
    } else {
        "cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.cfs_period_us /sys/fs/cgroup/cpu/cpu.shares /sys/fs/cgroup/cpuset/cpuset.cpus"
    };
    let mut c = t.config(&["sh", "-c", script]);
    c["linux"]["resources"]["cpu"] =
        json!({"quota": 50000, "period": 100000, "shares": 512, "cpus": "0"});
    let (code, out, err) = t.run(&c);
    assert_eq!(code, 0, "{err}");
    let l: Vec<&str> = out.lines().collect();
    if unified() {
        assert_eq!(l, vec!["50000 100000", "20", "0"], "{out}");
    } else {
        assert_eq!(l, vec!["50000", "100000", "512", "0"], "{out}");
    }
}

#[test]
fn cgroup_default_relative_path_is_removed() {
    let t = T::new("cgrel");
    let mut c = t.config(&["sh", "-c", "cat /proc/self/cgroup"]);
    c["linux"].as_object_mut().unwrap().remove("cgroupsPath");
    drop_ns(&mut c, &["cgroup"]);
    let (code, out, err) = t.run(&c);
    assert_eq!(code, 0, "{err}");
    // cgroupfs: berth/ID below berth's cgroup; systemd: runc's default
    // form, system.slice:berth:ID.
    let want = if systemd() {
        format!("/system.slice/berth-{}.scope", t.id("run"))
    } else {
        format!("/berth/{}", t.id("run"))
    };
    assert!(out.contains(&want), "{out}");
}

#[test]
fn cgroup_namespace_root() {
    let t = T::new("cgns");
    let out = t.sh("cat /proc/self/cgroup");
    // In its own cgroup namespace the container's cgroup is the root.
    for l in out.lines() {
        assert!(l.ends_with(":/"), "{out}");
    }
}

#[test]
fn cgroup_ps_pause_resume_update_events() {
    let t = T::new("cgops");
    let (id, pid) = t.sleeper("c", t.config(&["true"]));
    let pids: Vec<i64> =
        serde_json::from_str(&ok(&t.berth(&["ps", "--format", "json", &id]))).unwrap();
    assert_eq!(pids, vec![pid]);
    let table = ok(&t.berth(&["ps", &id]));
    assert!(
        // ps(1)'s own header (procps or busybox), then the container's lines.
        table.lines().next().unwrap().contains("PID") && table.contains("sleep 600"),
        "{table}"
    );
    t.ok(&["pause", &id]);
    assert_eq!(t.state(&id)["status"], "paused");
    let o = t.berth(&["exec", &id, "true"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("cannot exec in a paused container"));
    t.ok(&["resume", &id]);
    assert_eq!(t.state(&id)["status"], "running");
    t.expect_error(&t.berth(&["resume", &id]), "container not paused");
    assert!(t
        .berth(&[
            "update",
            "--memory",
            "48m",
            "--pids-limit",
            "17",
            "--cpu-quota",
            "20000",
            "--cpu-period",
            "100000",
            &id
        ])
        .status
        .success());
    let v: serde_json::Value =
        serde_json::from_str(&ok(&t.berth(&["events", "--stats", &id]))).unwrap();
    assert_eq!(v["type"], "stats");
    assert_eq!(v["data"]["memory"]["usage"]["limit"], 48 << 20);
    assert_eq!(v["data"]["pids"]["limit"], 17);
    assert!(v["data"]["pids"]["current"].as_u64().unwrap() >= 1);
    assert!(v["data"]["cpu"]["usage"]["total"].as_u64().is_some());
    let cpu_max = if unified() {
        "cpu.max"
    } else {
        "cpu/cpu.cfs_quota_us"
    };
    let o = ok(&t.berth(&["exec", &id, "cat", &format!("/sys/fs/cgroup/{cpu_max}")]));
    assert!(o.starts_with("20000"), "{o}");
    // A paused container is deleted with --force.
    t.ok(&["pause", &id]);
    t.ok(&["delete", "-f", &id]);
}

#[test]
fn cgroup_shared_default_parent_goes_with_the_last_container() {
    let t = T::new("cgshared");
    let mut c = t.config(&["sleep", "30"]);
    c["linux"].as_object_mut().unwrap().remove("cgroupsPath");
    t.write_config(&c);
    let (a, b) = (t.id("a"), t.id("b"));
    ok(&t.create(&a, &[]));
    ok(&t.create(&b, &[]));
    // a made the berth/ parent; deleting it first must not remove it from
    // under b, and deleting b (the last one) removes it: the leak check
    // of T sees no `berth` directory left.
    t.ok(&["delete", &a]);
    t.ok(&["delete", &b]);
}
