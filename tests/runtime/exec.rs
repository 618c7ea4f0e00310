//! `exec`, and create and exec where clone3(2) is missing.

use crate::common::*;
use serde_json::json;

#[test]
fn exec_joins_namespaces_cgroup_and_process_settings() {
    let t = T::new("exec");
    let mut c = t.config(&["true"]);
    c["root"]["readonly"] = json!(false);
    let (id, pid) = t.sleeper("c", c);
    let ns = |n: &str| {
        std::fs::read_link(format!("/proc/{pid}/ns/{n}"))
            .unwrap()
            .display()
            .to_string()
    };
    let o = ok(&t.berth(&["exec", &id, "sh", "-c", "echo $$; hostname; for n in net ipc uts mnt pid cgroup; do readlink /proc/self/ns/$n; done; cat /proc/self/cgroup | head -1; cat /proc/1/cmdline | tr '\\0' ' '"]));
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
    assert_eq!(l[9].trim(), "sleep 600");
    let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    assert!(cg.contains(&t.token));
    // Exit status, user, env, cwd, capabilities, no_new_privs.
    assert_eq!(
        t.berth(&["exec", &id, "sh", "-c", "exit 9"]).status.code(),
        Some(9)
    );
    let o = ok(&t.berth(&[
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
    let o = ok(&t.berth(&[
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
        ok(&t.berth(&["exec", "-p", p.to_str().unwrap(), &id])),
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
    assert!(ok(&t.berth(&["ps", "--format", "json", &id])).contains(&epid.to_string()));
    // Runtime errors exit 255 with the message.
    let o = t.berth(&["exec", &id, "no-such-program"]);
    assert_eq!(o.status.code(), Some(255));
    assert!(String::from_utf8_lossy(&o.stderr).contains("executable file not found"));
    t.ok(&["kill", &id, "KILL"]);
    t.wait_status(&id, "stopped");
    let o = t.berth(&["exec", &id, "true"]);
    assert_eq!(o.status.code(), Some(255));
    assert!(String::from_utf8_lossy(&o.stderr).contains("cannot exec in a stopped container"));
    t.ok(&["delete", &id]);
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
    assert_eq!(ok(&o), cg, "exec'd process in the init's cgroups");
    // A time namespace too: berth unshares it before cloning (clone(2)
    // cannot make one), so the init is born in it all the same.
    let mut c = t.config(&["readlink", "/proc/self/ns/time"]);
    c["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "time"}));
    t.write_config(&c);
    let mut run = t.cmd(&["run", &t.id("time")]);
    without_clone3(&mut run);
    let o = run.stdin(std::process::Stdio::null()).output().unwrap();
    let ns = ok(&o);
    let ours = std::fs::read_link("/proc/self/ns/time").unwrap();
    assert!(
        ns.starts_with("time:[") && ns.trim() != ours.to_str().unwrap(),
        "{ns}"
    );
    t.ok(&["delete", "-f", &id]);
}
