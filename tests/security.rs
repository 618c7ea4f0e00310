//! Security features and attacks (docs/security.md): each test starts real
//! containers and checks what the contained process could or could not do.
//! The attack tests attack: they fail if the defence is taken out.

mod common;

use common::*;
use serde_json::json;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

fn wait_file(p: &Path, secs: u64) -> String {
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        if let Ok(s) = std::fs::read_to_string(p) {
            if s.ends_with('\n') {
                return s;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("{} did not appear", p.display());
}

/// `create` of a `true` container edited by `edit` fails naming `needle`
/// and leaves nothing behind.
fn refused(t: &T, edit: impl FnOnce(&mut serde_json::Value), needle: &str) {
    let mut c = t.config(&["true"]);
    edit(&mut c);
    t.write_config(&c);
    t.expect_error(&t.create(&t.id("bad"), &[]), needle);
    t.check_leaks();
}

/// What a started container has written so far, once `done` says enough.
fn output_until(t: &T, id: &str, done: impl Fn(&str) -> bool) -> String {
    let mut out = String::new();
    for _ in 0..500 {
        out = t.container_out(id);
        if done(&out) {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    out
}

/// A child process killed and reaped when the test ends, even by a panic.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A bind mount of a fresh host directory at /shared.
fn shared(t: &T, c: &mut serde_json::Value) -> std::path::PathBuf {
    let d = t.dir.join("shared");
    std::fs::create_dir_all(&d).unwrap();
    c["mounts"].as_array_mut().unwrap().push(
        json!({"destination": "/shared", "type": "bind", "source": d, "options": ["rbind", "rw"]}),
    );
    d
}

/// Unknown syscalls newer than every one a profile names get ENOSYS when
/// the default refuses (runc's stub, which Docker's default profile relies
/// on so that callers fall back); older unlisted ones get the default.
/// podman's default profile, as podman writes it into config.json, with
/// Docker's default errno (EPERM; podman's own is ENOSYS already).
#[test]
fn seccomp_newer_syscalls_get_enosys() {
    let t = T::new("enosys");
    let podman: serde_json::Value = serde_json::from_slice(
        &std::fs::read(repo().join("tests/configs/podman-default.json")).unwrap(),
    )
    .unwrap();
    let mut c = t.config(&[
        "sh",
        "-c",
        "/bin/syscall 500; /bin/syscall 246; /bin/syscall 39",
    ]);
    c["linux"]["seccomp"] = podman["linux"]["seccomp"].clone();
    c["linux"]["seccomp"]["defaultErrnoRet"] = json!(1);
    c["process"]["noNewPrivileges"] = json!(true);
    std::fs::copy(syscall_probe(), t.bundle.join("rootfs/bin/syscall")).unwrap();
    let (code, out, err) = t.run(&c);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    // 500: no such syscall yet: ENOSYS, not the profile's EPERM.
    assert_eq!(lines.first(), Some(&"ret=-1 errno=38"), "{out}");
    // 246 (kexec_load), older than the profile's newest and not allowed:
    // its default, EPERM.
    assert_eq!(lines.get(1), Some(&"ret=-1 errno=1"), "{out}");
    // 39 (getpid), allowed.
    assert!(
        lines.get(2).is_some_and(|l| l.ends_with("errno=0")),
        "{out}"
    );
}

/// startContainer hooks run in the container under its seccomp filter, as
/// runc runs them (the filter is loaded before them even with
/// noNewPrivileges, which otherwise loads it as late as it can).
#[test]
fn start_container_hooks_run_under_seccomp() {
    let t = T::new("hookseccomp");
    let mut c = t.config(&["true"]);
    c["root"]["readonly"] = json!(false);
    c["process"]["noNewPrivileges"] = json!(true);
    c["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]
    });
    c["hooks"] = json!({"startContainer": [
        {"path": "/bin/sh", "args": ["sh", "-c", "mkdir /tmp/from-hook"]}
    ]});
    let (code, out, err) = t.run(&c);
    assert_ne!(code, 0, "the hook's mkdir went through: {out}");
    assert!(err.contains("startContainer"), "{err}");
    assert!(err.contains("Permission denied"), "{err}");
    // Without the rule the same hook succeeds.
    c["linux"]["seccomp"]["syscalls"] = json!([]);
    let (code, _, err) = t.run(&c);
    assert_eq!(code, 0, "{err}");
}

/// `--no-pivot` leaves the host's mounts below the chroot: the host's whole
/// procfs must not stay there, or the container could mount a fresh,
/// unmasked procfs from a user namespace of its own (runc: "mount:
/// permission denied"). With pivot_root the same mount fails alike.
#[test]
fn no_pivot_cannot_mount_a_fresh_procfs() {
    let t = T::new("nopivotproc");
    let mut c = t.config(&["/bin/procmount"]);
    // Mapping ids in a user namespace of its own needs CAP_SETFCAP here.
    for set in ["bounding", "effective", "permitted"] {
        c["process"]["capabilities"][set]
            .as_array_mut()
            .unwrap()
            .push(json!("CAP_SETFCAP"));
    }
    t.write_config(&c);
    std::fs::copy(procmount_probe(), t.bundle.join("rootfs/bin/procmount")).unwrap();
    for extra in [&["--no-pivot"][..], &[][..]] {
        let mut args = vec!["run"];
        args.extend_from_slice(extra);
        let id = t.id("p");
        args.push(&id);
        let o = t.berth(&args);
        let out = String::from_utf8_lossy(&o.stdout);
        assert_eq!(
            o.status.code(),
            Some(0),
            "{extra:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert_eq!(
            out.trim(),
            "mount: Operation not permitted",
            "{extra:?}: a fresh procfs could be mounted"
        );
    }
}

#[test]
fn seccomp_actions_operators_and_exec() {
    let t = T::new("seccomp");
    let mut c = t.config(&[
        "sh",
        "-c",
        "mkdir /tmp/a 2>&1; touch /tmp/f; chmod 755 /tmp/f && echo chmod-ok; \
         chmod 4755 /tmp/f 2>&1; ls -l /tmp/f | cut -c1-10; \
         (hostname x) ; echo killed=$?; (sync); echo trapped=$?; \
         grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status; sleep 30",
    ]);
    c["process"]["noNewPrivileges"] = json!(true);
    c["root"]["readonly"] = json!(false);
    c["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
        "syscalls": [
            {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
            // Setuid bit refused: (mode & 04000) == 04000, on chmod's and
            // fchmodat's mode argument.
            {"names": ["chmod"], "action": "SCMP_ACT_ERRNO",
             "args": [{"index": 1, "value": 2048, "valueTwo": 2048, "op": "SCMP_CMP_MASKED_EQ"}]},
            {"names": ["fchmodat"], "action": "SCMP_ACT_ERRNO",
             "args": [{"index": 2, "value": 2048, "valueTwo": 2048, "op": "SCMP_CMP_MASKED_EQ"}]},
            {"names": ["sethostname"], "action": "SCMP_ACT_KILL_PROCESS"},
            {"names": ["sync"], "action": "SCMP_ACT_TRAP"},
            {"names": ["uname"], "action": "SCMP_ACT_LOG"},
            {"names": ["getpid"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["not_a_syscall_anywhere"], "action": "SCMP_ACT_KILL"}
        ]
    });
    t.write_config(&c);
    let id = t.id("sc");
    ok(&t.create(&id, &[]));
    t.ok(&["start", &id]);
    let out = output_until(&t, &id, |o| o.contains("NoNewPrivs"));
    assert!(out.contains("Permission denied"), "errnoRet 13: {out}");
    assert!(out.contains("chmod-ok"), "{out}");
    assert!(
        out.contains("-rwxr-xr-x"),
        "setuid bit must be refused: {out}"
    );
    assert!(out.contains("killed=159"), "SIGSYS kill: {out}");
    assert!(out.contains("trapped=159"), "SIGSYS trap: {out}");
    assert!(
        out.contains("Seccomp:\t2") && out.contains("NoNewPrivs:\t1"),
        "{out}"
    );
    // exec gets the container's filter too.
    let o = t.berth(&[
        "exec",
        &id,
        "sh",
        "-c",
        "mkdir /tmp/b 2>&1; grep Seccomp: /proc/self/status",
    ]);
    let s = String::from_utf8_lossy(&o.stdout);
    assert!(
        s.contains("Permission denied") && s.contains("Seccomp:\t2"),
        "{s}"
    );
    t.ok(&["delete", "-f", &id]);

    // Without noNewPrivileges the filter is loaded before the capabilities
    // are dropped (seccomp(2) needs CAP_SYS_ADMIN then).
    c["process"]["noNewPrivileges"] = json!(false);
    c["process"]["args"] = json!([
        "sh",
        "-c",
        "mkdir /tmp/a 2>&1; grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status"
    ]);
    let (code, out, err) = t.run(&c);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("Permission denied")
            && out.contains("Seccomp:\t2")
            && out.contains("NoNewPrivs:\t0"),
        "{out}"
    );
}

#[test]
fn seccomp_bad_profiles_are_refused() {
    let t = T::new("seccompbad");
    for (profile, needle) in [
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]}),
            "syscalls[0]",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}),
            "listenerPath",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerMetadata": "x"}),
            "listenerMetadata",
        ),
        (json!({"defaultAction": "SCMP_ACT_BOGUS"}), "SCMP_ACT_BOGUS"),
    ] {
        refused(&t, |c| c["linux"]["seccomp"] = profile, needle);
    }
}

/// struct seccomp_notif (80 bytes) and seccomp_notif_resp (24 bytes).
#[repr(C)]
struct Notif {
    id: u64,
    pid: u32,
    flags: u32,
    nr: i32,
    arch: u32,
    ip: u64,
    args: [u64; 6],
}
#[repr(C)]
struct NotifResp {
    id: u64,
    val: i64,
    error: i32,
    flags: u32,
}

#[test]
fn seccomp_notify_reaches_the_agent() {
    let t = T::new("seccompnotify");
    let sock = t.dir.join("agent.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    // The agent: takes the container process state and the listener fd,
    // then answers every notification "success" without doing anything.
    // Bounded waits throughout: a broken runtime fails the test, never
    // hangs it.
    listener.set_nonblocking(true).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let agent = std::thread::spawn(move || {
        let conn = loop {
            match listener.accept() {
                Ok((c, _)) => break c,
                Err(_) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                Err(e) => panic!("no connection from berth: {e}"),
            }
        };
        conn.set_nonblocking(false).unwrap();
        let (msg, fd) = recv_fd(&conn);
        let state: serde_json::Value = serde_json::from_slice(&msg).unwrap();
        let mut answered = 0;
        while Instant::now() < deadline {
            let mut p = libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one pollfd, ours.
            unsafe { libc::poll(&mut p, 1, 100) };
            if p.revents & libc::POLLHUP != 0 {
                break; // the filter's last user is gone
            }
            if p.revents & libc::POLLIN == 0 {
                continue;
            }
            // SAFETY: zeroed plain-old-data, as SECCOMP_IOCTL_NOTIF_RECV wants.
            let mut req: Notif = unsafe { std::mem::zeroed() };
            // SECCOMP_IOCTL_NOTIF_RECV
            // SAFETY: the kernel fills `req`, a seccomp_notif.
            if unsafe { libc::ioctl(fd, 0xc0502100, &mut req) } != 0 {
                continue;
            }
            let resp = NotifResp {
                id: req.id,
                val: 0,
                error: 0,
                flags: 0,
            };
            // SECCOMP_IOCTL_NOTIF_SEND
            // SAFETY: `resp` is a seccomp_notif_resp.
            unsafe { libc::ioctl(fd, 0xc0182101, &resp) };
            answered += 1;
        }
        (state, answered)
    });
    let mut c = t.config(&[
        "sh",
        "-c",
        "mkdir /tmp/n && echo mkdir-said-ok; ls -d /tmp/n 2>&1",
    ]);
    c["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": sock,
        "listenerMetadata": "berth-test-meta",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]
    });
    let (code, out, err) = t.run(&c);
    assert_eq!(code, 1, "ls fails: {out}{err}");
    assert!(
        out.contains("mkdir-said-ok") && out.contains("No such file"),
        "{out}"
    );
    let (state, answered) = agent.join().unwrap();
    assert!(answered >= 1);
    assert_eq!(state["fds"], json!(["seccompFd"]));
    assert_eq!(state["metadata"], "berth-test-meta");
    assert_eq!(state["state"]["status"], "creating");
    assert_eq!(state["state"]["id"], t.id("run"));
    assert!(state["pid"].as_i64().unwrap() > 0);
    assert_eq!(state["pid"], state["state"]["pid"]);
}

#[test]
fn device_cgroup_rules() {
    let t = T::new("devices");
    let mut c = t.config(&[
        "sh",
        "-c",
        "mknod /dev/null2 c 1 3 && echo > /dev/null2 && echo null-ok; \
         mknod /dev/mem c 1 1 2>&1; \
         mknod /dev/fuse2 c 10 229 2>&1 && echo fuse-mknod-ok; \
         head -c 0 /dev/fuse2 2>&1 && echo fuse-read-ok; \
         cat /sys/fs/cgroup/devices/devices.list 2>/dev/null | head -1",
    ]);
    for set in ["bounding", "effective", "permitted"] {
        c["process"]["capabilities"][set]
            .as_array_mut()
            .unwrap()
            .push(json!("CAP_MKNOD"));
    }
    // The first rule denies everything; 10:229 (fuse) is allowed rw and
    // mknod, 1:1 (mem) is not.
    c["root"]["readonly"] = json!(false);
    c["linux"]["resources"]["devices"] = json!([
        {"allow": false, "access": "rwm"},
        {"allow": true, "type": "c", "major": 10, "minor": 229, "access": "rwm"}
    ]);
    let (code, out, err) = t.run(&c);
    assert_eq!(code, 0, "{err}{out}");
    assert!(out.contains("null-ok"), "{out}");
    assert!(
        out.contains("Operation not permitted"),
        "mknod of 1:1 must be denied: {out}"
    );
    assert!(out.contains("fuse-mknod-ok"), "{out}");
    if !unified() {
        // v1: the kernel's own list has no "a *:* rwm" entry left.
        assert!(!out.contains("a *:* rwm"), "{out}");
    }
}

/// A node created through `linux.devices` is not allowed by being listed
/// (config-linux.md keeps devices and the device cgroup apart; runc gives it
/// no rule): with every device denied, /dev/kmsg exists in the container and
/// cannot be read or written, before and after an `update`.
#[test]
fn listed_devices_are_not_implicitly_allowed() {
    let t = T::new("devlisted");
    let mut c = t.config(&["true"]);
    c["linux"]["devices"] =
        json!([{"path": "/dev/kmsg", "type": "c", "major": 1, "minor": 11, "fileMode": 420}]);
    c["linux"]["resources"]["devices"] = json!([{"allow": false, "access": "rwm"}]);
    let (id, _) = t.sleeper("k", c);
    let probe = |when: &str| {
        let o = t.berth(&[
            "exec",
            &id,
            "sh",
            "-c",
            "ls -l /dev/kmsg; echo berth > /dev/kmsg && echo write-ok; \
             head -c 1 /dev/kmsg > /dev/null && echo read-ok; true",
        ]);
        let out =
            String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
        assert!(out.contains("crw"), "{when}: /dev/kmsg must exist: {out}");
        assert!(
            !out.contains("write-ok"),
            "{when}: write went through: {out}"
        );
        assert!(!out.contains("read-ok"), "{when}: read went through: {out}");
        assert_eq!(
            out.matches("Operation not permitted").count(),
            2,
            "{when}: {out}"
        );
    };
    probe("after create");
    let res = t.dir.join("res.json");
    std::fs::write(
        &res,
        r#"{"devices": [{"allow": false, "access": "rwm"}], "pids": {"limit": 100}}"#,
    )
    .unwrap();
    t.ok(&["update", "-r", res.to_str().unwrap(), &id]);
    probe("after update");
    t.ok(&["update", "--pids-limit", "200", &id]);
    probe("after update --pids-limit");
    t.ok(&["delete", "-f", &id]);
}

/// Device rules take every access string runc takes: any order, repeated
/// letters ("wr", "rrw", "mwr"). Each rule grants exactly its letters,
/// from create on and again after an `update` rewrites the cgroup. The
/// probe nodes have a major no driver owns (240): an access the cgroup
/// allows fails with ENXIO in the driver, one it denies with EPERM, so
/// no capability or driver policy blurs the answer. runc, where installed,
/// gives the same answers for reads and writes.
#[test]
fn device_access_strings_as_runc_takes_them() {
    let t = T::new("devaccess");
    // (minor, access string, read allowed, write allowed, mknod allowed)
    let table: [(u32, &str, bool, bool, bool); 6] = [
        (1, "r", true, false, false),
        (2, "w", false, true, false),
        (3, "wr", true, true, false),
        (4, "rrw", true, true, false),
        (5, "mwr", true, true, true),
        (6, "m", false, false, true),
    ];
    let mut c = t.config(&["true"]);
    let mut nodes = Vec::new();
    let mut rules = vec![json!({"allow": false, "access": "rwm"})];
    let mut script = String::new();
    for (minor, access, ..) in table {
        nodes.push(json!({"path": format!("/dev/p{minor}"), "type": "c",
            "major": 240, "minor": minor, "fileMode": 438}));
        rules.push(
            json!({"allow": true, "type": "c", "major": 240, "minor": minor, "access": access}),
        );
        script += &format!(
            "cat /dev/p{minor} 2>&1 | sed 's/^/p{minor} r: /'; \
             (: > /dev/p{minor}) 2>&1 | sed 's/^/p{minor} w: /'; \
             mknod /dev/m{minor} c 240 {minor} 2>&1 && echo p{minor} m: ok; \
             rm -f /dev/m{minor}; "
        );
    }
    c["linux"]["devices"] = json!(nodes);
    c["linux"]["resources"]["devices"] = json!(rules);
    c["process"]["capabilities"]["bounding"] = json!(["CAP_MKNOD"]);
    c["process"]["capabilities"]["effective"] = json!(["CAP_MKNOD"]);
    c["process"]["capabilities"]["permitted"] = json!(["CAP_MKNOD"]);
    c["process"]["capabilities"]
        .as_object_mut()
        .unwrap()
        .remove("ambient");
    // runc adds "c *:* m" and "b *:* m" to every container's rules, so
    // any node may be made there; berth grants only what the config asks
    // (docs/compatibility.md).
    let check = |who: &str, out: &str, mknod_any: bool| {
        for (minor, access, r, w, m) in table {
            let line = |op: &str| {
                out.lines()
                    .find(|l| l.starts_with(&format!("p{minor} {op}: ")))
                    .unwrap_or_else(|| panic!("{who}: no {op} line for {access:?}: {out}"))
                    .to_string()
            };
            for (op, allowed) in [("r", r), ("w", w)] {
                let l = line(op);
                let want = if allowed {
                    "No such device or address"
                } else {
                    "Operation not permitted"
                };
                assert!(l.contains(want), "{who}: {access:?} {op}: {l}");
            }
            assert_eq!(
                out.contains(&format!("p{minor} m: ok")),
                m || mknod_any,
                "{who}: {access:?} mknod: {out}"
            );
        }
    };
    let (id, _) = t.sleeper("d", c.clone());
    let probe = |when: &str| {
        let o = t.berth(&["exec", &id, "sh", "-c", &script]);
        check(when, &String::from_utf8_lossy(&o.stdout), false);
    };
    probe("after create");
    t.ok(&["update", "--pids-limit", "200", &id]);
    probe("after update");
    t.ok(&["delete", "-f", &id]);
    if with_reference() {
        c["process"]["args"] = json!(["sh", "-c", script]);
        t.write_config(&c);
        let o = t.runc(&["run", "-b", t.bundle.to_str().unwrap(), &t.id("runc")]);
        check("runc", &String::from_utf8_lossy(&o.stdout), true);
    }
}

#[test]
fn sysctl_namespaced_keys_only() {
    let t = T::new("sysctl");
    refused(
        &t,
        |c| c["linux"]["sysctl"] = json!({"kernel.core_pattern": "|/tmp/evil"}),
        "not namespaced",
    );
    refused(
        &t,
        |c| {
            c["linux"]["namespaces"] = json!([{"type": "pid"}, {"type": "mount"}]);
            c["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1"});
        },
        "network namespace",
    );
    let mut c = t.config(&[
        "sh",
        "-c",
        "cat /proc/sys/kernel/shmmni /proc/sys/net/ipv4/ip_forward",
    ]);
    c["linux"]["sysctl"] = json!({"kernel.shmmni": "1234", "net.ipv4.ip_forward": "1"});
    let (code, out, err) = t.run(&c);
    assert_eq!((code, out.as_str()), (0, "1234\n1\n"), "{err}");
}

#[test]
fn proc_writes_refuse_a_covered_procfs_file() {
    // CVE-2025-52881: something mounted over the container's
    // /proc/sys/kernel/domainname (here by a createContainer hook) must
    // make berth's sysctl write fail, not land in the covering file.
    let t = T::new("procwrite");
    let decoy = t.dir.join("decoy");
    std::fs::write(&decoy, "untouched\n").unwrap();
    let mut c = t.config(&["true"]);
    c["linux"]["sysctl"] = json!({"kernel.domainname": "evil"});
    c["hooks"] = json!({"createContainer": [{"path": "/bin/sh", "args": ["sh", "-c",
        format!("mount --bind {} \"$(sed 's/.*\"bundle\":\"\\([^\"]*\\)\".*/\\1/')/rootfs/proc/sys/kernel/domainname\"", decoy.display())]}]});
    t.write_config(&c);
    let o = t.create(&t.id("p"), &[]);
    t.expect_error(&o, "covered by another mount");
    assert_eq!(std::fs::read_to_string(&decoy).unwrap(), "untouched\n");
    t.check_leaks();
}

#[test]
fn mounts_into_proc_are_refused_even_through_symlinks() {
    let t = T::new("procmount");
    std::os::unix::fs::symlink("/proc/sys/kernel", t.bundle.join("rootfs/evil")).unwrap();
    for dest in ["/proc/sys/kernel", "/evil", "/proc"] {
        refused(
            &t,
            |c| {
                c["mounts"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"destination": dest, "type": "tmpfs", "source": "tmpfs"}))
            },
            "destination resolves to /proc",
        );
    }
    // The lxcfs-style files stay allowed.
    let f = t.dir.join("fake-uptime");
    std::fs::write(&f, "42.00 42.00\n").unwrap();
    let mut c = t.config(&["cat", "/proc/uptime"]);
    c["mounts"]
        .as_array_mut()
        .unwrap()
        .push(json!({"destination": "/proc/uptime", "type": "bind", "source": f, "options": ["bind", "ro"]}));
    let (code, out, err) = t.run(&c);
    assert_eq!((code, out.as_str()), (0, "42.00 42.00\n"), "{err}");
}

#[test]
fn personality_io_priority_scheduler() {
    let t = T::new("procattrs");
    let mut c = t.config(&[
        "sh",
        "-c",
        "uname -m; cut -d' ' -f19,41 /proc/self/stat; sleep 30",
    ]);
    c["linux"]["personality"] = json!({"domain": "LINUX32"});
    c["process"]["ioPriority"] = json!({"class": "IOPRIO_CLASS_IDLE", "priority": 0});
    c["process"]["scheduler"] = json!({"policy": "SCHED_BATCH", "nice": 5});
    t.write_config(&c);
    let id = t.id("a");
    ok(&t.create(&id, &[]));
    let pid = t.state(&id)["pid"].as_i64().unwrap();
    // ioprio_get(IOPRIO_WHO_PROCESS, pid): class IDLE (3) << 13.
    // SAFETY: integer arguments only.
    let prio = unsafe { libc::syscall(libc::SYS_ioprio_get, 1, pid) };
    assert_eq!(prio, 3 << 13);
    t.ok(&["start", &id]);
    let out = output_until(&t, &id, |o| o.lines().count() >= 2);
    assert_eq!(
        out, "i686\n5 3\n",
        "personality LINUX32, nice 5, SCHED_BATCH"
    );
    t.ok(&["delete", "-f", &id]);
    refused(
        &t,
        |c| c["process"]["ioPriority"] = json!({"class": "IOPRIO_CLASS_BE", "priority": 9}),
        "ioPriority",
    );
}

#[test]
fn lsm_labels_need_the_lsm() {
    let t = T::new("lsm");
    let apparmor = std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|s| s.trim() == "Y");
    let selinux = Path::new("/sys/fs/selinux/enforce").exists();
    let f: serde_json::Value = serde_json::from_slice(&t.berth(&["features"]).stdout).unwrap();
    assert_eq!(f["linux"]["apparmor"]["enabled"], apparmor);
    assert_eq!(f["linux"]["selinux"]["enabled"], selinux);
    for (enabled, field, value) in [
        (apparmor, "apparmorProfile", "berth-test-profile"),
        (selinux, "selinuxLabel", "system_u:system_r:container_t:s0"),
    ] {
        if !enabled {
            refused(&t, |c| c["process"][field] = json!(value), field);
        }
    }
}

/// CVE-2019-5736. The container's init waits for a process whose
/// executable is not busybox (the berth that `exec /proc/self/exe` starts
/// inside the container), keeps its /proc/PID/exe open, and once it has
/// exited tries to append to it. berth runs from a read-only view of its
/// binary, so the append must fail with EROFS and the binary stay intact.
/// (With BERTH_UNSAFE_EXE=1 set, the append succeeds: the test fails.)
#[test]
fn runtime_binary_cannot_be_overwritten_from_the_container() {
    let t = T::new("cve20195736");
    let copy = t.dir.join("berth-copy");
    std::fs::copy(berth_bin(), &copy).unwrap();
    let before = std::fs::read(&copy).unwrap();
    let mut c = t.config(&["sh", "-c", r#"
        while :; do
          for d in /proc/[0-9]*; do
            [ "${d#/proc/}" = "$$" ] && continue
            e=$(readlink $d/exe 2>/dev/null) || continue
            case "$e" in /bin/busybox|"") continue;; esac
            exec 3< $d/exe || continue
            echo "$e" > /shared/found
            while [ -e $d/exe ]; do sleep 0.05; done
            i=0
            while [ $i -lt 60 ]; do
              if (echo PWNED >> /proc/self/fd/3) 2>/shared/err; then echo written > /shared/result; exit 0; fi
              i=$((i+1)); sleep 0.05
            done
            echo refused > /shared/result; exit 0
          done
        done"#]);
    let dir = shared(&t, &mut c);
    t.write_config(&c);
    // The attack needs berth to run inside the container: a dynamically
    // linked berth gets its shared libraries and loader copied into the
    // rootfs (the loader lists them, as ldd does; the VM guest has no ldd).
    // The static berth the Makefile builds needs none.
    let ldd = std::process::Command::new("/lib64/ld-linux-x86-64.so.2")
        .arg("--list")
        .arg(&copy)
        .output()
        .unwrap();
    for l in String::from_utf8_lossy(&ldd.stdout).split_whitespace() {
        if l.starts_with('/') {
            let dst = t.bundle.join("rootfs").join(l.trim_start_matches('/'));
            std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
            std::fs::copy(l, &dst).unwrap();
        }
    }
    let id = t.id("x");
    ok(&t.create(&id, &[]));
    t.ok(&["start", &id]);
    // berth inside the container blocks writing its usage error to a full
    // pipe, which keeps it alive until the attacker has found it.
    // Close-on-exec, so only the test holds the read end: if it fails, the
    // pipe breaks and nothing stays blocked on it.
    let (rd, wr) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
    // SAFETY: fcntl on fds we own.
    unsafe { libc::fcntl(wr.as_raw_fd(), libc::F_SETFL, libc::O_NONBLOCK) };
    let junk = [b'.'; 4096];
    while nix::unistd::write(&wr, &junk).is_ok() {}
    // SAFETY: as above.
    unsafe { libc::fcntl(wr.as_raw_fd(), libc::F_SETFL, 0) };
    let mut child = KillOnDrop(
        std::process::Command::new(&copy)
            .args([
                "--root",
                t.root.to_str().unwrap(),
                "exec",
                &id,
                "/proc/self/exe",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::from(wr.try_clone().unwrap()))
            .stderr(Stdio::from(wr))
            .spawn()
            .unwrap(),
    );
    let found = wait_file(&dir.join("found"), 30);
    let drain = std::thread::spawn(move || {
        let mut f = std::fs::File::from(rd);
        let mut v = Vec::new();
        let _ = std::io::Read::read_to_end(&mut f, &mut v);
    });
    let _ = child.0.wait().unwrap();
    drain.join().unwrap();
    let result = wait_file(&dir.join("result"), 30);
    let err = std::fs::read_to_string(dir.join("err")).unwrap_or_default();
    assert_eq!(
        result, "refused\n",
        "found {found}: the container wrote berth's binary ({err})"
    );
    assert!(err.contains("Read-only file system"), "{err}");
    assert!(
        std::fs::read(&copy).unwrap() == before,
        "the binary changed"
    );
    let _ = t.berth(&["delete", "-f", &id]);
}

#[test]
fn only_stdio_and_preserved_fds_and_no_cwd_outside_root() {
    // CVE-2024-21626.
    let t = T::new("fds");
    let (code, out, err) = t.run(&t.config(&["ls", "/proc/self/fd"]));
    // ls's own directory fd is 3.
    assert_eq!((code, out.as_str()), (0, "0\n1\n2\n3\n"), "{err}");
    let id = t.id("e");
    t.write_config(&t.config(&["sleep", "30"]));
    ok(&t.create(&id, &[]));
    let o = t.berth(&["exec", &id, "ls", "/proc/self/fd"]);
    assert_eq!(String::from_utf8_lossy(&o.stdout), "0\n1\n2\n3\n");
    // A cwd through a leaked fd would be outside the root: refused, for
    // create and for exec.
    for n in 3..10 {
        let cwd = format!("/proc/self/fd/{n}");
        let o = t.berth(&["exec", "--cwd", &cwd, &id, "pwd"]);
        let s = String::from_utf8_lossy(&o.stdout);
        assert!(
            !o.status.success() || s.starts_with('/') && !s.contains("berth"),
            "exec cwd {cwd}: {s}"
        );
    }
    t.ok(&["delete", "-f", &id]);
    for n in 3..10 {
        let mut c = t.config(&["pwd"]);
        c["process"]["cwd"] = json!(format!("/proc/self/fd/{n}"));
        let (code, out, err) = t.run(&c);
        assert!(
            code != 0 || out.starts_with('/') && !out.contains("berth"),
            "cwd fd {n}: {out}{err}"
        );
        if code != 0 {
            assert!(
                err.contains("process.cwd") || err.contains("chdir to cwd"),
                "{err}"
            );
        }
        t.check_leaks();
    }
}

#[test]
fn dev_symlinks_in_the_rootfs_are_not_followed() {
    // CVE-2025-31133 / CVE-2025-52565: the image's /dev/null and
    // /dev/console are symlinks to a host file; masking, device set-up and
    // the console must neither follow them nor expose the target.
    let t = T::new("devlinks");
    let host = t.dir.join("host-secret");
    std::fs::write(&host, "secret\n").unwrap();
    let dev = t.bundle.join("rootfs/dev");
    std::fs::create_dir_all(&dev).unwrap();
    // Plants the links; a config for `args` that binds the rootfs's own
    // /dev (no tmpfs), so the links are what berth finds there.
    let plant = |args: &[&str]| {
        for name in ["null", "console", "zero"] {
            let _ = std::fs::remove_file(dev.join(name));
            std::os::unix::fs::symlink(&host, dev.join(name)).unwrap();
        }
        let mut c = t.config(args);
        c["mounts"] = json!(c["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["destination"] != "/dev")
            .cloned()
            .collect::<Vec<_>>());
        c
    };
    for userns in [false, true] {
        let mut c = plant(&[
            "sh",
            "-c",
            "stat -c '%F %t:%T' /dev/null /dev/zero /proc/keys",
        ]);
        if userns {
            common::with_userns(&mut c, 0);
        }
        let (code, out, err) = t.run(&c);
        assert_eq!(code, 0, "userns={userns}: {err}");
        assert_eq!(
            out,
            "character special file 1:3\ncharacter special file 1:5\ncharacter special file 1:3\n",
            "userns={userns}"
        );
        assert_eq!(std::fs::read_to_string(&host).unwrap(), "secret\n");
    }
    // The terminal goes over /dev/console, not through the link.
    let mut c = plant(&["sh", "-c", "stat -c %F /dev/console; tty"]);
    c["process"]["terminal"] = json!(true);
    t.write_config(&c);
    let (out, code, _) = t.on_pty(
        &["run", "-b", t.bundle.to_str().unwrap(), &t.id("tty")],
        b"",
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("/dev/pts/"), "{out}");
    assert!(!out.contains("symbolic link"), "{out}");
    assert_eq!(std::fs::read_to_string(&host).unwrap(), "secret\n");
}

/// A rootfs whose /proc or /sys is not a plain directory (a symlink to a
/// host directory here, or a file) is refused at create, as runc refuses it:
/// procfs mounted elsewhere would let what berth writes and masks under
/// /proc miss it (CVE-2023-28642). Nothing is left behind, the link's
/// target stays empty.
#[test]
fn proc_and_sys_only_on_ordinary_directories() {
    let t = T::new("procsym");
    let target = t.dir.join("host-target");
    for (dir, how) in [("proc", "symlink"), ("sys", "symlink"), ("proc", "file")] {
        std::fs::create_dir_all(&target).unwrap();
        let p = t.bundle.join("rootfs").join(dir);
        let _ = std::fs::remove_dir_all(&p);
        let _ = std::fs::remove_file(&p);
        if how == "symlink" {
            std::os::unix::fs::symlink(&target, &p).unwrap();
        } else {
            std::fs::write(&p, "").unwrap();
        }
        t.write_config(&t.config(&["true"]));
        let o = t.create(&t.id("s"), &[]);
        let fs = if dir == "proc" { "proc" } else { "sysfs" };
        t.expect_error(
            &o,
            &format!("filesystem \"{fs}\" must be mounted on ordinary directory"),
        );
        t.check_leaks();
        let left: Vec<_> = std::fs::read_dir(&target).unwrap().collect();
        assert!(
            left.is_empty(),
            "{dir} {how}: the target was written: {left:?}"
        );
        let _ = std::fs::remove_file(&p);
        std::fs::create_dir(&p).unwrap();
    }
    // A plain directory again: it starts.
    let (code, _, err) = t.run(&t.config(&["true"]));
    assert_eq!(code, 0, "{err}");
}

#[test]
fn hostile_image_stays_inside_its_rootfs() {
    // The layer store as a rootfs: an image whose /dev and /mnt are
    // absolute symlinks to a host directory.
    let t = T::new("hostile");
    let host = Path::new("/tmp/berth-hostile-target");
    let _ = std::fs::remove_dir_all(host);
    std::fs::create_dir_all(host).unwrap();
    let img = images().join("hostile");
    ok(&t.image(&["import", img.to_str().unwrap(), "--name", "hostile"]));
    let o = t.image(&["run", "--rm", "hostile", "sh", "-c",
        "echo x > /dev/planted && echo x > /mnt/planted && stat -c %t:%T /dev/null && cat /proc/self/comm && ls /proc/keys >/dev/null && wc -c < /proc/keys"]);
    // (its /proc a plain directory: see proc_and_sys_only_on_ordinary_directories)
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "1:3\ncat\n0\n",
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let left: Vec<_> = std::fs::read_dir(host).unwrap().collect();
    assert!(left.is_empty(), "the host directory was written: {left:?}");
    std::fs::remove_dir_all(host).unwrap();
}
