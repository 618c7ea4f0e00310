//! runtime-spec 1.3 features, each seen from inside the container:
//! recursive mount attributes, idmapped mounts, tmpcopyup, masks sharing
//! one tmpfs, rootfs propagation, network devices, memory policy, time
//! offsets, the cgroup additions (unified, hugetlb, checkBeforeUpdate),
//! and `features` telling the truth about them.

use crate::common::*;
use serde_json::{json, Value};
use std::os::unix::fs::MetadataExt;
use std::process::Command;

/// A host directory with a tmpfs mounted below it (`sub`), made by the
/// test and unmounted when dropped.
struct SubMount(std::path::PathBuf);

impl SubMount {
    fn new(t: &T) -> SubMount {
        let d = t.dir.join("hostdir");
        std::fs::create_dir_all(d.join("sub")).unwrap();
        std::fs::write(d.join("f"), "host").unwrap();
        ok(&Command::new("mount")
            .args(["-t", "tmpfs", "berth-test-sub"])
            .arg(d.join("sub"))
            .output()
            .unwrap());
        SubMount(d)
    }
}

impl Drop for SubMount {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.0.join("sub"))
            .status();
    }
}

#[test]
fn recursive_read_only_reaches_submounts() {
    let t = T::new("rro");
    let host = SubMount::new(&t);
    let mut c = t.config(&[
        "sh",
        "-c",
        "touch /rro/sub/x 2>&1; touch /ro/sub/y && echo ro-sub-writable; touch /ro/z 2>&1; true",
    ]);
    let src = host.0.to_str().unwrap();
    let m = c["mounts"].as_array_mut().unwrap();
    m.push(
        json!({"destination": "/rro", "type": "none", "source": src, "options": ["rbind", "rro"]}),
    );
    m.push(
        json!({"destination": "/ro", "type": "none", "source": src, "options": ["rbind", "ro"]}),
    );
    let (code, out, err) = t.run(&c);
    assert_eq!(code, 0, "{err}{out}");
    assert!(out.contains("/rro/sub/x: Read-only file system"), "{out}");
    // Plain ro is the kernel's: the submount below stays writable.
    assert!(out.contains("ro-sub-writable"), "{out}");
    assert!(out.contains("/ro/z: Read-only file system"), "{out}");
    // Filesystem data on a bind is the kernel's to ignore, as with runc:
    // the config starts.
    c["mounts"].as_array_mut().unwrap().push(
        json!({"destination": "/x", "type": "none", "source": src, "options": ["rbind", "size=1m"]}),
    );
    let (code, _, err) = t.run(&c);
    assert_eq!(code, 0, "{err}");
    drop(host);
}

#[test]
fn idmapped_mounts_with_and_without_a_user_namespace() {
    let t = T::new("idmap");
    let host = t.dir.join("idmapped");
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(host.join("root-owned"), "x").unwrap();
    // Without a user namespace: disk uid 0 seen as 1234 through the mount.
    let mut c = t.config(&[
        "sh",
        "-c",
        "stat -c %u:%g /m/root-owned; stat -c %u /plain/root-owned",
    ]);
    let map = json!([{"containerID": 0, "hostID": 1234, "size": 1}]);
    let m = c["mounts"].as_array_mut().unwrap();
    m.push(
        json!({"destination": "/m", "type": "none", "source": host, "options": ["bind", "idmap"],
        "uidMappings": map, "gidMappings": map}),
    );
    m.push(json!({"destination": "/plain", "type": "none", "source": host, "options": ["bind"]}));
    let (code, out, err) = t.run(&c);
    if err.contains("does its filesystem support idmapped mounts") {
        eprintln!("skipped: {err}");
        return;
    }
    assert_eq!((code, out.as_str()), (0, "1234:1234\n0\n"), "{err}");
    // With the container's user namespace mapping (ridmap, no mapping of
    // its own): the host's root-owned file is the container root's, and
    // what the container's root writes is root's on disk.
    let mut c = t.config(&[
        "sh",
        "-c",
        "stat -c %u /m/root-owned; touch /m/made-inside; id -u",
    ]);
    with_userns(&mut c, 100000);
    c["mounts"].as_array_mut().unwrap().push(
        json!({"destination": "/m", "type": "none", "source": host, "options": ["rbind", "ridmap"]}),
    );
    let (code, out, err) = t.run(&c);
    assert_eq!((code, out.as_str()), (0, "0\n0\n"), "{err}");
    let made = std::fs::metadata(host.join("made-inside")).unwrap();
    assert_eq!(
        (made.uid(), made.gid()),
        (0, 0),
        "unchanged on the host side"
    );
    assert_eq!(std::fs::metadata(host.join("root-owned")).unwrap().uid(), 0);
    // idmap without mappings and without a user namespace: refused.
    let mut c = t.config(&["true"]);
    c["mounts"].as_array_mut().unwrap().push(
        json!({"destination": "/m", "type": "none", "source": host, "options": ["bind", "idmap"]}),
    );
    t.write_config(&c);
    t.expect_error(
        &t.create(&t.id("nomap"), &[]),
        "idmap needs uidMappings and gidMappings",
    );
}

#[test]
fn tmpcopyup_and_masks_sharing_one_tmpfs() {
    let t = T::new("copyup");
    let etc = t.bundle.join("rootfs/etc/berth-copyup");
    std::fs::create_dir_all(etc.join("d")).unwrap();
    std::fs::write(etc.join("d/f"), "kept").unwrap();
    let mut c = t.config(&[
        "sh",
        "-c",
        "cat /etc/berth-copyup/d/f; touch /etc/berth-copyup/new; \
         for p in /proc/acpi /proc/scsi /sys/firmware; do stat -c %d $p; done | sort -u | wc -l",
    ]);
    c["mounts"]
        .as_array_mut()
        .unwrap()
        .push(json!({"destination": "/etc/berth-copyup",
        "type": "tmpfs", "source": "tmpfs", "options": ["tmpcopyup", "mode=755"]}));
    let (code, out, err) = t.run(&c);
    assert_eq!((code, out.as_str()), (0, "kept1\n"), "{err}");
    // The copy went to the tmpfs, not into the rootfs.
    assert!(!etc.join("new").exists());
}

#[test]
fn rootfs_propagation_shared_and_unbindable() {
    let t = T::new("rootprop");
    for (p, want) in [
        ("shared", "shared:"),
        ("rshared", "shared:"),
        ("unbindable", "unbindable"),
        ("runbindable", "unbindable"),
        ("slave", ""),
        ("private", ""),
    ] {
        let mut c = t.config(&["sh", "-c", "awk '$5==\"/\"' /proc/self/mountinfo"]);
        c["linux"]["rootfsPropagation"] = json!(p);
        let (code, out, err) = t.run(&c);
        assert_eq!(code, 0, "{p}: {err}");
        assert!(out.contains(want), "{p}: {out}");
    }
    // Bidirectional: with rshared, a mount made inside under an rshared
    // bind of a shared host directory appears on the host.
    let host = t.dir.join("bidir");
    std::fs::create_dir_all(&host).unwrap();
    ok(&Command::new("mount")
        .arg("--bind")
        .arg(&host)
        .arg(&host)
        .output()
        .unwrap());
    ok(&Command::new("mount")
        .arg("--make-shared")
        .arg(&host)
        .output()
        .unwrap());
    let mut c = t.config(&["sh", "-c", "mount -t tmpfs berth-test-inner /b/inner"]);
    std::fs::create_dir_all(host.join("inner")).unwrap();
    c["linux"]["rootfsPropagation"] = json!("rshared");
    c["process"]["capabilities"]["bounding"]
        .as_array_mut()
        .unwrap()
        .push(json!("CAP_SYS_ADMIN"));
    c["process"]["capabilities"]["effective"]
        .as_array_mut()
        .unwrap()
        .push(json!("CAP_SYS_ADMIN"));
    c["process"]["capabilities"]["permitted"]
        .as_array_mut()
        .unwrap()
        .push(json!("CAP_SYS_ADMIN"));
    c["mounts"].as_array_mut().unwrap().push(
        json!({"destination": "/b", "type": "none", "source": host, "options": ["rbind", "rshared"]}),
    );
    let (code, _, err) = t.run(&c);
    let seen = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .contains("berth-test-inner");
    let _ = Command::new("umount")
        .arg("-l")
        .arg(host.join("inner"))
        .status();
    let _ = Command::new("umount").arg("-l").arg(&host).status();
    assert_eq!(code, 0, "{err}");
    assert!(seen, "the mount made inside reached the host");
}

#[test]
fn net_devices_move_in_with_their_addresses() {
    let t = T::new("netdev");
    let host_name = format!("berthnd{}", std::process::id() % 10000);
    // ifb: a virtual device every kernel here has (dummy may be a module).
    let made = Command::new("ip")
        .args(["link", "add", &host_name, "type", "ifb"])
        .output()
        .unwrap();
    if !made.status.success() {
        let made = Command::new("ip")
            .args(["link", "add", &host_name, "type", "dummy"])
            .output()
            .unwrap();
        ok(&made);
    }
    ok(&Command::new("ip")
        .args(["addr", "add", "10.213.7.1/24", "dev", &host_name])
        .output()
        .unwrap());
    let mut c = t.config(&["sh", "-c", "ip -o addr show ctr0 | grep -o 'inet [0-9./]*'; cat /sys/class/net/ctr0/operstate /sys/class/net/ctr0/flags"]);
    c["linux"]["netDevices"] = json!({host_name.clone(): {"name": "ctr0"}});
    let (code, out, err) = t.run(&c);
    let left = Command::new("ip")
        .args(["link", "show", &host_name])
        .output()
        .unwrap();
    if left.status.success() {
        let _ = Command::new("ip")
            .args(["link", "del", &host_name])
            .status();
    }
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("inet 10.213.7.1/24\n"), "{out}");
    let flags =
        u32::from_str_radix(out.lines().last().unwrap().trim_start_matches("0x"), 16).unwrap();
    assert_eq!(flags & 1, 1, "up: {out}");
    // A virtual device goes with the namespace (the spec: never moved back).
    assert!(!left.status.success(), "still on the host");
    // A device the host does not have: refused, named.
    t.write_config(&c);
    t.expect_error(
        &t.create(&t.id("gone"), &[]),
        &format!("linux.netDevices.{host_name}"),
    );
    // Without a network namespace of its own: refused.
    let mut c = t.config(&["true"]);
    drop_ns(&mut c, &["network"]);
    c["linux"]["netDevices"] = json!({"lo": {}});
    t.write_config(&c);
    t.expect_error(
        &t.create(&t.id("nons"), &[]),
        "linux.netDevices: needs a network namespace",
    );
}

#[test]
fn memory_policy_and_time_offsets() {
    let t = T::new("mempol");
    std::fs::copy(mempolicy_probe(), t.bundle.join("rootfs/bin/mempolicy")).unwrap();
    let mut c = t.config(&["sh", "-c", "mempolicy; cat /proc/self/timens_offsets"]);
    c["linux"]["memoryPolicy"] = json!({"mode": "MPOL_INTERLEAVE", "nodes": "0"});
    c["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "time"}));
    c["linux"]["timeOffsets"] =
        json!({"monotonic": {"secs": 86400, "nanosecs": 7}, "boottime": {"secs": -60}});
    let (code, out, err) = t.run(&c);
    assert_eq!(code, 0, "{err}");
    // MPOL_INTERLEAVE is 3.
    assert!(out.starts_with("mode=3 nodes=0x1\n"), "{out}");
    let offsets: Vec<Vec<&str>> = out
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert!(offsets.contains(&vec!["monotonic", "86400", "7"]), "{out}");
    assert!(offsets.contains(&vec!["boottime", "-60", "0"]), "{out}");
    // Bad values name the field.
    for (field, v, want) in [
        (
            "memoryPolicy",
            json!({"mode": "MPOL_BIND"}),
            "linux.memoryPolicy: MPOL_BIND needs nodes",
        ),
        (
            "memoryPolicy",
            json!({"mode": "MPOL_BIND", "nodes": "9999"}),
            "linux.memoryPolicy.nodes",
        ),
        (
            "timeOffsets",
            json!({"realtime": {"secs": 1}}),
            "unknown clock \"realtime\"",
        ),
    ] {
        let mut c = t.config(&["true"]);
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "time"}));
        c["linux"][field] = v;
        t.write_config(&c);
        t.expect_error(&t.create(&t.id("bad"), &[]), want);
    }
}

#[test]
fn cgroup_unified_hugetlb_and_check_before_update() {
    let t = T::new("cg13");
    if unified() {
        // The unified map, written as given (controllers enabled for it).
        let mut c = t.config(&[
            "sh",
            "-c",
            "cat /sys/fs/cgroup/memory.high /sys/fs/cgroup/pids.max",
        ]);
        c["linux"]["resources"]["unified"] = json!({"memory.high": "67108864", "pids.max": "77"});
        let (code, out, err) = t.run(&c);
        assert_eq!((code, out.as_str()), (0, "67108864\n77\n"), "{err}");
        // hugetlb reservation limits where the kernel has them.
        let sizes: Vec<String> = std::fs::read_dir("/sys/kernel/mm/hugepages")
            .map(|r| {
                r.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        let controllers = std::fs::read_to_string("/sys/fs/cgroup/cgroup.controllers").unwrap();
        if sizes.iter().any(|s| s == "hugepages-2048kB") && controllers.contains("hugetlb") {
            let mut c = t.config(&["sh", "-c", "cat /sys/fs/cgroup/hugetlb.2MB.rsvd.max 2>/dev/null || cat /sys/fs/cgroup/hugetlb.2MB.max"]);
            c["linux"]["resources"]["hugepageLimits"] =
                json!([{"pageSize": "2MB", "limit": 4194304}]);
            let (code, out, err) = t.run(&c);
            assert_eq!((code, out.as_str()), (0, "4194304\n"), "{err}");
        }
        // checkBeforeUpdate: a limit below the usage is refused, not OOM.
        let (id, _) = t.sleeper("c", t.config(&["true"]));
        let o = t.berth(&["update", "--memory", "4096", &id]);
        // The kernel OOM-kills the init to honour it; under systemd the
        // dead scope can be collected before berth writes the files,
        // which fails the update (the limit was set: the container died).
        assert!(
            o.status.success() || (systemd() && t.state(&id)["status"] == "stopped"),
            "without the check the limit is set: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let res = t.dir.join("res.json");
        std::fs::write(
            &res,
            r#"{"memory": {"limit": 4096, "checkBeforeUpdate": true}}"#,
        )
        .unwrap();
        let (id2, _) = t.sleeper("d", t.config(&["true"]));
        t.expect_error(
            &t.berth(&["update", "-r", res.to_str().unwrap(), &id2]),
            "below the current usage",
        );
        t.ok(&["delete", "-f", &id]);
        t.ok(&["delete", "-f", &id2]);
    } else {
        // Hybrid or v1: a unified key whose controller cgroup2 lacks here.
        let mut c = t.config(&["true"]);
        c["linux"]["resources"]["unified"] = json!({"memory.high": "1"});
        t.write_config(&c);
        t.expect_error(
            &t.create(&t.id("u"), &[]),
            "memory cgroup controller is not available",
        );
    }
    // A malformed page size is refused with the field named.
    let mut c = t.config(&["true"]);
    c["linux"]["resources"]["hugepageLimits"] = json!([{"pageSize": "64kB", "limit": 1}]);
    t.write_config(&c);
    t.expect_error(
        &t.create(&t.id("hp"), &[]),
        "hugepageLimits[0].pageSize \"64kB\"",
    );
    // Intel RDT where the host has no resctrl: a clear error.
    let has_resctrl = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .contains(" - resctrl ");
    if !has_resctrl {
        let mut c = t.config(&["true"]);
        c["linux"]["intelRdt"] = json!({"closID": "gold"});
        t.write_config(&c);
        t.expect_error(
            &t.create(&t.id("rdt"), &[]),
            "linux.intelRdt: no resctrl filesystem is mounted",
        );
    }
}

#[test]
fn features_report_runtime_spec_1_3() {
    let t = T::new("features13");
    let f: Value = serde_json::from_str(&t.ok(&["features"])).unwrap();
    assert_eq!(f["ociVersionMax"], "1.3.0");
    let opts: Vec<&str> = f["mountOptions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for o in [
        "rro",
        "rnosuid",
        "idmap",
        "ridmap",
        "nosymfollow",
        "tmpcopyup",
        "rbind",
    ] {
        assert!(opts.contains(&o), "{o}");
    }
    let l = &f["linux"];
    assert_eq!(l["mountExtensions"]["idmap"]["enabled"], true);
    assert_eq!(l["netDevices"]["enabled"], true);
    assert!(l["memoryPolicy"]["modes"]
        .as_array()
        .unwrap()
        .contains(&json!("MPOL_INTERLEAVE")));
    let resctrl = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .contains(" - resctrl ");
    assert_eq!(l["intelRdt"]["enabled"], resctrl);
    let rdma = std::fs::read_to_string("/proc/cgroups")
        .unwrap()
        .lines()
        .any(|l| l.starts_with("rdma\t"));
    assert_eq!(
        l["cgroup"]["rdma"],
        rdma && (unified() || std::path::Path::new("/sys/fs/cgroup/rdma").exists())
    );
    // The state document speaks the same version.
    let (id, _) = t.sleeper("c", t.config(&["true"]));
    assert_eq!(t.state(&id)["ociVersion"], "1.3.0");
    t.ok(&["delete", "-f", &id]);
}
