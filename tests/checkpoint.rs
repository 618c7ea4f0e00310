//! `checkpoint` and `restore` through CRIU, runc beside berth with the
//! same commands.
//!
//! CRIU 3.17 cannot dump on this host's kernel (6.18: "vdso: Failed to
//! fill self vdso symtable"), so the tests named `criu_*` run in the cgroup
//! v2 VM (kernel 6.1, BERTH_TEST_CRIU=1, tests/vm/cgroup-v2.sh) and return
//! at once elsewhere. The failure paths run everywhere: a CRIU that
//! refuses (here, a page server nobody listens on) leaves the container
//! running, and bad input leaves nothing behind.

mod common;
use common::{ok, recv_fd, T};
use serde_json::{json, Value};
use std::path::Path;
use std::process::{Output, Stdio};
use std::time::Duration;

/// A test's world where CRIU works (BERTH_TEST_CRIU, set by the VM's
/// script); `None` elsewhere.
fn criu_test(name: &str) -> Option<T> {
    if std::env::var_os("BERTH_TEST_CRIU").is_none() {
        eprintln!("CRIU cannot dump on this kernel: run in the cgroup v2 VM (make test-vm)");
        return None;
    }
    Some(T::new(name))
}

/// A runtime under test: runc (the reference) or berth.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Rt {
    Runc,
    Berth,
}

impl Rt {
    fn all() -> [Rt; 2] {
        [Rt::Runc, Rt::Berth]
    }
    fn name(self) -> &'static str {
        match self {
            Rt::Runc => "runc",
            Rt::Berth => "berth",
        }
    }
    fn cmd(self, t: &T, args: &[&str]) -> std::process::Command {
        let mut c = match self {
            Rt::Berth => t.cmd(args),
            Rt::Runc => {
                let mut c = std::process::Command::new(common::runc());
                c.arg("--root").arg(t.dir.join("runc")).args(args);
                c.current_dir(&t.bundle);
                c
            }
        };
        // The container keeps what it inherits: never a pipe the test
        // waits on.
        c.stdin(Stdio::null()).stdout(Stdio::null());
        c
    }
    /// Runs; stdout is not kept (see `cmd`), stderr is, but for `run`:
    /// the container's stdio must be what CRIU can dump, /dev/null (a
    /// host file is outside every mount of the container).
    fn run(self, t: &T, args: &[&str]) -> Output {
        if args[0] != "exec" && args[0] != "state" {
            eprintln!("{} {}", self.name(), args.join(" "));
        }
        let err = t.dir.join("rt.err");
        let _ = std::fs::remove_file(&err);
        let mut c = self.cmd(t, args);
        if args[0] == "run" {
            c.stderr(Stdio::null());
        } else {
            c.stderr(std::fs::File::create(&err).unwrap());
        }
        let o = c.status().unwrap();
        Output {
            status: o,
            stdout: Vec::new(),
            stderr: std::fs::read(err).unwrap_or_default(),
        }
    }
    #[track_caller]
    fn ok(self, t: &T, args: &[&str]) {
        let o = self.run(t, args);
        assert!(
            o.status.success(),
            "{} {args:?}: {}{}",
            self.name(),
            String::from_utf8_lossy(&o.stderr),
            criu_log(args)
        );
    }
    /// A command's stdout (exec, state): stdout to a file.
    #[track_caller]
    fn out(self, t: &T, args: &[&str]) -> String {
        let p = t.dir.join("rt.out");
        let o = self
            .cmd(t, args)
            .stdout(std::fs::File::create(&p).unwrap())
            .stderr(Stdio::inherit())
            .status()
            .unwrap();
        assert!(o.success(), "{} {args:?}: {o}", self.name());
        std::fs::read_to_string(p).unwrap()
    }
    fn state(self, t: &T, id: &str) -> Option<Value> {
        let p = t.dir.join("rt.state");
        let o = self
            .cmd(t, &["state", id])
            .stdout(std::fs::File::create(&p).unwrap())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        o.success()
            .then(|| serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap())
    }
    /// The counter the container's loop keeps in /dev/shm/n.
    fn count(self, t: &T, id: &str) -> u64 {
        let s = self.out(t, &["exec", id, "cat", "/dev/shm/n"]);
        s.trim().parse().unwrap_or_else(|_| panic!("counter {s:?}"))
    }
}

/// The cgroup2 mount's super options: CRIU's cgroup yard mount resets the
/// hierarchy's root flags (nsdelegate, memory_recursiveprot) host-wide.
fn cgroup2_options() -> Option<(String, String)> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    text.lines().find_map(|l| {
        let (left, right) = l.split_once(" - ")?;
        let r: Vec<&str> = right.split(' ').collect();
        (r[0] == "cgroup2").then(|| {
            (
                left.split(' ').nth(4).unwrap().to_string(),
                r[2].to_string(),
            )
        })
    })
}

/// After a runtime's turn: berth must have left the cgroup2 flags as they
/// were; runc (with CRIU 3.17) resets them, which the test puts back so
/// that berth's turn starts from the host's flags.
fn check_cgroup2(rt: Rt, before: &Option<(String, String)>) {
    let now = cgroup2_options();
    if now == *before {
        return;
    }
    let (mp, opts) = before.clone().unwrap();
    assert_eq!(
        rt,
        Rt::Runc,
        "berth left the cgroup2 flags changed: {opts} -> {now:?}"
    );
    eprintln!(
        "runc with CRIU reset the cgroup2 flags ({opts} -> {now:?}); the test puts them back"
    );
    let flags: Vec<&str> = opts
        .split(',')
        .filter(|o| *o != "rw" && *o != "ro")
        .collect();
    let st = std::process::Command::new("mount")
        .args(["-o", &format!("remount,{}", flags.join(",")), &mp])
        .status()
        .unwrap();
    assert!(st.success());
    assert_eq!(cgroup2_options(), *before);
}

/// The "Error" lines of CRIU's logs in the --image-path of `args` (for
/// a failure's message).
fn criu_log(args: &[&str]) -> String {
    let Some(i) = args.iter().position(|a| *a == "--image-path") else {
        return String::new();
    };
    let mut out = String::new();
    for log in ["dump.log", "restore.log"] {
        let p = Path::new(args[i + 1]).join(log);
        let text = std::fs::read_to_string(&p).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        for (n, l) in lines.iter().enumerate() {
            if l.contains("Error") || l.contains("rror ") {
                out += &format!(
                    "\n{}:{}: {}",
                    p.display(),
                    n + 1,
                    lines[n.saturating_sub(3)..=n].join(" | ")
                );
            }
        }
    }
    out
}

/// The counting container: a shell loop whose counter lives in its
/// memory (and is shown in its own tmpfs), a bind mount from the test's
/// directory, and `berth spec`'s masked paths.
fn counting_config(t: &T) -> Value {
    let mut c = t.config(&[
        "sh",
        "-c",
        "i=0; while :; do i=$((i+1)); echo $i > /dev/shm/n; sleep 0.1; done",
    ]);
    let data = t.dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("hello"), "from the host\n").unwrap();
    c["mounts"].as_array_mut().unwrap().push(json!({
        "destination": "/data", "type": "bind",
        "source": data.to_str().unwrap(), "options": ["rbind", "ro"]
    }));
    c
}

/// Waits until the counter reaches `n`.
fn wait_count(rt: Rt, t: &T, id: &str, n: u64) -> u64 {
    let end = std::time::Instant::now() + Duration::from_secs(120);
    while std::time::Instant::now() < end {
        if rt.state(t, id).is_some() {
            let p = t.dir.join("rt.out");
            let o = rt
                .cmd(t, &["exec", id, "cat", "/dev/shm/n"])
                .stdout(std::fs::File::create(&p).unwrap())
                .stderr(Stdio::null())
                .status()
                .unwrap();
            if let Ok(v) = std::fs::read_to_string(&p).unwrap().trim().parse::<u64>() {
                if o.success() && v >= n {
                    return v;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{}: {id} never counted to {n}", rt.name());
}

fn img(t: &T, rt: Rt, name: &str) -> String {
    t.dir
        .join(format!("{}-{name}", rt.name()))
        .to_string_lossy()
        .into_owned()
}

/// A counting process checkpointed (with and without --leave-running)
/// and restored under new IDs goes on from where it was; the restored
/// container is a whole one: state, exec, its bind mount, pause, kill,
/// delete. Pre-dump then dump too. runc first, then berth, alike.
#[test]
fn criu_counter_continues_after_restore() {
    let Some(t) = criu_test("criu-count") else {
        return;
    };
    t.write_config(&counting_config(&t));
    let b = t.bundle.to_str().unwrap();
    let cg2 = cgroup2_options();
    for rt in Rt::all() {
        let id = |n: &str| format!("{}-{}", t.id(n), rt.name());
        let c1 = id("c1");
        rt.ok(&t, &["run", "-d", &c1]);
        wait_count(rt, &t, &c1, 5);
        // --leave-running: the container goes on.
        let live = img(&t, rt, "live");
        rt.ok(
            &t,
            &["checkpoint", "--leave-running", "--image-path", &live, &c1],
        );
        assert_eq!(
            rt.state(&t, &c1).unwrap()["status"],
            "running",
            "{}",
            rt.name()
        );
        let before = wait_count(rt, &t, &c1, 8);
        // A plain checkpoint: the container is gone.
        let dump = img(&t, rt, "dump");
        rt.ok(&t, &["checkpoint", "--image-path", &dump, &c1]);
        assert!(rt.state(&t, &c1).is_none(), "{}: c1 left", rt.name());
        let c2 = id("c2");
        rt.ok(&t, &["restore", "-d", "-b", b, "--image-path", &dump, &c2]);
        let st = rt.state(&t, &c2).unwrap();
        assert_eq!(st["status"], "running", "{}: {st}", rt.name());
        assert!(st["pid"].as_i64().unwrap() > 0);
        let first = rt.count(&t, &c2);
        assert!(
            first >= before,
            "{}: restarted at {first} (was {before})",
            rt.name()
        );
        wait_count(rt, &t, &c2, first + 3);
        assert_eq!(
            rt.out(&t, &["exec", &c2, "cat", "/data/hello"]),
            "from the host\n"
        );
        // /proc/kcore is still masked (/dev/null bound over it).
        assert_eq!(
            rt.out(&t, &["exec", &c2, "wc", "-c", "/proc/kcore"]).trim(),
            "0 /proc/kcore"
        );
        rt.ok(&t, &["pause", &c2]);
        assert_eq!(rt.state(&t, &c2).unwrap()["status"], "paused");
        rt.ok(&t, &["resume", &c2]);
        rt.ok(&t, &["kill", &c2, "KILL"]);
        for _ in 0..100 {
            if rt.state(&t, &c2).unwrap()["status"] == "stopped" {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(rt.state(&t, &c2).unwrap()["status"], "stopped");
        rt.ok(&t, &["delete", &c2]);
        // The image taken with --leave-running restores too.
        let c3 = id("c3");
        rt.ok(&t, &["restore", "-d", "-b", b, "--image-path", &live, &c3]);
        assert!(rt.count(&t, &c3) >= 5);
        // Pre-dump, then a dump on top of it.
        let pre = img(&t, rt, "pre");
        rt.ok(&t, &["checkpoint", "--pre-dump", "--image-path", &pre, &c3]);
        assert_eq!(rt.state(&t, &c3).unwrap()["status"], "running");
        let last = img(&t, rt, "last");
        std::fs::create_dir_all(&last).unwrap();
        let parent = format!("../{}-pre", rt.name());
        rt.ok(
            &t,
            &[
                "checkpoint",
                "--image-path",
                &last,
                "--parent-path",
                &parent,
                &c3,
            ],
        );
        assert!(rt.state(&t, &c3).is_none());
        let c4 = id("c4");
        rt.ok(&t, &["restore", "-d", "-b", b, "--image-path", &last, &c4]);
        let n = rt.count(&t, &c4);
        wait_count(rt, &t, &c4, n + 2);
        rt.ok(&t, &["delete", "-f", &c4]);
        check_cgroup2(rt, &cg2);
    }
}

/// A terminal container restored with --console-socket: the console
/// socket gets the pty master again, and the shell reads from it.
#[test]
fn criu_terminal_with_console_socket() {
    use std::io::{Read, Write};
    use std::os::fd::FromRawFd;
    let Some(t) = criu_test("criu-tty") else {
        return;
    };
    let mut c = t.config(&["sh", "-c", "while read l; do echo got-$l; done"]);
    c["process"]["terminal"] = json!(true);
    t.write_config(&c);
    let b = t.bundle.to_str().unwrap();
    let cg2 = cgroup2_options();
    for rt in Rt::all() {
        let take = |n: &str| {
            let sock = t.dir.join(format!("{}-{n}.sock", rt.name()));
            let l = std::os::unix::net::UnixListener::bind(&sock).unwrap();
            let h = std::thread::spawn(move || {
                let (conn, _) = l.accept().unwrap();
                let (_, fd) = recv_fd(&conn);
                assert!(fd >= 0);
                // SAFETY: the fd just received is ours alone.
                unsafe { std::fs::File::from_raw_fd(fd) }
            });
            (sock, h)
        };
        let talk = |m: &mut std::fs::File, word: &str| {
            m.write_all(format!("{word}\n").as_bytes()).unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 256];
            while !String::from_utf8_lossy(&got).contains(&format!("got-{word}")) {
                let n = m.read(&mut buf).unwrap();
                assert!(n > 0, "{}: terminal closed", rt.name());
                got.extend_from_slice(&buf[..n]);
            }
        };
        let c1 = format!("{}-{}", t.id("t1"), rt.name());
        let (s1, h1) = take("1");
        rt.ok(
            &t,
            &["run", "-d", "--console-socket", s1.to_str().unwrap(), &c1],
        );
        let mut m1 = h1.join().unwrap();
        talk(&mut m1, "one");
        let dump = img(&t, rt, "tty");
        rt.ok(&t, &["checkpoint", "--image-path", &dump, &c1]);
        drop(m1);
        let c2 = format!("{}-{}", t.id("t2"), rt.name());
        let (s2, h2) = take("2");
        rt.ok(
            &t,
            &[
                "restore",
                "-d",
                "-b",
                b,
                "--image-path",
                &dump,
                "--console-socket",
                s2.to_str().unwrap(),
                &c2,
            ],
        );
        let mut m2 = h2.join().unwrap();
        talk(&mut m2, "two");
        rt.ok(&t, &["delete", "-f", &c2]);
        check_cgroup2(rt, &cg2);
    }
}

/// A TCP connection between two processes of the container, in a network
/// namespace the test made and the config joins (as podman's and a
/// Kubernetes pod's are: CRIU keeps it as an external namespace, so the
/// connection's addresses are there at restore): a checkpoint without
/// --tcp-established is refused and the container runs on; with it, the
/// connection is restored, both ends established on their ports.
#[test]
fn criu_tcp_established() {
    let Some(t) = criu_test("criu-tcp") else {
        return;
    };
    let b = t.bundle.to_str().unwrap();
    // The namespace's established TCP sockets: (local, remote) in hex.
    let established = |ns: &common::Netns| {
        let text = std::fs::read_to_string(format!("/proc/{}/net/tcp", ns.pid())).unwrap()
            + &std::fs::read_to_string(format!("/proc/{}/net/tcp6", ns.pid())).unwrap();
        let mut v: Vec<(String, String)> = text
            .lines()
            .skip(1)
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .filter(|f| f.len() > 3 && f[3] == "01")
            .map(|f| (f[1].to_string(), f[2].to_string()))
            .collect();
        v.sort();
        v
    };
    let cg2 = cgroup2_options();
    for rt in Rt::all() {
        // A namespace per runtime: CRIU's lock rules stay in it (below).
        let ns = common::Netns::new();
        let mut c = t.config(&[
            "sh",
            "-c",
            "sleep 100000 | nc -l -p 5000 > /dev/shm/got & sleep 1; \
             i=0; while :; do i=$((i+1)); echo $i; echo $i > /dev/shm/n; sleep 0.1; done | nc 127.0.0.1 5000",
        ]);
        for n in c["linux"]["namespaces"].as_array_mut().unwrap() {
            if n["type"] == "network" {
                n["path"] = json!(format!("/proc/{}/ns/net", ns.pid()));
            }
        }
        t.write_config(&c);
        let c1 = format!("{}-{}", t.id("n1"), rt.name());
        rt.ok(&t, &["run", "-d", &c1]);
        wait_count(rt, &t, &c1, 20);
        let before = established(&ns);
        assert_eq!(before.len(), 2, "{}: {before:?}", rt.name());
        let dump = img(&t, rt, "tcp");
        let o = rt.run(&t, &["checkpoint", "--image-path", &dump, &c1]);
        assert!(
            !o.status.success(),
            "{}: an established connection was dumped",
            rt.name()
        );
        assert_eq!(rt.state(&t, &c1).unwrap()["status"], "running");
        rt.ok(
            &t,
            &[
                "checkpoint",
                "--tcp-established",
                "--image-path",
                &dump,
                &c1,
            ],
        );
        let c2 = format!("{}-{}", t.id("n2"), rt.name());
        rt.ok(
            &t,
            &[
                "restore",
                "-d",
                "--tcp-established",
                "-b",
                b,
                "--image-path",
                &dump,
                &c2,
            ],
        );
        // The connection is back: the same two ends, established, and
        // the processes on either side of it. (Data does not flow again:
        // CRIU 3.17's network unlock fails with iptables-nft, "CHAIN_DEL
        // failed (Device or resource busy): chain CRIU", and its lock
        // rules stay, under runc as under berth; see compatibility.md.)
        assert_eq!(established(&ns), before, "{}", rt.name());
        let n = rt.count(&t, &c2);
        wait_count(rt, &t, &c2, n + 3);
        let ps = rt.out(&t, &["exec", &c2, "ps", "-o", "args"]);
        let ncs = ps.lines().filter(|l| l.starts_with("nc ")).count();
        assert_eq!(ncs, 2, "{}: {ps}", rt.name());
        rt.ok(&t, &["delete", "-f", &c2]);
        check_cgroup2(rt, &cg2);
    }
}

/// CRIU refusing (a page server nobody listens on; on a kernel CRIU does
/// not support, its own reason) fails `checkpoint` with CRIU's words and
/// leaves the container running as it was, for runc and berth.
#[test]
fn a_refused_checkpoint_leaves_the_container_running() {
    let t = T::new("criu-refused");
    t.write_config(&counting_config(&t));
    let cg2 = cgroup2_options();
    for rt in Rt::all() {
        let c1 = format!("{}-{}", t.id("r1"), rt.name());
        rt.ok(&t, &["run", "-d", &c1]);
        let n = wait_count(rt, &t, &c1, 3);
        let dump = img(&t, rt, "refused");
        let o = rt.run(
            &t,
            &[
                "checkpoint",
                "--page-server",
                "127.0.0.1:1",
                "--image-path",
                &dump,
                &c1,
            ],
        );
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{}: {err}", rt.name());
        assert!(err.contains("criu failed"), "{}: {err}", rt.name());
        // berth quotes CRIU's own reason from its log (runc names the log).
        if rt == Rt::Berth {
            assert!(err.contains("Error ("), "{}: {err}", rt.name());
        }
        assert_eq!(
            rt.state(&t, &c1).unwrap()["status"],
            "running",
            "{}",
            rt.name()
        );
        wait_count(rt, &t, &c1, n + 3);
        rt.ok(&t, &["delete", "-f", &c1]);
        check_cgroup2(rt, &cg2);
    }
}

/// Bad input is refused, naming the problem, and leaves nothing behind:
/// a created or missing container, bad flags, no CRIU; restore of a
/// missing or damaged image directory, or onto an ID in use.
#[test]
fn bad_checkpoint_and_restore_input() {
    let t = T::new("criu-bad");
    t.write_config(&counting_config(&t));
    let b = t.bundle.to_str().unwrap();
    let img = t.dir.join("img");
    let img_s = img.to_str().unwrap();
    let cid = t.id("created");
    assert!(t.create(&cid, &[]).status.success());
    let e = t.berth(&["checkpoint", "--image-path", img_s, &cid]);
    t.expect_error(&e, "Container cannot be checkpointed in created state");
    t.ok(&["delete", &cid]);
    let e = t.berth(&["checkpoint", "--image-path", img_s, &t.id("nothere")]);
    t.expect_error(&e, "container does not exist");
    let id = t.id("run");
    assert!(t.detached(&id).success());
    for (args, needle) in [
        (
            vec!["--manage-cgroups-mode", "bogus"],
            "Invalid manage-cgroups-mode value",
        ),
        (
            vec!["--page-server", "nowhere"],
            "Use --page-server ADDRESS:PORT",
        ),
        (vec!["--page-server", "1.2.3.4:port"], "Invalid port number"),
        (
            vec!["--parent-path", "/abs"],
            "--parent-path must be relative",
        ),
        (vec!["--parent-path", "../none"], "invalid --parent-path"),
        (
            vec!["--empty-ns", "ipc"],
            "namespace \"ipc\" is not supported",
        ),
    ] {
        let mut a = vec!["checkpoint", "--image-path", img_s];
        a.extend(args);
        a.push(&id);
        t.expect_error(&t.berth(&a), needle);
    }
    // Without CRIU: the error names the package.
    let o = t
        .cmd(&["checkpoint", "--image-path", img_s, &id])
        .env("PATH", "/usr/bin:/bin")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    t.expect_error(&o, "install the criu package");
    assert_eq!(t.state(&id)["status"], "running");
    // Restore: a missing image directory, one without descriptors.json,
    // a damaged one, an ID in use.
    let missing = t.dir.join("missing");
    let o = t.berth(&[
        "restore",
        "-d",
        "-b",
        b,
        "--image-path",
        missing.to_str().unwrap(),
        &t.id("x"),
    ]);
    t.expect_error(&o, "invalid directory to restore checkpoint");
    let empty = t.dir.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let o = t.berth(&[
        "restore",
        "-d",
        "-b",
        b,
        "--image-path",
        empty.to_str().unwrap(),
        &t.id("x"),
    ]);
    t.expect_error(&o, "descriptors.json");
    let damaged = t.dir.join("damaged");
    std::fs::create_dir_all(&damaged).unwrap();
    std::fs::write(
        damaged.join("descriptors.json"),
        r#"["/dev/null","/dev/null","/dev/null"]"#,
    )
    .unwrap();
    std::fs::write(damaged.join("inventory.img"), b"not an image").unwrap();
    // (It shares the running container's cgroup, which its failure must
    // leave alone.)
    let o = t.berth(&[
        "restore",
        "-d",
        "-b",
        b,
        "--image-path",
        damaged.to_str().unwrap(),
        &t.id("x"),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("criu failed"), "{err}");
    assert!(t.berth(&["state", &t.id("x")]).status.code() == Some(1));
    let o = t.berth(&[
        "restore",
        "-d",
        "-b",
        b,
        "--image-path",
        damaged.to_str().unwrap(),
        &id,
    ]);
    t.expect_error(&o, "container with given ID already exists");
    assert_eq!(t.state(&id)["status"], "running");
    ok(&t.berth(&["delete", "-f", &id]));
    assert!(!Path::new(&t.root).join(t.id("x")).exists());
}
