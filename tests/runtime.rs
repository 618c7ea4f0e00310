//! Integration tests of the runtime: real containers from the busybox
//! fixture, asserting on what the contained process saw. Run as root.

mod common;
use common::{unified, T};
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
fn process_cwd_env_user_umask_rlimits() {
    let t = T::new("process");
    let mut c = t.config(&["sh", "-c", "pwd; echo $FOO; id -u; id -g; id -G; umask; ulimit -n; ulimit -Hn; touch /tmp/f && stat -c %a /tmp/f"]);
    c["root"]["readonly"] = json!(false);
    c["process"]["cwd"] = json!("/home/user");
    c["process"]["env"]
        .as_array_mut()
        .unwrap()
        .push(json!("FOO=bar baz"));
    c["process"]["user"] =
        json!({"uid": 1000, "gid": 1000, "additionalGids": [5, 65534], "umask": 0o027});
    c["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "soft": 100, "hard": 200}]);
    let (code, out, err) = t.run(&c);
    assert_eq!(code, 0, "{err}");
    let l: Vec<&str> = out.lines().collect();
    assert_eq!(
        l,
        vec![
            "/home/user",
            "bar baz",
            "1000",
            "1000",
            "1000 5 65534",
            "0027",
            "100",
            "200",
            "640"
        ],
        "{out}"
    );
}

#[test]
fn capabilities_applied() {
    let t = T::new("caps");
    let out =
        t.sh("grep -E '^Cap(Eff|Bnd|Prm)' /proc/self/status; grep NoNewPrivs /proc/self/status");
    // AUDIT_WRITE(29) KILL(5) NET_BIND_SERVICE(10) = 0x20000420
    assert!(out.contains("CapEff:\t0000000020000420"), "{out}");
    assert!(out.contains("CapBnd:\t0000000020000420"), "{out}");
    assert!(out.contains("NoNewPrivs:\t1"), "{out}");
}

#[test]
fn user_namespace_maps() {
    let t = T::new("userns");
    let mut c = t.config(&[
        "sh",
        "-c",
        "cat /proc/self/uid_map /proc/self/gid_map; id -u; hostname; cat /dev/null && echo devok",
    ]);
    common::with_userns(&mut c, 100000);
    let (code, out, err) = t.run(&c);
    assert_eq!(code, 0, "{err}");
    let l: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(l[0], vec!["0", "100000", "65536"], "{out}");
    assert_eq!(l[1], vec!["0", "100000", "65536"], "{out}");
    assert_eq!(l[2], vec!["0"]);
    assert_eq!(l[3], vec!["berth-test"]);
    assert_eq!(l[4], vec!["devok"]);
}

#[test]
fn join_network_namespace_by_path() {
    let t = T::new("joinns");
    t.write_config(&t.config(&["sleep", "30"]));
    let a = t.id("a");
    assert!(t.create(&a, &[]).status.success());
    let pid = t.state(&a)["pid"].as_i64().unwrap();
    let want = std::fs::read_link(format!("/proc/{pid}/ns/net")).unwrap();
    let mut c = t.config(&["readlink", "/proc/self/ns/net"]);
    for ns in c["linux"]["namespaces"].as_array_mut().unwrap() {
        if ns["type"] == "network" {
            ns["path"] = json!(format!("/proc/{pid}/ns/net"));
        }
    }
    let (code, out, err) = t.run(&c);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), want.to_str().unwrap());
    // A path that is not a namespace of that type is refused.
    let mut c = t.config(&["true"]);
    c["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .retain(|n| n["type"] != "network");
    c["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "network", "path": format!("/proc/{pid}/ns/ipc")}));
    c["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "time"}));
    t.write_config(&c);
    let o = t.berth(&["run", &t.id("bad")]);
    t.expect_error(&o, "is not a net namespace");
    assert!(t.berth(&["delete", "-f", &a]).status.success());
}

#[test]
fn lifecycle_states_pidfile_and_kill_signals() {
    let t = T::new("life");
    t.write_config(&t.config(&[
        "sh",
        "-c",
        "trap 'echo got-usr1' USR1; echo ready; while true; do sleep 0.05; done",
    ]));
    let id = t.id("c");
    let pidfile = t.dir.join("pid");
    let o = t.create(&id, &["--pid-file", pidfile.to_str().unwrap()]);
    assert!(o.status.success(), "{o:?}");
    let st = t.state(&id);
    assert_eq!(st["status"], "created");
    let pid = st["pid"].as_i64().unwrap();
    assert!(pid > 0);
    assert_eq!(std::fs::read_to_string(&pidfile).unwrap(), pid.to_string());
    let keys: Vec<&String> = st.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "ociVersion",
            "id",
            "pid",
            "status",
            "bundle",
            "rootfs",
            "created",
            "owner"
        ]
    );
    assert_eq!(st["bundle"], t.bundle.to_str().unwrap());
    assert!(st["created"].as_str().unwrap().ends_with('Z'));
    // The container is in its cgroup already.
    let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    assert!(cg.contains(&t.token), "{cg}");

    assert!(t.berth(&["start", &id]).status.success());
    assert_eq!(t.state(&id)["status"], "running");
    t.expect_error(
        &t.berth(&["start", &id]),
        "cannot start an already running container",
    );
    let wait_out = |n: usize, what: &str| {
        for _ in 0..500 {
            if t.container_out(&id).matches(what).count() >= n {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!(
            "container never printed {what} {n} times: {}",
            t.container_out(&id)
        );
    };
    wait_out(1, "ready");
    for (i, sig) in ["USR1", "SIGUSR1", "10", "usr1"].iter().enumerate() {
        assert!(t.berth(&["kill", &id, sig]).status.success(), "kill {sig}");
        wait_out(i + 1, "got-usr1");
    }
    t.expect_error(&t.berth(&["kill", &id, "SIGNOPE"]), "unknown signal");
    t.expect_error(&t.berth(&["delete", &id]), "is not stopped: running");
    assert!(t.berth(&["kill", &id, "KILL"]).status.success());
    t.wait_status(&id, "stopped");
    assert_eq!(t.state(&id)["pid"], 0);
    t.expect_error(&t.berth(&["kill", &id, "TERM"]), "container not running");
    t.expect_error(
        &t.berth(&["start", &id]),
        "cannot start a container that has stopped",
    );
    let got = t.container_out(&id);
    assert_eq!(got.matches("got-usr1").count(), 4, "{got}");
    assert!(t.berth(&["delete", &id]).status.success());
    t.expect_error(&t.berth(&["state", &id]), "container does not exist");
}

#[test]
fn list_formats_and_delete_force() {
    let t = T::new("list");
    t.write_config(&t.config(&["sleep", "30"]));
    let (a, b) = (t.id("a"), t.id("b"));
    assert!(t.create(&a, &[]).status.success());
    // Its own cgroup: a fresh config.
    t.write_config(&t.config(&["sleep", "30"]));
    assert!(t.create(&b, &[]).status.success());
    assert!(t.berth(&["start", &b]).status.success());
    let q = String::from_utf8(t.berth(&["list", "-q"]).stdout).unwrap();
    assert_eq!(q.lines().collect::<Vec<_>>(), vec![a.as_str(), b.as_str()]);
    let j: serde_json::Value =
        serde_json::from_slice(&t.berth(&["list", "--format", "json"]).stdout).unwrap();
    assert_eq!(j[0]["status"], "created");
    assert_eq!(j[1]["status"], "running");
    let table = String::from_utf8(t.berth(&["list"]).stdout).unwrap();
    assert!(
        table.starts_with("ID ") && table.contains("STATUS") && table.contains("running"),
        "{table}"
    );
    // A created container is deleted without --force (runc does so too).
    assert!(t.berth(&["delete", &a]).status.success());
    assert!(t.berth(&["delete", "--force", &b]).status.success());
}

#[test]
fn stopped_while_no_berth_runs() {
    let t = T::new("stale");
    t.write_config(&t.config(&["true"]));
    let id = t.id("c");
    assert!(t.create(&id, &[]).status.success());
    assert!(t.berth(&["start", &id]).status.success());
    t.wait_status(&id, "stopped");
    assert!(t.berth(&["delete", &id]).status.success());
}

#[test]
fn run_exit_status_and_signals() {
    let t = T::new("exit");
    assert_eq!(t.run(&t.config(&["sh", "-c", "exit 7"])).0, 7);
    // Killed by a signal: 128+N. The test kills it from outside, as a pid
    // namespace's init cannot be killed from inside.
    t.write_config(&t.config(&["sleep", "30"]));
    let id = t.id("sig");
    let mut child = t
        .cmd(&["run", &id])
        .stdin(std::process::Stdio::null())
        .spawn()
        .unwrap();
    t.wait_status(&id, "running");
    assert!(t.berth(&["kill", &id, "9"]).status.success());
    assert_eq!(child.wait().unwrap().code(), Some(137));
    let (code, out, _) = t.run(&t.config(&["echo", "hello", "world"]));
    assert_eq!((code, out.as_str()), (0, "hello world\n"));
    // stdin passes through in the foreground.
    t.write_config(&t.config(&["sh", "-c", "read x; echo got:$x"]));
    let mut child = t
        .cmd(&["run", &t.id("stdin")])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"abc\n").unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&o.stdout), "got:abc\n");
    // A missing program fails `create`, naming it.
    t.write_config(&t.config(&["no-such-program"]));
    t.expect_error(
        &t.berth(&["run", &t.id("noprog")]),
        "\"no-such-program\": executable file not found in $PATH",
    );
}

#[test]
fn no_pivot_and_detached_run() {
    let t = T::new("nopivot");
    let (code, out, err) = {
        t.write_config(&t.config(&["sh", "-c", "echo $$; ls /"]));
        let o = t.berth(&["run", "--no-pivot", &t.id("np")]);
        (
            o.status.code().unwrap(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("1\n") && out.contains("bin"), "{out}");
    t.write_config(&t.config(&["sleep", "30"]));
    let id = t.id("d");
    // (Its stdio must not be a pipe the test waits on: the container holds it.)
    let st = t
        .cmd(&["run", "-d", &id])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    assert_eq!(t.state(&id)["status"], "running");
    assert!(t.berth(&["delete", "-f", &id]).status.success());
}

#[test]
fn concurrent_create_same_id_one_wins() {
    let t = T::new("race");
    t.write_config(&t.config(&["sleep", "30"]));
    let id = t.id("c");
    let kids: Vec<_> = (0..8)
        .map(|i| {
            let err = std::fs::File::create(t.dir.join(format!("err{i}"))).unwrap();
            t.cmd(&["create", &id])
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(err)
                .spawn()
                .unwrap()
        })
        .collect();
    let outs: Vec<_> = kids
        .into_iter()
        .enumerate()
        .map(|(i, mut k)| std::process::Output {
            status: k.wait().unwrap(),
            stdout: vec![],
            stderr: std::fs::read(t.dir.join(format!("err{i}"))).unwrap(),
        })
        .collect();
    let ok = outs.iter().filter(|o| o.status.success()).count();
    assert_eq!(ok, 1, "{outs:?}");
    for o in outs.iter().filter(|o| !o.status.success()) {
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("container with given ID already exists")
        );
    }
    assert!(t.berth(&["delete", "-f", &id]).status.success());
}

#[test]
fn bad_input_is_refused_and_leaves_nothing() {
    let t = T::new("bad");
    let b = t.bundle.to_str().unwrap().to_string();
    let id = t.id("x");
    // missing bundle
    t.expect_error(
        &t.berth(&["create", "-b", "/nonexistent-bundle", &id]),
        "/nonexistent-bundle",
    );
    // missing config.json
    let empty = t.dir.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    t.expect_error(
        &t.berth(&["create", "-b", empty.to_str().unwrap(), &id]),
        "config.json",
    );
    // invalid JSON and wrong types
    std::fs::write(t.bundle.join("config.json"), "{not json").unwrap();
    t.expect_error(
        &t.berth(&["create", "-b", &b, &id]),
        "config.json: invalid config",
    );
    let mut c = t.config(&["true"]);
    c["process"]["args"] = json!("true");
    t.write_config(&c);
    t.expect_error(&t.berth(&["create", "-b", &b, &id]), "invalid type");
    // missing process.args
    let mut c = t.config(&["true"]);
    c["process"].as_object_mut().unwrap().remove("args");
    t.write_config(&c);
    t.expect_error(&t.berth(&["create", "-b", &b, &id]), "process.args");
    // missing rootfs
    let mut c = t.config(&["true"]);
    c["root"]["path"] = json!("no-such-rootfs");
    t.write_config(&c);
    t.expect_error(&t.berth(&["create", "-b", &b, &id]), "no-such-rootfs");
    // unknown namespace type
    let mut c = t.config(&["true"]);
    c["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "bogus"}));
    t.write_config(&c);
    t.expect_error(&t.berth(&["create", "-b", &b, &id]), "bogus");
    // bad ids
    t.write_config(&t.config(&["true"]));
    for bad in ["../x", "", "a/b", "a\u{1}b"] {
        t.expect_error(&t.berth(&["create", "-b", &b, bad]), "invalid container id");
    }
    t.expect_error(
        &t.berth(&["create", "-b", &b, &"x".repeat(1000)]),
        "longer than 255",
    );
    // a mount that cannot be made fails create cleanly
    let mut c = t.config(&["true"]);
    c["mounts"].as_array_mut().unwrap().push(json!({"destination": "/x", "type": "bind", "source": "/no/such/source", "options": ["bind"]}));
    t.write_config(&c);
    t.expect_error(&t.berth(&["create", "-b", &b, &id]), "/no/such/source");
    // a hard rlimit above what the host allows
    let mut c = t.config(&["true"]);
    c["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 1u64 << 40}]);
    t.write_config(&c);
    t.expect_error(
        &t.berth(&["create", "-b", &b, &id]),
        "process.rlimits RLIMIT_NOFILE",
    );
    // duplicate id
    t.write_config(&t.config(&["sleep", "30"]));
    assert!(t.create(&id, &[]).status.success());
    t.expect_error(
        &t.create(&id, &[]),
        "container with given ID already exists",
    );
    // --root that is a file
    let f = t.dir.join("file");
    std::fs::write(&f, "").unwrap();
    let o = std::process::Command::new(common::berth_bin())
        .args([
            "--root",
            f.to_str().unwrap(),
            "--log",
            t.log.to_str().unwrap(),
            "--log-format",
            "json",
            "list",
        ])
        .output()
        .unwrap();
    t.expect_error(&o, "not a directory");
    // unknown container
    t.expect_error(&t.berth(&["state", "nope"]), "container does not exist");
    t.expect_error(&t.berth(&["delete", "nope"]), "container does not exist");
    assert!(t.berth(&["delete", "-f", &id]).status.success());
}

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
    c["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .retain(|n| n["type"] != "cgroup");
    let (code, out, err) = t.run(&c);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&format!("/berth/{}", t.id("run"))), "{out}");
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
fn spec_writes_default_config() {
    let t = T::new("spec");
    let d = t.dir.join("specdir");
    std::fs::create_dir_all(&d).unwrap();
    let o = t.berth(&["spec", "-b", d.to_str().unwrap()]);
    assert!(o.status.success());
    let c: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("config.json")).unwrap()).unwrap();
    assert_eq!(c["process"]["args"], json!(["sh"]));
    assert_eq!(c["root"]["path"], "rootfs");
    t.expect_error(&t.berth(&["spec", "-b", d.to_str().unwrap()]), "exists");
    let o = t.berth(&["spec", "--rootless", "-b", t.dir.to_str().unwrap()]);
    assert!(o.status.success());
    let c: serde_json::Value =
        serde_json::from_slice(&std::fs::read(t.dir.join("config.json")).unwrap()).unwrap();
    assert!(c["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n["type"] == "user"));
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

#[test]
fn kill_all_and_annotations() {
    let t = T::new("killall");
    let mut c = t.config(&["sh", "-c", "sleep 30 & sleep 30 & echo ready; wait"]);
    c["annotations"] = json!({"org.example.b": "2", "org.example.a": "1"});
    t.write_config(&c);
    let id = t.id("c");
    assert!(t.create(&id, &[]).status.success());
    let st = t.state(&id);
    assert_eq!(
        st["annotations"],
        json!({"org.example.a": "1", "org.example.b": "2"})
    );
    let keys: Vec<&String> = st.as_object().unwrap().keys().collect();
    assert_eq!(keys[7], "annotations");
    assert!(t.berth(&["start", &id]).status.success());
    for _ in 0..500 {
        if t.container_out(&id).contains("ready") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(t.berth(&["kill", "--all", &id, "KILL"]).status.success());
    t.wait_status(&id, "stopped");
    assert!(t.berth(&["delete", &id]).status.success());
}

#[test]
fn run_terminal_relay() {
    let t = T::new("tty");
    let mut c = t.config(&["sh", "-c", "tty; stty size; read x; echo got:$x; exit 5"]);
    c["process"]["terminal"] = json!(true);
    t.write_config(&c);
    let (out, code, term) = t.on_pty(&["run", &t.id("t")], b"hello\r");
    assert_eq!(code, 5, "{out}");
    assert!(out.contains("/dev/pts/0"), "{out}");
    assert!(out.contains("30 100"), "window size: {out}");
    assert!(out.contains("got:hello"), "{out}");
    // The caller's terminal left raw mode again.
    use nix::sys::termios::LocalFlags;
    assert!(term
        .local_flags
        .contains(LocalFlags::ECHO | LocalFlags::ICANON));
}

/// A detached container running `sleep 60`; returns (id, init pid).
fn sleeper(t: &T, name: &str, mut c: serde_json::Value) -> (String, i64) {
    c["process"]["args"] = json!(["sleep", "60"]);
    t.write_config(&c);
    let id = t.id(name);
    let st = t
        .cmd(&["run", "-d", &id])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    let pid = t.state(&id)["pid"].as_i64().unwrap();
    (id, pid)
}

fn out(o: &std::process::Output) -> String {
    assert!(o.status.success(), "{o:?}");
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn exec_joins_namespaces_cgroup_and_process_settings() {
    let t = T::new("exec");
    let mut c = t.config(&["true"]);
    c["root"]["readonly"] = json!(false);
    let (id, pid) = sleeper(&t, "c", c);
    let ns = |n: &str| {
        std::fs::read_link(format!("/proc/{pid}/ns/{n}"))
            .unwrap()
            .display()
            .to_string()
    };
    let o = out(&t.berth(&["exec", &id, "sh", "-c", "echo $$; hostname; for n in net ipc uts mnt pid cgroup; do readlink /proc/self/ns/$n; done; cat /proc/self/cgroup | head -1; cat /proc/1/cmdline | tr '\\0' ' '"]));
    let l: Vec<&str> = o.lines().collect();
    assert_ne!(l[0], "1", "exec is not the init");
    assert!(
        l[0].parse::<u32>().unwrap() < 100,
        "a pid of the container's pid namespace: {o}"
    );
    assert_eq!(l[1], "berth-test");
    for (i, n) in ["net", "ipc", "uts", "mnt", "pid", "cgroup"]
        .iter()
        .enumerate()
    {
        assert_eq!(l[2 + i], ns(n), "{n} namespace");
    }
    assert!(
        l[8].ends_with(":/"),
        "in the container's cgroup (its namespace root): {o}"
    );
    assert_eq!(l[9].trim(), "sleep 60");
    let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    assert!(cg.contains(&t.token));
    // Exit status, user, env, cwd, capabilities, no_new_privs.
    assert_eq!(
        t.berth(&["exec", &id, "sh", "-c", "exit 9"]).status.code(),
        Some(9)
    );
    let o = out(&t.berth(&[
        "exec",
        "-u",
        "1000:1000",
        "-g",
        "5",
        "--cwd",
        "/tmp",
        "-e",
        "X=1",
        &id,
        "sh",
        "-c",
        "id -u; id -g; id -G; pwd; echo $X",
    ]));
    assert_eq!(o, "1000\n1000\n1000 5\n/tmp\n1\n");
    let o = out(&t.berth(&[
        "exec",
        "--cap",
        "CAP_NET_ADMIN",
        "--no-new-privs",
        &id,
        "grep",
        "-E",
        "CapEff|NoNewPrivs",
        "/proc/self/status",
    ]));
    assert!(
        o.contains("CapEff:\t0000000020001420") && o.contains("NoNewPrivs:\t1"),
        "{o}"
    );
    // A process.json.
    let p = t.dir.join("process.json");
    std::fs::write(&p, serde_json::to_vec(&json!({"args": ["sh", "-c", "echo from-json $Y"], "env": ["Y=2", "PATH=/bin"], "cwd": "/", "user": {"uid": 0, "gid": 0}})).unwrap()).unwrap();
    assert_eq!(
        out(&t.berth(&["exec", "-p", p.to_str().unwrap(), &id])),
        "from-json 2\n"
    );
    // Detached with a pid file: the process is in the container's cgroup.
    let pf = t.dir.join("exec.pid");
    let st = t
        .cmd(&[
            "exec",
            "-d",
            "--pid-file",
            pf.to_str().unwrap(),
            &id,
            "sleep",
            "30",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    let epid: i32 = std::fs::read_to_string(&pf).unwrap().parse().unwrap();
    assert!(out(&t.berth(&["ps", "--format", "json", &id])).contains(&epid.to_string()));
    // Runtime errors exit 255 with the message.
    let o = t.berth(&["exec", &id, "no-such-program"]);
    assert_eq!(o.status.code(), Some(255));
    assert!(String::from_utf8_lossy(&o.stderr).contains("executable file not found"));
    assert!(t.berth(&["kill", &id, "KILL"]).status.success());
    t.wait_status(&id, "stopped");
    let o = t.berth(&["exec", &id, "true"]);
    assert_eq!(o.status.code(), Some(255));
    assert!(String::from_utf8_lossy(&o.stderr).contains("cannot exec in a stopped container"));
    assert!(t.berth(&["delete", &id]).status.success());
}

#[test]
fn exec_with_a_terminal() {
    let t = T::new("exectty");
    let (id, _) = sleeper(&t, "c", t.config(&["true"]));
    let (o, code, _) = t.on_pty(
        &[
            "exec",
            "-t",
            &id,
            "sh",
            "-c",
            "tty; read x; echo got:$x; exit 4",
        ],
        b"yo\r",
    );
    assert_eq!(code, 4, "{o}");
    assert!(o.contains("/dev/pts/") && o.contains("got:yo"), "{o}");
    assert!(t.berth(&["delete", "-f", &id]).status.success());
}

#[test]
fn cgroup_ps_pause_resume_update_events() {
    let t = T::new("cgops");
    let (id, pid) = sleeper(&t, "c", t.config(&["true"]));
    let pids: Vec<i64> =
        serde_json::from_str(&out(&t.berth(&["ps", "--format", "json", &id]))).unwrap();
    assert_eq!(pids, vec![pid]);
    let table = out(&t.berth(&["ps", &id]));
    assert!(
        // ps(1)'s own header (procps or busybox), then the container's lines.
        table.lines().next().unwrap().contains("PID") && table.contains("sleep 60"),
        "{table}"
    );
    assert!(t.berth(&["pause", &id]).status.success());
    assert_eq!(t.state(&id)["status"], "paused");
    let o = t.berth(&["exec", &id, "true"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("cannot exec in a paused container"));
    assert!(t.berth(&["resume", &id]).status.success());
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
        serde_json::from_str(&out(&t.berth(&["events", "--stats", &id]))).unwrap();
    assert_eq!(v["type"], "stats");
    assert_eq!(v["data"]["memory"]["usage"]["limit"], 48 << 20);
    assert_eq!(v["data"]["pids"]["limit"], 17);
    assert!(v["data"]["pids"]["current"].as_u64().unwrap() >= 1);
    assert!(v["data"]["cpu"]["usage"]["total"].as_u64().is_some());
    let cpu_max = if common::unified() {
        "cpu.max"
    } else {
        "cpu/cpu.cfs_quota_us"
    };
    let o = out(&t.berth(&["exec", &id, "cat", &format!("/sys/fs/cgroup/{cpu_max}")]));
    assert!(o.starts_with("20000"), "{o}");
    // A paused container is deleted with --force.
    assert!(t.berth(&["pause", &id]).status.success());
    assert!(t.berth(&["delete", "-f", &id]).status.success());
}

#[test]
fn features_are_truthful_json() {
    let t = T::new("features");
    let v: serde_json::Value = serde_json::from_str(&out(&t.berth(&["features"]))).unwrap();
    assert_eq!(v["ociVersionMax"], "1.2.0");
    assert!(v["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .contains(&json!("user")));
    assert_eq!(v["linux"]["cgroup"]["v1"], true);
    assert_eq!(v["linux"]["cgroup"]["systemd"], false);
    assert_eq!(v["linux"]["seccomp"]["enabled"], true);
    for a in ["SCMP_ACT_NOTIFY", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_LOG"] {
        assert!(v["linux"]["seccomp"]["actions"]
            .as_array()
            .unwrap()
            .contains(&json!(a)));
    }
    assert!(v["hooks"].as_array().unwrap().contains(&json!("poststop")));
    assert!(v["mountOptions"]
        .as_array()
        .unwrap()
        .contains(&json!("rbind")));
}

#[test]
fn hooks_run_in_order_with_state() {
    let t = T::new("hooks");
    let d = t.dir.join("hooks");
    std::fs::create_dir_all(&d).unwrap();
    let host_hook = |name: &str| json!({"path": "/bin/sh", "args": ["sh", "-c", format!("cat > {}/{name}.json; echo $HOOKENV > {}/{name}.env", d.display(), d.display())], "env": [format!("HOOKENV=e-{name}")]});
    let mut c = t.config(&["true"]);
    c["root"]["readonly"] = json!(false);
    c["hooks"] = json!({
        "prestart": [host_hook("prestart")],
        "createRuntime": [host_hook("createRuntime")],
        "createContainer": [host_hook("createContainer")],
        "startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "cat > /tmp/startContainer.json"]}],
        "poststart": [host_hook("poststart")],
        "poststop": [host_hook("poststop")]
    });
    let (id, pid) = sleeper(&t, "c", c);
    let read = |n: &str| -> serde_json::Value {
        serde_json::from_slice(
            &std::fs::read(d.join(format!("{n}.json")))
                .unwrap_or_else(|_| panic!("{n} hook did not run")),
        )
        .unwrap()
    };
    for (n, status, p) in [
        ("prestart", "creating", pid),
        ("createRuntime", "creating", pid),
        ("createContainer", "creating", 1),
        ("poststart", "running", pid),
    ] {
        let v = read(n);
        assert_eq!(v["id"], id.as_str(), "{n}");
        assert_eq!(v["status"], status, "{n}");
        assert_eq!(v["pid"], p, "{n}");
        assert_eq!(
            std::fs::read_to_string(d.join(format!("{n}.env")))
                .unwrap()
                .trim(),
            format!("e-{n}")
        );
    }
    let v: serde_json::Value = serde_json::from_slice(
        &std::fs::read(t.bundle.join("rootfs/tmp/startContainer.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        (v["status"].as_str(), v["pid"].as_i64()),
        (Some("created"), Some(1))
    );
    assert!(!d.join("poststop.json").exists());
    assert!(t.berth(&["delete", "-f", &id]).status.success());
    assert_eq!(read("poststop")["status"], "stopped");

    // A failing createRuntime hook fails create and leaves nothing.
    let mut c = t.config(&["true"]);
    c["hooks"] = json!({"createRuntime": [{"path": "/bin/false"}]});
    t.write_config(&c);
    t.expect_error(
        &t.create(&t.id("f"), &[]),
        "createRuntime hook 0 (/bin/false): failed",
    );
    // A hook past its timeout is killed and fails create.
    c["hooks"] =
        json!({"prestart": [{"path": "/bin/sleep", "args": ["sleep", "10"], "timeout": 1}]});
    t.write_config(&c);
    let start = std::time::Instant::now();
    t.expect_error(&t.create(&t.id("to"), &[]), "timed out after 1s");
    assert!(start.elapsed() < std::time::Duration::from_secs(8));
    // A failing poststart hook fails start and stops the container.
    c["hooks"] = json!({"poststart": [{"path": "/bin/false"}]});
    c["process"]["args"] = json!(["sleep", "60"]);
    t.write_config(&c);
    let ps = t.id("ps");
    assert!(t.create(&ps, &[]).status.success());
    t.expect_error(&t.berth(&["start", &ps]), "poststart hook 0");
    t.wait_status(&ps, "stopped");
    assert!(t.berth(&["delete", &ps]).status.success());
}

#[test]
fn preserve_fds_and_listen_fds() {
    use std::os::unix::process::CommandExt;
    let t = T::new("fds");
    let f = t.dir.join("passed");
    std::fs::write(&f, "through-fd-3\n").unwrap();
    t.write_config(&t.config(&[
        "sh",
        "-c",
        "cat <&3; ls /proc/self/fd | tr '\\n' ' '; echo; echo $LISTEN_FDS $LISTEN_PID",
    ]));
    let run = |extra: &[&str], env: bool| {
        let mut args = vec!["run"];
        args.extend_from_slice(extra);
        let id = t.id(if env { "listen" } else { "keep" });
        args.push(&id);
        let mut cmd = t.cmd(&args);
        if env {
            cmd.env("LISTEN_FDS", "1");
        }
        // A fresh open file each run (the offset is shared otherwise).
        let file = std::fs::File::open(&f).unwrap();
        let fd = std::os::fd::AsRawFd::as_raw_fd(&file);
        // SAFETY: dup2 in the child before exec onto fd 3.
        unsafe {
            cmd.pre_exec(move || {
                // dup2(3, 3) would keep close-on-exec: clear it instead.
                let r = if fd == 3 {
                    libc::fcntl(3, libc::F_SETFD, 0)
                } else {
                    libc::dup2(fd, 3)
                };
                if r < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let o = cmd.stdin(std::process::Stdio::null()).output().unwrap();
        drop(file);
        assert!(o.status.success(), "{o:?}");
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let o = run(&["--preserve-fds", "1"], false);
    let l: Vec<&str> = o.lines().collect();
    assert_eq!(l[0], "through-fd-3");
    // 0, 1, 2, 3 and the fd ls itself opens: nothing else leaked in.
    assert_eq!(l[1].split_whitespace().count(), 5, "{o}");
    let o = run(&[], true);
    assert!(
        o.starts_with("through-fd-3\n") && o.ends_with("1 1\n"),
        "{o}"
    );
}

#[test]
fn create_with_a_pipe_on_stdout_returns() {
    let t = T::new("pipe");
    t.write_config(&t.config(&["sh", "-c", "echo from-container; sleep 30"]));
    let id = t.id("c");
    // The container keeps the pipe; berth create itself must return.
    let mut child = t
        .cmd(&["create", &id])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut pipe = child.stdout.take().unwrap();
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(10),
            "create hung on a piped stdout"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    assert!(status.success());
    assert!(t.berth(&["start", &id]).status.success());
    let mut buf = [0u8; 15];
    std::io::Read::read_exact(&mut pipe, &mut buf).unwrap();
    assert_eq!(&buf, b"from-container\n");
    assert!(t.berth(&["delete", "-f", &id]).status.success());
}

#[test]
fn cgroup_shared_default_parent_goes_with_the_last_container() {
    let t = T::new("cgshared");
    let mut c = t.config(&["sleep", "30"]);
    c["linux"].as_object_mut().unwrap().remove("cgroupsPath");
    t.write_config(&c);
    let (a, b) = (t.id("a"), t.id("b"));
    assert!(t.create(&a, &[]).status.success());
    assert!(t.create(&b, &[]).status.success());
    // a made the berth/ parent; deleting it first must not remove it from
    // under b, and deleting b (the last one) removes it: the leak check
    // of T sees no `berth` directory left.
    assert!(t.berth(&["delete", &a]).status.success());
    assert!(t.berth(&["delete", &b]).status.success());
}

/// Makes the command's process see clone3(2) fail with ENOSYS, as under
/// Docker's default seccomp profile or on kernels before 5.3.
fn without_clone3(c: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    let stmt = |code: u32, k: u32, jt: u8, jf: u8| libc::sock_filter {
        code: code as u16,
        jt,
        jf,
        k,
    };
    // Load the syscall number; clone3 gets ENOSYS, everything else runs.
    let prog = [
        stmt(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 0, 0, 0),
        stmt(
            libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K,
            libc::SYS_clone3 as u32,
            0,
            1,
        ),
        stmt(
            libc::BPF_RET | libc::BPF_K,
            libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32,
            0,
            0,
        ),
        stmt(libc::BPF_RET | libc::BPF_K, libc::SECCOMP_RET_ALLOW, 0, 0),
    ];
    // SAFETY: runs in the forked child before exec; prctl with a filter
    // program that lives on the (copied) stack for the call. Root may
    // install a filter without no_new_privs.
    unsafe {
        c.pre_exec(move || {
            let fprog = libc::sock_fprog {
                len: prog.len() as u16,
                filter: prog.as_ptr() as *mut libc::sock_filter,
            };
            if libc::prctl(
                libc::PR_SET_SECCOMP,
                libc::SECCOMP_MODE_FILTER,
                &fprog as *const libc::sock_fprog,
            ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

#[test]
fn without_clone3_create_and_exec_fall_back_to_clone() {
    let t = T::new("noclone3");
    let mut c = t.config(&["sleep", "60"]);
    // No cgroup namespace, so paths read inside and outside agree.
    let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
    ns.retain(|n| n["type"] != "cgroup");
    t.write_config(&c);
    let id = t.id("c");
    let mut run = t.cmd(&["run", "-d", &id]);
    without_clone3(&mut run);
    // The container keeps its stdio: no pipes (see T::create).
    let errp = t.dir.join("run.err");
    let st = run
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&errp).unwrap())
        .status()
        .unwrap();
    let err = std::fs::read_to_string(&errp).unwrap();
    assert!(st.success(), "{err}");
    let pid = t.state(&id)["pid"].as_i64().unwrap();
    let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    // Without CLONE_INTO_CGROUP the init was moved in by berth: the
    // unified line on a cgroup v2 host, the memory controller's on v1.
    let line = cg
        .lines()
        .find(|l| {
            let f: Vec<&str> = l.splitn(3, ':').collect();
            if unified() {
                f[0] == "0"
            } else {
                f[1].split(',').any(|c| c == "memory")
            }
        })
        .unwrap_or_else(|| panic!("{cg}"));
    assert!(line.contains(&t.token), "init in its cgroup: {cg}");
    let mut exec = t.cmd(&["exec", &id, "cat", "/proc/self/cgroup"]);
    without_clone3(&mut exec);
    let o = exec.stdin(std::process::Stdio::null()).output().unwrap();
    assert_eq!(out(&o), cg, "exec'd process in the init's cgroups");
    // CLONE_NEWTIME needs clone3: refused, and nothing is left.
    let mut c = t.config(&["true"]);
    c["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "time"}));
    t.write_config(&c);
    let mut run = t.cmd(&["run", &t.id("time")]);
    without_clone3(&mut run);
    let o = run.stdin(std::process::Stdio::null()).output().unwrap();
    t.expect_error(&o, "clone container init: EINVAL");
    assert!(t.berth(&["delete", "-f", &id]).status.success());
}
