//! `berth pause`.

use super::Global;
use anyhow::Result;

#[derive(clap::Args)]
pub struct Args {
    id: String,
}

#[inline(never)] // its own stack frame, see `Cmd::run`
pub fn run(g: &Global, a: &Args) -> Result<()> {
    Ok(g.runtime()?.pause(&a.id)?)
}
