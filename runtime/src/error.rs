//! Typed errors of the runtime library. Messages are the ones runc callers
//! match on where runc has a fixed wording (see `docs/cli.md`).

use std::path::PathBuf;

/// Every failure the runtime library reports.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("container does not exist")]
    NotExist,
    #[error("container with given ID already exists")]
    Exists,
    #[error("container not running")]
    NotRunning,
    #[error("container still running")]
    StillRunning,
    #[error("cannot delete container {id} that is not stopped: {status}")]
    NotStopped { id: String, status: String },
    #[error("cannot start a container that has stopped")]
    StartStopped,
    #[error("cannot start an already running container")]
    AlreadyRunning,
    #[error("invalid container id {id:?}: {why}")]
    InvalidId { id: String, why: &'static str },
    #[error("{path}: {msg}")]
    Config { path: PathBuf, msg: String },
    #[error("invalid {field}: {msg}")]
    Invalid { field: String, msg: String },
    #[error("{0}")]
    Signal(String),
    #[error("{what} {path}: {err}")]
    Io {
        what: &'static str,
        path: PathBuf,
        err: std::io::Error,
    },
    #[error("{what}: {err}")]
    Sys { what: String, err: nix::Error },
    /// The container process failed before its program ran (runc's
    /// wording, which callers match).
    #[error("unable to start container process: {0}")]
    Init(String),
    /// CRIU refused or failed: runc's wording, then the lines of CRIU's
    /// log that say why.
    #[error("{what}\n{log}")]
    Criu { what: String, log: String },
    #[error("{0}")]
    Other(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(what: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            what,
            path: path.into(),
            err: source,
        }
    }
    pub(crate) fn sys(what: impl Into<String>, source: nix::Error) -> Self {
        Error::Sys {
            what: what.into(),
            err: source,
        }
    }
    pub(crate) fn invalid(field: impl Into<String>, msg: impl Into<String>) -> Self {
        Error::Invalid {
            field: field.into(),
            msg: msg.into(),
        }
    }
}

static WARN: std::sync::OnceLock<fn(&str)> = std::sync::OnceLock::new();

/// Where the library's warnings go (the CLI logs them as runc does);
/// without a handler they go to stderr.
pub fn set_warning_handler(f: fn(&str)) {
    let _ = WARN.set(f);
}

/// Logs a warning (runtime.md "Warnings": the operation goes on).
pub(crate) fn warn(msg: &str) {
    match WARN.get() {
        Some(f) => f(msg),
        None => eprintln!("warning: {msg}"),
    }
}

static DEBUG: std::sync::OnceLock<fn(&str)> = std::sync::OnceLock::new();

/// Where `--debug` lines go (the CLI writes them as runc does). Without a
/// handler nothing is formatted: a step costs one load of this cell.
pub fn set_debug_handler(f: fn(&str)) {
    let _ = DEBUG.set(f);
}

/// A debug line for what berth just did, `what()` evaluated only under
/// `--debug`; the CLI adds the time since berth started.
pub(crate) fn debug(what: impl FnOnce() -> String) {
    if let Some(f) = DEBUG.get() {
        f(&what());
    }
}

/// An errno as Go (and so runc) words it: strerror(3) starting lowercase,
/// e.g. "no such file or directory".
pub(crate) fn strerror(e: nix::errno::Errno) -> String {
    let d = e.desc();
    let mut c = d.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => d.to_string(),
    }
}

/// Adds context to nix results.
pub(crate) trait SysCtx<T> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T> SysCtx<T> for nix::Result<T> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| Error::sys(what(), e))
    }
}
