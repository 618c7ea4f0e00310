//! Hooks: order, state on stdin, failures.

use crate::common::*;
use serde_json::json;

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
    let (id, pid) = t.sleeper("c", c);
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
    t.ok(&["delete", "-f", &id]);
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
    // (It would sleep a minute: being killed is what makes create return
    // well before, even under emulation.)
    c["hooks"] =
        json!({"prestart": [{"path": "/bin/sleep", "args": ["sleep", "60"], "timeout": 1}]});
    t.write_config(&c);
    let start = std::time::Instant::now();
    t.expect_error(&t.create(&t.id("to"), &[]), "timed out after 1s");
    assert!(start.elapsed() < std::time::Duration::from_secs(40));
    // A failing poststart hook fails start and stops the container.
    c["hooks"] = json!({"poststart": [{"path": "/bin/false"}]});
    c["process"]["args"] = json!(["sleep", "60"]);
    t.write_config(&c);
    let ps = t.id("ps");
    ok(&t.create(&ps, &[]));
    t.expect_error(&t.berth(&["start", &ps]), "poststart hook 0");
    t.wait_status(&ps, "stopped");
    t.ok(&["delete", &ps]);
}

/// createContainer hooks run as runc runs them: in the container's mount
/// namespace, before pivot_root, with the rootfs as their working
/// directory (a hook's relative paths are the container's).
#[test]
fn create_container_hooks_run_in_the_rootfs() {
    let t = T::new("cchook");
    let d = t.dir.join("seen");
    std::fs::create_dir_all(&d).unwrap();
    let script = format!(
        "pwd > {0}/cwd; ls dev > {0}/dev; readlink /proc/self/ns/mnt > {0}/mnt",
        d.display()
    );
    let mut c = t.config(&["true"]);
    c["hooks"] = json!({"createContainer": [{"path": "/bin/sh", "args": ["sh", "-c", script]}]});
    let (id, _) = t.sleeper("c", c);
    let seen = |f: &str| {
        std::fs::read_to_string(d.join(f))
            .unwrap()
            .trim()
            .to_string()
    };
    assert_eq!(
        std::path::PathBuf::from(seen("cwd")),
        t.bundle.join("rootfs").canonicalize().unwrap()
    );
    // The container's /dev, as the container's mounts made it.
    assert!(seen("dev").lines().any(|l| l == "null"), "{}", seen("dev"));
    let ns = t.ok(&["exec", &id, "readlink", "/proc/self/ns/mnt"]);
    assert_eq!(seen("mnt"), ns.trim());
    t.ok(&["delete", "-f", &id]);
}
