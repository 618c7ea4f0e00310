//! What confines a container process: capabilities and the user switch
//! (`caps`), LSM labels, personality, I/O priority, scheduler, memory
//! policy, sysctls and the safe way to write to procfs (`attrs`), seccomp
//! filters and their notify listener (`seccomp`), and the protection of
//! berth's own binary against CVE-2019-5736 (`exe`).

mod attrs;
pub mod caps;
pub mod exe;
pub mod seccomp;

pub use attrs::*;
