//! Per-process security settings applied by the init and the exec child:
//! LSM labels, personality, I/O priority, scheduler, and the safe way to
//! write to procfs.

use crate::error::{Error, Result, SysCtx};
use nix::fcntl::{OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::Mode;
use oci_spec::runtime::{Linux, Process};
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

/// AppArmor is enabled on this host (its module says so).
pub fn apparmor_enabled() -> bool {
    std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|s| s.trim() == "Y")
}

/// SELinux is enabled on this host (selinuxfs is mounted).
pub fn selinux_enabled() -> bool {
    Path::new("/sys/fs/selinux/enforce").exists()
}

/// Refuses labels the host cannot apply (config.md "apparmorProfile",
/// "selinuxLabel"): silently running a container unconfined when a
/// profile was asked for is worse than failing. A `mountLabel` labels
/// files, not the process, and is ignored where SELinux is off.
pub fn check_lsm(process: Option<&Process>, linux: Option<&Linux>) -> Result<()> {
    let set = |v: Option<&String>| v.is_some_and(|s| !s.is_empty());
    if set(process.and_then(|p| p.apparmor_profile().as_ref())) && !apparmor_enabled() {
        return Err(Error::invalid(
            "process.apparmorProfile",
            "an AppArmor profile is set but AppArmor is not enabled on this host",
        ));
    }
    // linux.mountLabel without SELinux is ignored (crun's leniency; the
    // spec does not ask for an error, and `features` says so).
    let _ = linux;
    if set(process.and_then(|p| p.selinux_label().as_ref())) && !selinux_enabled() {
        return Err(Error::invalid(
            "process.selinuxLabel",
            "an SELinux label is set but SELinux is not enabled on this host",
        ));
    }
    Ok(())
}

/// A directory fd of the procfs mounted at `/proc` (in the caller's mount
/// namespace), checked to be procfs with fstatfs(2).
fn proc_root() -> Result<OwnedFd> {
    let fd = nix::fcntl::open(
        "/proc",
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| "open /proc".into())?;
    let st = nix::sys::statfs::fstatfs(&fd).ctx(|| "fstatfs /proc".into())?;
    if st.filesystem_type() != nix::sys::statfs::PROC_SUPER_MAGIC {
        return Err(Error::Other("/proc is not a procfs mount".into()));
    }
    Ok(fd)
}

/// Writes `value` to `/proc/<rel>` of the real procfs (CVE-2025-52881):
/// the walk may not leave the procfs mount (`RESOLVE_NO_XDEV`), so a file
/// or mount placed over a procfs entry makes the write fail instead of
/// landing elsewhere, and no symlink is followed.
pub fn write_proc(rel: &str, value: &[u8]) -> Result<()> {
    let root = proc_root()?;
    write_proc_at(&root, rel, value)
}

fn write_proc_at(root: &impl AsFd, rel: &str, value: &[u8]) -> Result<()> {
    let how = OpenHow::new()
        .flags(OFlag::O_WRONLY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW)
        .resolve(
            ResolveFlag::RESOLVE_BENEATH
                | ResolveFlag::RESOLVE_NO_XDEV
                | ResolveFlag::RESOLVE_NO_MAGICLINKS
                | ResolveFlag::RESOLVE_NO_SYMLINKS,
        );
    let fd = nix::fcntl::openat2(root.as_fd(), rel, how).map_err(|e| {
        let why = if e == nix::errno::Errno::EXDEV {
            "it is covered by another mount"
        } else {
            e.desc()
        };
        Error::Other(format!("open /proc/{rel}: {why}"))
    })?;
    std::fs::File::from(fd)
        .write_all(value)
        .map_err(|e| Error::io("write", format!("/proc/{rel}"), e))
}

/// Sysctls (config-linux.md "Sysctl"), each through [`write_proc`].
pub fn apply_sysctl(linux: Option<&Linux>) -> Result<()> {
    let Some(sysctl) = linux.and_then(|l| l.sysctl().as_ref()) else {
        return Ok(());
    };
    let root = proc_root()?;
    for (k, v) in sysctl {
        let rel = format!("sys/{}", k.replace('.', "/"));
        write_proc_at(&root, &rel, v.as_bytes())
            .map_err(|e| Error::invalid("linux.sysctl", format!("{k}={v}: {e}")))?;
    }
    Ok(())
}

/// Which namespace a sysctl key belongs to, if any (runc's rule: only
/// namespaced keys may be set, and only when that namespace is the
/// container's own).
pub fn sysctl_namespace(key: &str) -> Option<&'static str> {
    const IPC: &[&str] = &[
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    if IPC.contains(&key) || key.starts_with("fs.mqueue.") {
        Some("ipc")
    } else if key.starts_with("net.") {
        Some("network")
    } else if key == "kernel.hostname" || key == "kernel.domainname" {
        Some("uts")
    } else {
        None
    }
}

/// Personality, I/O priority and scheduler, while the process still has
/// its capabilities (real-time classes need CAP_SYS_ADMIN/CAP_SYS_NICE).
pub fn apply_process_attrs(process: &Process, linux: Option<&Linux>) -> Result<()> {
    if let Some(p) = linux.and_then(|l| l.personality().as_ref()) {
        use oci_spec::runtime::LinuxPersonalityDomain::*;
        let persona = match p.domain() {
            PerLinux => 0x0000,
            PerLinux32 => 0x0008,
        };
        // SAFETY: personality(2) takes an integer.
        let r = unsafe { libc::personality(persona) };
        nix::errno::Errno::result(r).ctx(|| format!("linux.personality {}", p.domain()))?;
    }
    if let Some(io) = process.io_priority() {
        use oci_spec::runtime::IOPriorityClass::*;
        let class: i64 = match io.class() {
            IoprioClassRt => 1,
            IoprioClassBe => 2,
            IoprioClassIdle => 3,
        };
        let prio = io.priority();
        // SAFETY: ioprio_set(IOPRIO_WHO_PROCESS, self, value): integers only.
        let r = unsafe { libc::syscall(libc::SYS_ioprio_set, 1, 0, (class << 13) | prio) };
        nix::errno::Errno::result(r).ctx(|| format!("process.ioPriority {} {prio}", io.class()))?;
    }
    if let Some(s) = process.scheduler() {
        apply_scheduler(s)?;
    }
    Ok(())
}

/// Parses a node list `0-3,7` into a nodemask of 64-bit words.
pub fn nodemask(list: &str) -> std::result::Result<Vec<u64>, String> {
    const MAX: u32 = 1024;
    let mut mask = vec![0u64; (MAX / 64) as usize];
    for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let (a, b) = match (a.trim().parse::<u32>(), b.trim().parse::<u32>()) {
            (Ok(a), Ok(b)) if a <= b && b < MAX => (a, b),
            _ => {
                return Err(format!(
                    "{part:?} is not a node or a range of nodes below {MAX}"
                ))
            }
        };
        for n in a..=b {
            mask[(n / 64) as usize] |= 1 << (n % 64);
        }
    }
    Ok(mask)
}

/// The set_mempolicy(2) mode and flags of `linux.memoryPolicy`.
fn mempolicy_mode(p: &oci_spec::runtime::LinuxMemoryPolicy) -> i32 {
    use oci_spec::runtime::MemoryPolicyFlagType::*;
    use oci_spec::runtime::MemoryPolicyModeType::*;
    let mode = match p.mode() {
        MpolDefault => 0,
        MpolPreferred => 1,
        MpolBind => 2,
        MpolInterleave => 3,
        MpolLocal => 4,
        MpolPreferredMany => 5,
        MpolWeightedInterleave => 6,
    };
    p.flags().iter().flatten().fold(mode, |m, f| {
        m | match f {
            MpolFNumaBalancing => 1 << 13,
            MpolFRelativeNodes => 1 << 14,
            MpolFStaticNodes => 1 << 15,
        }
    })
}

/// `linux.memoryPolicy` (config-linux.md "Memory policy"): the NUMA policy
/// of the container process, kept across execve(2) and by its children.
pub fn apply_memory_policy(linux: Option<&Linux>) -> Result<()> {
    let Some(p) = linux.and_then(|l| l.memory_policy().as_ref()) else {
        return Ok(());
    };
    let mask = nodemask(p.nodes().as_deref().unwrap_or(""))
        .map_err(|e| Error::invalid("linux.memoryPolicy.nodes", e))?;
    let empty = mask.iter().all(|w| *w == 0);
    let (ptr, maxnode) = if empty {
        (std::ptr::null(), 0)
    } else {
        (mask.as_ptr(), mask.len() * 64 + 1)
    };
    // SAFETY: set_mempolicy(mode, nodemask, maxnode): the mask lives for
    // the call and holds at least maxnode - 1 bits (or is NULL with 0).
    let r = unsafe { libc::syscall(libc::SYS_set_mempolicy, mempolicy_mode(p), ptr, maxnode) };
    nix::errno::Errno::result(r).ctx(|| {
        format!(
            "linux.memoryPolicy {} nodes {:?}: set_mempolicy",
            p.mode(),
            p.nodes().as_deref().unwrap_or("")
        )
    })?;
    Ok(())
}

/// `struct sched_attr` of sched_setattr(2).
#[repr(C)]
#[derive(Default)]
struct SchedAttr {
    size: u32,
    policy: u32,
    flags: u64,
    nice: i32,
    priority: u32,
    runtime: u64,
    deadline: u64,
    period: u64,
    util_min: u32,
    util_max: u32,
}

fn apply_scheduler(s: &oci_spec::runtime::Scheduler) -> Result<()> {
    use oci_spec::runtime::LinuxSchedulerFlag::*;
    use oci_spec::runtime::LinuxSchedulerPolicy::*;
    let policy = match s.policy() {
        SchedOther => 0,
        SchedFifo => 1,
        SchedRr => 2,
        SchedBatch => 3,
        SchedIso => 4,
        SchedIdle => 5,
        SchedDeadline => 6,
    };
    let mut flags = 0u64;
    for f in s.flags().iter().flatten() {
        flags |= match f {
            SchedResetOnFork => 0x01,
            SchedFlagReclaim => 0x02,
            SchedFlagDLOverrun => 0x04,
            SchedFlagKeepPolicy => 0x08,
            SchedFlagKeepParams => 0x10,
            SchedFlagUtilClampMin => 0x20,
            SchedFlagUtilClampMax => 0x40,
        };
    }
    let attr = SchedAttr {
        size: std::mem::size_of::<SchedAttr>() as u32,
        policy,
        flags,
        nice: s.nice().unwrap_or(0),
        priority: s.priority().unwrap_or(0) as u32,
        runtime: s.runtime().unwrap_or(0),
        deadline: s.deadline().unwrap_or(0),
        period: s.period().unwrap_or(0),
        ..Default::default()
    };
    // SAFETY: sched_setattr(self, &attr, 0); attr is a valid sched_attr of
    // the size it declares and outlives the call.
    let r = unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr as *const SchedAttr, 0) };
    nix::errno::Errno::result(r).ctx(|| format!("process.scheduler {}", s.policy()))?;
    Ok(())
}

/// Labels the next execve(2) with the AppArmor profile or SELinux label of
/// `process` (checked by [`check_lsm`] to be applicable).
pub fn apply_exec_labels(process: &Process) -> Result<()> {
    // /proc/self is a symlink, which write_proc never follows; the pid is
    // asked for only when a label is set (this runs on every start).
    if let Some(p) = process
        .apparmor_profile()
        .as_ref()
        .filter(|s| !s.is_empty())
    {
        let (me, v) = (std::process::id(), format!("exec {p}"));
        write_proc(&format!("{me}/attr/apparmor/exec"), v.as_bytes())
            .or_else(|_| write_proc(&format!("{me}/attr/exec"), v.as_bytes()))
            .map_err(|e| Error::invalid("process.apparmorProfile", format!("{p}: {e}")))?;
    }
    if let Some(l) = process.selinux_label().as_ref().filter(|s| !s.is_empty()) {
        write_proc(&format!("{}/attr/exec", std::process::id()), l.as_bytes())
            .map_err(|e| Error::invalid("process.selinuxLabel", format!("{l}: {e}")))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sysctl_namespaces() {
        assert_eq!(sysctl_namespace("net.ipv4.ip_forward"), Some("network"));
        assert_eq!(sysctl_namespace("kernel.shmmax"), Some("ipc"));
        assert_eq!(sysctl_namespace("fs.mqueue.msg_max"), Some("ipc"));
        assert_eq!(sysctl_namespace("kernel.domainname"), Some("uts"));
        assert_eq!(sysctl_namespace("kernel.core_pattern"), None);
        assert_eq!(sysctl_namespace("vm.overcommit_memory"), None);
    }

    #[test]
    fn proc_writes_refuse_other_mounts_and_links() {
        let root = proc_root().unwrap();
        let me = std::process::id();
        write_proc_at(&root, &format!("{me}/comm"), b"berth-unit").unwrap();
        // A symlink (/proc/self), a magic link and `..` out are refused.
        for bad in ["self/comm", &format!("{me}/cwd/x"), "../etc/passwd"] {
            let e = write_proc_at(&root, bad, b"x").unwrap_err();
            assert!(e.to_string().contains(bad), "{e}");
        }
    }
}
