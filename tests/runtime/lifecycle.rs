//! The lifecycle commands: create, start, state, kill, delete, run, list,
//! spec and features, and bad input refused with nothing left behind.

use crate::common::*;
use serde_json::json;

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
    ok(&o);
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

    t.ok(&["start", &id]);
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
        t.ok(&["kill", &id, sig]);
        wait_out(i + 1, "got-usr1");
    }
    t.expect_error(&t.berth(&["kill", &id, "SIGNOPE"]), "unknown signal");
    t.expect_error(&t.berth(&["delete", &id]), "is not stopped: running");
    t.ok(&["kill", &id, "KILL"]);
    t.wait_status(&id, "stopped");
    assert_eq!(t.state(&id)["pid"], 0);
    t.expect_error(&t.berth(&["kill", &id, "TERM"]), "container not running");
    t.expect_error(
        &t.berth(&["start", &id]),
        "cannot start a container that has stopped",
    );
    let got = t.container_out(&id);
    assert_eq!(got.matches("got-usr1").count(), 4, "{got}");
    t.ok(&["delete", &id]);
    t.expect_error(&t.berth(&["state", &id]), "container does not exist");
}

#[test]
fn list_formats_and_delete_force() {
    let t = T::new("list");
    t.write_config(&t.config(&["sleep", "30"]));
    let (a, b) = (t.id("a"), t.id("b"));
    ok(&t.create(&a, &[]));
    // Its own cgroup: a fresh config.
    t.write_config(&t.config(&["sleep", "30"]));
    ok(&t.create(&b, &[]));
    t.ok(&["start", &b]);
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
    t.ok(&["delete", &a]);
    t.ok(&["delete", "--force", &b]);
}

#[test]
fn stopped_while_no_berth_runs() {
    let t = T::new("stale");
    t.write_config(&t.config(&["true"]));
    let id = t.id("c");
    ok(&t.create(&id, &[]));
    t.ok(&["start", &id]);
    t.wait_status(&id, "stopped");
    t.ok(&["delete", &id]);
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
    t.ok(&["kill", &id, "9"]);
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
    t.ok(&["delete", "-f", &id]);
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
    t.ok(&["delete", "-f", &id]);
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
    ok(&t.create(&id, &[]));
    t.expect_error(
        &t.create(&id, &[]),
        "container with given ID already exists",
    );
    // --root that is a file
    let f = t.dir.join("file");
    std::fs::write(&f, "").unwrap();
    let o = std::process::Command::new(berth_bin())
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
    t.ok(&["delete", "-f", &id]);
}

#[test]
fn spec_writes_default_config() {
    let t = T::new("spec");
    let d = t.dir.join("specdir");
    std::fs::create_dir_all(&d).unwrap();
    t.ok(&["spec", "-b", d.to_str().unwrap()]);
    let c: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("config.json")).unwrap()).unwrap();
    assert_eq!(c["process"]["args"], json!(["sh"]));
    assert_eq!(c["root"]["path"], "rootfs");
    t.expect_error(&t.berth(&["spec", "-b", d.to_str().unwrap()]), "exists");
    t.ok(&["spec", "--rootless", "-b", t.dir.to_str().unwrap()]);
    let c: serde_json::Value =
        serde_json::from_slice(&std::fs::read(t.dir.join("config.json")).unwrap()).unwrap();
    assert!(c["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n["type"] == "user"));
}

#[test]
fn kill_all_and_annotations() {
    let t = T::new("killall");
    let mut c = t.config(&["sh", "-c", "sleep 30 & sleep 30 & echo ready; wait"]);
    c["annotations"] = json!({"org.example.b": "2", "org.example.a": "1"});
    t.write_config(&c);
    let id = t.id("c");
    ok(&t.create(&id, &[]));
    let st = t.state(&id);
    assert_eq!(
        st["annotations"],
        json!({"org.example.a": "1", "org.example.b": "2"})
    );
    let keys: Vec<&String> = st.as_object().unwrap().keys().collect();
    assert_eq!(keys[7], "annotations");
    t.ok(&["start", &id]);
    for _ in 0..500 {
        if t.container_out(&id).contains("ready") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    t.ok(&["kill", "--all", &id, "KILL"]);
    t.wait_status(&id, "stopped");
    t.ok(&["delete", &id]);
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
    t.ok(&["start", &id]);
    let mut buf = [0u8; 15];
    std::io::Read::read_exact(&mut pipe, &mut buf).unwrap();
    assert_eq!(&buf, b"from-container\n");
    t.ok(&["delete", "-f", &id]);
}

#[test]
fn features_are_truthful_json() {
    let t = T::new("features");
    let v: serde_json::Value = serde_json::from_str(&ok(&t.berth(&["features"]))).unwrap();
    assert_eq!(v["ociVersionMax"], "1.3.0");
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
    // Capabilities in the kernel's order, the same on every call.
    let caps = &v["linux"]["capabilities"];
    assert_eq!(caps[0], "CAP_CHOWN");
    assert_eq!(caps[1], "CAP_DAC_OVERRIDE");
    assert_eq!(caps[21], "CAP_SYS_ADMIN");
    let again: serde_json::Value = serde_json::from_str(&ok(&t.berth(&["features"]))).unwrap();
    assert_eq!(&again["linux"]["capabilities"], caps);
    assert!(v["mountOptions"]
        .as_array()
        .unwrap()
        .contains(&json!("rbind")));
}
