//! The device cgroup (config-linux.md "Allowed Device List"): which device
//! nodes the container may open or create.
//!
//! The rules are `linux.resources.devices` in order, followed (as runc
//! does) by allow rules for the devices every container gets (/dev/null,
//! zero, full, random, urandom, tty, console, ptmx, pts). A node of
//! `linux.devices` is not allowed by being listed: config-linux.md keeps
//! the two apart ("You can also control access to devices with cgroups"),
//! and runc gives such a node no rule, so a config that denies everything
//! and creates `/dev/kmsg` leaves it inaccessible. On cgroup v1 they are written to `devices.allow` /
//! `devices.deny`. cgroup v2 has no such files: berth compiles the rules
//! into an eBPF program of type `BPF_PROG_TYPE_CGROUP_DEVICE` and attaches
//! it to the container's cgroup.
//!
//! Semantics are v1's: a rule for every device (`a *:* ...`) sets the
//! default and drops earlier exceptions; other rules are exceptions, the
//! last matching one wins.

use crate::error::{Error, Result};
use oci_spec::runtime::{Linux, LinuxDeviceType};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

/// The devices every container gets (config-linux.md "Default Devices"):
/// path, major, minor. The device cgroup allows them too (see [`rules`]).
pub const DEFAULT_DEVICES: &[(&str, u64, u64)] = &[
    ("/dev/null", 1, 3),
    ("/dev/zero", 1, 5),
    ("/dev/full", 1, 7),
    ("/dev/random", 1, 8),
    ("/dev/urandom", 1, 9),
    ("/dev/tty", 5, 0),
];

/// One device rule; `None` major/minor is the wildcard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub allow: bool,
    /// 'a' (all), 'c' or 'b'.
    pub kind: char,
    pub major: Option<u32>,
    pub minor: Option<u32>,
    /// A subset of "rwm".
    pub access: String,
}

impl Rule {
    fn allow(kind: char, major: u32, minor: Option<u32>) -> Rule {
        Rule {
            allow: true,
            kind,
            major: Some(major),
            minor,
            access: "rwm".into(),
        }
    }

    /// The v1 line, e.g. `c 1:3 rwm`.
    pub fn line(&self) -> String {
        let n = |v: Option<u32>| v.map_or("*".to_string(), |v| v.to_string());
        format!(
            "{} {}:{} {}",
            self.kind,
            n(self.major),
            n(self.minor),
            self.access
        )
    }

    fn everything(&self) -> bool {
        self.kind == 'a' && self.major.is_none() && self.minor.is_none()
    }
}

/// The rules for a container, or `None` when the config has no device
/// rules (the cgroup is then left as its parent allows, like runc).
pub fn rules(linux: Option<&Linux>) -> Result<Option<Vec<Rule>>> {
    let Some(list) = linux
        .and_then(|l| l.resources().as_ref())
        .and_then(|r| r.devices().as_ref())
        .filter(|d| !d.is_empty())
    else {
        return Ok(None);
    };
    let mut out = Vec::new();
    for (i, d) in list.iter().enumerate() {
        let kind = match d.typ() {
            None | Some(LinuxDeviceType::A) => 'a',
            Some(LinuxDeviceType::C) | Some(LinuxDeviceType::U) => 'c',
            Some(LinuxDeviceType::B) => 'b',
            Some(LinuxDeviceType::P) => {
                return Err(Error::invalid(
                    format!("linux.resources.devices[{i}].type"),
                    "p: fifos are not controlled by the device cgroup",
                ))
            }
        };
        let access = d.access().clone().unwrap_or_else(|| "rwm".into());
        if access.is_empty() || access.chars().any(|c| !"rwm".contains(c)) {
            return Err(Error::invalid(
                format!("linux.resources.devices[{i}].access"),
                format!("{access:?}: must be a combination of r, w and m"),
            ));
        }
        let num = |v: Option<i64>| -> Result<Option<u32>> {
            match v {
                None | Some(-1) => Ok(None),
                Some(v) if (0..=u32::MAX as i64).contains(&v) => Ok(Some(v as u32)),
                Some(v) => Err(Error::invalid(
                    format!("linux.resources.devices[{i}]"),
                    format!("device number {v}"),
                )),
            }
        };
        out.push(Rule {
            allow: d.allow(),
            kind,
            major: num(d.major())?,
            minor: num(d.minor())?,
            access,
        });
    }
    let defaults = DEFAULT_DEVICES.iter().map(|d| (d.1, d.2));
    // /dev/console and /dev/ptmx besides the nodes berth makes.
    for (major, minor) in defaults.chain([(5, 1), (5, 2)]) {
        out.push(Rule::allow('c', major as u32, Some(minor as u32)));
    }
    out.push(Rule::allow('c', 136, None)); // /dev/pts/*
    Ok(Some(out))
}

/// `rules` with mknod (only) of each `linux.devices` node allowed: what
/// the systemd driver's unit gets from its start, so that the init can make
/// the nodes; berth's own program, attached once they are made, applies
/// `rules` alone.
pub fn with_mknod_of_nodes(rules: &[Rule], linux: Option<&Linux>) -> Vec<Rule> {
    let mut out = rules.to_vec();
    for d in linux
        .and_then(|l| l.devices().as_ref())
        .into_iter()
        .flatten()
    {
        let kind = match d.typ() {
            LinuxDeviceType::B => 'b',
            LinuxDeviceType::C | LinuxDeviceType::U => 'c',
            _ => continue,
        };
        out.push(Rule {
            allow: true,
            kind,
            major: Some(d.major() as u32),
            minor: Some(d.minor() as u32),
            access: "m".into(),
        });
    }
    out
}

/// Writes the rules to a v1 devices cgroup directory.
pub fn apply_v1(dir: &Path, rules: &[Rule]) -> Result<()> {
    for r in rules {
        let file = if r.allow {
            "devices.allow"
        } else {
            "devices.deny"
        };
        let p = dir.join(file);
        std::fs::write(&p, r.line()).map_err(|e| Error::io("cannot write device rule to", p, e))?;
    }
    Ok(())
}

/// The effective rules: the default after the last rule for every device,
/// and the exceptions since, last first.
fn effective(rules: &[Rule]) -> (bool, Vec<&Rule>) {
    let mut default = true;
    let mut ex: Vec<&Rule> = Vec::new();
    for r in rules {
        // Access subsets of "everything" are exceptions, like v1's.
        if r.everything() && "rwm".chars().all(|c| r.access.contains(c)) {
            default = r.allow;
            ex.clear();
            continue;
        }
        ex.push(r);
    }
    ex.reverse();
    (default, ex)
}

// eBPF encoding (include/uapi/linux/bpf.h).
const LDX_W: u8 = 0x61; // BPF_LDX | BPF_MEM | BPF_W
const MOV_REG: u8 = 0xbf; // BPF_ALU64 | BPF_MOV | BPF_X
const MOV_IMM: u8 = 0xb7; // BPF_ALU64 | BPF_MOV | BPF_K
const AND_IMM: u8 = 0x57; // BPF_ALU64 | BPF_AND | BPF_K
const RSH_IMM: u8 = 0x77; // BPF_ALU64 | BPF_RSH | BPF_K
const JNE_IMM: u8 = 0x55; // BPF_JMP | BPF_JNE | BPF_K
const JEQ_IMM: u8 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
const EXIT: u8 = 0x95; // BPF_JMP | BPF_EXIT

fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> u64 {
    (code as u64)
        | ((dst as u64 & 0xf) << 8)
        | ((src as u64 & 0xf) << 12)
        | ((off as u16 as u64) << 16)
        | ((imm as u32 as u64) << 32)
}

fn access_bits(a: &str) -> i32 {
    // BPF_DEVCG_ACC_MKNOD 1, READ 2, WRITE 4
    a.chars()
        .map(|c| match c {
            'm' => 1,
            'r' => 2,
            _ => 4,
        })
        .fold(0, |x, y| x | y)
}

/// Compiles the rules into a cgroup device program. The context is
/// `struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }`,
/// access_type = access << 16 | type; the program returns 1 to allow.
pub fn program(rules: &[Rule]) -> Vec<u64> {
    let (default, ex) = effective(rules);
    let mut p = vec![
        insn(LDX_W, 2, 1, 0, 0), // r2 = access_type
        insn(MOV_REG, 3, 2, 0, 0),
        insn(AND_IMM, 3, 0, 0, 0xffff), // r3 = type
        insn(MOV_REG, 4, 2, 0, 0),
        insn(RSH_IMM, 4, 0, 0, 16), // r4 = access
        insn(LDX_W, 5, 1, 4, 0),    // r5 = major
        insn(LDX_W, 6, 1, 8, 0),    // r6 = minor
    ];
    for r in ex {
        // Each test jumps to the next block on mismatch; `u16::MAX` is a
        // placeholder patched once the block's length is known.
        let mut b: Vec<(u8, u8, i32, bool)> = Vec::new(); // (code, dst, imm, is_jump)
        match r.kind {
            'c' => b.push((JNE_IMM, 3, 2, true)),
            'b' => b.push((JNE_IMM, 3, 1, true)),
            _ => {}
        }
        let acc = access_bits(&r.access);
        b.push((MOV_REG, 7, 4, false));
        if r.allow {
            // every requested bit allowed: (access & ~acc) == 0
            b.push((AND_IMM, 7, !acc & 7, false));
            b.push((JNE_IMM, 7, 0, true));
        } else {
            // any requested bit denied: (access & acc) != 0
            b.push((AND_IMM, 7, acc, false));
            b.push((JEQ_IMM, 7, 0, true));
        }
        if let Some(m) = r.major {
            b.push((JNE_IMM, 5, m as i32, true));
        }
        if let Some(m) = r.minor {
            b.push((JNE_IMM, 6, m as i32, true));
        }
        b.push((MOV_IMM, 0, r.allow as i32, false));
        b.push((EXIT, 0, 0, false));
        let n = b.len();
        for (i, (code, dst, imm, jump)) in b.into_iter().enumerate() {
            p.push(if code == MOV_REG {
                insn(code, dst, imm as u8, 0, 0)
            } else if jump {
                insn(code, dst, 0, (n - i - 1) as i16, imm)
            } else {
                insn(code, dst, 0, 0, imm)
            });
        }
    }
    p.push(insn(MOV_IMM, 0, 0, 0, default as i32));
    p.push(insn(EXIT, 0, 0, 0, 0));
    p
}

fn bpf(cmd: libc::c_long, attr: &mut [u8; 128]) -> nix::Result<i64> {
    // SAFETY: bpf(cmd, attr, size) with a zero-filled buffer as large as
    // any bpf_attr variant berth uses; the kernel reads at most `size`.
    let r = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr.as_mut_ptr(), attr.len()) };
    nix::errno::Errno::result(r)
}

/// Loads the program for `rules` and attaches it to the cgroup v2
/// directory `dir` (BPF_F_ALLOW_MULTI: programs of the ancestors still
/// apply too).
pub fn apply_v2(dir: &Path, rules: &[Rule]) -> Result<()> {
    let prog = program(rules);
    let license = c"Apache-2.0";
    let mut log = vec![0u8; 4096];
    let mut a = [0u8; 128];
    a[0..4].copy_from_slice(&15u32.to_ne_bytes()); // BPF_PROG_TYPE_CGROUP_DEVICE
    a[4..8].copy_from_slice(&(prog.len() as u32).to_ne_bytes());
    a[8..16].copy_from_slice(&(prog.as_ptr() as u64).to_ne_bytes());
    a[16..24].copy_from_slice(&(license.as_ptr() as u64).to_ne_bytes());
    let load = |a: &mut [u8; 128]| bpf(5 /* BPF_PROG_LOAD */, a);
    let fd = match load(&mut a) {
        Ok(fd) => fd,
        Err(_) => {
            // Again with the verifier's log, for the error message.
            a[24..28].copy_from_slice(&1u32.to_ne_bytes());
            a[28..32].copy_from_slice(&(log.len() as u32).to_ne_bytes());
            a[32..40].copy_from_slice(&(log.as_mut_ptr() as u64).to_ne_bytes());
            load(&mut a).map_err(|e| {
                let msg = String::from_utf8_lossy(&log);
                Error::Other(format!(
                    "load device cgroup program: {e}: {}",
                    msg.trim_end_matches('\0').trim()
                ))
            })?
        }
    };
    // SAFETY: BPF_PROG_LOAD returned a new fd that nothing else owns.
    let prog_fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    let cg = std::fs::File::open(dir).map_err(|e| Error::io("cannot open", dir, e))?;
    let mut a = [0u8; 128];
    a[0..4].copy_from_slice(&(cg.as_raw_fd() as u32).to_ne_bytes());
    a[4..8].copy_from_slice(&(prog_fd.as_raw_fd() as u32).to_ne_bytes());
    a[8..12].copy_from_slice(&6u32.to_ne_bytes()); // BPF_CGROUP_DEVICE
    a[12..16].copy_from_slice(&2u32.to_ne_bytes()); // BPF_F_ALLOW_MULTI
    bpf(8 /* BPF_PROG_ATTACH */, &mut a)
        .map_err(|e| Error::sys(format!("attach device program to {}", dir.display()), e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(allow: bool, kind: char, major: Option<u32>, minor: Option<u32>, access: &str) -> Rule {
        Rule {
            allow,
            kind,
            major,
            minor,
            access: access.into(),
        }
    }

    #[test]
    fn v1_semantics() {
        let deny_all = r(false, 'a', None, None, "rwm");
        let rules = vec![
            r(true, 'c', Some(1), Some(3), "rwm"),
            deny_all.clone(),
            r(true, 'c', Some(1), Some(5), "r"),
            r(false, 'c', Some(1), Some(5), "w"),
        ];
        let (default, ex) = effective(&rules);
        assert!(!default);
        // The allow before "deny all" is gone; the rest last first.
        assert_eq!(ex.len(), 2);
        assert_eq!(ex[0].line(), "c 1:5 w");
        assert_eq!(deny_all.line(), "a *:* rwm");
        // Block: 2 header loads... every jump lands on a block start.
        let p = program(&rules);
        assert_eq!(p.last().copied(), Some(insn(EXIT, 0, 0, 0, 0)));
    }

    #[test]
    fn rules_from_config() {
        let l: Linux = serde_json::from_str(
            r#"{"resources":{"devices":[{"allow":false,"access":"rwm"},
            {"allow":true,"type":"c","major":10,"minor":200,"access":"rw"}]},
            "devices":[{"path":"/dev/fuse","type":"c","major":10,"minor":229}]}"#,
        )
        .unwrap();
        let v = rules(Some(&l)).unwrap().unwrap();
        assert_eq!(v[0].line(), "a *:* rwm");
        assert!(!v[0].allow);
        assert_eq!(v[1].line(), "c 10:200 rw");
        // linux.devices gives its node no rule of its own.
        assert!(!v.iter().any(|r| r.line().starts_with("c 10:229")), "{v:?}");
        assert_eq!(v.last().unwrap().line(), "c 136:* rwm");
        let bad: Linux =
            serde_json::from_str(r#"{"resources":{"devices":[{"allow":true,"access":"rx"}]}}"#)
                .unwrap();
        let e = rules(Some(&bad)).unwrap_err().to_string();
        assert!(e.contains("devices[0].access"), "{e}");
        assert!(rules(None).unwrap().is_none());
    }
}
