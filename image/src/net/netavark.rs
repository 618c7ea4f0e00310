//! netavark and aardvark-dns: where they are, calling them, and the base
//! firewall chains netavark leaves once its last container is gone.

use crate::error::{Error, Result};
use std::ffi::OsStr;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// Where distributions install podman's helpers.
const DIRS: [&str; 4] = [
    "/usr/libexec/podman",
    "/usr/lib/podman",
    "/usr/local/libexec/podman",
    "/usr/local/lib/podman",
];

/// A PATH for netavark (it runs iptables), when the hook's environment
/// has none.
const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// `BERTH_NETAVARK` (a path), else the first of [`DIRS`] holding `name`,
/// else `name` in PATH.
pub(super) fn find(name: &str, package: &str) -> Result<PathBuf> {
    let missing = |wh: &str| {
        Error::Other(format!(
            "{name} not found in {wh}: install the {package} package (or use --network none or host)"
        ))
    };
    if let Some(p) = std::env::var_os("BERTH_NETAVARK").filter(|_| name == "netavark") {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(missing(&format!("{} (BERTH_NETAVARK)", p.display())))
        };
    }
    let path = std::env::var("PATH").unwrap_or_else(|_| PATH.to_string());
    DIRS.iter()
        .map(|d| Path::new(d).join(name))
        .chain(path.split(':').map(|d| Path::new(d).join(name)))
        .find(|p| p.is_file())
        .ok_or_else(|| missing(&format!("{} or PATH", DIRS.join(", "))))
}

/// Checks that the stack is installed, before anything is made.
pub fn check(dns: bool) -> Result<()> {
    find("netavark", "netavark")?;
    if dns {
        aardvark()?;
    }
    Ok(())
}

fn aardvark() -> Result<PathBuf> {
    let nv = find("netavark", "netavark")?;
    let beside = nv.with_file_name("aardvark-dns");
    if beside.is_file() {
        return Ok(beside);
    }
    find("aardvark-dns", "aardvark-dns")
}

/// `prog`, with [`PATH`] when the caller's environment has none (a
/// hook's): netavark runs iptables, and so does berth.
fn command(prog: impl AsRef<OsStr>) -> Command {
    let mut c = Command::new(prog);
    if std::env::var_os("PATH").is_none() {
        c.env("PATH", PATH);
    }
    c
}

/// Runs `c` with `input` on its stdin; what it printed.
fn run_with_input(mut c: Command, input: &[u8]) -> std::io::Result<Output> {
    let mut child = c
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    if let Some(mut i) = child.stdin.take() {
        let _ = i.write_all(input);
    }
    child.wait_with_output()
}

/// `netavark --config RUN setup|teardown NETNS` with `options` on stdin.
pub fn call(verb: &str, run: &Path, netns: &Path, options: &serde_json::Value) -> Result<()> {
    let nv = find("netavark", "netavark")?;
    let mut c = command(&nv);
    c.arg("--config").arg(run);
    if let Ok(a) = aardvark() {
        c.arg("--aardvark-binary").arg(a);
    }
    c.arg(verb).arg(netns);
    let out = run_with_input(c, options.to_string().as_bytes())
        .map_err(|e| Error::io("cannot run", nv.clone(), e))?;
    if out.status.success() {
        return Ok(());
    }
    // netavark reports {"error": "..."}.
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let msg = text
        .lines()
        .find_map(|l| {
            serde_json::from_str::<serde_json::Value>(l)
                .ok()
                .and_then(|v| v["error"].as_str().map(str::to_string))
        })
        .unwrap_or_else(|| text.trim().to_string());
    Err(Error::Other(format!("netavark {verb}: {msg}")))
}

/// The rules netavark 1.4 adds once and never removes: the jumps into its
/// chains and the chains themselves, by table.
const BASE: [(&str, &[&str], &[&str]); 2] = [
    (
        "filter",
        &["-D FORWARD -m comment --comment \"netavark firewall plugin rules\" -j NETAVARK_FORWARD"],
        &["NETAVARK_FORWARD"],
    ),
    (
        "nat",
        &[
            "-D PREROUTING -m addrtype --dst-type LOCAL -j NETAVARK-HOSTPORT-DNAT",
            "-D OUTPUT -m addrtype --dst-type LOCAL -j NETAVARK-HOSTPORT-DNAT",
            "-D POSTROUTING -j NETAVARK-HOSTPORT-MASQ",
        ],
        &[
            "NETAVARK-HOSTPORT-DNAT",
            "NETAVARK-HOSTPORT-MASQ",
            "NETAVARK-HOSTPORT-SETMARK",
        ],
    ),
];

/// Removes netavark's base chains and the jumps into them when no
/// container uses them any more: no rule of a network (a chain other than
/// the base ones) and no port forward. podman containers on the same
/// host use them too, so they go only when all of netavark's chains are
/// otherwise empty.
pub fn prune_firewall() {
    let Ok(out) = command("iptables-save").stderr(Stdio::null()).output() else {
        return;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let base: Vec<&str> = BASE.iter().flat_map(|b| b.2.iter().copied()).collect();
    let mut present = Vec::new();
    for l in text.lines() {
        if let Some(c) = l
            .strip_prefix(':')
            .and_then(|c| c.split_whitespace().next())
        {
            if c.starts_with("NETAVARK") {
                if !base.contains(&c) {
                    return; // a network's own chain: still in use
                }
                present.push(c.to_string());
            }
        }
        if l.starts_with("-A NETAVARK-HOSTPORT-DNAT") || l.starts_with("-A NETAVARK_FORWARD") {
            return; // a port forward or a network's forwarding rule
        }
    }
    if present.is_empty() {
        return;
    }
    let mut script = String::new();
    for (table, rules, chains) in BASE {
        script.push_str(&format!("*{table}\n"));
        for r in rules {
            let target = r.rsplit(' ').next().unwrap_or("");
            if present.iter().any(|p| p == target) && text.contains(&r.replacen("-D", "-A", 1)) {
                script.push_str(r);
                script.push('\n');
            }
        }
        for c in chains.iter().filter(|c| present.iter().any(|p| p == *c)) {
            script.push_str(&format!("-F {c}\n-X {c}\n"));
        }
        script.push_str("COMMIT\n");
    }
    let mut restore = command("iptables-restore");
    restore.arg("--noflush");
    let _ = run_with_input(restore, script.as_bytes());
}
