//! `berth delete`.

use super::Global;
use anyhow::Result;

#[derive(clap::Args)]
pub struct Args {
    /// Kill a running container first.
    #[arg(short, long)]
    force: bool,
    id: String,
}

#[inline(never)] // its own stack frame, see `Cmd::run`
pub fn run(g: &Global, a: &Args) -> Result<()> {
    Ok(g.runtime()?.delete(&a.id, a.force)?)
}
