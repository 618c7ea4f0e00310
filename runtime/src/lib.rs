//! berth-runtime: a runc-compatible OCI runtime as a library.
//!
//! The binary (`berth`) parses the command line and calls [`Runtime`]'s
//! operations; everything that touches the kernel lives here.
//!
//! Process model (see `docs/architecture.md`): `create` clones the container
//! init once with `clone3(2)`; parent and child talk over one socketpair
//! (`channel`); the init waits on a listening unix socket in the state
//! directory until `start` connects to it, then `execve`s the user program.
//!
//! # Layers
//!
//! A module uses only modules of lower layers or of its own layer, and the
//! import graph has no cycle (`tests/layering.rs` checks both from this
//! table):
//!
//! | layer | modules |
//! | --- | --- |
//! | 4 lifecycle | container, exec, ops, update |
//! | 3 process set-up | spawn, init, child |
//! | 2 subsystems | spec, rootfs, net, cgroups, security, hooks, state |
//! | 1 primitives | process, fs |
//! | 0 base | error, util |
//!
//! `spawn` is the parent side of `create`, `init` the child side; `child`
//! holds what the init and an exec'd process both do before execve(2).

mod cgroups;
mod child;
mod container;
mod error;
mod exec;
mod fs;
mod hooks;
mod init;
mod net;
mod ops;
mod process;
mod rootfs;
mod security;
mod spawn;
pub mod spec;
mod state;
mod update;
pub mod util;

pub use process::{namespaces, rootless, signal};
pub use security::exe;

/// The runtime-spec version berth implements (state documents, features,
/// `--version`).
pub const SPEC_VERSION: &str = "1.3.0";

pub use container::{CreateOpts, Runtime};
pub use error::{set_warning_handler, Error, Result};
pub use exec::ExecOpts;
pub use ops::features;
pub use security::seccomp::libseccomp_version;
pub use state::validate_id;
pub use update::UpdateOpts;
