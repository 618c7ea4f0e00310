//! `berth run`: create + start; in the foreground, waits and exits with
//! the container's status.

use super::Global;
use anyhow::Result;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    create: super::create::Args,
    /// Return after starting instead of waiting for the container.
    #[arg(short, long)]
    detach: bool,
    /// Keep the container's state after it exits (foreground only).
    #[arg(long)]
    keep: bool,
}

#[inline(never)] // its own stack frame, see `Cmd::run`
pub fn run(g: &Global, a: &Args) -> Result<i32> {
    Ok(g.runtime()?.run(&a.create.opts(g, !a.detach)?, a.keep)?)
}
