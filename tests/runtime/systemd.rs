//! The systemd cgroup driver, under a real systemd (tests/vm/systemd.sh
//! runs these with BERTH_TEST_SYSTEMD=1 in the cgroup v2 VM; elsewhere they
//! only check what needs no systemd). The leak check of tests/common
//! covers units there.

use crate::common::*;
use serde_json::json;
use std::process::Command;

/// `systemctl show -p PROP --value UNIT`.
fn show(unit: &str, prop: &str) -> String {
    let o = Command::new("systemctl")
        .args(["show", "-p", prop, "--value", unit])
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

fn skip() -> bool {
    if !systemd() {
        eprintln!("skipped: not under systemd (BERTH_TEST_SYSTEMD)");
    }
    !systemd()
}

#[test]
fn malformed_paths_are_refused_without_systemd_too() {
    // Parsing comes first: these fail the same with or without systemd.
    let t = T::new("sdpath");
    for bad in ["a:b", "/not/a/slice:x:y", "x.scope:p:n", "s.slice:p:"] {
        let mut c = t.config(&["true"]);
        c["linux"]["cgroupsPath"] = json!(bad);
        t.write_config(&c);
        let mut cmd = t.cmd(&["--systemd-cgroup", "create", &t.id("p")]);
        if systemd() {
            cmd = t.cmd(&["create", &t.id("p")]);
        }
        let o = cmd.stdin(std::process::Stdio::null()).output().unwrap();
        t.expect_error(&o, &format!("invalid linux.cgroupsPath: {bad:?}"));
    }
}

#[test]
fn scope_unit_lives_with_the_container() {
    if skip() {
        return;
    }
    let t = T::new("sdunit");
    let mut c = t.config(&["true"]);
    c["linux"]["resources"] = json!({"memory": {"limit": 64 << 20}, "pids": {"limit": 50}});
    c["annotations"] = json!({"org.systemd.property.TimeoutStopUSec": "uint64 123456789",
        "org.systemd.property.CollectMode": "'inactive-or-failed'"});
    let (id, pid) = t.sleeper("c", c);
    let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let unit = cg.trim().rsplit('/').next().unwrap().to_string();
    assert!(
        unit.starts_with(&format!("berth-test-{}-c", t.token)),
        "{cg}"
    );
    assert_eq!(cg.trim(), format!("0::/system.slice/{unit}"));
    assert_eq!(show(&unit, "ActiveState"), "active");
    assert_eq!(show(&unit, "Delegate"), "yes");
    assert_eq!(show(&unit, "Slice"), "system.slice");
    assert_eq!(show(&unit, "MemoryMax"), (64u64 << 20).to_string());
    assert_eq!(show(&unit, "TasksMax"), "50");
    assert_eq!(show(&unit, "TimeoutStopUSec"), "2min 3.456789s");
    assert_eq!(show(&unit, "CollectMode"), "inactive-or-failed");
    // The container sees its limits from inside, and exec joins the unit.
    let o = t.ok(&[
        "exec",
        &id,
        "cat",
        "/sys/fs/cgroup/memory.max",
        "/proc/self/cgroup",
    ]);
    assert!(o.starts_with(&format!("{}\n", 64u64 << 20)), "{o}");
    // update goes through systemd too.
    t.ok(&["update", "--pids-limit", "42", &id]);
    assert_eq!(show(&unit, "TasksMax"), "42");
    t.ok(&["delete", "-f", &id]);
    assert_eq!(
        show(&unit, "LoadState"),
        "not-found",
        "the unit is gone after delete"
    );
}

/// `berth ARGS` (as `t.cmd` builds it) in a mount namespace of its own
/// where `hide` is covered by /dev/null: a socket berth cannot connect to.
fn without(t: &T, hide: &str, args: &[&str]) -> (std::process::ExitStatus, String) {
    let c = t.cmd(args);
    let err = t.dir.join("without.err");
    let st = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c"])
        .arg("mount --bind /dev/null \"$0\" && exec \"$@\"")
        .arg(hide)
        .arg(c.get_program())
        .args(c.get_args())
        .current_dir(c.get_current_dir().unwrap())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        // Not a pipe: a detached container would hold it open.
        .stderr(std::fs::File::create(&err).unwrap())
        .status()
        .unwrap();
    (st, std::fs::read_to_string(&err).unwrap())
}

#[test]
fn the_manager_is_reached_directly_or_through_the_bus() {
    if skip() {
        return;
    }
    // berth talks to systemd on its private socket (no bus daemon) and
    // falls back to the system bus: each alone carries the whole life of
    // a unit (start and its job, update, stop and its job).
    let t = T::new("sdsock");
    for (name, hide) in [
        ("direct", "/run/dbus/system_bus_socket"),
        ("bus", "/run/systemd/private"),
    ] {
        t.write_config(&t.config(&["sleep", "600"]));
        let id = t.id(name);
        let (st, err) = without(&t, hide, &["run", "-d", &id]);
        assert!(st.success(), "{name}: {err}");
        let pid = t.state(&id)["pid"].as_i64().unwrap();
        let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
        let unit = cg.trim().rsplit('/').next().unwrap().to_string();
        assert!(
            unit.starts_with(&format!("berth-test-{}-c", t.token)),
            "{cg}"
        );
        assert_eq!(cg.trim(), format!("0::/system.slice/{unit}"), "{name}");
        assert_eq!(show(&unit, "ActiveState"), "active", "{name}");
        let (st, err) = without(&t, hide, &["update", "--pids-limit", "42", &id]);
        assert!(st.success(), "{name}: {err}");
        assert_eq!(show(&unit, "TasksMax"), "42", "{name}");
        let (st, err) = without(&t, hide, &["delete", "-f", &id]);
        assert!(st.success(), "{name}: {err}");
        assert_eq!(show(&unit, "LoadState"), "not-found", "{name}: unit gone");
    }
    t.check_leaks();
}

#[test]
fn nested_slices_and_a_slice_of_its_own() {
    if skip() {
        return;
    }
    let t = T::new("sdslice");
    let stem = format!("berthtest{}", std::process::id());
    let mut c = t.config(&["cat", "/proc/self/cgroup"]);
    c["linux"]["cgroupsPath"] = json!(format!("{stem}-a-b.slice:pfx:{}-n", t.token));
    drop_ns(&mut c, &["cgroup"]);
    let (code, out, err) = t.run(&c);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out.trim(),
        format!(
            "0::/{stem}.slice/{stem}-a.slice/{stem}-a-b.slice/pfx-{}-n.scope",
            t.token
        )
    );
    // NAME.slice: a slice unit of its own, the init in its cgroup. (A
    // slice's dashes name its parents, so the name has just the one.)
    let mut c = t.config(&["cat", "/proc/self/cgroup"]);
    c["linux"]["cgroupsPath"] = json!(format!("{stem}.slice::{stem}-own.slice"));
    drop_ns(&mut c, &["cgroup"]);
    let (code, out, err) = t.run(&c);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), format!("0::/{stem}.slice/{stem}-own.slice"));
    // The parent slices systemd made on the way are the test's to remove.
    for s in [
        format!("{stem}-a-b.slice"),
        format!("{stem}-a.slice"),
        format!("{stem}.slice"),
    ] {
        let _ = Command::new("systemctl").args(["stop", &s]).status();
    }
}

#[test]
fn refused_property_and_missing_bus_leave_nothing() {
    if skip() {
        return;
    }
    let t = T::new("sderr");
    let mut c = t.config(&["sleep", "60"]);
    c["annotations"] = json!({"org.systemd.property.NoSuchPropertyAtAll": "true"});
    t.write_config(&c);
    let o = t.create(&t.id("prop"), &[]);
    t.expect_error(&o, "systemd refused");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("NoSuchPropertyAtAll"),
        "names the property: {err}"
    );
    t.check_leaks();
    // No bus: the socket is named, nothing is left.
    let c = t.config(&["sleep", "60"]);
    t.write_config(&c);
    let o = t
        .cmd(&["create", &t.id("nobus")])
        .env(
            "DBUS_SYSTEM_BUS_ADDRESS",
            "unix:path=/run/berth-test-no-such-bus",
        )
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    t.expect_error(
        &o,
        "cannot reach systemd on the system bus at /run/berth-test-no-such-bus",
    );
    t.check_leaks();
    // features says the driver works here.
    let f: serde_json::Value = serde_json::from_str(&t.ok(&["features"])).unwrap();
    assert_eq!(f["linux"]["cgroup"]["systemd"], true);
}
