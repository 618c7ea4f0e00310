//! Loading and validating `config.json` (runtime-spec config.md), and the
//! default configuration written by `berth spec`.

use crate::error::{Error, Result};
use oci_spec::runtime::{LinuxIdMapping, LinuxNamespaceType, Spec};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// A loaded bundle: its absolute directory, config and absolute rootfs.
pub struct Bundle {
    pub dir: PathBuf,
    pub spec: Spec,
    pub rootfs: PathBuf,
}

/// Loads `DIR/config.json` and validates it for `create`.
pub fn load_bundle(dir: &Path) -> Result<Bundle> {
    let dir = std::fs::canonicalize(dir).map_err(|e| Error::io("bundle", dir, e))?;
    if !dir.is_dir() {
        return Err(Error::Config {
            path: dir,
            msg: "bundle is not a directory".into(),
        });
    }
    let cfg = dir.join("config.json");
    let data = std::fs::read(&cfg).map_err(|e| Error::io("cannot read", &cfg, e))?;
    let spec = parse(&data).map_err(|msg| Error::Config {
        path: cfg.clone(),
        msg,
    })?;
    validate(&spec).map_err(|msg| Error::Config {
        path: cfg.clone(),
        msg,
    })?;
    let root = spec
        .root()
        .as_ref()
        .map(|r| r.path().clone())
        .unwrap_or_default();
    let rootfs = if root.is_absolute() {
        root
    } else {
        dir.join(root)
    };
    match std::fs::metadata(&rootfs) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return Err(Error::Config {
                path: cfg,
                msg: format!("root.path {} is not a directory", rootfs.display()),
            })
        }
        Err(e) => {
            return Err(Error::Config {
                path: cfg,
                msg: format!("root.path {}: {e}", rootfs.display()),
            })
        }
    }
    Ok(Bundle { dir, spec, rootfs })
}

/// Parses config.json, turning serde's message into one naming the field.
/// A capability name no kernel berth knows of is left out with a warning
/// (config.md: capabilities that cannot be granted are warnings, not
/// errors), as runc does.
pub fn parse(data: &[u8]) -> std::result::Result<Spec, String> {
    let err = match serde_json::from_slice::<Spec>(data) {
        Ok(s) => return Ok(s),
        Err(e) => field_error(data).unwrap_or_else(|| format!("invalid config: {e}")),
    };
    // The slow path, only for a config that failed: without the unknown
    // capability names, does it parse?
    let mut v: serde_json::Value = serde_json::from_slice(data).map_err(|_| err.clone())?;
    let mut dropped = Vec::new();
    if let Some(sets) = v
        .pointer_mut("/process/capabilities")
        .and_then(|c| c.as_object_mut())
    {
        for (set, list) in sets.iter_mut() {
            if let Some(list) = list.as_array_mut() {
                list.retain(|c| {
                    let known =
                        serde_json::from_value::<oci_spec::runtime::Capability>(c.clone()).is_ok();
                    if !known {
                        dropped.push(format!("{set} {c}"));
                    }
                    known
                });
            }
        }
    }
    if dropped.is_empty() {
        return Err(err);
    }
    let spec = serde_json::from_value::<Spec>(v).map_err(|_| err)?;
    crate::error::warn(&format!(
        "process.capabilities: unknown capabilities left out: {}",
        dropped.join(", ")
    ));
    Ok(spec)
}

/// For a config that failed to parse: serde's message with the path of the
/// field it refused (`linux.devices[0].type: unknown variant ...`), found by
/// parsing once more while tracking the path (never on a config that
/// parses). None for a JSON syntax error, which has no field.
fn field_error(data: &[u8]) -> Option<String> {
    let mut de = serde_json::Deserializer::from_slice(data);
    let e = serde_path_to_error::deserialize::<_, Spec>(&mut de).err()?;
    if e.inner().is_syntax() || e.inner().is_eof() {
        return None;
    }
    let path = e.path().to_string();
    (path != ".").then(|| format!("invalid config: {path}: {}", e.inner()))
}

/// Whether /sys/fs/cgroup is a cgroup2 mount (a unified host).
fn unified_host() -> bool {
    nix::sys::statfs::statfs("/sys/fs/cgroup")
        .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC)
}

/// Checks what the spec requires of a config for creating a container
/// on Linux (config.md, config-linux.md). Returns a message naming the field.
pub fn validate(spec: &Spec) -> std::result::Result<(), String> {
    let process = spec
        .process()
        .as_ref()
        .ok_or("process: missing (required by create)")?;
    match process.args() {
        Some(a) if !a.is_empty() && !a[0].is_empty() => {}
        _ => return Err("process.args: must name at least the program to run".into()),
    }
    if !process.cwd().is_absolute() {
        return Err(format!(
            "process.cwd {:?}: must be an absolute path",
            process.cwd()
        ));
    }
    // setrlimit(2) would refuse it only in the container's process; say so
    // before anything is made.
    if let Some(r) = process
        .rlimits()
        .iter()
        .flatten()
        .find(|r| r.soft() > r.hard())
    {
        return Err(format!(
            "process.rlimits {}: soft {} is above hard {}",
            r.typ(),
            r.soft(),
            r.hard()
        ));
    }
    match spec.root() {
        Some(r) if !r.path().as_os_str().is_empty() => {}
        _ => return Err("root.path: missing".into()),
    }
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        if !m.destination().is_absolute() {
            return Err(format!(
                "mounts[{i}].destination {:?}: must be an absolute path",
                m.destination()
            ));
        }
    }
    let linux = spec.linux().as_ref();
    let mut seen = HashSet::new();
    let mut new_user = false;
    let mut user_path = false;
    let mut new_pid = false;
    for ns in linux
        .and_then(|l| l.namespaces().as_ref())
        .into_iter()
        .flatten()
    {
        if !seen.insert(ns.typ()) {
            return Err(format!(
                "linux.namespaces: duplicate namespace {}",
                ns.typ()
            ));
        }
        match (ns.typ(), ns.path()) {
            (LinuxNamespaceType::User, None) => new_user = true,
            (LinuxNamespaceType::User, Some(_)) => user_path = true,
            (LinuxNamespaceType::Pid, None) => new_pid = true,
            _ => {}
        }
        if let Some(p) = ns.path() {
            if !p.is_absolute() {
                return Err(format!(
                    "linux.namespaces: {} path {p:?} is not absolute",
                    ns.typ()
                ));
            }
        }
    }
    for (k, _) in linux
        .and_then(|l| l.sysctl().as_ref())
        .into_iter()
        .flatten()
    {
        if k.is_empty() || k.contains('/') || k.split('.').any(|p| p.is_empty() || p == "..") {
            return Err(format!("linux.sysctl: bad key {k:?}"));
        }
        // Only keys of a namespace the container has its own of: anything
        // else would change the host (runc refuses them alike).
        let ns = crate::security::sysctl_namespace(k).ok_or_else(|| {
            format!("linux.sysctl: {k:?} is not namespaced; it would change the host")
        })?;
        let t = match ns {
            "ipc" => LinuxNamespaceType::Ipc,
            "network" => LinuxNamespaceType::Network,
            _ => LinuxNamespaceType::Uts,
        };
        if !seen.contains(&t) {
            return Err(format!(
                "linux.sysctl: {k:?} needs the container's own {ns} namespace"
            ));
        }
    }
    if let Some(io) = process.io_priority() {
        if !(0..=7).contains(&io.priority()) {
            return Err(format!(
                "process.ioPriority.priority {}: must be between 0 and 7",
                io.priority()
            ));
        }
    }
    if let Some(sc) = linux.and_then(|l| l.seccomp().as_ref()) {
        if sc.listener_metadata().is_some() && sc.listener_path().is_none() {
            return Err("linux.seccomp.listenerMetadata: set without listenerPath".into());
        }
    }
    crate::security::check_lsm(Some(process), linux).map_err(|e| e.to_string())?;
    crate::rootfs::check(spec)?;
    if linux
        .and_then(|l| l.net_devices().as_ref())
        .is_some_and(|d| !d.is_empty())
        && !seen.contains(&LinuxNamespaceType::Network)
    {
        return Err(
            "linux.netDevices: needs a network namespace of the container's own in linux.namespaces"
                .into(),
        );
    }
    for (k, d) in linux
        .and_then(|l| l.net_devices().as_ref())
        .into_iter()
        .flatten()
    {
        let bad = |n: &str| {
            n.is_empty() || n.len() > 15 || n.contains('/') || n.contains(char::is_whitespace)
        };
        if bad(k) || d.name().as_deref().is_some_and(bad) {
            return Err(format!("linux.netDevices.{k}: not a valid interface name"));
        }
    }
    if let Some(offsets) = linux.and_then(|l| l.time_offsets().as_ref()) {
        let new_time = linux
            .and_then(|l| l.namespaces().as_ref())
            .into_iter()
            .flatten()
            .any(|n| n.typ() == LinuxNamespaceType::Time && n.path().is_none());
        if !offsets.is_empty() && !new_time {
            return Err("linux.timeOffsets: needs a new time namespace in linux.namespaces".into());
        }
        if let Some(k) = offsets
            .keys()
            .find(|k| !matches!(k.as_str(), "monotonic" | "boottime"))
        {
            return Err(format!(
                "linux.timeOffsets: unknown clock {k:?} (monotonic or boottime)"
            ));
        }
    }
    if let Some(p) = linux.and_then(|l| l.memory_policy().as_ref()) {
        use oci_spec::runtime::MemoryPolicyModeType as M;
        let nodes = p.nodes().as_deref().unwrap_or("");
        crate::security::nodemask(nodes).map_err(|e| format!("linux.memoryPolicy.nodes: {e}"))?;
        let none = nodes.trim().is_empty();
        match p.mode() {
            M::MpolDefault | M::MpolLocal if !none => {
                return Err(format!("linux.memoryPolicy: {} takes no nodes", p.mode()))
            }
            M::MpolBind | M::MpolInterleave | M::MpolWeightedInterleave | M::MpolPreferredMany
                if none =>
            {
                return Err(format!("linux.memoryPolicy: {} needs nodes", p.mode()))
            }
            _ => {}
        }
    }
    if let Some(res) = linux.and_then(|l| l.resources().as_ref()) {
        for (i, l) in res.hugepage_limits().iter().flatten().enumerate() {
            let s = l.page_size();
            let ok = s.len() > 2
                && s.ends_with('B')
                && matches!(s.as_bytes()[s.len() - 2], b'K' | b'M' | b'G')
                && s[..s.len() - 2].bytes().all(|b| b.is_ascii_digit())
                && !s.starts_with('0');
            if !ok {
                return Err(format!(
                    "linux.resources.hugepageLimits[{i}].pageSize {s:?}: must be like 2MB, 64KB, 1GB"
                ));
            }
        }
    }
    if user_path && new_pid {
        return Err("linux.namespaces: joining a user namespace by path together with a new pid namespace is not supported".into());
    }
    let uid_maps = linux.and_then(|l| l.uid_mappings().as_ref());
    let gid_maps = linux.and_then(|l| l.gid_mappings().as_ref());
    if new_user {
        for (name, maps) in [("uidMappings", uid_maps), ("gidMappings", gid_maps)] {
            let maps = maps
                .filter(|m| !m.is_empty())
                .ok_or_else(|| format!("linux.{name}: required with a new user namespace"))?;
            check_mappings(name, maps)?;
        }
    } else if uid_maps.is_some_and(|m| !m.is_empty()) || gid_maps.is_some_and(|m| !m.is_empty()) {
        return Err("linux.uidMappings: set without a new user namespace".into());
    }
    // Without a mount namespace of its own the container shares berth's
    // mount table: whatever would be mounted there would change the host
    // and outlive the container, so what needs mounts is refused (runc
    // refuses masks and read-only paths alike, and mounts into the
    // host's namespace).
    if !seen.contains(&LinuxNamespaceType::Mount) {
        let set = |b: bool, field: &str| {
            if b {
                Err(format!(
                    "{field}: needs a mount namespace of its own (linux.namespaces has none, so it would change the host's mounts)"
                ))
            } else {
                Ok(())
            }
        };
        let some = |v: Option<&Vec<String>>| v.is_some_and(|v| !v.is_empty());
        set(
            spec.mounts().as_ref().is_some_and(|m| !m.is_empty()),
            "mounts",
        )?;
        set(
            some(linux.and_then(|l| l.masked_paths().as_ref())),
            "linux.maskedPaths",
        )?;
        set(
            some(linux.and_then(|l| l.readonly_paths().as_ref())),
            "linux.readonlyPaths",
        )?;
        set(
            linux
                .and_then(|l| l.devices().as_ref())
                .is_some_and(|d| !d.is_empty()),
            "linux.devices",
        )?;
        set(
            linux
                .and_then(|l| l.rootfs_propagation().as_ref())
                .is_some(),
            "linux.rootfsPropagation",
        )?;
        set(
            spec.root()
                .as_ref()
                .and_then(|r| r.readonly())
                .unwrap_or(false),
            "root.readonly",
        )?;
    }
    if let Some(res) = linux.and_then(|l| l.resources().as_ref()) {
        if let Some(mem) = res.memory() {
            for (f, v) in [
                ("limit", mem.limit()),
                ("reservation", mem.reservation()),
                ("swap", mem.swap()),
            ] {
                if let Some(v) = v {
                    if v < -1 {
                        return Err(format!(
                            "linux.resources.memory.{f} {v}: must be -1 or positive"
                        ));
                    }
                }
            }
        }
        if let Some(p) = res.pids() {
            if p.limit() < -1 {
                return Err(format!(
                    "linux.resources.pids.limit {}: must be -1 or positive",
                    p.limit()
                ));
            }
        }
        if let Some(cpu) = res.cpu() {
            // The kernel's range (v1 cpu.shares silently clamps; runc reads
            // it back and fails, berth refuses it up front).
            if let Some(sh) = cpu
                .shares()
                .filter(|s| *s != 0 && !(2..=262_144).contains(s))
            {
                return Err(format!(
                    "linux.resources.cpu.shares {sh}: must be between 2 and 262144"
                ));
            }
            if let Some(q) = cpu.quota() {
                if q < -1 || (0..1000).contains(&q) && q != 0 {
                    return Err(format!(
                        "linux.resources.cpu.quota {q}: must be -1 or at least 1000"
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Mappings must be non-empty ranges that do not overlap, in either the
/// container or the host id space (user_namespaces(7)).
fn check_mappings(name: &str, maps: &[LinuxIdMapping]) -> std::result::Result<(), String> {
    for (i, a) in maps.iter().enumerate() {
        if a.size() == 0 {
            return Err(format!("linux.{name}[{i}]: size must not be 0"));
        }
        for b in &maps[i + 1..] {
            let over = |x: u32, y: u32| {
                let (x, y, s1, s2) = (x as u64, y as u64, a.size() as u64, b.size() as u64);
                x < y + s2 && y < x + s1
            };
            if over(a.container_id(), b.container_id()) || over(a.host_id(), b.host_id()) {
                return Err(format!("linux.{name}: ranges overlap"));
            }
        }
    }
    Ok(())
}

/// The default config.json of `berth spec` (the same shape as `runc spec`).
/// `rootless` adds a user namespace mapping the caller's ids to root.
pub fn default_spec(rootless: bool) -> serde_json::Value {
    use serde_json::json;
    let caps = json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    let mut spec = json!({
        "ociVersion": crate::SPEC_VERSION,
        "process": {
            "terminal": true,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": true},
        "hostname": "berth",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
        ],
        "linux": {
            "resources": {"devices": [{"allow": false, "access": "rwm"}]},
            "namespaces": [
                {"type": "pid"}, {"type": "network"}, {"type": "ipc"},
                {"type": "uts"}, {"type": "mount"}
            ],
            "maskedPaths": [
                "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                "/proc/sched_debug", "/sys/firmware", "/sys/devices/virtual/powercap",
                "/proc/scsi"
            ],
            "readonlyPaths": [
                "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"
            ]
        }
    });
    // A cgroup namespace only on a cgroup v2 host, as `runc spec` writes it:
    // tools start from this config and add the namespaces they want.
    if !rootless && unified_host() {
        spec["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "cgroup"}));
    }
    if rootless {
        let uid = nix::unistd::getuid().as_raw();
        let gid = nix::unistd::getgid().as_raw();
        let linux = &mut spec["linux"];
        linux["uidMappings"] = json!([{"containerID": 0, "hostID": uid, "size": 1}]);
        linux["gidMappings"] = json!([{"containerID": 0, "hostID": gid, "size": 1}]);
        // runc's rootless spec: no network namespace of its own (nothing
        // to connect it to without privilege), no cgroup namespace.
        linux["namespaces"] = json!([
            {"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"},
            {"type": "user"}
        ]);
        linux.as_object_mut().unwrap().remove("resources");
        let mounts = spec["mounts"].as_array_mut().unwrap();
        mounts[2]["options"] = json!([
            "nosuid",
            "noexec",
            "newinstance",
            "ptmxmode=0666",
            "mode=0620"
        ]);
        mounts[5] = json!({"destination": "/sys", "type": "none", "source": "/sys",
                           "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]});
    }
    spec
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec_with(linux: serde_json::Value) -> Spec {
        let mut v = default_spec(false);
        v["process"]["terminal"] = false.into();
        for (k, val) in linux.as_object().unwrap() {
            v["linux"][k] = val.clone();
        }
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn default_spec_parses_and_validates() {
        for rootless in [false, true] {
            let s: Spec = serde_json::from_value(default_spec(rootless)).unwrap();
            validate(&s).unwrap();
        }
    }

    #[test]
    fn rejects_missing_args() {
        let mut v = default_spec(false);
        v["process"]["args"] = serde_json::json!([]);
        let s: Spec = serde_json::from_value(v).unwrap();
        assert!(validate(&s).unwrap_err().contains("process.args"));
    }

    #[test]
    fn rejects_unknown_namespace() {
        let mut v = default_spec(false);
        v["linux"]["namespaces"] = serde_json::json!([{"type": "bogus"}]);
        let e = parse(v.to_string().as_bytes()).unwrap_err();
        assert!(e.contains("bogus"), "{e}");
    }

    #[test]
    fn rejects_duplicate_namespace_and_bad_maps() {
        let s = spec_with(serde_json::json!({"namespaces": [{"type": "pid"}, {"type": "pid"}]}));
        assert!(validate(&s).unwrap_err().contains("duplicate"));
        let s = spec_with(serde_json::json!({"namespaces": [{"type": "user"}]}));
        assert!(validate(&s).unwrap_err().contains("uidMappings"));
        let s = spec_with(serde_json::json!({
            "namespaces": [{"type": "user"}],
            "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 10},
                            {"containerID": 5, "hostID": 5000, "size": 10}],
            "gidMappings": [{"containerID": 0, "hostID": 1000, "size": 10}]
        }));
        assert!(validate(&s).unwrap_err().contains("overlap"));
    }

    #[test]
    fn rejects_relative_mount_destination() {
        let mut v = default_spec(false);
        v["mounts"][0]["destination"] = "proc".into();
        let s: Spec = serde_json::from_value(v).unwrap();
        assert!(validate(&s).unwrap_err().contains("mounts[0].destination"));
    }
}
