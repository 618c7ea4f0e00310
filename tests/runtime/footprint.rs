//! The memory guard (#22): the peak RSS of the release binary for `state`,
//! `create` and `run` stays within a budget, so a new dependency or a
//! static initialiser cannot silently double what every container start
//! pays. Page counts are stable on one machine, unlike times (three runs
//! give the same KiB); the budgets are the figures measured when they were
//! set plus about 13 %. docs/benchmarks.md says how to move them.

use crate::common::*;

/// KiB of peak RSS (wait4's ru_maxrss, the process and what it waited for).
/// Measured here when set (this test's config, 2026-12-07, after the
/// re-exec moved to the entry point and the commands got stack frames of
/// their own): create 1724, state 1468, run 1724; the build optimised for
/// size before measured 1852, 1724 and 1724, the opt-level 3 build before
/// it 2228, 1844 and 2356.
const BUDGET: [(&str, u64); 3] = [("create", 1950), ("state", 1660), ("run", 1950)];

/// Runs berth with `args` under tests/bench/rss.c (a small C process
/// forks it, so the test's own pages do not count, as they would through
/// std's vfork) and returns (success, peak RSS in KiB).
fn peak_rss(bin: &std::path::Path, args: &[&str], err: &std::path::Path) -> (bool, u64) {
    // stderr goes to a file: a created container's init keeps what it
    // inherits, so a pipe would never see its end.
    let st = std::process::Command::new(rss_tool())
        .arg(bin)
        .args(args)
        .env_remove("RUST_BACKTRACE")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(err).unwrap())
        .status()
        .unwrap();
    let err = std::fs::read_to_string(err).unwrap();
    let kib = err
        .lines()
        .last()
        .and_then(|l| l.strip_prefix("maxrss "))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no maxrss line: {err}"));
    (st.success(), kib)
}

#[test]
fn release_binary_stays_within_its_memory_budget() {
    let bin = repo().join("target/x86_64-unknown-linux-gnu/release/berth");
    assert!(
        bin.exists(),
        "{}: the guard measures the release build (make release; make test builds it)",
        bin.display()
    );
    let t = T::new("footprint");
    let mut c = t.config(&["true"]);
    // runc spec's ambient capabilities cannot be raised here; their
    // warnings are not what is measured.
    c["process"]["capabilities"]
        .as_object_mut()
        .unwrap()
        .remove("ambient");
    t.write_config(&c);
    let root = t.root.to_str().unwrap().to_string();
    let err = t.dir.join("rss.err");
    let berth = |args: &[&str]| peak_rss(&bin, &[&["--root", &root], args].concat(), &err);
    let bundle = t.bundle.to_str().unwrap().to_string();
    let id = t.id("c");
    let mut seen = Vec::new();
    for (cmd, budget) in BUDGET {
        let (st, kib) = match cmd {
            "create" => berth(&["create", "-b", &bundle, &id]),
            "state" => berth(&["state", &id]),
            _ => berth(&["run", "-b", &bundle, &t.id("r")]),
        };
        assert!(st, "{cmd} failed");
        seen.push((cmd, kib, budget));
        if cmd == "state" {
            t.ok(&["delete", "-f", &id]);
        }
    }
    eprintln!("peak RSS (KiB, budget): {seen:?}");
    for (cmd, kib, budget) in &seen {
        assert!(
            kib <= budget,
            "peak RSS of `berth {cmd}` over budget: {kib} KiB > {budget}; all: {seen:?}"
        );
    }
}
