//! The drop-in contract: configs other tools write start under berth
//! (`runc spec`, containerd's and podman's captured in tests/configs,
//! berth's own spec samples in tests/spec-configs), and the error strings callers match on
//! read as runc's.

use crate::common::*;
use serde_json::{json, Value};
use std::path::PathBuf;

/// `runc spec [--rootless]` in a fresh directory.
fn runc_spec(t: &T, rootless: bool) -> Value {
    let d = t.dir.join(if rootless {
        "runc-rootless"
    } else {
        "runc-spec"
    });
    std::fs::create_dir_all(&d).unwrap();
    let mut cmd = std::process::Command::new("runc");
    cmd.arg("spec").current_dir(&d);
    if rootless {
        cmd.arg("--rootless");
    }
    ok(&cmd.output().expect("runc installed"));
    serde_json::from_slice(&std::fs::read(d.join("config.json")).unwrap()).unwrap()
}

/// Fits a foreign config to this test: its rootfs, a probe program, no
/// terminal, a cgroup under the test's parent; bind sources of the
/// capturing client's temporary files made anew here.
fn adapt(t: &T, mut c: Value, args: &[&str]) -> Value {
    let ours = t.config(args);
    c["root"] = json!({"path": "rootfs"});
    c["process"]["args"] = json!(args);
    c["process"]["terminal"] = json!(false);
    c["linux"]["cgroupsPath"] = ours["linux"]["cgroupsPath"].clone();
    let binds = t.dir.join("binds");
    std::fs::create_dir_all(&binds).unwrap();
    for m in c["mounts"].as_array_mut().into_iter().flatten() {
        let Some(src) = m["source"].as_str().and_then(|s| s.strip_prefix("@BIND@/")) else {
            continue;
        };
        let p = binds.join(src);
        if src.ends_with("-dir") {
            std::fs::create_dir_all(&p).unwrap();
        } else {
            std::fs::write(&p, "").unwrap();
        }
        m["source"] = json!(p);
    }
    c
}

#[test]
fn runc_spec_defaults_start_with_ambient_warnings() {
    let t = T::new("runcspec");
    for rootless in [false, true] {
        let c = adapt(
            &t,
            runc_spec(&t, rootless),
            &["sh", "-c", "grep Cap /proc/self/status"],
        );
        let (code, out, err) = t.run(&c);
        assert_eq!(
            code, 0,
            "runc spec (rootless {rootless}) under berth: {err}"
        );
        // The ambient set runc's default asks for cannot be raised without
        // inheritable: left out with runc's warning, the sets as asked.
        assert!(out.contains("CapAmb:\t0000000000000000"), "{out}");
        assert!(out.contains("CapEff:\t0000000020000420"), "{out}");
        let log = std::fs::read_to_string(&t.log).unwrap_or_default();
        assert!(
            log.contains(r#""level":"warning""#)
                && log.contains("can't raise ambient capability CAP_KILL: operation not permitted"),
            "{log}"
        );
    }
}

#[test]
fn captured_client_configs_start() {
    let t = T::new("clientcfg");
    let dir = repo().join("tests/configs");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap().flatten() {
        let c: Value = serde_json::from_slice(&std::fs::read(e.path()).unwrap()).unwrap();
        let c = adapt(&t, c, &["sh", "-c", "echo started; id -u"]);
        let (code, out, err) = t.run(&c);
        assert_eq!(code, 0, "{}: {err}", e.path().display());
        assert!(out.starts_with("started"), "{}: {out}", e.path().display());
        n += 1;
    }
    assert!(n >= 6, "captured configs found: {n}");
}

/// berth's own spec samples (tests/spec-configs), written from the
/// runtime-spec's text: `good/` holds valid configs, `bad/` invalid ones.
fn spec_samples(kind: &str) -> Vec<PathBuf> {
    let d = repo().join("tests/spec-configs").join(kind);
    let mut v: Vec<PathBuf> = std::fs::read_dir(&d)
        .unwrap_or_else(|e| panic!("{}: {e}", d.display()))
        .flatten()
        .map(|e| e.path())
        .collect();
    v.sort();
    v
}

/// What each valid sample must do here: start, or be refused with an error
/// naming the field (a config can be valid and still ask for what this host
/// does not have).
const GOOD: &[(&str, Option<&str>)] = &[
    // Valid, but nothing to start: create needs a process.
    ("minimal.json", Some("process: missing")),
    ("minimal-for-start.json", None),
    ("linux-full.json", None),
    // A device and a network link this host does not have.
    ("linux-rdma.json", Some("rdma")),
    ("linux-netdevice.json", Some("linux.netDevices")),
];

/// Each invalid sample and what its error must name (besides config.json).
const BAD: &[(&str, &str)] = &[
    ("args-empty.json", "process.args"),
    ("device-type.json", "linux.devices[0].type"),
    ("hugepage-size.json", "hugepageLimits"),
    ("invalid-json.json", "EOF while parsing"),
    (
        "mount-no-destination.json",
        "mounts[0]: missing field `destination`",
    ),
    ("namespace-twice.json", "linux.namespaces"),
    ("namespace-type.json", "linux.namespaces[1].type"),
    ("relative-cwd.json", "process.cwd"),
    (
        "rlimit-soft-above-hard.json",
        "process.rlimits RLIMIT_NOFILE: soft 2048 is above hard 1024",
    ),
    ("rlimit-type.json", "process.rlimits[0].type"),
    ("root-without-path.json", "path"),
    ("seccomp-action.json", "linux.seccomp.defaultAction"),
    ("time-offsets-without-namespace.json", "linux.timeOffsets"),
    ("uid-mapping-without-userns.json", "uidMappings"),
];

#[test]
fn spec_samples_valid_start_and_invalid_are_refused() {
    let t = T::new("samples");
    let names = |kind| -> Vec<String> {
        spec_samples(kind)
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect()
    };
    // Every sample is in its table and every table row has its sample.
    let mut good: Vec<&str> = GOOD.iter().map(|g| g.0).collect();
    let mut bad: Vec<&str> = BAD.iter().map(|b| b.0).collect();
    good.sort();
    bad.sort();
    assert_eq!(names("good"), good);
    assert_eq!(names("bad"), bad);
    for (name, refusal) in GOOD {
        let p = repo().join("tests/spec-configs/good").join(name);
        let raw: Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
        if raw.get("process").is_none() {
            std::fs::write(t.bundle.join("config.json"), raw.to_string()).unwrap();
            t.expect_error(&t.create(&t.id("np"), &[]), refusal.unwrap());
            t.check_leaks();
            continue;
        }
        // What the contained process saw: the config's user, hostname,
        // working directory and sysctl, when it has them.
        let probe = "echo \"$(id -u):$(id -G | tr ' ' ,) $(hostname) $(pwd) \
            $(cat /proc/sys/net/ipv4/ip_forward)\"";
        let c = adapt(&t, raw.clone(), &["sh", "-c", probe]);
        let (code, out, err) = t.run(&c);
        match refusal {
            Some(field) => {
                assert_eq!(code, 1, "{name}: {out}{err}");
                assert!(err.contains(field), "{name}: {err}");
            }
            None => assert_eq!(code, 0, "{name}: {err}"),
        }
        if *name == "linux-full.json" {
            assert_eq!(out.trim(), "1000:1000,5,100 full /tmp 1", "{name}: {err}");
        }
        t.check_leaks();
    }
    for (name, field) in BAD {
        let p = repo().join("tests/spec-configs/bad").join(name);
        std::fs::copy(&p, t.bundle.join("config.json")).unwrap();
        let o = t.create(&t.id("bad"), &[]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{name}: {err}");
        assert!(err.contains("config.json"), "{name}: {err}");
        assert!(
            err.contains(field),
            "{name}: the error does not name {field}: {err}"
        );
        t.check_leaks();
    }
}

#[test]
fn program_errors_read_as_runc_writes_them() {
    let t = T::new("execerr");
    let cases = [
        (
            "/does-not-exist",
            r#"exec: "/does-not-exist": stat /does-not-exist: no such file or directory"#,
        ),
        ("/etc/passwd", r#"exec: "/etc/passwd": permission denied"#),
        ("/tmp", r#"exec: "/tmp": is a directory"#),
        (
            "no-such-program",
            r#"exec: "no-such-program": executable file not found in $PATH"#,
        ),
    ];
    for (prog, want) in cases {
        let c = t.config(&[prog]);
        t.write_config(&c);
        let o = t.create(&t.id("e"), &[]);
        t.expect_error(&o, want);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(
            err.matches("unable to start container process").count(),
            1,
            "{err}"
        );
    }
    // A cwd that does not exist: runc's wording, which callers map to 127.
    let mut c = t.config(&["true"]);
    c["process"]["cwd"] = json!("/nonexistent");
    t.write_config(&c);
    t.expect_error(
        &t.create(&t.id("cwd"), &[]),
        r#"chdir to cwd ("/nonexistent") set in config.json failed: no such file or directory"#,
    );
}

/// The program's ignored signals are runc's, whatever berth's caller
/// ignored (here SIGPIPE, SIGTERM and SIGUSR1 on top of what the test
/// inherited): berth itself ignores SIGPIPE, yet a pipeline's writer dies
/// when its reader is gone. The init and an exec'd process alike.
#[test]
fn the_ignored_signals_are_runcs() {
    use std::os::unix::process::CommandExt;
    let t = T::new("sigign");
    let script = "grep SigIgn /proc/self/status; yes | head -n 1";
    t.write_config(&t.config(&["sh", "-c", script]));
    let ignoring = |mut c: std::process::Command| {
        // SAFETY: between fork and exec, only signal(2), async-signal-safe.
        unsafe {
            c.pre_exec(|| {
                for s in [libc::SIGPIPE, libc::SIGTERM, libc::SIGUSR1] {
                    libc::signal(s, libc::SIG_IGN);
                }
                Ok(())
            });
        }
        c.stdin(std::process::Stdio::null()).output().unwrap()
    };
    let b = t.bundle.to_str().unwrap();
    let ours = ignoring(t.cmd(&["run", "-b", b, &t.id("berth")]));
    let mut rc = std::process::Command::new(runc());
    rc.arg("--root")
        .arg(t.dir.join("runc"))
        .args(["run", "-b", b, &t.id("runc")]);
    let theirs = ignoring(rc);
    let out = String::from_utf8_lossy(&ours.stdout);
    assert_eq!(
        out,
        String::from_utf8_lossy(&theirs.stdout),
        "{ours:?} {theirs:?}"
    );
    assert!(out.ends_with("\ny\n"), "{out}");
    let pipe_bit = 1u64 << (libc::SIGPIPE - 1);
    let ign =
        u64::from_str_radix(out.lines().next().unwrap().split('\t').nth(1).unwrap(), 16).unwrap();
    assert_eq!(ign & pipe_bit, 0, "{out}");
    let (id, _) = t.sleeper("s", t.config(&["true"]));
    let o = ignoring(t.cmd(&["exec", &id, "grep", "SigIgn", "/proc/self/status"]));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        out.lines().next().unwrap().to_string() + "\n"
    );
    t.ok(&["delete", "-f", &id]);
}

/// A new network namespace has its loopback up, as runc leaves it (its
/// "loopback" network): a server on 127.0.0.1 is reachable inside, and
/// the flags read as runc's container reads them.
#[test]
fn a_new_network_namespace_has_its_loopback_up() {
    let t = T::new("loopback");
    // The listener's stdin stays open a while (busybox's nc -l may quit at
    // stdin EOF before it reads); the client retries until it listens.
    let script = "cat /sys/class/net/lo/flags; sleep 2 | timeout 10 nc -l -p 5000 & \
        for i in $(seq 100); do echo over-lo | nc 127.0.0.1 5000 2>/dev/null && break; sleep 0.05; done; wait";
    let c = t.config(&["sh", "-c", script]);
    assert_eq!(t.run(&c).1, "0x9\nover-lo\n");
    let o = t.runc(&["run", "-b", t.bundle.to_str().unwrap(), &t.id("runc")]);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "0x9\nover-lo\n",
        "{o:?}"
    );
}

#[test]
fn version_reads_like_runcs() {
    let t = T::new("version");
    let out = t.ok(&["--version"]);
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("berth version "), "{out}");
    assert!(
        lines[1].starts_with("commit: ") && lines[1].len() > 8,
        "{out}"
    );
    assert_eq!(lines[2], "spec: 1.3.0");
    assert!(lines[3].starts_with("libseccomp: 2."), "{out}");
    assert_eq!(t.ok(&["-v"]), out);
}

#[test]
fn poststop_failures_are_warnings_and_the_rest_run() {
    let t = T::new("poststop");
    let mark = t.dir.join("second-ran");
    let mut c = t.config(&["true"]);
    c["hooks"] = json!({"poststop": [
        {"path": "/bin/false"},
        {"path": "/bin/sh", "args": ["sh", "-c", format!("touch {}", mark.display())]}
    ]});
    t.write_config(&c);
    let id = t.id("c");
    ok(&t.create(&id, &[]));
    t.ok(&["delete", &id]);
    assert!(mark.exists(), "the hook after the failing one ran");
    let log = std::fs::read_to_string(&t.log).unwrap();
    assert!(
        log.contains("poststop hook 0 (/bin/false)") && log.contains("warning"),
        "{log}"
    );
}

#[test]
fn cwd_is_checked_before_a_seccomp_filter_that_denies_getcwd() {
    let t = T::new("getcwd");
    for nnp in [false, true] {
        let mut c = t.config(&["sh", "-c", "echo ran"]);
        c["process"]["cwd"] = json!("/tmp");
        c["process"]["noNewPrivileges"] = json!(nnp);
        c["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["getcwd"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]});
        let (code, out, err) = t.run(&c);
        assert_eq!((code, out.as_str()), (0, "ran\n"), "nnp {nnp}: {err}");
    }
}

#[test]
fn mount_label_without_selinux_is_ignored() {
    let t = T::new("mountlabel");
    let f: Value = serde_json::from_str(&t.ok(&["features"])).unwrap();
    if f["linux"]["selinux"]["enabled"] == true {
        return; // applied there, not ignored
    }
    assert!(f["annotations"]["io.github.berth.selinux.mountLabel"]
        .as_str()
        .unwrap()
        .starts_with("ignored"));
    let mut c = t.config(&["true"]);
    c["linux"]["mountLabel"] = json!("system_u:object_r:container_file_t:s0");
    assert_eq!(t.run(&c).0, 0);
}

#[test]
fn unknown_capability_names_are_left_out_with_a_warning() {
    let t = T::new("unkcap");
    let mut c = t.config(&["sh", "-c", "grep CapEff /proc/self/status"]);
    c["process"]["capabilities"]["effective"] = json!(["CAP_KILL", "CAP_NO_SUCH_THING"]);
    c["process"]["capabilities"]["permitted"] = json!(["CAP_KILL"]);
    c["process"]["capabilities"]["bounding"] = json!(["CAP_KILL"]);
    let (code, out, err) = t.run(&c);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("CapEff:\t0000000000000020"), "{out}");
    let log = std::fs::read_to_string(&t.log).unwrap();
    assert!(log.contains("CAP_NO_SUCH_THING"), "{log}");
}

#[test]
fn without_a_mount_namespace_the_container_is_chrooted() {
    let t = T::new("nomntns");
    let mut c = t.config(&["sh", "-c", "ls /bin/busybox; ls /proc | wc -l"]);
    let l = c["linux"].as_object_mut().unwrap();
    l["namespaces"] = json!([{"type": "pid"}, {"type": "uts"}, {"type": "ipc"}]);
    l.remove("maskedPaths");
    l.remove("readonlyPaths");
    c["mounts"] = json!([]);
    c["root"]["readonly"] = json!(false);
    // Inside its rootfs (whose /proc is empty: nothing is mounted there).
    let (code, out, err) = t.run(&c);
    assert_eq!((code, out.as_str()), (0, "/bin/busybox\n0\n"), "{err}");
    // And in berth's mount namespace.
    let (id, pid) = t.sleeper("s", c.clone());
    let theirs = std::fs::read_link(format!("/proc/{pid}/ns/mnt")).unwrap();
    assert_eq!(theirs, std::fs::read_link("/proc/self/ns/mnt").unwrap());
    t.ok(&["delete", "-f", &id]);
    // What would need mounts of its own is refused, naming the field.
    c["mounts"] = json!([{"destination": "/proc", "type": "proc", "source": "proc"}]);
    t.write_config(&c);
    t.expect_error(
        &t.create(&t.id("m"), &[]),
        "mounts: needs a mount namespace of its own",
    );
}

/// A mount namespace joined by `path` gets the container's rootfs set up
/// inside it, as runc and crun do: the rootfs path is resolved there, and
/// /proc, the masks and pivot_root happen in that namespace, not in the
/// host's. The namespace here holds busybox at a path that is an empty
/// directory on the host.
#[test]
fn a_joined_mount_namespace_gets_the_rootfs_set_up_inside_it() {
    let t = T::new("joinmnt");
    let root = t.dir.join("nsroot");
    std::fs::create_dir_all(&root).unwrap();
    // Each run takes a namespace of its own: pivot_root there moves the
    // root of every process in it, the holder's too.
    let holder = || {
        let mut h = std::process::Command::new("unshare")
            .args(["-m", "--propagation", "private", "sh", "-c"])
            .arg(format!(
                "mount --rbind {} {} && echo ready && exec sleep 600",
                busybox_rootfs().display(),
                root.display()
            ))
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut ready = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(h.stdout.take().unwrap()),
            &mut ready,
        )
        .unwrap();
        assert_eq!(ready, "ready\n");
        h
    };
    let joined = |c: &mut Value, h: &std::process::Child| {
        let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
        ns.retain(|n| n["type"] != "mount");
        ns.push(json!({"type": "mount", "path": format!("/proc/{}/ns/mnt", h.id())}));
    };
    let mut c = t.config(&[
        "sh",
        "-c",
        "echo pid1=$(cat /proc/1/comm); wc -c < /proc/timer_list; ls /bin/busybox",
    ]);
    c["root"]["path"] = json!(root);
    let mut h = holder();
    joined(&mut c, &h);
    let (code, out, err) = t.run(&c);
    h.kill().unwrap();
    h.wait().unwrap();
    let want = "pid1=sh\n0\n/bin/busybox\n";
    assert_eq!((code, out.as_str()), (0, want), "{err}");
    if with_reference() {
        let mut h = holder();
        joined(&mut c, &h);
        t.write_config(&c);
        let o = t.runc(&["run", "-b", t.bundle.to_str().unwrap(), &t.id("runc")]);
        h.kill().unwrap();
        h.wait().unwrap();
        assert_eq!(String::from_utf8_lossy(&o.stdout), want, "runc: {o:?}");
    }
    // The host saw none of it: its directory is still empty.
    assert_eq!(std::fs::read_dir(&root).unwrap().count(), 0);
}
