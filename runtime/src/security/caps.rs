//! Capabilities (config.md "process.capabilities") and the user switch
//! they go with: the bounding set cut while still root, ids changed with
//! PR_SET_KEEPCAPS, then effective, permitted and inheritable in one
//! capset(2), and the ambient set raised one by one.

use crate::error::{strerror, Error, Result, SysCtx};
use oci_spec::runtime::Capability;

fn to_caps(set: &Option<std::collections::HashSet<Capability>>) -> caps::CapsHashSet {
    // Every name oci-spec parses is one the caps crate knows.
    set.iter()
        .flatten()
        .filter_map(|c| format!("CAP_{c}").parse::<caps::Capability>().ok())
        .collect()
}

fn mask(set: &caps::CapsHashSet) -> u64 {
    set.iter().fold(0, |m, c| m | c.bitmask())
}

fn names(mask: u64) -> String {
    let mut v: Vec<String> = caps::all()
        .into_iter()
        .filter(|c| mask & c.bitmask() != 0)
        .map(|c| c.to_string())
        .collect();
    v.sort();
    v.join(", ")
}

/// capset(2)/capget(2)'s header and per-32-bit data (version 3).
#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Default, Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const CAP_V3: u32 = 0x2008_0522;

/// Sets the effective, permitted and inheritable sets in one capset(2).
fn capset(eff: u64, perm: u64, inh: u64) -> nix::Result<()> {
    let mut h = CapHeader {
        version: CAP_V3,
        pid: 0,
    };
    let d: [CapData; 2] = [0, 32].map(|s| CapData {
        effective: (eff >> s) as u32,
        permitted: (perm >> s) as u32,
        inheritable: (inh >> s) as u32,
    });
    // SAFETY: capset(2) with a version-3 header and its two data structs,
    // both alive for the call.
    let r = unsafe { libc::syscall(libc::SYS_capset, &mut h as *mut CapHeader, d.as_ptr()) };
    nix::errno::Errno::result(r).map(drop)
}

/// This process's permitted set (capget(2)).
fn permitted_now() -> nix::Result<u64> {
    let mut h = CapHeader {
        version: CAP_V3,
        pid: 0,
    };
    let mut d = [CapData::default(); 2];
    // SAFETY: capget(2) fills the two data structs we pass, both alive.
    let r = unsafe { libc::syscall(libc::SYS_capget, &mut h as *mut CapHeader, d.as_mut_ptr()) };
    nix::errno::Errno::result(r)?;
    Ok(d[0].permitted as u64 | (d[1].permitted as u64) << 32)
}

/// User, groups and the five capability sets (config.md "User",
/// "capabilities"): the bounding set is cut while still root, ids change
/// with PR_SET_KEEPCAPS, then the other sets are set. A capability that
/// cannot be granted (berth does not hold it, or the kernel does not know
/// it) is left out with a warning, as config.md asks and runc does; so is
/// an ambient one outside the inheritable set (runc's own `runc spec`
/// config asks for such).
pub(crate) fn set_user_and_caps(
    process: &oci_spec::runtime::Process,
    warnings: &mut Vec<String>,
) -> Result<()> {
    use caps::CapSet;
    let user = process.user();
    let c = process.capabilities().as_ref();
    let sets = c.map(|c| {
        (
            to_caps(c.bounding()),
            mask(&to_caps(c.effective())),
            mask(&to_caps(c.permitted())),
            mask(&to_caps(c.inheritable())),
            to_caps(c.ambient()),
        )
    });
    let ce = |e: caps::errors::CapsError| Error::Other(format!("capabilities: {e}"));
    if let Some((bounding, ..)) = &sets {
        // Dropping a capability the set lacks already is a no-op: one
        // prctl per capability, and a read only if it failed (a capability
        // this kernel does not know is not in the set).
        for cap in caps::all() {
            if !bounding.contains(&cap) {
                if let Err(e) = caps::drop(None, CapSet::Bounding, cap) {
                    if caps::has_cap(None, CapSet::Bounding, cap).unwrap_or(false) {
                        return Err(ce(e));
                    }
                }
            }
        }
    }
    // SAFETY: prctl with integer arguments only.
    unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) };
    let gids: Vec<nix::unistd::Gid> = user
        .additional_gids()
        .iter()
        .flatten()
        .map(|g| nix::unistd::Gid::from_raw(*g))
        .collect();
    match nix::unistd::setgroups(&gids) {
        // setgroups is denied in some user namespaces; with no
        // additional gids asked for, that is fine.
        Err(nix::errno::Errno::EPERM) if gids.is_empty() => {}
        r => r.ctx(|| "process.user.additionalGids: setgroups".into())?,
    }
    let (uid, gid) = (user.uid(), user.gid());
    nix::unistd::setresgid(gid.into(), gid.into(), gid.into())
        .ctx(|| format!("process.user.gid {gid}: setresgid"))?;
    nix::unistd::setresuid(uid.into(), uid.into(), uid.into())
        .ctx(|| format!("process.user.uid {uid}: setresuid"))?;
    // SAFETY: prctl with integer arguments only.
    unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 0, 0, 0, 0) };
    let Some((_, mut eff, mut perm, mut inh, ambient)) = sets else {
        return Ok(());
    };
    if capset(eff, perm, inh).is_err() {
        // Only what berth holds can be granted: leave out the rest.
        let have = permitted_now().ctx(|| "capget".into())?;
        let missing = (eff | perm | inh) & !have;
        warnings.push(format!(
            "process.capabilities: {} cannot be granted (not held by berth or unknown to the kernel): left out",
            names(missing)
        ));
        (eff, perm, inh) = (eff & have, perm & have, inh & have);
        capset(eff, perm, inh).ctx(|| "capabilities: capset".into())?;
    }
    caps::clear(None, CapSet::Ambient).map_err(ce)?;
    let mut ambient: Vec<_> = ambient.into_iter().collect();
    ambient.sort_by_key(|c| c.index());
    for cap in ambient {
        // Raising needs the capability permitted and inheritable; runc's
        // own default config asks for ambient ones it leaves out.
        // The errno itself, worded by strerror: not through the caps
        // crate's error, whose text glibc's strerror builds with its
        // gettext machinery (about 600 KiB of cold pages in the init
        // for runc spec's config, which warns here on most hosts).
        // SAFETY: prctl with integer arguments only.
        let r = unsafe {
            libc::prctl(
                libc::PR_CAP_AMBIENT,
                libc::PR_CAP_AMBIENT_RAISE,
                cap.index() as libc::c_ulong,
                0,
                0,
            )
        };
        if let Err(e) = nix::errno::Errno::result(r) {
            warnings.push(format!(
                "can't raise ambient capability {cap}: {}",
                strerror(e)
            ));
        }
    }
    Ok(())
}
