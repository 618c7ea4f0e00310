//! berth without privilege: an unprivileged user made by each test (its
//! passwd and group entries and a subordinate id range of its own in
//! /etc/subuid and /etc/subgid, all removed when the test ends, with every
//! process of that user) runs containers, images and rootless podman.
//! Commands run as the user through setpriv(1) with a clean environment
//! (HOME, XDG_RUNTIME_DIR, PATH).

mod common;
use common::ok;
use serde_json::{json, Value};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;

/// One test's user. Dropping it kills its processes and removes it.
struct User {
    name: String,
    uid: u32,
    /// First subordinate id (65536 of them, uids and gids alike).
    sub: u32,
    home: PathBuf,
    run: PathBuf,
    berth: PathBuf,
    /// A cgroup v2 directory the user's commands start in (a delegated
    /// subtree's, or its user manager's), as a login session's would.
    launch: Option<PathBuf>,
    /// Its user manager (user@UID.service) runs (systemd only).
    manager: bool,
}

/// A session bus configuration (dbus-daemon's session.conf, reduced).
const SESSION_CONF: &str = r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:tmpdir=/tmp</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"#;

/// /etc/passwd, group, subuid and subgid are edited by one test at a time.
static ETC: Mutex<()> = Mutex::new(());

fn ids_in(file: &str, field: usize) -> Vec<u64> {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(':').nth(field)?.parse().ok())
        .collect()
}

/// Rewrites `file` without the lines starting with `prefix`.
fn drop_lines(file: &str, prefix: &str) {
    let Ok(text) = std::fs::read_to_string(file) else {
        return;
    };
    let kept: String = text
        .lines()
        .filter(|l| !l.starts_with(prefix))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(file, kept).unwrap();
}

fn append(file: &str, line: &str) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(file)
        .unwrap();
    writeln!(f, "{line}").unwrap();
}

impl User {
    fn new(tag: &str) -> User {
        let _g = ETC.lock().unwrap_or_else(|e| e.into_inner());
        let name = format!("brl{tag}{}", std::process::id() % 100000);
        let used: Vec<u64> = ids_in("/etc/passwd", 2)
            .into_iter()
            .chain(ids_in("/etc/group", 2))
            .collect();
        let uid = (23000u32..60000)
            .find(|u| !used.contains(&u64::from(*u)))
            .unwrap();
        // A subordinate range after every existing one.
        let end = ["/etc/subuid", "/etc/subgid"]
            .iter()
            .flat_map(|f| {
                std::fs::read_to_string(f)
                    .unwrap_or_default()
                    .lines()
                    .filter_map(|l| {
                        let mut p = l.split(':').skip(1);
                        Some(p.next()?.parse::<u64>().ok()? + p.next()?.parse::<u64>().ok()?)
                    })
                    .collect::<Vec<_>>()
            })
            .max()
            .unwrap_or(0)
            .max(1_000_000);
        let sub = u32::try_from(end).unwrap();
        let home = PathBuf::from(format!("/tmp/berth-test-rootless-{name}"));
        let _ = std::fs::remove_dir_all(&home);
        std::fs::create_dir_all(&home).unwrap();
        append(
            "/etc/passwd",
            &format!("{name}:x:{uid}:{uid}:berth test:{}:/bin/sh", home.display()),
        );
        append("/etc/group", &format!("{name}:x:{uid}:"));
        append("/etc/subuid", &format!("{name}:{sub}:65536"));
        append("/etc/subgid", &format!("{name}:{sub}:65536"));
        let run = home.join("run");
        std::fs::create_dir_all(&run).unwrap();
        std::fs::set_permissions(&run, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .unwrap();
        let berth = home.join("berth");
        std::fs::copy(common::berth_bin(), &berth).unwrap();
        chown_tree(&home, uid);
        User {
            name,
            uid,
            sub,
            home,
            run,
            berth,
            launch: None,
            manager: false,
        }
    }

    /// Starts a manager of the user's (`systemd --user` as a transient
    /// service of the system's, with `Delegate=yes`, its runtime directory
    /// and the user bus, as user@UID.service has it minus PAM, which the
    /// VM's unconfigured packages lack), and has the user's commands start
    /// in a cgroup of its delegated subtree, as a login session's do.
    fn start_manager(&mut self) {
        let run = PathBuf::from(format!("/run/user/{}", self.uid));
        std::fs::create_dir_all(&run).unwrap();
        std::os::unix::fs::chown(&run, Some(self.uid), Some(self.uid)).unwrap();
        std::fs::set_permissions(&run, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .unwrap();
        if !Path::new("/usr/share/dbus-1/session.conf").exists() {
            // The VM's guest image leaves /usr/share out, and with it the
            // user bus's configuration: the user's own dbus.service (in
            // its home) names one of the test's.
            let conf = self.home.join("session.conf");
            std::fs::write(&conf, SESSION_CONF).unwrap();
            let units = self.home.join(".config/systemd/user");
            std::fs::create_dir_all(&units).unwrap();
            std::fs::write(
                units.join("dbus.service"),
                format!(
                    "[Unit]\nRequires=dbus.socket\n[Service]\nExecStart=/usr/bin/dbus-daemon --config-file={} --address=systemd: --nofork --nopidfile --systemd-activation --syslog-only\n",
                    conf.display()
                ),
            )
            .unwrap();
            chown_tree(&self.home, self.uid);
        }
        let unit = self.manager_unit();
        ok(&Command::new("systemd-run")
            .arg(format!("--unit={unit}"))
            .arg(format!("--uid={}", self.uid))
            .arg(format!("--gid={}", self.uid))
            // In the user's slice, as user@UID.service is (the bus
            // tells a peer's owner uid from it: runc asks).
            .arg(format!("--slice=user-{}.slice", self.uid))
            .args(["-p", "Delegate=yes", "-p", "Type=notify"])
            .arg(format!("--setenv=XDG_RUNTIME_DIR={}", run.display()))
            .args(["/lib/systemd/systemd", "--user"])
            .output()
            .unwrap());
        self.manager = true;
        self.run = run;
        for _ in 0..300 {
            if self.run.join("bus").exists() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        assert!(
            self.run.join("bus").exists(),
            "no user bus in {:?}",
            self.run
        );
        let launch = Path::new("/sys/fs/cgroup")
            .join(self.manager_cgroup())
            .join("berth-test-launch");
        std::fs::create_dir(&launch).unwrap();
        for f in ["", "cgroup.procs"] {
            std::os::unix::fs::chown(launch.join(f), Some(self.uid), Some(self.uid)).unwrap();
        }
        self.launch = Some(launch);
    }

    fn manager_unit(&self) -> String {
        format!("berth-test-user-{}.service", self.uid)
    }

    /// The manager's cgroup, relative to the cgroup2 root.
    fn manager_cgroup(&self) -> String {
        format!(
            "user.slice/user-{0}.slice/{1}",
            self.uid,
            self.manager_unit()
        )
    }

    /// A command run as the user, with its environment only.
    fn cmd(&self, prog: impl AsRef<std::ffi::OsStr>) -> Command {
        // util-linux's (the VM's busybox has a setpriv without --reuid).
        let setpriv = ["/usr/bin/setpriv", "/bin/setpriv"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .unwrap_or("setpriv");
        let mut c = match &self.launch {
            // Into the launch cgroup first (as root), then the user.
            Some(l) => {
                let mut c = Command::new("sh");
                c.arg("-c")
                    .arg(format!(
                        "echo $$ > {}/cgroup.procs && exec \"$@\"",
                        l.display()
                    ))
                    .args(["sh", setpriv]);
                c
            }
            None => Command::new(setpriv),
        };
        c.arg(format!("--reuid={}", self.uid))
            .arg(format!("--regid={}", self.uid))
            .arg("--clear-groups")
            .args(["env", "-i"])
            .arg(format!("HOME={}", self.home.display()))
            .arg(format!("XDG_RUNTIME_DIR={}", self.run.display()))
            .arg("PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin");
        if self.manager {
            // As pam_systemd sets it for a login with a user bus.
            c.arg(format!(
                "DBUS_SESSION_BUS_ADDRESS=unix:path={}/bus",
                self.run.display()
            ));
        }
        c.arg(prog).current_dir(&self.home).stdin(Stdio::null());
        c
    }

    fn berth(&self, args: &[&str]) -> Output {
        self.cmd(&self.berth).args(args).output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        ok(&self.berth(args))
    }

    /// A bundle in the user's home: `berth spec --rootless` as the user,
    /// the busybox rootfs, then `edit`.
    fn bundle(&self, name: &str, edit: impl FnOnce(&mut Value)) -> PathBuf {
        let b = self.home.join(name);
        std::fs::create_dir_all(&b).unwrap();
        ok(&Command::new("cp")
            .arg("-a")
            .arg(common::busybox_rootfs())
            .arg(b.join("rootfs"))
            .output()
            .unwrap());
        chown_tree(&b, self.uid);
        ok(&self
            .cmd(&self.berth)
            .args(["spec", "--rootless", "-b"])
            .arg(&b)
            .output()
            .unwrap());
        let mut c: Value =
            serde_json::from_slice(&std::fs::read(b.join("config.json")).unwrap()).unwrap();
        c["process"]["terminal"] = json!(false);
        c["root"]["readonly"] = json!(false);
        edit(&mut c);
        std::fs::write(
            b.join("config.json"),
            serde_json::to_vec_pretty(&c).unwrap(),
        )
        .unwrap();
        chown_tree(&b.join("config.json"), self.uid);
        b
    }
}

fn chown_tree(p: &Path, uid: u32) {
    ok(&Command::new("chown")
        .arg("-R")
        .arg(format!("{uid}:{uid}"))
        .arg(p)
        .output()
        .unwrap());
}

impl Drop for User {
    fn drop(&mut self) {
        if self.manager {
            // Stopping the manager kills what runs in its cgroup.
            let _ = Command::new("systemctl")
                .args(["stop", &self.manager_unit()])
                .arg(format!("user-{}.slice", self.uid))
                .status();
        }
        // Every process of this user is the test's.
        let _ = Command::new("pkill")
            .args(["-KILL", "-U", &self.uid.to_string()])
            .status();
        for _ in 0..50 {
            let alive = Command::new("pgrep")
                .args(["-U", &self.uid.to_string()])
                .output()
                .map(|o| !o.stdout.is_empty())
                .unwrap_or(false);
            if !alive {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mut mounts: Vec<&str> = info
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .filter(|m| m.starts_with(self.home.to_str().unwrap()))
            .collect();
        mounts.sort();
        for m in mounts.iter().rev() {
            let _ = nix::mount::umount2(*m, nix::mount::MntFlags::MNT_DETACH);
        }
        if let Some(l) = &self.launch {
            let _ = std::fs::remove_dir(l);
        }
        if self.manager {
            let _ = Command::new("systemctl")
                .args(["reset-failed", &self.manager_unit()])
                .stderr(Stdio::null())
                .status();
            let _ = std::fs::remove_dir_all(&self.run);
        }
        let _ = std::fs::remove_dir_all(&self.home);
        let _g = ETC.lock().unwrap_or_else(|e| e.into_inner());
        for f in ["/etc/passwd", "/etc/group", "/etc/subuid", "/etc/subgid"] {
            drop_lines(f, &format!("{}:", self.name));
        }
    }
}

#[test]
fn lifecycle_exec_kill_as_an_unprivileged_user() {
    let u = User::new("life");
    let b = u.bundle("b", |c| c["process"]["args"] = json!(["sleep", "600"]));
    let b = b.to_str().unwrap();
    // (stdio not piped: the detached init would hold the pipes open)
    let st = u
        .cmd(&u.berth)
        .args(["run", "-d", "-b", b, "c1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    // State under $XDG_RUNTIME_DIR/berth, the user's alone.
    let root = u.run.join("berth");
    let m = std::fs::metadata(&root).unwrap();
    assert_eq!((m.uid(), m.mode() & 0o777), (u.uid, 0o700), "state root");
    let st: Value = serde_json::from_str(&u.ok(&["state", "c1"])).unwrap();
    assert_eq!(st["status"], "running");
    let pid = st["pid"].as_i64().unwrap();
    // The init is the user's on the host, root in its namespace.
    let host_uid = std::fs::metadata(format!("/proc/{pid}")).unwrap().uid();
    assert_eq!(host_uid, u.uid);
    let inside = u.ok(&["exec", "c1", "sh", "-c", "id -u; cat /proc/self/uid_map"]);
    let words: Vec<&str> = inside.split_whitespace().collect();
    assert_eq!(words, ["0", "0", &*u.uid.to_string(), "1"], "{inside}");
    assert!(u.ok(&["ps", "c1"]).contains("sleep 600"));
    // Paused needs a cgroup, and this user has none here: said so.
    let o = u.berth(&["pause", "c1"]);
    if !o.status.success() {
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("no cgroup"),
            "{o:?}"
        );
    }
    u.berth(&["resume", "c1"]);
    u.ok(&["kill", "c1", "KILL"]);
    for _ in 0..50 {
        if !Path::new(&format!("/proc/{pid}")).exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    u.ok(&["delete", "c1"]);
    assert_eq!(std::fs::read_dir(&root).unwrap().count(), 0, "state left");
    // No XDG_RUNTIME_DIR: a clear error, nothing made.
    let o = u
        .cmd("env")
        .arg("-u")
        .arg("XDG_RUNTIME_DIR")
        .arg(&u.berth)
        .arg("list")
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("XDG_RUNTIME_DIR is not set"),
        "{o:?}"
    );
}

#[test]
fn subordinate_mappings_and_a_refused_range() {
    let u = User::new("map");
    let (uid, sub) = (u.uid, u.sub);
    let b = u.bundle("b", |c| {
        let m = json!([{"containerID": 0, "hostID": uid, "size": 1},
                       {"containerID": 1, "hostID": sub, "size": 65536}]);
        c["linux"]["uidMappings"] = m.clone();
        c["linux"]["gidMappings"] = m;
        c["process"]["args"] = json!(["sh", "-c", "cat /proc/self/uid_map; touch /tmp/f && chown 1000:1000 /tmp/f && stat -c %u:%g /tmp/f"]);
        for set in ["bounding", "effective", "permitted"] {
            c["process"]["capabilities"][set] = json!(["CAP_CHOWN", "CAP_KILL"]);
        }
    });
    let out = u.ok(&["run", "-b", b.to_str().unwrap(), "m1"]);
    assert!(
        out.contains(&format!("1 {sub} 65536"))
            || out
                .split_whitespace()
                .collect::<Vec<_>>()
                .windows(3)
                .any(|w| w == ["1", &*sub.to_string(), "65536"]),
        "{out}"
    );
    assert!(out.trim_end().ends_with("1000:1000"), "{out}");
    // On the host the file belongs to the matching subordinate id.
    let m = std::fs::metadata(b.join("rootfs/tmp/f")).unwrap();
    assert_eq!((m.uid(), m.gid()), (sub + 999, sub + 999));
    // Ids outside the user's ranges: refused, naming the range.
    let bad = sub + 70000;
    let b2 = u.bundle("b2", |c| {
        c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": uid, "size": 1},
                                          {"containerID": 1, "hostID": bad, "size": 10}]);
    });
    let o = u.berth(&["run", "-b", b2.to_str().unwrap(), "m2"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{o:?}");
    assert!(
        err.contains("linux.uidMappings")
            && err.contains(&format!("{bad}-{}", bad + 9))
            && err.contains(&format!("{sub}-{}", sub + 65535)),
        "{err}"
    );
    assert_eq!(std::fs::read_dir(u.run.join("berth")).unwrap().count(), 0);
}

#[test]
fn limits_without_a_delegated_cgroup_are_refused() {
    let u = User::new("lim");
    let b = u.bundle("b", |c| {
        c["linux"]["resources"] = json!({"memory": {"limit": 67108864}});
        c["process"]["args"] = json!(["true"]);
    });
    let o = u.berth(&["run", "-b", b.to_str().unwrap(), "l1"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(
        err.contains("linux.resources.memory")
            && err.contains("rootless: no permission to create or join cgroup"),
        "{err}"
    );
    assert_eq!(std::fs::read_dir(u.run.join("berth")).unwrap().count(), 0);
}

/// Under cgroup v2, a subtree delegated to the user (owned by it, as
/// systemd delegates user@.service) takes the container and its limits.
#[test]
fn a_delegated_cgroup_takes_limits() {
    if !common::unified() || common::systemd() {
        return;
    }
    let mut u = User::new("dlg");
    let deleg = PathBuf::from(format!("/sys/fs/cgroup/berth-test-{}", u.name));
    let launch = deleg.join("launch");
    std::fs::create_dir_all(&launch).unwrap();
    let ctl = std::fs::read_to_string("/sys/fs/cgroup/cgroup.subtree_control").unwrap();
    let want: Vec<String> = ["memory", "pids"]
        .iter()
        .filter(|c| ctl.split_whitespace().any(|x| x == **c))
        .map(|c| format!("+{c}"))
        .collect();
    std::fs::write(deleg.join("cgroup.subtree_control"), want.join(" ")).unwrap();
    for f in [
        "",
        "cgroup.procs",
        "cgroup.subtree_control",
        "cgroup.threads",
    ] {
        std::os::unix::fs::chown(deleg.join(f), Some(u.uid), Some(u.uid)).unwrap();
    }
    for f in ["", "cgroup.procs"] {
        std::os::unix::fs::chown(launch.join(f), Some(u.uid), Some(u.uid)).unwrap();
    }
    let path = format!("/berth-test-{}/c1", u.name);
    let b = u.bundle("b", |c| {
        c["linux"]["cgroupsPath"] = json!(path);
        c["linux"]["resources"] = json!({"memory": {"limit": 67108864}, "pids": {"limit": 20}});
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "cgroup"}));
        c["process"]["args"] = json!([
            "sh",
            "-c",
            "cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max"
        ]);
    });
    // berth starts inside the delegation, as a user session's processes do
    // (a move between cgroups needs the common ancestor's cgroup.procs).
    u.launch = Some(launch.clone());
    let o = u.berth(&["run", "-b", b.to_str().unwrap(), "d1"]);
    let out = ok(&o);
    assert_eq!(out, "67108864\n20\n");
    assert!(
        !deleg.join("c1").exists(),
        "the container's cgroup is removed"
    );
    drop(u);
    let _ = std::fs::remove_dir(&deleg);
}

/// Under systemd, `--systemd-cgroup` rootless: the user's manager makes the
/// container's scope (over the user bus, in its delegated subtree) with
/// the limits as unit properties; update changes them; delete stops it.
#[test]
fn the_user_manager_takes_the_container() {
    if !common::systemd() {
        return;
    }
    let mut u = User::new("sdu");
    u.start_manager();
    let b = u.bundle("b", |c| {
        c["linux"]["resources"] = json!({"memory": {"limit": 67108864}, "pids": {"limit": 20}});
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "cgroup"}));
        c["process"]["args"] = json!(["sleep", "600"]);
    });
    let st = u
        .cmd(&u.berth)
        .args([
            "--systemd-cgroup",
            "run",
            "-d",
            "-b",
            b.to_str().unwrap(),
            "s1",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    let st: Value = serde_json::from_str(&u.ok(&["state", "s1"])).unwrap();
    let pid = st["pid"].as_i64().unwrap();
    // The default SLICE:PREFIX:NAME rootless is user.slice:berth:ID, in
    // the user manager's tree.
    let scope = format!("/{}/user.slice/berth-s1.scope", u.manager_cgroup());
    let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    assert_eq!(cg.trim(), format!("0::{scope}"));
    let dir = PathBuf::from(format!("/sys/fs/cgroup{scope}"));
    let read = |f: &str| {
        std::fs::read_to_string(dir.join(f))
            .unwrap()
            .trim()
            .to_string()
    };
    assert_eq!(
        (read("memory.max"), read("pids.max")),
        ("67108864".into(), "20".into())
    );
    let show = |p: &str| {
        ok(&u
            .cmd("systemctl")
            .args(["--user", "show", "-p", p, "--value", "berth-s1.scope"])
            .output()
            .unwrap())
    };
    assert_eq!(show("MemoryMax").trim(), "67108864");
    assert_eq!(
        u.ok(&["exec", "s1", "cat", "/sys/fs/cgroup/pids.max"]),
        "20\n"
    );
    u.ok(&["--systemd-cgroup", "update", "--memory", "134217728", "s1"]);
    assert_eq!(read("memory.max"), "134217728");
    assert_eq!(show("MemoryMax").trim(), "134217728");
    u.ok(&["--systemd-cgroup", "delete", "-f", "s1"]);
    assert!(!dir.exists(), "the scope's cgroup is left");
    assert_eq!(show("LoadState").trim(), "not-found", "the scope is left");
}

#[test]
fn images_as_an_unprivileged_user() {
    let u = User::new("img");
    let imgs = common::images();
    let tar = "busybox-docker.tar";
    std::fs::copy(imgs.join(tar), u.home.join(tar)).unwrap();
    for d in ["multi", "bad-dotdot", "bad-hardlink"] {
        ok(&Command::new("cp")
            .arg("-a")
            .arg(imgs.join(d))
            .arg(u.home.join(d))
            .output()
            .unwrap());
    }
    chown_tree(&u.home, u.uid);
    u.ok(&["image", "import", "busybox-docker.tar"]);
    // The store is the user's, under ~/.local/share.
    let store = u.home.join(".local/share/berth");
    assert_eq!(std::fs::metadata(&store).unwrap().uid(), u.uid);
    let out = u.ok(&[
        "image",
        "run",
        "--rm",
        "--network",
        "none",
        "busybox-docker:1",
        "sh",
        "-c",
        "id -u; echo hi > /f && cat /f",
    ]);
    assert_eq!(out, "0\nhi\n");
    if user_xattrs(&u.home) {
        multi_image_as_the_user(&u, &imgs);
    } else {
        // tmpfs before Linux 6.6 (the cgroup v2 VM's /tmp) holds no
        // user.* xattrs: the image's own and the opaque markers cannot be
        // stored, which the import says, naming the entry.
        let o = u.berth(&["image", "import", "multi", "--name", "multi:1"]);
        assert!(
            !o.status.success() && String::from_utf8_lossy(&o.stderr).contains("cannot hold it"),
            "{o:?}"
        );
    }
    // The tar rules hold: hostile layers are refused, nothing escapes.
    for (img, needle) in [
        ("bad-dotdot", "contains '..'"),
        ("bad-hardlink", "is outside the layer"),
    ] {
        let o = u.berth(&["image", "import", img, "--name", "bad:1"]);
        assert!(
            !o.status.success() && String::from_utf8_lossy(&o.stderr).contains(needle),
            "{img}: {o:?}"
        );
    }
    assert!(!u.home.join("escape-dotdot").exists() && !Path::new("/tmp/escape-dotdot").exists());
    // Limits need a delegated cgroup: refused, naming it.
    let o = u.berth(&[
        "image",
        "run",
        "--rm",
        "--network",
        "none",
        "--memory",
        "64m",
        "busybox-docker:1",
        "true",
    ]);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("rootless: no permission"),
        "{o:?}"
    );
    // mount/bundle would outlive their namespace: refused.
    let o = u.berth(&[
        "image",
        "mount",
        "busybox-docker:1",
        u.home.join("m").to_str().unwrap(),
    ]);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("rootless: image mount"),
        "{o:?}"
    );
    // Nothing of it is mounted on the host.
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !info.contains(u.home.to_str().unwrap()),
        "a mount leaked to the host"
    );
}

/// `image run` as the user: slirp4netns by default, a port published on
/// the user's side, a server outside reached, the files for DNS; delete
/// stops slirp4netns. In a network namespace of the test's own.
#[test]
fn images_on_the_user_mode_network() {
    let u = User::new("net");
    let tar = "busybox-docker.tar";
    std::fs::copy(common::images().join(tar), u.home.join(tar)).unwrap();
    chown_tree(&u.home, u.uid);
    u.ok(&["image", "import", tar]);
    let ns = common::Netns::new();
    ok(&ns.sh("ip link add d0 type veth peer name d1 && ip addr add 192.0.2.1/24 dev d0 && ip link set d0 up"));
    let before = ns.state();
    let mut server = Command::new("python3");
    server
        .args([
            "-c",
            "import http.server as h\n\
             class H(h.BaseHTTPRequestHandler):\n\
             \x20def do_GET(s):\n\
             \x20 s.send_response(200); s.end_headers(); s.wfile.write(b'outside')\n\
             h.HTTPServer(('192.0.2.1', 8000), H).serve_forever()",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let server = common::Killed(ns.enter(&mut server).spawn().unwrap());
    // slirp4netns opens /dev/net/tun as the user: udev makes it 0666, a
    // machine without udev (this one) 0600. The user's commands see a
    // 0666 node of the test's, bound over it in a mount namespace of
    // their own; the host's stays as it is.
    let tun = u.home.join("tun");
    nix::sys::stat::mknod(
        &tun,
        nix::sys::stat::SFlag::S_IFCHR,
        nix::sys::stat::Mode::from_bits_truncate(0o666),
        nix::sys::stat::makedev(10, 200),
    )
    .unwrap();
    std::fs::set_permissions(&tun, std::os::unix::fs::PermissionsExt::from_mode(0o666)).unwrap();
    let tun = std::ffi::CString::new(tun.to_str().unwrap()).unwrap();
    let in_ns = |args: &[&str], detached: bool| {
        let mut c = u.cmd(&u.berth);
        c.args(args);
        let tun = tun.clone();
        // SAFETY: only unshare(2) and mount(2) between fork and exec, on
        // C strings made before the fork.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut c, move || {
                let none = std::ptr::null();
                if libc::unshare(libc::CLONE_NEWNS) != 0
                    || libc::mount(
                        none,
                        c"/".as_ptr(),
                        none,
                        libc::MS_REC | libc::MS_PRIVATE,
                        none.cast(),
                    ) != 0
                    || libc::mount(
                        tun.as_ptr(),
                        c"/dev/net/tun".as_ptr(),
                        none,
                        libc::MS_BIND,
                        none.cast(),
                    ) != 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let log = u.home.join("detached.log");
        if detached {
            c.stdout(Stdio::null())
                .stderr(std::fs::File::create(&log).unwrap());
        }
        let mut o = ns.enter(&mut c).output().unwrap();
        if detached {
            o.stderr = std::fs::read(&log).unwrap();
        }
        o
    };
    let o = in_ns(
        &["image", "run", "-d", "--name", "web", "-p", "8080:80", "busybox-docker:1", "sh", "-c",
          "mkdir /www && ip -o -4 addr show tap0 > /www/index.html && exec httpd -f -p 80 -h /www"],
        true,
    );
    assert!(o.status.success(), "{o:?}");
    let mut page = String::new();
    for _ in 0..200 {
        let o = ns.get("http://127.0.0.1:8080/", 2);
        if o.status.success() {
            page = String::from_utf8_lossy(&o.stdout).into_owned();
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    assert!(page.contains("inet 10.0.2.100/"), "{page:?}");
    let out = ok(&in_ns(
        &[
            "image",
            "run",
            "--rm",
            "busybox-docker:1",
            "sh",
            "-c",
            "cat /etc/resolv.conf; wget -q -O- http://192.0.2.1:8000/",
        ],
        false,
    ));
    assert!(
        out.contains("nameserver 10.0.2.3\n") && out.ends_with("outside"),
        "{out}"
    );
    u.ok(&["delete", "--force", "web"]);
    drop(server);
    assert_eq!(
        ns.processes(),
        Vec::<String>::new(),
        "slirp4netns left running"
    );
    assert_eq!(ns.state(), before);
}

/// Whether the filesystem of `dir` takes `user.*` xattrs.
fn user_xattrs(dir: &Path) -> bool {
    let f = dir.join("xattr-probe");
    std::fs::write(&f, b"").unwrap();
    let c = std::ffi::CString::new(f.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: both strings are NUL-terminated and live across the call;
    // the value is a valid 1-byte buffer.
    let r = unsafe {
        libc::setxattr(
            c.as_ptr(),
            c"user.berth-probe".as_ptr(),
            c"1".as_ptr().cast(),
            1,
            0,
        )
    };
    std::fs::remove_file(&f).unwrap();
    r == 0
}

/// The user's import and unpack of the multi-layer image, compared with
/// root's: ownership through the subordinate ids (image uid 0 is the
/// user, 1000 is sub + 999), whiteouts and opaque directories unprivileged.
fn multi_image_as_the_user(u: &User, imgs: &Path) {
    u.ok(&["image", "import", "multi", "--name", "multi:1"]);
    let flat = u.home.join("flat");
    u.ok(&["image", "unpack", "multi:1", flat.to_str().unwrap()]);
    let owned = std::fs::metadata(flat.join("owned")).unwrap();
    assert_eq!((owned.uid(), owned.gid()), (u.sub + 999, u.sub + 1999));
    assert_eq!(
        std::fs::metadata(flat.join("etc/hostname")).unwrap().uid(),
        u.uid
    );
    assert!(!flat.join("gone.txt").exists() && !flat.join("gonedir").exists());
    // The opaque directory shows only what its own layer put there.
    let root_flat = u.home.join("root-flat");
    let st = u.home.join("root-store");
    for args in [
        vec![
            "--store",
            st.to_str().unwrap(),
            "import",
            imgs.join("multi").to_str().unwrap(),
            "--name",
            "multi:1",
        ],
        vec![
            "--store",
            st.to_str().unwrap(),
            "unpack",
            "multi:1",
            root_flat.to_str().unwrap(),
        ],
    ] {
        ok(&Command::new(common::berth_bin())
            .arg("image")
            .args(&args)
            .output()
            .unwrap());
    }
    let names = |d: &Path| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    assert_eq!(names(&flat.join("opq")), names(&root_flat.join("opq")));
    assert_eq!(names(&flat), names(&root_flat));
    // Device nodes no user namespace can make are left out (as podman
    // leaves them out rootless); root's unpack has them.
    assert!(names(&flat.join("dev")).is_empty() && !names(&root_flat.join("dev")).is_empty());
}

/// podman as the user (rootless, `--runtime`), the client checks of
/// tests/clients/podman.sh: every check that passes with runc rootless
/// must pass with berth.
#[test]
fn rootless_podman_runs_berth_like_runc() {
    let mut u = User::new("pod");
    // Under systemd, as on a systemd host's login: the user's manager,
    // podman's systemd cgroup manager (--systemd-cgroup to the runtime).
    let systemd = common::systemd();
    if systemd {
        u.start_manager();
    }
    std::fs::copy(
        common::images().join("busybox-docker.tar"),
        u.home.join("bb.tar"),
    )
    .unwrap();
    let scripts = u.home.join("clients");
    ok(&Command::new("cp")
        .arg("-a")
        .arg(common::repo().join("tests/clients"))
        .arg(&scripts)
        .output()
        .unwrap());
    std::fs::copy(common::runc(), u.home.join("runc")).unwrap();
    chown_tree(&u.home, u.uid);
    let mut passed = Vec::new();
    let mut runtimes = vec![u.berth.clone()];
    if common::with_reference() {
        runtimes.insert(0, u.home.join("runc"));
    }
    for rt in runtimes {
        let mut c = u.cmd("env");
        if systemd {
            c.arg("CLIENT_SYSTEMD=1");
        }
        c.arg("bash")
            .arg(scripts.join("podman.sh"))
            .arg(&rt)
            .arg(u.home.join("bb.tar"));
        let o = c.output().unwrap();
        let text = String::from_utf8_lossy(&o.stdout).into_owned();
        print!("{text}{}", String::from_utf8_lossy(&o.stderr));
        let ok: Vec<String> = text
            .lines()
            .filter_map(|l| l.strip_prefix("ok   "))
            .map(|l| l.split_once(": ").map_or(l, |x| x.1).to_string())
            .collect();
        if !common::with_reference() {
            // berth alone (the systemd VM): every check passes.
            assert!(
                o.status.success() && ok.len() >= 10,
                "berth fails rootless podman's checks"
            );
            return;
        }
        passed.push(ok);
    }
    assert!(
        passed[0].len() >= 10,
        "runc rootless passes too few checks: {:?}",
        passed[0]
    );
    let missing: Vec<&String> = passed[0]
        .iter()
        .filter(|c| !passed[1].contains(c))
        .collect();
    assert!(
        missing.is_empty(),
        "berth fails what runc passes rootless: {missing:?}"
    );
}
