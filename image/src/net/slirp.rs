//! `--network slirp4netns` (the rootless default): a user-mode TCP/IP
//! stack, slirp4netns, gives the container's namespace a tap device with
//! 10.0.2.100, a gateway (10.0.2.2) and a DNS forwarder (10.0.2.3), and
//! publishes ports through its API socket. It needs no privilege, which is
//! why rootless podman uses it too (pasta, the other choice, is not in
//! Debian 12). One slirp4netns per container, started by the createRuntime
//! hook, stopped by the poststop hook.

use super::container::Attachment;
use super::netavark::find;
use crate::error::{Error, Result};
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub const ADDR: std::net::Ipv4Addr = std::net::Ipv4Addr::new(10, 0, 2, 100);
pub const GATEWAY: std::net::Ipv4Addr = std::net::Ipv4Addr::new(10, 0, 2, 2);
pub const DNS: std::net::Ipv4Addr = std::net::Ipv4Addr::new(10, 0, 2, 3);

fn file(a: &Attachment, ext: &str) -> PathBuf {
    a.run.join("slirp").join(format!("{}.{ext}", a.id))
}

pub fn check() -> Result<()> {
    find("slirp4netns", "slirp4netns").map(|_| ())
}

/// Starts slirp4netns for the namespace of `pid`, waits until it has
/// configured the tap device, and publishes the ports.
pub fn start(a: &Attachment, pid: i32) -> Result<()> {
    let bin = find("slirp4netns", "slirp4netns")?;
    let dir = a.run.join("slirp");
    std::fs::create_dir_all(&dir).map_err(|e| Error::io("cannot create", &dir, e))?;
    let (sock, log) = (file(a, "sock"), file(a, "log"));
    let _ = std::fs::remove_file(&sock);
    let logf = std::fs::File::create(&log).map_err(|e| Error::io("cannot create", &log, e))?;
    let (ready_r, ready_w) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| Error::sys("pipe2", e))?;
    let w = ready_w.as_raw_fd();
    let mut c = Command::new(&bin);
    c.args([
        "--configure",
        "--mtu=65520",
        "--disable-host-loopback",
        "--ready-fd=3",
    ])
    .arg(format!("--api-socket={}", sock.display()))
    .arg(pid.to_string())
    .arg("tap0")
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(logf);
    // SAFETY: between fork and exec only async-signal-safe calls: setsid
    // (it outlives the hook, in a session of its own) and dup2 of the
    // ready pipe's write end to fd 3 (not close-on-exec there).
    unsafe {
        c.pre_exec(move || {
            libc::setsid();
            if libc::dup2(w, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = c
        .spawn()
        .map_err(|e| Error::io("cannot run", bin.clone(), e))?;
    drop(ready_w);
    let pidfile = file(a, "pid");
    std::fs::write(&pidfile, child.id().to_string())
        .map_err(|e| Error::io("cannot write", &pidfile, e))?;
    let mut got = [0u8; 1];
    let ready = std::fs::File::from(ready_r).read(&mut got).unwrap_or(0) == 1;
    if !ready {
        let why = std::fs::read_to_string(&log).unwrap_or_default();
        stop(a);
        let why: Vec<&str> = why.lines().filter(|l| !l.trim().is_empty()).collect();
        return Err(Error::Other(format!(
            "slirp4netns: {}",
            if why.is_empty() {
                "exited before it was ready".to_string()
            } else {
                why.join("; ")
            }
        )));
    }
    for m in &a.ports {
        for i in 0..m.range {
            let ip = if m.host_ip.is_empty() {
                "0.0.0.0"
            } else {
                &m.host_ip
            };
            let req = serde_json::json!({"execute": "add_hostfwd", "arguments": {
                "proto": m.protocol, "host_addr": ip,
                "host_port": m.host_port + i, "guest_port": m.container_port + i}});
            if let Err(e) = api(&sock, &req) {
                stop(a);
                return Err(Error::Other(format!(
                    "publishing {}/{} on {ip}:{}: {e}",
                    m.container_port + i,
                    m.protocol,
                    m.host_port + i
                )));
            }
        }
    }
    Ok(())
}

/// One request to slirp4netns's API socket; its `error` if it has one.
fn api(sock: &Path, req: &serde_json::Value) -> std::result::Result<(), String> {
    let mut s = std::os::unix::net::UnixStream::connect(sock).map_err(|e| e.to_string())?;
    s.write_all(req.to_string().as_bytes())
        .map_err(|e| e.to_string())?;
    let _ = s.shutdown(std::net::Shutdown::Write);
    let mut out = String::new();
    s.read_to_string(&mut out).map_err(|e| e.to_string())?;
    let v: serde_json::Value = serde_json::from_str(&out).map_err(|_| out.clone())?;
    match v.get("error") {
        Some(e) => Err(e["desc"]
            .as_str()
            .map_or_else(|| e.to_string(), str::to_string)),
        None => Ok(()),
    }
}

/// Stops the container's slirp4netns (only the process this attachment
/// started: its command line names the attachment's API socket) and
/// removes its files.
pub fn stop(a: &Attachment) {
    let pidfile = file(a, "pid");
    if let Some(pid) = std::fs::read_to_string(&pidfile)
        .ok()
        .and_then(|p| p.trim().parse::<i32>().ok())
    {
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let sock = format!("--api-socket={}", file(a, "sock").display());
        if String::from_utf8_lossy(&cmd).split('\0').any(|x| x == sock) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
    for ext in ["pid", "sock", "log"] {
        let _ = std::fs::remove_file(file(a, ext));
    }
    let _ = std::fs::remove_dir(a.run.join("slirp"));
}
