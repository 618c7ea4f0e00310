//! Processes, below any container concern: clone3(2) and the primitives
//! around it (`proc`), the parent-child socketpair (`channel`), namespace
//! flags and joining (`namespaces`), signal names (`signal`), unprivileged
//! operation and subordinate id maps (`rootless`), and terminals (`tty`).

pub mod channel;
pub mod namespaces;
mod proc;
pub mod rootless;
pub mod signal;
pub mod tty;

pub use proc::*;
