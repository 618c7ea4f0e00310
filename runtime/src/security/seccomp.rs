//! `linux.seccomp` (config-linux.md "Seccomp") compiled with libseccomp.
//!
//! The filter is built in the container's process before anything else
//! changes (a bad profile fails `create`/`exec` with the field named) and
//! loaded as late as the kernel allows:
//! - with `noNewPrivileges`, once `start` says go: before the
//!   startContainer hooks (which run under it, as in runc) and execve(2);
//! - without it, before the capabilities are dropped (seccomp(2) needs
//!   CAP_SYS_ADMIN when no_new_privs is not set);
//! - with an `SCMP_ACT_NOTIFY` rule, before `create` returns: the listener
//!   fd goes to berth over the socketpair and on to `listenerPath`.
//!
//! A syscall newer than every one the profile names gets ENOSYS, not the
//! default action, when that default refuses (runc's behaviour, which
//! Docker's default profile relies on): a program then falls back to an
//! older call (glibc from clone3 to clone) instead of failing on EPERM.
//! berth adds an ENOSYS rule for each number of the native architecture
//! above the highest the profile names, up to [`NATIVE_SYSCALL_LIMIT`].

use crate::error::{Error, Result};
use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
};
use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompAction, LinuxSeccompOperator};
use std::os::fd::{FromRawFd, OwnedFd};
use std::str::FromStr;

const FIELD: &str = "linux.seccomp";

/// The end of the native syscall numbers the ENOSYS rules cover: x86_64's
/// table ends below 512, where the x32 numbers begin; on other
/// architectures the same bound covers today's tables (below 470) with
/// room for new calls.
const NATIVE_SYSCALL_LIMIT: i32 = 512;

/// A compiled filter, not yet loaded.
pub(crate) struct Filter {
    ctx: ScmpFilterContext,
    /// Some rule (or the default) notifies a listener.
    pub(crate) notify: bool,
}

fn action(a: LinuxSeccompAction, errno_ret: Option<u32>) -> ScmpAction {
    use LinuxSeccompAction::*;
    // errnoRet defaults to EPERM (config-linux.md "syscalls[].errnoRet").
    let errno = errno_ret.map_or(libc::EPERM, |e| e as i32);
    match a {
        ScmpActKill | ScmpActKillThread => ScmpAction::KillThread,
        ScmpActKillProcess => ScmpAction::KillProcess,
        ScmpActTrap => ScmpAction::Trap,
        ScmpActErrno => ScmpAction::Errno(errno),
        ScmpActNotify => ScmpAction::Notify,
        ScmpActTrace => ScmpAction::Trace(errno as u16),
        ScmpActLog => ScmpAction::Log,
        ScmpActAllow => ScmpAction::Allow,
    }
}

fn op(o: LinuxSeccompOperator, value: u64, value_two: Option<u64>) -> (ScmpCompareOp, u64) {
    use LinuxSeccompOperator::*;
    match o {
        ScmpCmpNe => (ScmpCompareOp::NotEqual, value),
        ScmpCmpLt => (ScmpCompareOp::Less, value),
        ScmpCmpLe => (ScmpCompareOp::LessOrEqual, value),
        ScmpCmpEq => (ScmpCompareOp::Equal, value),
        ScmpCmpGe => (ScmpCompareOp::GreaterEqual, value),
        ScmpCmpGt => (ScmpCompareOp::Greater, value),
        // (arg & value) == valueTwo
        ScmpCmpMaskedEq => (ScmpCompareOp::MaskedEqual(value), value_two.unwrap_or(0)),
    }
}

/// The name a config uses for `v` (its serde spelling).
fn name_of<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn err(what: impl std::fmt::Display, e: impl std::fmt::Display) -> Error {
    Error::invalid(FIELD, format!("{what}: {e}"))
}

/// Compiles `s`. Syscall names this libseccomp does not know are skipped
/// (profiles list syscalls of newer kernels; runc does the same).
pub(crate) fn build(s: &LinuxSeccomp) -> Result<Filter> {
    let default = action(s.default_action(), s.default_errno_ret());
    let mut notify = s.default_action() == LinuxSeccompAction::ScmpActNotify;
    let mut ctx = ScmpFilterContext::new(default).map_err(|e| err("defaultAction", e))?;
    // berth sets no_new_privs itself, from process.noNewPrivileges.
    ctx.set_ctl_nnp(false).map_err(|e| err("no_new_privs", e))?;
    // The ENOSYS rules go in while the filter has only the native
    // architecture: libseccomp cannot translate a number it has no name for
    // to the others, and refuses such a rule once they are in.
    // Every name resolved once, for the native architecture: the ENOSYS
    // range and the rules below both take the numbers.
    let numbers: Vec<Vec<Option<ScmpSyscall>>> = s
        .syscalls()
        .iter()
        .flatten()
        .map(|sc| {
            sc.names()
                .iter()
                .map(|n| ScmpSyscall::from_name(n).ok())
                .collect()
        })
        .collect();
    let enosys = ScmpAction::Errno(libc::ENOSYS);
    if refuses(default) && default != enosys {
        let highest = numbers
            .iter()
            .flatten()
            .flatten()
            .map(|n| i32::from(*n))
            .max();
        if let Some(highest) = highest {
            for nr in highest + 1..NATIVE_SYSCALL_LIMIT {
                ctx.add_rule(enosys, ScmpSyscall::from(nr))
                    .map_err(|e| err(format!("ENOSYS for syscall {nr}"), e))?;
            }
        }
    }
    for a in s.architectures().iter().flatten() {
        let n = name_of(a);
        let arch = ScmpArch::from_str(&n).map_err(|e| err(format!("architecture {n}"), e))?;
        ctx.add_arch(arch)
            .map_err(|e| err(format!("architecture {n}"), e))?;
    }
    for f in s.flags().iter().flatten() {
        let n = name_of(f);
        let r = match n.as_str() {
            "SECCOMP_FILTER_FLAG_TSYNC" => ctx.set_ctl_tsync(true).map(|_| ()),
            "SECCOMP_FILTER_FLAG_LOG" => ctx.set_ctl_log(true).map(|_| ()),
            "SECCOMP_FILTER_FLAG_SPEC_ALLOW" => ctx.set_ctl_ssb(true).map(|_| ()),
            "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV" => ctx.set_ctl_waitkill(true).map(|_| ()),
            _ => return Err(err("flags", format!("unknown flag {n}"))),
        };
        r.map_err(|e| err(format!("flag {n}"), e))?;
    }
    for (i, sc) in s.syscalls().iter().flatten().enumerate() {
        let act = action(sc.action(), sc.errno_ret());
        // libseccomp refuses a rule whose action is the default one.
        if act == default {
            continue;
        }
        notify |= sc.action() == LinuxSeccompAction::ScmpActNotify;
        let args: Vec<ScmpArgCompare> = sc
            .args()
            .iter()
            .flatten()
            .map(|a| {
                let (o, datum) = op(a.op(), a.value(), a.value_two());
                ScmpArgCompare::new(a.index() as u32, o, datum)
            })
            .collect();
        if let Some(a) = sc.args().iter().flatten().find(|a| a.index() > 5) {
            return Err(err(
                format!("syscalls[{i}]"),
                format!("argument index {} (0-5)", a.index()),
            ));
        }
        // Comparisons on distinct arguments are ANDed in one rule; several
        // on the same argument mean any of them (one rule each), as in the
        // Docker and runc profiles.
        let mut idx: Vec<u32> = sc
            .args()
            .iter()
            .flatten()
            .map(|a| a.index() as u32)
            .collect();
        idx.sort_unstable();
        let repeated = idx.windows(2).any(|w| w[0] == w[1]);
        for (name, nr) in sc.names().iter().zip(&numbers[i]) {
            let Some(nr) = *nr else {
                continue;
            };
            let r = if args.is_empty() {
                ctx.add_rule(act, nr)
            } else if repeated {
                args.iter()
                    .try_for_each(|c| ctx.add_rule_conditional(act, nr, &[*c]).map(|_| ()))
                    .map(|_| &mut ctx)
            } else {
                ctx.add_rule_conditional(act, nr, &args)
            };
            r.map_err(|e| err(format!("syscalls[{i}] {name}"), e))?;
        }
    }
    if notify && s.listener_path().is_none() {
        return Err(err("listenerPath", "SCMP_ACT_NOTIFY needs a listenerPath"));
    }
    Ok(Filter { ctx, notify })
}

/// Whether an action stops the syscall (the ENOSYS rules then matter).
fn refuses(a: ScmpAction) -> bool {
    !matches!(a, ScmpAction::Allow | ScmpAction::Log | ScmpAction::Notify)
}

impl Filter {
    /// Loads the filter into this process; returns the notify listener fd
    /// when the filter has one.
    pub(crate) fn load(&self) -> Result<Option<OwnedFd>> {
        self.ctx
            .load()
            .map_err(|e| Error::Other(format!("load seccomp filter: {e}")))?;
        if !self.notify {
            return Ok(None);
        }
        let fd = self
            .ctx
            .get_notify_fd()
            .map_err(|e| Error::Other(format!("seccomp notify fd: {e}")))?;
        // SAFETY: libseccomp hands over the listener fd it just created;
        // nothing else owns it.
        Ok(Some(unsafe { OwnedFd::from_raw_fd(fd) }))
    }
}

/// Sends the container process state (config-linux.md "The Container
/// Process State") with the listener fd to the seccomp agent at `path`.
pub(crate) fn send_to_listener(
    s: &LinuxSeccomp,
    pid: i32,
    state: serde_json::Value,
    fd: &OwnedFd,
) -> Result<()> {
    let path = s.listener_path().as_ref().expect("checked in build");
    let conn = std::os::unix::net::UnixStream::connect(path)
        .map_err(|e| Error::io("seccomp listenerPath: cannot connect to", path, e))?;
    let mut doc = serde_json::json!({
        "ociVersion": state["ociVersion"].clone(),
        "fds": ["seccompFd"],
        "pid": pid,
        "state": state,
    });
    if let Some(m) = s.listener_metadata() {
        doc["metadata"] = m.clone().into();
    }
    crate::process::channel::send_with_fd(&conn, doc.to_string().as_bytes(), fd)
        .map_err(|e| Error::sys(format!("send seccomp fd to {}", path.display()), e))
}

/// berth's side of `Msg::Seccomp` (create and exec alike): takes the
/// listener fd that came with it, hands it with `state` to the agent at
/// `listenerPath`, and releases the child with `Go`. `who` names the child
/// in the error ("init", "exec").
pub(crate) fn forward(
    chan: &mut crate::process::channel::Channel,
    spec: &oci_spec::runtime::Spec,
    pid: i32,
    state: serde_json::Value,
    who: &str,
) -> Result<()> {
    let fd = chan
        .take_fd()
        .ok_or_else(|| Error::Init("seccomp message without fd".into()))?;
    let s = spec.linux().as_ref().and_then(|l| l.seccomp().as_ref());
    let s = s.expect("the child only sends it for a seccomp config");
    send_to_listener(s, pid, state, &fd)?;
    chan.send(&crate::process::channel::Msg::Go)
        .map_err(|e| Error::Init(format!("cannot release {who}: {e}")))
}

/// The libseccomp berth is linked with, e.g. "2.5.4".
pub fn libseccomp_version() -> String {
    match libseccomp::ScmpVersion::current() {
        Ok(v) => format!("{}.{}.{}", v.major, v.minor, v.micro),
        Err(_) => "unknown".into(),
    }
}

/// What `features` reports (features-linux.md "Seccomp").
pub(crate) fn features() -> serde_json::Value {
    let v = libseccomp::ScmpVersion::current().ok();
    let waitkill = v.is_some_and(|v| (v.major, v.minor) >= (2, 6));
    let mut flags = vec![
        "SECCOMP_FILTER_FLAG_TSYNC",
        "SECCOMP_FILTER_FLAG_LOG",
        "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
    ];
    if waitkill {
        flags.push("SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV");
    }
    serde_json::json!({
        "enabled": true,
        "actions": ["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS",
            "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY", "SCMP_ACT_TRACE", "SCMP_ACT_TRAP"],
        "operators": ["SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT",
            "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"],
        "archs": ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM", "SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64",
            "SCMP_ARCH_MIPS64N32", "SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64", "SCMP_ARCH_MIPSEL64N32",
            "SCMP_ARCH_PPC", "SCMP_ARCH_PPC64", "SCMP_ARCH_PPC64LE", "SCMP_ARCH_RISCV64",
            "SCMP_ARCH_S390", "SCMP_ARCH_S390X", "SCMP_ARCH_X32", "SCMP_ARCH_X86", "SCMP_ARCH_X86_64"],
        "knownFlags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG",
            "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
        "supportedFlags": flags,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(j: &str) -> LinuxSeccomp {
        serde_json::from_str(j).unwrap()
    }

    #[test]
    fn compiles_profiles_and_names_bad_input() {
        let f = build(&parse(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X86"],
            "syscalls":[{"names":["mkdir","no_such_syscall"],"action":"SCMP_ACT_ERRNO","errnoRet":1},
            {"names":["personality"],"action":"SCMP_ACT_ERRNO","args":[
              {"index":0,"value":0,"op":"SCMP_CMP_EQ"},{"index":0,"value":8,"op":"SCMP_CMP_EQ"}]},
            {"names":["getpid"],"action":"SCMP_ACT_ALLOW"}]}"#,
        ))
        .unwrap();
        assert!(!f.notify);
        let e = build(&parse(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_NOTIFY"}]}"#,
        ))
        .err()
        .unwrap()
        .to_string();
        assert!(e.contains("listenerPath"), "{e}");
        let e = build(&parse(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_ERRNO","args":[{"index":7,"value":0,"op":"SCMP_CMP_EQ"}]}]}"#,
        ))
        .err()
        .unwrap()
        .to_string();
        assert!(e.contains("syscalls[0]") && e.contains("index 7"), "{e}");
    }
}
