//! The processes of a container's cgroup and its end: listing them (sub-
//! cgroups included), the freezer's word, killing them all, and removing
//! the directories berth made.

use crate::error::{Error, Result};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

/// Pids in the container's cgroup (every hierarchy holds the same ones).
/// Sub-cgroups included (`exec --cgroup` targets, or those a program in
/// the container made), as runc counts them.
pub fn procs(leaves: &[PathBuf]) -> Vec<i32> {
    let Some(leaf) = leaves.iter().find(|d| d.join("cgroup.procs").exists()) else {
        return Vec::new();
    };
    let mut dirs = below(leaf);
    dirs.push(leaf.clone());
    dirs.iter()
        .filter_map(|d| std::fs::read_to_string(d.join("cgroup.procs")).ok())
        .flat_map(|s| {
            s.lines()
                .filter_map(|l| l.trim().parse().ok())
                .collect::<Vec<i32>>()
        })
        .collect()
}

/// The cgroup directories below `dir`, deepest first.
fn below(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                let p = e.path();
                out.extend(below(&p));
                out.push(p);
            }
        }
    }
    out
}

/// Whether the freezer file recorded at create says frozen.
pub fn frozen(freezer: Option<&Path>) -> bool {
    freezer
        .and_then(|f| std::fs::read_to_string(f).ok())
        .is_some_and(|s| matches!(s.trim(), "FROZEN" | "1"))
}

/// SIGKILLs every process in the container's cgroup and waits (up to about
/// a second) until it is empty. These processes are the container's: berth
/// started them.
pub fn kill_all(leaves: &[PathBuf]) {
    for _ in 0..200 {
        let pids = procs(leaves);
        if pids.is_empty() {
            return;
        }
        for p in pids {
            let _ =
                nix::sys::signal::kill(nix::unistd::Pid::from_raw(p), nix::sys::signal::SIGKILL);
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// Removes the directories berth created, leaf first (retrying while the
/// last processes leave). Idempotent: missing directories are fine.
pub fn remove(cgroups: &[Vec<PathBuf>]) -> Result<()> {
    for chain in cgroups {
        // Sub-cgroups of the container's own directory go first (their
        // processes were killed with the container's).
        if let Some(leaf) = chain.first() {
            for d in below(leaf) {
                let _ = std::fs::remove_dir(d);
            }
        }
        for (i, d) in chain.iter().enumerate() {
            let mut tries = 0;
            loop {
                match std::fs::remove_dir(d) {
                    Ok(()) => break,
                    Err(e) if e.kind() == ErrorKind::NotFound => break,
                    // A parent that another container now uses stays.
                    Err(_) if i > 0 => break,
                    Err(e) if tries < 100 => {
                        let _ = e;
                        tries += 1;
                        std::thread::sleep(std::time::Duration::from_millis(10));
                    }
                    Err(e) => return Err(Error::io("cannot remove cgroup", d, e)),
                }
            }
        }
    }
    Ok(())
}
