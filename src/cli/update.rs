//! `berth update`: a linux.resources JSON (--resources) with runc's flags
//! on top, merged and applied by the runtime library.

use super::Global;
use anyhow::Result;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// A runtime-spec linux.resources JSON file (- for stdin).
    #[arg(short, long, value_name = "FILE")]
    resources: Option<PathBuf>,
    /// Memory limit (bytes, or 64m, 1g; -1 for unlimited).
    #[arg(long, value_name = "SIZE", allow_hyphen_values = true)]
    memory: Option<String>,
    /// Memory soft limit (-1 for none).
    #[arg(long, value_name = "SIZE", allow_hyphen_values = true)]
    memory_reservation: Option<String>,
    /// Memory plus swap limit (-1 for unlimited).
    #[arg(long, value_name = "SIZE", allow_hyphen_values = true)]
    memory_swap: Option<String>,
    /// Accepted for runc compatibility; ignored (cgroup v2 has no kernel memory limit).
    #[arg(long, value_name = "SIZE")]
    kernel_memory: Option<String>,
    /// CPU shares (runc spells it --cpu-share).
    #[arg(long, value_name = "N", alias = "cpu-share")]
    cpu_shares: Option<u64>,
    #[arg(long, value_name = "US", allow_hyphen_values = true)]
    cpu_quota: Option<i64>,
    #[arg(long, value_name = "US")]
    cpu_period: Option<u64>,
    #[arg(long, value_name = "US")]
    cpu_rt_period: Option<u64>,
    #[arg(long, value_name = "US")]
    cpu_rt_runtime: Option<i64>,
    #[arg(long, value_name = "CPUS")]
    cpuset_cpus: Option<String>,
    #[arg(long, value_name = "MEMS")]
    cpuset_mems: Option<String>,
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pids_limit: Option<i64>,
    #[arg(long, value_name = "N")]
    blkio_weight: Option<u16>,
    id: String,
}

#[inline(never)] // its own stack frame, see `Cmd::run`
pub fn run(g: &Global, a: &Args) -> Result<()> {
    let o = berth_runtime::UpdateOpts {
        resources: a.resources.clone(),
        memory: a.memory.clone(),
        memory_reservation: a.memory_reservation.clone(),
        memory_swap: a.memory_swap.clone(),
        cpu_shares: a.cpu_shares,
        cpu_quota: a.cpu_quota,
        cpu_period: a.cpu_period,
        cpu_rt_period: a.cpu_rt_period,
        cpu_rt_runtime: a.cpu_rt_runtime,
        cpuset_cpus: a.cpuset_cpus.clone(),
        cpuset_mems: a.cpuset_mems.clone(),
        pids_limit: a.pids_limit,
        blkio_weight: a.blkio_weight,
    };
    Ok(g.runtime()?.update(&a.id, &o)?)
}
