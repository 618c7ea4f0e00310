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
