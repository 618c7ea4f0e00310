//! Crash safety, concurrency, exhaustion and bad input (docs/reliability.md).
//! Every test ends with the leak check of mounts, cgroups, container
//! processes and state (tests/common). BERTH_SOAK=1 (make soak) runs the
//! long versions.

mod common;
use common::{drop_ns, T};
use serde_json::json;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn soak() -> bool {
    std::env::var_os("BERTH_SOAK").is_some()
}

/// A small deterministic PRNG (xorshift) for the kill delays.
struct Rng(u64);
impl Rng {
    fn new() -> Rng {
        let seed = std::env::var("BERTH_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
                    | 1
            });
        eprintln!("fault injection seed: BERTH_SEED={seed}");
        Rng(seed)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn quiet(mut c: Command) -> Command {
    c.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    c
}

/// SIGKILLs a berth command after `ms` milliseconds (if still running).
fn kill_after(c: Command, ms: u64) {
    let mut child = quiet(c).spawn().unwrap();
    std::thread::sleep(Duration::from_millis(ms));
    let _ = child.kill();
    let _ = child.wait();
}

/// After a killed berth call: state is valid or "does not exist", and
/// delete --force brings everything back.
fn settle(t: &T, id: &str) {
    let o = t.berth(&["state", id]);
    if o.status.success() {
        let v: serde_json::Value =
            serde_json::from_slice(&o.stdout).expect("state prints valid JSON");
        assert!(
            ["creating", "created", "running", "stopped", "paused"]
                .contains(&v["status"].as_str().unwrap()),
            "{v}"
        );
    } else {
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("container does not exist"),
            "{o:?}"
        );
    }
    let o = t.berth(&["delete", "--force", id]);
    assert!(
        o.status.success()
            || String::from_utf8_lossy(&o.stderr).contains("container does not exist"),
        "delete --force {id}: {o:?}"
    );
    assert!(!t.root.join(id).exists(), "state of {id} left");
}

#[test]
fn sigkill_at_any_instant_leaves_nothing() {
    let t = T::new("fault");
    let mut rng = Rng::new();
    // BERTH_FAULT_ROUNDS and BERTH_FAULT_MAX_MS fit the run to the machine:
    // the emulated systemd VM takes fewer rounds over a longer window (a
    // create there takes hundreds of ms, the D-Bus conversation included).
    let env = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<u64>().ok());
    let rounds = env("BERTH_FAULT_ROUNDS").unwrap_or(if soak() { 40 } else { 20 });
    let window = env("BERTH_FAULT_MAX_MS").unwrap_or(30) + 1;
    let sleeper = t.config(&["sleep", "60"]);
    let quick = t.config(&["true"]);
    for round in 0..rounds {
        for cmd in ["create", "start", "run", "exec", "delete"] {
            let id = t.id(&format!("{cmd}{round}"));
            t.write_config(if cmd == "run" { &quick } else { &sleeper });
            if cmd != "create" && cmd != "run" {
                assert!(quiet(t.cmd(&["create", &id])).status().unwrap().success());
                if cmd != "start" {
                    assert!(quiet(t.cmd(&["start", &id])).status().unwrap().success());
                }
            }
            let args: Vec<&str> = match cmd {
                "create" => vec!["create", &id],
                "start" => vec!["start", &id],
                "run" => vec!["run", &id],
                "exec" => vec!["exec", &id, "true"],
                _ => vec!["delete", "--force", &id],
            };
            kill_after(t.cmd(&args), rng.below(window));
            settle(&t, &id);
        }
    }
}

#[test]
fn fifty_concurrent_lifecycles() {
    let t = T::new("conc");
    let n = if soak() { 100 } else { 50 };
    // One bundle each (its own cgroup leaf), all on the one read-only rootfs.
    let rootfs = t.bundle.join("rootfs");
    let bundles: Vec<_> = (0..n)
        .map(|i| {
            let b = t.dir.join(format!("b{i}"));
            std::fs::create_dir_all(&b).unwrap();
            let mut c = t.config(&["true"]);
            c["root"] = json!({"path": rootfs, "readonly": true});
            std::fs::write(b.join("config.json"), serde_json::to_vec(&c).unwrap()).unwrap();
            b
        })
        .collect();
    let start = Instant::now();
    std::thread::scope(|s| {
        for (i, b) in bundles.iter().enumerate() {
            let t = &t;
            s.spawn(move || {
                let id = t.id(&format!("c{i}"));
                let b = b.to_str().unwrap();
                // (stdio to files: the created init holds what it inherits.)
                let errf = t.dir.join(format!("err{i}"));
                for args in [vec!["create", "-b", b, &id], vec!["start", &id]] {
                    let err = std::fs::File::create(&errf).unwrap();
                    let st = t
                        .cmd(&args)
                        .stdin(Stdio::null())
                        .stdout(Stdio::null())
                        .stderr(err)
                        .status()
                        .unwrap();
                    assert!(
                        st.success(),
                        "{args:?}: {}",
                        std::fs::read_to_string(&errf).unwrap_or_default()
                    );
                }
                t.wait_status(&id, "stopped");
                t.ok(&["delete", &id]);
            });
        }
    });
    eprintln!("{n} concurrent lifecycles in {:?}", start.elapsed());
}

#[test]
fn concurrent_kill_delete_and_state_of_one_container() {
    let t = T::new("race2");
    for round in 0..(if soak() { 20 } else { 5 }) {
        t.write_config(&t.config(&["sleep", "60"]));
        let id = t.id(&format!("c{round}"));
        assert!(quiet(t.cmd(&["run", "-d", &id]))
            .status()
            .unwrap()
            .success());
        std::thread::scope(|s| {
            for i in 0..12 {
                let (t, id) = (&t, &id);
                s.spawn(move || {
                    let args: Vec<&str> = match i % 3 {
                        0 => vec!["kill", id, "KILL"],
                        1 => vec!["delete", "--force", id],
                        _ => vec!["state", id],
                    };
                    let o = t.berth(&args);
                    let err = String::from_utf8_lossy(&o.stderr);
                    // Success, or one of runc's answers: never a crash.
                    assert!(
                        o.status.success()
                            || ["container does not exist", "container not running"]
                                .iter()
                                .any(|m| err.contains(m)),
                        "{args:?}: {o:?}"
                    );
                    assert!(!err.contains("panicked"), "{err}");
                });
            }
        });
        let o = t.berth(&["delete", "--force", &id]);
        assert!(
            o.status.success() || String::from_utf8_lossy(&o.stderr).contains("does not exist")
        );
    }
}

#[test]
fn fork_bomb_under_pids_limit_is_contained_and_deleted() {
    let t = T::new("bomb");
    let mut c = t.config(&["sh", "-c", "f() { f | f & }; f; sleep 30"]);
    c["linux"]["resources"]["pids"] = json!({"limit": 32});
    t.write_config(&c);
    let id = t.id("c");
    assert!(quiet(t.cmd(&["run", "-d", &id]))
        .status()
        .unwrap()
        .success());
    std::thread::sleep(Duration::from_millis(500));
    // berth keeps answering meanwhile.
    let start = Instant::now();
    for _ in 0..5 {
        t.ok(&["state", &id]);
        t.ok(&["list", "-q"]);
    }
    assert!(start.elapsed() < Duration::from_secs(10));
    let pids: Vec<i64> =
        serde_json::from_slice(&t.berth(&["ps", "--format", "json", &id]).stdout).unwrap();
    assert!(
        pids.len() <= 32,
        "{} processes under a limit of 32",
        pids.len()
    );
    t.ok(&["delete", "--force", &id]);
}

#[test]
fn memory_hog_is_killed_and_deleted() {
    let t = T::new("hog");
    let mut c = t.config(&[
        "sh",
        "-c",
        "x=$(head -c 100000000 /dev/zero | tr '\\0' a); sleep 30",
    ]);
    c["linux"]["resources"]["memory"] = json!({"limit": 8 << 20, "swap": 8 << 20});
    t.write_config(&c);
    let id = t.id("c");
    assert!(quiet(t.cmd(&["run", "-d", &id]))
        .status()
        .unwrap()
        .success());
    // The OOM killer ends it; berth still reports and deletes it.
    t.wait_status(&id, "stopped");
    t.ok(&["delete", &id]);
}

/// A config change for the battery below.
type Edit = Box<dyn Fn(&mut serde_json::Value, &T)>;

#[test]
fn bad_input_battery() {
    let t = T::new("battery");
    let not_dir = t.dir.join("a-file");
    std::fs::write(&not_dir, "").unwrap();
    let cases: Vec<(&str, Edit, &str)> = vec![
        (
            "ociVersion is a number",
            Box::new(|c, _| c["ociVersion"] = json!(1)),
            "invalid type",
        ),
        (
            "process.args is a string",
            Box::new(|c, _| c["process"]["args"] = json!("sh")),
            "invalid type",
        ),
        (
            "process.user.uid is a string",
            Box::new(|c, _| c["process"]["user"]["uid"] = json!("0")),
            "invalid type",
        ),
        (
            "mounts is an object",
            Box::new(|c, _| c["mounts"] = json!({})),
            "invalid type",
        ),
        (
            "memory limit is a string",
            Box::new(|c, _| c["linux"]["resources"]["memory"] = json!({"limit": "1g"})),
            "invalid type",
        ),
        (
            "process missing",
            Box::new(|c, _| {
                c.as_object_mut().unwrap().remove("process");
            }),
            "process: missing",
        ),
        (
            "process.args missing",
            Box::new(|c, _| {
                c["process"].as_object_mut().unwrap().remove("args");
            }),
            "process.args",
        ),
        (
            "process.args empty",
            Box::new(|c, _| c["process"]["args"] = json!([])),
            "process.args",
        ),
        (
            "relative cwd",
            Box::new(|c, _| c["process"]["cwd"] = json!("tmp")),
            "process.cwd",
        ),
        (
            "negative memory limit",
            Box::new(|c, _| c["linux"]["resources"]["memory"] = json!({"limit": -5})),
            "linux.resources.memory.limit -5",
        ),
        (
            "negative pids limit",
            Box::new(|c, _| c["linux"]["resources"]["pids"] = json!({"limit": -7})),
            "linux.resources.pids.limit -7",
        ),
        (
            "tiny cpu quota",
            Box::new(|c, _| c["linux"]["resources"]["cpu"] = json!({"quota": 5})),
            "cpu.quota 5",
        ),
        (
            "huge pids limit",
            Box::new(|c, _| c["linux"]["resources"]["pids"] = json!({"limit": 1i64 << 62})),
            "pids.max",
        ),
        (
            "huge cpu shares",
            Box::new(|c, _| c["linux"]["resources"]["cpu"] = json!({"shares": 1u64 << 40})),
            "cpu.shares 1099511627776",
        ),
        (
            "namespace path that is no namespace",
            Box::new(|c, _| {
                drop_ns(c, &["network"]);
                c["linux"]["namespaces"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"type": "network", "path": "/etc/hostname"}));
            }),
            "is not a net namespace",
        ),
        (
            "unknown namespace type",
            Box::new(|c, _| {
                c["linux"]["namespaces"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"type": "bogus"}))
            }),
            "bogus",
        ),
        (
            "duplicate namespace",
            Box::new(|c, _| {
                c["linux"]["namespaces"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"type": "pid"}))
            }),
            "duplicate namespace pid",
        ),
        (
            "rootfs is a file",
            Box::new(|c, t| c["root"]["path"] = json!(t.dir.join("a-file"))),
            "is not a directory",
        ),
        (
            "rootfs missing",
            Box::new(|c, _| c["root"]["path"] = json!("nope")),
            "root.path",
        ),
        (
            "hook path does not exist",
            Box::new(|c, _| c["hooks"] = json!({"createRuntime": [{"path": "/nonexistent/hook"}]})),
            "/nonexistent/hook",
        ),
        (
            "overlapping id mappings",
            Box::new(|c, _| {
                c["linux"]["namespaces"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"type": "user"}));
                c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 100}, {"containerID": 50, "hostID": 300000, "size": 100}]);
                c["linux"]["gidMappings"] =
                    json!([{"containerID": 0, "hostID": 100000, "size": 100}]);
            }),
            "ranges overlap",
        ),
        (
            "a thousand mounts, the last bad",
            Box::new(|c, _| {
                let m = c["mounts"].as_array_mut().unwrap();
                for i in 0..999 {
                    m.push(json!({"destination": format!("/tmp/m{i}"), "type": "tmpfs", "source": "tmpfs"}));
                }
                m.push(json!({"destination": "relative/dest", "type": "tmpfs", "source": "tmpfs"}));
            }),
            "destination \"relative/dest\"",
        ),
        (
            // (An unknown capability is a warning, config.md says: see
            // tests/runtime/compat.rs; filesystem data on a bind is passed
            // to the kernel, which ignores it: tests/runtime/contract.rs.)
            // A bind mount option it cannot honour:
            "idmap without mappings to take",
            Box::new(|c, _| {
                c["mounts"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"destination": "/mnt",
                    "type": "none", "source": "/tmp", "options": ["rbind", "idmap"]}))
            }),
            "idmap needs uidMappings and gidMappings",
        ),
        (
            "sysctl that does not exist",
            Box::new(|c, _| c["linux"]["sysctl"] = json!({"net.bogus.key": "1"})),
            "net.bogus.key",
        ),
    ];
    assert!(cases.len() >= 24);
    let b = t.bundle.to_str().unwrap().to_string();
    for (i, (what, edit, needle)) in cases.iter().enumerate() {
        let mut c = t.config(&["true"]);
        edit(&mut c, &t);
        t.write_config(&c);
        let o = t.create(&t.id(&format!("b{i}")), &[]);
        eprintln!("{what}: {}", String::from_utf8_lossy(&o.stderr).trim());
        t.expect_error(&o, needle);
        let _ = &b;
    }
    // Arguments.
    t.write_config(&t.config(&["true"]));
    for (args, needle) in [
        (vec!["create", "-b", &b, "a/b"], "invalid container id"),
        (vec!["create", "-b", &b, ".."], "invalid container id"),
        (vec!["create", "-b", &b, "x\u{7}y"], "invalid container id"),
        (vec!["kill", "nope", "SIGBOGUS"], "unknown signal"),
        (
            vec!["create", "--bogus-flag", "x"],
            "unexpected argument '--bogus-flag'",
        ),
        (vec!["create"], "<ID>"),
    ] {
        let id_long = "x".repeat(1000);
        let _ = &id_long;
        t.expect_error(&t.berth(&args), needle);
    }
    t.expect_error(
        &t.berth(&["create", "-b", &b, &"x".repeat(1000)]),
        "longer than 255",
    );
    let o = Command::new(common::berth_bin())
        .args([
            "--root",
            not_dir.to_str().unwrap(),
            "--log",
            t.log.to_str().unwrap(),
            "--log-format",
            "json",
            "state",
            "x",
        ])
        .output()
        .unwrap();
    t.expect_error(&o, "not a directory");
}

/// `make soak`: a thousand lifecycles in a row, with the leak check at the
/// end (the fault injection above runs 200 kills under BERTH_SOAK too).
#[test]
#[ignore = "long: run by make soak"]
fn soak_thousand_lifecycles() {
    let t = T::new("soak");
    let n = std::env::var("BERTH_SOAK_LIFECYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let start = Instant::now();
    let mut failures = 0;
    for i in 0..n {
        if i % 50 == 0 {
            // A fresh cgroup leaf now and then (each config has its own).
            t.write_config(&t.config(&["true"]));
        }
        let id = t.id(&format!("s{i}"));
        let ok = quiet(t.cmd(&["run", &id])).status().unwrap().success();
        if !ok {
            failures += 1;
            let _ = t.berth(&["delete", "--force", &id]);
        }
    }
    let el = start.elapsed();
    eprintln!(
        "soak: {n} lifecycles, {failures} failures, {:?} total, {:?} each",
        el,
        el / n
    );
    assert_eq!(failures, 0);
}
