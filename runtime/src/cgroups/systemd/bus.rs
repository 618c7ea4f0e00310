//! The D-Bus conversation with systemd (the system bus, or the user's bus
//! when rootless): StartTransientUnit with the init's pid, waiting for its
//! job, SetUnitProperties for `update`, StopUnit and ResetFailedUnit.

use super::{Property, Unit};
use crate::error::{Error, Result};
use std::path::PathBuf;
use std::time::Duration;
use zbus::zvariant::{OwnedObjectPath, Value};

const DEST: &str = "org.freedesktop.systemd1";
const PATH: &str = "/org/freedesktop/systemd1";
const MANAGER: &str = "org.freedesktop.systemd1.Manager";
/// How long a job may take before berth gives up on it.
const JOB_TIMEOUT: Duration = Duration::from_secs(30);

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
