//! The container's filesystem: isolation, default mounts, devices and masks,
//! read-only root, custom mounts, symlinked mount targets, sysctls.

use crate::common::*;
use serde_json::json;

#[test]
fn isolation_hostname_pid1_netns_ipc_uts() {
    let t = T::new("iso");
    let host_ipc = std::fs::read_link("/proc/self/ns/ipc").unwrap();
    let host_uts = std::fs::read_link("/proc/self/ns/uts").unwrap();
    let out = t.sh("hostname; echo $$; ls /sys/class/net; readlink /proc/self/ns/ipc; readlink /proc/self/ns/uts; ps -o pid | wc -l");
    let l: Vec<&str> = out.lines().collect();
    assert_eq!(l[0], "berth-test");
    assert_eq!(l[1], "1");
    assert_eq!(l[2], "lo", "only lo in a new netns: {out}");
    assert_ne!(l[3], host_ipc.to_str().unwrap());
    assert_ne!(l[4], host_uts.to_str().unwrap());
    // ps header + sh + ps: only the container's own processes are visible.
    assert!(l[5].trim().parse::<u32>().unwrap() <= 4, "{out}");
}

#[test]
fn default_mounts_devices_and_masks() {
    let t = T::new("mounts");
    let out =
        t.sh("cat /proc/self/mounts; ls -l /dev; cat /proc/kcore | wc -c; ls /proc/acpi | wc -l");
    for want in [
        "proc /proc proc rw",
        "tmpfs /dev tmpfs rw,nosuid",
        "devpts /dev/pts devpts rw,nosuid,noexec",
        "shm /dev/shm tmpfs rw,nosuid,nodev,noexec",
        "mqueue /dev/mqueue mqueue rw,nosuid,nodev,noexec",
        "sysfs /sys sysfs ro,nosuid,nodev,noexec",
        "/proc/sys proc ro,nosuid,nodev,noexec",
    ] {
        assert!(out.contains(want), "missing {want:?} in\n{out}");
    }
    for dev in ["null", "zero", "full", "random", "urandom", "tty"] {
        assert!(
            out.lines()
                .any(|l| l.starts_with("crw-rw-rw-") && l.ends_with(&format!(" {dev}"))),
            "/dev/{dev}:\n{out}"
        );
    }
    for link in [
        "fd -> /proc/self/fd",
        "stdin -> /proc/self/fd/0",
        "ptmx -> pts/ptmx",
    ] {
        assert!(out.contains(link), "{link}\n{out}");
    }
    // /proc/kcore is masked by /dev/null, /proc/acpi by an empty tmpfs.
    let tail: Vec<&str> = out.lines().rev().take(2).collect();
    assert_eq!(tail, vec!["0", "0"]);
}

#[test]
fn readonly_root_and_custom_mounts() {
    let t = T::new("romounts");
    let host = t.dir.join("shared");
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(host.join("f"), "from-host\n").unwrap();
    let mut c = t.config(&["sh", "-c", "cat /data/f; grep ' /data ' /proc/mounts; grep ' /scratch ' /proc/mounts; touch /x 2>&1 || echo ROOT-RO; echo hi > /data/g || echo BIND-RO; echo ok > /scratch/y && cat /scratch/y"]);
    c["mounts"].as_array_mut().unwrap().push(json!({"destination": "/data", "type": "bind", "source": host, "options": ["rbind", "ro", "nosuid"]}));
    c["mounts"].as_array_mut().unwrap().push(json!({"destination": "/scratch", "type": "tmpfs", "source": "tmpfs", "options": ["nodev", "noexec", "size=1m", "mode=1777"]}));
    let (code, out, err) = t.run(&c);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("from-host"), "{out}");
    assert!(
        out.contains(" /data ") && out.lines().nth(1).unwrap().contains("ro,nosuid"),
        "{out}"
    );
    assert!(
        out.contains("tmpfs /scratch tmpfs rw,nodev,noexec"),
        "{out}"
    );
    assert!(out.contains("size=1024k"), "{out}");
    assert!(
        out.contains("ROOT-RO") && out.contains("BIND-RO") && out.contains("ok"),
        "{out}"
    );
    assert!(!host.join("g").exists());
}

#[test]
fn mount_target_symlink_stays_in_rootfs() {
    let t = T::new("symlink");
    let rootfs = t.bundle.join("rootfs");
    std::os::unix::fs::symlink("/", rootfs.join("mnt")).unwrap();
    std::os::unix::fs::symlink("../../../../../../", rootfs.join("up")).unwrap();
    let name = format!("escape-{}", t.token);
    let mut c = t.config(&["sh", "-c", "ls -d /escape* /up2*"]);
    c["mounts"]
        .as_array_mut()
        .unwrap()
        .push(json!({"destination": format!("/mnt/{name}"), "type": "tmpfs", "source": "tmpfs"}));
    c["mounts"].as_array_mut().unwrap().push(
        json!({"destination": format!("/up/up2-{name}"), "type": "tmpfs", "source": "tmpfs"}),
    );
    let (code, out, err) = t.run(&c);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(&format!("/{name}")) && out.contains(&format!("/up2-{name}")),
        "{out}"
    );
    assert!(
        !std::path::Path::new(&format!("/{name}")).exists(),
        "mount target escaped to the host"
    );
    assert!(
        !std::path::Path::new(&format!("/up2-{name}")).exists(),
        "mount target escaped to the host"
    );
    assert!(rootfs.join(&name).is_dir());
}

#[test]
fn devices_sysctl_domainname_oom_score() {
    let t = T::new("misc");
    let mut c = t.config(&["sh", "-c", "ls -ln /dev/fuse; cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/domainname /proc/self/oom_score_adj"]);
    c["linux"]["devices"] = json!([{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 0o600, "uid": 1000, "gid": 5}]);
    c["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1"});
    c["domainname"] = json!("example.org");
    c["process"]["oomScoreAdj"] = json!(500);
    let (code, out, err) = t.run(&c);
    assert_eq!(code, 0, "{err}");
    let l: Vec<&str> = out.lines().collect();
    assert!(
        l[0].starts_with("crw-------")
            && l[0].contains(" 1000 ")
            && l[0].contains(" 5 ")
            && l[0].contains("10,"),
        "{out}"
    );
    assert_eq!(&l[1..], ["1", "example.org", "500"], "{out}");
}
