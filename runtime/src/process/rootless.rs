//! Running without privilege (docs/rootless.md): whether berth is
//! rootless, where its state goes then, and the user namespace's id maps
//! written the only ways an unprivileged user can: its own id directly,
//! anything more through the setuid `newuidmap`/`newgidmap` within the
//! subordinate ranges of /etc/subuid and /etc/subgid.

use crate::error::{Error, Result};
use oci_spec::runtime::LinuxIdMapping;
use std::path::PathBuf;

/// Whether this process is in a user namespace other than the initial one
/// (whose uid_map is the identity over all 2^32 - 1 ids). Read once: the
/// container init, a copy of berth, asks again on every start and gets
/// the answer `--rootless auto` already read, without a file read.
pub fn in_user_namespace() -> bool {
    use std::sync::atomic::Ordering;
    match IN_USERNS.load(Ordering::Relaxed) {
        1 => false,
        2 => true,
        _ => {
            let yes = match std::fs::read_to_string("/proc/self/uid_map") {
                Ok(m) => {
                    let f: Vec<&str> = m.split_whitespace().collect();
                    f != ["0", "0", "4294967295"]
                }
                Err(_) => false,
            };
            IN_USERNS.store(if yes { 2 } else { 1 }, Ordering::Relaxed);
            yes
        }
    }
}

/// [`in_user_namespace`]'s answer: 0 not read yet, 1 no, 2 yes
/// ([`enter_user_namespace`] sets it when it enters one).
static IN_USERNS: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);

/// This process's effective uid as the initial user namespace sees it
/// (its own uid_map's host id for it): who a daemon there, such as the
/// user's D-Bus, takes berth for.
pub fn host_uid() -> u32 {
    let me = nix::unistd::geteuid().as_raw();
    let map = std::fs::read_to_string("/proc/self/uid_map").unwrap_or_default();
    map_id(&map, me).unwrap_or(me)
}

/// `id` through an id map's text (`inside outside count` lines).
fn map_id(map: &str, id: u32) -> Option<u32> {
    map.lines().find_map(|l| {
        let f: Vec<u64> = l
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        let [inside, outside, count] = f[..] else {
            return None;
        };
        let id = u64::from(id);
        (inside <= id && id < inside + count)
            .then(|| u32::try_from(outside + id - inside).ok())
            .flatten()
    })
}

/// `--rootless true|false|auto`: given, or (auto) whether berth runs
/// without privilege: not as root, or as root of a user namespace (as
/// under rootless podman), where the host's cgroups and devices are out
/// of reach, as runc decides it.
pub fn detect(flag: Option<bool>) -> bool {
    flag.unwrap_or_else(|| !nix::unistd::geteuid().is_root() || in_user_namespace())
}

/// The state root of a rootless berth: `$XDG_RUNTIME_DIR/berth`. The
/// runtime directory must be set, and be the user's own.
pub fn default_root() -> Result<PathBuf> {
    let Some(dir) = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) else {
        return Err(Error::Other(
            "rootless: XDG_RUNTIME_DIR is not set (the state goes to $XDG_RUNTIME_DIR/berth): set it to the user's runtime directory, or pass --root".into(),
        ));
    };
    let dir = PathBuf::from(dir);
    use std::os::unix::fs::MetadataExt;
    let me = nix::unistd::geteuid().as_raw();
    match std::fs::metadata(&dir) {
        Ok(m) if m.is_dir() && m.uid() == me => Ok(dir.join("berth")),
        Ok(m) => Err(Error::Other(format!(
            "rootless: XDG_RUNTIME_DIR {} is not a directory of uid {me} (owner {}): refusing to keep state there",
            dir.display(),
            m.uid()
        ))),
        Err(e) => Err(Error::io("rootless: XDG_RUNTIME_DIR", &dir, e)),
    }
}

/// The subordinate id ranges (start, count) of the user `uid` (named or
/// numeric) in `file` (/etc/subuid or /etc/subgid).
fn subordinate(file: &str, uid: u32) -> Vec<(u64, u64)> {
    let name = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten()
        .map(|u| u.name);
    let text = std::fs::read_to_string(file).unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let mut f = l.trim().split(':');
            let (who, start, count) = (f.next()?, f.next()?, f.next()?);
            let mine = who == uid.to_string() || name.as_deref() == Some(who);
            mine.then_some((start.parse().ok()?, count.parse().ok()?))
        })
        .collect()
}

/// Checks that every host range of `maps` is the caller's own `id` (one
/// id) or lies within its subordinate ranges of `file`.
fn check_ranges(maps: &[LinuxIdMapping], id: u32, file: &str, field: &str) -> Result<()> {
    let ranges = subordinate(file, nix::unistd::getuid().as_raw());
    for m in maps {
        let (lo, n) = (u64::from(m.host_id()), u64::from(m.size()));
        let own = lo == u64::from(id) && n == 1;
        let sub = ranges.iter().any(|&(s, c)| lo >= s && lo + n <= s + c);
        if !own && !sub {
            let have: Vec<String> = ranges
                .iter()
                .map(|(s, c)| format!("{s}-{}", s + c - 1))
                .collect();
            return Err(Error::invalid(
                field,
                format!(
                    "host ids {lo}-{} are neither this user's own id {id} nor within its subordinate ranges in {file} ({})",
                    lo + n - 1,
                    if have.is_empty() { "none".to_string() } else { have.join(", ") }
                ),
            ));
        }
    }
    Ok(())
}

fn only_own(maps: &[LinuxIdMapping], id: u32) -> bool {
    matches!(maps, [m] if m.host_id() == id && m.size() == 1)
}

/// Writes the id maps of `pid`'s new user namespace as an unprivileged
/// user. Only the user's own ids: directly (gid_map after denying
/// setgroups(2), as the kernel requires). More: `newuidmap`/`newgidmap`
/// (Debian's uidmap), after checking the ranges so that the error names
/// the range rather than the helper's message.
pub(crate) fn write_maps(pid: i32, uids: &[LinuxIdMapping], gids: &[LinuxIdMapping]) -> Result<()> {
    let (uid, gid) = (
        nix::unistd::geteuid().as_raw(),
        nix::unistd::getegid().as_raw(),
    );
    check_ranges(uids, uid, "/etc/subuid", "linux.uidMappings")?;
    check_ranges(gids, gid, "/etc/subgid", "linux.gidMappings")?;
    if only_own(uids, uid) {
        crate::process::write_id_map(pid, "uid_map", "linux.uidMappings", uids)?;
    } else {
        helper("newuidmap", pid, uids, "linux.uidMappings")?;
    }
    if only_own(gids, gid) {
        let p = format!("/proc/{pid}/setgroups");
        std::fs::write(&p, "deny")
            .map_err(|e| Error::invalid("linux.gidMappings", format!("writing {p}: {e}")))?;
        crate::process::write_id_map(pid, "gid_map", "linux.gidMappings", gids)?;
    } else {
        helper("newgidmap", pid, gids, "linux.gidMappings")?;
    }
    Ok(())
}

fn helper(name: &str, pid: i32, maps: &[LinuxIdMapping], field: &str) -> Result<()> {
    let mut c = std::process::Command::new(name);
    c.arg(pid.to_string());
    for m in maps {
        c.args([
            m.container_id().to_string(),
            m.host_id().to_string(),
            m.size().to_string(),
        ]);
    }
    let out = c.output().map_err(|e| {
        Error::invalid(
            field,
            format!(
                "mapping more than the user's own id needs {name} (Debian's uidmap package): {e}"
            ),
        )
    })?;
    if !out.status.success() {
        return Err(Error::invalid(
            field,
            format!(
                "{name} {pid}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        ));
    }
    Ok(())
}

/// The id maps a rootless user's image store and its containers use, as
/// podman's: the user's own id is 0, its subordinate ranges (in file
/// order) follow from 1. An error when the user has none.
fn store_maps(file: &str, own: u32) -> Result<Vec<LinuxIdMapping>> {
    let ranges = subordinate(file, nix::unistd::getuid().as_raw());
    if ranges.is_empty() {
        let who = nix::unistd::User::from_uid(nix::unistd::getuid())
            .ok()
            .flatten()
            .map_or_else(|| nix::unistd::getuid().to_string(), |u| u.name);
        return Err(Error::Other(format!(
            "rootless images need subordinate ids: {file} has no range for {who} (add one, e.g. usermod --add-subuids 100000-165535 --add-subgids 100000-165535 {who})"
        )));
    }
    let map = |c: u64, h: u64, n: u64| -> Result<LinuxIdMapping> {
        oci_spec::runtime::LinuxIdMappingBuilder::default()
            .container_id(
                u32::try_from(c).map_err(|_| Error::Other(format!("{file}: too many ids")))?,
            )
            .host_id(
                u32::try_from(h).map_err(|_| Error::Other(format!("{file}: id {h} too large")))?,
            )
            .size(u32::try_from(n).map_err(|_| Error::Other(format!("{file}: range too large")))?)
            .build()
            .map_err(|e| Error::Other(e.to_string()))
    };
    let mut v = vec![map(0, u64::from(own), 1)?];
    let mut next = 1u64;
    for (start, count) in ranges {
        v.push(map(next, start, count)?);
        next += count;
    }
    Ok(v)
}

/// Puts the rest of this command in a user namespace in which the user is
/// root and its subordinate ids are mapped (podman's `unshare`), with a
/// mount namespace of its own: the one place an unprivileged user can own
/// files of many ids, make whiteouts and mount overlayfs. Forks: returns
/// `Some(status)` in the parent, which only waits and should exit with
/// it, and `None` in the child, which goes on. Call it before any thread
/// starts.
pub fn enter_user_namespace() -> Result<Option<i32>> {
    use nix::sched::CloneFlags;
    use nix::unistd::ForkResult;
    let (uid, gid) = (
        nix::unistd::geteuid().as_raw(),
        nix::unistd::getegid().as_raw(),
    );
    let uids = store_maps("/etc/subuid", uid)?;
    let gids = store_maps("/etc/subgid", gid)?;
    let (ready_r, ready_w) = nix::unistd::pipe().map_err(|e| Error::sys("pipe", e))?;
    let (go_r, go_w) = nix::unistd::pipe().map_err(|e| Error::sys("pipe", e))?;
    // SAFETY: called before any thread starts (the CLI calls it first
    // thing for the image commands), so the child may run anything.
    match unsafe { nix::unistd::fork() }.map_err(|e| Error::sys("fork", e))? {
        ForkResult::Child => {
            drop((ready_r, go_w));
            let step = || -> Result<()> {
                // SAFETY: prctl with integer arguments only.
                unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) };
                nix::sched::unshare(CloneFlags::CLONE_NEWUSER)
                    .map_err(|e| Error::sys("rootless: unshare a user namespace", e))?;
                IN_USERNS.store(2, std::sync::atomic::Ordering::Relaxed);
                nix::unistd::write(&ready_w, b"u").map_err(|e| Error::sys("pipe", e))?;
                let mut b = [0u8; 1];
                match nix::unistd::read(&go_r, &mut b) {
                    Ok(1) if b[0] == b'g' => {}
                    _ => {
                        return Err(Error::Other(
                            "rootless: the id maps were not written".into(),
                        ))
                    }
                }
                let root = nix::unistd::Uid::from_raw(0);
                let rootg = nix::unistd::Gid::from_raw(0);
                nix::unistd::setresgid(rootg, rootg, rootg)
                    .map_err(|e| Error::sys("setresgid", e))?;
                nix::unistd::setresuid(root, root, root).map_err(|e| Error::sys("setresuid", e))?;
                let _ = nix::unistd::setgroups(&[]);
                nix::sched::unshare(CloneFlags::CLONE_NEWNS)
                    .map_err(|e| Error::sys("rootless: unshare a mount namespace", e))?;
                nix::mount::mount(
                    None::<&str>,
                    "/",
                    None::<&str>,
                    nix::mount::MsFlags::MS_REC | nix::mount::MsFlags::MS_SLAVE,
                    None::<&str>,
                )
                .map_err(|e| Error::sys("rootless: make / a slave mount", e))?;
                Ok(())
            };
            step().map(|()| None)
        }
        ForkResult::Parent { child } => {
            drop((ready_w, go_r));
            let mut b = [0u8; 1];
            let mapped = match nix::unistd::read(&ready_r, &mut b) {
                Ok(1) => write_maps(child.as_raw(), &uids, &gids),
                _ => Err(Error::Other("rootless: the namespace child failed".into())),
            };
            if mapped.is_ok() {
                let _ = nix::unistd::write(&go_w, b"g");
            }
            drop(go_w);
            let status = loop {
                match nix::sys::wait::waitpid(child, None) {
                    Ok(nix::sys::wait::WaitStatus::Exited(_, c)) => break c,
                    Ok(nix::sys::wait::WaitStatus::Signaled(_, s, _)) => break 128 + s as i32,
                    Ok(_) => continue,
                    Err(nix::errno::Errno::EINTR) => continue,
                    Err(e) => return Err(Error::sys("waitpid", e)),
                }
            };
            mapped.map(|()| Some(status))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(c: u32, h: u32, n: u32) -> LinuxIdMapping {
        oci_spec::runtime::LinuxIdMappingBuilder::default()
            .container_id(c)
            .host_id(h)
            .size(n)
            .build()
            .unwrap()
    }

    #[test]
    fn ranges_are_checked_against_the_users_own() {
        let d = std::env::temp_dir().join(format!("berth-subuid-{}", std::process::id()));
        let me = nix::unistd::getuid().as_raw();
        std::fs::write(&d, format!("someone:1:5\n{me}:100000:65536\n")).unwrap();
        let f = d.to_str().unwrap();
        assert_eq!(subordinate(f, me), vec![(100000, 65536)]);
        assert!(check_ranges(&[m(0, 4242, 1), m(1, 100000, 65536)], 4242, f, "x").is_ok());
        let e = check_ranges(&[m(1, 165000, 1000)], 4242, f, "x")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("165000-165999") && e.contains("100000-165535"),
            "{e}"
        );
        assert!(check_ranges(&[m(0, 4243, 1)], 4242, f, "x").is_err());
        assert!(only_own(&[m(0, 4242, 1)], 4242) && !only_own(&[m(0, 4242, 2)], 4242));
        let map = "         0       1000          1\n         1     100000      65536\n";
        assert_eq!(map_id(map, 0), Some(1000));
        assert_eq!(map_id(map, 1000), Some(100999));
        assert_eq!(map_id(map, 70000), None);
        std::fs::remove_file(&d).unwrap();
    }
}
