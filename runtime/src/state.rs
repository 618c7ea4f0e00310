//! The container state store: one directory per container under `--root`
//! (default `/run/berth`), holding `state.json` (written atomically) and,
//! while the container is `created`, the `start.sock` its init waits on.
//!
//! `create` claims an ID with mkdir(2), which exactly one caller wins.
//! Mutating operations hold an exclusive flock(2) on the container
//! directory; `state` reads without locking.

use crate::error::{Error, Result};
use crate::process;
use crate::util;
use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::path::{Path, PathBuf};

/// The socket the created init listens on until `start` connects.
pub const START_SOCK: &str = "start.sock";
const STATE_FILE: &str = "state.json";

/// What berth records about a container. Written before anything is set up
/// (pid 0) so that `delete --force` can undo a create that died half way.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Record {
    pub id: String,
    /// Host pid of the container init; 0 while being created.
    pub pid: i32,
    /// The init's start time (field 22 of /proc/PID/stat): tells a
    /// recycled pid from the container's init.
    pub pid_start: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    #[serde(default)]
    pub annotations: serde_json::Map<String, serde_json::Value>,
    pub owner: String,
    /// Cgroup directories, leaf first per hierarchy, that berth created
    /// (and so removes on delete): `[[leaf, parent-it-created, ...], ...]`.
    #[serde(default)]
    pub cgroups: Vec<Vec<PathBuf>>,
    /// The container's cgroup directory in each hierarchy (exec, update,
    /// pause and stats use them, whether berth created them or not).
    #[serde(default)]
    pub leaves: Vec<PathBuf>,
    /// The file that freezes the cgroup (see `Cgroup::freezer`).
    #[serde(default)]
    pub freezer: Option<PathBuf>,
    /// Whether the container has its own pid namespace (if not, delete
    /// kills every process of its cgroup, as runc does).
    #[serde(default)]
    pub own_pidns: bool,
    /// The systemd driver's unit (stopped on delete); its cgroup is in
    /// `leaves`, and systemd removes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// The unit is the user's manager's (rootless), not the system's.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub user_unit: bool,
    /// resctrl groups berth made for `linux.intelRdt` (removed on delete).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rdt: Vec<PathBuf>,
    /// The hooks still to run after create (poststart, poststop), as they
    /// were at create: later edits of config.json do not count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hooks: Option<oci_spec::runtime::Hooks>,
}

impl Record {
    /// A pidfd of the container init, if it is still the recorded process
    /// (checked after opening: the pidfd pins the process verified).
    pub fn pidfd(&self) -> Option<std::os::fd::OwnedFd> {
        let fd = process::pidfd_open(self.pid)?;
        process::alive(self.pid, self.pid_start).then_some(fd)
    }
}

/// Runtime-spec status values (runtime.md "State").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Checks a container ID: runc's `^[\w+\-.]+$`, not `.` or `..`, at most
/// 255 bytes (it names a directory).
pub fn validate_id(id: &str) -> Result<()> {
    let bad = |why| {
        Err(Error::InvalidId {
            id: id.to_string(),
            why,
        })
    };
    if id.is_empty() {
        return bad("must not be empty");
    }
    if id == "." || id == ".." {
        return bad("must not be . or ..");
    }
    if id.len() > 255 {
        return bad("longer than 255 bytes");
    }
    if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"_+-.".contains(&b))
    {
        return bad("only letters, digits and _ + - . are allowed");
    }
    Ok(())
}

/// The state directory tree under `--root`.
pub struct Store {
    root: PathBuf,
}

impl Store {
    /// Opens (creating if needed, mode 0700) the state root.
    pub fn open(root: &Path) -> Result<Store> {
        match std::fs::metadata(root) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(Error::Other(format!(
                    "--root {}: not a directory",
                    root.display()
                )))
            }
            Err(_) => {
                use std::os::unix::fs::DirBuilderExt;
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(root)
                    .map_err(|e| Error::io("cannot create state root", root, e))?;
            }
        }
        let root = std::fs::canonicalize(root).map_err(|e| Error::io("state root", root, e))?;
        Ok(Store { root })
    }

    pub fn dir(&self, id: &str) -> PathBuf {
        self.root.join(id)
    }

    /// Claims `id`: exactly one concurrent caller succeeds. Returns the
    /// directory and a lock held until the returned guard drops.
    pub fn claim(&self, id: &str) -> Result<(PathBuf, Flock<File>)> {
        validate_id(id)?;
        let dir = self.dir(id);
        use std::os::unix::fs::DirBuilderExt;
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Err(Error::Exists),
            Err(e) => return Err(Error::io("cannot create state directory", &dir, e)),
        }
        let lock = lock_dir(&dir)?;
        Ok((dir, lock))
    }

    /// Locks an existing container's directory exclusively.
    pub fn lock(&self, id: &str) -> Result<Flock<File>> {
        validate_id(id)?;
        lock_dir(&self.dir(id))
    }

    pub fn load(&self, id: &str) -> Result<Record> {
        validate_id(id)?;
        let dir = self.dir(id);
        match std::fs::read(dir.join(STATE_FILE)) {
            Ok(data) => serde_json::from_slice(&data)
                .map_err(|e| Error::Other(format!("{}: corrupt state: {e}", dir.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if dir.is_dir() {
                    // Claimed, but create died before recording anything.
                    Ok(Record {
                        id: id.to_string(),
                        ..Default::default()
                    })
                } else {
                    Err(Error::NotExist)
                }
            }
            Err(e) => Err(Error::io("cannot read state of", dir, e)),
        }
    }

    pub fn save(&self, rec: &Record) -> Result<()> {
        let data = serde_json::to_vec(rec).expect("state serializes");
        util::write_atomic(&self.dir(&rec.id).join(STATE_FILE), &data)
    }

    /// Removes a container's state directory (after its cleanup).
    pub fn remove(&self, id: &str) -> Result<()> {
        let dir = self.dir(id);
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io("cannot remove state directory", dir, e)),
        }
    }

    /// IDs of all containers, sorted.
    pub fn ids(&self) -> Result<Vec<String>> {
        let mut ids: Vec<String> = std::fs::read_dir(&self.root)
            .map_err(|e| Error::io("cannot list", &self.root, e))?
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|id| validate_id(id).is_ok())
            .collect();
        ids.sort();
        Ok(ids)
    }

    /// The container's status, from the kernel's view of its init.
    pub fn status(&self, rec: &Record) -> Status {
        if rec.pid <= 0 {
            return Status::Creating;
        }
        if !process::alive(rec.pid, rec.pid_start) {
            return Status::Stopped;
        }
        if crate::cgroups::frozen(rec.freezer.as_deref()) {
            return Status::Paused;
        }
        if self.dir(&rec.id).join(START_SOCK).exists() {
            Status::Created
        } else {
            Status::Running
        }
    }

    /// The runtime-spec state document with runc's keys and order.
    pub fn state_json(&self, rec: &Record) -> serde_json::Value {
        state_doc(rec, self.status(rec))
    }
}

/// The state document for `rec` with a given status (hooks get it too).
pub fn state_doc(rec: &Record, status: Status) -> serde_json::Value {
    {
        let pid = if status == Status::Stopped {
            0
        } else {
            rec.pid
        };
        let mut m = serde_json::Map::new();
        m.insert("ociVersion".into(), crate::SPEC_VERSION.into());
        m.insert("id".into(), rec.id.clone().into());
        m.insert("pid".into(), pid.into());
        m.insert("status".into(), status.as_str().into());
        m.insert(
            "bundle".into(),
            rec.bundle.to_string_lossy().into_owned().into(),
        );
        m.insert(
            "rootfs".into(),
            rec.rootfs.to_string_lossy().into_owned().into(),
        );
        m.insert("created".into(), rec.created.clone().into());
        if !rec.annotations.is_empty() {
            m.insert("annotations".into(), rec.annotations.clone().into());
        }
        m.insert("owner".into(), rec.owner.clone().into());
        m.into()
    }
}

fn lock_dir(dir: &Path) -> Result<Flock<File>> {
    let f = File::open(dir).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::NotExist
        } else {
            Error::io("cannot open state directory", dir, e)
        }
    })?;
    Flock::lock(f, FlockArg::LockExclusive)
        .map_err(|(_, e)| Error::sys(format!("lock {}", dir.display()), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        for ok in ["a", "abc-1.2_x+y", "A9"] {
            validate_id(ok).unwrap();
        }
        for bad in [
            "",
            ".",
            "..",
            "../x",
            "a/b",
            "a b",
            "a\nb",
            &"x".repeat(256),
        ] {
            assert!(validate_id(bad).is_err(), "{bad:?}");
        }
    }
}
