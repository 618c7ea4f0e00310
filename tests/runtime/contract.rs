//! The orchestrators' contract: what containerd, Docker, podman and
//! Kubernetes rely on in runc's behaviour (#25), each checked on a real
//! container and, where the reference runtime is installed, against runc.

use crate::common::*;
use serde_json::{json, Value};
use std::process::Stdio;

fn text(o: &std::process::Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn delete_force_of_a_missing_container_succeeds() {
    let t = T::new("delmissing");
    // Orchestrators call it to be sure a container is gone.
    let o = t.berth(&["delete", "--force", "never-created"]);
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    t.expect_error(
        &t.berth(&["delete", "never-created"]),
        "container does not exist",
    );
    if with_reference() {
        let st = std::process::Command::new(runc())
            .args(["--root", t.dir.join("runc").to_str().unwrap()])
            .args(["delete", "--force", "never-created"])
            .status()
            .unwrap();
        assert_eq!(st.code(), Some(0), "runc itself");
    }
}

#[test]
fn kill_signal_zero_checks_the_container() {
    let t = T::new("kill0");
    let (id, _) = t.sleeper("k", t.config(&["true"]));
    t.ok(&["kill", &id, "0"]);
    t.ok(&["kill", "--all", &id, "0"]);
    // Signal 0 delivered nothing: the container still runs.
    assert_eq!(t.state(&id)["status"], "running");
    t.ok(&["kill", &id, "KILL"]);
    t.wait_status(&id, "stopped");
    t.expect_error(&t.berth(&["kill", &id, "0"]), "container not running");
    t.ok(&["delete", &id]);
}

#[test]
fn exec_process_without_user_and_ignore_paused() {
    let t = T::new("execuser");
    let mut c = t.config(&["true"]);
    c["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    let (id, _) = t.sleeper("u", c);
    // A process.json without `user` runs as the container's user.
    let p = t.dir.join("process.json");
    std::fs::write(
        &p,
        json!({"args": ["sh", "-c", "echo $(id -u):$(id -g)"], "cwd": "/", "env": ["PATH=/bin"]})
            .to_string(),
    )
    .unwrap();
    let out = t.ok(&["exec", "-p", p.to_str().unwrap(), &id]);
    assert_eq!(out.trim(), "1000:1000");
    // Paused: refused unless --ignore-paused; with it the process runs
    // once the container is resumed.
    t.ok(&["pause", &id]);
    let o = t.berth(&["exec", &id, "true"]);
    assert_eq!(o.status.code(), Some(255), "{:?}", text(&o));
    assert!(
        text(&o)
            .1
            .contains("cannot exec in a paused container (use --ignore-paused to override)"),
        "{:?}",
        text(&o)
    );
    let out = t.dir.join("paused.out");
    let mut child = t
        .cmd(&[
            "exec",
            "--ignore-paused",
            &id,
            "sh",
            "-c",
            "echo ran-after-resume",
        ])
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        "",
        "ran while paused"
    );
    t.ok(&["resume", &id]);
    assert!(child.wait().unwrap().success());
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "ran-after-resume\n");
    t.ok(&["delete", "-f", &id]);
}

#[test]
fn log_file_is_made_and_debug_tells_each_step() {
    let t = T::new("debuglog");
    // berth with a --log of the test's choosing (T::cmd gives its own).
    let with_log = |log: &std::path::Path, args: &[&str]| {
        let mut c = std::process::Command::new(berth_bin());
        if systemd() {
            c.arg("--systemd-cgroup");
        }
        c.arg("--root").arg(&t.root).arg("--log").arg(log);
        c.args(args).current_dir(&t.bundle).stdin(Stdio::null());
        c
    };
    let log = t.dir.join("quiet.log");
    t.write_config(&t.config(&["true"]));
    // --log exists after a command that went well, as runc leaves it.
    let o = with_log(&log, &["run", &t.id("q")]).output().unwrap();
    assert!(o.status.success(), "{:?}", text(&o));
    let quiet = std::fs::read_to_string(&log).unwrap();
    assert!(!quiet.contains("level=error"), "{quiet}");
    // --debug: runc's logfmt lines, one per step of create, start, exec.
    let dbg = t.dir.join("debug.log");
    let id = t.id("d");
    t.write_config(&t.config(&["sleep", "600"]));
    // (Not piped: the container's init holds the stdio it was given.)
    let logged = |args: &[&str]| {
        let mut a = vec!["--debug"];
        a.extend_from_slice(args);
        let st = with_log(&dbg, &a)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(
            st.success(),
            "{args:?}: {}",
            std::fs::read_to_string(&dbg).unwrap()
        );
    };
    logged(&["create", &id]);
    logged(&["start", &id]);
    logged(&["exec", &id, "true"]);
    let lines = std::fs::read_to_string(&dbg).unwrap();
    for step in [
        "config.json of",
        "state directory",
        "cgroup made",
        "cloned",
        "rootfs made",
        "ready",
        "released",
        "program exec'd",
        "exec ",
    ] {
        assert!(lines.contains(step), "no {step:?} line: {lines}");
    }
    for l in lines.lines() {
        assert!(
            l.starts_with("time=\"") && l.contains(" level=debug msg=\"") && l.contains("ms)\""),
            "not runc's format: {l}"
        );
    }
    // Without --log, debug lines go to stderr.
    let o = std::process::Command::new(berth_bin())
        .args(["--root", t.root.to_str().unwrap(), "--debug", "state", &id])
        .output()
        .unwrap();
    assert!(text(&o).1.contains("level=debug"), "{:?}", text(&o));
    t.ok(&["delete", "-f", &id]);
}

#[test]
fn update_memory_unlimited_and_cpu_share() {
    let t = T::new("updflags");
    let mut c = t.config(&["true"]);
    c["linux"]["resources"]["memory"] = json!({"limit": 100 << 20});
    c["linux"]["resources"]["cpu"] = json!({"shares": 512});
    let (id, _) = t.sleeper("u", c);
    let (mem, cpu) = if unified() {
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/cpu.weight")
    } else {
        (
            "/sys/fs/cgroup/memory/memory.limit_in_bytes",
            "/sys/fs/cgroup/cpu/cpu.shares",
        )
    };
    let read = |f: &str| t.ok(&["exec", &id, "cat", f]).trim().to_string();
    assert_eq!(read(mem), "104857600");
    t.ok(&["update", "--memory", "-1", &id]);
    let unlimited = read(mem);
    assert!(
        unlimited == "max" || unlimited.parse::<u64>().unwrap() > 1 << 60,
        "{unlimited}"
    );
    // runc's spelling of the flag.
    t.ok(&["update", "--cpu-share", "100", &id]);
    // cgroup v2: runc's conversion of shares to a weight.
    assert_eq!(read(cpu), if unified() { "4" } else { "100" });
    t.ok(&["delete", "-f", &id]);
}

/// Mount configs runc starts: data options on a bind (the kernel ignores
/// them), a read-only /dev with /dev/pts and others below it, and a bind of
/// the host's /proc onto /proc for a container in the host's pid namespace.
#[test]
fn mount_configs_runc_starts() {
    let t = T::new("mountcfg");
    let mut c = t.config(&[
        "sh",
        "-c",
        "stat -c %a /data; touch /dev/x 2>&1; ls /dev/pts/ptmx",
    ]);
    let data = t.dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    c["mounts"].as_array_mut().unwrap().push(json!({
        "destination": "/data", "type": "bind", "source": data,
        "options": ["bind", "mode=755", "size=1m"]
    }));
    c["root"]["readonly"] = json!(false);
    for m in c["mounts"].as_array_mut().unwrap() {
        if m["destination"] == "/dev" {
            m["options"].as_array_mut().unwrap().push(json!("ro"));
        }
    }
    let (code, out, err) = t.run(&c);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[1].contains("Read-only file system"), "{out}");
    assert_eq!(lines.get(2), Some(&"/dev/pts/ptmx"), "{out}");
    // The host's /proc bound onto /proc, the host's pid namespace.
    let mut c = t.config(&["readlink", "/proc/self/ns/pid"]);
    drop_ns(&mut c, &["pid"]);
    c["mounts"][0] = json!({"destination": "/proc", "type": "bind", "source": "/proc",
                            "options": ["rbind", "nosuid", "noexec", "nodev"]});
    let (code, out, err) = t.run(&c);
    assert_eq!(code, 0, "{err}");
    let host = std::fs::read_link("/proc/self/ns/pid").unwrap();
    assert_eq!(out.trim(), host.to_str().unwrap());
    // Anything else onto /proc is still refused.
    let mut c = t.config(&["true"]);
    c["mounts"][0] = json!({"destination": "/proc", "type": "bind", "source": data,
                            "options": ["rbind"]});
    let (code, _, err) = t.run(&c);
    assert_eq!(code, 1);
    assert!(err.contains("destination resolves to /proc"), "{err}");
}

/// `berth spec` writes the namespaces `runc spec` writes on this host: a
/// cgroup namespace only on a cgroup v2 host (tools start from the spec
/// and add their own).
#[test]
fn spec_namespaces_as_runc_spec() {
    let t = T::new("specns");
    let names = |dir: &std::path::Path, bin: &std::path::Path| -> Vec<String> {
        std::fs::create_dir_all(dir).unwrap();
        let st = std::process::Command::new(bin)
            .arg("spec")
            .current_dir(dir)
            .status()
            .unwrap();
        assert!(st.success());
        let c: Value =
            serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
        let mut v: Vec<String> = c["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["type"].as_str().unwrap().to_string())
            .collect();
        v.sort();
        v
    };
    let ours = names(&t.dir.join("berth"), &berth_bin());
    assert_eq!(ours.contains(&"cgroup".to_string()), unified(), "{ours:?}");
    let theirs = names(&t.dir.join("runc"), &runc());
    assert_eq!(ours, theirs);
}

/// cgroup v1: a container placed under a pre-made parent whose cpuset is
/// empty (a kubelet pod cgroup) starts: the parent and the container's
/// directory take the nearest ancestor's cpus and mems, as runc fills them
/// (without that, joining fails with ENOSPC).
#[test]
fn empty_cpuset_parent_is_filled_on_v1() {
    if unified() || systemd() {
        return; // cgroup v2 has no per-directory cpuset to fill.
    }
    let t = T::new("cpusetpod");
    let pod = std::path::Path::new("/sys/fs/cgroup/cpuset/berth-test")
        .join(&t.token)
        .join("pod");
    std::fs::create_dir(&pod).unwrap();
    // The pod cgroup is the test's: removed even when an assertion fails
    // (before the harness removes the test's own parents).
    struct Made(std::path::PathBuf);
    impl Drop for Made {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir(self.0.join("c"));
            let _ = std::fs::remove_dir(&self.0);
        }
    }
    let _made = Made(pod.clone());
    let cpus = |d: &std::path::Path| std::fs::read_to_string(d.join("cpuset.cpus")).unwrap();
    assert_eq!(
        cpus(&pod).trim(),
        "",
        "a fresh v1 cpuset directory is empty"
    );
    let mut c = t.config(&["cat", "/sys/fs/cgroup/cpuset/cpuset.cpus"]);
    c["linux"]["cgroupsPath"] = json!(format!("/berth-test/{}/pod/c", t.token));
    let (code, out, err) = t.run(&c);
    assert_eq!(code, 0, "{err}");
    let host = cpus(std::path::Path::new("/sys/fs/cgroup/cpuset"));
    assert_eq!(out.trim(), host.trim());
    assert_eq!(cpus(&pod).trim(), host.trim());
}

/// A cwd only root may enter (/root, 0700) with a non-root user: entered
/// before the user changes, as runc does.
#[test]
fn cwd_only_root_may_enter() {
    let t = T::new("rootcwd");
    let root = t.bundle.join("rootfs/root");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::set_permissions(&root, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let mut c = t.config(&["sh", "-c", "pwd; id -u; ls . 2>&1 | head -1"]);
    c["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    c["process"]["cwd"] = json!("/root");
    let (code, out, err) = t.run(&c);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(&lines[..2], ["/root", "1000"], "{out}");
    // Inside, the user is still only the user.
    assert!(lines[2].contains("Permission denied"), "{out}");
}

/// A cgroupsPath naming a cgroup that is already there: frozen, `run -d`
/// is refused at once (the init would freeze on joining it and create would
/// wait for ever); with a process in it, the container starts with runc's
/// warning.
#[test]
fn a_frozen_or_busy_cgroup_given_by_path() {
    if systemd() {
        return; // systemd makes a new unit for every container.
    }
    let t = T::new("frozencg");
    let rel = format!("berth-test/{}/given", t.token);
    let (dir, freeze, frozen, thawed) = if unified() {
        let d = std::path::Path::new("/sys/fs/cgroup").join(&rel);
        (d, "cgroup.freeze", "1", "0")
    } else {
        let d = std::path::Path::new("/sys/fs/cgroup/freezer").join(&rel);
        (d, "freezer.state", "FROZEN", "THAWED")
    };
    std::fs::create_dir(&dir).unwrap();
    // The cgroup is the test's: thawed and removed even when an assertion
    // fails (its other hierarchies' directories are berth's).
    struct Made(std::path::PathBuf, &'static str, &'static str);
    impl Drop for Made {
        fn drop(&mut self) {
            let _ = std::fs::write(self.0.join(self.1), self.2);
            for _ in 0..100 {
                if std::fs::remove_dir(&self.0).is_ok() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        }
    }
    let _made = Made(dir.clone(), freeze, thawed);
    std::fs::write(dir.join(freeze), frozen).unwrap();
    let mut c = t.config(&["sleep", "600"]);
    c["linux"]["cgroupsPath"] = json!(format!("/{rel}"));
    t.write_config(&c);
    let id = t.id("f");
    let mut child = t
        .cmd(&["run", "-d", &id])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let end = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if std::time::Instant::now() > end {
            let _ = child.kill();
            let _ = std::fs::write(dir.join(freeze), thawed);
            let _ = child.wait();
            panic!("run -d into a frozen cgroup hung");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert!(!status.success());
    assert!(
        err.contains("container's cgroup unexpectedly frozen"),
        "{err}"
    );
    // Busy: a process of the test's own in it.
    std::fs::write(dir.join(freeze), thawed).unwrap();
    let mut sleeper = std::process::Command::new("sleep")
        .arg("60")
        .spawn()
        .unwrap();
    std::fs::write(dir.join("cgroup.procs"), sleeper.id().to_string()).unwrap();
    let id = t.id("b");
    assert!(t.detached(&id).success());
    let log = std::fs::read_to_string(&t.log).unwrap();
    assert!(
        log.contains("container's cgroup is not empty: 1 process(es) found"),
        "{log}"
    );
    // delete kills what is in the container's cgroup, the test's process too.
    t.ok(&["delete", "-f", &id]);
    let _ = sleeper.kill();
    let _ = sleeper.wait();
}

/// The `events` stream reports an OOM kill in the container's cgroup as
/// runc does (`{"type":"oom","id":ID}`) and ends when the container stops.
#[test]
fn events_stream_reports_an_oom_kill_and_ends() {
    let t = T::new("eventsoom");
    let mut c = t.config(&[
        "sh",
        "-c",
        "sleep 1; x=$(head -c 67108864 /dev/zero | tr '\\0' a); sleep 600",
    ]);
    c["linux"]["resources"]["memory"] = json!({"limit": 16 << 20, "swap": 16 << 20});
    t.write_config(&c);
    let id = t.id("e");
    assert!(t.detached(&id).success());
    let mut ev = t
        .cmd(&["events", "--interval", "1s", &id])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // The OOM killer takes the shell that reads the allocation (the
    // init): the stream reports the kill and ends with the container.
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let stdout = ev.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)) {
            let Ok(l) = line else { break };
            let _ = tx.send(l);
        }
    });
    let mut out = String::new();
    let oom = format!(r#"{{"type":"oom","id":"{id}"}}"#);
    let end = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::time::Instant::now() < end {
        if let Ok(l) = rx.recv_timeout(std::time::Duration::from_millis(200)) {
            out.push_str(&l);
            out.push('\n');
            if l == oom {
                break;
            }
        }
    }
    // Stopping the container ends the stream (the kill may have taken
    // the init already).
    let _ = t.berth(&["kill", &id, "KILL"]);
    let end = std::time::Instant::now() + std::time::Duration::from_secs(15);
    let status = loop {
        if let Some(st) = ev.try_wait().unwrap() {
            break Some(st);
        }
        if std::time::Instant::now() > end {
            let _ = ev.kill();
            let _ = ev.wait();
            break None;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    reader.join().unwrap();
    out.extend(rx.try_iter().map(|l| l + "\n"));
    assert!(out.lines().any(|l| l == oom), "no oom event: {out}");
    assert!(out.contains(r#""type":"stats""#), "{out}");
    assert!(
        status.is_some_and(|s| s.success()),
        "events did not end: {status:?}"
    );
    t.ok(&["delete", "-f", &id]);
}

/// `exec --cgroup [CONTROLLER:]SUB` runs the process in an existing
/// sub-cgroup of the container's (v1 and hybrid: in the hierarchies of the
/// controllers named; v2: the one hierarchy), as runc does.
#[test]
fn exec_into_a_sub_cgroup() {
    if systemd() {
        return; // the unit's cgroup is systemd's to divide.
    }
    let t = T::new("execsub");
    let c = t.config(&["true"]);
    let path = c["linux"]["cgroupsPath"].as_str().unwrap().to_string();
    let (id, _) = t.sleeper("s", c);
    let base = if unified() {
        "/sys/fs/cgroup"
    } else {
        "/sys/fs/cgroup/memory"
    };
    let sub = std::path::Path::new(base)
        .join(path.trim_start_matches('/'))
        .join("sub");
    std::fs::create_dir(&sub).unwrap();
    struct Made(std::path::PathBuf);
    impl Drop for Made {
        fn drop(&mut self) {
            for _ in 0..100 {
                if std::fs::remove_dir(&self.0).is_ok() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        }
    }
    let _made = Made(sub.clone());
    let arg = if unified() { "sub" } else { "memory:sub" };
    let out = t.ok(&["exec", "--cgroup", arg, &id, "cat", "/proc/self/cgroup"]);
    let line = |name: &str| {
        out.lines()
            .find(|l| {
                l.split(':')
                    .nth(1)
                    .is_some_and(|c| c.split(',').any(|x| x == name))
            })
            .unwrap_or_else(|| panic!("no {name} line: {out}"))
            .to_string()
    };
    if unified() {
        assert_eq!(out.trim(), "0::/sub", "{out}");
    } else {
        assert!(line("memory").ends_with(":/sub"), "{out}");
        assert!(line("pids").ends_with(":/"), "only memory was asked: {out}");
    }
    for bad in ["nosuch", "../escape", "nosuchcontroller:sub"] {
        let o = t.berth(&["exec", "--cgroup", bad, &id, "true"]);
        assert_eq!(o.status.code(), Some(255), "{bad}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains("--cgroup") && err.contains(bad),
            "{bad}: {err}"
        );
    }
    t.ok(&["delete", "-f", &id]);
}

/// With a user namespace, a bind source below a directory only the host's
/// root may enter (the kubelet's 0700 pod directories) is bound: berth opens
/// it before the namespace, as runc does.
#[test]
fn userns_bind_source_under_a_root_only_directory() {
    let t = T::new("userbind");
    let private = t.dir.join("pod");
    let vol = private.join("volume");
    std::fs::create_dir_all(&vol).unwrap();
    std::fs::write(vol.join("data"), "from the pod\n").unwrap();
    std::fs::set_permissions(
        &private,
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    // (/home: a directory the rootfs has; the namespace's root may not
    // make new ones in the host-owned rootfs.)
    let mut c = t.config(&["cat", "/home/data"]);
    with_userns(&mut c, 100000);
    c["mounts"].as_array_mut().unwrap().push(json!({
        "destination": "/home", "type": "bind", "source": vol,
        "options": ["rbind", "ro"]
    }));
    let (code, out, err) = t.run(&c);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "from the pod\n");
}

/// A bind source on a shared mount, in a container with a user namespace
/// (its tree cloned before the namespace): what the container mounts on
/// it stays in the container (the clone is a slave, not a peer).
#[test]
fn cloned_bind_sources_do_not_propagate_back() {
    let t = T::new("clonepeer");
    let shared = t.dir.join("shared");
    std::fs::create_dir_all(shared.join("sub")).unwrap();
    let s = shared.to_str().unwrap();
    let st = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("mount --bind {s} {s} && mount --make-shared {s}"))
        .status()
        .unwrap();
    assert!(st.success());
    struct Mounted(String);
    impl Drop for Mounted {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount")
                .args(["-R", &self.0])
                .status();
        }
    }
    let _m = Mounted(s.to_string());
    let mut c = t.config(&["true"]);
    with_userns(&mut c, 100000);
    let m = c["mounts"].as_array_mut().unwrap();
    m.push(json!({"destination": "/home", "type": "bind", "source": s, "options": ["rbind"]}));
    m.push(json!({"destination": "/home/sub", "type": "tmpfs", "source": "tmpfs"}));
    let (code, _, err) = t.run(&c);
    assert_eq!(code, 0, "{err}");
    let sub = shared.join("sub");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(&format!(" {} ", sub.display())),
        "the container's tmpfs propagated to the host: {mounts}"
    );
}
