//! Integration tests of the runtime: real containers from the busybox
//! fixture, asserting on what the contained process saw. Run as root.
//! One test binary (`runtime`), one module per topic.

#[path = "../common/mod.rs"]
mod common;

mod cgroups;
mod compat;
mod contract;
mod exec;
mod footprint;
mod hooks;
mod lifecycle;
mod mounts;
mod process;
mod spec13;
mod systemd;
mod terminal;
