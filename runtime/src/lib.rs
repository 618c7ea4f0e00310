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
//! | layer | units (a file or a folder under src/) |
//! | --- | --- |
//! | 4 operations | lifecycle |
//! | 3 process set-up | launch |
//! | 2 subsystems | spec, rootfs, net, cgroups, security, hooks, state, criu |
//! | 1 primitives | process, fs |
//! | 0 base | error, util |
//!
//! The folders: `lifecycle/` (container, exec, ops, update), `launch/`
//! (spawn: the parent side of `create`; init: the child side; child: what
//! the init and an exec'd process both do before execve(2)), `rootfs/`,
//! `cgroups/` (with `systemd/`), `security/`, `net/`, `criu/` (CRIU's RPC),
//! `process/`, `fs/`;
//! each `mod.rs` says what its files hold. docs/architecture.md opens with
//! the whole tree.

mod cgroups;
mod criu;
mod error;
mod fs;
mod hooks;
mod launch;
mod lifecycle;
mod net;
mod process;
mod rootfs;
mod security;
pub mod spec;
mod state;
pub mod util;

pub use process::{namespaces, rootless, signal};
pub use security::exe;

/// The runtime-spec version berth implements (state documents, features,
/// `--version`).
pub const SPEC_VERSION: &str = "1.3.0";

pub use error::{set_debug_handler, set_warning_handler, Error, Result};
pub use lifecycle::checkpoint::{CheckpointOpts, CriuFlags, RestoreOpts};
pub use lifecycle::container::{CreateOpts, Runtime};
pub use lifecycle::exec::ExecOpts;
pub use lifecycle::ops::features;
pub use lifecycle::update::UpdateOpts;
pub use security::seccomp::libseccomp_version;
pub use state::validate_id;
