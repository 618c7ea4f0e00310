//! Test harness: real containers from the busybox fixture, each test in its
//! own state root and bundle, with a leak check of mounts, cgroups,
//! processes and state around it.
#![allow(dead_code)]

use serde_json::{json, Value};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Once;

/// The berth binary (BERTH_BIN overrides, e.g. inside the cgroup v2 VM).
pub fn berth_bin() -> PathBuf {
    std::env::var_os("BERTH_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_berth").into())
}

/// Whether the client tests run runc, their reference, before berth.
/// BERTH_TEST_BERTH_ONLY skips it (the emulated systemd VM, for time:
/// there berth must pass every check; the host runs both).
pub fn with_reference() -> bool {
    std::env::var_os("BERTH_TEST_BERTH_ONLY").is_none()
}

/// The runtimes a client test drives: runc (unless skipped), then berth.
pub fn client_runtimes() -> Vec<PathBuf> {
    let mut v = Vec::new();
    if with_reference() {
        v.push(runc());
    }
    v.push(berth_bin());
    v
}

/// runc, the reference the client tests run first.
pub fn runc() -> PathBuf {
    ["/usr/sbin/runc", "/usr/bin/runc"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .expect("runc installed (make test installs it)")
}

/// Gives config `c` a new user namespace mapping 65536 ids from `host_id`.
pub fn with_userns(c: &mut Value, host_id: u32) {
    c["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "user"}));
    let map = json!([{"containerID": 0, "hostID": host_id, "size": 65536}]);
    c["linux"]["uidMappings"] = map.clone();
    c["linux"]["gidMappings"] = map;
}

/// Removes the namespaces of `kinds` from a config (the host's then).
pub fn drop_ns(c: &mut Value, kinds: &[&str]) {
    c["linux"]["namespaces"]
        .as_array_mut()
        .expect("linux.namespaces")
        .retain(|n| !kinds.iter().any(|k| n["type"] == *k));
}

/// Asserts that a command succeeded (showing what it printed if not) and
/// returns its stdout.
#[track_caller]
pub fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "command failed ({}):\nstdout: {}\nstderr: {}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Whether the suites run with `--systemd-cgroup` (BERTH_TEST_SYSTEMD, set
/// by tests/vm/systemd.sh under a real systemd).
pub fn systemd() -> bool {
    std::env::var_os("BERTH_TEST_SYSTEMD").is_some()
}

/// Units whose name contains `token` (systemd mode only), any state.
pub fn units(token: &str) -> Vec<String> {
    if !systemd() {
        return Vec::new();
    }
    let out = Command::new("systemctl")
        .args([
            "list-units",
            "--all",
            "--plain",
            "--no-legend",
            "--no-pager",
        ])
        .output()
        .expect("systemctl");
    let mut v: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|u| u.contains(token))
        .map(str::to_string)
        .collect();
    v.sort();
    v
}

/// Whether the host is cgroup v2 only.
pub fn unified() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

/// The repository (BERTH_REPO overrides: /host inside the VM).
pub fn repo() -> PathBuf {
    std::env::var_os("BERTH_REPO")
        .map(PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into())
}

fn fixtures_dir() -> PathBuf {
    std::env::var_os("BERTH_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target/fixtures"))
}

/// The busybox rootfs, built once from Debian's busybox-static.
pub fn busybox_rootfs() -> PathBuf {
    static ONCE: Once = Once::new();
    let dir = fixtures_dir().join("busybox");
    ONCE.call_once(|| {
        if !dir.join("bin/busybox").exists() {
            let script = repo().join("rootfs-fixtures/busybox-rootfs.sh");
            let st = Command::new("sh")
                .arg(script)
                .arg(&dir)
                .status()
                .expect("run busybox-rootfs.sh");
            assert!(st.success(), "building the busybox fixture failed");
        }
    });
    dir
}

/// A static program printing its NUMA memory policy
/// (rootfs-fixtures/mempolicy.c).
pub fn mempolicy_probe() -> PathBuf {
    static ONCE: Once = Once::new();
    static_program("mempolicy", &ONCE)
}

/// A static program that calls a syscall by number and prints the result
/// (rootfs-fixtures/syscall.c).
pub fn syscall_probe() -> PathBuf {
    static ONCE: Once = Once::new();
    static_program("syscall", &ONCE)
}

/// A static program that tries to mount a fresh procfs from user, mount and
/// pid namespaces of its own (rootfs-fixtures/procmount.c).
pub fn procmount_probe() -> PathBuf {
    static ONCE: Once = Once::new();
    static_program("procmount", &ONCE)
}

/// A UDP server that answers "got DATA" (rootfs-fixtures/udpecho.c).
pub fn udpecho_program() -> PathBuf {
    static ONCE: Once = Once::new();
    static_program("udpecho", &ONCE)
}

/// The pod sandbox's init (rootfs-fixtures/pause.c), for tests/cri.rs.
pub fn pause_program() -> PathBuf {
    static ONCE: Once = Once::new();
    static_program("pause", &ONCE)
}

/// tests/bench/rss.c: runs a command from a small process and prints its
/// peak RSS (the memory guard, tests/runtime/footprint.rs).
pub fn rss_tool() -> PathBuf {
    static ONCE: Once = Once::new();
    built_once("rss", "tests/bench/rss.c", &ONCE)
}

/// rootfs-fixtures/NAME.c built static into the fixtures once (`make
/// fixtures` builds them on the host, for the VM too, which has no gcc).
fn static_program(name: &str, once: &Once) -> PathBuf {
    built_once(name, &format!("rootfs-fixtures/{name}.c"), once)
}

/// The C program `source` built static into the fixtures as `name`, once.
fn built_once(name: &str, source: &str, once: &Once) -> PathBuf {
    let bin = fixtures_dir().join(name);
    once.call_once(|| {
        if !bin.exists() {
            let st = Command::new("gcc")
                .args(["-O2", "-static", "-o"])
                .arg(&bin)
                .arg(repo().join(source))
                .status()
                .expect("run gcc");
            assert!(st.success(), "building {source} failed");
        }
    });
    bin
}

/// The test images (rootfs-fixtures/make-images.py), built once.
pub fn images() -> PathBuf {
    static ONCE: Once = Once::new();
    let dir = fixtures_dir().join("images");
    let rootfs = busybox_rootfs();
    ONCE.call_once(|| {
        if !dir.join("hostile/index.json").exists() {
            let script = repo().join("rootfs-fixtures/make-images.py");
            let st = Command::new("python3")
                .arg(script)
                .arg(&dir)
                .arg(&rootfs)
                .status()
                .expect("run make-images.py");
            assert!(st.success(), "building the image fixtures failed");
        }
    });
    dir
}

/// Everything the host shows that a container could leak.
#[derive(Debug, PartialEq, Eq)]
struct Snapshot {
    mounts: Vec<String>,
    cgroups: Vec<PathBuf>,
    units: Vec<String>,
}

fn snapshot(token: &str) -> Snapshot {
    let mut mounts: Vec<String> = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .map(|l| {
            // mount point and filesystem type, not ids (stable across reads)
            let f: Vec<&str> = l.split(' ').collect();
            format!("{} {}", f[4], l.split(" - ").nth(1).unwrap_or(""))
        })
        .collect();
    mounts.sort();
    let mut cgroups = Vec::new();
    find_dirs(Path::new("/sys/fs/cgroup"), token, 0, &mut cgroups);
    cgroups.sort();
    Snapshot {
        mounts,
        cgroups,
        units: units(token),
    }
}

fn find_dirs(d: &Path, token: &str, depth: usize, out: &mut Vec<PathBuf>) {
    if depth > 6 {
        return;
    }
    let Ok(rd) = std::fs::read_dir(d) else { return };
    for e in rd.flatten() {
        if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            let p = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            if name.contains(token) || name == "berth-test" || name == "berth" {
                out.push(p.clone());
            }
            find_dirs(&p, token, depth + 1, out);
        }
    }
}

/// Mount points of every cgroup hierarchy (v1 and v2).
fn cgroup_mounts() -> Vec<PathBuf> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.contains(" - cgroup ") || l.contains(" - cgroup2 "))
        .map(|l| PathBuf::from(l.split(' ').nth(4).unwrap()))
        .collect()
}

/// Makes the test's own parent cgroup `/berth-test/<token>` in every
/// hierarchy (cpuset copied down so children can hold tasks).
fn make_parent_cgroups(token: &str) -> Vec<PathBuf> {
    let mut made = Vec::new();
    for m in cgroup_mounts() {
        let mut d = m.clone();
        for c in ["berth-test", token] {
            let parent = d.clone();
            d.push(c);
            if std::fs::create_dir(&d).is_ok() {
                made.push(d.clone());
                for f in ["cpuset.cpus", "cpuset.mems"] {
                    if let Ok(v) = std::fs::read_to_string(parent.join(f)) {
                        let _ = std::fs::write(d.join(f), v.trim());
                    }
                }
            }
        }
    }
    made
}

/// One message and the fd that came with it (SCM_RIGHTS) on a unix
/// socket: what a console socket or a seccomp agent receives.
pub fn recv_fd(conn: &std::os::unix::net::UnixStream) -> (Vec<u8>, std::os::fd::RawFd) {
    use std::os::fd::AsRawFd;
    let mut buf = vec![0u8; 65536];
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let m = nix::sys::socket::recvmsg::<()>(
        conn.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        nix::sys::socket::MsgFlags::empty(),
    )
    .unwrap();
    let mut fd = -1;
    for c in m.cmsgs().unwrap() {
        if let nix::sys::socket::ControlMessageOwned::ScmRights(f) = c {
            fd = f[0];
        }
    }
    let n = m.bytes;
    buf.truncate(n);
    (buf, fd)
}

/// Processes whose root directory is inside `dir` (container processes).
fn procs_rooted_in(dir: &Path) -> Vec<i32> {
    let mut v = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if let Ok(root) = std::fs::read_link(format!("/proc/{pid}/root")) {
            if root.starts_with(dir) {
                // A zombie waiting for its reaper has exited already.
                let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
                if !stat
                    .rsplit(')')
                    .next()
                    .unwrap_or("")
                    .trim_start()
                    .starts_with('Z')
                {
                    v.push(pid);
                }
            }
        }
    }
    v
}

/// One test's world: a state root, a bundle with a copy-free rootfs bind of
/// the fixture, and a unique token naming its containers and cgroups.
pub struct T {
    pub dir: PathBuf,
    pub root: PathBuf,
    pub bundle: PathBuf,
    pub token: String,
    pub log: PathBuf,
    before: Snapshot,
    /// Parent cgroups this test made (removed last, deepest first).
    parents: Vec<PathBuf>,
    next: std::sync::atomic::AtomicUsize,
}

impl T {
    pub fn new(name: &str) -> T {
        let rootfs = busybox_rootfs();
        let token = format!("berth-test-{name}-{}", std::process::id());
        let dir = std::env::temp_dir().join(&token);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let bundle = dir.join("bundle");
        std::fs::create_dir_all(&bundle).unwrap();
        // Each test gets its own copy, so tests may change their rootfs.
        let st = Command::new("cp")
            .arg("-a")
            .arg(&rootfs)
            .arg(bundle.join("rootfs"))
            .status()
            .unwrap();
        assert!(st.success());
        // Under systemd the containers' cgroups are units in system.slice.
        let parents = if systemd() {
            Vec::new()
        } else {
            make_parent_cgroups(&token)
        };
        let before = snapshot(&token);
        let t = T {
            root: dir.join("state"),
            log: dir.join("log.json"),
            bundle,
            token,
            dir,
            before,
            parents,
            next: Default::default(),
        };
        t.write_config(&t.config(&["true"]));
        t
    }

    /// A container ID unique to this test.
    pub fn id(&self, n: &str) -> String {
        format!("{}-{n}", self.token)
    }

    /// `berth spec`'s config with terminal off, the given args, a hostname
    /// and a cgroup under /berth-test.
    pub fn config(&self, args: &[&str]) -> Value {
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "cd {} && {} spec >/dev/null && cat config.json && rm config.json",
                self.dir.display(),
                berth_bin().display()
            ))
            .output()
            .unwrap();
        let mut c: Value = serde_json::from_slice(&out.stdout).expect("berth spec output");
        c["process"]["terminal"] = json!(false);
        c["process"]["args"] = json!(args);
        c["hostname"] = json!("berth-test");
        // The tests run in a cgroup namespace of their own on every host
        // (`berth spec` writes one only on a cgroup v2 host, as runc does).
        let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
        if !ns.iter().any(|n| n["type"] == "cgroup") {
            ns.push(json!({"type": "cgroup"}));
        }
        // Each config its own leaf under the test's parent cgroup (a unit
        // of its own under systemd).
        let n = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        c["linux"]["cgroupsPath"] = if systemd() {
            json!(format!("system.slice:berth-test:{}-c{n}", self.token))
        } else {
            json!(format!("/berth-test/{}/c{n}", self.token))
        };
        c
    }

    pub fn write_config(&self, c: &Value) {
        std::fs::write(
            self.bundle.join("config.json"),
            serde_json::to_vec_pretty(c).unwrap(),
        )
        .unwrap();
    }

    /// Runs berth with `--root` and `--log` (json) set.
    pub fn berth(&self, args: &[&str]) -> Output {
        self.cmd(args).stdin(Stdio::null()).output().unwrap()
    }

    /// Runs the reference runtime, runc, with a state root of this test's
    /// own and stdin from /dev/null.
    pub fn runc(&self, args: &[&str]) -> Output {
        Command::new(runc())
            .arg("--root")
            .arg(self.dir.join("runc"))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// Runs berth (as [`T::berth`]), expects success; its stdout.
    #[track_caller]
    pub fn ok(&self, args: &[&str]) -> String {
        ok(&self.berth(args))
    }

    /// `run -d ID` of the bundle's config. (Its stdio must not be a pipe
    /// the test waits on: the container holds it.)
    pub fn detached(&self, id: &str) -> std::process::ExitStatus {
        self.cmd(&["run", "-d", id])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap()
    }

    /// A detached container of config `c` running `sleep 600` (long enough
    /// for the emulated VM); returns (id, init pid).
    pub fn sleeper(&self, name: &str, mut c: Value) -> (String, i64) {
        c["process"]["args"] = json!(["sleep", "600"]);
        self.write_config(&c);
        let id = self.id(name);
        let st = self.detached(&id);
        assert!(st.success(), "run -d {id}: {st}");
        let pid = self.state(&id)["pid"].as_i64().unwrap();
        (id, pid)
    }

    /// The image store of this test.
    pub fn store(&self) -> PathBuf {
        self.dir.join("store")
    }

    /// `berth image --store STORE ARGS...`. `image run` gets `--network
    /// none` unless the test names a network: root's default, a bridge,
    /// would change the network namespace the test runs in, which is the
    /// host's outside tests/network.rs.
    pub fn image(&self, args: &[&str]) -> Output {
        let mut a: Vec<&str> = args.to_vec();
        if args.first() == Some(&"run") && !args.iter().any(|a| a.starts_with("--network")) {
            a.splice(1..1, ["--network", "none"]);
        }
        self.image_cmd(&a).stdin(Stdio::null()).output().unwrap()
    }

    /// `berth image --store STORE ARGS...` as it is given.
    pub fn image_cmd(&self, args: &[&str]) -> Command {
        let store = self.store();
        let mut a = vec!["image", "--store", store.to_str().unwrap()];
        a.extend_from_slice(args);
        self.cmd(&a)
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(berth_bin());
        if systemd() {
            c.arg("--systemd-cgroup");
        }
        c.arg("--root")
            .arg(&self.root)
            .arg("--log")
            .arg(&self.log)
            .arg("--log-format")
            .arg("json");
        c.args(args).current_dir(&self.bundle);
        c
    }

    /// `run ID` in the foreground with the current config: (status, stdout, stderr).
    pub fn run(&self, c: &Value) -> (i32, String, String) {
        self.write_config(c);
        let id = self.id("run");
        let o = self.berth(&["run", "-b", self.bundle.to_str().unwrap(), &id]);
        (
            o.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    }

    /// Runs a shell snippet in a fresh container; asserts exit 0; stdout.
    pub fn sh(&self, script: &str) -> String {
        let (code, out, err) = self.run(&self.config(&["sh", "-c", script]));
        assert_eq!(code, 0, "script {script:?} failed: {err}{out}");
        out
    }

    pub fn state(&self, id: &str) -> Value {
        let o = self.berth(&["state", id]);
        assert!(
            o.status.success(),
            "state {id}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        serde_json::from_slice(&o.stdout).unwrap()
    }

    /// Creates a container whose stdio goes to files in the test dir.
    /// (The container keeps the stdio it inherits, so a pipe would stay
    /// open for as long as it runs.)
    pub fn create(&self, id: &str, extra: &[&str]) -> Output {
        let out = std::fs::File::create(self.dir.join(format!("{id}.out"))).unwrap();
        let errp = self.dir.join(format!("{id}.err"));
        let err = std::fs::File::create(&errp).unwrap();
        let mut args = vec!["create", "-b", self.bundle.to_str().unwrap()];
        args.extend_from_slice(extra);
        args.push(id);
        let status = self
            .cmd(&args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .status()
            .unwrap();
        Output {
            status,
            stdout: Vec::new(),
            stderr: std::fs::read(errp).unwrap(),
        }
    }

    pub fn container_out(&self, id: &str) -> String {
        std::fs::read_to_string(self.dir.join(format!("{id}.out"))).unwrap_or_default()
    }

    /// The last JSON line of the --log file.
    pub fn last_log(&self) -> Value {
        let s = std::fs::read_to_string(&self.log).expect("log file written");
        serde_json::from_str(s.lines().last().unwrap()).expect("log line is JSON")
    }

    /// Checks the error contract: exit 1, stderr and one JSON log line
    /// containing `needle`, and nothing left behind.
    pub fn expect_error(&self, o: &Output, needle: &str) {
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(
            o.status.code(),
            Some(1),
            "expected failure with {needle:?}, got {o:?}"
        );
        assert!(err.contains(needle), "stderr {err:?} lacks {needle:?}");
        assert_eq!(
            err.trim_end().lines().count(),
            1,
            "stderr is one line: {err:?}"
        );
        let l = self.last_log();
        assert_eq!(l["level"], "error");
        assert!(
            l["msg"].as_str().unwrap().contains(needle),
            "log {l} lacks {needle:?}"
        );
        assert!(l["time"].as_str().unwrap().ends_with('Z'));
    }

    /// Runs berth with its stdio on a new pty; types `input`; returns what the
    /// terminal showed and the exit status.
    pub fn on_pty(&self, args: &[&str], input: &[u8]) -> (String, i32, nix::sys::termios::Termios) {
        use std::io::{Read, Write};
        use std::os::fd::AsRawFd;
        let ws = nix::pty::Winsize {
            ws_row: 30,
            ws_col: 100,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        let pty = nix::pty::openpty(Some(&ws), None).unwrap();
        let slave = std::fs::File::from(pty.slave);
        let check = slave.try_clone().unwrap();
        let mut cmd = self.cmd(args);
        cmd.stdin(slave.try_clone().unwrap())
            .stdout(slave.try_clone().unwrap())
            .stderr(slave);
        let mut child = cmd.spawn().unwrap();
        drop(cmd);
        let mut master = std::fs::File::from(pty.master);
        std::thread::sleep(std::time::Duration::from_millis(300));
        master.write_all(input).unwrap();
        let status = child.wait().unwrap();
        // The child is gone; take what is left on the terminal without blocking.
        let fd = master.as_raw_fd();
        // SAFETY: fcntl on an fd we own.
        unsafe { libc::fcntl(fd, libc::F_SETFL, libc::O_NONBLOCK) };
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = master.read(&mut buf) {
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        let term = nix::sys::termios::tcgetattr(&check).unwrap();
        (
            String::from_utf8_lossy(&out).into_owned(),
            status.code().unwrap_or(-1),
            term,
        )
    }

    /// Waits until the container's status is `want` (up to 10 s).
    pub fn wait_status(&self, id: &str, want: &str) {
        for _ in 0..1000 {
            let o = self.berth(&["state", id]);
            if o.status.success()
                && serde_json::from_slice::<Value>(&o.stdout).unwrap()["status"] == want
            {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!("{id} never reached {want}: {}", self.state(id));
    }

    /// Asserts the host is as it was: same mounts, no cgroup, container
    /// process or state entry left.
    pub fn check_leaks(&self) {
        let states: Vec<_> = std::fs::read_dir(&self.root)
            .map(|r| r.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        assert!(states.is_empty(), "state left behind: {states:?}");
        let procs = procs_rooted_in(&self.dir);
        assert!(procs.is_empty(), "container processes left: {procs:?}");
        let after = snapshot(&self.token);
        assert_eq!(self.before, after, "mounts or cgroups changed");
    }
}

impl Drop for T {
    fn drop(&mut self) {
        // A failed test (or one that leaked) still cleans up for the next
        // one, without hiding the failure.
        let failed = std::thread::panicking();
        let leak = if failed {
            None
        } else {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.check_leaks())).err()
        };
        if failed || leak.is_some() {
            self.clean_up();
        }
        for d in self.parents.iter().rev() {
            let _ = std::fs::remove_dir(d);
        }
        // The shared `berth-test` parent goes with the last test using it,
        // whichever test made it (two test processes may overlap): rmdir
        // succeeds only once it is empty.
        if !self.parents.is_empty() {
            for m in cgroup_mounts() {
                let _ = std::fs::remove_dir(m.join("berth-test"));
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
        if let Some(p) = leak {
            std::panic::resume_unwind(p);
        }
    }
}

impl T {
    /// Deletes the containers of berth and of the reference runtime, then
    /// what is left below the test's own parent cgroups (a leaf whose last
    /// process was still exiting when it was deleted) and the mounts left
    /// under the test's directory.
    fn clean_up(&self) {
        let runc_root = self.dir.join("runc");
        for (root, runc) in [(&self.root, false), (&runc_root, true)] {
            let Ok(rd) = std::fs::read_dir(root) else {
                continue;
            };
            for e in rd.flatten() {
                let id = e.file_name().to_string_lossy().into_owned();
                let _ = if runc {
                    self.runc(&["delete", "-f", &id])
                } else {
                    self.berth(&["delete", "-f", &id])
                };
            }
        }
        for d in self.parents.iter().rev() {
            remove_cgroup_tree(d);
        }
        // Mounts left under the test's directory (the overlay rootfs of an
        // image bundle a failed test did not unmount), deepest first.
        let dir = self.dir.to_string_lossy().into_owned();
        let mut left: Vec<String> = std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .filter(|m| m.starts_with(&format!("{dir}/")))
            .map(str::to_string)
            .collect();
        left.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in left {
            let c = std::ffi::CString::new(m).unwrap();
            // SAFETY: umount2 of a NUL-terminated path; integer result.
            unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
        }
    }
}

/// Removes the empty cgroups below `d` (one of a test's own parents),
/// deepest first, waiting up to a second for each to empty.
fn remove_cgroup_tree(d: &Path) {
    let Ok(rd) = std::fs::read_dir(d) else { return };
    for e in rd.flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            let sub = e.path();
            remove_cgroup_tree(&sub);
            for _ in 0..100 {
                if std::fs::remove_dir(&sub).is_ok() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        }
    }
}

/// A network namespace of the test's own, held by `unshare -n sleep`
/// (tests/network.rs, the rootless network test): the host's interfaces,
/// routes and firewall stay untouched.
pub struct Netns {
    holder: Child,
    fd: OwnedFd,
}

impl Netns {
    pub fn new() -> Netns {
        let holder = Command::new("unshare")
            .args(["-n", "sleep", "3600"])
            .spawn()
            .expect("unshare -n");
        let ours = std::fs::read_link("/proc/self/ns/net").unwrap();
        let path = format!("/proc/{}/ns/net", holder.id());
        for _ in 0..500 {
            if std::fs::read_link(&path).is_ok_and(|l| l != ours) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        assert_ne!(std::fs::read_link(&path).unwrap(), ours, "no namespace");
        let fd = std::fs::File::open(&path).unwrap().into();
        let ns = Netns { holder, fd };
        ok(&ns.sh("ip link set lo up"));
        ns
    }

    pub fn pid(&self) -> u32 {
        self.holder.id()
    }

    /// Makes `c` run in this namespace.
    pub fn enter<'a>(&self, c: &'a mut Command) -> &'a mut Command {
        let fd = self.fd.as_raw_fd();
        // SAFETY: between fork and exec only setns(2), async-signal-safe,
        // on an fd that stays open in the parent until the child execs.
        unsafe {
            c.pre_exec(move || {
                if libc::setns(fd, libc::CLONE_NEWNET) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            })
        }
    }

    /// Runs a shell script in this namespace. `ip` is iproute2's: the VM's
    /// busybox sh would run its own applet, which cannot name a veth peer.
    pub fn sh(&self, script: &str) -> Output {
        let mut c = Command::new("sh");
        c.arg("-c")
            .arg(format!("ip() {{ /bin/ip \"$@\"; }}; {script}"))
            .stdin(Stdio::null());
        self.enter(&mut c).output().unwrap()
    }

    /// Links, addresses, routes and firewall rules: names and values, not
    /// link states or counters (which traffic changes), and not the empty
    /// built-in chains iptables-save prints once a table was loaded.
    pub fn state(&self) -> String {
        let o = self.sh(
            "ip -o link | awk '{print $2}'; ip -o addr | awk '{print $2, $3, $4}'; \
             ip route | sed 's/ linkdown//'; \
             for t in iptables-save ip6tables-save; do $t 2>/dev/null | grep -E '^(-A|:)' \
             | sed 's/ \\[[0-9]*:[0-9]*\\]//' \
             | grep -vE '^:(INPUT|OUTPUT|FORWARD|PREROUTING|POSTROUTING) (ACCEPT|DROP)$'; done",
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// Processes in this namespace other than its holder.
    pub fn processes(&self) -> Vec<String> {
        let me = std::fs::read_link(format!("/proc/{}/ns/net", self.pid())).unwrap();
        let mut v = Vec::new();
        for e in std::fs::read_dir("/proc").unwrap().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.parse::<u32>().is_err() || name == self.pid().to_string() {
                continue;
            }
            if std::fs::read_link(e.path().join("ns/net")).is_ok_and(|l| l == me) {
                let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
                v.push(format!(
                    "{name} {}",
                    String::from_utf8_lossy(&cmd).replace('\0', " ")
                ));
            }
        }
        v
    }

    /// Fetches `url` from this namespace (python3: the static busybox's
    /// wget crashes outside its rootfs).
    pub fn fetch(&self, url: &str) -> String {
        ok(&self.get(url, 5))
    }

    pub fn get(&self, url: &str, timeout: u32) -> Output {
        self.sh(&format!(
            "python3 -c 'import sys,urllib.request as u; sys.stdout.write(u.urlopen(sys.argv[1], timeout={timeout}).read().decode())' {url}"
        ))
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

/// A helper process of the test, killed when it goes out of scope.
pub struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
