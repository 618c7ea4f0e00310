//! Typed errors of the image library.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{what} {path}: {err}")]
    Io {
        what: &'static str,
        path: PathBuf,
        err: std::io::Error,
    },
    #[error("{what}: {err}")]
    Sys { what: String, err: nix::Error },
    #[error("digest mismatch for {what}: expected {expected}, got {got}")]
    Digest {
        what: String,
        expected: String,
        got: String,
    },
    #[error("{0}")]
    Format(String),
    #[error("layer entry {entry:?}: {why}")]
    Entry { entry: String, why: String },
    #[error("image {0:?} not found")]
    NoImage(String),
    /// A registry's answer (or its absence), naming what was asked for.
    #[error("{0}")]
    Registry(String),
    #[error("{0}")]
    Other(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(what: &'static str, path: impl Into<PathBuf>, err: std::io::Error) -> Self {
        Error::Io {
            what,
            path: path.into(),
            err,
        }
    }
    pub(crate) fn sys(what: impl Into<String>, err: nix::Error) -> Self {
        Error::Sys {
            what: what.into(),
            err,
        }
    }
    pub(crate) fn entry(entry: impl std::fmt::Display, why: impl Into<String>) -> Self {
        Error::Entry {
            entry: entry.to_string(),
            why: why.into(),
        }
    }
}
