//! Process set-up: the parent side of `create` (`spawn`: cgroups, the
//! clone, id maps, the handshake), the container init on the child side
//! (`init`: namespaces joined, the rootfs, hooks, waiting for `start`), and
//! what the init and an exec'd process both do before execve(2) (`child`).

pub mod child;
pub mod init;
pub mod spawn;
