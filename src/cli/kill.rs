//! `berth kill`.

use super::Global;
use anyhow::Result;

#[derive(clap::Args)]
pub struct Args {
    /// Send the signal to every process of the container.
    #[arg(short, long)]
    all: bool,
    id: String,
    /// Signal name (KILL, SIGKILL) or number.
    #[arg(default_value = "SIGTERM")]
    signal: String,
}

#[inline(never)] // its own stack frame, see `Cmd::run`
pub fn run(g: &Global, a: &Args) -> Result<()> {
    let sig = berth_runtime::signal::parse(&a.signal)?;
    Ok(g.runtime()?.kill(&a.id, sig, a.all)?)
}
