//! berth-runtime: a runc-compatible OCI runtime as a library.
//!
//! The binary (`berth`) parses the command line and calls [`container`]'s
//! operations; everything that touches the kernel lives here.
//!
//! Process model (see `docs/architecture.md`): `create` clones the container
//! init once with `clone3(2)`; parent and child talk over one socketpair
//! ([`channel`]); the init waits on a listening unix socket in the state
//! directory until `start` connects to it, then `execve`s the user program.

pub mod cgroups;
pub mod channel;
pub mod container;
pub mod devices;
pub mod error;
pub mod exe;
pub mod exec;
pub mod hooks;
mod init;
pub mod mounts;
pub mod namespaces;
mod newmount;
pub mod ops;
pub mod resolve;
mod seccomp;
pub mod security;
pub mod signal;
pub mod spec;
pub mod state;
mod tty;
pub mod util;

pub use error::{Error, Result};

/// The runtime-spec types berth uses (re-exported for the CLI).
pub mod oci {
    pub use oci_spec::runtime::LinuxResources;
}
