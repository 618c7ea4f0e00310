//! CRIU, driven as runc drives it: `criu swrk 3` started with one end of a
//! `SOCK_SEQPACKET` socketpair as its fd 3, one request (`criu_req`) sent,
//! then its notifications (`criu_resp` of type NOTIFY, answered with
//! `notify_success`) until the response to the request. The messages are
//! CRIU's own protobuf definitions (`rpc.proto`, shipped in
//! /usr/include/criu), encoded by `wire.rs`: only the fields berth sets or
//! reads, without a protobuf crate or generated code (see
//! docs/compatibility.md).

mod wire;

use crate::error::{Error, Result};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use wire::{fields, Enc};

/// Request types (`criu_req_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ReqType {
    Dump = 1,
    Restore = 2,
    PreDump = 4,
    Notify = 6,
}

impl ReqType {
    fn name(n: i64) -> String {
        match n {
            0 => "EMPTY".into(),
            1 => "DUMP".into(),
            2 => "RESTORE".into(),
            3 => "CHECK".into(),
            4 => "PRE_DUMP".into(),
            5 => "PAGE_SERVER".into(),
            6 => "NOTIFY".into(),
            9 => "FEATURE_CHECK".into(),
            10 => "VERSION".into(),
            n => n.to_string(),
        }
    }
}

/// `criu_cg_mode`, from `--manage-cgroups-mode`.
pub fn cg_mode(s: &str) -> Result<u32> {
    Ok(match s {
        "" => 6, // DEFAULT (soft)
        "soft" => 3,
        "full" => 4,
        "strict" => 5,
        "ignore" => 0,
        _ => return Err(Error::Other("Invalid manage-cgroups-mode value".into())),
    })
}

/// The `criu_opts` berth sets. Paths are as CRIU sees them (the caller's
/// mount namespace); fds are the caller's (CRIU opens
/// /proc/CALLER/fd/N), except `inherit_fd` fds, which are CRIU's own.
#[derive(Default)]
pub(crate) struct Opts {
    pub images_dir_fd: RawFd,
    pub work_dir_fd: Option<RawFd>,
    pub pid: Option<i32>,
    pub log_file: &'static str,
    pub root: Option<PathBuf>,
    pub leave_running: bool,
    pub ext_unix_sk: bool,
    pub tcp_established: bool,
    pub evasive_devices: bool,
    pub shell_job: bool,
    pub file_locks: bool,
    pub page_server: Option<(String, i32)>,
    pub parent_img: Option<String>,
    pub track_mem: bool,
    pub auto_dedup: bool,
    pub rst_sibling: bool,
    /// (mount point in the container, what it maps to).
    pub ext_mnt: Vec<(String, String)>,
    /// (controller, path).
    pub cg_root: Vec<(String, String)>,
    /// (key, CRIU's fd).
    pub inherit_fd: Vec<(String, i32)>,
    pub manage_cgroups_mode: u32,
    pub external: Vec<String>,
    pub empty_ns: u32,
    /// (namespace, file).
    pub join_ns: Vec<(String, String)>,
    pub freeze_cgroup: Option<PathBuf>,
    pub lazy_pages: bool,
    pub status_fd: Option<i32>,
    pub config_file: Option<String>,
}

impl Opts {
    fn encode(&self) -> Enc {
        let mut m = Enc::default();
        m.int(1, self.images_dir_fd.into());
        if let Some(p) = self.pid {
            m.int(2, p.into());
        }
        m.flag(3, self.leave_running)
            .flag(4, self.ext_unix_sk)
            .flag(5, self.tcp_established)
            .flag(6, self.evasive_devices)
            .flag(7, self.shell_job)
            .flag(8, self.file_locks)
            .int(9, 4)
            .str(10, self.log_file);
        if let Some((addr, port)) = &self.page_server {
            let mut ps = Enc::default();
            ps.str(1, addr).int(2, (*port).into());
            m.msg(11, &ps);
        }
        m.bool(12, true); // notify_scripts
        if let Some(r) = &self.root {
            m.str(13, &r.to_string_lossy());
        }
        if let Some(p) = &self.parent_img {
            m.str(14, p);
        }
        m.flag(15, self.track_mem).flag(16, self.auto_dedup);
        if let Some(fd) = self.work_dir_fd {
            m.int(17, fd.into());
        }
        for (k, v) in &self.ext_mnt {
            let mut e = Enc::default();
            e.str(1, k).str(2, v);
            m.msg(23, &e);
        }
        m.bool(24, true); // manage_cgroups
        for (ctrl, path) in &self.cg_root {
            let mut e = Enc::default();
            e.str(1, ctrl).str(2, path);
            m.msg(25, &e);
        }
        m.flag(26, self.rst_sibling);
        for (k, fd) in &self.inherit_fd {
            let mut e = Enc::default();
            e.str(1, k).int(2, (*fd).into());
            m.msg(27, &e);
        }
        m.int(34, self.manage_cgroups_mode.into());
        for x in &self.external {
            m.str(37, x);
        }
        m.int(38, self.empty_ns.into());
        for (ns, file) in &self.join_ns {
            let mut e = Enc::default();
            e.str(1, ns).str(2, file);
            m.msg(39, &e);
        }
        if let Some(f) = &self.freeze_cgroup {
            m.str(44, &f.to_string_lossy());
        }
        m.flag(48, self.lazy_pages);
        if let Some(fd) = self.status_fd {
            m.int(49, fd.into());
        }
        m.bool(50, true); // orphan_pts_master
        if let Some(c) = &self.config_file {
            m.str(51, c);
        }
        m
    }
}

/// A notification (`criu_notify`): the script name and a pid.
pub(crate) struct Notify {
    pub script: String,
    pub pid: i32,
    /// The fd that came with it (the pty master of `orphan-pts-master`).
    pub fd: Option<OwnedFd>,
}

/// What the final response carried.
pub(crate) struct Done {
    /// The restored init (RESTORE).
    pub restored_pid: Option<i32>,
}

/// One `criu swrk` process and its socket.
pub(crate) struct Swrk {
    sock: UnixDatagram,
    child: std::process::Child,
}

/// Where `criu` is: $PATH, as runc looks it up.
pub fn find() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("criu"))
        .find(|p| p.is_file())
}

impl Swrk {
    /// Starts `criu swrk 3`: stdio as given (restore passes the container's
    /// stdio, which CRIU hands to the restored tasks), the socket as fd 3
    /// and `extra` as fds 4, 5, ...
    pub fn start(extra: &[RawFd], stdio: [Option<OwnedFd>; 3]) -> Result<Swrk> {
        use std::os::unix::process::CommandExt;
        use std::process::Stdio;
        let criu = find().ok_or_else(|| {
            Error::Other(
                "CRIU version check failed: exec: \"criu\": executable file not found in $PATH (install the criu package)"
                    .into(),
            )
        })?;
        let (ours, theirs) = nix::sys::socket::socketpair(
            nix::sys::socket::AddressFamily::Unix,
            nix::sys::socket::SockType::SeqPacket,
            None,
            nix::sys::socket::SockFlag::SOCK_CLOEXEC,
        )
        .map_err(|e| Error::sys("socketpair for criu", e))?;
        let mut cmd = std::process::Command::new(&criu);
        cmd.args(["swrk", "3"]);
        let [i, o, e] = stdio;
        let io = |f: Option<OwnedFd>| f.map_or_else(Stdio::inherit, Stdio::from);
        cmd.stdin(io(i)).stdout(io(o)).stderr(io(e));
        let raw = theirs.as_raw_fd();
        let extra = extra.to_vec();
        // SAFETY: between fork and exec the closure only calls dup2(2) and
        // fcntl(2), which are async-signal-safe, on fds that stay open in
        // the parent until spawn returns.
        unsafe {
            cmd.pre_exec(move || {
                let fds = std::iter::once(raw).chain(extra.iter().copied());
                // Move every source above the targets first, so that a
                // source is not overwritten by an earlier dup2.
                let high: Vec<RawFd> = fds
                    .map(|f| libc::fcntl(f, libc::F_DUPFD_CLOEXEC, 100))
                    .collect();
                for (n, f) in high.iter().enumerate() {
                    if *f < 0 || libc::dup2(*f, 3 + n as RawFd) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .map_err(|e| Error::io("cannot start", criu.clone(), e))?;
        drop(theirs);
        Ok(Swrk {
            sock: UnixDatagram::from(ours),
            child,
        })
    }

    /// Kills CRIU before it was sent anything, and reaps it.
    pub fn abort(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Sends the request and answers its notifications with `notify` until
    /// the response; waits for CRIU to exit (a successful pre-dump's CRIU
    /// is left to end on its own). On failure the error is runc's
    /// "criu failed: type T errno N" and the lines of `log` that hold
    /// "Error" (CRIU's own reason).
    pub fn call(
        mut self,
        kind: ReqType,
        opts: &Opts,
        log: &Path,
        mut notify: impl FnMut(Notify) -> Result<()>,
    ) -> Result<Done> {
        let mut req = Enc::default();
        req.int(1, kind as i64).msg(2, &opts.encode());
        let failed = |what: String| Error::Criu {
            what,
            log: log_errors(log),
        };
        let flags = Cgroup2Flags::read();
        let mut sent = self.sock.send(&req.0);
        let mut buf = vec![0u8; 64 * 1024];
        let result = loop {
            if let Err(e) = sent {
                break Err(failed(format!("cannot send to criu: {e}")));
            }
            let (n, fd) = match crate::process::channel::recv_with_fd(&self.sock, &mut buf) {
                Ok(r) => r,
                Err(e) => break Err(failed(format!("cannot read from criu: {e}"))),
            };
            if n == 0 {
                break Err(failed("criu failed: unexpected EOF".into()));
            }
            let Some(f) = fields(&buf[..n]) else {
                break Err(failed("criu sent a malformed response".into()));
            };
            let get = |k: u32| f.iter().find(|(n, _)| *n == k).map(|(_, v)| v);
            let t = get(1).map_or(0, |v| v.int());
            if get(2).map_or(0, |v| v.int()) == 0 {
                let errno = get(7).map_or(0, |v| v.int());
                let mut what = format!("criu failed: type {} errno {errno}", ReqType::name(t));
                if let Some(m) = get(9).map(|v| v.string()).filter(|m| !m.is_empty()) {
                    what = format!("{what}: {m}");
                }
                break Err(failed(what));
            }
            if t == ReqType::Notify as i64 {
                let nf = get(5).and_then(|v| fields(v.bytes())).unwrap_or_default();
                let nget = |k: u32| nf.iter().find(|(n, _)| *n == k).map(|(_, v)| v);
                let n = Notify {
                    script: nget(1).map(|v| v.string()).unwrap_or_default(),
                    pid: nget(2).map_or(0, |v| v.int() as i32),
                    fd,
                };
                if let Err(e) = notify(n) {
                    break Err(e);
                }
                let mut ok = Enc::default();
                ok.int(1, ReqType::Notify as i64).bool(3, true);
                sent = self.sock.send(&ok.0);
                continue;
            }
            if t != kind as i64 {
                break Err(failed(format!(
                    "unable to parse the response of criu: type {}",
                    ReqType::name(t)
                )));
            }
            let restored_pid = get(4)
                .and_then(|v| fields(v.bytes()))
                .and_then(|r| r.iter().find(|(n, _)| *n == 1).map(|(_, v)| v.int() as i32));
            break Ok(Done { restored_pid });
        };
        let _ =
            nix::sys::socket::shutdown(self.sock.as_raw_fd(), nix::sys::socket::Shutdown::Write);
        // A pre-dump's CRIU waits for a dump that will not come and ends
        // with an error once the socket closes: its status does not count.
        let status = self.child.wait();
        if let Some(f) = flags {
            f.put_back();
        }
        match (result, status) {
            (Ok(d), Ok(s)) if s.success() || kind == ReqType::PreDump => Ok(d),
            (Ok(_), Ok(s)) => Err(failed(format!("criu failed: {s}"))),
            (Ok(_), Err(e)) => Err(failed(format!("criu: {e}"))),
            (Err(e), _) => Err(e),
        }
    }
}

/// The cgroup2 hierarchy's root flags (`nsdelegate`,
/// `memory_recursiveprot`, ...), which are the superblock's: CRIU mounts
/// cgroup2 without options in its cgroup yard, and a cgroup2 mount made in
/// the initial cgroup namespace resets them host-wide. berth reads them
/// before a request and puts them back after it (runc leaves them reset).
struct Cgroup2Flags {
    mount_point: PathBuf,
    flags: Vec<String>,
}

impl Cgroup2Flags {
    const KNOWN: [&'static str; 5] = [
        "nsdelegate",
        "memory_recursiveprot",
        "memory_localevents",
        "favordynmods",
        "memory_hugetlb_accounting",
    ];

    fn read() -> Option<Cgroup2Flags> {
        let text = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
        text.lines().find_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            let mut r = right.split(' ');
            if r.next()? != "cgroup2" {
                return None;
            }
            let opts = r.nth(1)?;
            Some(Cgroup2Flags {
                mount_point: PathBuf::from(left.split(' ').nth(4)?),
                flags: opts
                    .split(',')
                    .filter(|o| Self::KNOWN.contains(o))
                    .map(String::from)
                    .collect(),
            })
        })
    }

    fn put_back(self) {
        let now = Self::read().map(|f| f.flags).unwrap_or_default();
        if self.flags.is_empty() || now == self.flags {
            return;
        }
        let r = nix::mount::mount(
            None::<&str>,
            &self.mount_point,
            None::<&str>,
            nix::mount::MsFlags::MS_REMOUNT,
            Some(self.flags.join(",").as_str()),
        );
        if let Err(e) = r {
            crate::error::warn(&format!(
                "criu reset the cgroup2 flags of {} and they could not be put back ({}): {e}",
                self.mount_point.display(),
                self.flags.join(",")
            ));
        }
    }
}

/// The lines of CRIU's log that hold "Error", each with its line number
/// (what runc quotes), at most the last 8.
fn log_errors(log: &Path) -> String {
    let Ok(text) = std::fs::read_to_string(log) else {
        return String::new();
    };
    let lines: Vec<String> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| l.contains("Error"))
        .map(|(n, l)| format!("{}:{l}", n + 1))
        .collect();
    let skip = lines.len().saturating_sub(8);
    let mut out = format!("--- Quoting {:?}", log.display().to_string());
    for l in &lines[skip..] {
        out.push('\n');
        out.push_str(l);
    }
    if lines.is_empty() {
        out.push_str(" (no Error line)");
    }
    out
}
