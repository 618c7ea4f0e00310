//! `berth state`: the runtime-spec state document.

use super::Global;
use anyhow::Result;

#[derive(clap::Args)]
pub struct Args {
    id: String,
}

#[inline(never)] // its own stack frame, see `Cmd::run`
pub fn run(g: &Global, a: &Args) -> Result<()> {
    let state = g.runtime()?.state(&a.id)?;
    println!("{}", serde_json::to_string_pretty(&state)?);
    Ok(())
}
