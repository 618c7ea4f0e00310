//! `berth features`: runtime-spec features.md JSON.

use super::Global;
use anyhow::Result;

#[inline(never)] // its own stack frame, see `Cmd::run`
pub fn run(_: &Global) -> Result<()> {
    let f = berth_runtime::features();
    println!("{}", serde_json::to_string_pretty(&f)?);
    Ok(())
}
