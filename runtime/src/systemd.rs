//! The systemd cgroup driver (`--systemd-cgroup`), as runc's: the
//! container's cgroup is a transient scope unit systemd makes on the system
//! bus (StartTransientUnit with the init's pid, `Delegate=yes`), limits as
//! unit properties where systemd has them. `cgroups.rs` writes what it has
//! not (the unified map, hugetlb, exactness) and berth's eBPF device
//! program to the unit's cgroup directly, as for cgroupfs.
//!
//! `linux.cgroupsPath` is `SLICE:PREFIX:NAME`: the unit `PREFIX-NAME.scope`
//! in `SLICE` (empty: `system.slice`; `-`: the root slice), or, for a NAME
//! ending in `.slice`, that slice itself. Rootless, the unit is the
//! calling user's, made by its user manager over the user bus (systemd
//! delegates `user@UID.service` to the user; empty SLICE: `user.slice`
//! there), as runc's rootless systemd driver does. The conversation happens after
//! the clone (zbus runs a thread; the init is already a copy of a
//! single-threaded berth), before the init is released.

use crate::error::{Error, Result};
use oci_spec::runtime::LinuxResources;
use std::path::PathBuf;
use std::time::Duration;
use zbus::zvariant::{OwnedObjectPath, Value};

const DEST: &str = "org.freedesktop.systemd1";
const PATH: &str = "/org/freedesktop/systemd1";
const MANAGER: &str = "org.freedesktop.systemd1.Manager";
/// How long a job may take before berth gives up on it.
const JOB_TIMEOUT: Duration = Duration::from_secs(30);

/// Where a container goes: its unit and that unit's cgroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unit {
    /// `system.slice`, `kubepods-burstable.slice`, ... (`-.slice`: root).
    pub slice: String,
    /// `PREFIX-NAME.scope`, or `NAME.slice`.
    pub name: String,
    /// The unit's cgroup, relative to the cgroup2 mount.
    pub cgroup: PathBuf,
    /// The calling user's manager's unit (rootless), not the system's.
    pub user: bool,
}

impl Unit {
    pub fn is_slice(&self) -> bool {
        self.name.ends_with(".slice")
    }
}

fn bad(path: &str, why: &str) -> Error {
    Error::invalid(
        "linux.cgroupsPath",
        format!("{path:?}: {why} (with --systemd-cgroup it is SLICE:PREFIX:NAME)"),
    )
}

/// A unit name part systemd accepts (unit_name_is_valid's alphabet).
fn valid_part(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b":-_.\\@".contains(&b))
}

/// The cgroup path of a slice: systemd nests `a-b-c.slice` as
/// `a.slice/a-b.slice/a-b-c.slice`; `-.slice` is the root.
pub fn slice_path(slice: &str) -> std::result::Result<PathBuf, String> {
    let Some(stem) = slice.strip_suffix(".slice") else {
        return Err(format!("slice {slice:?} does not end in .slice"));
    };
    if stem == "-" {
        return Ok(PathBuf::new());
    }
    if !valid_part(stem) || stem.starts_with('-') || stem.ends_with('-') || stem.contains("--") {
        return Err(format!("slice {slice:?} is not a valid slice name"));
    }
    let mut p = PathBuf::new();
    let mut prefix = String::new();
    for part in stem.split('-') {
        if !prefix.is_empty() {
            prefix.push('-');
        }
        prefix.push_str(part);
        p.push(format!("{prefix}.slice"));
    }
    Ok(p)
}

/// Parses `linux.cgroupsPath` for the systemd driver (empty: berth's
/// default `system.slice:berth:ID`, as runc's is `:runc:ID`). `user`: for
/// the calling user's manager, whose slices live in its own cgroup
/// (`user.slice/user-UID.slice/user@UID.service`), `user.slice` the default.
pub fn plan(cgroups_path: &str, id: &str, user: bool) -> Result<Unit> {
    let top = if user { "user.slice" } else { "system.slice" };
    let default = format!("{top}:berth:{id}");
    let path = if cgroups_path.is_empty() {
        default.as_str()
    } else {
        cgroups_path
    };
    let parts: Vec<&str> = path.split(':').collect();
    let [slice, prefix, name] = parts[..] else {
        return Err(bad(path, "not three fields separated by ':'"));
    };
    let slice = if slice.is_empty() { top } else { slice };
    let parent = slice_path(slice).map_err(|e| bad(path, &e))?;
    if name.is_empty() || !valid_part(name) {
        return Err(bad(
            path,
            "NAME is empty or has characters a unit name cannot",
        ));
    }
    let unit = if name.ends_with(".slice") {
        // A slice of its own, below SLICE (the prefix is not used).
        let own = slice_path(name).map_err(|e| bad(path, &e))?;
        if !own.starts_with(&parent) || own == parent {
            return Err(bad(path, &format!("{name} is not below {slice}")));
        }
        name.to_string()
    } else {
        if !prefix.is_empty() && !valid_part(prefix) {
            return Err(bad(path, "PREFIX has characters a unit name cannot"));
        }
        if prefix.is_empty() {
            format!("{name}.scope")
        } else {
            format!("{prefix}-{name}.scope")
        }
    };
    let cgroup = if unit.ends_with(".slice") {
        slice_path(&unit).map_err(|e| bad(path, &e))?
    } else {
        parent.join(&unit)
    };
    let cgroup = if user {
        let uid = crate::process::rootless::host_uid();
        PathBuf::from(format!("user.slice/user-{uid}.slice/user@{uid}.service")).join(cgroup)
    } else {
        cgroup
    };
    Ok(Unit {
        slice: slice.to_string(),
        name: unit,
        cgroup,
        user,
    })
}

/// One unit property.
pub type Property = (String, Value<'static>);

/// A cpuset list (`0-3,7`) as the bitmask systemd's AllowedCPUs takes.
fn cpu_bitmask(list: &str, field: &str) -> Result<Vec<u8>> {
    let mut bits: Vec<u8> = Vec::new();
    for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let (a, b) = match (a.parse::<usize>(), b.parse::<usize>()) {
            (Ok(a), Ok(b)) if a <= b && b < 8192 => (a, b),
            _ => {
                return Err(Error::invalid(
                    field,
                    format!("{list:?} is not a list of numbers"),
                ))
            }
        };
        for n in a..=b {
            if bits.len() <= n / 8 {
                bits.resize(n / 8 + 1, 0);
            }
            bits[n / 8] |= 1 << (n % 8);
        }
    }
    Ok(bits)
}

/// -1 (unlimited) as systemd's infinity.
fn limit(v: i64) -> u64 {
    if v < 0 {
        u64::MAX
    } else {
        v as u64
    }
}

/// The unit properties for `res` that systemd knows (runc's conversions:
/// CPUWeight from shares, the quota per second, swap on top of memory).
pub fn resource_properties(res: &LinuxResources) -> Result<Vec<Property>> {
    let mut p: Vec<Property> = Vec::new();
    let mut set = |k: &str, v: Value<'static>| p.push((k.to_string(), v));
    if let Some(m) = res.memory() {
        if let Some(l) = m.limit() {
            set("MemoryMax", Value::U64(limit(l)));
        }
        if let Some(r) = m.reservation() {
            set("MemoryLow", Value::U64(limit(r)));
        }
        if let Some(s) = m.swap() {
            // The spec's swap is memory+swap; systemd's is swap alone.
            let v = match (s, m.limit()) {
                (-1, _) => u64::MAX,
                (s, Some(l)) if l >= 0 => (s - l).max(0) as u64,
                (s, _) => limit(s),
            };
            set("MemorySwapMax", Value::U64(v));
        }
    }
    if let Some(c) = res.cpu() {
        if let Some(shares) = c.shares().filter(|s| *s > 0) {
            let w = 1 + (shares.clamp(2, 262_144) - 2) * 9999 / 262_142;
            set("CPUWeight", Value::U64(w));
        }
        let period = c.period().filter(|p| *p > 0).unwrap_or(100_000);
        if c.period().is_some() {
            set("CPUQuotaPeriodUSec", Value::U64(period));
        }
        if let Some(q) = c.quota() {
            let per_sec = if q > 0 {
                // systemd keeps whole percents: round up to 10 ms a second
                // so the cgroup gets at least the quota asked for.
                let us = (q as u64 * 1_000_000).div_ceil(period);
                us.div_ceil(10_000) * 10_000
            } else {
                u64::MAX
            };
            set("CPUQuotaPerSecUSec", Value::U64(per_sec));
        }
        if let Some(cpus) = c.cpus().as_deref().filter(|s| !s.is_empty()) {
            let b = cpu_bitmask(cpus, "linux.resources.cpu.cpus")?;
            set("AllowedCPUs", Value::from(b));
        }
        if let Some(mems) = c.mems().as_deref().filter(|s| !s.is_empty()) {
            let b = cpu_bitmask(mems, "linux.resources.cpu.mems")?;
            set("AllowedMemoryNodes", Value::from(b));
        }
    }
    if let Some(pids) = res.pids() {
        if pids.limit() != 0 {
            set("TasksMax", Value::U64(limit(pids.limit())));
        }
    }
    if let Some(w) = res.block_io().as_ref().and_then(|b| b.weight()) {
        // blkio's 10..1000 onto io's 1..10000, as runc converts it.
        let w = 1 + (w.clamp(10, 1000) as u64 - 10) * 9999 / 990;
        set("IOWeight", Value::U64(w));
    }
    Ok(p)
}

/// The device policy, when berth's rules say "deny everything, then allow
/// these" and each allowed device is one systemd can name; otherwise
/// nothing (berth's own eBPF program enforces the rules either way).
pub fn device_properties(rules: &[crate::devices::Rule]) -> Vec<Property> {
    let Some((first, rest)) = rules.split_first() else {
        return Vec::new();
    };
    if first.allow || first.kind != 'a' || first.major.is_some() || first.minor.is_some() {
        return Vec::new();
    }
    let mut allow: Vec<(String, String)> = Vec::new();
    for r in rest {
        let kind = match r.kind {
            'c' => "char",
            'b' => "block",
            _ => return Vec::new(),
        };
        match (r.allow, r.major, r.minor) {
            (true, Some(maj), Some(min)) => {
                allow.push((format!("/dev/{kind}/{maj}:{min}"), r.access.clone()))
            }
            // A whole major: systemd names it by /proc/devices' name.
            (true, Some(maj), None) => match device_group(kind, maj) {
                Some(name) => allow.push((format!("{kind}-{name}"), r.access.clone())),
                None => return Vec::new(),
            },
            _ => return Vec::new(),
        }
    }
    vec![
        ("DevicePolicy".to_string(), Value::from("strict")),
        ("DeviceAllow".to_string(), Value::from(allow)),
    ]
}

/// The /proc/devices name of a major number (`136` → `pts`).
fn device_group(kind: &str, major: u32) -> Option<String> {
    let text = std::fs::read_to_string("/proc/devices").ok()?;
    let section = if kind == "char" {
        "Character devices:"
    } else {
        "Block devices:"
    };
    text.split("\n\n")
        .find(|s| s.trim_start().starts_with(section))?
        .lines()
        .skip(1)
        .filter_map(|l| l.trim().split_once(' '))
        .find(|(m, _)| m.parse() == Ok(major))
        .map(|(_, n)| n.to_string())
}

/// An `org.systemd.property.NAME` annotation's value, in GVariant text
/// form as runc takes it: `true`, `uint64 123`, `'text'`, `['a', 'b']`,
/// a bare number (int32) or with a type (`@t 5`, `int64 -1`, ...).
pub fn parse_gvariant(s: &str) -> std::result::Result<Value<'static>, String> {
    let s = s.trim();
    let bad = || format!("{s:?} is not a GVariant value berth reads");
    match s {
        "true" => return Ok(Value::Bool(true)),
        "false" => return Ok(Value::Bool(false)),
        _ => {}
    }
    let quoted = |t: &str| {
        let t = t.trim();
        let q = t.chars().next()?;
        (matches!(q, '\'' | '"') && t.len() >= 2 && t.ends_with(q))
            .then(|| t[1..t.len() - 1].to_string())
    };
    if let Some(v) = quoted(s) {
        return Ok(Value::from(v));
    }
    let list = s.strip_prefix("@as").map(str::trim).unwrap_or(s);
    if let Some(inner) = list.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
        let items: std::result::Result<Vec<String>, String> = inner
            .split(',')
            .map(str::trim)
            .filter(|i| !i.is_empty())
            .map(|i| quoted(i).ok_or_else(bad))
            .collect();
        return Ok(Value::from(items?));
    }
    let (ty, num) = match s.split_once(' ') {
        Some((t, n)) => (t, n.trim()),
        None => ("int32", s),
    };
    let v = match ty {
        "uint64" | "@t" => Value::U64(num.parse().map_err(|_| bad())?),
        "int64" | "@x" => Value::I64(num.parse().map_err(|_| bad())?),
        "uint32" | "@u" => Value::U32(num.parse().map_err(|_| bad())?),
        "int32" | "@i" => Value::I32(num.parse().map_err(|_| bad())?),
        "uint16" | "@q" => Value::U16(num.parse().map_err(|_| bad())?),
        "int16" | "@n" => Value::I16(num.parse().map_err(|_| bad())?),
        "byte" | "@y" => Value::U8(num.parse().map_err(|_| bad())?),
        "double" | "@d" => Value::F64(num.parse().map_err(|_| bad())?),
        "boolean" | "@b" => Value::Bool(num.parse().map_err(|_| bad())?),
        _ => return Err(bad()),
    };
    Ok(v)
}

/// The `org.systemd.property.*` annotations as properties (runc's).
pub fn annotation_properties(
    annotations: Option<&std::collections::HashMap<String, String>>,
) -> Result<Vec<Property>> {
    let mut v: Vec<Property> = Vec::new();
    let mut keys: Vec<_> = annotations.into_iter().flatten().collect();
    keys.sort();
    for (k, val) in keys {
        let Some(name) = k.strip_prefix("org.systemd.property.") else {
            continue;
        };
        let value =
            parse_gvariant(val).map_err(|e| Error::invalid(format!("annotations.{k}"), e))?;
        v.push((name.to_string(), value));
    }
    Ok(v)
}

/// Whether this host runs systemd as its init with a system bus: where
/// `--systemd-cgroup` can work (and `features` says so).
pub fn available() -> bool {
    std::path::Path::new("/run/systemd/system").is_dir() && std::path::Path::new(&socket()).exists()
}

/// The system bus socket (DBUS_SYSTEM_BUS_ADDRESS may name another).
fn socket() -> String {
    bus_path("DBUS_SYSTEM_BUS_ADDRESS").unwrap_or_else(|| "/run/dbus/system_bus_socket".into())
}

/// The socket of a `unix:path=...` address in the environment variable.
fn bus_path(var: &str) -> Option<String> {
    std::env::var(var).ok().and_then(|a| {
        a.strip_prefix("unix:path=")
            .map(|p| p.split(',').next().unwrap_or(p).to_string())
    })
}

/// The calling user's bus socket: DBUS_SESSION_BUS_ADDRESS's, else
/// `$XDG_RUNTIME_DIR/bus` (where dbus-user-session puts it).
fn user_socket() -> Option<String> {
    bus_path("DBUS_SESSION_BUS_ADDRESS").or_else(|| {
        std::env::var("XDG_RUNTIME_DIR")
            .ok()
            .filter(|d| !d.is_empty())
            .map(|d| format!("{d}/bus"))
    })
}

/// A connection to systemd: the system manager on the system bus, or
/// (rootless) the user's manager on the user's bus.
pub struct Bus(zbus::blocking::Connection);

fn dbus_err(what: &str, e: zbus::Error) -> Error {
    match e {
        zbus::Error::MethodError(name, msg, _) => Error::Other(format!(
            "{what}: systemd refused: {}: {}",
            name.as_str(),
            msg.unwrap_or_default()
        )),
        e => Error::Other(format!("{what}: {e}")),
    }
}

impl Bus {
    pub fn connect(user: bool) -> Result<Bus> {
        let (sock, which) = if user {
            let sock = user_socket().ok_or_else(|| {
                Error::Other("--systemd-cgroup (rootless): no user bus: neither DBUS_SESSION_BUS_ADDRESS nor XDG_RUNTIME_DIR is set".into())
            })?;
            (sock, "the user's bus")
        } else {
            (socket(), "the system bus")
        };
        let conn =
            zbus::blocking::connection::Builder::address(format!("unix:path={sock}").as_str())
                .map(|b| {
                    if user {
                        // In a user namespace (rootless podman's), the bus
                        // knows berth by its uid outside.
                        b.user_id(crate::process::rootless::host_uid())
                    } else {
                        b
                    }
                })
                .and_then(|b| b.build())
                .map_err(|e| {
                    Error::Other(format!(
                        "--systemd-cgroup: cannot reach systemd on {which} at {sock}: {e}"
                    ))
                })?;
        let bus = Bus(conn);
        // Job signals are sent to subscribed clients.
        bus.call("Subscribe", &())?;
        Ok(bus)
    }

    fn call<B>(&self, method: &str, body: &B) -> Result<zbus::message::Message>
    where
        B: serde::Serialize + zbus::zvariant::DynamicType,
    {
        self.0
            .call_method(Some(DEST), PATH, Some(MANAGER), method, body)
            .map_err(|e| dbus_err(method, e))
    }

    /// Runs a job-returning method and waits for the job to finish.
    fn job<B>(&self, method: &str, unit: &str, body: &B) -> Result<()>
    where
        B: serde::Serialize + zbus::zvariant::DynamicType,
    {
        let rule = zbus::MatchRule::builder()
            .msg_type(zbus::message::Type::Signal)
            .sender(DEST)
            .and_then(|b| b.interface(MANAGER))
            .and_then(|b| b.member("JobRemoved"))
            .map_err(|e| dbus_err("match JobRemoved", e))?
            .build();
        // Listening before the call: the job may finish before it returns.
        let signals = zbus::blocking::MessageIterator::for_match_rule(rule, &self.0, Some(64))
            .map_err(|e| dbus_err("match JobRemoved", e))?;
        let reply = self.call(method, body)?;
        let job: OwnedObjectPath = reply
            .body()
            .deserialize()
            .map_err(|e| dbus_err(method, e))?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for m in signals.flatten() {
                if let Ok((_, path, _, result)) = m
                    .body()
                    .deserialize::<(u32, OwnedObjectPath, String, String)>()
                {
                    if path == job && tx.send(result).is_err() {
                        return;
                    }
                }
            }
        });
        match rx.recv_timeout(JOB_TIMEOUT) {
            Ok(r) if r == "done" => Ok(()),
            Ok(r) => Err(Error::Other(format!(
                "{method} {unit}: the systemd job ended {r:?}"
            ))),
            Err(_) => Err(Error::Other(format!(
                "{method} {unit}: no answer from systemd within {}s",
                JOB_TIMEOUT.as_secs()
            ))),
        }
    }

    /// Starts the transient unit for a container (its init `pid` placed in
    /// it) and waits until it runs. Returns the unit's cgroup as systemd
    /// names it.
    pub fn start(&self, unit: &Unit, id: &str, pid: i32, props: Vec<Property>) -> Result<PathBuf> {
        let mut all: Vec<Property> = vec![
            (
                "Description".into(),
                Value::from(format!("berth container {id}")),
            ),
            ("DefaultDependencies".into(), Value::Bool(false)),
        ];
        if unit.is_slice() {
            // A slice holds no process: berth moves the init in itself.
            all.push(("Wants".into(), Value::from(vec![unit.slice.clone()])));
        } else {
            all.push(("Slice".into(), Value::from(unit.slice.clone())));
            all.push(("Delegate".into(), Value::Bool(true)));
            all.push(("PIDs".into(), Value::from(vec![pid as u32])));
        }
        all.extend(props);
        let aux: Vec<(String, Vec<Property>)> = Vec::new();
        self.job(
            "StartTransientUnit",
            &unit.name,
            &(unit.name.as_str(), "replace", all, aux),
        )
        .map_err(|e| Error::Other(format!("--systemd-cgroup: unit {}: {e}", unit.name)))?;
        self.control_group(&unit.name)
    }

    /// The cgroup of a running unit, relative to the cgroup2 mount.
    fn control_group(&self, unit: &str) -> Result<PathBuf> {
        let path: OwnedObjectPath = self
            .call("GetUnit", &(unit,))?
            .body()
            .deserialize()
            .map_err(|e| dbus_err("GetUnit", e))?;
        let iface = if unit.ends_with(".slice") {
            "org.freedesktop.systemd1.Slice"
        } else {
            "org.freedesktop.systemd1.Scope"
        };
        let reply = self
            .0
            .call_method(
                Some(DEST),
                path.as_str(),
                Some("org.freedesktop.DBus.Properties"),
                "Get",
                &(iface, "ControlGroup"),
            )
            .map_err(|e| dbus_err("ControlGroup", e))?;
        let v: zbus::zvariant::OwnedValue = reply
            .body()
            .deserialize()
            .map_err(|e| dbus_err("ControlGroup", e))?;
        let s: String = v
            .try_into()
            .map_err(|e: zbus::zvariant::Error| dbus_err("ControlGroup", e.into()))?;
        Ok(PathBuf::from(s.trim_start_matches('/')))
    }

    /// Changes a running unit's properties (`update`).
    pub fn set(&self, unit: &str, props: Vec<Property>) -> Result<()> {
        if props.is_empty() {
            return Ok(());
        }
        self.call("SetUnitProperties", &(unit, true, props))
            .map(drop)
            .map_err(|e| Error::Other(format!("--systemd-cgroup: unit {unit}: {e}")))
    }

    /// Stops a unit and waits until it is gone; a unit that is not there
    /// (it ends by itself once its last process has) is fine.
    pub fn stop(&self, unit: &str) -> Result<()> {
        let r = self.job("StopUnit", unit, &(unit, "replace"));
        // A unit that failed (an OOM kill, say) stays listed until reset.
        let _ = self.call("ResetFailedUnit", &(unit,));
        match r {
            Err(Error::Other(m)) if m.contains("NoSuchUnit") || m.contains("not loaded") => Ok(()),
            r => r,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_slices() {
        let u = plan("", "c1", false).unwrap();
        assert_eq!(u.name, "berth-c1.scope");
        assert_eq!(u.cgroup, PathBuf::from("system.slice/berth-c1.scope"));
        let u = plan(
            "kubepods-burstable-pod1.slice:cri-containerd:abc",
            "x",
            false,
        )
        .unwrap();
        assert_eq!(u.name, "cri-containerd-abc.scope");
        assert_eq!(
            u.cgroup,
            PathBuf::from("kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice/cri-containerd-abc.scope")
        );
        let u = plan(":runc:y", "y", false).unwrap();
        assert_eq!(
            (u.slice.as_str(), u.name.as_str()),
            ("system.slice", "runc-y.scope")
        );
        let u = plan("-.slice::z", "z", false).unwrap();
        assert_eq!(u.cgroup, PathBuf::from("z.scope"));
        let u = plan("kubepods.slice::kubepods-besteffort.slice", "p", false).unwrap();
        assert!(u.is_slice());
        assert_eq!(
            u.cgroup,
            PathBuf::from("kubepods.slice/kubepods-besteffort.slice")
        );
        // The user's manager: its slices are below user@UID.service.
        let u = plan("", "c2", true).unwrap();
        let uid = crate::process::rootless::host_uid();
        assert_eq!(
            (u.slice.as_str(), u.name.as_str()),
            ("user.slice", "berth-c2.scope")
        );
        assert_eq!(
            u.cgroup,
            PathBuf::from(format!(
                "user.slice/user-{uid}.slice/user@{uid}.service/user.slice/berth-c2.scope"
            ))
        );
        for bad in [
            "/abs/path",
            "a:b",
            "a:b:c:d",
            "x.scope:p:n",
            "system.slice:p:",
            "a--b.slice:p:n",
            "s.slice:p:n/m",
        ] {
            let e = plan(bad, "i", false).unwrap_err().to_string();
            assert!(
                e.contains("linux.cgroupsPath") && e.contains(bad),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn resources_become_properties() {
        let r: LinuxResources = serde_json::from_str(
            r#"{"memory":{"limit":1048576,"swap":2097152,"reservation":-1},
            "cpu":{"shares":1024,"quota":50000,"period":100000,"cpus":"0-2,7"},
            "pids":{"limit":-1},"blockIO":{"weight":500}}"#,
        )
        .unwrap();
        let p = resource_properties(&r).unwrap();
        let get = |k: &str| p.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        assert_eq!(get("MemoryMax"), Some(Value::U64(1 << 20)));
        assert_eq!(get("MemorySwapMax"), Some(Value::U64(1 << 20)));
        assert_eq!(get("MemoryLow"), Some(Value::U64(u64::MAX)));
        assert_eq!(get("CPUWeight"), Some(Value::U64(39)));
        assert_eq!(get("CPUQuotaPerSecUSec"), Some(Value::U64(500_000)));
        assert_eq!(get("AllowedCPUs"), Some(Value::from(vec![0b1000_0111u8])));
        assert_eq!(get("TasksMax"), Some(Value::U64(u64::MAX)));
        assert_eq!(get("IOWeight"), Some(Value::U64(1 + 490 * 9999 / 990)));
        // A quota in fractional percents is rounded up to whole ones.
        let r: LinuxResources =
            serde_json::from_str(r#"{"cpu":{"quota":12345,"period":100000}}"#).unwrap();
        let p = resource_properties(&r).unwrap();
        assert!(p.contains(&("CPUQuotaPerSecUSec".into(), Value::U64(130_000))));
    }

    #[test]
    fn gvariant_annotations() {
        assert_eq!(
            parse_gvariant("uint64 123456789").unwrap(),
            Value::U64(123_456_789)
        );
        assert_eq!(
            parse_gvariant("'inactive-or-failed'").unwrap(),
            Value::from("inactive-or-failed")
        );
        assert_eq!(parse_gvariant("true").unwrap(), Value::Bool(true));
        assert_eq!(parse_gvariant("42").unwrap(), Value::I32(42));
        assert_eq!(
            parse_gvariant("['a.service', 'b.service']").unwrap(),
            Value::from(vec!["a.service".to_string(), "b.service".to_string()])
        );
        assert!(parse_gvariant("uint64 lots").is_err());
        let mut a = std::collections::HashMap::new();
        a.insert(
            "org.systemd.property.TimeoutStopUSec".to_string(),
            "uint64 5".to_string(),
        );
        a.insert("other".to_string(), "x".to_string());
        let p = annotation_properties(Some(&a)).unwrap();
        assert_eq!(p, vec![("TimeoutStopUSec".to_string(), Value::U64(5))]);
    }
}
