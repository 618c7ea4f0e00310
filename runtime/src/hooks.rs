//! Hooks (config.md "POSIX-platform Hooks", runtime.md "Lifecycle"): each
//! runs with the container state JSON on stdin, its `args` (args[0] as
//! argv[0]) and `env`, and is killed when its `timeout` passes. A failing
//! hook is an error naming the hook; the caller decides what that means
//! (poststop failures are only warnings).

use crate::error::{Error, Result};
use oci_spec::runtime::Hook;
use std::io::Write;
use std::os::fd::AsFd;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

/// Runs each hook of `kind` in order; the first failure is returned. The
/// state document is built only when there is a hook to give it to.
pub fn run_all(
    kind: &str,
    hooks: Option<&Vec<Hook>>,
    state: impl FnOnce() -> String,
) -> Result<()> {
    let hooks = match hooks {
        Some(h) if !h.is_empty() => h,
        _ => return Ok(()),
    };
    let state = state();
    for (i, h) in hooks.iter().enumerate() {
        run(h, &state)
            .map_err(|e| Error::Other(format!("{kind} hook {i} ({}): {e}", h.path().display())))?;
    }
    Ok(())
}

/// Runs every hook of `kind`, logging each failure as a warning (poststop:
/// runtime.md step 13, the remaining hooks and the lifecycle go on).
pub fn run_all_warn(kind: &str, hooks: Option<&Vec<Hook>>, state: impl FnOnce() -> String) {
    let hooks = match hooks {
        Some(h) if !h.is_empty() => h,
        _ => return,
    };
    let state = state();
    for (i, h) in hooks.iter().enumerate() {
        if let Err(e) = run(h, &state) {
            crate::error::warn(&format!("{kind} hook {i} ({}): {e}", h.path().display()));
        }
    }
}

fn run(h: &Hook, state: &str) -> std::result::Result<(), String> {
    let mut cmd = Command::new(h.path());
    if let Some(args) = h.args() {
        if let Some((first, rest)) = args.split_first() {
            cmd.arg0(first).args(rest);
        }
    }
    cmd.env_clear();
    for e in h.env().iter().flatten() {
        if let Some((k, v)) = e.split_once('=') {
            cmd.env(k, v);
        }
    }
    cmd.stdin(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| e.to_string())?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin is fine.
        let _ = stdin.write_all(state.as_bytes());
    }
    let status = match h.timeout() {
        None => child.wait().map_err(|e| e.to_string())?,
        Some(secs) => {
            let pidfd =
                crate::process::pidfd_open(child.id() as i32).ok_or("cannot watch the hook")?;
            let mut fds = [nix::poll::PollFd::new(
                pidfd.as_fd(),
                nix::poll::PollFlags::POLLIN,
            )];
            let ms = (secs.max(0) as u64 * 1000).min(i32::MAX as u64) as i32;
            let n = nix::poll::poll(
                &mut fds,
                nix::poll::PollTimeout::try_from(ms).unwrap_or(nix::poll::PollTimeout::MAX),
            )
            .map_err(|e| e.to_string())?;
            if n == 0 {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("timed out after {secs}s"));
            }
            child.wait().map_err(|e| e.to_string())?
        }
    };
    if status.success() {
        Ok(())
    } else {
        Err(format!("failed: {status}"))
    }
}
