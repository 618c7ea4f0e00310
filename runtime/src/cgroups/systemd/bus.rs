//! The D-Bus conversation with systemd: StartTransientUnit with the
//! init's pid, waiting for its job, SetUnitProperties for `update`,
//! StopUnit and ResetFailedUnit. berth talks to the manager directly on
//! its private socket where it can (`/run/systemd/private`, or the user
//! manager's `$XDG_RUNTIME_DIR/systemd/private`, as systemctl does): no
//! bus daemon in between, no Hello, and every job signal arrives without
//! a match rule or Subscribe. Otherwise it goes through the bus (the
//! system bus, or the user's), with Hello, a match rule for JobRemoved
//! and Subscribe. Calls are pipelined: the set-up calls and the first
//! method call leave in one write once the authentication is answered.

use super::wire::{Body, Conn, Message, Reader, To};
use super::{Property, Unit};
use crate::error::{Error, Result};
use std::path::PathBuf;
use std::time::{Duration, Instant};

const DEST: &str = "org.freedesktop.systemd1";
const PATH: &str = "/org/freedesktop/systemd1";
const MANAGER: &str = "org.freedesktop.systemd1.Manager";
/// The manager's object.
const MGR: To = To {
    dest: DEST,
    path: PATH,
    iface: MANAGER,
};
/// The bus daemon itself.
const DAEMON: To = To {
    dest: "org.freedesktop.DBus",
    path: "/org/freedesktop/DBus",
    iface: "org.freedesktop.DBus",
};
/// How long a call or a job may take before berth gives up on it.
const JOB_TIMEOUT: Duration = Duration::from_secs(30);
/// The system manager's private socket (root only).
const PRIVATE: &str = "/run/systemd/private";

/// Whether this host runs systemd as its init with a way to reach it:
/// where `--systemd-cgroup` can work (and `features` says so).
pub fn available() -> bool {
    std::path::Path::new("/run/systemd/system").is_dir()
        && (std::path::Path::new(PRIVATE).exists() || std::path::Path::new(&socket()).exists())
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
    bus_path("DBUS_SESSION_BUS_ADDRESS").or_else(|| runtime_dir().map(|d| format!("{d}/bus")))
}

fn runtime_dir() -> Option<String> {
    std::env::var("XDG_RUNTIME_DIR")
        .ok()
        .filter(|d| !d.is_empty())
}

/// Where to reach the manager, in order of preference: (socket, direct
/// to the manager, what to call it in an error).
fn candidates(user: bool) -> Vec<(String, bool, &'static str)> {
    let mut v = Vec::new();
    if user {
        if let Some(d) = runtime_dir() {
            v.push((format!("{d}/systemd/private"), true, "the user's manager"));
        }
        if let Some(s) = user_socket() {
            v.push((s, false, "the user's bus"));
        }
    } else {
        // A bus named in the environment is the caller's explicit choice.
        if std::env::var_os("DBUS_SYSTEM_BUS_ADDRESS").is_none() {
            v.push((PRIVATE.to_string(), true, "the system manager"));
        }
        v.push((socket(), false, "the system bus"));
    }
    v
}

/// A connection to systemd: the system manager, or (rootless) the user's.
pub struct Bus {
    conn: Conn,
    /// Job signals will come: on the manager's private socket always,
    /// through a bus once its JobRemoved match and Subscribe are sent.
    subscribed: bool,
    /// Serials up to this one are set-up calls (Hello, AddMatch, ...).
    setup: u32,
    /// JobRemoved signals read so far: (job, result).
    jobs: Vec<(String, String)>,
}

fn refused(what: &str, m: &Message) -> Error {
    let text = if m.sig.starts_with('s') {
        Reader::new(m).str().unwrap_or_default()
    } else {
        String::new()
    };
    Error::Other(format!("{what}: systemd refused: {}: {text}", m.error))
}

impl Bus {
    pub fn connect(user: bool) -> Result<Bus> {
        let uid = if user {
            // In a user namespace (rootless podman's), the manager knows
            // berth by its uid outside.
            crate::process::rootless::host_uid()
        } else {
            nix::unistd::geteuid().as_raw()
        };
        let mut err = None;
        for (sock, direct, which) in candidates(user) {
            match Conn::connect(&sock, uid) {
                Ok(conn) => {
                    let mut bus = Bus {
                        conn,
                        subscribed: direct,
                        setup: 0,
                        jobs: Vec::new(),
                    };
                    if !direct {
                        bus.setup = bus.conn.call(DAEMON, "Hello", "", &Body::default());
                    }
                    return Ok(bus);
                }
                Err(e) => {
                    err = Some(format!(
                        "--systemd-cgroup: cannot reach systemd on {which} at {sock}: {e}"
                    ))
                }
            }
        }
        Err(Error::Other(err.unwrap_or_else(|| {
            "--systemd-cgroup (rootless): no user bus: neither DBUS_SESSION_BUS_ADDRESS nor XDG_RUNTIME_DIR is set".into()
        })))
    }

    /// The next message (a JobRemoved signal is noted on the way).
    fn pump(&mut self, deadline: Instant, what: &str) -> Result<Message> {
        let m = self
            .conn
            .next(deadline)
            .map_err(|e| Error::Other(format!("{what}: {e}")))?
            .ok_or_else(|| {
                Error::Other(format!(
                    "{what}: no answer from systemd within {}s",
                    JOB_TIMEOUT.as_secs()
                ))
            })?;
        if m.kind == 4 && m.member == "JobRemoved" && m.sig == "uoss" {
            let mut r = Reader::new(&m);
            let parsed = (|| Ok::<_, String>((r.u32()?, r.str()?, r.str()?, r.str()?)))();
            if let Ok((_, job, _, result)) = parsed {
                self.jobs.push((job, result));
            }
        }
        Ok(m)
    }

    /// Sends a call and waits for its reply.
    fn call_at(&mut self, to: To, method: &str, sig: &str, body: &Body) -> Result<Message> {
        let serial = self.conn.call(to, method, sig, body);
        let deadline = Instant::now() + JOB_TIMEOUT;
        loop {
            let m = self.pump(deadline, method)?;
            match (m.kind, m.reply_to) {
                (2, Some(s)) if s == serial => return Ok(m),
                (3, Some(s)) if s == serial => return Err(refused(method, &m)),
                (3, Some(s)) if s <= self.setup => return Err(refused(&m.error, &m)),
                _ => {}
            }
        }
    }

    /// A call to the manager.
    fn call(&mut self, method: &str, sig: &str, body: &Body) -> Result<Message> {
        self.call_at(MGR, method, sig, body)
    }

    /// Runs a job-returning method and waits for the job to finish.
    fn job(&mut self, method: &str, unit: &str, sig: &str, body: &Body) -> Result<()> {
        if !self.subscribed {
            // Through a bus daemon, job signals reach only a subscribed
            // client that asked for them, before the call.
            let rule = Body::strs(&["type='signal',sender='org.freedesktop.systemd1',interface='org.freedesktop.systemd1.Manager',member='JobRemoved'"]);
            self.conn.call(DAEMON, "AddMatch", "s", &rule);
            self.setup = self.conn.call(MGR, "Subscribe", "", &Body::default());
            self.subscribed = true;
        }
        let reply = self.call(method, sig, body)?;
        let job = Reader::new(&reply)
            .str()
            .map_err(|e| Error::Other(format!("{method}: {e}")))?;
        let deadline = Instant::now() + JOB_TIMEOUT;
        loop {
            if let Some(i) = self.jobs.iter().position(|(j, _)| *j == job) {
                let (_, result) = self.jobs.swap_remove(i);
                return if result == "done" {
                    Ok(())
                } else {
                    Err(Error::Other(format!(
                        "{method} {unit}: the systemd job ended {result:?}"
                    )))
                };
            }
            self.pump(deadline, &format!("{method} {unit}"))?;
        }
    }

    /// Starts the transient unit for a container (its init `pid` placed in
    /// it) and waits until it runs.
    pub fn start(&mut self, unit: &Unit, id: &str, pid: i32, props: Vec<Property>) -> Result<()> {
        let mut all: Vec<Property> = vec![
            ("Description".into(), format!("berth container {id}").into()),
            ("DefaultDependencies".into(), super::Value::Bool(false)),
        ];
        if unit.is_slice() {
            // A slice holds no process: berth moves the init in itself.
            all.push(("Wants".into(), vec![unit.slice.clone()].into()));
        } else {
            all.push(("Slice".into(), unit.slice.clone().into()));
            all.push(("Delegate".into(), super::Value::Bool(true)));
            all.push(("PIDs".into(), vec![pid as u32].into()));
        }
        all.extend(props);
        let mut body = Body::default();
        body.str(&unit.name)
            .str("replace")
            .props(&all)
            .array(8, |_| {});
        self.job("StartTransientUnit", &unit.name, "ssa(sv)a(sa(sv))", &body)
            .map_err(|e| Error::Other(format!("--systemd-cgroup: unit {}: {e}", unit.name)))
    }

    /// The cgroup of a running unit as systemd names it, relative to the
    /// cgroup2 mount (for when it is not where berth's plan put it).
    pub fn control_group(&mut self, unit: &str) -> Result<PathBuf> {
        let reply = self.call("GetUnit", "s", &Body::strs(&[unit]))?;
        let path = Reader::new(&reply)
            .str()
            .map_err(|e| Error::Other(format!("GetUnit: {e}")))?;
        let iface = if unit.ends_with(".slice") {
            "org.freedesktop.systemd1.Slice"
        } else {
            "org.freedesktop.systemd1.Scope"
        };
        let b = Body::strs(&[iface, "ControlGroup"]);
        let unit_obj = To {
            dest: DEST,
            path: &path,
            iface: "org.freedesktop.DBus.Properties",
        };
        let reply = self.call_at(unit_obj, "Get", "ss", &b)?;
        let mut r = Reader::new(&reply);
        let cg = (|| match r.sig()?.as_str() {
            "s" => r.str(),
            t => Err(format!("a value of type {t}")),
        })()
        .map_err(|e| Error::Other(format!("ControlGroup of {unit}: {e}")))?;
        Ok(PathBuf::from(cg.trim_start_matches('/')))
    }

    /// Changes a running unit's properties (`update`).
    pub fn set(&mut self, unit: &str, props: Vec<Property>) -> Result<()> {
        if props.is_empty() {
            return Ok(());
        }
        let mut b = Body::default();
        b.str(unit).bool(true).props(&props);
        self.call("SetUnitProperties", "sba(sv)", &b)
            .map(drop)
            .map_err(|e| Error::Other(format!("--systemd-cgroup: unit {unit}: {e}")))
    }

    /// Stops a unit and waits until it is gone; a unit that is not there
    /// (it ends by itself once its last process has) is fine.
    pub fn stop(&mut self, unit: &str) -> Result<()> {
        let r = self.job("StopUnit", unit, "ss", &Body::strs(&[unit, "replace"]));
        // A unit that failed (an OOM kill, say) stays listed until reset.
        let _ = self.call("ResetFailedUnit", "s", &Body::strs(&[unit]));
        match r {
            Err(Error::Other(m)) if m.contains("NoSuchUnit") || m.contains("not loaded") => Ok(()),
            r => r,
        }
    }
}
