//! The container process: cwd, env, user, umask, rlimits, capabilities,
//! user and joined namespaces, preserved and socket-activation fds.

use crate::common::*;
use serde_json::json;

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
    with_userns(&mut c, 100000);
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
    ok(&t.create(&a, &[]));
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
    drop_ns(&mut c, &["network"]);
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
    t.ok(&["delete", "-f", &a]);
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
        ok(&o);
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
