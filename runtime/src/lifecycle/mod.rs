//! The runtime's operations, as the CLI calls them: create, start, state,
//! list, kill, delete and run (`container`), exec (`exec`), ps, pause,
//! resume, events and features (`ops`), update (`update`), and checkpoint
//! and restore through CRIU (`checkpoint`).

pub mod checkpoint;
pub mod container;
pub mod exec;
pub mod ops;
pub mod update;
