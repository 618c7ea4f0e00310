//! Terminals: the foreground relay of `run` and `exec -t`.

use crate::common::*;
use serde_json::json;

#[test]
fn run_terminal_relay() {
    let t = T::new("tty");
    let mut c = t.config(&["sh", "-c", "tty; stty size; read x; echo got:$x; exit 5"]);
    c["process"]["terminal"] = json!(true);
    t.write_config(&c);
    let (out, code, term) = t.on_pty(&["run", &t.id("t")], b"hello\r");
    assert_eq!(code, 5, "{out}");
    assert!(out.contains("/dev/pts/0"), "{out}");
    assert!(out.contains("30 100"), "window size: {out}");
    assert!(out.contains("got:hello"), "{out}");
    // The caller's terminal left raw mode again.
    use nix::sys::termios::LocalFlags;
    assert!(term
        .local_flags
        .contains(LocalFlags::ECHO | LocalFlags::ICANON));
}

#[test]
fn exec_with_a_terminal() {
    let t = T::new("exectty");
    let (id, _) = t.sleeper("c", t.config(&["true"]));
    let (o, code, _) = t.on_pty(
        &[
            "exec",
            "-t",
            &id,
            "sh",
            "-c",
            "tty; read x; echo got:$x; exit 4",
        ],
        b"yo\r",
    );
    assert_eq!(code, 4, "{o}");
    assert!(o.contains("/dev/pts/") && o.contains("got:yo"), "{o}");
    t.ok(&["delete", "-f", &id]);
}

/// The pty of a non-root process is its own (its uid; the group stays
/// devpts's tty group), for the container's init and for `exec -t`, as
/// runc chowns it: without that, the user cannot reopen its own terminal.
#[test]
fn the_pty_belongs_to_the_process_user() {
    let t = T::new("ttyowner");
    let mut c = t.config(&["sh", "-c", "stat -c %u:%g $(tty); exit 0"]);
    c["process"]["terminal"] = json!(true);
    c["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    t.write_config(&c);
    let (out, code, _) = t.on_pty(&["run", &t.id("t")], b"");
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("1000:5"), "{out}");
    let (id, _) = t.sleeper("c", t.config(&["true"]));
    let (out, code, _) = t.on_pty(
        &[
            "exec",
            "-t",
            "-u",
            "1001:1001",
            &id,
            "sh",
            "-c",
            "stat -c %u:%g $(tty)",
        ],
        b"",
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("1001:5"), "{out}");
    t.ok(&["delete", "-f", &id]);
}

/// Receives a pty master over a console socket (as runc's recvtty does)
/// and reads what the container writes to it; returns (the message that
/// came with the fd, the output).
fn console_socket_client(sock: &std::path::Path) -> std::thread::JoinHandle<(Vec<u8>, Vec<u8>)> {
    use std::os::fd::FromRawFd;
    let listener = std::os::unix::net::UnixListener::bind(sock).unwrap();
    std::thread::spawn(move || {
        let (conn, _) = listener.accept().unwrap();
        let (msg, fd) = recv_fd(&conn);
        assert!(fd >= 0, "no fd came");
        // SAFETY: the fd just received is ours alone.
        let mut master = unsafe { std::fs::File::from_raw_fd(fd) };
        let mut out = Vec::new();
        let end = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let mut chunk = [0u8; 4096];
        while std::time::Instant::now() < end {
            match std::io::Read::read(&mut master, &mut chunk) {
                Ok(0) | Err(_) => break, // EIO once the container's side is gone
                Ok(k) => out.extend_from_slice(&chunk[..k]),
            }
        }
        (msg, out)
    })
}

/// process.consoleSize sizes the pty from the start; the console socket
/// gets the master with its name, /dev/ptmx (as runc sends it), and the client
/// reads exactly what the container wrote, nothing before it. runc, where
/// installed, is run the same way with the same client and must match.
/// A console socket is only for a detached terminal process, as in runc.
#[test]
fn console_size_and_what_the_console_socket_gets() {
    let t = T::new("consolesize");
    let mut c = t.config(&["sh", "-c", "stty size; tty"]);
    c["process"]["terminal"] = json!(true);
    c["process"]["consoleSize"] = json!({"height": 24, "width": 77});
    t.write_config(&c);
    let mut runtimes = vec!["berth"];
    if with_reference() {
        runtimes.push("runc");
    }
    for who in runtimes {
        let cmd = |args: &[&str]| {
            if who == "runc" {
                t.runc(args)
            } else {
                t.berth(args)
            }
        };
        let bundle = t.bundle.to_str().unwrap();
        let run = |extra: &[&str], id: &str, sock: &std::path::Path| {
            let sock = sock.to_str().unwrap();
            cmd(&[
                &["run"],
                extra,
                &["--console-socket", sock, "-b", bundle, id],
            ]
            .concat())
        };
        // In the foreground a console socket is refused.
        let o = run(&[], &t.id("fg"), &t.dir.join("none.sock"));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{who}: {o:?}");
        assert!(
            err.contains("cannot use console socket if")
                && err.contains("will not detach or allocate tty"),
            "{who}: {err}"
        );
        let sock = t.dir.join(format!("{who}.sock"));
        let client = console_socket_client(&sock);
        let id = t.id(who);
        let o = run(&["-d"], &id, &sock);
        assert!(o.status.success(), "{who}: {o:?}");
        let (msg, out) = client.join().unwrap();
        let out = String::from_utf8_lossy(&out).into_owned();
        assert!(out.starts_with("24 77"), "{who}: {out:?}");
        // The master's own name, as runc sends it; no NUL.
        assert_eq!(
            msg,
            b"/dev/ptmx",
            "{who}: {:?}",
            String::from_utf8_lossy(&msg)
        );
        assert!(
            cmd(&["delete", "-f", &id]).status.success(),
            "{who}: delete"
        );
    }
}
