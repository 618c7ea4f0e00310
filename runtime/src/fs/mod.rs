//! Filesystem primitives, below any container concern: paths resolved in a
//! root that cannot be escaped (`resolve`, openat2 `RESOLVE_IN_ROOT`), the
//! fd-based mount API (`newmount`), /proc/self/mountinfo (`mountinfo`) and
//! fd-to-fd tree copy (`tree`). Used by the rootfs set-up, cgroups (the
//! mounted hierarchies) and the binary's re-exec protection.

pub mod mountinfo;
pub mod newmount;
pub mod resolve;
pub mod tree;
